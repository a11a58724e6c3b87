"""Readers for the larger MovieLens sets (1M, 10M, 20M, 25M) and the registry that picks one by folder name.

Ratings and genome scores (up to 25M rows) go through pandas' C parser with explicit dtypes and are
checked with vectorised masks; a bad line's number is worked out only once a check has failed. The small
text files (movies, users, tags) are split line by line, so their field counts and line numbers are exact.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.constants import (
    ITEM_COL,
    ML100K_NAME,
    ML100K_REQUIRED_FILES,
    RATING_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from hybridrec.data.movielens import (
    MovieLens,
    MovieLensFormatError,
    check_unique,
    load_movielens,
    read_table,
    require_file,
    table_of,
    title_fields,
    to_int,
)
from hybridrec.errors import ConfigError

TOP_TAGS = 10  # tags kept per film in ``items["tags"]``
NO_GENRES = "(no genres listed)"  # 10M and later: a film without genres
DAT_SEP = "::"
RATINGS_DTYPES = {USER_COL: np.int32, ITEM_COL: np.int32, RATING_COL: np.float32, TIMESTAMP_COL: np.int64}
# ML-1M codes (its README): an age group is written as its lower bound, an occupation as 0..20.
ML1M_AGES = (1, 18, 25, 35, 45, 50, 56)
ML1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
CSV_HEADERS = {
    "ratings.csv": ("userId", "movieId", "rating", "timestamp"),
    "movies.csv": ("movieId", "title", "genres"),
    "tags.csv": ("userId", "movieId", "tag", "timestamp"),
    "links.csv": ("movieId", "imdbId", "tmdbId"),
    "genome-scores.csv": ("movieId", "tagId", "relevance"),
    "genome-tags.csv": ("tagId", "tag"),
}
_TAG_COLUMNS = (USER_COL, ITEM_COL, "tag", TIMESTAMP_COL)
_NO_TAGS = pd.Series(dtype=object)
_PARSER_LINE = re.compile(r"Expected \d+ fields in line (\d+), saw \d+")


def read_ml1m(root: str | Path) -> MovieLens:
    """ML-1M (``ml-1m/``): ``ratings.dat``, ``users.dat`` (coded demographics), ``movies.dat`` (latin-1).

    Memory: 20 bytes a rating kept (int32 ids, float32 rating, int64 timestamp), ~50 at peak while parsing
    and checking (a sort for repeated pairs: its ratings are not ordered by film within a user).
    """
    root = Path(root)
    movies = _read_dat_movies(root / "movies.dat", "latin-1")
    return _assemble(root, ".dat", movies, _NO_TAGS, users=_read_ml1m_users(root / "users.dat"))


def read_ml10m(root: str | Path) -> MovieLens:
    """ML-10M (``ml-10M100K/``): ``ratings.dat`` (half stars), ``movies.dat`` (UTF-8), ``tags.dat``.

    No users file: the users are the ids found in the ratings, without demographics.
    Memory: 20 bytes a rating kept, ~45 at peak while parsing; tags cost a few Python strings each.
    """
    root = Path(root)
    tags = _typed_tags(read_table(root / "tags.dat", DAT_SEP, _TAG_COLUMNS), root / "tags.dat")
    return _assemble(root, ".dat", _read_dat_movies(root / "movies.dat", "utf-8"), _user_tags(tags))


def read_ml_csv(root: str | Path) -> MovieLens:
    """ML-20M and ML-25M (``ml-20m/``, ``ml-25m/``): ``ratings.csv``, ``movies.csv``, ``tags.csv``, and
    ``genome-scores.csv`` with ``genome-tags.csv`` when present (``links.csv`` is not needed).

    A film's tags are its top genome tags where the genome scores it, else its most applied user tags.
    Memory: 20 bytes a rating kept, ~45 at peak while parsing; ~30 a genome score at peak; tags
    cost a few Python strings each.
    """
    root = Path(root)
    tags = _user_tags(_typed_tags(_read_csv_table(root / "tags.csv", _TAG_COLUMNS), root / "tags.csv"))
    genome = _genome_tags(root)
    if genome is not None:
        tags = pd.concat([genome, tags[~tags.index.isin(genome.index)]])
    return _assemble(root, ".csv", _read_csv_table(root / "movies.csv", (ITEM_COL, "title", "genres")), tags)


def _assemble(
    root: Path, suffix: str, movies: pd.DataFrame, tags: pd.Series, users: pd.DataFrame | None = None
) -> MovieLens:
    """The set from its movies table, tags by film and ratings file; without ``users``, those who rated."""
    items, genres = _catalog(movies, root / f"movies{suffix}", tags)
    known_users = None if users is None else users[USER_COL].to_numpy()
    ratings = _read_ratings(root / f"ratings{suffix}", known_users, items[ITEM_COL].to_numpy())
    if users is None:
        users = pd.DataFrame({USER_COL: np.unique(ratings[USER_COL].to_numpy())})
    return MovieLens(ratings=ratings, users=users, items=items, genres=genres, root=root)


READERS: dict[str, Callable[[Path], MovieLens]] = {
    ML100K_NAME: load_movielens,
    "ml-1m": read_ml1m,
    "ml-10M100K": read_ml10m,
    "ml-20m": read_ml_csv,
    "ml-25m": read_ml_csv,
}
_CSV_REQUIRED = ("ratings.csv", "movies.csv", "tags.csv")
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    ML100K_NAME: ML100K_REQUIRED_FILES,
    "ml-1m": ("ratings.dat", "users.dat", "movies.dat"),
    "ml-10M100K": ("ratings.dat", "movies.dat", "tags.dat"),
    "ml-20m": _CSV_REQUIRED,
    "ml-25m": _CSV_REQUIRED,
}


def read_dataset(root: str | Path) -> MovieLens:
    """Read a MovieLens folder with the reader its name calls for (the official archives' folder names)."""
    root = Path(root)
    if root.name not in READERS:
        raise ConfigError(
            f"{root}: no reader for a folder named {root.name!r}; MovieLens folders are {', '.join(READERS)}"
        )
    return READERS[root.name](root)


# --- ratings and other all-number files: pandas' C parser, vectorised checks -----------------------------


def _read_ratings(path: Path, user_ids: np.ndarray | None, item_ids: np.ndarray) -> pd.DataFrame:
    """Ratings on the half-star grid 0.5..5, of known users (when given) and items, once per (user, item)."""
    header = CSV_HEADERS["ratings.csv"] if path.suffix == ".csv" else None
    ratings = _read_numbers(path, RATINGS_DTYPES, header)
    if ratings.empty:
        raise MovieLensFormatError(f"{path}: no ratings")
    first_line = 1 if header is None else 2
    values = ratings[RATING_COL].to_numpy()
    twice = values * 2
    _fail_first(
        ~((twice == np.round(twice)) & (values >= 0.5) & (values <= 5)),
        path,
        first_line,
        lambda row: f"rating must be 0.5..5 in half stars, got {values[row]:g}",
    )
    users, items = ratings[USER_COL].to_numpy(), ratings[ITEM_COL].to_numpy()
    if user_ids is not None:
        _check_known(users, user_ids, USER_COL, path, first_line)
    _check_known(items, item_ids, ITEM_COL, path, first_line)
    _fail_first(
        _repeated_pairs(users, items),
        path,
        first_line,
        lambda row: f"user {users[row]} rated item {items[row]} twice",
    )
    return ratings


def _read_numbers(path: Path, dtypes: dict[str, type], header: tuple[str, ...] | None) -> pd.DataFrame:
    """A file of numbers: a CSV with ``header``, or (``header`` None) a ``::`` file, read with ``:`` as the
    separator and the empty field between each pair of colons kept as a gap column that must stay empty."""
    require_file(path)
    if header is None:
        names = [name for column in dtypes for name in (column, f"_gap_{column}")][:-1]
    else:
        _check_header(path, header)
        names = list(dtypes)
    gaps = [name for name in names if name not in dtypes]
    options = {
        "sep": ":" if header is None else ",",
        "header": None if header is None else 0,
        "names": names,
        "index_col": False,
        "skip_blank_lines": False,  # row r is line r + 1 (+ 1 after a header)
        "keep_default_na": False,  # an empty or "NA" number is an error, not NaN
        "na_values": {gap: [""] for gap in gaps},
        "quoting": csv.QUOTE_NONE,
        "engine": "c",
    }
    try:
        try:
            frame = pd.read_csv(path, dtype={**dtypes, **dict.fromkeys(gaps, np.float32)}, **options)
        except ValueError:  # a field no number of its dtype, or too many fields: the second pass says where
            frame = None
        if frame is None or frame[gaps].notna().to_numpy().any():
            _raise_first_bad_line(path, dtypes, options)
    except pd.errors.ParserError as error:  # too many fields: pandas names the line
        found = _PARSER_LINE.search(str(error))
        if found is None:
            raise MovieLensFormatError(f"{path}: {error}") from None
        line, dat = int(found[1]), header is None
        raise _wrong_count(path, line, len(dtypes), _count_fields(path, line, dat), dat) from None
    return frame[list(dtypes)]


def _raise_first_bad_line(path: Path, dtypes: dict[str, type], options: dict) -> None:
    """Read the file again as text, a chunk at a time, and fail naming the first line the parser refused."""
    dat = options["header"] is None
    line = 1 if dat else 2
    for chunk in pd.read_csv(path, dtype=str, chunksize=1 << 20, **options):
        bad = pd.DataFrame({column: _not_a(chunk[column], dtype) for column, dtype in dtypes.items()})
        gaps = chunk.drop(columns=list(dtypes)).notna().any(axis=1)
        rows = (bad.any(axis=1) | gaps).to_numpy()
        if rows.any():
            row = int(rows.argmax())
            line += row
            found = _count_fields(path, line, dat)
            if found != len(dtypes) or not bad.iloc[row].any():
                raise _wrong_count(path, line, len(dtypes), found, dat)
            column = bad.columns[int(bad.iloc[row].to_numpy().argmax())]
            kind = "an integer" if np.issubdtype(dtypes[column], np.integer) else "a number"
            raise MovieLensFormatError(
                f"{path}:{line}: {column} must be {kind} ({np.dtype(dtypes[column])}), "
                f"got {chunk[column].iat[row]!r}"
            )
        line += len(chunk)
    raise MovieLensFormatError(f"{path}: pandas could not parse it, yet no line looks malformed")


def _not_a(texts: pd.Series, dtype: type) -> pd.Series:
    """Which texts do not parse as ``dtype`` (integers: digits only, within the dtype's range)."""
    numbers = pd.to_numeric(texts, errors="coerce")
    if not np.issubdtype(dtype, np.integer):
        return numbers.isna()
    limits = np.iinfo(dtype)
    digits = texts.str.fullmatch(r"\s*[+-]?\d+\s*").fillna(False).astype(bool)
    return ~digits | ~numbers.between(limits.min, limits.max)


def _count_fields(path: Path, line: int, dat: bool) -> int:
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        text = next(itertools.islice(handle, line - 1, None), "").rstrip("\r\n")
    if dat:
        return len(text.split(DAT_SEP)) if text else 0
    return len(next(csv.reader([text]), []))


def _wrong_count(path: Path, line: int, expected: int, found: int, dat: bool) -> MovieLensFormatError:
    sep = DAT_SEP if dat else ","
    return MovieLensFormatError(
        f"{path}:{line}: expected {expected} fields separated by {sep!r}, found {found}"
    )


def _check_header(path: Path, header: tuple[str, ...]) -> None:
    with open(path, encoding="utf-8", newline="") as handle:
        found = tuple(next(csv.reader(handle), ()))
    if found != header:
        raise MovieLensFormatError(
            f"{path}:1: expected the header {','.join(header)!r}, found {','.join(found)!r}"
        )


def _fail_first(bad: np.ndarray, path: Path, lines: int | np.ndarray, describe: Callable[[int], str]) -> None:
    """Fail naming the first bad row's line: ``lines[row]``, or ``lines + row`` for a file read whole."""
    if bad.any():
        row = int(bad.argmax())
        line = lines + row if isinstance(lines, int) else int(lines[row])
        raise MovieLensFormatError(f"{path}:{line}: {describe(row)}")


def _check_known(ids: np.ndarray, known: np.ndarray, column: str, path: Path, first_line: int) -> None:
    _fail_first(~np.isin(ids, known), path, first_line, lambda row: f"unknown {column} {ids[row]}")


def _repeated_pairs(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Rows repeating an earlier (user, item): one pass if sorted by user then item (10M on), else a sort."""
    keys = (users.astype(np.int64) << 32) | (items.astype(np.int64) & 0xFFFFFFFF)
    repeated = np.zeros(len(keys), dtype=bool)
    if (keys[1:] > keys[:-1]).all():
        return repeated
    order = np.argsort(keys, kind="stable")  # equal keys keep file order: all but the first are repeats
    ordered = keys[order]
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True
    return repeated


# --- text files: movies, users, tags (line by line: exact field counts and line numbers) -----------------


def _read_csv_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV text file (quoted commas and quotes) as strings with each row's line number, header checked."""
    require_file(path)
    _check_header(path, CSV_HEADERS[path.name])
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return table_of(path, ((reader.line_num, fields) for fields in reader if fields), columns, ",")


def _read_dat_movies(path: Path, encoding: str) -> pd.DataFrame:
    return read_table(path, DAT_SEP, (ITEM_COL, "title", "genres"), encoding=encoding)


def _catalog(movies: pd.DataFrame, path: Path, tags: pd.Series) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The items frame (every listed film, rated or not) and the set's genres in order of first use."""
    genres = [
        () if text in ("", NO_GENRES) else tuple(text.split("|")) for text in movies["genres"].str.strip()
    ]
    titles = title_fields(movies["title"])
    ids = to_int(movies, ITEM_COL, path).astype(np.int32)
    film_tags = tags.reindex(ids.to_numpy())
    items = pd.DataFrame(
        {
            ITEM_COL: ids,
            **titles,
            "year": titles["year"].astype("Int16"),
            "genres": genres,
            "tags": [t if isinstance(t, tuple) else () for t in film_tags],
        }
    )
    check_unique(items, movies, ITEM_COL, path)
    names = tuple(dict.fromkeys(name for film in genres for name in film))
    return items.sort_values(ITEM_COL, ignore_index=True), names


def _read_ml1m_users(path: Path) -> pd.DataFrame:
    """``UserID::Gender::Age::Occupation::Zip-code``: the age group's lower bound, the occupation's words."""
    raw = read_table(path, DAT_SEP, (USER_COL, "gender", "age", "occupation", "zip_code"))
    ages, codes = to_int(raw, "age", path), to_int(raw, "occupation", path)
    gender = raw["gender"].str.strip()
    _check_field(raw, "gender", ~gender.isin(["M", "F"]), "M or F", path)
    _check_field(raw, "age", ~ages.isin(ML1M_AGES), f"an age code {ML1M_AGES}", path)
    last = len(ML1M_OCCUPATIONS) - 1
    _check_field(raw, "occupation", ~codes.between(0, last), f"a code 0..{last}", path)
    users = pd.DataFrame(
        {
            USER_COL: to_int(raw, USER_COL, path).astype(np.int32),
            "age": ages.astype(np.int16),
            "gender": gender.astype("string"),
            "occupation": pd.array(np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes], dtype="string"),
            "zip_code": raw["zip_code"].str.strip().astype("string"),
        }
    )
    check_unique(users, raw, USER_COL, path)
    return users.sort_values(USER_COL, ignore_index=True)


def _check_field(raw: pd.DataFrame, column: str, bad: pd.Series, expected: str, path: Path) -> None:
    _fail_first(
        bad.to_numpy(),
        path,
        raw["_line"].to_numpy(),
        lambda row: f"{column} must be {expected}, got {raw[column].iat[row]!r}",
    )


def _typed_tags(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A tags table (user, item, tag, timestamp as text) with its numbers checked."""
    to_int(raw, TIMESTAMP_COL, path)
    return pd.DataFrame(
        {USER_COL: to_int(raw, USER_COL, path), ITEM_COL: to_int(raw, ITEM_COL, path), "tag": raw["tag"]}
    )


def _user_tags(tags: pd.DataFrame) -> pd.Series:
    """Each film's ``TOP_TAGS`` user tags (case-folded) by how many users applied them, ties alphabetical.

    Tags naming users or films the ratings do not know are kept or ignored, not refused: 10M has users
    who only tagged.
    """
    words = tags["tag"].str.strip().str.casefold()
    applied = pd.DataFrame({USER_COL: tags[USER_COL], ITEM_COL: tags[ITEM_COL], "tag": words})
    applied = applied[words != ""].drop_duplicates()
    counts = applied.groupby([ITEM_COL, "tag"]).size().reset_index(name="users")
    counts = counts.sort_values([ITEM_COL, "users", "tag"], ascending=[True, False, True], kind="stable")
    return counts.groupby(ITEM_COL).head(TOP_TAGS).groupby(ITEM_COL)["tag"].agg(tuple)


def _genome_tags(root: Path) -> pd.Series | None:
    """Each scored film's ``TOP_TAGS`` genome tags by relevance (ties by tag id); None without a genome.

    Memory: ~30 bytes a score at peak, then a films x tags matrix and its sort order (20M: 47 + 94 MB).
    """
    scores_path, names_path = root / "genome-scores.csv", root / "genome-tags.csv"
    if not (scores_path.is_file() or names_path.is_file()):
        return None
    raw = _read_csv_table(names_path, ("tag_id", "tag"))
    raw["tag_id"] = to_int(raw, "tag_id", names_path)
    check_unique(raw, raw, "tag_id", names_path)
    names = raw.set_index("tag_id")["tag"].sort_index()
    dtypes = {ITEM_COL: np.int32, "tag_id": np.int32, "relevance": np.float32}
    scores = _read_numbers(scores_path, dtypes, CSV_HEADERS[scores_path.name])
    tag_ids, relevance = scores["tag_id"].to_numpy(), scores["relevance"].to_numpy()
    columns = names.index.get_indexer(tag_ids)
    _fail_first(columns < 0, scores_path, 2, lambda row: f"unknown tag_id {tag_ids[row]}")
    _fail_first(
        ~((relevance >= 0) & (relevance <= 1)),
        scores_path,
        2,
        lambda row: f"relevance must be 0..1, got {relevance[row]:g}",
    )
    films, rows = np.unique(scores[ITEM_COL].to_numpy(), return_inverse=True)
    matrix = np.full((len(films), len(names)), -np.inf, dtype=np.float32)
    matrix[rows, columns] = relevance
    top = np.argsort(-matrix, axis=1, kind="stable")[:, :TOP_TAGS]
    scored = np.take_along_axis(matrix, top, axis=1) > -np.inf
    words = names.to_numpy(dtype=object)
    return pd.Series(
        [tuple(words[t[s]]) for t, s in zip(top, scored, strict=True)], index=films, dtype=object
    )
