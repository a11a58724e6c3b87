"""The Python API: what ``train.py`` and ``predict.py`` do, called from code with the same configs.

from hybridrec import cross_validate, load_service

result = cross_validate("cv=fold", "cv.fold=1", "final_fit=false")   # overrides as on the command line
print(result.summary["test/rmse_mean"])
service = load_service()                                              # the newest bundle under outputs/
service.ask(user_id=1, n=5).rows()
service.ask(user_text="I love film noir, but no musicals", explain=True).rows()
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[2]  # the checkout (configs/ beside src/)


def compose(config: str, *overrides: str) -> DictConfig:
    """``configs/<config>.yaml`` composed with ``overrides`` exactly as the entry points would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config, overrides=list(overrides), return_hydra_config=False)


def cross_validate(*overrides: str, output_dir: str | Path | None = None):
    """Cross-validate as ``python train.py <overrides>`` would (and, with ``final_fit``, save a
    bundle); returns the ``CVResult``. Runs go to ``output_dir`` (default: a new folder under
    ``outputs/train/runs/``)."""
    from hybridrec.embedders.factory import build_run_embedder
    from hybridrec.evaluation.cross_validation import run_cross_validation
    from hybridrec.training.checks import check_run_config

    cfg = compose("train", *overrides)
    folder = (
        Path(output_dir)
        if output_dir
        else Path(cfg.paths.log_dir) / cfg.task_name / "runs" / time.strftime("%Y-%m-%d_%H-%M-%S")
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(folder)
        cfg.run_name = cfg.run_name or folder.name
    check_run_config(cfg)
    embedder = build_run_embedder(cfg)
    result = run_cross_validation(cfg, embedder)
    if cfg.final_fit:
        from hybridrec.training.final_fit import train_and_save_bundle

        train_and_save_bundle(cfg, embedder, result.summary)
    return result


def load_service(bundle: str | Path | None = None, *overrides: str):
    """The request service ``predict.py`` uses, on ``bundle`` (default: the newest under outputs/),
    with predict.yaml's defaults for its queries (``service.ask(...)``)."""
    from hybridrec.explain.gemini import build_explainer
    from hybridrec.inference.engine import load_engine
    from hybridrec.service import RecommendationService

    cfg = compose("predict", *overrides)
    engine = load_engine(
        bundle or cfg.bundle,
        cfg.paths.log_dir,
        cfg.text_cache_size,
        cfg.max_text_chars,
        text_budget_s=cfg.text_budget_s,
    )
    defaults = {name: cfg[name] for name in ("n", "exclude_seen", "genres", "explain")}
    return RecommendationService(
        engine, build_explainer(cfg.explainer, cfg.paths.explanation_cache), defaults
    )
