"""Rating and top-N metrics, as plain functions on arrays (see ../shared/eval-protocol.md).

Top-N conventions: every catalog item gets a score, excluded items get -inf, items are ordered by
score descending with ties going to the lower item index (a stable sort of -score).
"""

from __future__ import annotations

import numpy as np

RANKING_METRICS = ("ndcg", "recall", "hit_rate", "precision")


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
