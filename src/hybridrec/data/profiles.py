"""Text profiles of users and movies: what the language model reads.

A user's profile is built from the ratings it is given and from nothing else: callers pass the
training part of a fold, so a test rating can never reach a profile (the original project built
profiles from all ratings, which inflated its RMSE). Profiles are short and dense because embedding
cost grows with text length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, RATING_COL, USER_COL

_GENDER_WORDS = {"M": "male", "F": "female"}
_DECADES = {1: "teens", 2: "twenties", 3: "thirties", 4: "forties", 5: "fifties", 6: "sixties", 7: "seventies"}


@dataclass(frozen=True)
class ProfileConfig:
    """How much history a user profile shows."""

    max_liked: int = 6  # highest-rated films listed
    max_disliked: int = 3  # lowest-rated films listed (only ratings <= disliked_max_rating)
    disliked_max_rating: float = 2.0
    max_genres: int = 3  # liked / disliked genres named
    min_genre_ratings: int = 3  # a genre needs this many ratings before it counts as a taste


def age_phrase(age: int) -> str:
    decade = _DECADES.get(int(age) // 10)
    return f"{age} ({decade})" if decade else f"{age}"


def demographic_profile(age: int, gender: str, occupation: str) -> str:
    """The part of a user profile known without ratings: all a cold-start user has."""
    gender_word = _GENDER_WORDS.get(str(gender), str(gender))
    occupation = str(occupation)
    job = "no occupation" if occupation == "none" else f"occupation: {occupation}"
    return f"Age: {age_phrase(age)}, gender: {gender_word}, {job}."


def movie_profile(title: str, year, genres) -> str:
    """``Toy Story (1995). Genres: Animation, Children's, Comedy.``"""
    year_text = f" ({int(year)})" if pd.notna(year) else ""
    genre_text = ", ".join(g for g in genres if g != "unknown") or "unknown"
    return f"{title}{year_text}. Genres: {genre_text}."


def film_mention(title: str, year, genres) -> str:
    year_text = f" ({int(year)})" if pd.notna(year) else ""
    genre_text = ", ".join(g for g in genres if g != "unknown")
    return f"'{title}{year_text}' ({genre_text})" if genre_text else f"'{title}{year_text}'"


def build_item_profiles(items: pd.DataFrame) -> pd.Series:
    """Movie profiles indexed by item id, in the order of ``items``."""
    texts = [
        movie_profile(title, year, genres)
        for title, year, genres in zip(items["display_title"], items["year"], items["genres"], strict=True)
    ]
    return pd.Series(texts, index=items[ITEM_COL].to_numpy(), name="profile")


def build_demographic_profiles(users: pd.DataFrame) -> pd.Series:
    """Demographics-only profiles indexed by user id (what protocol B knows of a cold user)."""
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
) -> pd.Series:
    """Profiles of all ``users`` from ``train_ratings`` alone (demographics only for users without any).

    Liked films are the highest-rated, ties going to the films most rated in ``train_ratings``
    (well-known titles carry more meaning for a language model), then to the lower item id.
    """
    genres_by_item = dict(zip(items[ITEM_COL], items["genres"], strict=True))
    mention_by_item = {
        item: film_mention(title, year, genres)
        for item, title, year, genres in zip(
            items[ITEM_COL], items["display_title"], items["year"], items["genres"], strict=True
        )
    }
    popularity = train_ratings[ITEM_COL].value_counts()
    ranked = train_ratings.assign(_pop=train_ratings[ITEM_COL].map(popularity).to_numpy())
    liked_order = ranked.sort_values([USER_COL, RATING_COL, "_pop", ITEM_COL], ascending=[True, False, False, True])
    disliked_order = ranked.sort_values([USER_COL, RATING_COL, "_pop", ITEM_COL], ascending=[True, True, False, True])
    liked_groups = {u: g for u, g in liked_order.groupby(USER_COL, sort=False)}
    disliked_groups = {u: g for u, g in disliked_order.groupby(USER_COL, sort=False)}

    texts = []
    for user, age, gender, occupation in zip(
        users[USER_COL], users["age"], users["gender"], users["occupation"], strict=True
    ):
        parts = [demographic_profile(age, gender, occupation)]
        history = liked_groups.get(user)
        if history is not None:
            parts.append(_taste_sentence(history, genres_by_item, config))
            liked = history.head(config.max_liked)
            parts.append(
                "Loved: " + "; ".join(
                    f"{mention_by_item[i]} {r:g}/5" for i, r in zip(liked[ITEM_COL], liked[RATING_COL], strict=True)
                ) + "."
            )
            low = disliked_groups[user]
            low = low[low[RATING_COL] <= config.disliked_max_rating].head(config.max_disliked)
            low = low[~low[ITEM_COL].isin(liked[ITEM_COL])]
            if len(low):
                parts.append(
                    "Disliked: " + "; ".join(
                        f"{mention_by_item[i]} {r:g}/5" for i, r in zip(low[ITEM_COL], low[RATING_COL], strict=True)
                    ) + "."
                )
        texts.append(" ".join(p for p in parts if p))
    return pd.Series(texts, index=users[USER_COL].to_numpy(), name="profile")


def _taste_sentence(history: pd.DataFrame, genres_by_item: dict, config: ProfileConfig) -> str:
    """Genres the user rates above / below their own average, with enough ratings to mean something."""
    rows = [(g, r) for i, r in zip(history[ITEM_COL], history[RATING_COL], strict=True) for g in genres_by_item[i]]
    if not rows:
        return ""
    frame = pd.DataFrame(rows, columns=["genre", "rating"])
    frame = frame[frame["genre"] != "unknown"]
    stats = frame.groupby("genre")["rating"].agg(["mean", "size"])
    stats = stats[stats["size"] >= config.min_genre_ratings]
    if stats.empty:
        return ""
    deviation = (stats["mean"] - float(history[RATING_COL].mean())).sort_values(kind="stable")
    likes = [g for g, d in deviation[::-1].items() if d > 0][: config.max_genres]
    dislikes = [g for g, d in deviation.items() if d < 0][: config.max_genres]
    sentence = []
    if likes:
        sentence.append("Prefers " + ", ".join(likes))
    if dislikes:
        sentence.append("less keen on " + ", ".join(dislikes))
    return ("; ".join(sentence) + ".") if sentence else ""


def profile_lengths(texts: pd.Series) -> np.ndarray:
    """Word counts, for the data summary (a rough proxy for embedding cost)."""
    return texts.str.split().str.len().to_numpy()
