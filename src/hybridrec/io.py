"""Writing files and folders so that a crash, even ``kill -9`` or a power cut, never leaves a
half-written one: write beside the target, fsync, then rename. Temporary names carry the writer's
pid, so what a dead writer left behind is recognised and removed by the next one.

Modes follow the process umask, as for any file the user creates (``mkstemp`` and ``mkdtemp`` would
make them private: 0600 and 0700).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path


def umask() -> int:
    """The process umask: from /proc on Linux (reading it there changes nothing, so it is thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path: str | Path) -> None:
    """Flush a file's or a folder's entry to disk (a folder: the names in it, e.g. after a rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """fsync every file and folder under ``folder``, and ``folder`` itself."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(root)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def _temporary_name(name: str, kind: str) -> str:
    """``.<name>.<kind>-<host>-<pid>-``: whose it is, even on a folder other machines share."""
    return f".{name}.{kind}-{HOST}-{os.getpid()}-"


def remove_stale(parent: str | Path, name: str) -> list[Path]:
    """Remove what writers of ``parent/name`` that are no longer running left behind: staged folders
    and temporary files; put back a folder left aside by a replacement cut between its two renames.
    Returns what was removed."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(name)}\.(staged|aside|tmp)-{HOST}-(\d+)-")
    removed = []
    for path in sorted(parent.iterdir()):
        match = pattern.match(path.name)
        if match is None or _process_alive(int(match.group(2))):
            continue
        if match.group(1) == "aside" and not (parent / name).exists():
            os.rename(path, parent / name)  # the new one never arrived: the old one is the target again
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        removed.append(path)
    if removed:
        fsync_path(parent)
    return removed


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` only once it is complete and on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_name(path.name, "tmp"), dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~umask())
        write(Path(tmp))
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def staging_folder(target: str | Path) -> Path:
    """A new empty folder beside ``target`` to build its replacement in (see ``replace_folder``)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent, target.name)
    staged = Path(tempfile.mkdtemp(prefix=_temporary_name(target.name, "staged"), dir=target.parent))
    os.chmod(staged, 0o777 & ~umask())
    return staged


def replace_folder(staged: str | Path, target: str | Path) -> Path:
    """Put the complete folder ``staged`` in place of ``target``: everything fsynced first; the old
    target, if any, stays whole beside until the new one is in (a kill between the two renames is
    undone by ``remove_stale``), then goes."""
    staged, target = Path(staged), Path(target)
    fsync_tree(staged)
    aside = None
    if target.exists():
        aside = target.parent / f"{_temporary_name(target.name, 'aside')}{uuid.uuid4().hex[:8]}"
        os.rename(target, aside)
    os.rename(staged, target)
    fsync_path(target.parent)
    if aside is not None:
        shutil.rmtree(aside)
    return target


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, payload) -> Path:
    return write_text(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time (what manifests record and check)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
