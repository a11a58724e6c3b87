"""Regularised biases μ + b_u + b_i (Koren 2010), the baseline the KNN's residuals and new users'
expected ratings are measured from. Memory: one value per user and per film; time: a few passes
over the ratings."""

from __future__ import annotations

import numpy as np

from hybridrec.data.context import FoldContext


def fit_biases(context: FoldContext, reg_user: float, reg_item: float, iterations: int = 10):
    """(b_u, b_i) by alternating least squares, closed form per bias, ``reg_*`` pseudo-ratings at 0."""
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
