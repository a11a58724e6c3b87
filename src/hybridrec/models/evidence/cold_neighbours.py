"""What a text user's nearest known users are predicted to rate a film: a dense, smoothed
demographic KNN for the ratings of users known only by text (where the neighbours' own ratings are
sparse). Memory: nothing of its own; a query rates its neighbours' rows (a chunk of texts x k users
x films at a time)."""

from __future__ import annotations

import torch

from hybridrec.models.evidence.base import RATINGS, TEXT, EvidenceTerm, RecommenderView, TextUsers


class ColdNeighbourRatings(EvidenceTerm):
    """The nearest known users' ratings of every film, as the recommender rates them (towers and the
    known users' rating terms), averaged by similarity; every known user alike when none is similar."""

    audience, kind = TEXT, RATINGS

    def attach(self, view: RecommenderView) -> None:
        self.view = view
        self._everyone: torch.Tensor | None = None

    def _mean_of_everyone(self, n_known: int, chunk: int = 256) -> torch.Tensor:
        """Every known user's ratings, averaged (computed once, only if some text has no neighbour)."""
        if self._everyone is None:
            total = sum(
                self.view.rate_known_rows(self.view.known_users[at : at + chunk]).sum(0)
                for at in range(0, n_known, chunk)
            )
            self._everyone = total / n_known
        return self._everyone

    def rate(self, users: TextUsers, items=None, chunk: int = 256) -> torch.Tensor:
        total = users.weights.sum(1, keepdim=True)
        weights = users.weights / total.clamp_min(1e-12)
        rows = []
        for at in range(0, len(users), chunk):
            neighbours = users.neighbours[at : at + chunk]
            union, position = torch.unique(neighbours, return_inverse=True)
            ratings = self.view.rate_known_rows(self.view.known_users[union])
            dense = weights.new_zeros(len(neighbours), len(union))
            dense.scatter_add_(1, position, weights[at : at + chunk])
            rows.append(dense @ ratings)
        out = torch.cat(rows) if rows else weights.new_zeros(0, 0)
        alone = (total <= 0).squeeze(1)
        if alone.any():
            out[alone] = self._mean_of_everyone(len(self.view.known_users))
        return out
