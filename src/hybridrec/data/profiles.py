"""Text profiles of users and movies: what the language model reads.

A user's profile is built from the ratings it is given and from nothing else: callers pass the
training part of a fold, so a test rating can never reach a profile (the original project built
profiles from all ratings, which inflated its RMSE). On sets without demographics (10M and later)
it says what those ratings say and nothing more. Profiles are short and dense because embedding
cost grows with text length: a film's tags (10M and later) are cut to ``MAX_TAG_CHARS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, RATING_COL, USER_COL
from hybridrec.data.movielens import RatingScale, has_demographics

MAX_TAG_CHARS = 120  # a film text's tags, most relevant first, as many whole ones as fit in this
_GENDER_WORDS = {"M": "male", "F": "female"}
_DECADES = {
    1: "teens",
    2: "twenties",
    3: "thirties",
    4: "forties",
    5: "fifties",
    6: "sixties",
    7: "seventies",
}


@dataclass(frozen=True)
class ProfileConfig:
    """How much history a user profile shows."""

    max_liked: int = 6  # highest-rated films listed
    max_disliked: int = 3  # lowest-rated films listed (only ratings <= disliked_max_rating)
    disliked_max_rating: float = 2.0
    max_genres: int = 3  # liked / disliked genres named
    min_genre_ratings: int = 3  # a genre needs this many ratings before it counts as a taste
    described_told: int = 0  # ratings a user's training description tells (0: no descriptions)


def age_phrase(age: int) -> str:
    decade = _DECADES.get(int(age) // 10)
    return f"{age} ({decade})" if decade else f"{age}"


def demographic_profile(age: int, gender: str, occupation: str) -> str:
    """The part of a user profile known without ratings: all a cold-start user has."""
    gender_word = _GENDER_WORDS.get(str(gender), str(gender))
    occupation = str(occupation)
    job = "no occupation" if occupation == "none" else f"occupation: {occupation}"
    return f"Age: {age_phrase(age)}, gender: {gender_word}, {job}."


def movie_profile(title: str, year, genres, tags=()) -> str:
    """``Toy Story (1995). Genres: Animation, Children's, Comedy.``, then ``Tags: pixar, toys.`` where
    the film has tags (the most relevant first, as many whole ones as fit in ``MAX_TAG_CHARS``)."""
    year_text = f" ({int(year)})" if pd.notna(year) else ""
    genre_text = ", ".join(g for g in genres if g != "unknown") or "unknown"
    text = f"{title}{year_text}. Genres: {genre_text}."
    shown, length = [], 0
    for tag in tags:
        length += len(tag) + 2 * bool(shown)  # ", " between tags
        if length > MAX_TAG_CHARS:
            break
        shown.append(tag)
    return f"{text} Tags: {', '.join(shown)}." if shown else text


def film_mention(title: str, year, genres) -> str:
    year_text = f" ({int(year)})" if pd.notna(year) else ""
    genre_text = ", ".join(g for g in genres if g != "unknown")
    return f"'{title}{year_text}' ({genre_text})" if genre_text else f"'{title}{year_text}'"


def build_item_profiles(items: pd.DataFrame) -> pd.Series:
    """Movie profiles indexed by item id, in the order of ``items`` (its ``tags`` column, if any, read)."""
    tags = items["tags"] if "tags" in items else [()] * len(items)
    texts = [
        movie_profile(title, year, genres, film_tags)
        for title, year, genres, film_tags in zip(
            items["display_title"], items["year"], items["genres"], tags, strict=True
        )
    ]
    return pd.Series(texts, index=items[ITEM_COL].to_numpy(), name="profile")


def build_demographic_profiles(users: pd.DataFrame) -> pd.Series:
    """Demographics-only profiles indexed by user id (what protocol B knows of a cold user); ``users``
    must have demographics."""
    texts = [
        demographic_profile(a, g, o)
        for a, g, o in zip(users["age"], users["gender"], users["occupation"], strict=True)
    ]
    return pd.Series(texts, index=users[USER_COL].to_numpy(), name="profile")


def build_user_profiles(
    users: pd.DataFrame,
    items: pd.DataFrame,
    train_ratings: pd.DataFrame,
    config: ProfileConfig = ProfileConfig(),
    *,
    scale: RatingScale,
) -> pd.Series:
    """Profiles of all ``users`` from ``train_ratings`` alone, behind their demographics where the set
    has them (demographics only, or an empty text without, for users with no training ratings).
    Ratings are written out of the ``scale``'s top ("4.5/5").

    Liked films are the highest-rated, ties going to the films most rated in ``train_ratings``
    (well-known titles carry more meaning for a language model), then to the lower item id.
    """
    item_ids = items[ITEM_COL].to_numpy()
    mentions = np.array(
        [
            film_mention(t, y, g)
            for t, y, g in zip(items["display_title"], items["year"], items["genres"], strict=True)
        ],
        dtype=object,
    )
    genre_names, genre_matrix = _genre_matrix(items)
    item_pos = pd.Index(item_ids).get_indexer(train_ratings[ITEM_COL].to_numpy())
    if (item_pos < 0).any():
        raise ValueError("train_ratings names items that are not in items")
    user_ids = train_ratings[USER_COL].to_numpy()
    ratings = train_ratings[RATING_COL].to_numpy(dtype=np.float64)
    popularity = np.bincount(item_pos, minlength=len(item_ids))[item_pos]

    liked = np.lexsort((item_pos, -popularity, -ratings, user_ids))
    disliked = np.lexsort((item_pos, -popularity, ratings, user_ids))
    starts, stops = _user_slices(user_ids[liked])
    taste = _taste_sentences(user_ids, item_pos, ratings, genre_names, genre_matrix, config)

    top_rating = f"{scale.max:g}"
    demographics = (
        build_demographic_profiles(users) if has_demographics(users) else pd.Series("", index=users[USER_COL])
    )
    texts = []
    for user, known in zip(users[USER_COL], demographics, strict=True):
        parts = [known]
        if user in starts:
            lo, hi = starts[user], stops[user]
            top = liked[lo : min(hi, lo + config.max_liked)]
            parts.append(taste.get(user, ""))
            parts.append(
                "Loved: "
                + "; ".join(f"{mentions[item_pos[r]]} {ratings[r]:g}/{top_rating}" for r in top)
                + "."
            )
            shown = set(item_pos[top])
            low = [
                r
                for r in disliked[lo:hi]
                if ratings[r] <= config.disliked_max_rating and item_pos[r] not in shown
            ][: config.max_disliked]
            if low:
                parts.append(
                    "Disliked: "
                    + "; ".join(f"{mentions[item_pos[r]]} {ratings[r]:g}/{top_rating}" for r in low)
                    + "."
                )
        texts.append(" ".join(p for p in parts if p))
    return pd.Series(texts, index=users[USER_COL].to_numpy(), name="profile")


def _genre_matrix(items: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    names = sorted({g for genres in items["genres"] for g in genres if g != "unknown"})
    position = {g: j for j, g in enumerate(names)}
    matrix = np.zeros((len(items), len(names)))
    for row, genres in enumerate(items["genres"]):
        for g in genres:
            if g in position:
                matrix[row, position[g]] = 1.0
    return names, matrix


def _user_slices(sorted_users: np.ndarray) -> tuple[dict, dict]:
    """Start and stop of each user's run in an array sorted by user."""
    if len(sorted_users) == 0:
        return {}, {}
    boundaries = np.flatnonzero(np.diff(sorted_users)) + 1
    starts = np.r_[0, boundaries]
    stops = np.r_[boundaries, len(sorted_users)]
    users = sorted_users[starts].tolist()
    return dict(zip(users, starts.tolist(), strict=True)), dict(zip(users, stops.tolist(), strict=True))


def _taste_sentences(user_ids, item_pos, ratings, genre_names, genre_matrix, config: ProfileConfig) -> dict:
    """Genres each user rates above / below their own average, with enough ratings to mean something."""
    unique_users, user_pos = np.unique(user_ids, return_inverse=True)
    n_users = len(unique_users)
    rated = np.zeros((n_users, genre_matrix.shape[0]))
    summed = np.zeros_like(rated)
    np.add.at(rated, (user_pos, item_pos), 1.0)
    np.add.at(summed, (user_pos, item_pos), ratings)
    counts = rated @ genre_matrix
    sums = summed @ genre_matrix
    user_mean = summed.sum(1) / np.maximum(rated.sum(1), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = sums / counts - user_mean[:, None]
    sentences = {}
    for row, user in enumerate(unique_users.tolist()):
        ok = counts[row] >= config.min_genre_ratings
        order = np.argsort(deviation[row], kind="stable")
        likes = [genre_names[j] for j in order[::-1] if ok[j] and deviation[row, j] > 0][: config.max_genres]
        dislikes = [genre_names[j] for j in order if ok[j] and deviation[row, j] < 0][: config.max_genres]
        sentence = []
        if likes:
            sentence.append("Prefers " + ", ".join(likes))
        if dislikes:
            sentence.append("less keen on " + ", ".join(dislikes))
        if sentence:
            sentences[user] = "; ".join(sentence) + "."
    return sentences


def profile_lengths(texts: pd.Series) -> np.ndarray:
    """Word counts, for the data summary (a rough proxy for embedding cost)."""
    return texts.str.split().str.len().to_numpy()
