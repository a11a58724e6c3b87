"""The top-N protocols A (warm) and B (cold users) of ../shared/eval-protocol.md, for any Recommender."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridrec.constants import RELEVANCE_THRESHOLD, TOP_K
from hybridrec.data.context import Interactions
from hybridrec.evaluation.metrics import hits_at_k, list_diversity, ranking_metrics_per_user, top_k
from hybridrec.models.base import Recommender


@dataclass
class RankingResult:
    k: int
    users: np.ndarray  # evaluated user indexes
    top: np.ndarray  # (n_users, k) item indexes
    per_user: dict[str, np.ndarray]
    summary: dict[str, float]  # "ndcg@10", "recall@10", …, "coverage@10", "distinct_lists", "users"


def evaluate_ranking(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    k: int = TOP_K,
    threshold: float = RELEVANCE_THRESHOLD,
    batch_users: int = 512,
) -> RankingResult:
    """Score the whole catalog for every user with a liked test item; items seen in ``train`` are excluded.

    Protocol A passes the fold's whole training part (u{k}.base) as ``train``; protocol B passes the
    same, which holds no rating of the cold users, so nothing is excluded for them.
    """
    liked = test.ratings >= threshold
    users = np.unique(test.users[liked])
    relevant = np.zeros((len(users), test.n_items), dtype=bool)
    row_of = np.full(test.n_users, -1)
    row_of[users] = np.arange(len(users))
    relevant[row_of[test.users[liked]], test.items[liked]] = True
    seen = np.zeros_like(relevant)
    in_eval = row_of[train.users] >= 0
    seen[row_of[train.users[in_eval]], train.items[in_eval]] = True

    tops = []
    for start in range(0, len(users), batch_users):
        rows = slice(start, start + batch_users)
        scores = np.asarray(model.rank_scores(users[rows]), dtype=np.float64)
        scores[seen[rows]] = -np.inf
        tops.append(top_k(scores, k))
    top = np.concatenate(tops) if tops else np.zeros((0, k), dtype=np.int64)
    per_user = ranking_metrics_per_user(hits_at_k(top, relevant), relevant.sum(axis=1), k)
    summary = {f"{name}@{k}": float(values.mean()) for name, values in per_user.items()}
    diversity = list_diversity(top, test.n_items)
    summary[f"coverage@{k}"] = diversity["coverage"]
    summary["distinct_lists"] = diversity["distinct_lists"]
    summary["users"] = float(len(users))
    return RankingResult(k=k, users=users, top=top, per_user=per_user, summary=summary)
