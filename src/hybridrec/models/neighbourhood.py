"""Item-item neighbourhoods in closed form (EASE^R, Steck 2019).

Used by the EASE baseline and by the hybrid model's ranking, which adds this full-rank item-item
signal to its low-rank towers. Built from a fold's fitting ratings only.
"""

from __future__ import annotations

import numpy as np

from hybridrec.constants import RELEVANCE_THRESHOLD
from hybridrec.data.context import FoldContext


def liked_matrix(context: FoldContext, threshold: float = RELEVANCE_THRESHOLD) -> np.ndarray:
    """(n_users, n_items) 0/1 matrix of the fitting ratings at or above ``threshold``."""
    fit = context.fit
    liked = fit.ratings >= threshold
    x = np.zeros((context.n_users, context.n_items))
    x[fit.users[liked], fit.items[liked]] = 1.0
    return x


def ease_weights(interactions: np.ndarray, reg: float) -> np.ndarray:
    """The item-item weights that best rebuild each item's column from the others (zero diagonal,
    L2 ``reg``): a user's scores are their interaction row times these weights."""
    gram = interactions.T @ interactions + reg * np.eye(interactions.shape[1])
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights
