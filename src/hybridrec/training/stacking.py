"""Blend weights learned per fold (stacking), on data held out of the fold's training part.

The towers and the terms are fitted on the rest of the training part; on the held-out part, the
rating channels' weights are non-negative least squares over the parts' ratings (scipy's NNLS), and
each list channel's term weights the point of a grid with the best NDCG@10. Known users' channels
are chosen on their held-out ratings; text users' channels on the whole users held out (known to
the model by their text alone). The test part of the fold is never read.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.optimize import nnls

from hybridrec.config import instantiate
from hybridrec.data.context import Interactions
from hybridrec.data.datamodule import MovieLensDataModule
from hybridrec.metrics import evaluate_ranking
from hybridrec.models.blend import TOWERS, BlendWeights
from hybridrec.models.evidence.base import standardise
from hybridrec.models.recommender import HybridRecommender, fit_evidence

log = logging.getLogger(__name__)

LIST_BATCH = 1024  # held-out users whose lists are scored at once


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Python's, numpy's and torch's random states as they were before the block."""
    python, generator = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(python)
    np.random.set_state(generator)


class _Scores:
    """Precomputed catalog rows as a model that ``evaluate_ranking`` can read."""

    def __init__(self, users: np.ndarray, scores: torch.Tensor, n_users: int):
        self.row = np.full(n_users, -1)
        self.row[users] = np.arange(len(users))
        self.scores = scores.numpy()

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        return self.scores[self.row[users]]


def learn_blend(cfg: DictConfig, datamodule: MovieLensDataModule, fixed: BlendWeights) -> BlendWeights:
    """The weights of the parts that ``fixed`` weighs, chosen on a holdout of the fold's fitting
    ratings (``cfg.blend.learn``) by a model trained on the rest."""
    from hybridrec.training.fit import train_members

    learn = cfg.blend.learn
    with preserved_random_state():
        inner = datamodule.nested(learn.holdout_fraction, learn.holdout_users)
        model = instantiate(cfg.model)(context=inner.context)
        root = Path(cfg.paths.output_dir) / "stacking"
        train_members(cfg, model, inner, [], [], root, limit_val_batches=0, enable_checkpointing=False)
        terms, nearest = fit_evidence(instantiate(cfg.evidence), fixed, inner.context)
        recommender = HybridRecommender(model.nets, terms, nearest, fixed)
        learned = _choose(recommender, inner.context.fit, inner.val, fixed, list(learn.list_weights))
    log.info("%s: learned blend %s", datamodule.split.name, learned.as_dict())
    return learned


def _choose(
    recommender: HybridRecommender,
    fit: Interactions,
    held: Interactions,
    fixed: BlendWeights,
    grid: list[float],
) -> BlendWeights:
    towers = recommender.towers
    known_user = towers.user_known[torch.from_numpy(held.users)].numpy()
    known = _subset(held, known_user)
    text = _subset(held, ~known_user)
    weights = fixed.as_dict()
    if len(known):
        weights["known_ratings"] = _rating_weights(recommender, known, fixed, "known_ratings")
        weights["known_lists"] = _list_weights(recommender, fit, known, fixed, "known_lists", grid)
    if len(text):
        weights["text_ratings"] = _rating_weights(recommender, text, fixed, "text_ratings")
        weights["text_lists"] = _list_weights(recommender, fit, text, fixed, "text_lists", grid)
    return BlendWeights.from_config(weights)


def _subset(data: Interactions, keep: np.ndarray) -> Interactions:
    return Interactions(data.users[keep], data.items[keep], data.ratings[keep], data.n_users, data.n_items)


def _rating_weights(recommender: HybridRecommender, held: Interactions, fixed: BlendWeights, channel: str):
    """NNLS of the held-out ratings on the parts' ratings, over the pairs whose film has fitting ratings."""
    names = [TOWERS, *fixed.terms(channel)]
    users, items = torch.from_numpy(held.users), torch.from_numpy(held.items)
    rows = recommender.towers.item_known[items]
    users, items = users[rows], items[rows]
    parts = recommender.rating_parts(channel, users, items, names)
    columns = np.stack([parts[name].double().numpy() for name in names], axis=1)
    weights, _ = nnls(columns, held.ratings[rows.numpy()].astype(np.float64))
    return {name: round(float(w), 6) for name, w in zip(names, weights, strict=True)}


def _list_weights(
    recommender: HybridRecommender,
    fit: Interactions,
    held: Interactions,
    fixed: BlendWeights,
    channel: str,
    grid: list[float],
) -> dict[str, float]:
    """The grid point (the towers at 1) with the best held-out NDCG@10; the first of equals. Users
    are scored a batch at a time (memory: a batch x films per part, and each point's NDCG per user)."""
    names = list(fixed.terms(channel))
    points = list(itertools.product(grid, repeat=len(names)))
    users = np.unique(held.users)
    fit, held = _by_user(fit), _by_user(held)
    ndcg = [[np.zeros(0)] for _ in points]  # each point's NDCG of every evaluated user, in user order
    for start in range(0, len(users), LIST_BATCH):
        batch = users[start : start + LIST_BATCH]
        parts = recommender.list_parts(channel, torch.from_numpy(batch), names)
        towers = standardise(parts[TOWERS]) if names else parts[TOWERS]
        terms = {name: standardise(parts[name].float()) for name in names}
        seen, test = (_users_between(data, batch[0], batch[-1]) for data in (fit, held))
        for at, point in enumerate(points):
            scores = towers + sum(
                (w * terms[n] for n, w in zip(names, point, strict=True)), torch.zeros_like(towers)
            )
            result = evaluate_ranking(_Scores(batch, scores, held.n_users), seen, test)
            ndcg[at].append(result.per_user["ndcg"])
    best, best_ndcg = {TOWERS: 1.0, **{n: 0.0 for n in names}}, -1.0
    for point, per_user in zip(points, ndcg, strict=True):
        mean = float(np.concatenate(per_user).mean())
        if mean > best_ndcg:
            best, best_ndcg = {TOWERS: 1.0, **dict(zip(names, point, strict=True))}, mean
    return best


def _by_user(data: Interactions) -> Interactions:
    """The same ratings ordered by user (so a range of users is a slice)."""
    order = np.argsort(data.users, kind="stable")
    return Interactions(data.users[order], data.items[order], data.ratings[order], data.n_users, data.n_items)


def _users_between(data: Interactions, first: int, last: int) -> Interactions:
    """The ratings of users ``first`` to ``last`` of ratings ordered by user."""
    lo, hi = np.searchsorted(data.users, [first, last + 1])
    return Interactions(data.users[lo:hi], data.items[lo:hi], data.ratings[lo:hi], data.n_users, data.n_items)
