"""Runs that survive a kill: finished folds kept and checked, a fold cut short resumed from its last
checkpoint, the same numbers as a run never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, TINY

from hybridrec.embedders.factory import build_run_embedder
from hybridrec.errors import InvalidInputError
from hybridrec.evaluation.cross_validation import FOLD_DONE, run_cross_validation
from hybridrec.runs import open_run, read_finished, run_key

SHORT = ["cv.folds=[1,2]", "data.val_fraction=0.1", "trainer.max_epochs=4"]


def _timeless(payload) -> str:
    """A summary less its timings (the only numbers that differ between two runs of one config), as
    JSON text (where NaN equals NaN)."""

    def drop(value):
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if "seconds" not in k}
        if isinstance(value, list):
            return [drop(v) for v in value]
        return value

    return json.dumps(drop(payload), sort_keys=True, default=float)


def _interrupting(marker: Path, kill: bool) -> list[str]:
    return [
        "+callbacks.interrupt._target_=synthetic.InterruptOnce",
        f"+callbacks.interrupt.marker={marker}",
        "+callbacks.interrupt.folder=folds/2",
        "+callbacks.interrupt.epoch=2",
        f"+callbacks.interrupt.kill={str(kill).lower()}",
    ]


def test_a_fold_cut_short_resumes_from_its_last_checkpoint(compose_train, tmp_path, caplog):
    marker = tmp_path / "interrupted"
    cfg = compose_train(*SHORT, *_interrupting(marker, kill=False))
    embedder = build_run_embedder(cfg)
    with pytest.raises(RuntimeError, match="interrupted by the test"):
        run_cross_validation(cfg, embedder)
    run = Path(cfg.paths.output_dir)
    assert (run / "folds" / "1" / FOLD_DONE).is_file() and not (run / "folds" / "2" / FOLD_DONE).exists()
    assert (run / "folds" / "2" / "checkpoints" / "last.ckpt").is_file()
    first_fold = (run / "folds" / "1" / "test_predictions.csv").stat().st_mtime_ns

    with caplog.at_level("INFO"):
        resumed = run_cross_validation(cfg, embedder)
    assert "folds [1] finished before: kept" in caplog.text and "resuming from" in caplog.text
    assert (run / "folds" / "1" / "test_predictions.csv").stat().st_mtime_ns == first_fold
    assert not (run / "folds" / "2" / "checkpoints" / "last.ckpt").exists()  # done: nothing to resume

    cfg.paths.output_dir = str(tmp_path / "never-stopped")
    whole = run_cross_validation(cfg, embedder)
    assert _timeless(resumed.summary) == _timeless(whole.summary)
    assert resumed.rows[1]["epochs"] == 4


def test_a_finished_fold_whose_file_changed_runs_again(compose_train, tmp_path):
    cfg = compose_train("cv.folds=[1]", "baselines=none")
    run_cross_validation(cfg, build_run_embedder(cfg))
    fold = Path(cfg.paths.output_dir) / "folds" / "1"
    assert read_finished(fold / FOLD_DONE) is not None
    with open(fold / "test_predictions.csv", "a") as handle:
        handle.write("1,2,3,4,5\n")
    assert read_finished(fold / FOLD_DONE) is None
    (fold / FOLD_DONE).write_text('{"payload": ')  # (never written so by the code: a damaged disk)
    assert read_finished(fold / FOLD_DONE) is None


def test_the_same_config_finds_its_unfinished_run(compose_train, tmp_path):
    cfg = compose_train("cv.folds=[1]", "paths.log_dir=" + str(tmp_path / "outputs"))
    cfg.paths.output_dir = str(tmp_path / "outputs" / "train" / "runs" / "first")
    first = open_run(cfg, "first")
    assert not first.resumed
    again = compose_train("cv.folds=[1]", "paths.log_dir=" + str(tmp_path / "outputs"))
    again.paths.output_dir = str(tmp_path / "outputs" / "train" / "runs" / "second")
    second = open_run(again, "second")  # the first is still at work (locked): a new run
    assert not second.resumed
    second.finish()
    second.release()
    first.release()  # as a killed process would
    third_cfg = compose_train("cv.folds=[1]", "paths.log_dir=" + str(tmp_path / "outputs"))
    third_cfg.paths.output_dir = str(tmp_path / "outputs" / "train" / "runs" / "third")
    third = open_run(third_cfg, "third")
    assert third.resumed and third.folder.name == "first" and third.name == "first"
    assert third_cfg.paths.output_dir.endswith("first")
    third.release()

    other = compose_train("cv.folds=[2]", f"resume={tmp_path / 'outputs' / 'train' / 'runs' / 'first'}")
    assert run_key(other) != run_key(third_cfg)
    with pytest.raises(InvalidInputError, match="another config"):
        open_run(other, "other")
    done = compose_train(
        "cv.folds=[1]",
        "paths.log_dir=" + str(tmp_path / "outputs"),
        f"resume={tmp_path / 'outputs' / 'train' / 'runs' / 'second'}",
    )
    with pytest.raises(InvalidInputError, match="has finished"):
        open_run(done, "done")


def _train(*overrides: str, data_dir: Path) -> subprocess.CompletedProcess:
    tests = os.pathsep.join(filter(None, [str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HYBRIDREC_DATA_DIR": str(data_dir), "PYTHONPATH": tests}  # (synthetic.py)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *TINY, *overrides],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO_ROOT,
    )


@pytest.mark.slow
def test_a_run_killed_mid_fold_finishes_with_the_summary_of_a_run_never_killed(synthetic_data_dir, tmp_path):
    """kill -9 in fold 2's second epoch; the same command again finishes the run; its cv_summary.json
    is that of a run of the same config never killed (timings aside)."""
    marker = tmp_path / "killed"
    command = [*SHORT, "final_fit=false", *_interrupting(marker, kill=True)]
    killed = _train(*command, f"paths.log_dir={tmp_path / 'outputs'}", data_dir=synthetic_data_dir)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [run] = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert not (run / "cv_summary.json").exists()

    again = _train(*command, f"paths.log_dir={tmp_path / 'outputs'}", data_dir=synthetic_data_dir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming the unfinished run" in again.stdout + again.stderr
    never = _train(*command, f"paths.log_dir={tmp_path / 'reference'}", data_dir=synthetic_data_dir)
    assert never.returncode == 0, never.stderr[-2000:]
    [reference] = (tmp_path / "reference" / "train" / "runs").iterdir()
    resumed, whole = (json.loads((r / "cv_summary.json").read_text()) for r in (run, reference))
    assert _timeless(resumed) == _timeless(whole)
    [attempt] = [f for f in (tmp_path / "outputs" / "train" / "runs").iterdir() if f != run]
    assert (attempt / "cv_summary.json").read_text() == (run / "cv_summary.json").read_text()
    assert json.loads((run / "run.json").read_text())["state"] == "done"
