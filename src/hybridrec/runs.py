"""Runs that survive a kill: the same command started again finishes the run it left unfinished.

A run folder holds ``run.json`` (its config's key, its name, whether it finished) and, while a
process works in it, a lock on ``run.lock`` (the kernel lets go of it when the process dies, even by
``kill -9``). ``resume: auto`` finds the newest unfinished, unlocked run of the same config under the
task's folders; ``resume=PATH`` names one. What a finished step leaves (a fold's outcome) is marked
by a file written last, holding the checksums of its files: a step is skipped only when every file
it names is there and whole.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from hybridrec.errors import InvalidInputError
from hybridrec.io import file_sha256, write_json

log = logging.getLogger(__name__)

RUN_FILE, LOCK_FILE = "run.json", "run.lock"
# settings that may differ between a run and its resumption (the folder, its name, how it was
# found, whether bars are drawn: fold workers draw none)
NOT_IN_KEY = ("paths.output_dir", "run_name", "resume", "trainer.enable_progress_bar")
AUTO = "auto"


def run_key(cfg: DictConfig) -> str:
    """A checksum of the resolved config, less ``NOT_IN_KEY``: the same command gives the same key."""
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(copy):
        for key in NOT_IN_KEY:
            OmegaConf.update(copy, key, None, force_add=True)
    resolved = OmegaConf.to_container(copy, resolve=True)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read(path: Path) -> dict | None:
    try:
        payload = json.loads((path / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) and "key" in payload else None


def _lock(folder: Path):
    """An exclusive lock on ``folder``'s run, or None when a live process holds it."""
    handle = open(folder / LOCK_FILE, "a")  # noqa: SIM115 (held open for the run's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@dataclass
class Run:
    """The folder a run writes in, held locked until ``release``."""

    folder: Path
    key: str
    name: str
    resumed: bool
    _handle: object

    def _write(self, state: str) -> None:
        if self._handle is None:  # (not the run's owner)
            return
        write_json(self.folder / RUN_FILE, {"key": self.key, "run_name": self.name, "state": state})

    def finish(self) -> None:
        self._write("done")

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _candidates(cfg: DictConfig) -> list[Path]:
    """The task's run folders (single runs and multirun jobs), newest first."""
    root = Path(cfg.paths.log_dir) / cfg.task_name
    found = [*root.glob(f"runs/*/{RUN_FILE}"), *root.glob(f"multiruns/*/*/{RUN_FILE}")]
    return sorted((p.parent for p in found), key=lambda p: p.stat().st_mtime, reverse=True)


def open_run(cfg: DictConfig, name: str, owner: bool = True, search: bool = True) -> Run:
    """The run to work in: ``cfg.resume`` (``auto``: the newest unfinished run of this config, if
    any; a folder: that run; null: none) or else the new folder ``cfg.paths.output_dir``, named
    ``name``. A resumed run's folder and name are written into ``cfg``.

    Processes of one run started by srun or torchrun all run this: there is no ``search`` (each would
    find its own; their folder is the one given, ``hydra.run.dir``), and only the first is the
    ``owner``, which locks the run and writes its state.
    """
    key, resume = run_key(cfg), cfg.get("resume")
    log.info("run key %s (the checksum of this config)", key)
    if not owner:
        return Run(
            Path(resume if resume not in (None, AUTO) else cfg.paths.output_dir), key, name, False, None
        )
    if not search and resume == AUTO:
        resume = None
    if resume not in (None, AUTO):
        folder = Path(resume).expanduser()
        state = _read(folder)
        if state is None:
            raise InvalidInputError(f"resume={resume}: no run folder there (no readable {RUN_FILE})")
        if state["key"] != key:
            raise InvalidInputError(
                f"resume={resume} was started with another config (key {state['key']}, now {key}): "
                "give it the same settings, or start a new run (resume=null)"
            )
        if state.get("state") == "done":
            raise InvalidInputError(f"resume={resume}: that run has finished; nothing to resume")
        handle = _lock(folder)
        if handle is None:
            raise InvalidInputError(f"resume={resume}: another process is working in that run")
        return _resumed(cfg, folder, key, state, handle)
    if resume == AUTO:
        for folder in _candidates(cfg):
            state = _read(folder)
            if state is None or state["key"] != key or state.get("state") == "done":
                continue
            if folder.resolve() == Path(cfg.paths.output_dir).resolve():
                continue
            handle = _lock(folder)
            if handle is not None:
                return _resumed(cfg, folder, key, state, handle)
    folder = Path(cfg.paths.output_dir)
    before = _read(folder)
    if before is not None and before["key"] != key:  # (a run folder given by hand: hydra.run.dir=...)
        raise InvalidInputError(
            f"{folder} holds a run of another config (key {before['key']}): choose another folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle = _lock(folder)
    if handle is None:
        raise InvalidInputError(f"another process is working in {folder}")
    run = Run(folder, key, name, False, handle)
    run._write("running")
    return run


def _resumed(cfg: DictConfig, folder: Path, key: str, state: dict, handle) -> Run:
    log.info("resuming the unfinished run %s (its finished folds are kept)", folder)
    with open_dict(cfg):
        cfg.paths.output_dir = str(folder)
    return Run(folder, key, state.get("run_name") or folder.name, True, handle)


def mark_finished(marker: Path, payload: dict, files: list[Path]) -> None:
    """Write ``marker`` (last, atomically): ``payload`` and the checksums of ``files`` (beside it)."""
    sums = {os.path.relpath(f, marker.parent): file_sha256(f) for f in files}
    write_json(marker, {"payload": payload, "files": sums})


def read_finished(marker: Path) -> dict | None:
    """``mark_finished``'s payload when the marker and every file it names are whole; else None."""
    try:
        record = json.loads(marker.read_text())
        whole = all(file_sha256(marker.parent / name) == sha for name, sha in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not whole:
        log.warning("%s: a file it names changed since it was written; that step runs again", marker)
        return None
    return record["payload"]
