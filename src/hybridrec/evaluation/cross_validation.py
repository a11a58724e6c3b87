"""Cross-validation: one run = one CV result. Every fold gets a fresh model, trainer and logger.

The baselines of the ``baselines`` group are fitted on the same folds and evaluated by the same
code, so the summary, its table and its plots always show the model beside them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from hybridrec.config import instantiate
from hybridrec.constants import ITEM_COL, PREDICTION_COL, RATING_COL, TRAIN_RATINGS_COL, USER_COL
from hybridrec.data.datamodule import MovieLensDataModule
from hybridrec.evaluation.described import described_metrics
from hybridrec.evaluation.fold_workers import map_folds
from hybridrec.evaluation.report import markdown_table, summarize_folds, write_cv_summary
from hybridrec.io import atomic_write
from hybridrec.metrics import split_metrics
from hybridrec.models.base import Recommender
from hybridrec.runs import mark_finished, read_finished, run_key
from hybridrec.tracking import run_name
from hybridrec.training import fit_fold
from hybridrec.training.final_fit import save_fitted
from hybridrec.training.processes import is_first_process
from hybridrec.training.validation import validation_metrics

log = logging.getLogger(__name__)

# validation metrics summarised over folds when validation is carved
VALIDATION_KEYS = ("val/rmse", "val/mae", "val/ndcg@10", "val/recall@10")
FOLD_DONE = "fold.json"  # written last in a fold's folder: what it found, and its files' checksums


@dataclass
class CVResult:
    summary: dict
    markdown: str
    rows: list[dict] = field(default_factory=list)
    monitor_mean: float = float("nan")
    plots: list[Path] = field(default_factory=list)


class AmongFilms:
    """A model whose lists hold only some films (the others score -inf)."""

    def __init__(self, model: Recommender, films: np.ndarray, n_items: int):
        self.model, self.predicts_ratings = model, model.predicts_ratings
        self.outside = np.ones(n_items, dtype=bool)
        self.outside[films] = False

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.model.predict(users, items)

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        scores = np.array(self.model.rank_scores(users), dtype=np.float64)
        scores[:, self.outside] = -np.inf
        return scores


@dataclass
class Evaluation:
    """A fitted model's test results on its fold."""

    metrics: dict  # test/rmse, test/ndcg@10, …
    predictions: pd.DataFrame  # one row per test rating: user, item, rating, prediction
    per_user: pd.DataFrame | None = None  # the list metrics of each evaluated user


def evaluate_model(model: Recommender, dm: MovieLensDataModule, read_text: bool = True) -> Evaluation:
    """Test metrics of a fitted model on its fold (``test/rmse``, ``test/ndcg@10`` …; films of the
    whole training part excluded from the lists; protocol C: ``evaluation.described``), its test
    predictions and each evaluated user's list metrics."""
    if dm.described is not None:
        return Evaluation(*described_metrics(model, dm, read_text))
    if len(dm.split.cold_items):  # the new-film protocol: lists of the new films alone
        model = AmongFilms(model, dm.data.item_index.to_index(dm.split.cold_items), dm.context.n_items)
    metrics, predictions, ranking = split_metrics(model, dm.train_interactions, dm.test, "test")
    trained_on = np.bincount(
        dm.context.fit.users, minlength=dm.context.n_users
    )  # each user's fitting ratings
    frame = pd.DataFrame(
        {
            USER_COL: dm.data.user_index.to_id(dm.test.users),
            ITEM_COL: dm.data.item_index.to_id(dm.test.items),
            RATING_COL: dm.test.ratings,
            PREDICTION_COL: np.round(predictions, 6),
            TRAIN_RATINGS_COL: trained_on[dm.test.users],
        }
    )
    per_user = pd.DataFrame(
        {USER_COL: dm.data.user_index.to_id(ranking.users), TRAIN_RATINGS_COL: trained_on[ranking.users]}
        | {f"{name}@{ranking.k}": np.round(values, 6) for name, values in ranking.per_user.items()}
    )
    return Evaluation(metrics, frame, per_user)


def write_evaluation(evaluation: Evaluation, folder: Path, prefix: str = "test") -> list[Path]:
    """``<prefix>_predictions.csv`` and (list metrics per user) ``<prefix>_users.csv`` in ``folder``;
    returns the files written."""
    written = [
        atomic_write(
            folder / f"{prefix}_predictions.csv", lambda tmp: evaluation.predictions.to_csv(tmp, index=False)
        )
    ]
    if evaluation.per_user is not None:
        written.append(
            atomic_write(
                folder / f"{prefix}_users.csv", lambda tmp: evaluation.per_user.to_csv(tmp, index=False)
            )
        )
    return written


def run_baselines(
    cfg: DictConfig, dm: MovieLensDataModule, fold: int, fold_dir: Path, files: list[Path]
) -> dict[str, dict]:
    """Fit and evaluate every baseline of the run on the fold; their files go to ``fold_dir/baselines``
    (and their paths to ``files``)."""
    rows = {}
    for name, baseline_cfg in (cfg.get("baselines") or {}).items():
        started = time.perf_counter()
        model = instantiate(baseline_cfg)(context=dm.context).fit(dm.context)
        evaluation = evaluate_model(model, dm)
        files += write_evaluation(evaluation, fold_dir / "baselines", name)
        metrics = evaluation.metrics
        rows[name] = {
            "fold": fold,
            **metrics,
            **validation_metrics(model, dm),
            "train_seconds": round(time.perf_counter() - started, 2),
        }
    return rows


@dataclass
class FoldOutcome:
    """What one fold hands back to the CV loop (picklable: folds may run in worker processes)."""

    row: dict  # the model's test metrics, validation score, epochs and time
    baselines: dict[str, dict]  # baseline name -> its row on this fold
    predictions: pd.DataFrame  # the model's test predictions (also written to the fold's folder)
    history: pd.DataFrame | None  # per-epoch metrics (Lightning models)
    model_name: str

    def save(self, fold_dir: Path, files: list[Path], key: str) -> None:
        """Mark the fold finished by the run of config ``key``: its row, baselines and name, with the
        checksums of its ``files``."""
        payload = {"key": key, "row": self.row, "baselines": self.baselines, "model_name": self.model_name}
        mark_finished(fold_dir / FOLD_DONE, payload, files)

    @classmethod
    def load(cls, fold_dir: Path, key: str) -> FoldOutcome | None:
        """The outcome of a fold that a run of config ``key`` finished before (a resumed run), when
        its files are all there and whole."""
        payload = read_finished(fold_dir / FOLD_DONE)
        if payload is None or payload.get("key") != key:
            return None
        history = fold_dir / "history.csv"
        return cls(
            payload["row"],
            payload["baselines"],
            pd.read_csv(fold_dir / "test_predictions.csv"),
            pd.read_csv(history) if history.is_file() else None,
            payload["model_name"],
        )


def run_fold(cfg: DictConfig, fold: int, embedder) -> FoldOutcome | None:
    """Fit and evaluate the model and the baselines on one fold; write its predictions (its history is
    written as it trains). A process other than the first (``trainer=ddp_multinode``) only trains."""
    name = run_name(cfg)
    fold_dir = Path(cfg.paths.output_dir) / "folds" / str(fold)
    if not is_first_process():
        fit_fold(
            cfg, cfg.cv.protocol, fold, embedder, fold_dir, run_name=name, fold_name=f"{name}-fold{fold}"
        )
        return None
    evaluated: dict[str, Evaluation] = {}

    def evaluate(model, dm):
        evaluated["test"] = evaluate_model(model, dm)
        return evaluated["test"].metrics

    fitted = fit_fold(
        cfg,
        cfg.cv.protocol,
        fold,
        embedder,
        fold_dir,
        run_name=name,
        fold_name=f"{name}-fold{fold}",
        evaluate=evaluate,
    )
    predictions = evaluated["test"].predictions
    files = write_evaluation(evaluated["test"], fold_dir)
    if cfg.save_fold_bundles:  # a bundle of the fold's model, to evaluate again later (eval.py)
        save_fitted(fold_dir / "bundle", cfg, fitted, {"protocol": cfg.cv.protocol, "fold": fold})
    history = fitted.history if fitted.history is not None and not fitted.history.empty else None
    if history is not None:
        files.append(fold_dir / "history.csv")
    row = {
        "fold": fold,
        **fitted.test_metrics,
        **fitted.val_metrics,
        "epochs": fitted.epochs,
        "best_epoch": fitted.best_epoch,
        "train_seconds": round(fitted.train_seconds, 2),
    }
    if fitted.blend is not None:
        row["blend"] = fitted.blend.as_dict()
    baselines = run_baselines(cfg, fitted.datamodule, fold, fold_dir, files)
    if fitted.datamodule.described is not None and fitted.model.reads_text:  # protocol C: the words' worth
        metrics = evaluate_model(fitted.model, fitted.datamodule, read_text=False).metrics
        baselines[f"{fitted.model.name}_demographics_only"] = {"fold": fold, **metrics}
    monitored = cfg.monitor.metric
    validation = f"{monitored} {row[monitored]:.4f}" if monitored in row else "no validation carved"
    log.info(
        "fold %s: test RMSE %.4f, MAE %.4f, NDCG@10 %.4f (%s, %d epochs, %.1fs)",
        fold,
        row["test/rmse"],
        row["test/mae"],
        row.get("test/ndcg@10", float("nan")),
        validation,
        row["epochs"],
        row["train_seconds"],
    )
    outcome = FoldOutcome(row, baselines, predictions, history, fitted.model.name)
    outcome.save(fold_dir, files, run_key(cfg))
    return outcome


def run_cross_validation(cfg: DictConfig, embedder) -> CVResult:
    """Every fold of ``cfg.cv``, one after another or ``fold_workers`` at a time, then the summary,
    its table and plots."""
    output_dir = Path(cfg.paths.output_dir)
    name = run_name(cfg)
    folds = [int(f) for f in cfg.cv.folds]
    started = time.perf_counter()
    # a resumed run keeps the folds it finished (their files checked), and trains the others
    key = run_key(cfg)
    finished = {
        f: o for f in folds if (o := FoldOutcome.load(output_dir / "folds" / str(f), key)) is not None
    }
    if finished:
        log.info("folds %s finished before: kept", sorted(finished))
    todo = [f for f in folds if f not in finished]
    trained = dict(zip(todo, map_folds(run_fold, cfg, todo, embedder) if todo else [], strict=True))
    if not is_first_process():  # the first process evaluates and writes
        return CVResult(summary={}, markdown="")
    outcomes = [finished.get(f) or trained[f] for f in folds]
    rows = [o.row for o in outcomes]
    baseline_rows: dict[str, list[dict]] = {}
    for outcome in outcomes:
        for baseline, baseline_row in outcome.baselines.items():
            baseline_rows.setdefault(baseline, []).append(baseline_row)
    histories = {o.row["fold"]: o.history for o in outcomes if o.history is not None}
    predictions = [o.predictions for o in outcomes]
    ranking_keys = [k for k in rows[0] if k.startswith("test/") and "@" in k and k.count("/") == 1]
    per_phrasing = [k for k in rows[0] if k.startswith("test/") and k.count("/") == 2]  # protocol C
    keys = ["test/rmse", "test/mae", *ranking_keys, *per_phrasing, *VALIDATION_KEYS]
    summary = summarize_folds(rows, keys)
    baselines = {b: {**summarize_folds(r, keys), "folds": r} for b, r in baseline_rows.items()}
    payload = {
        **summary,
        "model": OmegaConf.select(cfg, "model._target_"),
        "model_name": outcomes[0].model_name,
        "protocol": cfg.cv.protocol,
        "embedder": OmegaConf.select(cfg, "embedder._target_"),
        "monitor": cfg.monitor.metric,
        "seed": cfg.seed,
        "seconds_total": round(time.perf_counter() - started, 1),
        "folds": rows,
        "baselines": baselines,
    }
    model_name = payload["model_name"]
    markdown = _markdown(cfg, name, model_name, rows, summary, baselines, ranking_keys)
    write_cv_summary(output_dir, payload, markdown)
    plots = _plots(cfg, output_dir, model_name, rows, baseline_rows, histories, predictions)
    monitor_mean = summary.get(f"{cfg.monitor.metric}_mean", float("nan"))
    return CVResult(summary=payload, markdown=markdown, rows=rows, monitor_mean=monitor_mean, plots=plots)


def _markdown(cfg, name, model_name, rows, summary, baselines, ranking_keys) -> str:
    columns = ["test/rmse", "test/mae", *ranking_keys, "val/rmse", "epochs", "train_seconds"]
    lines = [
        f"# Cross-validation: {name}",
        "",
        f"protocol `{cfg.cv.protocol}`, folds {list(cfg.cv.folds)}, seed {cfg.seed}, monitor `{cfg.monitor.metric}`",
        "",
        markdown_table(rows, columns, summary),
    ]
    if baselines:
        compare = [f"test/{m}" for m in ("rmse", "mae", "ndcg@10", "recall@10", "hit_rate@10", "coverage@10")]
        lines += [
            "",
            "## Beside the baselines (same folds, mean ± std)",
            "",
            "| model | " + " | ".join(c.removeprefix("test/") for c in compare) + " |",
            "|---" * (len(compare) + 1) + "|",
        ]
        for label, stats in [(f"**{model_name}**", summary), *baselines.items()]:
            cells = []
            for c in compare:
                mean, std = stats.get(f"{c}_mean"), stats.get(f"{c}_std")
                cells.append("–" if mean is None or np.isnan(mean) else f"{mean:.4f} ± {std:.4f}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plots(cfg, output_dir: Path, model_name, rows, baseline_rows, histories, predictions) -> list[Path]:
    from hybridrec.evaluation.plots import plot_calibration, plot_cv_summary, plot_learning_curves

    plots = [plot_cv_summary(model_name, rows, baseline_rows, output_dir / "cv_summary.png")]
    if histories:
        plots.append(plot_learning_curves(histories, output_dir / "learning_curves.png", cfg.monitor.metric))
    pooled = pd.concat(predictions, ignore_index=True)
    if pooled[PREDICTION_COL].notna().any():
        plots.append(plot_calibration(pooled, output_dir / "calibration.png"))
    return plots
