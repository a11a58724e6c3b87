"""The genres a new user asks for, and those they refuse, read by the language model: each film
lifted by the genres its text asks for and lowered by those it refuses, for their lists.

The genres are the catalog's own, each read by its name ("<genre> films") and its glossary phrases
embedded (``data.genre_glosses``; ``data.context._genre_vectors``); a text asks for a genre as much as
its embedding is closer to that genre than to the average genre. No keyword list: "scary movies" asks
for Horror because the language model puts it near "frightening, creepy, gory suspense meant to
terrify". Memory: genres x
dim, and films x genres; a query costs texts x genres x films.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import LISTS, TEXT, EvidenceTerm, TextUsers


class AskedGenres(EvidenceTerm):
    """Per film: the sum, over its genres, of how much the liking clauses ask for each genre (the
    cosine to the genre above the mean over genres, less ``margin``, at least 0), minus
    ``dislike_weight`` times the same for the disliking clauses. Confidence: from none when the
    text's best genre stands ``flat`` above the mean, to all at ``sure``."""

    audience, kind = TEXT, LISTS

    def __init__(self, margin: float, dislike_weight: float, flat: float, sure: float):
        if not flat < sure or dislike_weight < 0:
            raise ValueError(
                f"need flat < sure and dislike_weight >= 0, got {flat}, {sure}, {dislike_weight}"
            )
        self.margin, self.dislike_weight, self.flat, self.sure = margin, dislike_weight, flat, sure

    def fit(self, context: FoldContext, state=None) -> None:
        embeddings = context.embeddings
        self.n_items = context.n_items
        if embeddings is None:  # a model that reads no text (ids_only): nothing is ever asked
            self.labels = None
            return
        self.labels = F.normalize(torch.from_numpy(embeddings.genres), dim=1)
        self.films = torch.from_numpy(context.genre_matrix(list(embeddings.genre_names)))  # films x genres

    def _lift(self, vectors) -> torch.Tensor:
        """(texts, genres) each genre's cosine to the text above the mean over genres."""
        cosines = F.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=1) @ self.labels.T
        return cosines - cosines.mean(1, keepdim=True)

    def asked(self, vectors) -> torch.Tensor:
        """(texts, genres) how much each text asks for each genre."""
        return (self._lift(vectors) - self.margin).clamp_min(0.0)

    def score(self, users: TextUsers) -> torch.Tensor:
        query = users.query
        if self.labels is None:
            return torch.zeros(len(query), self.n_items)
        liked, disliked = self.asked(query.liked), self.asked(query.disliked)
        refused = torch.from_numpy(np.abs(query.disliked).sum(1) > 0).float().unsqueeze(1)
        return (liked - self.dislike_weight * refused * disliked) @ self.films.T

    def confidence(self, users: TextUsers) -> torch.Tensor:
        if self.labels is None:
            return torch.zeros(len(users.query))
        best = self._lift(users.query.liked).max(1).values
        return ((best - self.flat) / (self.sure - self.flat)).clamp(0.0, 1.0)
