"""What a fold's training needs to resume after a kill: checkpoints written whole or not at all,
the random state of every process inside them, and the last checkpoint found and checked.

A fit resumed from the checkpoint of an epoch's end goes on as if it had never stopped: the
optimizer, schedule, loops and callbacks come back from Lightning's checkpoint, the batches of an
epoch are drawn from the seed and the epoch alone (``IndexBatches``), and the random streams that
dropout draws from come back from ``RandomState``.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from hybridrec.io import atomic_write

log = logging.getLogger(__name__)

LAST = "last.ckpt"  # the checkpoint of the newest epoch (configs/callbacks: last_checkpoint)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, through ``atomic_write``: fsynced, then renamed into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def _random_state() -> dict:
    """The random states as tensors, numbers and tuples: what Lightning's weights-only loading reads."""
    kind, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_random_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(L.Callback):
    """Every process's random state (python, numpy, torch, CUDA) saved in each checkpoint and set
    back when a fit resumes from it, so dropout draws what it would have drawn without the kill."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        states = [_random_state()]
        if trainer.world_size > 1:  # each process draws its own stream: gather them all
            states = [None] * trainer.world_size
            torch.distributed.all_gather_object(states, _random_state())
        checkpoint["random_states"] = states

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        states = checkpoint.get("random_states")
        if states and len(states) == trainer.world_size:
            _set_random_state(states[trainer.global_rank])
        else:
            log.warning(
                "the checkpoint holds no random state for %d processes: dropout draws anew",
                trainer.world_size,
            )


def last_checkpoint(folder: Path) -> Path | None:
    """The last epoch's checkpoint in ``folder``, if one is there and loads; one that does not load
    (written by another version, damaged on disk) is left aside, and the fit starts over."""
    path = Path(folder) / LAST
    if not path.is_file():
        return None
    try:
        torch.load(path, map_location="cpu", weights_only=True)  # as Lightning reads it
    except Exception as err:  # any failure to read it means it cannot be resumed from
        aside = path.with_name(f"{LAST}.unreadable")
        path.replace(aside)
        log.warning(
            "%s does not load (%s): moved to %s, the fold trains from its start", path, err, aside.name
        )
        return None
    log.info("resuming from %s", path)
    return path
