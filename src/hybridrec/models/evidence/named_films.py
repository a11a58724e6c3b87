"""The films a new user names, and the films most like them: a seed history from the text.

Memory: nothing of its own beyond the towers' film vectors; a query costs its named films x films.
"""

from __future__ import annotations

import torch

from hybridrec.models.evidence.base import LISTS, TEXT, EvidenceTerm, RecommenderView, TextUsers


class NamedFilms(EvidenceTerm):
    """The members' mean cosine of every film to the films the text names liking them, summed, minus
    the same for the films it names disliking them; full confidence for a text that names a film,
    none for one that names none."""

    audience, kind = TEXT, LISTS

    def attach(self, view: RecommenderView) -> None:
        self.vectors = view.towers.item_vectors().float()

    def _similar(self, named: list) -> torch.Tensor:
        out = torch.zeros(len(named), len(self.vectors))
        for row, films in enumerate(named):
            if len(films):
                out[row] = (self.vectors[torch.as_tensor(films)] @ self.vectors.T).sum(0)
        return out

    def score(self, users: TextUsers) -> torch.Tensor:
        return self._similar(users.query.named) - self._similar(users.query.named_disliked)

    def confidence(self, users: TextUsers) -> torch.Tensor:
        query = users.query
        return torch.tensor(
            [float(len(a) + len(b) > 0) for a, b in zip(query.named, query.named_disliked, strict=True)]
        )
