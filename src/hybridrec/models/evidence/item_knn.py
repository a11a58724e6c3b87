"""Item KNN with baselines (Koren 2010; Surprise's ``KNNBaseline``): a known user's residuals on the
films most like this one, on top of μ + b_u + b_i. Evidence the low-rank towers smooth away.

Memory: the similarity (films², float64, up to ``max_dense_items`` films; above, films x
``neighbours``), one residual per fitting rating, users + films biases.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import (
    KNOWN,
    RATINGS,
    EvidenceTerm,
    FilmSimilarity,
    rated_film_means,
    user_rows,
)
from hybridrec.models.evidence.biases import fit_biases


def pearson_baseline_rows(
    context: FoldContext, residuals: np.ndarray, shrinkage: float
) -> Callable[[np.ndarray], np.ndarray]:
    """``rows(films)``: those films' Pearson correlation to every film of the baseline residuals (one
    per fitting rating) over common raters, shrunk by ``(n - 1) / (n - 1 + shrinkage)``; zero on the
    diagonal (no film is its own neighbour). Memory: films asked x films."""
    fit = context.fit
    residual, rated, squared = fit.sparse(residuals), fit.sparse(np.ones(len(fit))), fit.sparse(residuals**2)
    by_film = [m.T.tocsr() for m in (residual, rated, squared)]  # films x users: rows are cheap to pick

    def rows(films: np.ndarray) -> np.ndarray:
        residual_t, rated_t, squared_t = (m[films] for m in by_film)
        common = (rated_t @ rated).toarray()
        norms = np.sqrt((squared_t @ rated).toarray() * (rated_t @ squared).toarray())
        products = (residual_t @ residual).toarray()
        similarity = np.divide(products, norms, out=np.zeros_like(norms), where=norms > 0)
        support = np.maximum(common - 1, 0)
        similarity *= support / (support + shrinkage)
        similarity[np.arange(len(films)), films] = 0.0
        return similarity

    return rows


class ItemKNN(EvidenceTerm):
    """``b_ui`` plus the similarity-weighted baseline residuals of the ``k`` films most like ``i``
    among those the user rated (positive similarities only); ``b_ui`` alone without such films.
    Above ``max_dense_items`` films, "most like" is looked for among each film's ``neighbours``
    most similar films alone."""

    audience, kind = KNOWN, RATINGS

    def __init__(
        self,
        k: int,
        shrinkage: float,
        reg_user: float,
        reg_item: float,
        max_dense_items: int,
        neighbours: int,
    ):
        if k < 1 or shrinkage < 0 or neighbours < k:
            raise ValueError(
                f"need 1 <= k <= neighbours and shrinkage >= 0, got {k}, {neighbours}, {shrinkage}"
            )
        self.k, self.shrinkage, self.reg_user, self.reg_item = k, shrinkage, reg_user, reg_item
        self.max_dense_items, self.neighbours = max_dense_items, neighbours

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        user_bias, item_bias = fit_biases(context, self.reg_user, self.reg_item)
        self.mean = context.global_mean
        self.user_bias, self.item_bias = torch.from_numpy(user_bias), torch.from_numpy(item_bias)
        residuals = fit.ratings - (context.global_mean + user_bias[fit.users] + item_bias[fit.items])
        self.residuals = user_rows(fit, residuals)
        if state:
            self.similarity = FilmSimilarity.from_state(state, context.n_items, np.float64)
        else:
            self.similarity = FilmSimilarity.of(
                pearson_baseline_rows(context, residuals, self.shrinkage),
                context.n_items,
                self.max_dense_items,
                self.neighbours,
                np.float64,
            )

    def state(self) -> dict[str, np.ndarray]:
        return self.similarity.state()

    def rate(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """float64, as fitted (callers cast)."""
        means = rated_film_means(
            self.residuals, users, items, self.similarity.rows, self.similarity.columns, self.k, 0.0
        )
        user_bias = self.user_bias[users]
        if items is None:
            return self.mean + user_bias[:, None] + self.item_bias[None, :] + means
        return self.mean + user_bias + self.item_bias[items] + means
