"""Who a user known only by a text resembles: the known users whose demographic texts are nearest.

Shared by the terms that serve users known only by text. Memory: one key per known user (the text
embedding, or members·dim in the towers' space); a query costs its texts x known users, in chunks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hybridrec.data.context import FoldContext
from hybridrec.data.queries import TextQuery
from hybridrec.models.evidence.base import RecommenderView, TextUsers

SPACES = ("text", "towers")


class NearestKnownUsers:
    """The ``k`` known users nearest to each text by cosine: between the text embeddings (``space:
    text``), or between what the trained towers make of the texts alone (``towers``: the members'
    unit ranking vectors side by side, a space where age or occupation weigh what they matter to a
    list). Each neighbour weighs its similarity (negative ones count 0)."""

    def __init__(self, k: int, space: str):
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k, self.space = k, space

    def fit(self, context: FoldContext) -> None:
        """The known users (with fitting ratings), in index order."""
        self.known = torch.from_numpy(np.flatnonzero(context.user_known))

    def attach(self, view: RecommenderView) -> None:
        """Their keys: from their demographic texts, as the towers hold them."""
        self.towers = view.towers
        self.keys = self._keys(view.towers.user_demographic[self.known])

    def _keys(self, texts: torch.Tensor) -> torch.Tensor:
        return self.towers.text_keys(texts) if self.space == "towers" else texts

    def find(self, query: TextQuery, chunk: int = 1024) -> TextUsers:
        """The nearest known users of each text of ``query`` (by its whole text's embedding)."""
        texts = torch.from_numpy(query.vectors)
        k = min(self.k, len(self.keys))
        known = F.normalize(self.keys, dim=1, eps=1e-8)
        neighbours, weights = [], []
        for at in range(0, len(texts), chunk):
            keys = F.normalize(self._keys(texts[at : at + chunk]), dim=1, eps=1e-8)
            nearest, rows = (keys @ known.T).topk(k, dim=1)
            neighbours.append(rows)
            weights.append(nearest.clamp_min(0.0))
        if not neighbours:
            return TextUsers(query, torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k))
        return TextUsers(query, torch.cat(neighbours), torch.cat(weights))
