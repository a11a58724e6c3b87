"""Simple baselines, fitted in closed form or by a few seconds of full-batch optimisation.

They are evaluated by the same harness as the hybrid model (``model=popularity`` …), so every
report can set them side by side. Fitted values are buffers, so a bundle stores them like weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hybridrec.data.context import FoldContext
from hybridrec.models.base import Recommender
from hybridrec.models.evidence.biases import fit_biases
from hybridrec.models.evidence.item_item import ItemItem
from hybridrec.models.evidence.item_knn import ItemKNN as ItemKNNTerm


class Baseline(Recommender, nn.Module):
    def __init__(self, context: FoldContext):
        nn.Module.__init__(self)
        self.n_users, self.n_items = context.n_users, context.n_items
        self.rating_scale = context.rating_scale
        self.register_buffer("mean", torch.tensor(context.global_mean))

    def _ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), float(self.mean))

    def predict(self, users, items):
        return self.rating_scale.clip(np.asarray(self._ratings(np.asarray(users), np.asarray(items))))


class GlobalMean(Baseline):
    """Every rating is the training mean; every list is the same (the catalog in id order)."""

    name = "global_mean"

    def rank_scores(self, users):
        return np.zeros((len(users), self.n_items))


class Biases(Baseline):
    """μ + b_u + b_i, regularised; lists rank items by their bias (the best-rated films first)."""

    name = "biases"

    def __init__(self, context: FoldContext, reg_user: float, reg_item: float):
        super().__init__(context)
        self.reg_user, self.reg_item = reg_user, reg_item
        self.register_buffer("user_bias", torch.zeros(self.n_users, dtype=torch.float64))
        self.register_buffer("item_bias", torch.zeros(self.n_items, dtype=torch.float64))

    def fit(self, context):
        user_bias, item_bias = fit_biases(context, self.reg_user, self.reg_item)
        self.user_bias = torch.from_numpy(user_bias)
        self.item_bias = torch.from_numpy(item_bias)
        return self

    def _ratings(self, users, items):
        return float(self.mean) + self.user_bias.numpy()[users] + self.item_bias.numpy()[items]

    def rank_scores(self, users):
        return np.broadcast_to(self.item_bias.numpy(), (len(users), self.n_items)).copy()


class TermBaseline(Baseline):
    """An evidence term of the hybrid on its own. What it fitted (``term.state()``) is kept as
    buffers, sized as fitted, so a bundle stores it like weights and loading rebuilds the term
    around it."""

    def __init__(self, context: FoldContext, term):
        super().__init__(context)
        self.term, self.context = term, context

    def fit(self, context):
        self.term.fit(context)
        self._keep(self.term.state())
        return self

    def _keep(self, state: dict[str, np.ndarray]) -> None:
        for key, value in state.items():
            self.register_buffer(key, torch.from_numpy(np.asarray(value)))

    def load_state_dict(self, state_dict, *args, **kwargs):
        """The fitted state of a bundle, and the term rebuilt around it."""
        state = {key: value.numpy() for key, value in state_dict.items() if key not in self._buffers}
        self._keep(state)
        loaded = super().load_state_dict(state_dict, *args, **kwargs)
        self.term.fit(self.context, state)
        return loaded


class ItemKNN(TermBaseline):
    """Item KNN with baselines (Koren 2010, Surprise's ``KNNBaseline``): the user's residuals on the
    films most like this one (shrunk Pearson), on top of μ + b_u + b_i; lists rank by that rating.
    The hybrid's ``item_knn`` term on its own (memory: its similarity, films² up to
    ``max_dense_items`` films, films x ``neighbours`` above)."""

    name = "knn"

    def __init__(
        self,
        context: FoldContext,
        k: int,
        shrinkage: float,
        reg_user: float,
        reg_item: float,
        max_dense_items: int,
        neighbours: int,
    ):
        super().__init__(context, ItemKNNTerm(k, shrinkage, reg_user, reg_item, max_dense_items, neighbours))

    def _ratings(self, users, items):
        return self.term.rate(torch.as_tensor(users), torch.as_tensor(items)).numpy()

    def rank_scores(self, users):
        return self.term.rate(torch.as_tensor(users)).numpy()


class Popularity(Baseline):
    """Lists: the items most often rated >= 4 in training, the same for everyone.

    Ratings: the item's mean rating shrunk towards the global mean (``shrinkage`` pseudo-ratings).
    """

    name = "popularity"

    def __init__(self, context: FoldContext, threshold: float, shrinkage: float):
        super().__init__(context)
        self.threshold, self.shrinkage = threshold, shrinkage
        self.register_buffer("count", torch.zeros(self.n_items, dtype=torch.float64))
        self.register_buffer("item_mean", torch.zeros(self.n_items, dtype=torch.float64))

    def fit(self, context):
        fit = context.fit
        liked = fit.ratings >= self.threshold
        self.count = torch.from_numpy(
            np.bincount(fit.items[liked], minlength=self.n_items).astype(np.float64)
        )
        sums = np.bincount(fit.items, fit.ratings.astype(np.float64), self.n_items)
        n = np.bincount(fit.items, minlength=self.n_items)
        mean = float(self.mean)
        self.item_mean = torch.from_numpy((sums + self.shrinkage * mean) / (n + self.shrinkage))
        return self

    def _ratings(self, users, items):
        return self.item_mean.numpy()[items]

    def rank_scores(self, users):
        return np.broadcast_to(self.count.numpy(), (len(users), self.n_items)).copy()


class MatrixFactorization(Baseline):
    """Biased MF (μ + b_u + b_i + p_u·q_i), full-batch Adam with per-example L2, a fixed number of epochs.

    Lists rank by predicted rating (which is why rating-trained models make poor lists).
    """

    name = "mf"

    def __init__(
        self,
        context: FoldContext,
        dim: int,
        reg: float,
        lr: float,
        epochs: int,
        seed: int,
    ):
        super().__init__(context)
        self.dim, self.reg, self.lr, self.epochs, self.seed = dim, reg, lr, epochs, seed
        self.user_factors = nn.Parameter(torch.zeros(self.n_users, dim), requires_grad=False)
        self.item_factors = nn.Parameter(torch.zeros(self.n_items, dim), requires_grad=False)
        self.register_buffer("user_bias", torch.zeros(self.n_users))
        self.register_buffer("item_bias", torch.zeros(self.n_items))

    def fit(self, context):
        generator = torch.Generator().manual_seed(self.seed)
        p = (0.01 * torch.randn(self.n_users, self.dim, generator=generator)).requires_grad_()
        q = (0.01 * torch.randn(self.n_items, self.dim, generator=generator)).requires_grad_()
        bu = torch.zeros(self.n_users, requires_grad=True)
        bi = torch.zeros(self.n_items, requires_grad=True)
        users = torch.from_numpy(context.fit.users)
        items = torch.from_numpy(context.fit.items)
        ratings = torch.from_numpy(context.fit.ratings) - float(self.mean)
        optimizer = torch.optim.Adam([p, q, bu, bi], lr=self.lr)
        for _ in range(self.epochs):
            pu, qi = p[users], q[items]
            error = (bu[users] + bi[items] + (pu * qi).sum(1)) - ratings
            penalty = (pu.square().sum(1) + qi.square().sum(1) + bu[users] ** 2 + bi[items] ** 2).mean()
            loss = error.square().mean() + self.reg * penalty
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            self.user_factors.copy_(p)
            self.item_factors.copy_(q)
            self.user_bias.copy_(bu)
            self.item_bias.copy_(bi)
        return self

    def _ratings(self, users, items):
        with torch.no_grad():
            u, i = torch.as_tensor(users), torch.as_tensor(items)
            dot = (self.user_factors[u] * self.item_factors[i]).sum(1)
            return (float(self.mean) + self.user_bias[u] + self.item_bias[i] + dot).numpy()

    def rank_scores(self, users):
        with torch.no_grad():
            u = torch.as_tensor(users)
            scores = (
                self.user_bias[u, None] + self.item_bias[None, :] + self.user_factors[u] @ self.item_factors.T
            )
            return scores.numpy()


class EASE(TermBaseline):
    """EASE^R (Steck 2019): a closed-form item-item model over interactions rated >= ``threshold``;
    the hybrid's ``item_item`` term on its own (memory: its weights, films² up to
    ``max_dense_items`` films; above, over that many films most often chosen, the others scoring 0).
    A ranking model only: it does not predict ratings (its rating columns stay empty)."""

    name = "ease"
    predicts_ratings = False
    val_metrics = ("val/ndcg@10", "val/recall@10")

    def __init__(self, context: FoldContext, reg: float, threshold: float, max_dense_items: int):
        super().__init__(context, ItemItem(reg, threshold, max_dense_items))

    def predict(self, users, items):
        return np.full(len(users), np.nan)

    def rank_scores(self, users):
        return self.term.score(torch.as_tensor(users)).numpy()


class GenreMean(Baseline):
    """A film's rating: the mean of its genres' mean training ratings (what is known of a new film
    before anyone rates it); lists rank films by it. Memory: a value per genre and per film."""

    name = "genre_mean"

    def __init__(self, context: FoldContext):
        super().__init__(context)
        self.context = context
        self.register_buffer("film_value", torch.zeros(self.n_items, dtype=torch.float64))

    def _genre_values(self, context: FoldContext) -> tuple[np.ndarray, np.ndarray]:
        """(films x genres 0/1, per genre: its mean training rating)."""
        genres = sorted({g for gs in context.items["genres"] for g in gs if g != "unknown"})
        films = context.genre_matrix(genres).astype(np.float64)
        fit = context.fit
        rated = films[fit.items]
        means = (rated * fit.ratings[:, None]).sum(0) / np.maximum(rated.sum(0), 1)
        return films, np.where(rated.sum(0) > 0, means, context.global_mean)

    def _per_film(self, films: np.ndarray, per_genre: np.ndarray, default: float) -> np.ndarray:
        counts = films.sum(1)
        return np.where(counts > 0, films @ per_genre / np.maximum(counts, 1), default)

    def fit(self, context):
        films, means = self._genre_values(context)
        self.film_value = torch.from_numpy(self._per_film(films, means, context.global_mean))
        return self

    def _ratings(self, users, items):
        return self.film_value.numpy()[items]

    def rank_scores(self, users):
        return np.broadcast_to(self.film_value.numpy(), (len(users), self.n_items)).copy()


class GenrePopularity(GenreMean):
    """Lists: films ranked by how often their genres' films were liked in training (per film of the
    genre); ratings: the genre mean. Memory: a value per genre and per film."""

    name = "genre_popularity"

    def __init__(self, context: FoldContext, threshold: float):
        super().__init__(context)
        self.threshold = threshold
        self.register_buffer("film_popularity", torch.zeros(self.n_items, dtype=torch.float64))

    def fit(self, context):
        super().fit(context)
        films, _ = self._genre_values(context)
        fit = context.fit
        liked = films[fit.items[fit.ratings >= self.threshold]].sum(0) / np.maximum(films.sum(0), 1)
        self.film_popularity = torch.from_numpy(self._per_film(films, liked, 0.0))
        return self

    def rank_scores(self, users):
        return np.broadcast_to(self.film_popularity.numpy(), (len(users), self.n_items)).copy()
