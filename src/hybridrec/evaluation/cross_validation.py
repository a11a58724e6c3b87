"""Cross-validation: one run = one CV result. Every fold gets a fresh model, trainer and logger."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from hybridrec.constants import ITEM_COL, PREDICTION_COL, RATING_COL, USER_COL
from hybridrec.evaluation.metrics import rating_metrics
from hybridrec.evaluation.ranking import evaluate_ranking
from hybridrec.evaluation.report import markdown_table, summarize_folds, write_cv_summary
from hybridrec.io import atomic_write
from hybridrec.training import FittedFold, fit_fold

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    summary: dict
    markdown: str
    rows: list[dict] = field(default_factory=list)
    monitor_mean: float = float("nan")


def run_name(cfg: DictConfig) -> str:
    """A readable, unique-per-run name: the run folder's name."""
    return Path(cfg.paths.output_dir).name


def evaluate_fold(fitted: FittedFold, fold: int, fold_dir: Path) -> dict:
    """Test metrics of a fitted fold; writes ``test_predictions.csv``."""
    dm = fitted.datamodule
    model = fitted.model
    predictions = model.predict(dm.test.users, dm.test.items)  # NaN from ranking-only models
    frame = pd.DataFrame(
        {
            USER_COL: dm.data.user_index.to_id(dm.test.users),
            ITEM_COL: dm.data.item_index.to_id(dm.test.items),
            RATING_COL: dm.test.ratings,
            PREDICTION_COL: np.round(predictions, 6),
        }
    )
    atomic_write(fold_dir / "test_predictions.csv", lambda tmp: frame.to_csv(tmp, index=False))
    nan = {"rmse": float("nan"), "mae": float("nan")}
    rating = rating_metrics(predictions, dm.test.ratings) if model.predicts_ratings else nan
    val = (
        rating_metrics(model.predict(dm.val.users, dm.val.items), dm.val.ratings)
        if model.predicts_ratings
        else nan
    )
    ranking = evaluate_ranking(model, dm.train_interactions, dm.test)
    row = {
        "fold": fold,
        "test_rmse": rating["rmse"],
        "test_mae": rating["mae"],
        "val_rmse": val["rmse"],
        "val_score": fitted.val_score,
        "epochs": fitted.epochs,
        "best_epoch": fitted.best_epoch,
        "train_seconds": round(fitted.train_seconds, 2),
        **ranking.summary,
    }
    return row


def run_cross_validation(cfg: DictConfig, embedder) -> CVResult:
    output_dir = Path(cfg.paths.output_dir)
    name = run_name(cfg)
    rows = []
    started = time.perf_counter()
    for fold in cfg.cv.folds:
        fold_dir = output_dir / "folds" / str(fold)
        fitted = fit_fold(
            cfg, cfg.cv.protocol, int(fold), embedder, fold_dir, run_name=name, fold_name=f"{name}-fold{fold}"
        )
        row = evaluate_fold(fitted, int(fold), fold_dir)
        rows.append(row)
        log.info(
            "fold %s: test RMSE %.4f, MAE %.4f, NDCG@10 %.4f (val %s %.4f, %d epochs, %.1fs)",
            fold,
            row["test_rmse"],
            row["test_mae"],
            row.get("ndcg@10", float("nan")),
            cfg.monitor.metric,
            row["val_score"],
            row["epochs"],
            row["train_seconds"],
        )
    ranking_keys = [k for k in rows[0] if "@" in k]
    summary = summarize_folds(rows, ["test_rmse", "test_mae", *ranking_keys, "val_rmse", "val_score"])
    payload = {
        **summary,
        "model": OmegaConf.select(cfg, "model._target_"),
        "protocol": cfg.cv.protocol,
        "embedder": OmegaConf.select(cfg, "embedder._target_"),
        "monitor": cfg.monitor.metric,
        "seed": cfg.seed,
        "seconds_total": round(time.perf_counter() - started, 1),
        "folds": rows,
    }
    columns = ["test_rmse", "test_mae", *ranking_keys, "val_rmse", "epochs", "train_seconds"]
    markdown = "\n".join(
        [
            f"# Cross-validation: {name}",
            "",
            f"protocol `{cfg.cv.protocol}`, folds {list(cfg.cv.folds)}, seed {cfg.seed}, monitor `{cfg.monitor.metric}`",
            "",
            markdown_table(rows, columns, summary),
        ]
    )
    write_cv_summary(output_dir, payload, markdown)
    return CVResult(summary=payload, markdown=markdown, rows=rows, monitor_mean=summary["val_mean"])
