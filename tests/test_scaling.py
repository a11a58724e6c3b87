"""Beyond one process: data-parallel training that computes what one process does, and sweeps run by
Hydra's launchers (submitit) and sweepers (Optuna) on validation, never on test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY

from hybridrec.config import instantiate
from hybridrec.data.datamodule import IndexBatches
from hybridrec.training.fit import build_datamodule


def test_every_process_reads_the_single_process_batches_and_evaluates_a_share(monkeypatch):
    single = [b.tolist() for b in IndexBatches(103, 10, shuffle=True, seed=3)]
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(IndexBatches, "_world", staticmethod(lambda rank=rank: (rank, 2)))
        assert [b.tolist() for b in IndexBatches(103, 10, shuffle=True, seed=3)] == single
        shares.append(torch.cat(list(IndexBatches(103, 10, shuffle=False))).tolist())
    assert sorted(shares[0] + shares[1]) == list(range(103))  # no rating twice: no padding


class _Rank:
    """What ``training_step`` asks of its trainer, for one of ``world`` processes."""

    global_step = 0

    def __init__(self, rank: int, world: int):
        self.global_rank, self.world_size = rank, world


def _gradients(module, batch) -> list[torch.Tensor]:
    module.zero_grad()
    module.training_step(batch, 0).backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


def test_the_processes_mean_gradient_is_the_single_process_gradient(compose_train, monkeypatch):
    """Two processes, each on its users' share of the batch: DDP's mean of their gradients equals the
    gradient of the whole batch in one process, with every random regulariser on (keyed noise: each
    process draws the masks of its share as one process would)."""
    cfg = compose_train("model.l2=0.01")
    assert cfg.model.net.dropout > 0 and cfg.model.net.history_dropout > 0 and cfg.model.net.id_dropout > 0
    assert cfg.model.net.cold_start_rate > 0
    datamodule = build_datamodule(cfg, "canonical", 1, _embedder(cfg))
    module = instantiate(cfg.model)(context=datamodule.context)
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)
    batch = next(iter(datamodule.train_dataloader()))
    module.train()
    whole = _gradients(module, batch)
    shares = []
    for rank in (0, 1):
        module._trainer = _Rank(rank, 2)
        monkeypatch.setattr(type(module), "global_rank", property(lambda self: self._trainer.global_rank))
        shares.append(_gradients(module, batch))
    module._trainer = None
    for one, first, second in zip(whole, *shares, strict=True):
        torch.testing.assert_close((first + second) / 2, one, rtol=1e-5, atol=1e-6)


def _embedder(cfg):
    from hybridrec.embedders.factory import build_run_embedder

    return build_run_embedder(cfg)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]


def _train(
    *overrides: str, data_dir: Path, multirun: bool = False, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    """``train.py`` with ``overrides``, or every process of it started by ``launcher`` (torchrun)."""
    return subprocess.run(
        [
            *(launcher or [sys.executable]),
            str(REPO_ROOT / "train.py"),
            *(["-m"] if multirun else []),
            *TINY,
            *overrides,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HYBRIDREC_DATA_DIR": str(data_dir)},
        timeout=600,
        cwd=REPO_ROOT,
    )


@pytest.mark.slow
def test_ddp_cpu_gives_the_metrics_of_one_process(synthetic_data_dir, tmp_path):
    """``python train.py trainer=ddp_cpu cv=fold cv.fold=1``: two processes over gloo, the numbers of
    one (within 1e-4), files written once (by rank 0); and the same two processes started by torchrun
    (as srun starts them on a cluster: trainer=ddp_multinode), each running train.py whole. The
    random regularisers are on, as by default."""
    modes = {
        "cpu": (["trainer=cpu"], None),
        "ddp_cpu": (["trainer=ddp_cpu"], None),
        "torchrun": (["trainer=ddp_cpu", "trainer.strategy=ddp"], TORCHRUN),
    }
    summaries = {}
    for mode, (trainer, launcher) in modes.items():
        run = tmp_path / mode
        result = _train(
            *trainer,
            "cv=fold",
            "cv.fold=1",
            "data.val_fraction=0.1",
            "final_fit=false",
            f"hydra.run.dir={run}",
            data_dir=synthetic_data_dir,
            launcher=launcher,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        summaries[mode] = json.loads((run / "cv_summary.json").read_text())
        assert (run / "folds" / "1" / "history.csv").read_text().count("\n") == 4  # header + 3 epochs
        assert len(list(run.rglob("cv_summary.json"))) == 1
    one = summaries["cpu"]
    metrics = [k for k in one if k.startswith(("test/", "val/")) and isinstance(one[k], float)]
    assert "val/rmse_mean" in metrics and "test/ndcg@10_mean" in metrics
    for mode in ("ddp_cpu", "torchrun"):
        for key in metrics:
            if np.isfinite(one[key]):
                assert summaries[mode][key] == pytest.approx(one[key], abs=1e-4), (mode, key)
        assert summaries[mode]["folds"][0]["epochs"] == one["folds"][0]["epochs"] == 3


def _sweep_two_widths(setting: str, data_dir, sweep_dir):
    """``train.py -m`` over two tower widths, one fold of two epochs each, with ``setting``."""
    return _train(
        setting,
        "cv=fold",
        "final_fit=false",
        "trainer.max_epochs=2",  # (OneCycleLR needs more than 5 steps)
        "model.net.hidden=8,16",
        f"hydra.sweep.dir={sweep_dir}",
        data_dir=data_dir,
        multirun=True,
    )


@pytest.mark.slow
def test_a_multirun_of_ddp_spawn_jobs(synthetic_data_dir, tmp_path):
    """Hydra multirun with a data-parallel trainer inside each job (ddp_spawn: the job's own process
    starts and joins the training processes; Lightning issue 11300 is plain ddp re-running the script)."""
    result = _sweep_two_widths("trainer=ddp_cpu", synthetic_data_dir, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all((tmp_path / job / "cv_summary.json").is_file() for job in "01")


@pytest.mark.slow
def test_submitit_local_runs_a_sweep_of_two_settings(synthetic_data_dir, tmp_path):
    """The launcher that ``hydra/launcher=slurm`` uses on a cluster, on this machine."""
    result = _sweep_two_widths("hydra/launcher=submitit_local", synthetic_data_dir, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / ".submitit").is_dir()  # each job went through submitit
    table = (tmp_path / "sweep_summary.md").read_text()
    assert {line.split("|")[2].strip() for line in table.splitlines() if line.startswith("| ")} >= {"8", "16"}


def test_the_slurm_launcher_and_the_optuna_search_compose():
    from hydra import compose, initialize_config_dir

    overrides = ["hydra/launcher=slurm", "hparams_search=hybrid_optuna", "hydra.launcher.partition=gpu"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher, sweeper = cfg.hydra.launcher, cfg.hydra.sweeper
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "gpu"
    assert launcher.gpus_per_node == 1 and launcher.timeout_min > 0
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    # tuned on the validation carved from each fold's training part, of the metric train.py returns
    assert float(sweeper.params["data.val_fraction"]) > 0
    assert cfg.monitor.metric.startswith("val/") and cfg.monitor.mode == "min"


@pytest.mark.slow  # a subprocess run: `make test-all`
def test_a_sweep_without_validation_is_refused(synthetic_data_dir, tmp_path):
    result = _train(
        "cv=fold",
        "data.val_fraction=0",
        f"hydra.sweep.dir={tmp_path}",
        data_dir=synthetic_data_dir,
        multirun=True,
    )
    assert result.returncode == 2  # a ConfigError
    assert "error: a sweep chooses its setting on validation" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_optuna_search_of_two_trials(synthetic_data_dir, tmp_path):
    result = _train(
        "hparams_search=hybrid_optuna",
        "hydra.sweeper.n_trials=2",
        "cv=fold",
        "trainer.max_epochs=2",  # (OneCycleLR needs more than 5 steps)
        f"hydra.sweep.dir={tmp_path}",
        data_dir=synthetic_data_dir,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    best = (tmp_path / "optimization_results.yaml").read_text()
    assert "best_params" in best and "best_value" in best
    for job in "01":
        summary = json.loads((tmp_path / job / "cv_summary.json").read_text())
        assert np.isfinite(summary["val/rmse_mean"])  # what the trial was scored on
