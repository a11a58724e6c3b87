"""Item-item in closed form (EASE^R, Steck 2019): "people who watched X watched Y", for known users' lists.

Memory: the weights, films² float64 for a catalog of up to ``max_dense_items`` films (fitting inverts
a films x films matrix); above, EASE^R is fitted on the ``max_dense_items`` films most often chosen
(``max_dense_items``² weights) and the other films get no score. Plus one entry per fitting rating
at or above ``min_rating``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import KNOWN, LISTS, EvidenceTerm, SparseRows


def ease_weights(gram: np.ndarray, reg: float) -> np.ndarray:
    """The item-item weights that best rebuild each film's column from the others (zero diagonal,
    L2 ``reg``), from the Gram matrix of the interactions: a user's scores are their row times these."""
    precision = np.linalg.inv(gram + reg * np.eye(gram.shape[0]))
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights


def interaction_gram(users: np.ndarray, films: np.ndarray, n_users: int, n_films: int) -> np.ndarray:
    """films x films: how many users have each pair among the (user, film) interactions."""
    x = sp.csr_matrix((np.ones(len(users)), (users, films)), shape=(n_users, n_films))
    return (x.T @ x).toarray()


def most_chosen(films: np.ndarray, n_films: int, limit: int) -> np.ndarray:
    """The ``limit`` films most often among ``films`` (ties: the lower index), ascending; every film
    of a catalog within the limit."""
    if n_films <= limit:
        return np.arange(n_films)
    counts = np.bincount(films, minlength=n_films)
    return np.sort(np.argsort(-counts, kind="stable")[:limit])


class ItemItem(EvidenceTerm):
    """A known user's list scores: their films rated at or above ``min_rating`` (1: every rating, what
    they chose to see; 4: what they liked) times EASE^R weights with L2 ``reg``, over the catalog or
    its ``max_dense_items`` films most often chosen (the others score 0)."""

    audience, kind = KNOWN, LISTS

    def __init__(self, reg: float, min_rating: float, max_dense_items: int):
        if reg <= 0 or max_dense_items < 1:
            raise ValueError(f"reg and max_dense_items must be > 0, got {reg} and {max_dense_items}")
        self.reg, self.min_rating, self.max_dense_items = reg, min_rating, max_dense_items

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        chosen = fit.ratings >= self.min_rating
        self.n_items = fit.n_items
        films = state["films"] if state else most_chosen(fit.items[chosen], fit.n_items, self.max_dense_items)
        position = np.full(fit.n_items, -1)
        position[films] = np.arange(len(films))
        chosen &= position[fit.items] >= 0
        users, columns = fit.users[chosen], position[fit.items[chosen]]
        self.films, self.position = torch.from_numpy(films), torch.from_numpy(position)
        self.chosen = SparseRows(users, columns, np.ones(len(users)), fit.n_users, len(films))
        self.weights = torch.from_numpy(
            state["weights"]
            if state
            else ease_weights(interaction_gram(users, columns, fit.n_users, len(films)), self.reg)
        )

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights.numpy(), "films": self.films.numpy()}

    def _in_catalog(self, scores: torch.Tensor) -> torch.Tensor:
        """Columns of the fitted films spread over the catalog's (0 for the others)."""
        if len(self.films) == self.n_items:
            return scores
        out = scores.new_zeros(len(scores), self.n_items)
        out[:, self.films] = scores
        return out

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """float64, as fitted (callers cast)."""
        return self._in_catalog(self.chosen.dense(users) @ self.weights)

    def rows(self, films: torch.Tensor) -> torch.Tensor:
        """(len(films), n films) the weights' rows of these films (0 for films outside the fitted ones)."""
        at = self.position[films]
        return self._in_catalog(self.weights[at.clamp_min(0)] * (at >= 0).unsqueeze(1))
