"""The command-line entry points as a user runs them: real processes, real configs."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_train_prints_data_summary(synthetic_data_dir, tmp_path):
    result = run_cli(
        "train.py", f"hydra.run.dir={tmp_path}", env={"HYBRIDREC_DATA_DIR": str(synthetic_data_dir)}
    )
    assert result.returncode == 0, result.stderr
    assert "Canonical folds" in result.stdout and "u1:" in result.stdout
    assert "Age: " in result.stdout


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


def test_train_precomputes_embeddings_once(synthetic_data_dir, tmp_path):
    env = {"HYBRIDREC_DATA_DIR": str(synthetic_data_dir), "HYBRIDREC_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli("train.py", f"hydra.run.dir={tmp_path / 'a'}", "embedder=hashing", env=env)
    assert first.returncode == 0, first.stderr
    assert " 0 from the cache" in first.stdout
    second = run_cli("train.py", f"hydra.run.dir={tmp_path / 'b'}", "embedder=hashing", env=env)
    assert second.returncode == 0, second.stderr
    assert "0 texts embedded" in second.stdout


def test_gemini_without_key_is_one_line_exit_2(synthetic_data_dir, tmp_path):
    env = {"HYBRIDREC_DATA_DIR": str(synthetic_data_dir), "PROJECT_ROOT": str(tmp_path)}
    result = run_cli("train.py", f"hydra.run.dir={tmp_path / 'a'}", "embedder=gemini", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: embedder=gemini needs a Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the "
        "environment or in a git-ignored .env file in the project folder"
    ]
