"""What supports a recommendation, as structured data: the facts every explainer must stick to.

For a known user: their highly rated training films nearest to the recommended film in the item
tower's space (or by shared genres for models without towers), and the genres they share. For a
user described in words: the phrases of their text that match the film.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from hybridrec.constants import RELEVANCE_THRESHOLD
from hybridrec.data.genres import GENRE_WORDS
from hybridrec.inference.engine import RecommendationEngine

_WORD = re.compile(r"[a-z0-9']+")


@dataclass
class Anchor:
    """A film the user rated highly that resembles the recommended one."""

    item_id: int
    title: str
    year: int | None
    rating: float
    similarity: float
    shared_genres: list[str]


@dataclass
class Evidence:
    item_id: int
    title: str
    year: int | None
    genres: list[str]
    predicted_rating: float | None
    user_id: int | None = None
    user_text: str | None = None
    anchors: list[Anchor] = field(default_factory=list)
    liked_genres: dict[str, int] = field(
        default_factory=dict
    )  # film's genres -> how many liked films share it
    matched_phrases: list[str] = field(
        default_factory=list
    )  # cold start: words of the text matching the film

    def as_dict(self) -> dict:
        return asdict(self)


def matched_phrases(text: str, genres: list[str], title: str) -> list[str]:
    """Phrases of ``text`` naming one of the film's genres, or a distinctive word of its title."""
    lowered = text.lower()
    found = []
    for genre in genres:
        for phrase in (genre.lower(), *GENRE_WORDS.get(genre, ())):
            if re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", lowered) and phrase not in found:
                found.append(phrase)
    text_words = set(_WORD.findall(lowered))
    found += [w for w in _WORD.findall(title.lower()) if len(w) >= 5 and w in text_words and w not in found]
    return found


def collect_evidence(
    engine: RecommendationEngine,
    item_id: int,
    user_id: int | None = None,
    user_text: str | None = None,
    predicted_rating: float | None = None,
    max_anchors: int = 3,
    min_rating: float = RELEVANCE_THRESHOLD,
) -> Evidence:
    info = engine.item_info(item_id)
    evidence = Evidence(
        item_id=info["item_id"],
        title=info["title"],
        year=info["year"],
        genres=[g for g in info["genres"] if g != "unknown"],
        predicted_rating=None if predicted_rating is None else round(float(predicted_rating), 2),
        user_id=user_id,
        user_text=user_text,
    )
    if user_id is not None:
        seen_items, seen_ratings = engine.seen_items(user_id)
        liked = seen_ratings >= min_rating
        if not liked.any():  # nobody-likes-anything users: their best-rated films stand in
            liked = seen_ratings >= seen_ratings.max(initial=0)
        liked_ids, liked_ratings = seen_items[liked], seen_ratings[liked]
        liked_ids, liked_ratings = (
            liked_ids[liked_ids != info["item_id"]],
            liked_ratings[liked_ids != info["item_id"]],
        )
        if len(liked_ids):
            positions = engine.item_index.to_index(liked_ids)
            similarity = engine.item_similarities(engine.item_position(item_id))[positions]
            order = np.lexsort((liked_ids, -liked_ratings, -similarity))[:max_anchors]
            for k in order:
                anchor = engine.item_info(int(liked_ids[k]))
                evidence.anchors.append(
                    Anchor(
                        item_id=anchor["item_id"],
                        title=anchor["title"],
                        year=anchor["year"],
                        rating=float(liked_ratings[k]),
                        similarity=round(float(similarity[k]), 3),
                        shared_genres=[g for g in anchor["genres"] if g in evidence.genres],
                    )
                )
            liked_genres = [g for i in liked_ids for g in engine.item_info(int(i))["genres"]]
            evidence.liked_genres = {g: liked_genres.count(g) for g in evidence.genres if g in liked_genres}
    if user_text is not None:
        evidence.matched_phrases = matched_phrases(user_text, evidence.genres, info["title"])
    return evidence
