"""Neighbourhoods: item-item in closed form (EASE^R, Steck 2019) and user-user by profile text.

Used by the EASE baseline and by the hybrid model's ranking, which adds this full-rank evidence to
its low-rank towers: item-item for users with a history, and for users known only by text, what the
users whose profile texts are nearest to theirs liked. Built from a fold's fitting ratings only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def text_neighbour_scores(
    texts: torch.Tensor, known_texts: torch.Tensor, known_liked: torch.Tensor, k: int
) -> torch.Tensor:
    """Items liked by the ``k`` known users whose text embeddings are nearest (cosine) to each of
    ``texts``, weighted by that similarity: (n_texts, n_items)."""
    similarity = F.normalize(texts, dim=1, eps=1e-8) @ F.normalize(known_texts, dim=1, eps=1e-8).T
    nearest, rows = similarity.topk(min(k, similarity.shape[1]), dim=1)
    weights = torch.zeros_like(similarity).scatter_(1, rows, nearest.clamp_min(0.0))
    return weights @ known_liked
