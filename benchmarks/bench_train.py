"""Training speed: seconds per epoch and for a whole default 5-fold CV, excluding the one-time embedding.

    HYBRIDREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_train.py [hydra overrides...]

Embeddings of every fold are computed (or read from the cache) before the clock starts. When
scikit-surprise is installed (`pip install scikit-surprise`), Surprise's SVD (grid-tuned settings
from ../shared/eval-protocol.md) is timed on the same folds for comparison.
Writes benchmarks/results/train.{json,md}, or train-<overrides>.{json,md} when overrides are given
(e.g. `fold_workers=1`: folds one after another, benchmarks/results/train-fold_workers=1.md).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, write_results

ROOT = Path(__file__).resolve().parents[1]


def compose(overrides: list[str], output_dir: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = hydra_compose("train", overrides=["logger=none", "final_fit=false", *overrides])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = output_dir
    return cfg


def surprise_svd_seconds(folds) -> list[float] | None:
    """Seconds for Surprise's SVD (grid-tuned settings) to fit each canonical fold's u<k>.base."""
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    reader = Reader(line_format="user item rating timestamp", sep="\t")
    seconds = []
    for fold in folds:
        base = data_dir() / "ml-100k" / f"u{fold}.base"
        train = Dataset.load_from_file(str(base), reader).build_full_trainset()
        started = time.perf_counter()
        SVD(n_factors=100, n_epochs=80, lr_all=0.007, reg_all=0.12, random_state=0).fit(train)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from hybridrec.embedders.factory import build_run_embedder
    from hybridrec.evaluation.cross_validation import run_cross_validation
    from hybridrec.training import build_datamodule

    overrides = ["trainer.enable_progress_bar=false", *sys.argv[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides, tmp)
        embedder = build_run_embedder(cfg)
        for fold in cfg.cv.folds:  # warm the embedding cache: not part of the timing
            build_datamodule(cfg, cfg.cv.protocol, int(fold), embedder)
        svd = surprise_svd_seconds(cfg.cv.folds)
        started = time.perf_counter()
        result = run_cross_validation(cfg, embedder)
        total = time.perf_counter() - started
    rows = result.rows
    epochs = sum(r["epochs"] for r in rows)
    train_seconds = sum(r["train_seconds"] for r in rows)
    payload = {
        "overrides": overrides,
        "cv_seconds": round(total, 1),
        "train_seconds": round(train_seconds, 1),
        "epochs": epochs,
        "seconds_per_epoch": round(train_seconds / max(epochs, 1), 3),
        "rmse_mean": result.summary["test/rmse_mean"],
        "folds": [{k: r[k] for k in ("fold", "epochs", "train_seconds", "test/rmse")} for r in rows],
        "surprise_svd_seconds_per_fold": svd,
    }
    lines = [
        "| what | value |",
        "|---|---|",
        f"| default 5-fold CV, wall clock (training + evaluation, embeddings cached) | {total:.1f} s |",
        f"| training, summed over the folds (they overlap when fold_workers > 1) | {train_seconds:.1f} s over {epochs} epochs |",
        f"| seconds per epoch of one fold | {payload['seconds_per_epoch']:.2f} s |",
        f"| CV RMSE (mean) | {result.summary['test/rmse_mean']:.4f} |",
    ]
    if svd is not None:
        lines.append(f"| Surprise SVD (100 factors, 80 epochs), per fold | {sum(svd) / len(svd):.1f} s |")
    else:
        lines.append("| Surprise SVD | not installed (`pip install scikit-surprise`) |")
    lines += [
        "",
        f"Command: `HYBRIDREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_train.py {' '.join(sys.argv[1:])}`".rstrip(),
    ]
    name = "-".join(["train", *sys.argv[1:]]).replace("/", "_")
    write_results(name, payload, "\n".join(lines))


if __name__ == "__main__":
    main()
