"""Text profiles: their format, and that a fold's profiles know nothing of its test ratings."""

from __future__ import annotations

import pytest

from hybridrec.constants import ITEM_COL, USER_COL
from hybridrec.data.profiles import (
    ProfileConfig,
    build_demographic_profiles,
    build_item_profiles,
    build_user_profiles,
    demographic_profile,
    film_mention,
)
from hybridrec.data.splits import canonical_fold, cold_user_fold


def test_movie_profile_format(movielens):
    profiles = build_item_profiles(movielens.items)
    assert profiles[1] == f"Star Story ({int(movielens.items.loc[0, 'year'])}). Genres: Action, Sci-Fi."
    assert profiles.index.tolist() == movielens.items[ITEM_COL].tolist()
    assert any(text.startswith("The Usual Letters (") for text in profiles)


def test_demographic_profile_format():
    assert (
        demographic_profile(24, "M", "technician")
        == "Age: 24 (twenties), gender: male, occupation: technician."
    )
    assert demographic_profile(7, "F", "none") == "Age: 7, gender: female, no occupation."


def test_user_profile_lists_liked_and_disliked_films(movielens):
    train = canonical_fold(movielens, 1).train
    profiles = build_user_profiles(
        movielens.users, movielens.items, train, ProfileConfig(max_liked=3), scale=movielens.rating_scale
    )
    user = int(train[USER_COL].iloc[0])
    text = profiles[user]
    assert text.startswith(build_demographic_profiles(movielens.users)[user])
    history = train[train[USER_COL] == user].sort_values("rating", ascending=False)
    top = movielens.items.set_index(ITEM_COL).loc[int(history[ITEM_COL].iloc[0])]
    assert film_mention(top["display_title"], top["year"], top["genres"]) in text
    assert text.count("/5") <= 3 + ProfileConfig().max_disliked
    assert "Loved: " in text


def test_users_without_training_ratings_get_demographics_only(movielens):
    split = cold_user_fold(movielens, 1)
    profiles = build_user_profiles(
        movielens.users, movielens.items, split.train, scale=movielens.rating_scale
    )
    demographics = build_demographic_profiles(movielens.users)
    for user in split.cold_users:
        assert profiles[user] == demographics[user]


def test_profiles_are_deterministic(movielens):
    train = canonical_fold(movielens, 3).train
    shuffled = train.sample(frac=1.0, random_state=0)
    a = build_user_profiles(movielens.users, movielens.items, train, scale=movielens.rating_scale)
    b = build_user_profiles(movielens.users, movielens.items, shuffled, scale=movielens.rating_scale)
    assert a.equals(b)


def assert_no_test_film_in_profiles(data, fold: int) -> int:
    """Every mention in a user's fold-k profile is a film of that user's training ratings; returns #checked."""
    split = canonical_fold(data, fold)
    profiles = build_user_profiles(data.users, data.items, split.train, scale=data.rating_scale)
    items = data.items.set_index(ITEM_COL)
    mention = {i: film_mention(r["display_title"], r["year"], r["genres"]) for i, r in items.iterrows()}
    train_items = split.train.groupby(USER_COL)[ITEM_COL].agg(set)
    checked = 0
    for user, test_items in split.test.groupby(USER_COL)[ITEM_COL]:
        own = {mention[i] for i in train_items.get(user, set())}
        for item in test_items:
            if mention[item] not in own:  # a title shared with a training film is not a leak
                assert mention[item] not in profiles[user], (
                    f"fold {fold}: user {user}'s test film {item} leaked"
                )
                checked += 1
    return checked


@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_fold_profiles_never_mention_test_films(movielens, fold):
    assert assert_no_test_film_in_profiles(movielens, fold) > 0


@pytest.mark.integration
@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_real_fold_profiles_never_mention_test_films(real_movielens, fold):
    assert assert_no_test_film_in_profiles(real_movielens, fold) > 15_000
