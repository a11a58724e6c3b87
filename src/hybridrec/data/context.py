"""What a model may know in one fold: built from the fold's fitting ratings and nothing else.

``FoldContext`` gathers the frozen content vectors (text profiles embedded once), the rating
histories (for implicit feedback) and simple statistics, all from the ratings it is given. The
training loop hands it the fitting part of a fold; the bundle of a final model holds the one built
from all ratings. Nothing here ever sees a test rating, so nothing downstream can leak one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from hybridrec.constants import ITEM_COL, RATING_COL, USER_COL
from hybridrec.data.descriptions import training_descriptions
from hybridrec.data.movielens import MovieLens, RatingScale
from hybridrec.data.profiles import (
    ProfileConfig,
    build_demographic_profiles,
    build_item_profiles,
    build_user_profiles,
)

log = logging.getLogger(__name__)

EmbedFn = Callable[[Sequence[str]], np.ndarray]


@dataclass
class ProfileEmbeddings:
    """Frozen content vectors of one fold, rows in the data set's user / item index order.

    ``user`` embeds each user's profile built from the given ratings; ``user_demographic`` embeds the
    text a user is known by without their ratings' IDs and histories (what the towers read of a new
    user): the demographics-only profile (all a cold-start user has), or on a set without
    demographics the profile itself, their only text (empty for users without ratings); ``genres`` holds
    each genre as the language model reads it (its name, "<genre> films", and its glossary phrases
    embedded: ``_genre_vectors``; in the order of ``genre_names``), what a text is read against to
    know which genres it asks for. All float32.
    """

    embedder: str
    user: np.ndarray
    user_demographic: np.ndarray
    item: np.ndarray
    genres: np.ndarray
    genre_names: tuple[str, ...]
    user_described: np.ndarray | None = None  # each user in their own words (``described_told`` > 0)

    @property
    def dim(self) -> int:
        return self.item.shape[1]


def embed_profiles(
    data: MovieLens,
    ratings: pd.DataFrame,
    embedder,
    profile_config: ProfileConfig,
    genre_glosses: Mapping[str, Sequence[str]] | None = None,
) -> ProfileEmbeddings:
    """Build the profiles from ``ratings`` and embed them in one call (only uncached texts cost time)."""
    items = build_item_profiles(data.items)
    users = build_user_profiles(data.users, data.items, ratings, profile_config, scale=data.rating_scale)
    # without demographics a user's only text is their profile: embedded once, read in both places
    known_by = build_demographic_profiles(data.users) if data.has_demographics else None
    demographics = [] if known_by is None else [*known_by.loc[data.user_index.ids]]
    genres = tuple(g for g in data.genres if g != "unknown")
    genre_texts = [genre_texts_of(genre, genre_glosses or {}) for genre in genres]
    described = []
    if profile_config.described_told:
        if known_by is None:
            raise ValueError("data.profile.described_told needs users with demographics (100K, 1M)")
        told = profile_config.described_told
        described = training_descriptions(ratings, data.users, data.items, told, seed=told).where(
            lambda texts: texts != "", known_by
        )
        described = [*described.loc[data.user_index.ids]]
    texts = [
        *items.loc[data.item_index.ids],
        *users.loc[data.user_index.ids],
        *demographics,
        *(text for texts in genre_texts for text in texts),
        *described,
    ]
    vectors = embedder.embed(texts)
    n_items, n_users = data.n_items, data.n_users
    user = vectors[n_items : n_items + n_users]
    at = n_items + n_users + len(demographics)
    per_genre = np.array([len(texts) for texts in genre_texts], dtype=np.int64)
    end = at + int(per_genre.sum())
    return ProfileEmbeddings(
        embedder=embedder.name,
        item=vectors[:n_items],
        user=user,
        user_demographic=vectors[n_items + n_users : at] if demographics else user,
        genres=_genre_vectors(vectors[at:end], per_genre),
        genre_names=genres,
        user_described=vectors[end:] if described else None,
    )


def _genre_vectors(vectors: np.ndarray, per_genre: np.ndarray) -> np.ndarray:
    """(genres, dim) each genre read one third by its name, two thirds by its glossary: the name's
    unit vector and the mean of its phrases' unit vectors, so weighted (the name alone where it has
    no phrases). ``vectors`` holds ``per_genre`` consecutive rows per genre, the name first."""
    units = F.normalize(torch.from_numpy(np.asarray(vectors, dtype=np.float32)), dim=1).double().numpy()
    starts = np.concatenate([[0], np.cumsum(per_genre)[:-1]]).astype(np.int64)
    names = units[starts]
    phrases = np.zeros_like(names)
    np.add.at(phrases, np.repeat(np.arange(len(per_genre)), per_genre), units)
    phrases = (phrases - names) / np.maximum(per_genre - 1, 1)[:, None]
    glossed = (per_genre > 1)[:, None]
    return np.where(glossed, (names + 2 * phrases) / 3, names).astype(np.float32)


def genre_texts_of(genre: str, glosses: Mapping[str, Sequence[str]]) -> list[str]:
    """The texts a genre is read as: its name, ``"Horror films"``, then its glossary phrases."""
    return [f"{genre} films", *glosses.get(genre, ())]


@dataclass
class Interactions:
    """Ratings as contiguous indexes: parallel arrays plus CSR views by user and by item."""

    users: np.ndarray  # int64 user indexes
    items: np.ndarray  # int64 item indexes
    ratings: np.ndarray  # float32
    n_users: int
    n_items: int

    @classmethod
    def from_frame(cls, data: MovieLens, ratings: pd.DataFrame) -> Interactions:
        return cls(
            users=data.user_index.to_index(ratings[USER_COL].to_numpy()),
            items=data.item_index.to_index(ratings[ITEM_COL].to_numpy()),
            ratings=ratings[RATING_COL].to_numpy(dtype=np.float32),
            n_users=data.n_users,
            n_items=data.n_items,
        )

    def __len__(self) -> int:
        return len(self.ratings)

    def csr(self, by: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, other indexes, ratings) grouped by ``by`` ("user" or "item"), each group sorted."""
        rows, cols, n_rows = (
            (self.users, self.items, self.n_users) if by == "user" else (self.items, self.users, self.n_items)
        )
        order = np.lexsort((cols, rows))
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return indptr, cols[order], self.ratings[order]

    def sparse(self, values: np.ndarray) -> sp.csr_matrix:
        """(n_users, n_items) scipy CSR of one value per rating: one entry per rating, never dense."""
        return sp.csr_matrix((values, (self.users, self.items)), shape=(self.n_users, self.n_items))


@dataclass
class FoldContext:
    """Everything a model may use in one fold (see the module docstring)."""

    fit: Interactions
    embeddings: ProfileEmbeddings | None
    global_mean: float
    rating_scale: RatingScale  # the data set's stars: what ratings are mapped to and clipped to
    items: pd.DataFrame | None = None  # the catalog (title, year, genres, tags) in item-index order

    @property
    def titles(self) -> list[str]:
        return self.items["display_title"].tolist()

    def genre_matrix(self, genres: list[str]) -> np.ndarray:
        """(films, genres) 0/1: which of ``genres`` each film has."""
        return np.array([[g in gs for g in genres] for gs in self.items["genres"]], dtype=np.float32)

    @property
    def n_users(self) -> int:
        return self.fit.n_users

    @property
    def n_items(self) -> int:
        return self.fit.n_items

    @property
    def user_known(self) -> np.ndarray:
        """Users with at least one fitting rating (the others are cold: text only)."""
        return np.bincount(self.fit.users, minlength=self.n_users) > 0

    @property
    def item_known(self) -> np.ndarray:
        return np.bincount(self.fit.items, minlength=self.n_items) > 0


def build_fold_context(
    data: MovieLens,
    fit_ratings: pd.DataFrame,
    embedder=None,
    profile_config: ProfileConfig | None = None,
    genre_glosses: Mapping[str, Sequence[str]] | None = None,
) -> FoldContext:
    """The context of a fold from its fitting ratings; ``embedder=None`` skips the text side (ID-only models)."""
    fit = Interactions.from_frame(data, fit_ratings)
    embeddings = (
        embed_profiles(data, fit_ratings, embedder, profile_config or ProfileConfig(), genre_glosses)
        if embedder is not None
        else None
    )
    items = data.items.sort_values(ITEM_COL, ignore_index=True)
    return FoldContext(
        fit=fit,
        embeddings=embeddings,
        global_mean=float(fit.ratings.mean()),
        rating_scale=data.rating_scale,
        items=items,
    )
