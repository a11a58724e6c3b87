"""A new user's expected rating of a film: its baseline, moved toward how people like them rated it.

For the ratings of users known only by text: age, gender and occupation nearly single out a training
user, so the towers' text-only rating is noisy, and a film's baseline errs less. Memory: one value
per film, plus one deviation per fitting rating of a known user.
"""

from __future__ import annotations

import numpy as np
import torch

from hybridrec.data.context import FoldContext
from hybridrec.models.evidence.base import RATINGS, TEXT, EvidenceTerm, SparseRows, TextUsers
from hybridrec.models.evidence.biases import fit_biases


def item_baseline_ratings(context: FoldContext, reg_user: float, reg_item: float) -> np.ndarray:
    """``μ + b_i + E[b_u]`` per film: the KNN's baseline with the user bias of an average *rating*
    rather than 0. Raters of many films rate lower (so b_u averages below 0 over the ratings), and
    every one of a new user's ratings counts in their error, as every rating counts in training."""
    user_bias, item_bias = fit_biases(context, reg_user, reg_item)
    return context.global_mean + item_bias + user_bias[context.fit.users].mean()


class ColdBaseline(EvidenceTerm):
    """Each film's baseline ``μ + b_i + E[b_u]`` (biases regularised by ``reg_user``, ``reg_item``
    pseudo-ratings); with ``neighbour_shrinkage`` (not None), moved by the similarity-weighted sum of
    the nearest known users' deviations from it, over the sum of their weights plus that many
    pseudo-ratings at the baseline."""

    audience, kind = TEXT, RATINGS

    def __init__(self, neighbour_shrinkage: float | None, reg_user: float, reg_item: float):
        if neighbour_shrinkage is not None and neighbour_shrinkage < 0:
            raise ValueError(f"neighbour_shrinkage must be >= 0 (or None), got {neighbour_shrinkage}")
        self.neighbour_shrinkage, self.reg_user, self.reg_item = neighbour_shrinkage, reg_user, reg_item

    def fit(self, context: FoldContext, state=None) -> None:
        fit = context.fit
        baseline = item_baseline_ratings(context, self.reg_user, self.reg_item)
        self.baseline = torch.from_numpy(baseline).float()
        deviations = (fit.ratings - baseline[fit.items]).astype(np.float32)
        position = np.cumsum(context.user_known) - 1  # a known user's row: their rank among known users
        shape = (int(context.user_known.sum()), context.n_items)
        self.deviations = SparseRows(position[fit.users], fit.items, deviations, *shape)
        self.rated = SparseRows(position[fit.users], fit.items, np.ones(len(fit), np.float32), *shape)

    def rate(self, users: TextUsers, items=None) -> torch.Tensor:
        baselines = self.baseline.expand(len(users), -1)
        if self.neighbour_shrinkage is None:
            return baselines
        support = self.rated.weighted_sum(users.neighbours, users.weights) + self.neighbour_shrinkage
        moved = self.deviations.weighted_sum(users.neighbours, users.weights) / support.clamp_min(1e-12)
        return baselines + moved
