"""The command-line entry points as a user runs them: real processes, real configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT


def run_cli(script: str, *overrides: str, env: dict | None = None, timeout: int = 300):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *overrides],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def test_train_cross_validates_and_saves_a_bundle(synthetic_data_dir, tmp_path):
    from conftest import TINY

    result = run_cli(
        "train.py", *TINY, f"hydra.run.dir={tmp_path}", env={"HYBRIDREC_DATA_DIR": str(synthetic_data_dir)}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Canonical folds" in result.stdout and "u1:" in result.stdout and "Age: " in result.stdout
    assert "mean ± std" in result.stdout
    assert (tmp_path / "cv_summary.json").is_file() and (tmp_path / "bundle" / "manifest.json").is_file()
    assert sorted(p.name for p in (tmp_path / "folds").iterdir()) == ["1", "2", "3", "4", "5"]


def test_missing_data_without_download_is_one_clear_line(tmp_path):
    result = run_cli(
        "train.py",
        f"hydra.run.dir={tmp_path / 'run'}",
        "data.download=false",
        env={"HYBRIDREC_DATA_DIR": str(tmp_path / "nowhere")},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: ml-100k not found under {tmp_path / 'nowhere'} and download is off; set HYBRIDREC_DATA_DIR to a "
        "folder holding ml-100k/ or allow data.download=true"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # subprocesses (15-37 s): CI runs it after `make test`
def test_train_precomputes_embeddings_once(synthetic_data_dir, tmp_path):
    from conftest import TINY

    env = {"HYBRIDREC_DATA_DIR": str(synthetic_data_dir), "HYBRIDREC_CACHE_DIR": str(tmp_path / "cache")}
    args = [*TINY, "cv=fold", "final_fit=false"]
    first = run_cli("train.py", *args, f"hydra.run.dir={tmp_path / 'a'}", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "read from the cache" in first.stdout and " 0 texts embedded" not in first.stdout
    second = run_cli("train.py", *args, f"hydra.run.dir={tmp_path / 'b'}", env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert ": 0 texts embedded" in second.stdout


def test_gemini_without_key_is_one_line_exit_2(synthetic_data_dir, tmp_path):
    env = {"HYBRIDREC_DATA_DIR": str(synthetic_data_dir), "PROJECT_ROOT": str(tmp_path)}
    result = run_cli("train.py", f"hydra.run.dir={tmp_path / 'a'}", "embedder=gemini", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: embedder=gemini needs a Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the "
        "environment or in a git-ignored .env file in the project folder"
    ]


@pytest.mark.slow  # subprocesses or worker processes: `make test-all`
def test_a_gemini_outage_stops_training_with_one_line_exit_1(synthetic_data_dir, tmp_path, fake_gemini):
    fake_gemini.fail(503, times=100)
    env = {"HYBRIDREC_DATA_DIR": str(synthetic_data_dir), "HYBRIDREC_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli(
        "train.py",
        f"hydra.run.dir={tmp_path / 'a'}",
        "embedder=gemini",
        "embedder.budget_s=1",
        "embedder.initial_wait_s=0.01",
        "embedder.requests_per_minute=0",
        env=env,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Gemini embeddings failed (within a budget of 1s): HTTP 503" in errors[0]


@pytest.mark.slow  # subprocesses (15-37 s): CI runs it after `make test`
def test_multirun_writes_a_table_of_settings(synthetic_data_dir, tmp_path):
    from conftest import TINY

    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        "train.py",
        "-m",
        *TINY,
        "cv=fold",
        "final_fit=false",
        "model.net.hidden=8,16",
        f"hydra.sweep.dir={sweep_dir}",
        env={"HYBRIDREC_DATA_DIR": str(synthetic_data_dir)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = (sweep_dir / "sweep_summary.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| job"))
    assert header.startswith("| job | model.net.hidden | monitored | test/rmse_mean")
    rows = [line for line in table.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert len(rows) == 2 and {r.split("|")[2].strip() for r in rows} == {"8", "16"}
    assert "best val/rmse first" in table and "Sweep" in result.stdout
    # each job is named after its sweep and number (W&B groups), not "0" like every sweep's first job
    assert (
        (sweep_dir / "0" / "cv_summary.md").read_text().startswith(f"# Cross-validation: {sweep_dir.name}-0")
    )
    assert (sweep_dir / "sweep_summary.png").read_bytes().startswith(b"\x89PNG")
    # a sweep chooses on validation: every job carved it (hydra.sweeper.params), though a run does not
    assert all(
        np.isfinite(json.loads((sweep_dir / j / "cv_summary.json").read_text())["val/rmse_mean"])
        for j in "01"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "+model.net.hiddn=3",
            "error: model.net.hiddn is not a setting of hybridrec.models.hybrid.HybridRecModel",
        ),
        (
            "+evidence.item_knn.kk=3",
            "error: evidence.item_knn.kk is not a setting of hybridrec.models.evidence",
        ),
        ("+data.profile.max_likd=2", "error: data.profile.max_likd is not a profile setting"),
        (
            "+blend.weights.known_ratings.knn=0.3",
            "error: blend.weights.known_ratings.knn is not an evidence term",
        ),
    ],
)
def test_a_mistyped_setting_fails_at_once_with_one_line(tmp_path, override, message):
    """Before any data is read (the data folder here does not exist), exit 2, one line naming the key."""
    result = run_cli(
        "train.py", override, f"hydra.run.dir={tmp_path}", env={"HYBRIDREC_DATA_DIR": str(tmp_path / "none")}
    )
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # subprocesses or worker processes: `make test-all`
def test_fold_workers_log_to_the_runs_log_file(synthetic_data_dir, tmp_path):
    """With folds in worker processes, their lines still reach the run's train.log, as do the data
    summary and the result table; workers show no progress bars of their own."""
    from conftest import TINY

    overrides = [o for o in TINY if not o.startswith("fold_workers")]
    result = run_cli(
        "train.py",
        *overrides,
        "fold_workers=2",
        "cv.folds=[1,2]",
        "final_fit=false",
        "trainer.enable_progress_bar=true",
        f"hydra.run.dir={tmp_path}",
        env={"HYBRIDREC_DATA_DIR": str(synthetic_data_dir)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    logged = (tmp_path / "train.log").read_text()
    for line in ("fold 1: test RMSE", "fold 2: test RMSE", "Canonical folds", "mean ± std"):
        assert line in logged, line
    assert "Epoch 0" not in result.stderr  # no bar from the workers


@pytest.mark.slow  # subprocesses or worker processes: `make test-all`
def test_eval_gives_a_fold_bundle_its_cross_validation_numbers(synthetic_data_dir, tmp_path):
    """eval.py reads a fold's bundle and the fold's test part again: the numbers of the CV run. A
    bundle of every rating is refused (its training held every test rating)."""
    from conftest import TINY

    env = {"HYBRIDREC_DATA_DIR": str(synthetic_data_dir)}
    run = tmp_path / "run"
    trained = run_cli("train.py", *TINY, "cv=fold", "save_fold_bundles=true", f"hydra.run.dir={run}", env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = run_cli("eval.py", f"bundle={run / 'folds' / '1' / 'bundle'}", "format=json", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = json.loads(result.stdout)
    fold = json.loads((run / "cv_summary.json").read_text())["folds"][0]
    for key in ("test/rmse", "test/mae", "test/ndcg@10", "test/recall@10"):
        assert evaluated[key] == pytest.approx(fold[key], abs=1e-6), key
    refused = run_cli("eval.py", f"bundle={run / 'bundle'}", env=env)
    assert (
        refused.returncode == 2
        and "would leak" in refused.stderr
        and len(refused.stderr.strip().splitlines()) == 1
    )
