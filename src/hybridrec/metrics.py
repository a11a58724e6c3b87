"""Metrics: their keys (one spelling), rating and top-N metrics as plain functions on arrays, and
the top-N protocols A and B of ../shared/eval-protocol.md for any model that scores a catalog row.

Top-N conventions: every catalog item gets a score, excluded items get -inf, items are ordered by
score descending with ties going to the lower item index (a stable sort of -score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from hybridrec.constants import RELEVANCE_THRESHOLD, TOP_K
from hybridrec.data.context import Interactions

RANKING_METRICS = ("ndcg", "recall", "hit_rate", "precision")


def metric_key(stage: str, name: str) -> str:
    """Every metric's key: ``<stage>/<name>`` (``train/loss``, ``val/rmse``, ``test/ndcg@10``); a CV
    summary adds ``_mean`` and ``_std``."""
    return f"{stage}/{name}"


TRAIN_LOSS = metric_key("train", "loss")
VAL_LOSS = metric_key("val", "loss")


def rating_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if predicted.shape != actual.shape or predicted.size == 0:
        raise ValueError(f"need two equal, non-empty arrays, got {predicted.shape} and {actual.shape}")
    error = predicted - actual
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the ``k`` best items per row; ties go to the lower index."""
    scores = np.atleast_2d(scores)
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k]


def hits_at_k(top: np.ndarray, relevant: list[set[int]] | np.ndarray) -> np.ndarray:
    """h[u, p] = 1 when the item at position p of user u's list is relevant."""
    if isinstance(relevant, np.ndarray):  # a (n_users, n_items) boolean matrix
        return np.take_along_axis(relevant, top, axis=1).astype(np.float64)
    return np.array(
        [[item in rel for item in row] for row, rel in zip(top, relevant, strict=True)], dtype=np.float64
    )


def ranking_metrics_per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """NDCG@k, Recall@k, HitRate@k and Precision@k for each user (binary relevance)."""
    n_relevant = np.asarray(n_relevant)
    if (n_relevant <= 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts[: hits.shape[1]]).sum(axis=1)
    ideal_cumulative = np.cumsum(discounts)
    idcg = ideal_cumulative[np.minimum(n_relevant, k) - 1]
    found = hits[:, :k].sum(axis=1)
    return {
        "ndcg": dcg / idcg,
        "recall": found / np.minimum(n_relevant, k),
        "hit_rate": (found > 0).astype(np.float64),
        "precision": found / k,
    }


def list_diversity(top: np.ndarray, n_catalog: int) -> dict[str, float]:
    """Catalog coverage of the union of the lists, and how many distinct ordered lists there are."""
    return {
        "coverage": len(np.unique(top)) / n_catalog,
        "distinct_lists": float(len({tuple(row) for row in top.tolist()})),
    }


class ScoresCatalog(Protocol):
    def rank_scores(self, users: np.ndarray) -> np.ndarray: ...


@dataclass
class RankingResult:
    k: int
    users: np.ndarray  # evaluated user indexes
    top: np.ndarray  # (n_users, k) item indexes
    per_user: dict[str, np.ndarray]
    summary: dict[str, float]  # "ndcg@10", "recall@10", …, "coverage@10", "distinct_lists", "users"


def evaluate_ranking(
    model: ScoresCatalog,
    train: Interactions,
    test: Interactions,
    k: int = TOP_K,
    threshold: float = RELEVANCE_THRESHOLD,
    batch_users: int = 512,
) -> RankingResult:
    """Score the whole catalog for every user with a liked test item; items seen in ``train`` are excluded.
    Memory: a batch of users x items at a time, and one entry per train and test pair.

    Protocol A passes the fold's whole training part (u{k}.base) as ``train``; protocol B passes the
    same, which holds no rating of the cold users, so nothing is excluded for them.
    """
    liked = test.ratings >= threshold
    users = np.unique(test.users[liked])
    row_of = np.full(test.n_users, -1)
    row_of[users] = np.arange(len(users))
    relevant = _user_rows(row_of, len(users), test.users[liked], test.items[liked], test.n_items)
    seen = _user_rows(row_of, len(users), train.users, train.items, test.n_items)

    tops, hits = [], []
    for start in range(0, len(users), batch_users):
        rows = slice(start, start + batch_users)
        scores = np.asarray(model.rank_scores(users[rows]), dtype=np.float64)
        scores[seen[rows].toarray()] = -np.inf
        tops.append(top_k(scores, k))
        hits.append(hits_at_k(tops[-1], relevant[rows].toarray()))
    top = np.concatenate(tops) if tops else np.zeros((0, k), dtype=np.int64)
    hits = np.concatenate(hits) if hits else np.zeros((0, k))
    per_user = ranking_metrics_per_user(hits, relevant.getnnz(axis=1), k)
    summary = {f"{name}@{k}": float(values.mean()) for name, values in per_user.items()}
    diversity = list_diversity(top, test.n_items)
    summary[f"coverage@{k}"] = diversity["coverage"]
    summary["distinct_lists"] = diversity["distinct_lists"]
    summary["users"] = float(len(users))
    return RankingResult(k=k, users=users, top=top, per_user=per_user, summary=summary)


def _user_rows(
    row_of: np.ndarray, n_rows: int, users: np.ndarray, items: np.ndarray, n_items: int
) -> sp.csr_matrix:
    """(n_rows, items) sparse 0/1: the pairs of the evaluated users (``row_of``: a user's row, -1
    for the others), read a batch of rows at a time; no users x items matrix is built."""
    keep = row_of[users] >= 0
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (row_of[users[keep]], items[keep])), shape=(n_rows, n_items)
    )


class Scores(ScoresCatalog, Protocol):
    predicts_ratings: bool

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...


def split_metrics(
    model: Scores, seen: Interactions, split: Interactions, stage: str
) -> tuple[dict, np.ndarray, RankingResult]:
    """``<stage>/rmse``, ``<stage>/mae`` (models that predict ratings) and the top-N metrics of the
    model on ``split`` (films of ``seen`` excluded from lists), its predictions (NaN for
    ranking-only models), and the lists with their per-user metrics."""
    if model.predicts_ratings:
        predictions = model.predict(split.users, split.items)
        rating = rating_metrics(predictions, split.ratings)
    else:
        predictions = np.full(len(split), np.nan)
        rating = {"rmse": float("nan"), "mae": float("nan")}
    ranking = evaluate_ranking(model, seen, split)
    metrics = {metric_key(stage, name): value for name, value in {**rating, **ranking.summary}.items()}
    return metrics, predictions, ranking
