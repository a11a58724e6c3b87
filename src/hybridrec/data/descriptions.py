"""Descriptions of a user's tastes in their own words, built from a few of their ratings.

Protocol C tells the model what a new user says about themselves: a few of their ratings ("told")
become a sentence or three — the genres they rate high and low, sometimes films they loved by title,
sometimes their age and job — in varied wording. Each user gets several phrasings: one names genres
literally, one only paraphrases them ("scary movies", "whodunits", "cowboy films"), one leads with
the films. Nothing but the told ratings (and the demographics) reaches a description.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

# how people name each genre: literal forms first, then paraphrases that avoid the genre's own name
GENRE_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Action": (
        ("action films", "action movies"),
        ("shoot-'em-ups", "films full of car chases and explosions"),
    ),
    "Adventure": (("adventure films", "adventures"), ("treasure hunts and daring quests", "swashbucklers")),
    "Animation": (("animated films", "animation"), ("cartoons", "Pixar and Disney drawings come to life")),
    "Children's": (
        ("children's films", "kids' movies"),
        ("family films for little ones", "films for the kids"),
    ),
    "Comedy": (("comedies", "comedy films"), ("films that make me laugh", "anything funny")),
    "Crime": (("crime films", "crime dramas"), ("gangster pictures and heists", "mob stories")),
    "Documentary": (
        ("documentaries", "documentary films"),
        ("true stories filmed as they happened", "real-life films about real people"),
    ),
    "Drama": (("dramas", "serious dramas"), ("tearjerkers", "emotional, serious stories")),
    "Fantasy": (("fantasy films", "fantasy"), ("wizards, dragons and magic", "fairy tales")),
    "Film-Noir": (
        ("film noir", "noir films"),
        ("shadowy 1940s detective pictures", "hard-boiled private eyes and femmes fatales"),
    ),
    "Horror": (("horror films", "horror movies"), ("scary movies", "slashers and monsters")),
    "Musical": (
        ("musicals", "musical films"),
        ("song-and-dance pictures", "films where everyone bursts into song"),
    ),
    "Mystery": (("mysteries", "mystery films"), ("whodunits", "puzzles about who did it")),
    "Romance": (("romance", "romantic films"), ("love stories", "rom-coms and tender love affairs")),
    "Sci-Fi": (("science fiction", "sci-fi films"), ("space operas", "robots, aliens and the future")),
    "Thriller": (("thrillers", "thriller films"), ("edge-of-the-seat suspense", "nail-biters")),
    "War": (("war films", "war movies"), ("battlefield epics", "soldiers in combat")),
    "Western": (("westerns", "western films"), ("cowboy films", "gunslingers on the frontier")),
}
LOVE = ("I love {}", "I'm a big fan of {}", "Give me {} any day", "My favourites are {}", "I really enjoy {}")
HATE = ("I can't stand {}", "I don't like {}", "{} are not for me", "please no {}", "I avoid {}")
FILMS = (
    "I loved {}",
    "Films like {} are my favourites",
    "I really liked {}",
    "{} are the kind of films I like",
)
STYLES = ("literal", "paraphrase", "films")  # how each of a user's phrasings names their tastes


@dataclass(frozen=True)
class Told:
    """What one user tells: some of their ratings and who they are."""

    items: np.ndarray  # item ids
    ratings: np.ndarray
    age: int
    gender: str
    occupation: str


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def taste_genres(
    told: Told, genres_of: dict[int, tuple[str, ...]], liked_at: float = 4.0, disliked_at: float = 2.0
):
    """(liked, disliked) genres of the told ratings: the most frequent among the films rated at or
    above ``liked_at`` (two at most), and among those at or below ``disliked_at`` that are not liked
    (one at most)."""
    liked, disliked = Counter(), Counter()
    for item, rating in zip(told.items, told.ratings, strict=True):
        genres = [g for g in genres_of[int(item)] if g in GENRE_PHRASES]
        if rating >= liked_at:
            liked.update(genres)
        elif rating <= disliked_at:
            disliked.update(genres)
    top = [g for g, _ in sorted(liked.items(), key=lambda kv: (-kv[1], kv[0]))][:2]
    low = [g for g, _ in sorted(disliked.items(), key=lambda kv: (-kv[1], kv[0])) if g not in top][:1]
    return top, low


def _words(genres: list[str], form: int, rng: np.random.Generator) -> list[str]:
    """How each genre is named: literally (form 0) or by a paraphrase (form 1), one of two ways."""
    return [GENRE_PHRASES[g][form][int(rng.integers(2))] for g in genres]


def _demographics(told: Told) -> str:
    gender = {"M": "man", "F": "woman"}.get(told.gender, "person")
    job = "" if told.occupation in ("none", "other") else f", working as {_article(told.occupation)}"
    return f"I'm a {told.age}-year-old {gender}{job}."


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def describe(
    told: Told,
    titles: dict[int, str],
    genres_of: dict[int, tuple[str, ...]],
    rng: np.random.Generator,
) -> dict[str, str]:
    """One description per style of ``STYLES``, from the told ratings alone; ``rng`` chooses the
    wording, whether demographics are said, and which loved films are named."""
    liked, disliked = taste_genres(told, genres_of)
    loved = [int(i) for i, r in zip(told.items, told.ratings, strict=True) if r >= 4]
    rng.shuffle(loved)
    named = [titles[i] for i in loved[: int(rng.integers(1, 4))]] if loved else []
    say_who = rng.random() < 0.5
    out = {}
    for style in STYLES:
        form = 0 if style == "literal" else 1
        parts = []
        if style == "films" and named:
            parts.append(FILMS[int(rng.integers(len(FILMS)))].format(_join(named)) + ".")
        if liked:
            parts.append(LOVE[int(rng.integers(len(LOVE)))].format(_join(_words(liked, form, rng))) + ".")
        if disliked:
            hate = HATE[int(rng.integers(len(HATE)))].format(_join(_words(disliked, form, rng)))
            parts.append(hate[0].upper() + hate[1:] + ".")
        if style != "films" and named and rng.random() < 0.5:
            parts.append(FILMS[int(rng.integers(len(FILMS)))].format(_join(named)) + ".")
        if not parts:  # nothing liked or disliked among the told ratings
            parts.append("I'm not sure what I like yet.")
        if say_who:
            parts.insert(0, _demographics(told))
        out[style] = " ".join(parts)
    return out


def describe_users(told: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A description per style for every user of ``told`` (user_id, item_id, rating rows)."""
    titles = dict(zip(items["item_id"].to_numpy().tolist(), items["display_title"], strict=True))
    genres_of = dict(zip(items["item_id"].to_numpy().tolist(), items["genres"], strict=True))
    who = users.set_index("user_id")
    rows = []
    for user, group in told.groupby("user_id", sort=True):
        person = who.loc[user]
        facts = Told(
            group["item_id"].to_numpy(),
            group["rating"].to_numpy(),
            int(person["age"]),
            str(person["gender"]),
            str(person["occupation"]),
        )
        rng = np.random.default_rng([seed, int(user)])
        for style, text in describe(facts, titles, genres_of, rng).items():
            rows.append({"user_id": int(user), "style": style, "text": text})
    return pd.DataFrame(rows)


def training_descriptions(
    ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, told: int, seed: int
) -> pd.Series:
    """One description per user of ``users`` (indexed by user id), told from ``told`` of their
    ``ratings`` (a fold's fitting ratings) in one phrasing, both chosen with ``seed``: what the towers
    learn to read taste from when a known user is treated as new in training. Users without ratings
    get an empty text."""
    sample = tell(ratings, told, seed)
    texts = describe_users(sample, users, items, seed)
    chosen = texts.groupby("user_id", sort=True).sample(n=1, random_state=seed)
    return chosen.set_index("user_id")["text"].reindex(users["user_id"].to_numpy(), fill_value="")


def tell(ratings: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` ratings of each user (all but one at most), chosen with a generator seeded by (seed, user)."""
    rows = []
    for user, group in ratings.groupby("user_id", sort=True):
        rng = np.random.default_rng([seed, int(user)])
        size = min(n, max(len(group) - 1, 1))
        rows.append(group.iloc[np.sort(rng.choice(len(group), size=size, replace=False))])
    return pd.concat(rows, ignore_index=True)[["user_id", "item_id", "rating"]]
