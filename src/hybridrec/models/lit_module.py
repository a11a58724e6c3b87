"""The LightningModule around HybridRecModel: MSE training, RMSE/MAE per stage, optimiser from config."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from hybridrec.constants import TEST_MAE, TEST_RMSE, TRAIN_LOSS, VAL_MAE, VAL_RMSE
from hybridrec.data.context import FoldContext
from hybridrec.models.base import Recommender
from hybridrec.models.hybrid import HybridRecModel, clip_ratings


class HybridRecLitModule(Recommender, L.LightningModule):
    """Built per fold: ``context`` sizes the ID tables and fills the frozen buffers.

    ``mapping``, ``optimizer`` and ``scheduler`` are factories (Hydra partials), so every fold gets
    fresh ones. The remaining keyword arguments are HybridRecModel's architecture.
    """

    name = "hybrid"

    def __init__(
        self,
        context: FoldContext,
        mapping: Callable,
        optimizer: Callable,
        scheduler: Callable | None = None,
        l2: float = 0.0,
        **architecture,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["context", "mapping", "optimizer", "scheduler"])
        content_dim = context.embeddings.dim if context.embeddings is not None else 1
        self.net = HybridRecModel(context.n_users, context.n_items, content_dim, mapping(), **architecture)
        self.net.attach(context)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.l2 = l2
        self.val_rmse, self.val_mae = MeanSquaredError(squared=False), MeanAbsoluteError()
        self.test_rmse, self.test_mae = MeanSquaredError(squared=False), MeanAbsoluteError()

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.net(users, items)

    def training_step(self, batch, batch_idx):
        users, items, ratings = batch
        loss = F.mse_loss(self.net(users, items), ratings)
        if self.l2:
            loss = loss + self.l2 * self.net.id_penalty(users, items)
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

    # --- Recommender -----------------------------------------------------------------------------

    @torch.no_grad()
    def _all_vectors(self):
        was_training = self.training
        self.eval()
        users = self.net.encode_users(torch.arange(self.net.n_users, device=self.device))
        items = self.net.encode_items(torch.arange(self.net.n_items, device=self.device))
        self.train(was_training)
        return users, items

    @torch.no_grad()
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        (user_vec, user_bias), (item_vec, item_bias) = self._all_vectors()
        u = torch.as_tensor(users, device=self.device)
        i = torch.as_tensor(items, device=self.device)
        rated = self.net.rate(user_vec[u], user_bias[u], item_vec[i], item_bias[i])
        return clip_ratings(rated).cpu().numpy()

    @torch.no_grad()
    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        (user_vec, user_bias), (item_vec, item_bias) = self._all_vectors()
        u = torch.as_tensor(users, device=self.device)
        return self.net.rate_all(user_vec[u], user_bias[u], item_vec, item_bias).cpu().numpy()
