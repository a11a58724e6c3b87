"""Train/test splits of the evaluation protocols, and validation carved from the training part.

A split only ever hands out the training part to anything that learns; the test part is held by the
caller and touched once, at evaluation. See ../shared/eval-protocol.md for the protocols. Sets that do
not ship their folds (all but 100K) get seeded folds of their ratings, drawn once and written to disk,
so every later run, and every model, is judged on the same test part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.constants import (
    COLD_ITEM_SEED,
    COLD_USER_FOLDS,
    COLD_USER_SEED,
    ITEM_COL,
    ML100K_NAME,
    USER_COL,
)
from hybridrec.data.movielens import MovieLens
from hybridrec.errors import DataError
from hybridrec.io import atomic_write


@dataclass(frozen=True)
class Split:
    """One fold: ``train`` may be learned from; ``test`` is only evaluated on.

    ``cold_users`` lists the users whose ratings are all in ``test`` (protocol B); it is empty for
    the warm protocols, where every test user also has training ratings.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    cold_users: np.ndarray
    cold_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # new films

    @property
    def is_cold(self) -> bool:
        return len(self.cold_users) > 0


def canonical_fold(data: MovieLens, fold: int) -> Split:
    """Protocol A / rating CV: train on ``u{fold}.base``, test on ``u{fold}.test``."""
    if fold not in range(1, 6):
        raise ValueError(f"canonical folds are 1..5, got {fold}")
    return Split(
        name=f"u{fold}",
        train=data.read_ratings_file(f"u{fold}.base"),
        test=data.read_ratings_file(f"u{fold}.test"),
        cold_users=np.empty(0, dtype=np.int64),
    )


def has_canonical_folds(data: MovieLens) -> bool:
    """Whether the set ships its own 5 folds as files: 100K's u1..u5 (no later set does)."""
    return data.root.name == ML100K_NAME


def rating_fold(data: MovieLens, fold: int, n_folds: int, seed: int, folder: str | Path) -> Split:
    """Fold ``fold`` of a seeded ``n_folds``-fold split of the ratings (``rating_folds``): its ratings
    are the test part, every other rating the training part."""
    _check_fold("rating", fold, n_folds)
    return _held_out(data, rating_folds(data, n_folds, seed, folder) == fold, f"kfold{fold}")


def rating_folds(data: MovieLens, n_folds: int, seed: int, folder: str | Path) -> np.ndarray:
    """Each rating's fold, 1..``n_folds``, in the order of ``data.ratings``: a seeded permutation of
    the ratings (taken in (user, item) order, so the order of the file does not matter) cut into
    ``n_folds`` parts. Read from ``folder/<set>/kfold<n_folds>-seed<seed>.npz``, or drawn and
    written there (atomically) the first time: one byte per rating, and a checksum of the (user,
    item) pairs it was drawn for, so a file is never applied to other ratings."""
    keys = (data.ratings[USER_COL].to_numpy(np.int64) << 32) | data.ratings[ITEM_COL].to_numpy(np.int64)
    order = np.argsort(keys, kind="stable")
    digest = hashlib.sha256(keys[order].tobytes()).hexdigest()
    path = Path(folder) / data.root.name / f"kfold{n_folds}-seed{seed}.npz"
    if path.is_file():
        with np.load(path) as stored:
            folds, drawn_for = stored["fold"], stored["ratings_sha256"].item()
        if drawn_for != digest or len(folds) != len(keys) or folds.max(initial=0) > n_folds:
            raise DataError(f"{path} was drawn for other ratings than these; remove it to draw it again")
    else:
        folds = np.empty(len(keys), dtype=np.uint8)
        permutation = np.random.default_rng(seed).permutation(len(keys))
        for k, part in enumerate(np.array_split(permutation, n_folds), start=1):
            folds[part] = k
        atomic_write(path, lambda tmp: _save_arrays(tmp, fold=folds, ratings_sha256=np.array(digest)))
    in_data_order = np.empty_like(folds)
    in_data_order[order] = folds
    return in_data_order


def _save_arrays(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as handle:  # (a handle: numpy would add .npz to a temporary file's name)
        np.savez_compressed(handle, **arrays)


def cold_user_chunks(user_ids: np.ndarray, n_folds: int = COLD_USER_FOLDS, seed: int = COLD_USER_SEED):
    """Protocol B's user folds: a seeded permutation of the sorted user ids, cut into ``n_folds`` chunks."""
    ordered = np.sort(np.asarray(user_ids, dtype=np.int64))
    permutation = np.random.default_rng(seed).permutation(ordered)
    return np.array_split(permutation, n_folds)


def cold_user_fold(
    data: MovieLens, fold: int, n_folds: int = COLD_USER_FOLDS, seed: int = COLD_USER_SEED
) -> Split:
    """Protocol B: fold ``k``'s users are unseen; every rating of every other user is training data."""
    _check_fold("cold-user", fold, n_folds)
    cold = np.sort(cold_user_chunks(data.user_index.ids, n_folds, seed)[fold - 1])
    return _held_out(data, data.ratings[USER_COL].isin(cold).to_numpy(), f"cold{fold}", cold_users=cold)


def cold_item_fold(
    data: MovieLens, fold: int, n_folds: int = COLD_USER_FOLDS, seed: int = COLD_ITEM_SEED
) -> Split:
    """New films: fold ``k``'s films are unseen (known only by their text); every rating of every
    other film is training data. The film folds are a seeded permutation of the sorted film ids."""
    _check_fold("new-film", fold, n_folds)
    new = np.sort(cold_user_chunks(data.item_index.ids, n_folds, seed)[fold - 1])
    return _held_out(data, data.ratings[ITEM_COL].isin(new).to_numpy(), f"new_films{fold}", cold_items=new)


def _check_fold(kind: str, fold: int, n_folds: int) -> None:
    if fold not in range(1, n_folds + 1):
        raise ValueError(f"{kind} folds are 1..{n_folds}, got {fold}")


def _held_out(data: MovieLens, is_test: np.ndarray, name: str, **held: np.ndarray) -> Split:
    """The ratings where ``is_test`` as the test part, the rest as training; ``held`` names the users
    (``cold_users``) or films (``cold_items``) held out whole."""
    return Split(
        name=name,
        train=data.ratings[~is_test].reset_index(drop=True),
        test=data.ratings[is_test].reset_index(drop=True),
        **{"cold_users": np.empty(0, dtype=np.int64), **held},
    )


def full_data(data: MovieLens) -> Split:
    """All ratings for training (the final fit after cross-validation); nothing to test on."""
    return Split(
        name="all",
        train=data.ratings.reset_index(drop=True),
        test=data.ratings.iloc[:0],
        cold_users=np.empty(0, dtype=np.int64),
    )


def carve_validation(
    train: pd.DataFrame, fraction: float, seed: int, by_user: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a training part into (fit, validation), seeded; ``fraction=0`` fits on all of it.

    ``by_user=False`` holds out a random ``fraction`` of each user's ratings (every user keeps at least
    one rating to fit on), which mirrors the warm protocols. ``by_user=True`` holds out whole users,
    which mirrors the cold-start protocol.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return train.reset_index(drop=True), train.iloc[:0].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    if by_user:
        users = np.sort(train[USER_COL].unique())
        n_val = max(1, round(fraction * len(users)))
        held = rng.choice(users, size=n_val, replace=False)
        is_val = train[USER_COL].isin(held).to_numpy()
    else:
        keys = rng.random(len(train))
        order = np.lexsort((keys, train[USER_COL].to_numpy()))
        users_sorted = train[USER_COL].to_numpy()[order]
        starts = np.r_[0, np.flatnonzero(np.diff(users_sorted)) + 1]
        counts = np.diff(np.r_[starts, len(order)])
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        n_val = np.minimum(np.floor(counts * fraction + rng.random(len(counts))), counts - 1).astype(np.int64)
        is_val = np.zeros(len(train), dtype=bool)
        is_val[order] = rank < np.repeat(n_val, counts)
    return train[~is_val].reset_index(drop=True), train[is_val].reset_index(drop=True)
