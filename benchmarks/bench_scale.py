"""Scale: one epoch, each part's fit, memory and top-10 latency on synthetic sets of 100K to 25M ratings.

    .venv/bin/python benchmarks/bench_scale.py [sizes=100k,1m,10m,25m] [hydra overrides...]

Each size runs in a process of its own (so its peak resident memory is its own) on a synthetic set of
that size's MovieLens format and shape (``hybridrec.data.synthetic``, written once under
outputs/bench_scale/data/), split random 90/10 (``cv=random90``), with an empty embedding cache (so
texts/s is the embedder's) and one epoch (``trainer.max_epochs=1``; at 10M and 25M its first steps,
``PARTIAL_EPOCH_STEPS``, timed and scaled to the epoch's steps). Beside it, Surprise's SVD (one
epoch, 100 factors) on the same training ratings at 100K and 1M when scikit-surprise is installed
(``make bench`` installs it). Writes benchmarks/results/scale.{json,md}, or scale-<sizes>.{json,md}
for some of the sizes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT / "outputs" / "bench_scale" / "data"
# size: (format's folder, data config, users, films, ratings): the shapes of the real sets
SIZES = {
    "100k": ("ml-100k", "ml100k", 943, 1_682, 100_000),
    "1m": ("ml-1m", "ml1m", 6_040, 3_706, 1_000_209),
    "10m": ("ml-10M100K", "ml10m", 69_878, 10_677, 10_000_054),
    "25m": ("ml-25m", "ml25m", 162_541, 59_047, 25_000_095),
}
SVD_SIZES = ("100k", "1m")
# sizes whose epoch is timed on its first steps and scaled to the whole epoch (an epoch there takes
# hours on 2 cores: issue 34's point 6): steps timed
PARTIAL_EPOCH_STEPS = {"10m": 100, "25m": 50}
LATENCY_CALLS = 1_000
DEFAULTS = ["embedder=static_minilm"]  # the fast offline embedder: MiniLM itself is timed by bench_embed


class CountingEmbedder:
    """The configured embedder, counting the texts it embeds and the seconds it takes."""

    def __init__(self, inner):
        self.inner, self.texts, self.seconds = inner, 0, 0.0

    def embed(self, texts):
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        return vectors

    def __getattr__(self, name):
        return getattr(self.inner, name)


def synthetic_set(size: str) -> Path:
    """The size's synthetic set, written once (atomically: a folder renamed when complete)."""
    from hybridrec.data.synthetic import write_synthetic

    folder, _, users, films, ratings = SIZES[size]
    root = DATA_ROOT / size
    if not (root / folder).is_dir():
        partial = DATA_ROOT / f"{size}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        write_synthetic(partial, folder, users, films, ratings, seed=0)
        root.mkdir(parents=True, exist_ok=True)
        (partial / folder).rename(root / folder)
        partial.rmdir()
    return root


def surprise_epoch_seconds(train) -> float | None:
    """Seconds of one epoch of Surprise's SVD (100 factors) on the training ratings."""
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    frame = train[["user", "item", "rating"]]
    low, high = float(frame["rating"].min()), float(frame["rating"].max())
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(low, high))).build_full_trainset()
    started = time.perf_counter()
    SVD(n_factors=100, n_epochs=1, random_state=0).fit(trainset)
    return time.perf_counter() - started


def measure(size: str, overrides: list[str]) -> dict:
    """One size, in this process: every figure of the table's row."""
    import pandas as pd
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from hybridrec.bundle import save_bundle
    from hybridrec.config import instantiate
    from hybridrec.embedders.cache import CachedEmbedder
    from hybridrec.inference.engine import load_engine
    from hybridrec.models.recommender import HybridRecommender, fit_evidence
    from hybridrec.training import build_datamodule
    from hybridrec.training.fit import blend_weights, train_members

    started = time.perf_counter()
    data_dir = synthetic_set(size)
    generate_seconds = time.perf_counter() - started
    _, data_config, n_users, n_films, n_ratings = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"data={data_config}",
                    "cv=random90",
                    "trainer.max_epochs=1",
                    "trainer.enable_progress_bar=false",
                    "logger=none",
                    "final_fit=false",
                    f"data.data_dir={data_dir}",
                    "data.download=false",
                    f"paths.cache_dir={tmp}",
                    *DEFAULTS,
                    *overrides,
                ],
            )
        OmegaConf.set_struct(cfg, False)
        cfg.paths.output_dir = tmp
        embedder = CountingEmbedder(instantiate(cfg.embedder))
        cached = CachedEmbedder(embedder, Path(tmp) / "embeddings.sqlite3", progress=False)

        started = time.perf_counter()
        datamodule = build_datamodule(cfg, cfg.cv.protocol, int(cfg.cv.folds[0]), cached)
        data_seconds = time.perf_counter() - started
        model = instantiate(cfg.model)(context=datamodule.context)
        parts: dict[str, float] = {}
        started = time.perf_counter()
        blend = blend_weights(cfg, datamodule)
        terms, nearest = fit_evidence(instantiate(cfg.evidence), blend, datamodule.context, seconds=parts)
        evidence_seconds = time.perf_counter() - started
        fit_ratings = len(datamodule.context.fit.ratings)
        steps = math.ceil(fit_ratings / int(cfg.data.batch_size))
        timed_steps = min(PARTIAL_EPOCH_STEPS.get(size, steps), steps)
        started = time.perf_counter()
        train_members(
            cfg,
            model,
            datamodule,
            [],
            [],
            Path(tmp),
            limit_val_batches=0,
            limit_train_batches=timed_steps,
            enable_checkpointing=False,
        )
        epoch_seconds = (time.perf_counter() - started) * steps / timed_steps
        started = time.perf_counter()
        recommender = HybridRecommender(model.nets, terms, nearest, blend)
        parts["attach (what reads the trained towers)"] = time.perf_counter() - started

        bundle = save_bundle(
            Path(tmp) / "bundle",
            cfg,
            recommender,
            datamodule.context,
            datamodule.train_interactions,
            datamodule.data.items,
            datamodule.data.users,
            split={"protocol": cfg.cv.protocol, "fold": int(cfg.cv.folds[0])},
        )
        engine = load_engine(bundle, tmp, text_cache_size=10)
        users = np.random.default_rng(0).choice(engine.user_index.ids, LATENCY_CALLS)
        latency = []
        for user in users:
            started = time.perf_counter()
            engine.recommend(int(user), n=10)
            latency.append(time.perf_counter() - started)
        svd = None
        if size in SVD_SIZES:
            fit = datamodule.context.fit
            svd = surprise_epoch_seconds(
                pd.DataFrame({"user": fit.users, "item": fit.items, "rating": fit.ratings})
            )
    ms = np.array(latency) * 1000
    return {
        "size": size,
        "users": n_users,
        "films": n_films,
        "ratings": n_ratings,
        "fitting_ratings": fit_ratings,
        "synthetic_data_seconds": round(generate_seconds, 1),
        "data_and_embedding_seconds": round(data_seconds, 1),
        "texts_embedded": embedder.texts,
        "embedding_texts_per_second": round(embedder.texts / max(embedder.seconds, 1e-9)),
        "evidence_fit_seconds": round(evidence_seconds, 1),
        "part_fit_seconds": {name: round(s, 2) for name, s in parts.items()},
        "epoch_seconds": round(epoch_seconds, 1),
        "epoch_steps": steps,
        "timed_steps": timed_steps,
        "ratings_per_second": round(fit_ratings / epoch_seconds),
        "top10_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "top10_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "surprise_svd_epoch_seconds": None if svd is None else round(svd, 2),
    }


def _scaled(row: dict) -> str:
    """The epoch cell's note when the epoch was timed on its first steps only."""
    timed, steps = row.get("timed_steps"), row.get("epoch_steps")
    return "" if timed is None or timed == steps else f" (first {timed} of {steps:,} steps, scaled)"


def table(rows: list[dict], command: str) -> str:
    lines = [
        "| ratings | users × films | epoch | ratings/s | evidence fit | embedding | top-10 p50 / p99 | peak memory | Surprise SVD epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        svd = "–" if r["surprise_svd_epoch_seconds"] is None else f"{r['surprise_svd_epoch_seconds']:.1f} s"
        lines.append(
            f"| {r['ratings']:,} | {r['users']:,} × {r['films']:,} | {r['epoch_seconds']:.1f} s{_scaled(r)} "
            f"| {r['ratings_per_second']:,} | {r['evidence_fit_seconds']:.1f} s "
            f"| {r['embedding_texts_per_second']:,} texts/s ({r['texts_embedded']:,}) "
            f"| {r['top10_p50_ms']:.2f} / {r['top10_p99_ms']:.2f} ms | {r['peak_rss_gb']:.2f} GB | {svd} |"
        )
    lines += ["", "Each part's fit (seconds):", ""]
    for r in rows:
        parts = ", ".join(f"{name} {s:.1f}" for name, s in r["part_fit_seconds"].items())
        lines.append(f"- {r['size']}: {parts}")
    by_size = {r["size"]: r for r in rows}
    if "1m" in by_size and "10m" in by_size:
        ratio = by_size["10m"]["epoch_seconds"] / by_size["1m"]["epoch_seconds"]
        lines += ["", f"Epoch time 10M / 1M: {ratio:.1f}× (target ≤ 12×)."]
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    args = sys.argv[1:]
    if args[:1] == ["--one"]:  # the child: one size, its row as JSON on the last line of stdout
        warnings.filterwarnings("ignore")
        logging.disable(logging.WARNING)
        print(json.dumps(measure(args[1], args[2:])))
        return
    sizes = next((a.split("=", 1)[1].split(",") for a in args if a.startswith("sizes=")), list(SIZES))
    overrides = [a for a in args if not a.startswith("sizes=")]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        sys.exit(f"error: unknown size {unknown[0]!r}; sizes are {', '.join(SIZES)}")
    rows = []
    for size in sizes:
        print(f"bench_scale: {size} ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--one", size, *overrides], stdout=subprocess.PIPE, text=True
        )
        if done.returncode != 0:
            sys.exit(f"error: the {size} run failed (exit {done.returncode})")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    command = " ".join([".venv/bin/python benchmarks/bench_scale.py", *args])
    name = "scale" if sizes == list(SIZES) else "scale-" + "-".join(sizes)  # a subset: a file of its own
    write_results(name, {"defaults": DEFAULTS, "overrides": overrides, "rows": rows}, table(rows, command))


if __name__ == "__main__":
    main()
