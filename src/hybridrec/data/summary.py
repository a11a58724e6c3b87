"""A one-screen summary of the data set, its folds and its text profiles."""

from __future__ import annotations

import numpy as np

from hybridrec.constants import CANONICAL_FOLDS, COLD_USER_FOLDS, RATING_COL
from hybridrec.data.movielens import MovieLens
from hybridrec.data.profiles import ProfileConfig, build_item_profiles, build_user_profiles, profile_lengths
from hybridrec.data.splits import canonical_fold, cold_user_fold, has_canonical_folds


def data_summary(data: MovieLens, profile_config: ProfileConfig, sample_users: int = 2) -> str:
    """The set's size and stars; its own folds (100K) and protocol B's (sets with demographics); the
    text profiles of its first fold's training part (100K) or of all its ratings."""
    ratings = data.ratings
    density = len(ratings) / (data.n_users * data.n_items)
    scale = data.rating_scale
    levels = np.rint((ratings[RATING_COL].to_numpy() - scale.min) / scale.step).astype(int)
    counts = np.bincount(levels, minlength=scale.levels)
    lines = [
        f"MovieLens at {data.root}",
        f"  {len(ratings):,} ratings by {data.n_users:,} users on {data.n_items:,} movies "
        f"(density {density:.2%}, mean rating {ratings[RATING_COL].mean():.3f})",
        f"  ratings {scale.min:g}..{scale.max:g}: " + ", ".join(f"{c:,}" for c in counts),
        f"  genres: {', '.join(data.genres)}",
    ]
    profiled, train = "all ratings", ratings
    if has_canonical_folds(data):
        lines.append("Canonical folds (train / test ratings):")
        for k in CANONICAL_FOLDS:
            split = canonical_fold(data, k)
            if k == CANONICAL_FOLDS[0]:
                profiled, train = f"{split.name} (training ratings only)", split.train
            lines.append(f"  {split.name}: {len(split.train):,} / {len(split.test):,}")
    if data.has_demographics:
        lines.append("Cold-user folds (cold users, train / test ratings):")
        for k in range(1, COLD_USER_FOLDS + 1):
            split = cold_user_fold(data, k)
            lines.append(
                f"  {split.name}: {len(split.cold_users)} users, {len(split.train):,} / {len(split.test):,}"
            )
    user_profiles = build_user_profiles(data.users, data.items, train, profile_config, scale=scale)
    item_profiles = build_item_profiles(data.items)
    words = profile_lengths(user_profiles)
    lines.append(
        f"Text profiles of {profiled}: user profiles of "
        f"{words.mean():.0f} words on average (max {words.max()}), movie profiles of "
        f"{profile_lengths(item_profiles).mean():.0f}"
    )
    for user_id in user_profiles.index[:sample_users]:
        lines.append(f"  user {user_id}: {user_profiles[user_id]}")
    lines.append(f"  movie {item_profiles.index[0]}: {item_profiles.iloc[0]}")
    return "\n".join(lines)
