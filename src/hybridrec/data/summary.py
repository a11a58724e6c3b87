"""A one-screen summary of the data set, its folds and its text profiles."""

from __future__ import annotations

import numpy as np

from hybridrec.constants import CANONICAL_FOLDS, COLD_USER_FOLDS, RATING_COL
from hybridrec.data.movielens import MovieLens
from hybridrec.data.profiles import ProfileConfig, build_item_profiles, build_user_profiles, profile_lengths
from hybridrec.data.splits import canonical_fold, cold_user_fold


def data_summary(data: MovieLens, profile_config: ProfileConfig, sample_users: int = 2) -> str:
    ratings = data.ratings
    density = len(ratings) / (data.n_users * data.n_items)
    counts = np.bincount(ratings[RATING_COL].astype(int), minlength=6)[1:]
    lines = [
        f"MovieLens at {data.root}",
        f"  {len(ratings):,} ratings by {data.n_users:,} users on {data.n_items:,} movies "
        f"(density {density:.2%}, mean rating {ratings[RATING_COL].mean():.3f})",
        "  ratings 1..5: " + ", ".join(f"{c:,}" for c in counts),
        f"  genres: {', '.join(data.genres)}",
        "Canonical folds (train / test ratings):",
    ]
    first = None
    for k in CANONICAL_FOLDS:
        split = canonical_fold(data, k)
        first = first or split
        lines.append(f"  {split.name}: {len(split.train):,} / {len(split.test):,}")
    lines.append("Cold-user folds (cold users, train / test ratings):")
    for k in range(1, COLD_USER_FOLDS + 1):
        split = cold_user_fold(data, k)
        lines.append(
            f"  {split.name}: {len(split.cold_users)} users, {len(split.train):,} / {len(split.test):,}"
        )
    user_profiles = build_user_profiles(data.users, data.items, first.train, profile_config)
    item_profiles = build_item_profiles(data.items)
    words = profile_lengths(user_profiles)
    lines.append(
        f"Text profiles of {first.name} (training ratings only): user profiles of "
        f"{words.mean():.0f} words on average (max {words.max()}), movie profiles of "
        f"{profile_lengths(item_profiles).mean():.0f}"
    )
    for user_id in user_profiles.index[:sample_users]:
        lines.append(f"  user {user_id}: {user_profiles[user_id]}")
    lines.append(f"  movie {item_profiles.index[0]}: {item_profiles.iloc[0]}")
    return "\n".join(lines)
