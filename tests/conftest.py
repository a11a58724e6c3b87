"""Shared fixtures: a synthetic MovieLens-format data set, the real one when present, composed configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the synthetic-data helper beside this file

import synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(REPO_ROOT))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# No test may ever reach Gemini or read a developer's key.
for _key in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
    os.environ.pop(_key, None)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Caches of the whole session live in a temporary folder, never in the developer's .cache."""
    os.environ["HYBRIDREC_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> Path:
    """A data folder holding a synthetic ``ml-100k/``; read-only by convention (session-wide)."""
    data_dir = tmp_path_factory.mktemp("data")
    synthetic.write_dataset(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def movielens(synthetic_data_dir):
    from hybridrec.data.movielens import load_movielens

    return load_movielens(synthetic_data_dir / "ml-100k")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``$HYBRIDREC_DATA_DIR`` when it holds the real MovieLens 100K, else the test is skipped."""
    value = os.environ.get("HYBRIDREC_DATA_DIR")
    if not value or not (Path(value) / "ml-100k" / "u.data").is_file():
        pytest.skip("real MovieLens 100K not found: set HYBRIDREC_DATA_DIR to a folder holding ml-100k/")
    return Path(value)


@pytest.fixture(scope="session")
def real_movielens(real_data_dir):
    from hybridrec.data.movielens import load_movielens

    return load_movielens(real_data_dir / "ml-100k")


@pytest.fixture
def fake_gemini(monkeypatch):
    """A running fake Gemini server; the environment holds a test key and points the client at it."""
    from fake_gemini import FakeGemini

    server = FakeGemini()
    base_url = server.start()
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", base_url)
    server.base_url = base_url
    yield server
    server.stop()


# Tiny settings that make a full training run take about a second on the synthetic data.
TINY = [
    "embedder=hashing",
    "embedder.dim=32",
    "model.net.hidden=16",
    "model.net.depth=1",
    "model.net.out_dim=8",
    "model.net.id_emb_dim=8",
    "data.batch_size=256",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "fold_workers=1",  # folds one after another: worker processes have tests of their own
]


def compose_configs(*overrides: str, config: str = "train"):
    """The real configs composed with ``overrides`` (the defaults come from the YAML, as in a run)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        return compose(config, overrides=list(overrides))


@pytest.fixture
def compose_train(synthetic_data_dir, tmp_path):
    """Compose the real ``train.yaml`` with tiny overrides, writing under ``tmp_path``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    def _compose(*overrides: str, data_dir: Path | None = None):
        tiny = TINY
        if any(o.startswith("embedder=") for o in overrides):  # another embedder: not the hashing settings
            tiny = [o for o in TINY if not o.startswith("embedder")]
        with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
            cfg = compose("train", overrides=[*tiny, *overrides])
        OmegaConf.set_struct(cfg, False)
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.data.data_dir = str(data_dir or synthetic_data_dir)
        return cfg

    return _compose


# A model trained well enough on the synthetic data for the engine, CLI and API tests to mean something.
BUNDLE_SETTINGS = [
    "trainer.max_epochs=25",
    "model.optimizer.lr=0.01",
    "model.net.id_dropout=0.3",
    "model.net.cold_start_rate=0.2",
    "model.rank_weight=1.0",
]


@pytest.fixture(scope="session")
def trained_bundle(synthetic_data_dir, tmp_path_factory) -> Path:
    """A bundle trained (final fit) on the synthetic data with the hashing embedder; shared, read-only."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from hybridrec.embedders.factory import build_embedder
    from hybridrec.training.final_fit import train_and_save_bundle

    run_dir = tmp_path_factory.mktemp("trained")
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *BUNDLE_SETTINGS])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(run_dir)
    cfg.data.data_dir = str(synthetic_data_dir)
    return train_and_save_bundle(
        cfg, build_embedder(cfg.embedder, os.environ["HYBRIDREC_CACHE_DIR"] + "/e.sqlite3")
    )


@pytest.fixture(scope="session")
def engine(trained_bundle):
    from hybridrec.inference.engine import load_engine

    return load_engine(trained_bundle, "/nonexistent", text_cache_size=1000)
