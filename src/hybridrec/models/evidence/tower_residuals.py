"""The towers' own errors on the films most like this one: where the trained towers misjudge a
user's films, they misjudge the films most like them alike (a KNN over the towers' residuals).

Memory: one error per fitting rating, plus the films' similarity: the members' rating vectors
(films x members·dim; films² float32 when the catalog is within ``max_dense_items``), or, in
``ratings`` space, the KNN's Pearson similarity (films² float32 within ``max_dense_items``; above,
films x ``neighbours``).
"""

from __future__ import annotations

import numpy as np
import torch

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import (
    KNOWN,
    RATINGS,
    EvidenceTerm,
    FilmSimilarity,
    RecommenderView,
    rated_film_means,
    user_rows,
)
from hybridrec.models.evidence.biases import fit_biases
from hybridrec.models.evidence.item_knn import pearson_baseline_rows

SPACES = ("towers", "ratings")


class TowerResiduals(EvidenceTerm):
    """Per (user, film): the similarity-weighted mean of the towers' errors (fitting rating minus the
    towers' rating) on the ``k`` films most like it among those the user rated, over the weights'
    sum plus ``shrinkage``. "Most like": the members' mean cosine of the films' rating vectors
    (``space: towers``: what the towers treat as alike), or the KNN's shrunk Pearson similarity of
    their ratings (``ratings``; ``similarity_shrinkage``, biases regularised by ``reg_user``,
    ``reg_item``), which only sees users who rated both. Above ``max_dense_items`` films, the towers'
    similarity rows are computed when asked, and the ratings' are each film's ``neighbours`` most
    similar films."""

    audience, kind = KNOWN, RATINGS

    def __init__(
        self,
        k: int,
        shrinkage: float,
        space: str,
        similarity_shrinkage: float,
        reg_user: float,
        reg_item: float,
        max_dense_items: int,
        neighbours: int,
    ):
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        if k < 1 or shrinkage < 0 or neighbours < k:
            raise ValueError(
                f"need 1 <= k <= neighbours and shrinkage >= 0, got {k}, {neighbours}, {shrinkage}"
            )
        self.k, self.shrinkage, self.space = k, shrinkage, space
        self.similarity_shrinkage, self.reg_user, self.reg_item = similarity_shrinkage, reg_user, reg_item
        self.max_dense_items, self.neighbours = max_dense_items, neighbours

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        self.users, self.items = torch.from_numpy(fit.users), torch.from_numpy(fit.items)
        self.ratings = torch.tensor(fit.ratings)
        self.rated = user_rows(fit, np.arange(len(fit)))  # values: positions in the fitting ratings
        self.similarity = None
        if self.space == "ratings":
            if state:
                self.similarity = FilmSimilarity.from_state(state, context.n_items, np.float32)
            else:
                user_bias, item_bias = fit_biases(context, self.reg_user, self.reg_item)
                baseline = context.global_mean + user_bias[fit.users] + item_bias[fit.items]
                self.similarity = FilmSimilarity.of(
                    pearson_baseline_rows(context, fit.ratings - baseline, self.similarity_shrinkage),
                    context.n_items,
                    self.max_dense_items,
                    self.neighbours,
                    np.float32,
                )

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.similarity is None else self.similarity.state()

    def attach(self, view: RecommenderView) -> None:
        errors = self.ratings - view.towers.rate(self.users, self.items)
        self.errors = errors[self.rated.values]  # in the sparse rows' entry order
        if self.space == "ratings":
            self._rows, self._columns = self.similarity.rows, self.similarity.columns
        elif view.towers.n_items <= self.max_dense_items:
            vectors = view.towers.item_rating_vectors()
            similarity = (vectors @ vectors.T).fill_diagonal_(0.0)  # a film is not its own neighbour
            self._rows = lambda films: similarity[films]
            self._columns = lambda films: similarity[:, films]
        else:  # the rows asked for, when asked
            vectors = view.towers.item_rating_vectors()
            self._rows = lambda films: (vectors[films] @ vectors.T).scatter_(1, films[:, None], 0.0)
            self._columns = lambda films: (vectors @ vectors[films].T).scatter_(0, films[None, :], 0.0)

    def rate(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        return rated_film_means(
            self.rated,
            users,
            items,
            self._rows,
            self._columns,
            self.k,
            self.shrinkage,
            values=self.errors,
        )
