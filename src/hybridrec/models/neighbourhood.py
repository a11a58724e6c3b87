"""Neighbourhoods: item-item in closed form (EASE^R, Steck 2019), item KNN with baselines (Koren
2010) and user-user by profile text.

Used by the EASE and KNN baselines and by the hybrid model, which adds this full-rank evidence to its
low-rank towers: to its lists, item-item (EASE^R) for users with a history and, for users known only
by text, what the users whose profile texts are nearest to theirs liked; to its ratings, the KNN's.
Built from a fold's fitting ratings only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hybridrec.constants import MIN_RATING, RELEVANCE_THRESHOLD
from hybridrec.data.context import FoldContext


def liked_matrix(context: FoldContext, threshold: float = RELEVANCE_THRESHOLD) -> np.ndarray:
    """(n_users, n_items) 0/1 matrix of the fitting ratings at or above ``threshold``."""
    fit = context.fit
    liked = fit.ratings >= threshold
    x = np.zeros((context.n_users, context.n_items))
    x[fit.users[liked], fit.items[liked]] = 1.0
    return x


def ease_weights(interactions: np.ndarray, reg: float) -> np.ndarray:
    """The item-item weights that best rebuild each item's column from the others (zero diagonal,
    L2 ``reg``): a user's scores are their interaction row times these weights."""
    gram = interactions.T @ interactions + reg * np.eye(interactions.shape[1])
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights


def text_neighbour_weights(texts: torch.Tensor, known_texts: torch.Tensor, k: int) -> torch.Tensor:
    """(n_texts, n_known) weights of the ``k`` known users whose text embeddings are nearest (cosine)
    to each of ``texts``: that similarity (negative ones count 0), the others 0. Times a (known
    users, items) matrix, it gives the films of each text's nearest users."""
    similarity = F.normalize(texts, dim=1, eps=1e-8) @ F.normalize(known_texts, dim=1, eps=1e-8).T
    nearest, rows = similarity.topk(min(k, similarity.shape[1]), dim=1)
    return torch.zeros_like(similarity).scatter_(1, rows, nearest.clamp_min(0.0))


# Surprise's regularisation of the KNN's baseline b_ui = μ + b_u + b_i (pseudo-ratings per user, per film)
BASELINE_REG_USER, BASELINE_REG_ITEM = 15.0, 10.0


def fit_biases(context: FoldContext, reg_user: float, reg_item: float, iterations: int = 10):
    """Regularised user and item biases by alternating least squares (closed form per bias)."""
    fit = context.fit
    residual_base = fit.ratings.astype(np.float64) - context.global_mean
    user_bias = np.zeros(context.n_users)
    item_bias = np.zeros(context.n_items)
    n_user = np.bincount(fit.users, minlength=context.n_users)
    n_item = np.bincount(fit.items, minlength=context.n_items)
    for _ in range(iterations):
        item_bias = np.bincount(fit.items, residual_base - user_bias[fit.users], context.n_items) / (
            reg_item + n_item
        )
        user_bias = np.bincount(fit.users, residual_base - item_bias[fit.items], context.n_users) / (
            reg_user + n_user
        )
    return user_bias, item_bias


def knn_similarity(
    context: FoldContext,
    shrinkage: float = 100.0,
    reg_user: float = BASELINE_REG_USER,
    reg_item: float = BASELINE_REG_ITEM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(film-film similarity, users x films baseline residuals, users x films baselines) of the KNN
    with baselines. Similarity: Pearson correlation of the residuals r - b_ui (b_ui = μ + b_u + b_i)
    over common raters, shrunk by ``(n - 1) / (n - 1 + shrinkage)``, zero diagonal."""
    fit = context.fit
    user_bias, item_bias = fit_biases(context, reg_user, reg_item)
    baseline = context.global_mean + user_bias[:, None] + item_bias[None, :]
    residual = np.zeros((context.n_users, context.n_items))
    residual[fit.users, fit.items] = fit.ratings - baseline[fit.users, fit.items]
    rated = liked_matrix(context, MIN_RATING)  # every rating
    squared = residual**2
    common = rated.T @ rated
    norms = np.sqrt((squared.T @ rated) * (rated.T @ squared))
    similarity = np.divide(residual.T @ residual, norms, out=np.zeros_like(norms), where=norms > 0)
    similarity *= np.maximum(common - 1, 0) / (np.maximum(common - 1, 0) + shrinkage)
    np.fill_diagonal(similarity, 0.0)  # a film is not its own neighbour
    return similarity, residual, baseline


def neighbour_means(
    similarity: torch.Tensor,
    rated: torch.Tensor | None,
    values: torch.Tensor,
    items: torch.Tensor,
    k: int,
    shrinkage: float = 0.0,
) -> torch.Tensor:
    """For aligned rows (a user's ``rated`` mask and ``values`` over the films, and a film of
    ``items``): the mean of ``values`` over the ``k`` films most similar to the row's film among those
    rated, weighted by similarity (positive ones only), over the weights' sum plus ``shrinkage``
    (0 where no rated film is similar). ``rated`` None: every column is a rated film."""
    scores = similarity[items] if rated is None else similarity[items].masked_fill(~rated, float("-inf"))
    weights, films = scores.topk(min(k, scores.shape[1]), dim=1)
    weights = weights.clamp_min(0.0)
    total = weights.sum(1) + shrinkage
    mean = (weights * values.gather(1, films)).sum(1) / total.clamp_min(1e-12)
    return torch.where(total > 0, mean, torch.zeros_like(mean))


def knn_baseline_ratings(
    context: FoldContext,
    k: int = 40,
    shrinkage: float = 100.0,
    reg_user: float = BASELINE_REG_USER,
    reg_item: float = BASELINE_REG_ITEM,
    knn: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(n_users, n_items) ratings of item-based KNN with baselines (Surprise's ``KNNBaseline``):
    ``b_ui`` plus the similarity-weighted baseline residuals of the ``k`` films most similar to ``i``
    among those the user rated (``knn_similarity``, or ``knn`` when it was computed already; only
    positive similarities count). Users without such neighbours get ``b_ui``."""
    similarity, residual, baseline = knn or knn_similarity(context, shrinkage, reg_user, reg_item)
    rated = torch.from_numpy(liked_matrix(context, MIN_RATING) > 0)
    means = every_film_neighbour_means(torch.from_numpy(similarity), rated, torch.from_numpy(residual), k)
    return baseline + means.numpy()


def every_film_neighbour_means(
    similarity: torch.Tensor, rated: torch.Tensor, values: torch.Tensor, k: int, shrinkage: float = 0.0
) -> torch.Tensor:
    """``neighbour_means`` of every film for each row of ``rated`` and ``values`` (n_rows, n_items):
    one row at a time, over the columns of the films that row rated only, which keeps a full matrix
    cheap (a user rates a few dozen films of the catalog)."""
    films = torch.arange(similarity.shape[0], device=similarity.device)
    means = values.new_zeros(len(rated), len(films))
    for row in range(len(rated)):
        seen = rated[row].nonzero().squeeze(1)
        if len(seen):  # (every column is a rated film)
            row_values = values[row, seen].expand(len(films), -1)
            means[row] = neighbour_means(similarity[:, seen], None, row_values, films, k, shrinkage)
    return means


def item_baseline_ratings(context: FoldContext) -> np.ndarray:
    """``μ + b_i + E[b_u]`` per film: a new user's expected rating, the KNN's baseline with the user
    bias of an average *rating* rather than 0. The two differ: raters of many films rate lower (over
    the ratings, b_u averages about -0.12 on MovieLens 100K, and b_i as much above 0), and every one
    of a new user's ratings counts in their error, as every rating counts in training."""
    user_bias, item_bias = fit_biases(context, BASELINE_REG_USER, BASELINE_REG_ITEM)
    return context.global_mean + item_bias + user_bias[context.fit.users].mean()
