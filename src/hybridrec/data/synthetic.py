"""Synthetic MovieLens sets in each official format, skewed and structured like the real ones.

Tests read them back through the readers and benchmarks write sets of any size. Latent user tastes and
film factors drive the ratings, the films' genres and their tags, so models have something to learn;
film popularity and user activity follow power laws, and every user has rated at least 20 films.
The same arguments write byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, ML100K_NAME, RATING_COL, TIMESTAMP_COL, USER_COL
from hybridrec.data.readers import CSV_HEADERS, DAT_SEP, ML1M_AGES, ML1M_OCCUPATIONS, NO_GENRES

MIN_USER_RATINGS = 20  # as in every MovieLens set
MAX_USER_SHARE = 0.7  # the most active user rates at most this share of the catalog (10M: 69%)
FACTORS = 8
_CHUNK = 1 << 18  # rows handled at a time where a whole pass would need large temporaries

ML_GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_CSV_GENRES = (*(g.replace("Children's", "Children") for g in ML_GENRES), "IMAX")
# share of films with each genre (about ML-1M's) and words for the titles of films that have it
_GENRES = {
    "Action": (0.13, ("Fury", "Strike", "Bullet", "Chase", "Thunder", "Vengeance")),
    "Adventure": (0.07, ("Quest", "Island", "Treasure", "Voyage", "Jungle", "Expedition")),
    "Animation": (0.03, ("Toon", "Doodle", "Sketch", "Pixel", "Puppet", "Crayon")),
    "Children's": (0.07, ("Puppy", "Bunny", "Teddy", "Kitten", "Pony", "Balloon")),
    "Comedy": (0.30, ("Oops", "Prank", "Goofy", "Blunder", "Wacky", "Silly")),
    "Crime": (0.05, ("Heist", "Alibi", "Mobster", "Witness", "Ransom", "Racket")),
    "Documentary": (0.03, ("Truth", "Chronicle", "Portrait", "Record", "Inside", "Frontline")),
    "Drama": (0.40, ("Letters", "Autumn", "Promise", "Widow", "Silence", "Bride")),
    "Fantasy": (0.02, ("Dragon", "Wizard", "Enchanted", "Sorcerer", "Elf", "Realm")),
    "Film-Noir": (0.01, ("Shadow", "Dame", "Smoke", "Rain", "Detour", "Nightfall")),
    "Horror": (0.09, ("Scream", "Crypt", "Blood", "Ghoul", "Grave", "Fear")),
    "Musical": (0.03, ("Melody", "Song", "Dance", "Rhythm", "Tango", "Chorus")),
    "Mystery": (0.03, ("Riddle", "Clue", "Secret", "Enigma", "Cipher", "Vanishing")),
    "Romance": (0.12, ("Kiss", "Sweetheart", "Valentine", "Amour", "Darling", "Rendezvous")),
    "Sci-Fi": (0.07, ("Galaxy", "Robot", "Alien", "Orbit", "Nebula", "Cyborg")),
    "Thriller": (0.13, ("Panic", "Trap", "Pursuit", "Hostage", "Deadline", "Paranoia")),
    "War": (0.04, ("Battalion", "Trench", "Sniper", "Frontier", "Armistice", "Siege")),
    "Western": (0.02, ("Outlaw", "Sheriff", "Saddle", "Canyon", "Gunslinger", "Rodeo")),
    "IMAX": (0.005, ("Horizon", "Everest", "Ocean", "Cosmos", "Giants", "Wings")),
}
_GENRES["Children"] = _GENRES["Children's"]
# words any title may use; the accents test the files' encodings (all are latin-1)
_COMMON_WORDS = ("Night", "Summer", "Café", "Paris", "Return", "Heart", "Über", "Señor", "Noël", "Fräulein")
_UTF8_WORDS = ("Łódź", "Tōkyō", "Ōkami")  # beyond latin-1: only in the UTF-8 sets
_ARTICLES = ("The", "The", "The", "A", "A", "Les", "Il")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# tags users apply and the genome scores; a few have capitals, one a comma, one quotes (CSV quoting)
_TAG_WORDS = (
    "atmospheric",
    "twist ending",
    "dark comedy",
    "based on a book",
    "space",
    "funny",
    "visually appealing",
    "thought-provoking",
    "quirky",
    "dystopia",
    "time travel",
    "surreal",
    "violence",
    "cult film",
    "classic",
    "Oscar (Best Picture)",
    "superhero",
    "zombies",
    "vampires",
    "heist",
    "mafia",
    "psychology",
    "nonlinear",
    "bittersweet",
    "feel-good",
    "slow, beautiful",
    'a "must see"',
    "World War II",
    "coming of age",
    "friendship",
    "revenge",
    "road trip",
    "musical numbers",
    "animated",
    "for kids",
    "scary",
    "gore",
    "romantic",
    "tearjerker",
    "satire",
    "noir",
    "cowboys",
    "documentary",
    "true story",
    "magic",
    "robots",
    "aliens",
    "cinematography",
)
_OCCUPATIONS_100K = (
    "administrator",
    "artist",
    "doctor",
    "educator",
    "engineer",
    "entertainment",
    "executive",
    "healthcare",
    "homemaker",
    "lawyer",
    "librarian",
    "marketing",
    "none",
    "other",
    "programmer",
    "retired",
    "salesman",
    "scientist",
    "student",
    "technician",
    "writer",
)


@dataclass(frozen=True)
class _Format:
    """What a set's files hold: genres, star grid, demographics, tags, genome, time span, id gaps."""

    genres: tuple[str, ...]  # as its files name them, in its order (100K: u.genre's)
    period: tuple[str, str]  # first and last rating day
    encoding: str = "utf-8"  # of its titles (u.item, movies.dat)
    half_stars: bool = True
    demographics: bool = False
    tags: bool = True
    genome: bool = False
    id_spread: tuple[float, float] = (1.03, 3.0)  # highest user and item id over their count (ids skip)
    no_genre_share: float = 0.002  # films without a genre (100K: "unknown", 10M on: "(no genres listed)")
    unrated_share: float = 0.0  # listed films nobody rated (1M: 4.6%, 25M: 5.4%)


FORMATS = {
    ML100K_NAME: _Format(
        ("unknown", *ML_GENRES),
        ("1997-09-20", "1998-04-22"),
        encoding="latin-1",
        half_stars=False,
        demographics=True,
        tags=False,
        id_spread=(1.0, 1.0),
    ),
    "ml-1m": _Format(
        ML_GENRES,
        ("2000-04-25", "2003-02-28"),
        encoding="latin-1",
        half_stars=False,
        demographics=True,
        tags=False,
        id_spread=(1.0, 1.02),
        no_genre_share=0.0,
        unrated_share=0.045,
    ),
    "ml-10M100K": _Format((*ML_GENRES, "IMAX"), ("1996-01-29", "2009-01-05")),
    "ml-20m": _Format(
        _CSV_GENRES, ("1995-01-09", "2015-03-31"), genome=True, no_genre_share=0.01, unrated_share=0.02
    ),
    "ml-25m": _Format(
        _CSV_GENRES, ("1995-01-09", "2019-11-21"), genome=True, no_genre_share=0.05, unrated_share=0.055
    ),
}


@dataclass(frozen=True)
class SyntheticSet:
    """A generated set as its reader should return it (the tests' ground truth), plus its raw tags."""

    name: str
    ratings: pd.DataFrame  # user_id, item_id, rating, timestamp in the order of the set's ratings file
    users: pd.DataFrame  # user_id, and age, gender, occupation, zip_code where the format has them
    items: pd.DataFrame  # item_id, title, year (<NA> without one), genres: every film, rated or not
    genres: tuple[str, ...]  # the format's genre names
    tags: pd.DataFrame | None  # user_id, item_id, tag, timestamp as written (10M on)
    genome: pd.DataFrame | None  # item_id, tag_id, relevance (20M, 25M)
    genome_tags: pd.DataFrame | None  # tag_id, tag


def make_synthetic(
    name: str,
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    *,
    tag_share: float = 0.02,
    genome_share: float = 0.4,
) -> SyntheticSet:
    """A synthetic set in the format of ``name``; ``tag_share`` of the ratings come with a user tag, and
    the genome scores the ``genome_share`` most rated films. Memory: ~50 bytes a rating at peak."""
    if name not in FORMATS:
        raise ValueError(f"unknown MovieLens format {name!r}; formats are {', '.join(FORMATS)}")
    most = max(MIN_USER_RATINGS, int(MAX_USER_SHARE * n_items))
    if n_items < MIN_USER_RATINGS or not MIN_USER_RATINGS * n_users <= n_ratings <= most * n_users:
        raise ValueError(
            f"{n_users} users with {MIN_USER_RATINGS}..{most} ratings each cannot make {n_ratings} ratings "
            f"on {n_items} films (at least {MIN_USER_RATINGS} films)"
        )
    fmt = FORMATS[name]
    rng = np.random.default_rng(seed)
    users, user_factors, user_bias = _users(rng, name, n_users)
    item_factors = rng.normal(0.0, 1.0, (n_items, FACTORS)).astype(np.float32)
    zipf = (1.0 + rng.permutation(n_items)) ** -0.9  # in no particular id order
    item_bias = rng.normal(0.0, 0.35, n_items) + 0.15 * _standard(np.log(zipf))
    popularity = zipf * (rng.random(n_items) >= fmt.unrated_share)
    items = _items(rng, fmt, item_factors, _ids(rng, n_items, fmt.id_spread[1]))

    keys = _pick(rng, _activity(rng, n_users, n_ratings, most), popularity)
    user_rows, item_rows = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
    del keys
    since, spell = _active_spells(rng, fmt.period, n_users)
    stars, stamps = np.empty(n_ratings, dtype=np.float32), np.empty(n_ratings, dtype=np.int64)
    for start in range(0, n_ratings, _CHUNK):  # a chunk at a time: no temporaries as long as the ratings
        rows = slice(start, start + _CHUNK)
        u, i = user_rows[rows], item_rows[rows]
        taste = np.einsum("ij,ij->i", user_factors[u], item_factors[i])
        score = 3.45 + user_bias[u] + item_bias[i] + taste + rng.normal(0.0, 0.7, len(u))
        stars[rows] = _round_to_stars(rng, score, fmt.half_stars)
        stamps[rows] = since[u] + rng.random(len(u)) * spell[u]
    ratings = pd.DataFrame(
        {
            USER_COL: users[USER_COL].to_numpy()[user_rows],
            ITEM_COL: items[ITEM_COL].to_numpy()[item_rows],
            RATING_COL: stars,
            TIMESTAMP_COL: stamps,
        }
    )
    if name == ML100K_NAME:  # u.data is in no order: its order makes the u1..u5 folds
        ratings = ratings.iloc[rng.permutation(len(ratings))]
    elif name == "ml-1m":  # by user, in no order within a user
        ratings = ratings.iloc[np.lexsort((rng.random(len(ratings)), user_rows))]
    ratings = ratings.reset_index(drop=True)  # later sets: by user, then film

    tags = genome = genome_tags = None
    if fmt.tags or fmt.genome:
        relevance = _relevance(rng, item_factors)
    if fmt.tags:
        tags = _user_tags(rng, ratings, items, relevance, round(tag_share * len(ratings)))
    if fmt.genome:
        genome, genome_tags = _genome(ratings, items, relevance, genome_share)
    return SyntheticSet(name, ratings, users, items, fmt.genres, tags, genome, genome_tags)


def write_synthetic(
    data_dir: str | Path, name: str, n_users: int, n_items: int, n_ratings: int, seed: int = 0, **options
) -> Path:
    """Write a synthetic set as ``data_dir/name/`` in that set's exact format and return the folder."""
    return write_files(data_dir, make_synthetic(name, n_users, n_items, n_ratings, seed, **options))


def write_files(data_dir: str | Path, data: SyntheticSet) -> Path:
    """Write ``data`` as ``data_dir/<its name>/``: the official file names, separators and encodings."""
    folder = Path(data_dir) / data.name
    folder.mkdir(parents=True, exist_ok=True)
    if data.name == ML100K_NAME:
        _write_100k(folder, data)
    elif data.name == "ml-1m":
        _write_ml1m(folder, data)
    elif data.name == "ml-10M100K":
        _write_ml10m(folder, data)
    else:
        _write_ml_csv(folder, data)
    return folder


def make_archive(
    name: str = ML100K_NAME, n_users: int = 40, n_items: int = 60, n_ratings: int = 1200, seed: int = 0
) -> bytes:
    """A synthetic set zipped as the official archive is (one top folder); same arguments, same bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_synthetic(tmp, name, n_users, n_items, n_ratings, seed)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(zipfile.ZipInfo(f"{name}/"), b"")
            for path in sorted(folder.iterdir()):
                archive.writestr(
                    zipfile.ZipInfo(f"{name}/{path.name}"), path.read_bytes(), zipfile.ZIP_DEFLATED
                )
        return buffer.getvalue()


# --- the latent model ------------------------------------------------------------------------------------


def _round_to_stars(rng: np.random.Generator, score: np.ndarray, half_stars: bool) -> np.ndarray:
    """Scores to stars: whole 1..5, or 0.5..5 where people still give whole stars more often than half."""
    if not half_stars:
        return np.clip(np.rint(score), 1.0, 5.0)
    stars = np.where(rng.random(len(score)) < 0.4, np.rint(score * 2) / 2, np.rint(score))
    return np.clip(stars, 0.5, 5.0)


def _active_spells(rng: np.random.Generator, period: tuple[str, str], n_users: int) -> tuple[np.ndarray, ...]:
    """When each user starts rating (seconds) and for how long (exponential), inside the set's period."""
    first, last = (int(pd.Timestamp(day).timestamp()) for day in period)
    since = first + rng.random(n_users) * (last - first)
    return since, np.minimum(rng.exponential(0.15 * (last - first), n_users), last - since)


def _standard(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() or 1.0)


def _ids(rng: np.random.Generator, n: int, spread: float) -> np.ndarray:
    """``n`` sorted ids from 1; with ``spread`` > 1 drawn from 1..n*spread, so that some are skipped."""
    top = max(n, int(np.ceil(n * spread)))
    return np.sort(rng.choice(np.arange(1, top + 1, dtype=np.int32), n, replace=False))


def _users(rng: np.random.Generator, name: str, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The users frame with their tastes (factors) and biases; demographics shift the tastes a little."""
    fmt = FORMATS[name]
    factors = rng.normal(0.0, 0.25, (n, FACTORS)).astype(np.float32)
    bias = rng.normal(0.0, 0.35, n)
    users = pd.DataFrame({USER_COL: _ids(rng, n, fmt.id_spread[0])})
    if not fmt.demographics:
        return users, factors, bias
    male = rng.random(n) < 0.71
    if name == ML100K_NAME:
        age = np.clip(np.rint(rng.normal(33, 11, n)), 7, 73).astype(np.int16)
        occupation = np.asarray(_OCCUPATIONS_100K, dtype=object)[rng.integers(len(_OCCUPATIONS_100K), size=n)]
        zips = [f"{z:05d}" for z in rng.integers(0, 100_000, n)]
    else:
        shares = np.array([0.04, 0.18, 0.35, 0.2, 0.09, 0.08, 0.06])
        age = np.asarray(ML1M_AGES, dtype=np.int16)[rng.choice(len(ML1M_AGES), n, p=shares)]
        occupation = np.asarray(ML1M_OCCUPATIONS, dtype=object)[rng.integers(len(ML1M_OCCUPATIONS), size=n)]
        suffix = rng.integers(0, 10_000, n)
        zips = [
            f"{z:05d}" + (f"-{s:04d}" if s < 500 else "")
            for z, s in zip(rng.integers(0, 100_000, n), suffix, strict=True)
        ]
    group = np.searchsorted(ML1M_AGES, age, side="right") - 1
    factors += rng.normal(0.0, 0.15, (2, FACTORS)).astype(np.float32)[male.astype(int)]
    factors += rng.normal(0.0, 0.15, (len(ML1M_AGES), FACTORS)).astype(np.float32)[group]
    users["age"] = age
    users["gender"] = pd.array(np.where(male, "M", "F"), dtype="string")
    users["occupation"] = pd.array(occupation, dtype="string")
    users["zip_code"] = pd.array(zips, dtype="string")
    return users, factors, bias


def _items(rng: np.random.Generator, fmt: _Format, factors: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """Films: genres from their latent factors (each genre a direction), titles from their genres' words."""
    n = len(factors)
    genres = [g for g in fmt.genres if g in _GENRES]  # the genres a film can have (not "unknown")
    directions = rng.normal(0.0, 1.0, (len(genres), FACTORS))
    scores = factors @ directions.T / np.sqrt(FACTORS) + rng.normal(0.0, 0.5, (n, len(genres)))
    margin = scores - np.quantile(scores, [1 - _GENRES[g][0] for g in genres], axis=0).diagonal()
    has = margin > 0
    lonely = ~has.any(axis=1) & (rng.random(n) >= fmt.no_genre_share)
    has[lonely, margin[lonely].argmax(axis=1)] = True  # most films have a genre
    names = np.asarray(genres, dtype=object)
    film_genres = [tuple(names[row]) for row in has]
    if "unknown" in fmt.genres:
        film_genres = [g or ("unknown",) for g in film_genres]

    main = margin.argmax(axis=1)
    utf8 = fmt.encoding == "utf-8"
    common = _COMMON_WORDS + (_UTF8_WORDS if utf8 else ())
    last_year = int(fmt.period[1][:4])
    years = np.clip(last_year - np.floor(rng.exponential(12.0, n)), 1915, last_year).astype(int)
    dated = ~(utf8 & (rng.random(n) < 0.01))  # a few later films have no year in their title
    pattern = rng.choice(7, n, p=[0.45, 0.1, 0.12, 0.08, 0.1, 0.05, 0.1])
    words = rng.integers(0, 1 << 30, (n, 4))
    titles = []
    for film in range(n):
        own = _GENRES[genres[main[film]]][1]
        a, b = own[words[film, 0] % len(own)], common[words[film, 1] % len(common)]
        c = own[words[film, 2] % len(own)]
        article = _ARTICLES[words[film, 3] % len(_ARTICLES)]
        title = (
            f"{a} {b}",
            f"{a} of the {b}",
            f"{b} {a}, {article}",  # "Usual Suspects, The": MovieLens moves articles to the end
            f"{a}, {b} and {c}",
            f"{a}: {b} Returns",
            f'"{a}" {b}',
            f"{a} {b} {2 + words[film, 3] % 3}",
        )[pattern[film]]
        titles.append(f"{title} ({years[film]})" if dated[film] else title)
    return pd.DataFrame(
        {
            ITEM_COL: ids,
            "title": pd.array(titles, dtype="string"),
            "year": pd.Series(years, dtype="Int16").mask(~dated),
            "genres": film_genres,
        }
    )


def _activity(rng: np.random.Generator, n_users: int, n_ratings: int, most: int) -> np.ndarray:
    """Ratings per user: ``MIN_USER_RATINGS``..``most``, heavy-tailed, summing to ``n_ratings``."""
    weights = rng.lognormal(0.0, 1.2, n_users)
    counts = MIN_USER_RATINGS + rng.multinomial(
        n_ratings - MIN_USER_RATINGS * n_users, weights / weights.sum()
    )
    while (excess := int(np.clip(counts - most, 0, None).sum())) > 0:  # hand what is over the cap to others
        counts = np.minimum(counts, most)
        room = weights * (counts < most)
        counts += rng.multinomial(excess, room / room.sum())
    return counts


def _pick(rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Each user's films, drawn by popularity without repeats: sorted keys ``user row * n_items + film row``.

    Users who rate over a tenth of the catalog take a Gumbel top-k over every film; the others draw
    with replacement, in blocks of about ``_CHUNK`` ratings so that the temporaries stay small.
    """
    n_items = len(popularity)
    heavy = counts > n_items // 10
    with np.errstate(divide="ignore"):  # a film nobody rates: log 0 = -inf, never among the top k
        log_p = np.log(popularity)
    blocks = [_pick_heavy(rng, np.flatnonzero(heavy), counts[heavy], log_p)]
    light = np.flatnonzero(~heavy)
    cuts = np.searchsorted(np.cumsum(counts[light]), np.arange(_CHUNK, counts[light].sum(), _CHUNK))
    cdf = np.cumsum(popularity / popularity.sum())
    for users in np.split(light, cuts):
        blocks.append(_pick_light(rng, users, counts[users], cdf))
    return np.sort(np.concatenate(blocks))


def _pick_light(
    rng: np.random.Generator, users: np.ndarray, counts: np.ndarray, cdf: np.ndarray
) -> np.ndarray:
    """Draws with replacement keeping first sightings, in rounds until every user has their count."""
    n_items = len(cdf)
    picked = np.empty(0, dtype=np.int64)  # sorted keys: position in ``users`` * n_items + film row
    need = counts.copy()
    while need.any():
        rows = np.flatnonzero(need)
        owners = np.repeat(rows.astype(np.int64), need[rows] + need[rows] // 2 + 4)
        films = np.minimum(np.searchsorted(cdf, rng.random(len(owners)), side="right"), n_items - 1)
        keys = owners * n_items + films
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]  # first sightings, still grouped by user
        if len(picked):  # not a film the user took in an earlier round
            keys = keys[picked[np.minimum(picked.searchsorted(keys), len(picked) - 1)] != keys]
        owners = keys // n_items
        keys = keys[np.arange(len(keys)) - np.searchsorted(owners, owners) < need[owners]]
        picked = np.sort(np.concatenate([picked, keys]))
        need -= np.bincount(keys // n_items, minlength=len(need))
    return users[picked // n_items].astype(np.int64) * n_items + picked % n_items


def _pick_heavy(
    rng: np.random.Generator, users: np.ndarray, counts: np.ndarray, log_p: np.ndarray
) -> np.ndarray:
    n_items = len(log_p)
    batch = max(1, _CHUNK * 4 // n_items)
    keys = [np.empty(0, dtype=np.int64)]
    for start in range(0, len(users), batch):
        rows, wanted = users[start : start + batch], counts[start : start + batch]
        order = np.argsort(-(log_p + rng.gumbel(size=(len(rows), n_items))), axis=1)
        films = order[np.arange(n_items) < wanted[:, None]]
        keys.append(np.repeat(rows.astype(np.int64), wanted) * n_items + films)
    return np.concatenate(keys)


def _relevance(rng: np.random.Generator, factors: np.ndarray) -> np.ndarray:
    """How well each of ``_TAG_WORDS`` fits each film (0..1, mostly low as in the genome)."""
    directions = rng.normal(0.0, 1.0, (len(_TAG_WORDS), FACTORS))
    logits = (
        2.0 * factors @ directions.T / np.sqrt(FACTORS)
        - 1.5
        + rng.normal(0.0, 0.5, (len(factors), len(_TAG_WORDS)))
    )
    return np.round(1.0 / (1.0 + np.exp(-logits)), 5)


def _user_tags(
    rng: np.random.Generator, ratings: pd.DataFrame, items: pd.DataFrame, relevance: np.ndarray, n: int
) -> pd.DataFrame:
    """``n`` tags, each by a user on a film they rated: one of the film's five most fitting, in any case."""
    rows = np.sort(rng.choice(len(ratings), n, replace=False))
    films = items[ITEM_COL].to_numpy().searchsorted(ratings[ITEM_COL].to_numpy()[rows])
    fitting = np.argsort(-relevance, axis=1, kind="stable")[:, :5]
    words = fitting[films, rng.integers(0, 5, n)]
    spellings = np.array([[w, w.title(), w.upper()] for w in _TAG_WORDS], dtype=object)
    case = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    return pd.DataFrame(
        {
            USER_COL: ratings[USER_COL].to_numpy()[rows],
            ITEM_COL: ratings[ITEM_COL].to_numpy()[rows],
            "tag": spellings[words, case],
            TIMESTAMP_COL: ratings[TIMESTAMP_COL].to_numpy()[rows] + rng.integers(0, 30 * 86_400, n),
        }
    )


def _genome(
    ratings: pd.DataFrame, items: pd.DataFrame, relevance: np.ndarray, share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every tag for the ``share`` most rated films (the real genome covers the well-rated ones)."""
    rated = np.bincount(
        items[ITEM_COL].to_numpy().searchsorted(ratings[ITEM_COL].to_numpy()), minlength=len(items)
    )
    films = np.sort(np.argsort(-rated, kind="stable")[: max(1, int(share * len(items)))])
    genome = pd.DataFrame(
        {
            ITEM_COL: np.repeat(items[ITEM_COL].to_numpy()[films], len(_TAG_WORDS)),
            "tag_id": np.tile(np.arange(1, len(_TAG_WORDS) + 1, dtype=np.int32), len(films)),
            "relevance": relevance[films].ravel(),
        }
    )
    names = pd.DataFrame({"tag_id": np.arange(1, len(_TAG_WORDS) + 1, dtype=np.int32), "tag": _TAG_WORDS})
    return genome, names


# --- writers ---------------------------------------------------------------------------------------------


def _stars(ratings: pd.Series, template: str) -> pd.Categorical:
    """Ratings as text (``%g``: 4, 4.5; ``%.1f``: 4.0, 4.5) through a lookup, not a format per row."""
    labels = [template % (k / 2) for k in range(11)]
    return pd.Categorical.from_codes((ratings.to_numpy() * 2).astype(np.int8), labels)


def _write_numbers(path: Path, frame: pd.DataFrame, sep: str, header: Iterable[str] | None = None) -> None:
    """Rows of plain values (no separator inside), a chunk at a time; ``::`` as ``:`` around empty columns."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if header is not None:
            handle.write(sep.join(header) + "\n")
        for start in range(0, len(frame), _CHUNK):
            chunk = frame.iloc[start : start + _CHUNK]
            if sep == DAT_SEP:
                gap = np.full(len(chunk), "", dtype=object)
                columns = [column for name in chunk for column in (chunk[name].to_numpy(), gap)][:-1]
                chunk = pd.DataFrame(dict(enumerate(columns)))
            chunk.to_csv(
                handle, sep=sep[0], header=False, index=False, quoting=csv.QUOTE_NONE, lineterminator="\n"
            )


def _write_lines(path: Path, lines: Iterable[str], encoding: str = "utf-8") -> None:
    with open(path, "w", encoding=encoding, newline="") as handle:
        handle.writelines(f"{line}\n" for line in lines)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    """A CSV file of the 20M/25M kind: its header, UTF-8, only fields with commas or quotes quoted."""
    frame.to_csv(path, header=list(CSV_HEADERS[path.name]), index=False, lineterminator="\n")


def _genre_text(genres: tuple[str, ...]) -> str:
    return "|".join(genres) or NO_GENRES


def _write_100k(folder: Path, data: SyntheticSet) -> None:
    ratings, items = data.ratings.astype({RATING_COL: np.int8}), data.items
    _write_numbers(folder / "u.data", ratings, "\t")
    flags = [[("1" if g in film else "0") for g in data.genres] for film in items["genres"]]
    _write_lines(
        folder / "u.item",
        (
            f"{i}|{t}|{1 + i % 28:02d}-{_MONTHS[i % 12]}-{y}||"
            f"http://us.imdb.com/M/title-exact?{urllib.parse.quote(t)}|{'|'.join(f)}"
            for i, t, y, f in zip(items[ITEM_COL], items["title"], items["year"], flags, strict=True)
        ),
        encoding=FORMATS[data.name].encoding,
    )
    _write_lines(folder / "u.genre", [*(f"{g}|{k}" for k, g in enumerate(data.genres)), ""])
    users = data.users
    _write_numbers(folder / "u.user", users[[USER_COL, "age", "gender", "occupation", "zip_code"]], "|")
    _write_lines(folder / "u.occupation", _OCCUPATIONS_100K)
    _write_lines(folder / "u.info", [f"{len(users)} users", f"{len(items)} items", f"{len(ratings)} ratings"])
    # as the archive's mku.sh: u<k>.test is the k-th fifth of u.data; ua/ub.test hold each user's
    # first and second ten ratings in u.data's order; every file sorted by user, then film
    n = len(ratings)
    users_col = ratings[USER_COL].to_numpy()
    by_user = np.argsort(users_col, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_user] = np.arange(n) - np.searchsorted(users_col[by_user], users_col[by_user])
    held = {f"u{k + 1}": np.arange(n) * 5 // n == k for k in range(5)}
    held.update(ua=rank < 10, ub=(rank >= 10) & (rank < 20))
    order = np.lexsort((ratings[ITEM_COL].to_numpy(), users_col))
    for split, test in held.items():
        _write_numbers(folder / f"{split}.base", ratings.iloc[order[~test[order]]], "\t")
        _write_numbers(folder / f"{split}.test", ratings.iloc[order[test[order]]], "\t")


def _write_ml1m(folder: Path, data: SyntheticSet) -> None:
    _write_numbers(folder / "ratings.dat", data.ratings.astype({RATING_COL: np.int8}), DAT_SEP)
    users = data.users
    codes = pd.Series(range(len(ML1M_OCCUPATIONS)), index=ML1M_OCCUPATIONS)[users["occupation"]].to_numpy()
    columns = {USER_COL: users[USER_COL], "gender": users["gender"], "age": users["age"], "code": codes}
    _write_numbers(folder / "users.dat", pd.DataFrame({**columns, "zip_code": users["zip_code"]}), DAT_SEP)
    _write_movies_dat(folder / "movies.dat", data.items, FORMATS[data.name].encoding)


def _write_ml10m(folder: Path, data: SyntheticSet) -> None:
    ratings = data.ratings.assign(**{RATING_COL: _stars(data.ratings[RATING_COL], "%g")})
    _write_numbers(folder / "ratings.dat", ratings, DAT_SEP)
    _write_movies_dat(folder / "movies.dat", data.items, FORMATS[data.name].encoding)
    tags = data.tags
    _write_lines(
        folder / "tags.dat",
        (
            DAT_SEP.join(map(str, row))
            for row in tags[[USER_COL, ITEM_COL, "tag", TIMESTAMP_COL]].itertuples(index=False)
        ),
    )


def _write_movies_dat(path: Path, items: pd.DataFrame, encoding: str) -> None:
    _write_lines(
        path,
        (
            f"{i}{DAT_SEP}{t}{DAT_SEP}{_genre_text(g)}"
            for i, t, g in zip(items[ITEM_COL], items["title"], items["genres"], strict=True)
        ),
        encoding=encoding,
    )


def _write_ml_csv(folder: Path, data: SyntheticSet) -> None:
    ratings = data.ratings.assign(**{RATING_COL: _stars(data.ratings[RATING_COL], "%.1f")})
    _write_numbers(folder / "ratings.csv", ratings, ",", header=CSV_HEADERS["ratings.csv"])
    items = data.items
    _write_csv(
        folder / "movies.csv", items[[ITEM_COL, "title"]].assign(genres=items["genres"].map(_genre_text))
    )
    _write_csv(folder / "tags.csv", data.tags)
    ids = items[ITEM_COL].to_numpy().astype(np.int64)
    tmdb = pd.Series(ids + 8_000, dtype="Int64").mask(ids % 50 == 0)  # a few films lack a TMDb id
    _write_csv(
        folder / "links.csv",
        pd.DataFrame({ITEM_COL: ids, "imdb": [f"{i * 7919 % 10**7:07d}" for i in ids], "tmdb": tmdb}),
    )
    _write_numbers(folder / "genome-scores.csv", data.genome, ",", header=CSV_HEADERS["genome-scores.csv"])
    _write_csv(folder / "genome-tags.csv", data.genome_tags)


def main(argv: list[str] | None = None) -> None:
    """``python -m hybridrec.data.synthetic DATA_DIR NAME --users N --items N --ratings N --seed S``."""
    parser = argparse.ArgumentParser(description="Write a synthetic MovieLens set in an official format.")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("name", choices=list(FORMATS))
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--ratings", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_synthetic(args.data_dir, args.name, args.users, args.items, args.ratings, args.seed))


if __name__ == "__main__":
    main()
