"""Experiment tracking, plots and notebooks: W&B offline runs, the run folder's plots, the notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT
from nbclient import NotebookClient

from hybridrec.embedders.factory import build_embedder
from hybridrec.evaluation.cross_validation import run_cross_validation
from hybridrec.tracking import log_cv_summary
from hybridrec.training import fit_fold

PNG = b"\x89PNG\r\n\x1a\n"


def _wandb_logs(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob("**/offline-run-*/run-*.wandb"))]


@pytest.fixture(scope="module")
def wandb_cv_run(tmp_path_factory, synthetic_data_dir):
    """A 2-fold CV with the W&B logger, offline, with the baselines and a validation carve-out (its
    metrics and checkpoint choice reach W&B too); shared by the tests below."""
    from conftest import TINY
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    run_dir = tmp_path_factory.mktemp("wandb_run")
    overrides = [o for o in TINY if not o.startswith("logger=")] + [
        "logger=wandb",
        "cv.folds=[1,2]",
        "data.val_fraction=0.1",
    ]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(run_dir)
    cfg.data.data_dir = str(synthetic_data_dir)
    result = run_cross_validation(cfg, build_embedder(cfg.embedder, None))
    log_cv_summary(cfg, result.summary, result.plots)
    # the W&B service writes the offline logs in its own process, and ``run.finish()`` can return
    # before the last run's log is on disk (CI once read only its header); teardown waits for it,
    # as the exit hook does at the end of ``train.py``
    import wandb

    wandb.teardown()
    return run_dir, result


def test_each_fold_is_a_wandb_run_of_one_group(wandb_cv_run):
    run_dir, _ = wandb_cv_run
    for fold in (1, 2):
        (log,) = _wandb_logs(run_dir / "folds" / str(fold))
        for key in (
            b"train/loss",
            b"val/rmse",
            b"val/ndcg@10",
            b"test/rmse",
            b"test/ndcg@10",
            b"model_checkpoint",
        ):
            assert key in log, f"fold {fold}: {key!r} missing from the W&B log"
        assert run_dir.name.encode() in log and f"{run_dir.name}-fold{fold}".encode() in log


def test_the_cv_summary_is_a_wandb_run_with_table_and_plots(wandb_cv_run):
    run_dir, _ = wandb_cv_run
    (log,) = [p.read_bytes() for p in run_dir.glob("wandb/offline-run-*/run-*.wandb")]
    for key in (
        b"cv/folds",
        b"cv/cv_summary",
        b"cv/test/rmse_mean",
        b"cv-summary",
        b"model:HybridRecLitModule",
    ):
        assert key in log
    assert b"predictions" in log and b"val_fraction" in log  # the artifact, the run's config
    assert list(run_dir.glob("wandb/offline-run-*/files/media/table/cv/folds_*.table.json"))


def test_the_run_folder_holds_its_plots(wandb_cv_run):
    run_dir, result = wandb_cv_run
    names = {p.name for p in result.plots}
    assert names == {"cv_summary.png", "learning_curves.png", "calibration.png"}
    for name in names:
        assert (run_dir / name).read_bytes().startswith(PNG) and (run_dir / name).stat().st_size > 10_000
    assert set(result.summary["baselines"]) == {"popularity", "biases", "ease"}
    assert "Beside the baselines" in (run_dir / "cv_summary.md").read_text()
    assert (run_dir / "folds" / "1" / "history.csv").read_text().startswith("epoch,")


def test_a_crashing_fold_still_closes_its_wandb_run(compose_train, tmp_path, monkeypatch):
    import wandb

    from hybridrec.models.lit_module import HybridRecLitModule

    def explode(self, batch, batch_idx):
        raise RuntimeError("boom")

    monkeypatch.setattr(HybridRecLitModule, "training_step", explode)
    cfg = compose_train("logger=wandb")
    with pytest.raises(RuntimeError, match="boom"):
        fit_fold(
            cfg, "canonical", 1, build_embedder(cfg.embedder, None), tmp_path / "fold", "run", "run-fold1"
        )
    assert wandb.run is None
    assert _wandb_logs(tmp_path / "fold")


@pytest.mark.parametrize("notebook", ["01_movielens_tour.ipynb", "02_results.ipynb"])
def test_notebooks_execute(notebook, synthetic_data_dir, wandb_cv_run, monkeypatch):
    run_dir, _ = wandb_cv_run
    monkeypatch.setenv("HYBRIDREC_DATA_DIR", str(synthetic_data_dir))
    monkeypatch.setenv("HYBRIDREC_RUNS_DIR", str(run_dir))
    book = nbformat.read(REPO_ROOT / "notebooks" / notebook, as_version=4)
    NotebookClient(
        book,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}},
    ).execute()
    assert any(cell.get("outputs") for cell in book.cells if cell.cell_type == "code")
    assert os.environ["HYBRIDREC_DATA_DIR"] == str(synthetic_data_dir)


def test_the_results_notebook_says_what_to_do_when_there_is_no_run_yet(
    tmp_path, monkeypatch, synthetic_data_dir
):
    """A fresh clone has no run: the notebook runs through and says how to make one."""
    monkeypatch.setenv("HYBRIDREC_DATA_DIR", str(synthetic_data_dir))
    monkeypatch.setenv("HYBRIDREC_RUNS_DIR", str(tmp_path))
    book = nbformat.read(REPO_ROOT / "notebooks" / "02_results.ipynb", as_version=4)
    NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = "".join(o.get("text", "") for cell in book.cells for o in cell.get("outputs", []))
    assert "Nothing to show yet" in printed
