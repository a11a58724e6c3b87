"""From a fold's training ratings to the embedding tensors the model trains on."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybridrec.data.movielens import MovieLens
from hybridrec.data.profiles import (
    ProfileConfig,
    build_demographic_profiles,
    build_item_profiles,
    build_user_profiles,
)
from hybridrec.embedders.base import Embedder

log = logging.getLogger(__name__)


@dataclass
class ProfileEmbeddings:
    """Frozen content vectors of one fold, rows in the data set's user / item index order.

    ``user`` embeds each user's profile built from the fold's training ratings; ``user_demographic``
    embeds the demographics-only profile (all a cold-start user has). Both are float32 arrays.
    """

    embedder: str
    user: np.ndarray
    user_demographic: np.ndarray
    item: np.ndarray

    @property
    def dim(self) -> int:
        return self.item.shape[1]


def embed_profiles(
    data: MovieLens, train_ratings: pd.DataFrame, embedder: Embedder, profile_config: ProfileConfig
) -> ProfileEmbeddings:
    """Embed item, user and demographic profiles; only texts the cache lacks are computed."""
    items = build_item_profiles(data.items)
    users = build_user_profiles(data.users, data.items, train_ratings, profile_config)
    demographics = build_demographic_profiles(data.users)
    # one call, so the progress bar and the cache statistics cover the whole fold
    texts = [
        *items.loc[data.item_index.ids],
        *users.loc[data.user_index.ids],
        *demographics.loc[data.user_index.ids],
    ]
    vectors = embedder.embed(texts)
    n_items, n_users = data.n_items, data.n_users
    return ProfileEmbeddings(
        embedder=embedder.name,
        item=vectors[:n_items],
        user=vectors[n_items : n_items + n_users],
        user_demographic=vectors[n_items + n_users :],
    )
