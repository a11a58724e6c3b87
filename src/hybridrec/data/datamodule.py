"""The LightningDataModule: one fold of one protocol, served as index tensors.

``prepare_data`` downloads the data set when it is missing; ``setup`` reads it, takes the fold's
split (``split_seed`` draws the splits of the ratings: sets without folds of their own), carves a seeded validation split from the training part when ``val_fraction`` > 0 (else the
whole training part is fitted) and builds the fold's context (profiles and embeddings from the
fitting ratings only). Training batches are shuffled index
batches from a seeded generator: the same seed gives the same batches, in one process or under DDP
(where every process reads the whole batch and trains on its share of its users: see
``HybridRecLitModule.training_step``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hybridrec.constants import CANONICAL_FOLDS, RANDOM90_FOLDS, USER_COL
from hybridrec.data.context import FoldContext, Interactions, build_fold_context
from hybridrec.data.dataset import DatasetSource, load_dataset
from hybridrec.data.described import DescribedUsers, described_user_fold
from hybridrec.data.movielens import MovieLens
from hybridrec.data.profiles import ProfileConfig
from hybridrec.data.queries import TextQuery, TitleFinder, build_text_query
from hybridrec.data.splits import (
    Split,
    canonical_fold,
    carve_validation,
    cold_item_fold,
    cold_user_fold,
    full_data,
    has_canonical_folds,
    rating_fold,
)
from hybridrec.errors import ConfigError

log = logging.getLogger(__name__)

PROTOCOLS = ("canonical", "random90", "cold_users", "described_users", "new_films", "all")
KNOWN_BY_DEMOGRAPHICS = ("cold_users", "described_users")  # protocols whose test users have no ratings


def check_protocol(data: MovieLens, protocol: str, profile: ProfileConfig) -> None:
    """Refuse, in one line, what a set cannot do: without demographics (10M and later) a user held out
    whole would be known by nothing at all, and there is nothing to tell a description from."""
    if data.has_demographics:
        return
    if protocol in KNOWN_BY_DEMOGRAPHICS:
        raise ConfigError(
            f"cv={protocol} needs users with demographics, and {data.root.name} has none: its held-out "
            "users would be known by nothing; use cv=kfold5 or cv=random90 on it (or data=ml100k, ml1m)"
        )
    if profile.described_told:
        raise ConfigError(
            f"data.profile.described_told={profile.described_told} needs users with demographics, and "
            f"{data.root.name} has none"
        )


def make_split(data: MovieLens, protocol: str, fold: int, split_seed: int | None, splits_dir: str) -> Split:
    """Fold ``fold`` of ``protocol``; the seeded splits of the ratings (``canonical`` on a set without
    folds of its own, ``random90``) are drawn with ``split_seed`` and kept under ``splits_dir``."""
    if protocol == "canonical" and has_canonical_folds(data):
        return canonical_fold(data, fold)
    if protocol == "canonical":
        return rating_fold(data, fold, len(CANONICAL_FOLDS), _seed(split_seed, protocol), splits_dir)
    if protocol == "random90":
        if fold != 1:
            raise ValueError(f"random90 has one fold, 1; got {fold}")
        split = rating_fold(data, 1, RANDOM90_FOLDS, _seed(split_seed, protocol), splits_dir)
        return dataclasses.replace(split, name="random90")
    if protocol == "cold_users":
        return cold_user_fold(data, fold)
    if protocol == "new_films":
        return cold_item_fold(data, fold)
    if protocol == "all":
        return full_data(data)
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def _seed(split_seed: int | None, protocol: str) -> int:
    if split_seed is None:
        raise ConfigError(f"cv.split_seed must be set: protocol {protocol} draws a split of the ratings")
    return split_seed


class RatingsDataset(Dataset):
    """(user index, item index, rating) tensors, indexed by a whole batch of positions at once."""

    def __init__(self, interactions: Interactions):
        self.users = torch.tensor(interactions.users)
        self.items = torch.tensor(interactions.items)
        self.ratings = torch.tensor(interactions.ratings)

    def __len__(self) -> int:
        return len(self.ratings)

    def __getitem__(self, positions):
        return self.users[positions], self.items[positions], self.ratings[positions]


class IndexBatches(Sampler):
    """Batches of positions: shuffled per epoch from ``seed`` (training) or in order (evaluation).

    Under distributed training, training batches are the single process's, on every process (each
    trains on its share of a batch's users, so the steps, their batches and their gradients are the
    single process's); evaluation batches are an interleaved share of the positions, without the
    padding of torch's DistributedSampler (no rating counted twice: metric states are summed over
    processes).
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _positions(self) -> torch.Tensor:
        if not self.shuffle:
            rank, world = self._world()
            return torch.arange(rank, self.n, world)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=generator)

    def __iter__(self):
        # drawn at the first batch, not when the iterator is made: a fit resumed from a checkpoint
        # makes its iterator before it sets the epoch
        yield from torch.split(self._positions(), self.batch_size)

    def __len__(self) -> int:
        return -(-len(self._positions()) // self.batch_size)


class MovieLensDataModule(L.LightningDataModule):
    def __init__(
        self,
        data_dir: str,
        name: str,
        url: str,
        md5: str,
        download: bool,
        profile: dict,
        protocol: str,
        fold: int,
        val_fraction: float,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        embedder,
        splits_dir: str,
        split_seed: int | None,
        genre_glosses: dict | None = None,
    ):
        super().__init__()
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.source = DatasetSource(data_dir, name, url, md5, download)
        self.profile_config = ProfileConfig(**profile)
        self.genre_glosses = {genre: list(phrases) for genre, phrases in (genre_glosses or {}).items()}
        self.protocol, self.fold = protocol, fold
        self.val_fraction = val_fraction
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.embedder = embedder
        self.splits_dir, self.split_seed = splits_dir, split_seed
        self.described: dict[str, tuple[np.ndarray, TextQuery]] | None = (
            None  # protocol C: style -> users, words
        )
        self.told: Interactions | None = None  # protocol C: the ratings the users told
        self.data: MovieLens | None = None
        self.split: Split | None = None
        self.context: FoldContext | None = None

    def __getstate__(self) -> dict:
        """Pickled for spawned DDP processes once set up: the embedder (a cache on disk, a model) stays here."""
        return {**self.__dict__, "embedder": None}

    def prepare_data(self) -> None:
        self.source.ensure()

    def setup(self, stage: str | None = None) -> None:
        if self.context is not None:
            return
        self.data = load_dataset(self.source)
        check_protocol(self.data, self.protocol, self.profile_config)
        described = None
        if self.protocol == "described_users":
            self.split, described = described_user_fold(self.data, self.fold, self.splits_dir)
        else:
            self.split = make_split(self.data, self.protocol, self.fold, self.split_seed, self.splits_dir)
        fit, val = carve_validation(
            self.split.train, self.val_fraction, self.seed, by_user=self.split.is_cold
        )
        self._set_ratings(fit, val)
        if described is not None:
            self._read_descriptions(described)

    def _read_descriptions(self, described: DescribedUsers) -> None:
        """Protocol C: each style's descriptions as the model reads them (embedded with the fold's
        embedder, the films they name found in the catalog)."""
        self.told = Interactions.from_frame(self.data, described.told)
        popularity = np.bincount(self.context.fit.items, minlength=self.context.n_items)
        titles = TitleFinder(self.context.titles, popularity)
        self.described = {}
        for style, group in described.descriptions.groupby("style", sort=False):
            users = self.data.user_index.to_index(group[USER_COL].to_numpy())
            self.described[style] = (users, build_text_query(group["text"].tolist(), self.embedder, titles))

    def _set_ratings(self, fit: pd.DataFrame, val: pd.DataFrame) -> None:
        self.fit_ratings, self.val_ratings = fit, val
        self.context = build_fold_context(
            self.data, fit, self.embedder, self.profile_config, self.genre_glosses
        )
        self.val = Interactions.from_frame(self.data, val)
        self.test = Interactions.from_frame(self.data, self.split.test)
        log.info(
            "%s: %d fitting, %d validation, %d test ratings",
            self.split.name,
            len(fit),
            len(val),
            len(self.split.test),
        )

    def nested(self, holdout_fraction: float, holdout_users: float) -> MovieLensDataModule:
        """A datamodule over this one's fitting ratings alone, whose validation holds out a share of
        whole users (known to it by text only) and a share of each other user's ratings: for
        choosing what is then fitted on this fold's fitting ratings, never on its test part."""
        rest, cold = carve_validation(self.fit_ratings, holdout_users, self.seed, by_user=True)
        fit, warm = carve_validation(rest, holdout_fraction, self.seed)
        inner = copy.copy(self)
        inner.embedder = self.embedder  # (copied through __getstate__, which leaves it out)
        inner.split = Split(
            f"{self.split.name}-held-out", self.fit_ratings, self.fit_ratings.iloc[:0], self.split.cold_users
        )
        inner._set_ratings(fit, pd.concat([warm, cold], ignore_index=True))
        return inner

    def _loader(self, interactions: Interactions, train: bool) -> DataLoader:
        dataset = RatingsDataset(interactions)
        batches = IndexBatches(
            len(dataset), self.batch_size if train else self.eval_batch_size, shuffle=train, seed=self.seed
        )
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.context.fit, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, train=False)

    @property
    def has_validation(self) -> bool:
        """False when the model fits on the whole training part (``val_fraction=0``)."""
        return len(self.val) > 0

    @property
    def train_interactions(self) -> Interactions:
        """The whole training part of the split (fit + validation): what a user has already rated."""
        return Interactions.from_frame(self.data, self.split.train)
