"""The larger MovieLens sets through the whole pipeline, on synthetic files in their exact formats:
seeded folds of their ratings, their rating scales, users without demographics, films with tags."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import REPO_ROOT

from hybridrec.data.datamodule import make_split
from hybridrec.data.dataset import DatasetSource, load_dataset
from hybridrec.data.readers import read_dataset
from hybridrec.data.splits import rating_fold, rating_folds
from hybridrec.data.synthetic import write_synthetic
from hybridrec.embedders.factory import build_embedder
from hybridrec.errors import ConfigError, DataError
from hybridrec.evaluation.cross_validation import run_cross_validation
from hybridrec.inference.engine import load_engine
from hybridrec.training.final_fit import train_and_save_bundle

SETS = {"ml1m": "ml-1m", "ml10m": "ml-10M100K", "ml20m": "ml-20m", "ml25m": "ml-25m"}


@pytest.fixture(scope="module")
def larger_sets(tmp_path_factory):
    """A folder holding a small synthetic copy of every larger set."""
    folder = tmp_path_factory.mktemp("larger")
    for seed, name in enumerate(SETS.values()):
        write_synthetic(folder, name, n_users=50, n_items=80, n_ratings=1600, seed=seed)
    return folder


def test_every_set_has_a_config_naming_its_folder():
    names = {p.stem: p.read_text() for p in (REPO_ROOT / "configs" / "data").glob("ml*.yaml")}
    for config, folder in SETS.items():
        assert f"name: {folder}\n" in names[config]


def test_seeded_rating_folds_are_disjoint_cover_every_rating_and_are_kept(larger_sets, tmp_path):
    data = read_dataset(larger_sets / "ml-1m")
    folds = rating_folds(data, 5, seed=0, folder=tmp_path)
    assert sorted(np.unique(folds)) == [1, 2, 3, 4, 5]
    assert np.bincount(folds)[1:].tolist() == [320] * 5
    assert (tmp_path / "ml-1m" / "kfold5-seed0.npz").is_file()
    # read back, not drawn again; independent of the order of the ratings file
    shuffled = data.ratings.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = rating_folds(dataclasses.replace(data, ratings=shuffled), 5, seed=0, folder=tmp_path)
    key = ["user_id", "item_id"]
    first = data.ratings[key].assign(fold=folds).sort_values(key).fold.to_numpy()
    second = shuffled[key].assign(fold=again).sort_values(key).fold.to_numpy()
    assert np.array_equal(first, second)
    assert not np.array_equal(folds, rating_folds(data, 5, seed=1, folder=tmp_path))
    split = rating_fold(data, 2, 5, seed=0, folder=tmp_path)
    assert len(split.test) == 320 and len(split.train) == 1280
    pairs = set(zip(split.test.user_id, split.test.item_id, strict=True))
    assert not pairs & set(zip(split.train.user_id, split.train.item_id, strict=True))


def test_a_split_file_drawn_for_other_ratings_is_refused(larger_sets, tmp_path):
    data = read_dataset(larger_sets / "ml-1m")
    rating_folds(data, 5, seed=0, folder=tmp_path)
    fewer = dataclasses.replace(data, ratings=data.ratings.iloc[1:].reset_index(drop=True))
    with pytest.raises(DataError, match="drawn for other ratings"):
        rating_folds(fewer, 5, seed=0, folder=tmp_path)


def test_an_unknown_set_name_is_a_clear_error(tmp_path):
    source = DatasetSource(str(tmp_path), "ml-2m", "https://example.invalid/x.zip", "0" * 32, download=False)
    with pytest.raises(ConfigError, match="no MovieLens folder"):
        load_dataset(source)


@pytest.mark.parametrize("cv", ["cold_users", "described_users"])
def test_protocols_of_demographics_are_refused_on_sets_without_them(compose_train, larger_sets, cv):
    cfg = compose_train("data=ml10m", f"cv={cv}", "final_fit=false", data_dir=larger_sets)
    embedder = build_embedder(cfg.embedder, str(larger_sets / "e.sqlite3"))
    with pytest.raises(ConfigError, match="needs users with demographics"):
        run_cross_validation(cfg, embedder)


@pytest.mark.parametrize("config", ["ml1m", "ml10m", "ml25m"])
def test_a_larger_set_trains_evaluates_and_serves(compose_train, larger_sets, tmp_path, config):
    """Seeded folds, the set's stars (half stars from 10M on), profiles without demographics, films
    with tags: one fold evaluated and a bundle that recommends and rates on the set's scale."""
    cfg = compose_train(
        f"data={config}", "cv.folds=[1]", f"paths.splits_dir={tmp_path}/splits", data_dir=larger_sets
    )
    embedder = build_embedder(cfg.embedder, str(tmp_path / "e.sqlite3"))
    result = run_cross_validation(cfg, embedder)
    row = result.rows[0]
    assert np.isfinite(row["test/rmse"]) and 0.0 < row["test/ndcg@10"] <= 1.0
    assert (tmp_path / "splits" / SETS[config] / "kfold5-seed0.npz").is_file()

    engine = load_engine(train_and_save_bundle(cfg, embedder), "/nonexistent", text_cache_size=10)
    scale = engine.bundle.context.rating_scale
    assert (scale.min, scale.max) == ((1.0, 5.0) if config == "ml1m" else (0.5, 5.0))
    users = engine.bundle.users.user_id.to_numpy()[:2]
    lists = [[r.item_id for r in engine.recommend(int(u), n=5).items] for u in users]
    assert all(len(items) == 5 for items in lists) and lists[0] != lists[1]
    ratings = engine.bundle.model.predict(np.arange(5), np.arange(5))
    assert ((ratings >= scale.min) & (ratings <= scale.max)).all()
    described = engine.user_info(int(users[0]))
    assert (described["age"] is None) == (config != "ml1m")


def test_random90_holds_out_a_tenth_and_100k_keeps_its_own_folds(larger_sets, movielens, tmp_path):
    data = read_dataset(larger_sets / "ml-1m")
    split = make_split(data, "random90", 1, split_seed=0, splits_dir=tmp_path)
    assert (split.name, len(split.test), len(split.train)) == ("random90", 160, 1440)
    with pytest.raises(ValueError, match="one fold"):
        make_split(data, "random90", 2, split_seed=0, splits_dir=tmp_path)
    own = make_split(movielens, "canonical", 1, split_seed=None, splits_dir=tmp_path)
    assert own.name == "u1" and not (tmp_path / movielens.root.name).exists()
