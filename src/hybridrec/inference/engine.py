"""The recommendation engine: one loaded bundle answering rating, top-N and cold-start queries.

Everything per-model is computed at load time (the towers' outputs for every known user and item,
each user's seen items, genre masks), so a known-user request costs one row of scores and a top-k,
and a free-text request adds one embedding and one user-tower pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.bundle import Bundle, BundleError
from hybridrec.constants import ITEM_COL, RELEVANCE_THRESHOLD, USER_COL
from hybridrec.data.movielens import IdIndex
from hybridrec.data.queries import TextQuery, TitleFinder, build_text_query
from hybridrec.errors import InvalidInputError, UnknownIdError
from hybridrec.metrics import top_k

log = logging.getLogger(__name__)

DEFAULT_MAX_TEXT_CHARS = 2000


@dataclass
class Recommendation:
    item_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    score: float  # predicted rating on the bundle's scale (NaN for ranking-only models)
    rank_score: float  # what the list is ordered by

    def as_dict(self) -> dict:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "year": self.year,
            "genres": list(self.genres),
            "score": None if np.isnan(self.score) else round(float(self.score), 4),
        }


@dataclass
class RecommendationList:
    items: list[Recommendation]
    cold_start: bool
    user_id: int | None = None
    user_text: str | None = None
    excluded_seen: int = 0
    extras: dict = field(default_factory=dict)


class RecommendationEngine:
    """Answers queries from one bundle; ``embedder`` is needed only for free-text queries."""

    def __init__(self, bundle: Bundle, embedder=None, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS):
        self.bundle = bundle
        self.model = bundle.model
        self.embedder = embedder
        self.max_text_chars = max_text_chars
        if embedder is not None and bundle.manifest.get("embedder") not in (None, embedder.name):
            raise BundleError(
                f"bundle {bundle.bundle_id} was trained with embedder {bundle.manifest['embedder']}, "
                f"but {embedder.name} was given"
            )
        items = bundle.items.sort_values(ITEM_COL, ignore_index=True)
        self.items = items
        self.user_index = IdIndex(np.sort(bundle.users[USER_COL].to_numpy()))
        self.item_index = IdIndex(items[ITEM_COL].to_numpy())
        self.n_items = len(self.item_index)
        seen = bundle.seen
        order = np.argsort(seen.users, kind="stable")
        self._seen_items = seen.items[order]
        self._seen_ratings = seen.ratings[order]
        self._seen_indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(seen.users, minlength=len(self.user_index)))]
        )
        self.genres = sorted({g for gs in items["genres"] for g in gs if g and g != "unknown"})
        self._genre_masks = {g: np.array([g in gs for gs in items["genres"]]) for g in self.genres}
        self._genre_lookup = {g.lower(): g for g in self.genres}
        self._titles = items["display_title"].tolist()
        self._years = [None if pd.isna(y) else int(y) for y in items["year"].tolist()]
        self._item_genres = [tuple(gs) for gs in items["genres"]]
        self._item_vectors = None
        self._title_finder: TitleFinder | None = None

    # --- the model's view of the catalog ------------------------------------------------------------

    def item_vectors(self) -> np.ndarray | None:
        """Unit-length item representations from the model's item tower; None for models without towers."""
        if self._item_vectors is None:
            self._item_vectors = self.model.item_vectors()
        return self._item_vectors

    def genre_matrix(self) -> np.ndarray:
        """(n_items, n_genres) 0/1 matrix over the catalog's genres."""
        return np.stack([self._genre_masks[g] for g in self.genres], axis=1).astype(np.float64)

    def item_similarities(self, position: int) -> np.ndarray:
        """How alike the film at ``position`` is to every film: the cosine in the item tower's output
        space, or the overlap of their genres (Jaccard) for models without towers; O(items x dim)."""
        vectors = self.item_vectors()
        if vectors is not None:
            return np.asarray(vectors @ vectors[position], dtype=np.float64)
        genres = self.genre_matrix()
        overlap = genres @ genres[position]
        sizes = genres.sum(axis=1) + genres[position].sum() - overlap
        return overlap / np.maximum(sizes, 1)

    # --- validation ------------------------------------------------------------------------------

    def user_position(self, user_id) -> int:
        try:
            return int(self.user_index.to_index([int(user_id)])[0])
        except (KeyError, ValueError, TypeError, OverflowError):
            raise UnknownIdError(f"unknown user_id {user_id!r}") from None

    def item_position(self, item_id) -> int:
        try:
            return int(self.item_index.to_index([int(item_id)])[0])
        except (KeyError, ValueError, TypeError, OverflowError):
            raise UnknownIdError(f"unknown item_id {item_id!r}") from None

    def _check_text(self, text, what: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"{what} is empty")
        if len(text) > self.max_text_chars:
            raise InvalidInputError(f"{what} has {len(text)} characters; the limit is {self.max_text_chars}")
        return text.strip()

    def _check_n(self, n) -> int:
        """A list's length: a whole number from 1; more than the catalog holds lists all of it."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InvalidInputError(f"n must be a whole number of at least 1, got {n!r}")
        return min(int(n), self.n_items)

    def _genre_filter(self, genres) -> np.ndarray | None:
        if not genres:
            return None
        if isinstance(genres, str):
            genres = [g for g in genres.split(",") if g.strip()]
        wanted = []
        for genre in genres:
            name = self._genre_lookup.get(str(genre).strip().lower())
            if name is None:
                raise InvalidInputError(f"unknown genre {genre!r}; choose from {', '.join(self.genres)}")
            wanted.append(name)
        return np.any([self._genre_masks[g] for g in wanted], axis=0)

    def _check_reads_text(self) -> None:
        if self.embedder is None or not self.model.reads_text:
            raise InvalidInputError(
                "this model cannot read free text (it was trained without content towers)"
            )

    def text_query(self, text: str) -> TextQuery:
        """A user's words as the model reads them: embedded, split into likes and dislikes, the films
        they name found in the catalog."""
        self._check_reads_text()
        if self._title_finder is None:
            popularity = np.bincount(self._seen_items, minlength=self.n_items)
            self._title_finder = TitleFinder(self._titles, popularity)
        return build_text_query([text], self.embedder, self._title_finder)

    # --- queries ---------------------------------------------------------------------------------

    def seen_items(self, user_id) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, ratings) the user rated in the bundle's training data."""
        u = self.user_position(user_id)
        lo, hi = self._seen_indptr[u], self._seen_indptr[u + 1]
        return self.item_index.to_id(self._seen_items[lo:hi]), self._seen_ratings[lo:hi]

    def predict(self, user_id, item_id) -> float:
        u, i = self.user_position(user_id), self.item_position(item_id)
        return float(self.model.predict(np.array([u]), np.array([i]))[0])

    def predict_text(self, user_text: str, item_id) -> float:
        text = self._check_text(user_text, "user_text")
        i = self.item_position(item_id)
        ratings, _ = self.model.text_user_scores(self.text_query(text))
        return float(ratings[0, i])

    def score_new_item(self, item_text: str, user_id=None) -> float:
        """Predicted rating of a film described in words: for one user, or averaged over all known users."""
        text = self._check_text(item_text, "item_text")
        users = (
            np.arange(len(self.user_index)) if user_id is None else np.array([self.user_position(user_id)])
        )
        self._check_reads_text()
        return float(np.mean(self.model.text_item_ratings(self.embedder.embed([text]), users)))

    def recommend(self, user_id, n: int = 10, exclude_seen: bool = True, genres=None) -> RecommendationList:
        n = self._check_n(n)
        u = self.user_position(user_id)
        mask = self._genre_filter(genres)
        rank = np.asarray(self.model.rank_scores(np.array([u])), dtype=np.float64)[0]
        excluded = 0
        if exclude_seen:
            lo, hi = self._seen_indptr[u], self._seen_indptr[u + 1]
            rank[self._seen_items[lo:hi]] = -np.inf
            excluded = hi - lo
        top = self._top(rank, n, mask)
        ratings = self.model.predict(np.full(len(top), u), top) if len(top) else np.array([])
        return RecommendationList(
            self._describe(top, ratings, rank), False, user_id=int(user_id), excluded_seen=int(excluded)
        )

    def recommend_text(self, user_text: str, n: int = 10, genres=None) -> RecommendationList:
        n = self._check_n(n)
        text = self._check_text(user_text, "user_text")
        mask = self._genre_filter(genres)
        query = self.text_query(text)
        ratings, rank = self.model.text_user_scores(query)
        rank = np.asarray(rank[0], dtype=np.float64)
        rank[np.concatenate([query.named[0], query.named_disliked[0]])] = -np.inf  # seen, or refused
        top = self._top(rank, n, mask)
        return RecommendationList(self._describe(top, ratings[0][top], rank), True, user_text=text)

    def recommend_films(self, liked, n: int = 10, genres=None) -> RecommendationList:
        """A new user known by films they rated: ``liked`` holds (item id, rating or None) pairs; a
        rating of 4 or more (or none) says they liked it, 2 or less that they did not. The model reads
        the films' titles as the user's words, with the films named; the films are left out."""
        n = self._check_n(n)
        mask = self._genre_filter(genres)
        self._check_reads_text()
        if not liked:
            raise InvalidInputError("liked_items is empty")
        films = [(self.item_position(item_id), rating) for item_id, rating in liked]
        loved = [i for i, r in films if r is None or r >= RELEVANCE_THRESHOLD]
        refused = [i for i, r in films if r is not None and r <= 2]
        parts = []
        if loved:
            parts.append("I liked " + ", ".join(self._titles[i] for i in loved) + ".")
        if refused:
            parts.append("I did not like " + ", ".join(self._titles[i] for i in refused) + ".")
        text = " ".join(parts) or "I have seen " + ", ".join(self._titles[i] for i, _ in films) + "."
        query = build_text_query([text], self.embedder, None)
        query.named, query.named_disliked = (
            [np.array(loved, dtype=np.int64)],
            [np.array(refused, dtype=np.int64)],
        )
        ratings, rank = self.model.text_user_scores(query)
        rank = np.asarray(rank[0], dtype=np.float64)
        rank[[i for i, _ in films]] = -np.inf  # seen
        top = self._top(rank, n, mask)
        return RecommendationList(self._describe(top, ratings[0][top], rank), True, user_text=text)

    def similar_items(self, item_id, n: int = 10) -> list[dict]:
        """The ``n`` films nearest to one film (itself left out), nearest first, each with its similarity."""
        n = self._check_n(n)
        position = self.item_position(item_id)
        similarity = self.item_similarities(position)
        similarity[position] = -np.inf
        top = top_k(similarity[None, :], n)[0]
        top = top[np.isfinite(similarity[top])]
        return [
            {**self.item_info(item_id), "similarity": round(float(similarity[i]), 4)}
            for item_id, i in zip(self.item_index.to_id(top), top, strict=True)
        ]

    def search_items(self, query: str | None = None, genre: str | None = None, year_from=None, year_to=None):
        """Catalog films whose title holds ``query`` (case-insensitive), of ``genre``, released
        within the years: their positions, in id order."""
        keep = np.ones(self.n_items, dtype=bool)
        if query:
            keep &= self.items["display_title"].str.contains(query, case=False, regex=False).to_numpy()
        if genre:
            keep &= self._genre_filter([genre])
        years = self.items["year"].astype("float").to_numpy()
        if year_from is not None:
            keep &= years >= year_from
        if year_to is not None:
            keep &= years <= year_to
        return np.flatnonzero(keep)

    def _top(self, rank: np.ndarray, n: int, mask: np.ndarray | None) -> np.ndarray:
        if mask is not None:
            rank = np.where(mask, rank, -np.inf)
        top = top_k(rank[None, :], n)[0]
        return top[np.isfinite(rank[top])]

    def _describe(self, top: np.ndarray, ratings: np.ndarray, rank: np.ndarray) -> list[Recommendation]:
        ids = self.item_index.to_id(top)
        return [
            Recommendation(
                item_id=int(item_id),
                title=self._titles[i],
                year=self._years[i],
                genres=self._item_genres[i],
                score=float(r),
                rank_score=float(rank[i]),
            )
            for item_id, i, r in zip(ids, top, ratings, strict=True)
        ]

    def item_info(self, item_id) -> dict:
        i = self.item_position(item_id)
        return {
            "item_id": int(item_id),
            "title": self._titles[i],
            "year": self._years[i],
            "genres": list(self._item_genres[i]),
        }

    def user_info(self, user_id, top: int = 10) -> dict:
        self.user_position(user_id)  # unknown ids fail here
        row = self.bundle.users.set_index(USER_COL).loc[int(user_id)]
        items, ratings = self.seen_items(user_id)
        order = np.lexsort((items, -ratings))[:top]
        demographics = "age" in row  # None where the data set has none (10M and later)
        return {
            "user_id": int(user_id),
            "age": int(row["age"]) if demographics else None,
            "gender": str(row["gender"]) if demographics else None,
            "occupation": str(row["occupation"]) if demographics else None,
            "n_ratings": len(items),
            "top_rated": [{**self.item_info(items[k]), "rating": float(ratings[k])} for k in order],
        }


def load_engine(
    bundle_path: str | Path | None,
    search_root: str | Path,
    text_cache_size: int,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    text: bool = True,
    text_budget_s: float | None = None,
) -> RecommendationEngine:
    """Find, verify and load a bundle; build its embedder when free text is wanted, behind a bounded
    in-memory cache of ``text_cache_size`` texts (users' words never go to the training cache).
    ``text_budget_s``: the time a remote embedder (one whose config has ``budget_s``) gets per text,
    shorter than in training because a person is waiting."""
    from hybridrec.bundle import find_bundle, load_bundle

    bundle = load_bundle(find_bundle(bundle_path, search_root))
    embedder = None
    if text and bundle.model.reads_text:
        from omegaconf import OmegaConf

        from hybridrec.embedders.cache import MemoryCachedEmbedder
        from hybridrec.embedders.factory import build_embedder

        embedder_cfg = bundle.config.embedder
        if text_budget_s is not None and "budget_s" in embedder_cfg:
            embedder_cfg = OmegaConf.merge(embedder_cfg, {"budget_s": text_budget_s})
        embedder = MemoryCachedEmbedder(build_embedder(embedder_cfg, None), text_cache_size)
    return RecommendationEngine(bundle, embedder, max_text_chars)
