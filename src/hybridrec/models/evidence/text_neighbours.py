"""The films of a text user's nearest known users: what people like them chose (or liked), for
the lists of users known only by text. Memory: one entry per fitting rating of a known user."""

from __future__ import annotations

import numpy as np
import torch

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import LISTS, TEXT, EvidenceTerm, SparseRows, TextUsers


class TextNeighbours(EvidenceTerm):
    """The similarity-weighted sum of the nearest known users' films rated at or above
    ``min_rating``, each neighbour's films counting ``1 / |their ratings| ** damping`` (so raters
    of hundreds of films do not outvote the rest)."""

    audience, kind = TEXT, LISTS

    def __init__(self, min_rating: float, damping: float):
        if damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        self.min_rating, self.damping = min_rating, damping

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        counts = np.bincount(fit.users, minlength=context.n_users)
        vote = (1.0 / np.maximum(counts, 1) ** self.damping).astype(np.float32)
        position = np.cumsum(context.user_known) - 1  # a known user's row: their rank among known users
        chosen = fit.ratings >= self.min_rating
        users = fit.users[chosen]
        self.films = SparseRows(
            position[users], fit.items[chosen], vote[users], int(context.user_known.sum()), context.n_items
        )

    def score(self, users: TextUsers) -> torch.Tensor:
        return self.films.weighted_sum(users.neighbours, users.weights)
