"""Item KNN with baselines (Koren 2010; Surprise's ``KNNBaseline``): a known user's residuals on the
films most like this one, on top of μ + b_u + b_i. Evidence the low-rank towers smooth away.

Memory: films² (the similarity, float64) plus one residual per fitting rating, users + films biases.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import KNOWN, RATINGS, EvidenceTerm, rated_film_means, user_rows
from hybridrec.models.evidence.biases import fit_biases


def pearson_baseline_similarity(context: FoldContext, residuals: np.ndarray, shrinkage: float) -> np.ndarray:
    """films x films Pearson correlation of the baseline residuals (one per fitting rating) over
    common raters, shrunk by ``(n - 1) / (n - 1 + shrinkage)``; zero diagonal (no film is its own
    neighbour)."""
    fit = context.fit
    shape = (context.n_users, context.n_items)

    def matrix(values):
        return sp.csr_matrix((values, (fit.users, fit.items)), shape=shape)

    residual, rated, squared = matrix(residuals), matrix(np.ones(len(fit))), matrix(residuals**2)
    common = (rated.T @ rated).toarray()
    norms = np.sqrt((squared.T @ rated).toarray() * (rated.T @ squared).toarray())
    products = (residual.T @ residual).toarray()
    similarity = np.divide(products, norms, out=np.zeros_like(norms), where=norms > 0)
    support = np.maximum(common - 1, 0)
    similarity *= support / (support + shrinkage)
    np.fill_diagonal(similarity, 0.0)
    return similarity


class ItemKNN(EvidenceTerm):
    """``b_ui`` plus the similarity-weighted baseline residuals of the ``k`` films most like ``i``
    among those the user rated (positive similarities only); ``b_ui`` alone without such films."""

    audience, kind = KNOWN, RATINGS

    def __init__(self, k: int, shrinkage: float, reg_user: float, reg_item: float):
        if k < 1 or shrinkage < 0:
            raise ValueError(f"k must be >= 1 and shrinkage >= 0, got {k} and {shrinkage}")
        self.k, self.shrinkage, self.reg_user, self.reg_item = k, shrinkage, reg_user, reg_item

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        user_bias, item_bias = fit_biases(context, self.reg_user, self.reg_item)
        self.mean = context.global_mean
        self.user_bias, self.item_bias = torch.from_numpy(user_bias), torch.from_numpy(item_bias)
        residuals = fit.ratings - (context.global_mean + user_bias[fit.users] + item_bias[fit.items])
        self.residuals = user_rows(fit, residuals)
        similarity = (
            state["similarity"] if state else pearson_baseline_similarity(context, residuals, self.shrinkage)
        )
        self.similarity = torch.from_numpy(similarity)

    def state(self) -> dict[str, np.ndarray]:
        return {"similarity": self.similarity.numpy()}

    def rate(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """float64, as fitted (callers cast)."""
        means = rated_film_means(
            self.residuals,
            users,
            items,
            lambda films: self.similarity[films],
            lambda films: self.similarity[:, films],
            self.k,
            0.0,
        )
        user_bias = self.user_bias[users]
        if items is None:
            return self.mean + user_bias[:, None] + self.item_bias[None, :] + means
        return self.mean + user_bias + self.item_bias[items] + means
