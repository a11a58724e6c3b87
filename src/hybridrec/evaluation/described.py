"""Protocol C's evaluation: every described user once per phrasing, each phrasing a user of its own.

The model reads each description (or, ``read_text=False``, only the user's demographic profile, as
in protocol B); the told films are left out of the lists; the rest of the user's ratings are scored.
Metrics pool the phrasings (``test/...``) and are given per phrasing too (``test/<style>/...``).
Memory: each phrasing's described users x films, read once (the protocol needs demographics, so it
runs on 100K and 1M alone: at most 6,040 users x 3,706 films).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, PREDICTION_COL, RATING_COL, USER_COL
from hybridrec.data.context import Interactions
from hybridrec.data.datamodule import MovieLensDataModule
from hybridrec.metrics import split_metrics
from hybridrec.models.base import Recommender


class _PerPhrasing:
    """A model's answers for each (user, phrasing) as index-level scores of one user per row."""

    def __init__(self, model: Recommender, users: np.ndarray, queries: list, read_text: bool):
        self.model, self.users, self.read_text = model, users, read_text
        self.predicts_ratings = model.predicts_ratings
        if read_text:
            answers = [model.text_user_scores(query) for query in queries]
            self.ratings = np.concatenate([a[0] for a in answers])
            self.ranks = np.concatenate([a[1] for a in answers])

    def predict(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.read_text:
            return self.ratings[rows, items]
        return self.model.predict(self.users[rows], items)

    def rank_scores(self, rows: np.ndarray) -> np.ndarray:
        return self.ranks[rows] if self.read_text else self.model.rank_scores(self.users[rows])


def _per_row(interactions: Interactions, row_of: np.ndarray, n_rows: int) -> Interactions:
    """The interactions of each user repeated for each row (phrasing) the user has."""
    users, items, ratings = [], [], []
    for rows in row_of:  # one array per phrasing: row of each user, -1 where the user has none
        keep = rows[interactions.users] >= 0
        users.append(rows[interactions.users[keep]])
        items.append(interactions.items[keep])
        ratings.append(interactions.ratings[keep])
    return Interactions(
        np.concatenate(users), np.concatenate(items), np.concatenate(ratings), n_rows, interactions.n_items
    )


def described_metrics(
    model: Recommender, dm: MovieLensDataModule, read_text: bool = True
) -> tuple[dict, pd.DataFrame]:
    """Pooled and per-phrasing test metrics of protocol C, and the predictions (with their phrasing)."""
    styles = list(dm.described)
    users = np.concatenate([dm.described[s][0] for s in styles])
    starts = np.cumsum([0] + [len(dm.described[s][0]) for s in styles])
    row_of = []
    for style, start in zip(styles, starts, strict=False):
        rows = np.full(dm.test.n_users, -1)
        rows[dm.described[style][0]] = np.arange(start, start + len(dm.described[style][0]))
        row_of.append(rows)
    answers = _PerPhrasing(model, users, [dm.described[s][1] for s in styles], read_text and model.reads_text)
    test, told = _per_row(dm.test, row_of, len(users)), _per_row(dm.told, row_of, len(users))
    metrics, predictions, _ = split_metrics(answers, told, test, "test")
    for k, style in enumerate(styles):
        only = np.full(len(users), -1)
        only[starts[k] : starts[k + 1]] = np.arange(starts[k], starts[k + 1])
        style_test = _per_row(test, [only], len(users))
        style_told = _per_row(told, [only], len(users))
        style_metrics, _, _ = split_metrics(answers, style_told, style_test, f"test/{style}")
        metrics.update(style_metrics)
    style_of = np.repeat(np.array(styles, dtype=object), np.diff(starts))
    frame = pd.DataFrame(
        {
            USER_COL: dm.data.user_index.to_id(users[test.users]),
            ITEM_COL: dm.data.item_index.to_id(test.items),
            RATING_COL: test.ratings,
            PREDICTION_COL: np.round(predictions, 6),
            "style": style_of[test.users],
        }
    )
    return metrics, frame
