"""Item-item in closed form (EASE^R, Steck 2019): "people who watched X watched Y", for known users' lists.

Memory: films² (the weights, float64) plus one entry per fitting rating at or above ``min_rating``;
fitting inverts a films x films matrix, so the catalog must stay within a dense film-film size.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from hybridrec.data.context import FoldContext, Interactions
from hybridrec.models.evidence.base import KNOWN, LISTS, EvidenceTerm, SparseRows


def ease_weights(gram: np.ndarray, reg: float) -> np.ndarray:
    """The item-item weights that best rebuild each film's column from the others (zero diagonal,
    L2 ``reg``), from the Gram matrix of the interactions: a user's scores are their row times these."""
    precision = np.linalg.inv(gram + reg * np.eye(gram.shape[0]))
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights


def interaction_gram(fit: Interactions, chosen: np.ndarray) -> np.ndarray:
    """films x films: how many users have each pair among their ``chosen`` fitting ratings."""
    x = sp.csr_matrix(
        (np.ones(int(chosen.sum())), (fit.users[chosen], fit.items[chosen])), shape=(fit.n_users, fit.n_items)
    )
    return (x.T @ x).toarray()


class ItemItem(EvidenceTerm):
    """A known user's list scores: their films rated at or above ``min_rating`` (1: every rating, what
    they chose to see; 4: what they liked) times EASE^R weights with L2 ``reg``."""

    audience, kind = KNOWN, LISTS

    def __init__(self, reg: float, min_rating: float):
        if reg <= 0:
            raise ValueError(f"reg must be > 0, got {reg}")
        self.reg, self.min_rating = reg, min_rating

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        chosen = fit.ratings >= self.min_rating
        self.chosen = SparseRows(
            fit.users[chosen], fit.items[chosen], np.ones(int(chosen.sum())), fit.n_users, fit.n_items
        )
        self.weights = torch.from_numpy(
            state["weights"] if state else ease_weights(interaction_gram(fit, chosen), self.reg)
        )

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights.numpy()}

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """float64, as fitted (callers cast)."""
        return self.chosen.dense(users) @ self.weights
