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
    if isinstance(model, L.LightningModule) and cfg.monitor.metric not in model.val_metrics:
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


def validation_metrics(model: Recommender, datamodule: MovieLensDataModule) -> dict[str, float]:
    """``val/rmse``, ``val/mae`` (rating models) and ``val/ndcg@10`` … on the fold's validation split.

    The ranking metrics follow the fold's protocol on the validation split: items of the fitting
    ratings are excluded, validation ratings >= 4 are the relevant items.
    """
    val = datamodule.val
    scores = {}
    if model.predicts_ratings:
        predicted = model.predict(val.users, val.items)
        scores.update({f"val/{k}": v for k, v in rating_metrics(predicted, val.ratings).items()})
    ranking = evaluate_ranking(model, datamodule.context.fit, val)
    scores.update({f"val/{k}": v for k, v in ranking.summary.items() if "@" in k})
    return scores


def validation_score(cfg: DictConfig, model: Recommender, datamodule: MovieLensDataModule) -> float:
    """The monitored validation metric of the model's current weights (NaN if the model lacks it)."""
    return validation_metrics(model, datamodule).get(cfg.monitor.metric, float("nan"))


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


def _fit_lightning(cfg, model, datamodule, fold_dir: Path, run_name: str, fold_name: str):
    fold_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks.append(RankingValidation(datamodule))
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
