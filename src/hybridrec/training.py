"""Fit one model on one fold: the datamodule, then Lightning (neural models) or ``fit`` (baselines)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from hybridrec.config import instantiate
from hybridrec.data.datamodule import MovieLensDataModule
from hybridrec.errors import ConfigError
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


def build_datamodule(cfg: DictConfig, protocol: str, fold: int, embedder) -> MovieLensDataModule:
    datamodule = instantiate(cfg.data)(protocol=protocol, fold=fold, seed=cfg.seed, embedder=embedder)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def fit_fold(
    cfg: DictConfig, protocol: str, fold: int, embedder, fold_dir: Path, run_name: str, fold_name: str
) -> FittedFold:
    """Seed, build the fold's data and a fresh model, and fit it; validation chooses the weights."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg, protocol, fold, embedder)
    model = instantiate(cfg.model)(context=datamodule.context)
    if cfg.monitor.metric not in model.val_metrics:
        raise ConfigError(
            f"monitor.metric={cfg.monitor.metric} is not logged by this model; choose one of {list(model.val_metrics)}"
        )
    started = time.perf_counter()
    if isinstance(model, L.LightningModule):
        epochs, best_epoch, val_score = _fit_lightning(cfg, model, datamodule, fold_dir, run_name, fold_name)
    else:
        model.fit(datamodule.context)
        epochs, best_epoch = 0, None
        val_score = validation_score(cfg, model, datamodule)
    return FittedFold(model, datamodule, epochs, best_epoch, val_score, time.perf_counter() - started)


def validation_score(cfg: DictConfig, model: Recommender, datamodule: MovieLensDataModule) -> float:
    """The monitored validation metric of the model's current weights (the chosen ones, after training)."""
    from hybridrec.evaluation.metrics import rating_metrics

    val = datamodule.val
    scores = {
        f"val/{k}": v for k, v in rating_metrics(model.predict(val.users, val.items), val.ratings).items()
    }
    return scores[cfg.monitor.metric]


def _fit_lightning(cfg, model, datamodule, fold_dir: Path, run_name: str, fold_name: str):
    fold_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    checkpoint = next((c for c in callbacks if isinstance(c, L.pytorch.callbacks.ModelCheckpoint)), None)
    if checkpoint is not None:
        checkpoint.dirpath = str(fold_dir / "checkpoints")
    config = OmegaConf.to_container(cfg, resolve=True)
    loggers = [
        factory(save_dir=fold_dir, name=fold_name, group=run_name, config=config)
        for factory in instantiate(cfg.get("logger") or {}).values()
    ]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(fold_dir)
    )
    try:
        trainer.fit(model, datamodule=datamodule)
        best_epoch = None
        if checkpoint is not None and checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
            best_epoch = int(state.get("epoch", -1)) + 1
        if len(datamodule.test):
            trainer.test(model, datamodule=datamodule, verbose=False)
        # under ddp_spawn the trainer in this process does not see the epoch count: the best epoch bounds it
        epochs = max(trainer.current_epoch, best_epoch or 0)
        return epochs, best_epoch, validation_score(cfg, model, datamodule)
    finally:
        close_loggers(loggers)
