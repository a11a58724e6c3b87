"""How well each film's text matches what a user says they like, and not what they say they
dislike: the language model's own reading of a new user's words, for their lists.

Memory: the films' text embeddings (films x dim); a query costs texts x films.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import LISTS, TEXT, EvidenceTerm, TextUsers


class TextMatch(EvidenceTerm):
    """Cosine of the embedded liking clauses to every film's embedded text, minus ``dislike_weight``
    times that of the disliking clauses. Its confidence says how much taste the text carries: how
    far its ``top`` best-matching films stand out from the catalog, in standard deviations of the
    cosines, from none at ``flat`` to all at ``peaked`` (a text of age and occupation alone is
    flat; "I love horror films" picks out the horror films)."""

    audience, kind = TEXT, LISTS

    def __init__(self, dislike_weight: float, top: int, flat: float, peaked: float):
        if dislike_weight < 0 or top < 1 or not flat < peaked:
            raise ValueError(
                f"need dislike_weight >= 0, top >= 1 and flat < peaked, got {dislike_weight}, {top}, {flat}, {peaked}"
            )
        self.dislike_weight, self.top, self.flat, self.peaked = dislike_weight, top, flat, peaked

    def fit(self, context: FoldContext, state=None) -> None:
        self.films = F.normalize(torch.from_numpy(context.embeddings.item), dim=1)

    def _cosines(self, vectors) -> torch.Tensor:
        return F.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=1) @ self.films.T

    def score(self, users: TextUsers) -> torch.Tensor:
        liked = self._cosines(users.query.liked)
        disliked = self._cosines(users.query.disliked)  # zero vectors: zero cosines
        return liked - self.dislike_weight * disliked

    def confidence(self, users: TextUsers) -> torch.Tensor:
        cosines = self._cosines(users.query.liked)
        best = cosines.topk(min(self.top, cosines.shape[1]), dim=1).values.mean(1)
        lift = (best - cosines.mean(1)) / cosines.std(1).clamp_min(1e-6)
        return ((lift - self.flat) / (self.peaked - self.flat)).clamp(0.0, 1.0)
