"""What a text user's nearest known users are predicted to rate a film: a dense, smoothed
demographic KNN for the ratings of users known only by text (where the neighbours' own ratings are
sparse). Memory: the known users' rows it rated, kept for the next texts whose neighbours they are
(least recently used out first, at most ``ROW_CACHE_BYTES``); a query rates its neighbours' rows not
kept (a chunk of texts x k users x films at a time)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch

from hybridrec.models.evidence.base import RATINGS, TEXT, EvidenceTerm, RecommenderView, TextUsers

# the known users' rated rows kept between queries (float32: every user of a 100K-sized set, 1,100 of
# a 59,047-film catalog)
ROW_CACHE_BYTES = 1 << 28


class KnownRows:
    """The recommender's rows of known users (by position among them), computed for the users not
    kept and kept up to ``max_bytes``, least recently used out first; safe across threads."""

    def __init__(self, view: RecommenderView, max_bytes: int = ROW_CACHE_BYTES):
        self.view, self.max_bytes = view, max_bytes
        self.rows: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, positions: torch.Tensor) -> torch.Tensor:
        wanted = positions.tolist()
        with self.lock:
            kept = {p: self.rows[p] for p in wanted if p in self.rows}
            for p in kept:
                self.rows.move_to_end(p)
        missing = [p for p in wanted if p not in kept]
        if missing:
            computed = self.view.rate_known_rows(self.view.known_users[torch.tensor(missing)])
            fresh = dict(zip(missing, computed, strict=True))
            kept.update(fresh)
            capacity = self.max_bytes // max(computed[0].nelement() * computed.element_size(), 1)
            with self.lock:
                self.rows.update(fresh)
                while len(self.rows) > capacity:
                    self.rows.popitem(last=False)
        return torch.stack([kept[p] for p in wanted])


class ColdNeighbourRatings(EvidenceTerm):
    """The nearest known users' ratings of every film, as the recommender rates them (towers and the
    known users' rating terms), averaged by similarity; every known user alike when none is similar."""

    audience, kind = TEXT, RATINGS

    def attach(self, view: RecommenderView) -> None:
        self.view = view
        self.known_rows = KnownRows(view)
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
            ratings = self.known_rows(union)
            dense = weights.new_zeros(len(neighbours), len(union))
            dense.scatter_add_(1, position, weights[at : at + chunk])
            rows.append(dense @ ratings)
        out = torch.cat(rows) if rows else weights.new_zeros(0, 0)
        alone = (total <= 0).squeeze(1)
        if alone.any():
            out[alone] = self._mean_of_everyone(len(self.view.known_users))
        return out
