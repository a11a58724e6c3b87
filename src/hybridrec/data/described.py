"""Protocol C's folds: the cold users of protocol B, each telling a few of their ratings in words.

Fold k's users are protocol B's cold users of fold k. Of each, ``DESCRIBED_TOLD`` ratings (seeded)
are told: turned into descriptions (``data/descriptions.py``) and removed from what is scored; the
rest of their ratings are scored. Told ratings and descriptions are written to disk once, beside the
other splits, and read back by every later run, so every model is judged on the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hybridrec.constants import DESCRIBED_SEED, DESCRIBED_TOLD, ITEM_COL, USER_COL
from hybridrec.data.descriptions import describe_users, tell
from hybridrec.data.movielens import MovieLens
from hybridrec.data.splits import Split, cold_user_fold
from hybridrec.errors import DataError
from hybridrec.io import atomic_write


@dataclass(frozen=True)
class DescribedUsers:
    """The told ratings (user, item, rating) and each user's descriptions (user, style, text)."""

    told: pd.DataFrame
    descriptions: pd.DataFrame


def described_user_fold(data: MovieLens, fold: int, folder: Path) -> tuple[Split, DescribedUsers]:
    """Protocol C's fold ``fold``: training as protocol B's; test, the cold users' ratings that were
    not told. Its told ratings and descriptions come from ``folder`` (written there the first time)."""
    cold = cold_user_fold(data, fold)
    path = Path(folder) / f"{data.root.name}-told{DESCRIBED_TOLD}-seed{DESCRIBED_SEED}" / f"fold{fold}"
    told_path, texts_path = path / "told.csv", path / "descriptions.csv"
    if told_path.is_file() and texts_path.is_file():
        told, texts = pd.read_csv(told_path), pd.read_csv(texts_path, keep_default_na=False)
    else:
        told = tell(cold.test, DESCRIBED_TOLD, DESCRIBED_SEED + fold)
        texts = describe_users(told, data.users, data.items, DESCRIBED_SEED + fold)
        atomic_write(told_path, lambda tmp: told.to_csv(tmp, index=False))
        atomic_write(texts_path, lambda tmp: texts.to_csv(tmp, index=False))
    key = [USER_COL, ITEM_COL]
    merged = cold.test.merge(told[key], on=key, how="left", indicator=True)
    if (merged["_merge"] == "both").sum() != len(told) or set(told[USER_COL]) != set(cold.cold_users):
        raise DataError(f"{path} does not belong to this data set's fold {fold}; remove it to write it again")
    scored = cold.test[(merged["_merge"] == "left_only").to_numpy()].reset_index(drop=True)
    split = Split(f"described{fold}", cold.train, scored, cold.cold_users)
    return split, DescribedUsers(told, texts)
