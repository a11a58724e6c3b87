"""What evaluation asks of every model, neural or not: ratings for pairs and scores for ranking."""

from __future__ import annotations

import numpy as np

from hybridrec.data.context import FoldContext


class Recommender:
    """Index-level scoring (users and items as contiguous indexes of the data set).

    ``predict`` gives ratings on the 1..5 scale for aligned (user, item) pairs; ``rank_scores`` gives,
    for each user, a score per catalog item where higher means "recommend first". They may differ: a
    good list is not the list of the highest predicted ratings.
    """

    name: str = "model"
    # validation metrics this model reports, any of which ``monitor.metric`` may name
    val_metrics: tuple[str, ...] = ("val/rmse", "val/mae", "val/ndcg@10", "val/recall@10")
    predicts_ratings: bool = True  # False for ranking-only models (their rating metrics stay empty)

    def fit(self, context: FoldContext) -> Recommender:
        """Learn from the fold's fitting ratings (models trained by Lightning are fitted by its Trainer)."""
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError
