"""Validation while a model trains: the whole recommender's metrics on the fold's validation split,
logged each epoch (so early stopping and checkpoints can watch any of them), and every epoch's
logged metrics kept for the learning curves."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import pandas as pd

from hybridrec.data.datamodule import MovieLensDataModule
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
    validated and logged."""

    def __init__(self, build: Callable[..., Recommender], datamodule: MovieLensDataModule):
        self.build, self.datamodule = build, datamodule

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        for key, value in validation_metrics(self.build(pl_module.nets), self.datamodule).items():
            if "distinct" not in key and key != "val/users":
                pl_module.log(key, value, on_epoch=True)


class EpochHistory(L.Callback):
    """Keeps every epoch's logged metrics, whatever loggers are configured (for the learning-curve plot)."""

    def __init__(self):
        self.rows: list[dict] = []

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

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
