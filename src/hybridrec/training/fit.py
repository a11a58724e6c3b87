"""Fit one model on one fold: the datamodule, then Lightning (the hybrid's members) or ``fit``
(baselines); the hybrid's evidence terms are fitted on the same fitting ratings and joined by the
blend (fixed, or learned on data held out of the fold's training part)."""

from __future__ import annotations

import contextlib
import functools
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
from hybridrec.models.base import Recommender
from hybridrec.models.blend import BlendWeights
from hybridrec.models.recommender import HybridRecommender, fit_evidence
from hybridrec.tracking import close_loggers, run_tags
from hybridrec.training.checkpoints import LAST, AtomicCheckpointIO, RandomState, last_checkpoint
from hybridrec.training.processes import DiesWithParent, is_first_process
from hybridrec.training.validation import EpochHistory, RecommenderValidation, validation_metrics

log = logging.getLogger(__name__)


@dataclass
class FittedFold:
    model: Recommender  # what evaluation and bundles use: the hybrid recommender, or a baseline
    datamodule: MovieLensDataModule
    epochs: int  # epochs trained (0 for closed-form models)
    best_epoch: int | None
    val_metrics: dict  # validation metrics of the chosen weights (empty without validation)
    train_seconds: float
    history: pd.DataFrame | None = None  # per-epoch metrics (Lightning models)
    blend: BlendWeights | None = None  # the hybrid's blend weights, as given or learned
    test_metrics: dict | None = None  # what ``evaluate`` returned, also sent to the fold's loggers


def build_datamodule(cfg: DictConfig, protocol: str, fold: int, embedder) -> MovieLensDataModule:
    """One fold's data: the training seed is the run's, the seed of a drawn split its ``cv``'s
    (protocols with a fixed split have none)."""
    datamodule = instantiate(cfg.data)(
        protocol=protocol,
        fold=fold,
        seed=cfg.seed,
        embedder=embedder,
        split_seed=OmegaConf.select(cfg, "cv.split_seed"),
    )
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

    ``evaluate(model, datamodule) -> dict`` runs on the fitted model before the fold's loggers
    close, so its test metrics reach them (W&B, CSV) too.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg, protocol, fold, embedder)
    model = instantiate(cfg.model)(context=datamodule.context)
    scored = model if isinstance(model, Recommender) else HybridRecommender
    if cfg.monitor.metric not in scored.val_metrics:
        raise ConfigError(
            f"monitor.metric={cfg.monitor.metric} is not logged by this model; choose one of {list(scored.val_metrics)}"
        )
    started = time.perf_counter()
    if isinstance(model, Recommender):  # a baseline, fitted in closed form
        model.fit(datamodule.context)
        seconds = time.perf_counter() - started
        metrics = evaluate(model, datamodule) if evaluate else None
        return FittedFold(
            model, datamodule, 0, None, validation_metrics(model, datamodule), seconds, test_metrics=metrics
        )
    blend = blend_weights(cfg, datamodule)
    build = None  # the recommender of the members as they are: validation and evaluation, first process only
    if is_first_process():  # the evidence terms, fitted once (ddp_spawn: pickled to the processes it starts)
        terms, nearest = fit_evidence(instantiate(cfg.evidence), blend, datamodule.context)
        build = functools.partial(HybridRecommender, terms=terms, nearest=nearest, blend=blend)
    return _fit_lightning(
        cfg,
        model,
        datamodule,
        build,
        blend,
        fold_dir,
        run_name,
        fold_name,
        evaluate,
        started,
    )


def blend_weights(cfg: DictConfig, datamodule: MovieLensDataModule) -> BlendWeights:
    """The configured weights, or (``blend.learn``) the ones learned on the fold's training part
    (which leaves the random state as it found it: the fold trains as it would with fixed weights)."""
    fixed = BlendWeights.from_config(OmegaConf.to_container(cfg.blend.weights, resolve=True))
    if cfg.blend.get("learn") is None:
        return fixed
    from hybridrec.training.stacking import learn_blend

    return learn_blend(cfg, datamodule, fixed)


def train_members(
    cfg: DictConfig,
    model: L.LightningModule,
    datamodule,
    callbacks,
    loggers,
    root: Path,
    ckpt_path: Path | None = None,
    **trainer_args,
):
    """A trainer from ``cfg.trainer`` fitting ``model`` on the datamodule (from ``ckpt_path``, a
    checkpoint of an interrupted fit, when given); returns the trainer."""
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(root),
        plugins=[AtomicCheckpointIO()],
        **trainer_args,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer


def _fit_lightning(
    cfg, model, datamodule, build, blend, fold_dir: Path, run_name, fold_name, evaluate, started
) -> FittedFold:
    fold_dir.mkdir(parents=True, exist_ok=True)
    history = EpochHistory(fold_dir / "history.csv")
    validating = datamodule.has_validation
    configured = (cfg.get("callbacks") or {}).values()
    callbacks = [instantiate(c) for c in configured if c is not None]  # (callbacks.<name>=null: off)
    always = [history, RandomState(), DiesWithParent()]
    if validating:
        callbacks += [RecommenderValidation(build, datamodule), *always]
        no_validation = {}
    else:  # the model trains for trainer.max_epochs and keeps its last weights
        watching = [c for c in callbacks if getattr(c, "monitor", None)]
        if watching:
            log.info("no validation carved: %s left out", ", ".join(type(c).__name__ for c in watching))
        callbacks = [c for c in callbacks if c not in watching] + always
        no_validation = {"limit_val_batches": 0}
    checkpoints = [c for c in callbacks if isinstance(c, L.pytorch.callbacks.ModelCheckpoint)]
    if not checkpoints:
        no_validation["enable_checkpointing"] = False
    for saver in checkpoints:
        saver.dirpath = str(fold_dir / "checkpoints")
    checkpoint = next((c for c in checkpoints if c.monitor), None)  # the best epoch's weights
    resume_from = last_checkpoint(fold_dir / "checkpoints")
    config = OmegaConf.to_container(cfg, resolve=True)
    loggers = [
        factory(save_dir=fold_dir, name=fold_name, group=run_name, run_tags=run_tags(cfg), config=config)
        for factory in instantiate(cfg.get("logger") or {}).values()
    ]
    for logger in loggers:  # W&B keeps the best of the monitored metric as the run's summary
        if isinstance(logger, L.pytorch.loggers.WandbLogger):
            logger.experiment.define_metric(cfg.monitor.metric, summary=cfg.monitor.mode)
    try:
        trainer = train_members(
            cfg, model, datamodule, callbacks, loggers, fold_dir, ckpt_path=resume_from, **no_validation
        )
        best_epoch = None
        if checkpoint is not None and checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
            best_epoch = int(state.get("epoch", -1)) + 1
        if not is_first_process():  # (a process started by srun or torchrun: it only trains)
            return FittedFold(
                model, datamodule, trainer.current_epoch, None, {}, time.perf_counter() - started
            )
        for saver in checkpoints:  # the fit is done: nothing left to resume
            Path(saver.dirpath, LAST).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # (a folder left empty: no best epoch kept either)
                Path(saver.dirpath).rmdir()
        recommender = build(model.nets)
        seconds = time.perf_counter() - started
        metrics = evaluate(recommender, datamodule) if evaluate else None
        if metrics:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, float)}
            for logger in loggers:
                logger.log_metrics(numbers, step=trainer.global_step)
        # under ddp_spawn the trainer in this process does not see the epoch count: the history does
        epochs = trainer.current_epoch or len(history.frame())
        return FittedFold(
            recommender,
            datamodule,
            epochs,
            best_epoch,
            validation_metrics(recommender, datamodule),
            seconds,
            history.frame(),
            blend,
            metrics,
        )
    finally:
        close_loggers(loggers)
