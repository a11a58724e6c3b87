"""Which process this is when a launcher (srun, torchrun) starts every process of a data-parallel
run, each running ``train.py`` whole (``trainer=ddp_multinode``). The first process does what is
done once: the evidence terms, evaluation, baselines, every file; the others join each fit.

Under ``ddp_spawn`` (``trainer=ddp``, ``ddp_cpu``) the cross-validation loop runs in one process
only, which is the first: this module says so there.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_only

PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def is_first_process() -> bool:
    """Rank 0 as Lightning reads it from the launcher's environment (RANK, SLURM_PROCID, ...)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def started_by_a_launcher() -> bool:
    """Whether srun or torchrun started several processes of this run (each running it whole)."""
    return int(os.environ.get("WORLD_SIZE") or os.environ.get("SLURM_NTASKS") or 1) > 1


def die_with_parent() -> None:
    """In a process this run's process started (a fold worker, a ddp_spawn rank): be killed when it
    dies, even by kill -9, so that the run started again never meets an orphan still writing its
    files. Linux only (prctl); elsewhere nothing is done."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent.pid:  # it died before the line above
        os.kill(os.getpid(), signal.SIGKILL)


class DiesWithParent(L.Callback):
    """``die_with_parent`` in each process a fit runs in (ddp_spawn starts them)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        die_with_parent()
