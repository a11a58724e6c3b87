"""The LightningModule that trains the members: their losses, the optimiser and schedule, the metrics.

What the trained members are then used for (the evidence terms, the blend, inference) is the
``HybridRecommender``'s; validation metrics of the whole recommender are logged by a callback
(``hybridrec.training.validation``).
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torchmetrics import MeanSquaredError

from hybridrec.data.context import FoldContext
from hybridrec.metrics import TRAIN_LOSS, VAL_LOSS
from hybridrec.models.ensemble import build_members
from hybridrec.models.hybrid import HybridRecModel


class HybridRecLitModule(L.LightningModule):
    """``members`` HybridRecModels (from the ``net`` factory, sized by the fold's ``context``) trained
    side by side on the same batches from different initialisations. The loss of each: its rating
    mapping's loss, plus ``rank_weight`` times the ranking head's softmax loss over the films rated
    at least ``rank_min_rating`` (0 turns the head off), plus ``l2`` times the per-example penalty on
    its ID embeddings, biases and scales. ``optimizer`` and ``scheduler`` are factories (Hydra
    partials), so every fold gets fresh ones."""

    def __init__(
        self,
        context: FoldContext,
        net: Callable[..., HybridRecModel],
        optimizer: Callable,
        scheduler: Callable | None,
        members: int,
        rank_weight: float,
        rank_min_rating: float,
        l2: float,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["context", "net", "optimizer", "scheduler"])
        self.nets = build_members(net, context, members, ranking=rank_weight > 0)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.rank_weight, self.rank_min_rating, self.l2 = rank_weight, rank_min_rating, l2
        self.val_mse = MeanSquaredError()

    def training_step(self, batch, batch_idx):
        """The members' mean loss on the batch.

        Under data-parallel training every process reads the whole batch (the single process's) and
        trains on the ratings of its share of the users (so a user's softmax stays whole). Each loss
        is a mean over the share, weighted by the share's part of the batch times the processes: the
        gradients that DDP averages over the processes are then those of the whole batch.
        """
        users, items, ratings = batch
        world = self.trainer.world_size if self._trainer is not None else 1
        whole, weight = None, {"rating": 1.0, "rank": 1.0}
        if world > 1:
            whole, mine = (users, items), users % world == self.global_rank
            liked = ratings >= self.rank_min_rating
            weight = {
                "rating": world * mine.sum() / len(ratings),
                "rank": world * (liked & mine).sum() / liked.sum().clamp_min(1),
            }
            users, items, ratings = users[mine], items[mine], ratings[mine]
            if not len(ratings):  # no user of this batch is this process's: every gradient is 0
                return sum(p.sum() for p in self.parameters()) * 0.0
        rating = rank = penalty = 0.0
        for net in self.nets:
            losses = net.training_losses(
                users, items, ratings, self.rank_min_rating, batch=whole, step=self.global_step
            )
            rating = rating + losses["rating"] * weight["rating"]
            if self.rank_weight:
                rank = rank + losses["rank"] * weight["rank"]
            if self.l2:
                penalty = penalty + net.id_penalty(users, items) * weight["rating"]
        k = len(self.nets)
        loss = (rating + self.rank_weight * rank + self.l2 * penalty) / k
        logged = {"on_step": False, "on_epoch": True, "batch_size": len(batch[2]), "sync_dist": world > 1}
        if self.rank_weight:
            self.log("train/rank_loss", rank / k, **logged)
        self.log("train/rating_loss", rating / k, **logged)
        self.log(TRAIN_LOSS, loss, prog_bar=True, **logged)
        return loss

    def validation_step(self, batch, batch_idx):
        """The members' mean rating's squared error, towers alone (the whole recommender's
        validation metrics are the callback's)."""
        users, items, ratings = batch
        predicted = torch.stack([net(users, items) for net in self.nets]).mean(0)
        self.val_mse.update(predicted, ratings)  # summed over processes at the epoch's end
        self.log(VAL_LOSS, self.val_mse, on_step=False, on_epoch=True, batch_size=len(ratings))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        try:  # schedules over the whole run (OneCycleLR) need its length in steps
            scheduler = self.scheduler_factory(
                optimizer=optimizer, total_steps=self.trainer.estimated_stepping_batches
            )
        except TypeError:
            scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
