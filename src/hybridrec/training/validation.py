"""Validation while a model trains: the whole recommender's metrics on the fold's validation split,
logged each epoch (so early stopping and checkpoints can watch any of them), and every epoch's
logged metrics kept for the learning curves."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pandas as pd

from hybridrec.data.datamodule import MovieLensDataModule
from hybridrec.io import atomic_write
from hybridrec.metrics import split_metrics
from hybridrec.models.base import Recommender


def validation_metrics(model: Recommender, datamodule: MovieLensDataModule) -> dict[str, float]:
    """``val/rmse``, ``val/mae`` (rating models), ``val/ndcg@10`` … on the fold's validation split:
    films of the fitting ratings excluded from the lists, validation ratings >= 4 relevant. Empty
    when no validation is carved."""
    if not datamodule.has_validation:
        return {}
    metrics, _, _ = split_metrics(model, datamodule.context.fit, datamodule.val, "val")
    return metrics


class RecommenderValidation(L.Callback):
    """Each epoch, the recommender that ``build(nets)`` makes of the members as they are now,
    validated and logged. Under data-parallel training it is validated once, by the first process,
    on the whole validation split (every process holds the same weights), and the others log the
    numbers it sends them: early stopping sees the same numbers everywhere."""

    def __init__(self, build: Callable[..., Recommender], datamodule: MovieLensDataModule):
        self.build, self.datamodule = build, datamodule

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = None
        if trainer.is_global_zero:
            nets = pl_module.nets
            if pl_module.device.type != "cpu":  # the recommender (and its evidence terms) lives on the CPU
                nets = copy.deepcopy(nets).cpu()
            metrics = validation_metrics(self.build(nets), self.datamodule)
        if trainer.world_size > 1:
            metrics = trainer.strategy.broadcast(metrics, src=0)
        for key, value in metrics.items():
            if "distinct" not in key and key != "val/users":
                pl_module.log(key, value, on_epoch=True)


class EpochHistory(L.Callback):
    """Keeps every epoch's logged metrics, whatever loggers are configured (for the learning-curve
    plot). The first process writes them to ``path`` after each epoch: a process that spawned the
    training (``ddp_spawn``) reads them there. They are kept in checkpoints, so a resumed fit goes
    on with its history."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])

    def _record(self, trainer) -> None:
        epoch = trainer.current_epoch + 1
        if not self.rows or self.rows[-1]["epoch"] != epoch:
            self.rows.append({"epoch": epoch})
        self.rows[-1].update(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
        )

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._record(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._record(trainer)
        if trainer.is_global_zero:
            atomic_write(self.path, lambda tmp: self.frame().to_csv(tmp, index=False))

    def frame(self) -> pd.DataFrame:
        """The epochs' rows: this process's, else (trained in spawned processes) those written to ``path``."""
        if not self.rows and self.path.is_file():
            return pd.read_csv(self.path)
        return pd.DataFrame(self.rows)
