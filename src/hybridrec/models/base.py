"""What evaluation, bundles, the inference engine and the API may ask of a model.

Index-level scoring: users and films as contiguous indexes of the data set. Every model rates
(user, film) pairs and scores a user's catalog row; models that read text (``reads_text``) also
answer for users and films known only by an embedded text, and models with towers give film
vectors for explanations. The engine asks these flags, never ``hasattr``.
"""

from __future__ import annotations

import numpy as np

from hybridrec.data.context import FoldContext
from hybridrec.data.queries import TextQuery
from hybridrec.errors import InvalidInputError


class UnsupportedQuery(InvalidInputError):
    """A model was asked something it cannot answer (free text for an ID-only model)."""


class Recommender:
    """The interface; ``predict`` and ``rank_scores`` are required, the rest answer when the flags say so."""

    name: str = "model"
    predicts_ratings: bool = True  # False for ranking-only models (their rating metrics stay empty)
    reads_text: bool = False  # answers text_user_scores and text_item_ratings
    # validation metrics this model reports, any of which ``monitor.metric`` may name
    val_metrics: tuple[str, ...] = ("val/rmse", "val/mae", "val/ndcg@10", "val/recall@10")

    def fit(self, context: FoldContext) -> Recommender:
        """Learn from the fold's fitting ratings (models trained by gradient descent are fitted by the trainer)."""
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Ratings (the data set's scale) of aligned (user, film) pairs."""
        raise NotImplementedError

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        """(users, films) scores: higher means recommend first. A good list is not the list of the
        highest predicted ratings, so this may differ from ``predict``."""
        raise NotImplementedError

    def text_user_scores(self, query: TextQuery) -> tuple[np.ndarray, np.ndarray]:
        """(ratings, ranking scores), each (texts, films), for new users known by their own words."""
        raise UnsupportedQuery("this model cannot read free text (it was trained without content towers)")

    def text_item_ratings(self, content: np.ndarray, users: np.ndarray) -> np.ndarray:
        """(users, texts) predicted ratings of new films known by embedded texts."""
        raise UnsupportedQuery("this model cannot read free text (it was trained without content towers)")

    def item_vectors(self) -> np.ndarray | None:
        """Unit-length film representations whose dot product says how alike two films are; None
        for models without towers (explanations then compare genres)."""
        return None
