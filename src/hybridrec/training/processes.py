"""Which process this is when a launcher (srun, torchrun) starts every process of a data-parallel
run, each running ``train.py`` whole (``trainer=ddp_multinode``). The first process does what is
done once: the evidence terms, evaluation, baselines, every file; the others join each fit.

Under ``ddp_spawn`` (``trainer=ddp``, ``ddp_cpu``) the cross-validation loop runs in one process
only, which is the first: this module says so there.
"""

from __future__ import annotations

import os

from lightning.pytorch.utilities.rank_zero import rank_zero_only


def is_first_process() -> bool:
    """Rank 0 as Lightning reads it from the launcher's environment (RANK, SLURM_PROCID, ...)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def started_by_a_launcher() -> bool:
    """Whether srun or torchrun started several processes of this run (each running it whole)."""
    return int(os.environ.get("WORLD_SIZE") or os.environ.get("SLURM_NTASKS") or 1) > 1
