"""Fit one model on one fold: the datamodule, then Lightning (neural models) or ``fit`` (baselines)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from hybridrec.config import instantiate
from hybridrec.data.datamodule import MovieLensDataModule
from hybridrec.errors import ConfigError
from hybridrec.evaluation.metrics import rating_metrics
from hybridrec.evaluation.ranking import evaluate_ranking
from hybridrec.models.base import Recommender
from hybridrec.tracking import close_loggers

log = logging.getLogger(__name__)


@dataclass
class FittedFold:
    model: Recommender
    datamodule: MovieLensDataModule
    epochs: int  # epochs trained (0 for closed-form models)
    best_epoch: int | None
    val_score: float  # the monitored validation metric of the chosen weights
    train_seconds: float
    history: pd.DataFrame | None = None  # per-epoch metrics (Lightning models)
    test_metrics: dict | None = None  # what ``evaluate`` returned, also sent to the fold's loggers


def build_datamodule(cfg: DictConfig, protocol: str, fold: int, embedder) -> MovieLensDataModule:
    datamodule = instantiate(cfg.data)(protocol=protocol, fold=fold, seed=cfg.seed, embedder=embedder)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def fit_fold(
    cfg: DictConfig,
    protocol: str,
    fold: int,
    embedder,
    fold_dir: Path,
    run_name: str,
    fold_name: str,
    evaluate: Callable | None = None,
) -> FittedFold:
    """Seed, build the fold's data and a fresh model, and fit it; validation, if carved, chooses the weights.

    ``evaluate(model, datamodule) -> dict`` runs on the chosen weights before the fold's loggers
    close, so its test metrics reach them (W&B, CSV) too.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg, protocol, fold, embedder)
    model = instantiate(cfg.model)(context=datamodule.context)
    if isinstance(model, L.LightningModule) and cfg.monitor.metric not in model.val_metrics:
        raise ConfigError(
            f"monitor.metric={cfg.monitor.metric} is not logged by this model; choose one of {list(model.val_metrics)}"
        )
    started = time.perf_counter()
    if isinstance(model, L.LightningModule):
        return _fit_lightning(cfg, model, datamodule, fold_dir, run_name, fold_name, evaluate, started)
    model.fit(datamodule.context)
    seconds = time.perf_counter() - started
    metrics = evaluate(model, datamodule) if evaluate else None
    return FittedFold(
        model, datamodule, 0, None, validation_score(cfg, model, datamodule), seconds, None, metrics
    )


def validation_metrics(model: Recommender, datamodule: MovieLensDataModule) -> dict[str, float]:
    """``val/rmse``, ``val/mae`` (rating models) and ``val/ndcg@10`` … on the fold's validation split.

    The ranking metrics follow the fold's protocol on the validation split: items of the fitting
    ratings are excluded, validation ratings >= 4 are the relevant items.
    """
    val = datamodule.val
    scores = {}
    if not datamodule.has_validation:
        return scores
    if model.predicts_ratings:
        predicted = model.predict(val.users, val.items)
        scores.update({f"val/{k}": v for k, v in rating_metrics(predicted, val.ratings).items()})
    ranking = evaluate_ranking(model, datamodule.context.fit, val)
    scores.update({f"val/{k}": v for k, v in ranking.summary.items() if "@" in k})
    return scores


def validation_score(cfg: DictConfig, model: Recommender, datamodule: MovieLensDataModule) -> float:
    """The monitored validation metric of the model's current weights (NaN if the model lacks it)."""
    return validation_metrics(model, datamodule).get(cfg.monitor.metric, float("nan"))


class EpochHistory(L.Callback):
    """Keeps every epoch's logged metrics, whatever loggers are configured (for the learning-curve plot)."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch + 1}
        row.update(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
        )
        self.rows.append(row)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if not self.rows or self.rows[-1]["epoch"] != epoch:  # no validation this epoch
            self.rows.append({"epoch": epoch})
        self.rows[-1].update(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


class RankingValidation(L.Callback):
    """Logs the validation ranking metrics each epoch, so early stopping can monitor ``val/ndcg@10``."""

    def __init__(self, datamodule: MovieLensDataModule):
        self.datamodule = datamodule

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        ranking = evaluate_ranking(pl_module, self.datamodule.context.fit, self.datamodule.val)
        for key, value in ranking.summary.items():
            if "@" in key:
                pl_module.log(f"val/{key}", value, on_epoch=True)


def _fit_lightning(
    cfg, model, datamodule, fold_dir: Path, run_name, fold_name, evaluate, started
) -> FittedFold:
    fold_dir.mkdir(parents=True, exist_ok=True)
    history = EpochHistory()
    validating = datamodule.has_validation
    if validating:
        callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
        callbacks += [RankingValidation(datamodule), history]
        no_validation = {}
    else:  # the model trains for trainer.max_epochs and keeps its last weights
        callbacks = [history]
        no_validation = {"limit_val_batches": 0, "enable_checkpointing": False}
    checkpoint = next((c for c in callbacks if isinstance(c, L.pytorch.callbacks.ModelCheckpoint)), None)
    if checkpoint is not None:
        checkpoint.dirpath = str(fold_dir / "checkpoints")
    config = OmegaConf.to_container(cfg, resolve=True)
    loggers = [
        factory(save_dir=fold_dir, name=fold_name, group=run_name, config=config)
        for factory in instantiate(cfg.get("logger") or {}).values()
    ]
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(fold_dir),
        **no_validation,
    )
    try:
        trainer.fit(model, datamodule=datamodule)
        best_epoch = None
        if checkpoint is not None and checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
            best_epoch = int(state.get("epoch", -1)) + 1
        # under DDP a test pass would spawn the processes again only to repeat what ``evaluate``
        # measures in this process (and gloo's teardown at its end has aborted a worker)
        if len(datamodule.test) and trainer.world_size == 1:
            trainer.test(model, datamodule=datamodule, verbose=False)
        seconds = time.perf_counter() - started
        metrics = evaluate(model, datamodule) if evaluate else None
        if metrics:
            numbers = {
                f"test/{k.removeprefix('test_')}": v for k, v in metrics.items() if isinstance(v, float)
            }
            for logger in loggers:
                logger.log_metrics(numbers, step=trainer.global_step)
        # under ddp_spawn the trainer in this process does not see the epoch count: the best epoch
        # bounds it, and without validation (no early stopping) it is max_epochs
        epochs = trainer.current_epoch or (best_epoch if validating else trainer.max_epochs)
        val_score = validation_score(cfg, model, datamodule)
        return FittedFold(model, datamodule, epochs, best_epoch, val_score, seconds, history.frame(), metrics)
    finally:
        close_loggers(loggers)
