"""Metrics against hand-computed values, the protocol's conventions, and torchmetrics as a cross-check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.retrieval import (
    RetrievalHitRate,
    RetrievalNormalizedDCG,
    RetrievalPrecision,
    RetrievalRecall,
)

from hybridrec.data.context import Interactions
from hybridrec.metrics import (
    evaluate_ranking,
    hits_at_k,
    list_diversity,
    ranking_metrics_per_user,
    rating_metrics,
    top_k,
)
from hybridrec.models.base import Recommender


def test_rating_metrics_by_hand():
    metrics = rating_metrics(np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0]))
    assert metrics["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert metrics["mae"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        rating_metrics(np.array([]), np.array([]))


def test_top_k_breaks_ties_towards_the_lower_index():
    scores = np.array([[1.0, 3.0, 3.0, 0.0, -np.inf]])
    assert top_k(scores, 4).tolist() == [[1, 2, 0, 3]]
    assert top_k(scores, 10).shape == (1, 5)


def test_ranking_metrics_by_hand():
    # list: items 0..9; relevant: items 1 and 12 (one found at position 2, one never listed)
    top = np.arange(10)[None, :]
    hits = hits_at_k(top, [{1, 12}])
    per_user = ranking_metrics_per_user(hits, np.array([2]), k=10)
    idcg = 1 + 1 / math.log2(3)
    assert per_user["ndcg"][0] == pytest.approx((1 / math.log2(3)) / idcg)
    assert per_user["recall"][0] == pytest.approx(0.5)
    assert per_user["hit_rate"][0] == 1.0
    assert per_user["precision"][0] == pytest.approx(0.1)


def test_recall_divides_by_at_most_k():
    top = np.arange(10)[None, :]
    relevant = [set(range(0, 30, 2))]  # 15 relevant, 5 of them in the list
    per_user = ranking_metrics_per_user(hits_at_k(top, relevant), np.array([15]), k=10)
    assert per_user["recall"][0] == pytest.approx(5 / 10)
    ideal = sum(1 / math.log2(p + 1) for p in range(1, 11))
    assert per_user["ndcg"][0] == pytest.approx(sum(1 / math.log2(p + 1) for p in (1, 3, 5, 7, 9)) / ideal)


def test_list_diversity():
    top = np.array([[0, 1], [1, 0], [0, 1]])
    assert list_diversity(top, n_catalog=4) == {"coverage": 0.5, "distinct_lists": 2.0}


def test_metrics_agree_with_torchmetrics():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 50, 10
    scores = rng.normal(size=(n_users, n_items))  # continuous: no ties
    relevant = rng.random((n_users, n_items)) < 0.1
    relevant[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    top = top_k(scores, k)
    ours = ranking_metrics_per_user(hits_at_k(top, relevant), relevant.sum(1), k)
    indexes = torch.arange(n_users).repeat_interleave(n_items)
    preds, target = torch.tensor(scores).flatten(), torch.tensor(relevant).flatten()
    assert ours["ndcg"].mean() == pytest.approx(
        RetrievalNormalizedDCG(top_k=k)(preds, target, indexes).item(), abs=1e-6
    )
    assert ours["hit_rate"].mean() == pytest.approx(
        RetrievalHitRate(top_k=k)(preds, target, indexes).item(), abs=1e-6
    )
    assert ours["precision"].mean() == pytest.approx(
        RetrievalPrecision(top_k=k)(preds, target, indexes).item(), abs=1e-6
    )
    # torchmetrics' recall divides by |R|; ours by min(k, |R|): equal where |R| <= k
    small = relevant.sum(1) <= k
    theirs = RetrievalRecall(top_k=k)(
        preds[np.repeat(small, n_items)],
        target[np.repeat(small, n_items)],
        indexes[np.repeat(small, n_items)],
    )
    assert ours["recall"][small].mean() == pytest.approx(theirs.item(), abs=1e-6)


class FixedScores(Recommender):
    def __init__(self, scores):
        self.scores = scores

    def rank_scores(self, users):
        return self.scores[users]


def test_evaluate_ranking_excludes_seen_items_and_skips_users_without_liked_items():
    n_users, n_items = 3, 6
    scores = np.tile(np.arange(n_items, 0, -1, dtype=float), (n_users, 1))  # everyone prefers item 0, 1, 2 …
    train = Interactions(
        np.array([0, 0]), np.array([0, 1]), np.array([5.0, 5.0], dtype=np.float32), n_users, n_items
    )
    test = Interactions(
        np.array([0, 1, 2]),
        np.array([2, 5, 0]),
        np.array([4.0, 5.0, 2.0], dtype=np.float32),
        n_users,
        n_items,
    )
    result = evaluate_ranking(FixedScores(scores), train, test, k=2)
    assert result.users.tolist() == [0, 1]  # user 2 liked nothing in the test part
    assert result.top.tolist() == [[2, 3], [0, 1]]  # user 0's seen items 0 and 1 are excluded
    assert result.per_user["hit_rate"].tolist() == [1.0, 0.0]
    assert result.summary["ndcg@2"] == pytest.approx(0.5)
    assert result.summary["users"] == 2
