"""Folds of the protocols and validation carved from training parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridrec.constants import ITEM_COL, USER_COL
from hybridrec.data.splits import (
    canonical_fold,
    carve_validation,
    cold_user_chunks,
    cold_user_fold,
    full_data,
)

KEY = [USER_COL, ITEM_COL]


def _pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(map(tuple, frame[KEY].to_numpy().tolist()))


def _check_disjoint_cover(data, make_split, n_folds=5):
    all_pairs = _pairs(data.ratings)
    tests = []
    for k in range(1, n_folds + 1):
        split = make_split(data, k)
        train, test = _pairs(split.train), _pairs(split.test)
        assert not train & test, f"fold {k}: a pair is both in train and test"
        assert train | test == all_pairs, f"fold {k}: train and test do not cover the data"
        tests.append(test)
    assert set().union(*tests) == all_pairs
    assert sum(len(t) for t in tests) == len(all_pairs), "test sets overlap"


def test_canonical_folds_are_disjoint_and_cover(movielens):
    _check_disjoint_cover(movielens, canonical_fold)


def test_cold_user_folds_are_disjoint_and_cover(movielens):
    _check_disjoint_cover(movielens, cold_user_fold)


def test_cold_user_fold_hides_every_rating_of_its_users(movielens):
    split = cold_user_fold(movielens, 2)
    assert split.is_cold
    assert set(split.test[USER_COL]) == set(split.cold_users)
    assert not set(split.train[USER_COL]) & set(split.cold_users)


def test_cold_user_chunks_follow_the_protocol():
    ids = np.arange(1, 944)
    chunks = cold_user_chunks(ids[::-1])  # the order ids arrive in does not matter
    expected = np.array_split(np.random.default_rng(0).permutation(np.arange(1, 944)), 5)
    assert [c.tolist() for c in chunks] == [e.tolist() for e in expected]
    assert [len(c) for c in chunks] == [189, 189, 189, 188, 188]


def test_bad_fold_numbers_are_rejected(movielens):
    with pytest.raises(ValueError, match="1..5"):
        canonical_fold(movielens, 6)
    with pytest.raises(ValueError, match="1..5"):
        cold_user_fold(movielens, 0)


def test_full_data_has_no_test_part(movielens):
    split = full_data(movielens)
    assert len(split.train) == len(movielens.ratings) and split.test.empty


@pytest.mark.parametrize("by_user", [False, True])
def test_validation_is_carved_from_train_only(movielens, by_user):
    train = canonical_fold(movielens, 1).train
    fit, val = carve_validation(train, 0.2, seed=3, by_user=by_user)
    assert not _pairs(fit) & _pairs(val)
    assert _pairs(fit) | _pairs(val) == _pairs(train)
    again_fit, again_val = carve_validation(train, 0.2, seed=3, by_user=by_user)
    assert again_val.equals(val) and again_fit.equals(fit)
    other_val = carve_validation(train, 0.2, seed=4, by_user=by_user)[1]
    assert not other_val.equals(val)
    if by_user:
        assert not set(fit[USER_COL]) & set(val[USER_COL])
        assert len(set(val[USER_COL])) == round(0.2 * train[USER_COL].nunique())
    else:
        assert set(fit[USER_COL]) == set(train[USER_COL]), "every user keeps ratings to fit on"
        assert 0.1 < len(val) / len(train) < 0.3


def test_validation_fraction_is_checked(movielens):
    with pytest.raises(ValueError, match="fraction"):
        carve_validation(movielens.ratings, 1.0, seed=0)


@pytest.mark.integration
def test_real_fold_sizes(real_movielens):
    for k in range(1, 6):
        split = canonical_fold(real_movielens, k)
        assert (len(split.train), len(split.test)) == (80_000, 20_000)
    assert [len(cold_user_fold(real_movielens, k).cold_users) for k in range(1, 6)] == [
        189,
        189,
        189,
        188,
        188,
    ]


@pytest.mark.integration
def test_real_canonical_folds_are_disjoint_and_cover(real_movielens):
    _check_disjoint_cover(real_movielens, canonical_fold)
