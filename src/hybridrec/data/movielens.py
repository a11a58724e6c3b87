"""The parsed MovieLens data set, its id indexes, and the reader of the 100K files.

Every reader validates what it reads: a malformed line fails with the file name and line number,
so a corrupt or hand-edited file never turns into silent NaNs further down the pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, RATING_COL, TIMESTAMP_COL, USER_COL
from hybridrec.errors import DataError

RATING_COLUMNS = (USER_COL, ITEM_COL, RATING_COL, TIMESTAMP_COL)
USER_COLUMNS = (USER_COL, "age", "gender", "occupation", "zip_code")
DEMOGRAPHIC_COLUMNS = ("age", "gender", "occupation")
ITEM_META_COLUMNS = (ITEM_COL, "title_raw", "release_date", "video_release_date", "imdb_url")

_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")
# "Usual Suspects, The" -> "The Usual Suspects": articles MovieLens moves to the end of titles.
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+), (?P<article>The|A|An|Il|La|Le|Les|L'|El|Das|Der|Die)$")


class MovieLensFormatError(DataError):
    """A MovieLens file does not have the expected shape; the message names the file and line."""


@dataclass(frozen=True)
class IdIndex:
    """A bijection between external ids and contiguous indexes ``0..n-1`` (sorted by id)."""

    ids: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int64))

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def to_index(self, ids) -> np.ndarray:
        """Map external ids to indexes; raises ``KeyError`` naming the first unknown id."""
        positions = self._index.get_indexer(np.asarray(ids, dtype=np.int64).ravel())
        if (positions < 0).any():
            unknown = np.asarray(ids).ravel()[positions < 0][0]
            raise KeyError(f"unknown id {unknown}")
        return positions.astype(np.int64)

    def to_id(self, indexes) -> np.ndarray:
        return self.ids[np.asarray(indexes, dtype=np.int64)]


@dataclass(frozen=True)
class RatingScale:
    """The stars a set uses, read from its ratings: 1..5 whole (100K, 1M) or 0.5..5 half stars (10M on)."""

    min: float
    max: float
    step: float

    @classmethod
    def of(cls, ratings) -> RatingScale:
        values = np.asarray(ratings, dtype=np.float64)
        step = 0.5 if bool((values % 1 != 0).any()) else 1.0
        return cls(float(values.min()), float(values.max()), step)

    @property
    def levels(self) -> int:
        """How many distinct ratings the scale has (5 whole stars; 10 half stars from 0.5)."""
        return round((self.max - self.min) / self.step) + 1

    def clip(self, ratings):
        """Predictions (numpy or torch) kept within the scale."""
        return ratings.clip(self.min, self.max)


# 100K's (and 1M's) stars: the scale of bundles saved before sets had scales of their own
WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)


@dataclass
class MovieLens:
    """The parsed data set: ratings, users and items, with contiguous indexes over users and items.

    ``users`` always has ``user_id`` and, where the set has demographics (100K, 1M), age, gender,
    occupation and zip code; ``items`` has item_id, title, display_title, year, genres and tags (tuples).
    """

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    genres: tuple[str, ...]
    root: Path
    user_index: IdIndex = field(init=False)
    item_index: IdIndex = field(init=False)
    rating_scale: RatingScale = field(init=False)

    def __post_init__(self) -> None:
        self.user_index = IdIndex(self.users[USER_COL].to_numpy())
        self.item_index = IdIndex(self.items[ITEM_COL].to_numpy())
        self.rating_scale = RatingScale.of(self.ratings[RATING_COL].to_numpy())

    @property
    def has_demographics(self) -> bool:
        return has_demographics(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @cached_property
    def genre_matrix(self) -> np.ndarray:
        """Bool matrix (n_items, n_genres) in item-index order."""
        matrix = np.zeros((self.n_items, len(self.genres)), dtype=bool)
        position = {g: j for j, g in enumerate(self.genres)}
        for row, item_genres in enumerate(self.items["genres"]):
            for genre in item_genres:
                matrix[row, position[genre]] = True
        return matrix

    def read_ratings_file(self, name: str) -> pd.DataFrame:
        """Read a ratings file of this data set (``u1.base`` …) and check its ids are known."""
        path = self.root / name
        ratings = read_ratings(path)
        check_known_ids(ratings, USER_COL, self.user_index, path)
        check_known_ids(ratings, ITEM_COL, self.item_index, path)
        return ratings


def has_demographics(users: pd.DataFrame) -> bool:
    """Whether users come with age, gender and occupation (100K and 1M; not 10M and later)."""
    return set(DEMOGRAPHIC_COLUMNS) <= set(users.columns)


def load_movielens(root: str | Path) -> MovieLens:
    """Read ``u.data``, ``u.user``, ``u.item`` and ``u.genre`` from a MovieLens 100K folder."""
    root = Path(root)
    genres = read_genres(root / "u.genre")
    users = read_users(root / "u.user")
    items = read_items(root / "u.item", genres)
    data = MovieLens(
        ratings=read_ratings(root / "u.data"), users=users, items=items, genres=genres, root=root
    )
    check_known_ids(data.ratings, USER_COL, data.user_index, root / "u.data")
    check_known_ids(data.ratings, ITEM_COL, data.item_index, root / "u.data")
    return data


def require_file(path: Path) -> None:
    if not path.is_file():
        raise MovieLensFormatError(f"{path}: file not found")


def read_table(path: Path, sep: str, columns: tuple[str, ...], encoding: str = "utf-8") -> pd.DataFrame:
    """Read a delimited file as strings, insisting on exactly ``len(columns)`` fields per line."""
    require_file(path)
    with open(path, encoding=encoding, newline="") as handle:
        lines = handle.read().splitlines()
    rows = ((lineno, line.split(sep)) for lineno, line in enumerate(lines, start=1) if line.strip())
    return table_of(path, rows, columns, sep)


def table_of(path: Path, rows, columns: tuple[str, ...], sep: str) -> pd.DataFrame:
    """Rows of string fields, given as ``(line number, fields)``, as a frame with a ``_line`` column."""
    table = []
    for lineno, fields in rows:
        if len(fields) != len(columns):
            raise MovieLensFormatError(
                f"{path}:{lineno}: expected {len(columns)} fields separated by {sep!r}, found {len(fields)}"
            )
        table.append((lineno, *fields))
    return pd.DataFrame(table, columns=("_line", *columns))


def to_int(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise MovieLensFormatError(f"{path}:{row['_line']}: {column} must be an integer, got {row[column]!r}")
    return values.astype(np.int64)


def read_ratings(path: str | Path) -> pd.DataFrame:
    """``user_id item_id rating timestamp``, tab-separated; ratings must be whole stars 1..5."""
    path = Path(path)
    raw = read_table(path, "\t", RATING_COLUMNS)
    ratings = pd.DataFrame({col: to_int(raw, col, path) for col in RATING_COLUMNS})
    out_of_range = (ratings[RATING_COL] < WHOLE_STARS.min) | (ratings[RATING_COL] > WHOLE_STARS.max)
    if out_of_range.any():
        row = raw.loc[out_of_range.idxmax()]
        raise MovieLensFormatError(
            f"{path}:{row['_line']}: rating must be {WHOLE_STARS.min:g}..{WHOLE_STARS.max:g}, "
            f"got {row[RATING_COL]!r}"
        )
    duplicated = ratings.duplicated([USER_COL, ITEM_COL])
    if duplicated.any():
        row = raw.loc[duplicated.idxmax()]
        raise MovieLensFormatError(
            f"{path}:{row['_line']}: user {row[USER_COL]} rated item {row[ITEM_COL]} twice"
        )
    ratings[RATING_COL] = ratings[RATING_COL].astype(np.float32)
    return ratings


def read_users(path: str | Path) -> pd.DataFrame:
    """``user_id|age|gender|occupation|zip_code``."""
    path = Path(path)
    raw = read_table(path, "|", USER_COLUMNS)
    users = pd.DataFrame(
        {
            USER_COL: to_int(raw, USER_COL, path),
            "age": to_int(raw, "age", path).astype(np.int16),
            "gender": raw["gender"].str.strip().astype("string"),
            "occupation": raw["occupation"].str.strip().astype("string"),
            "zip_code": raw["zip_code"].str.strip().astype("string"),
        }
    )
    bad_gender = ~users["gender"].isin(["M", "F"])
    if bad_gender.any():
        row = raw.loc[bad_gender.idxmax()]
        raise MovieLensFormatError(f"{path}:{row['_line']}: gender must be M or F, got {row['gender']!r}")
    check_unique(users, raw, USER_COL, path)
    return users.sort_values(USER_COL, ignore_index=True)


def read_genres(path: str | Path) -> tuple[str, ...]:
    """``name|index`` lines, returned in index order."""
    path = Path(path)
    raw = read_table(path, "|", ("genre", "position"))
    raw["position"] = to_int(raw, "position", path)
    return tuple(raw.sort_values("position")["genre"])


def read_items(path: str | Path, genres: tuple[str, ...]) -> pd.DataFrame:
    """``item_id|title|release date|video release date|IMDb URL|`` then one 0/1 flag per genre (latin-1)."""
    path = Path(path)
    raw = read_table(path, "|", (*ITEM_META_COLUMNS, *genres), encoding="latin-1")
    flags = pd.DataFrame({g: to_int(raw, g, path) for g in genres})
    bad_flag = ~flags.isin([0, 1]).all(axis=1)
    if bad_flag.any():
        raise MovieLensFormatError(
            f"{path}:{raw.loc[bad_flag.idxmax(), '_line']}: genre flags must be 0 or 1"
        )
    release = pd.to_datetime(raw["release_date"].str.strip(), format="%d-%b-%Y", errors="coerce")
    titles = title_fields(raw["title_raw"])
    genre_names = np.array(genres, dtype=object)
    items = pd.DataFrame(
        {
            ITEM_COL: to_int(raw, ITEM_COL, path),
            **titles,
            "year": titles["year"].fillna(release.dt.year).astype("Int16"),
            "release_date": release,
            "genres": [tuple(genre_names[row.astype(bool)]) for row in flags.to_numpy()],
            "tags": [()] * len(raw),  # 100K has no tags
        }
    )
    check_unique(items, raw, ITEM_COL, path)
    return items.sort_values(ITEM_COL, ignore_index=True)


def title_fields(raw_titles: pd.Series) -> dict[str, pd.Series]:
    """``title`` (stripped), ``display_title`` and ``year`` (float: a trailing "(1995)", else NaN)."""
    titles = raw_titles.str.strip()
    year = pd.to_numeric(titles.str.extract(_YEAR_SUFFIX, expand=False), errors="coerce")
    shown = pd.Series([display_title(t) for t in titles], index=titles.index, dtype="string")
    return {"title": titles.astype("string"), "display_title": shown, "year": year}


def display_title(raw_title: str) -> str:
    """A title as people write it: year dropped, a trailing article moved back to the front."""
    title = _YEAR_SUFFIX.sub("", raw_title).strip()
    match = _TRAILING_ARTICLE.match(title)
    if match:
        article = match["article"]
        title = f"{article}{'' if article.endswith(chr(39)) else ' '}{match['body']}"
    return title


def check_unique(frame: pd.DataFrame, raw: pd.DataFrame, column: str, path: Path) -> None:
    duplicated = frame[column].duplicated()
    if duplicated.any():
        row = raw.loc[duplicated.idxmax()]
        raise MovieLensFormatError(f"{path}:{row['_line']}: duplicate {column} {row[column]}")


def check_known_ids(ratings: pd.DataFrame, column: str, index: IdIndex, path: Path) -> None:
    """Fail with file and line when a ratings file names a user or item the metadata lacks."""
    known = np.isin(ratings[column].to_numpy(), index.ids)
    if not known.all():
        position = int(np.argmin(known))
        raise MovieLensFormatError(
            f"{path}:{_line_of(path, position)}: unknown {column} {ratings[column].iloc[position]}"
        )


def _line_of(path: Path, position: int) -> int:
    """1-based line number of the ``position``-th non-blank line of ``path``."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        seen = -1
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                seen += 1
                if seen == position:
                    return lineno
    return position + 1
