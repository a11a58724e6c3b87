"""The LightningModule around HybridRecModel: training losses, RMSE/MAE per stage, optimiser from config."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from hybridrec.constants import TEST_MAE, TEST_RMSE, TRAIN_LOSS, VAL_MAE, VAL_RMSE
from hybridrec.data.context import FoldContext
from hybridrec.models.base import Recommender
from hybridrec.models.hybrid import Encoded, HybridRecModel, clip_ratings


class HybridRecLitModule(Recommender, L.LightningModule):
    """Built per fold: ``context`` sizes the ID tables and fills the frozen buffers.

    ``mapping``, ``optimizer`` and ``scheduler`` are factories (Hydra partials), so every fold gets
    fresh ones. ``rank_weight`` weighs the ranking loss against the rating MSE (0 turns the ranking
    head off). The remaining keyword arguments are HybridRecModel's architecture.
    """

    name = "hybrid"

    def __init__(
        self,
        context: FoldContext,
        mapping: Callable,
        optimizer: Callable,
        scheduler: Callable | None = None,
        l2: float = 0.0,
        rank_weight: float = 0.0,
        rank_min_rating: float = 4.0,
        **architecture,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["context", "mapping", "optimizer", "scheduler"])
        content_dim = context.embeddings.dim if context.embeddings is not None else 1
        self.net = HybridRecModel(
            context.n_users, context.n_items, content_dim, mapping(), ranking=rank_weight > 0, **architecture
        )
        self.net.attach(context)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.l2 = l2
        self.rank_weight = rank_weight
        self.rank_min_rating = rank_min_rating
        self.val_rmse, self.val_mae = MeanSquaredError(squared=False), MeanAbsoluteError()
        self.test_rmse, self.test_mae = MeanSquaredError(squared=False), MeanAbsoluteError()
        self._frozen: tuple[Encoded, Encoded] | None = None

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.net(users, items)

    def training_step(self, batch, batch_idx):
        self._frozen = None
        users, items, ratings = batch
        losses = self.net.training_losses(users, items, ratings, self.rank_min_rating)
        loss = losses["mse"]
        if self.rank_weight:
            loss = loss + self.rank_weight * losses["rank"]
            self.log("train/rank_loss", losses["rank"], on_step=False, on_epoch=True, batch_size=len(ratings))
        if self.l2:
            loss = loss + self.l2 * self.net.id_penalty(users, items)
        self.log("train/mse", losses["mse"], on_step=False, on_epoch=True, batch_size=len(ratings))
        self.log(TRAIN_LOSS, loss, on_step=False, on_epoch=True, batch_size=len(ratings))
        return loss

    def _evaluate(self, batch, rmse, mae, names):
        users, items, ratings = batch
        predicted = clip_ratings(self.net(users, items))
        rmse.update(predicted, ratings)
        mae.update(predicted, ratings)
        self.log(names[0], rmse, on_step=False, on_epoch=True, batch_size=len(ratings))
        self.log(names[1], mae, on_step=False, on_epoch=True, batch_size=len(ratings))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_rmse, self.val_mae, (VAL_RMSE, VAL_MAE))

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_rmse, self.test_mae, (TEST_RMSE, TEST_MAE))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer)},
        }

    def on_load_checkpoint(self, checkpoint) -> None:
        self._frozen = None

    def load_state_dict(self, *args, **kwargs):
        self._frozen = None
        return super().load_state_dict(*args, **kwargs)

    # --- inference -------------------------------------------------------------------------------

    @torch.no_grad()
    def frozen(self) -> tuple[Encoded, Encoded]:
        """Tower outputs of every known user and every item, computed once until the weights change."""
        if self._frozen is None or self.training:
            was_training = self.training
            self.eval()
            users = self.net.encode_users(torch.arange(self.net.n_users, device=self.device))
            items = self.net.encode_items(torch.arange(self.net.n_items, device=self.device))
            self.train(was_training)
            if was_training:
                return users, items
            self._frozen = (users, items)
        return self._frozen

    @torch.no_grad()
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        all_users, all_items = self.frozen()
        u = torch.as_tensor(users, device=self.device)
        i = torch.as_tensor(items, device=self.device)
        return clip_ratings(self.net.rate(all_users[u], all_items[i])).cpu().numpy()

    @torch.no_grad()
    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        all_users, all_items = self.frozen()
        u = torch.as_tensor(users, device=self.device)
        return self.net.rank_all(all_users[u], all_items).cpu().numpy()

    @torch.no_grad()
    def text_user_scores(self, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ratings, ranking scores) over the catalog for new users known by embedded texts."""
        _, all_items = self.frozen()
        self.eval()
        users = self.net.encode_user_content(
            torch.as_tensor(content, dtype=torch.float32, device=self.device)
        )
        ratings = clip_ratings(self.net.rate_all(users, all_items))
        return ratings.cpu().numpy(), self.net.rank_all(users, all_items).cpu().numpy()

    @torch.no_grad()
    def text_item_ratings(self, content: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Predicted ratings of a new item, known by an embedded text, for the given known users."""
        all_users, _ = self.frozen()
        self.eval()
        item = self.net.encode_item_content(torch.as_tensor(content, dtype=torch.float32, device=self.device))
        u = torch.as_tensor(users, device=self.device)
        return clip_ratings(self.net.rate_all(all_users[u], item)[:, 0]).cpu().numpy()
