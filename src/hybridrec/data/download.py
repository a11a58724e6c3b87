"""Fetch the official MovieLens archive once: streamed, checksummed, extracted atomically.

A failed or interrupted download never leaves a half-written dataset folder: the archive goes to a
temporary file, is verified, extracted into a temporary folder and only then renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

from hybridrec.errors import DataError
from hybridrec.io import fsync_path, fsync_tree, staging_folder

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


class DataDownloadError(DataError):
    """The dataset could not be fetched or verified; the message says why in one line."""


def missing_files(folder: Path, required: Iterable[str]) -> list[str]:
    """Names of the required files that ``folder`` lacks."""
    return [name for name in required if not (folder / name).is_file()]


def ensure_dataset(
    data_dir: str | os.PathLike,
    name: str,
    url: str,
    md5: str,
    required: Iterable[str],
    download: bool = True,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Return ``data_dir/name``, downloading and extracting ``url`` first when files are missing."""
    data_dir = Path(data_dir).expanduser()
    target = data_dir / name
    required = tuple(required)
    if target.is_dir():
        lacking = missing_files(target, required)
        if not lacking:
            return target
        raise DataDownloadError(
            f"{target} exists but lacks {', '.join(lacking)}; remove the folder to download it again"
        )
    if not download:
        raise DataDownloadError(
            f"{name} not found under {data_dir} and download is off; set HYBRIDREC_DATA_DIR to a "
            f"folder holding {name}/ or allow data.download=true"
        )
    staged = staging_folder(target)  # what a killed download left behind goes here, at the next start
    try:
        archive = staged / "archive.zip"
        try:
            _download(url, archive, md5, timeout=timeout, progress=progress)
        except DataDownloadError as err:
            raise DataDownloadError(
                f"{err}; to use a local copy, set HYBRIDREC_DATA_DIR to a folder holding {name}/"
            ) from err
        extracted = staged / "extracted"
        _extract(archive, extracted)
        source = extracted / name
        lacking = missing_files(source, required)
        if lacking:
            raise DataDownloadError(f"archive from {url} has no {name}/{lacking[0]}")
        fsync_tree(source)
        try:
            os.rename(source, target)
            fsync_path(data_dir)
        except OSError as err:
            if target.is_dir() and not missing_files(target, required):
                return target  # another process finished first: its copy is as good as ours
            raise DataDownloadError(f"could not move the extracted data into {target}: {err}") from err
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    log.info("MovieLens data ready at %s", target)
    return target


def _download(url: str, dest: Path, md5: str, timeout: float, progress: bool) -> None:
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"download {dest.parent.name}",
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise DataDownloadError(f"could not download {url} ({reason})") from err
    if digest.hexdigest() != md5:
        raise DataDownloadError(
            f"checksum mismatch for {url}: expected md5 {md5}, got {digest.hexdigest()}; nothing was kept"
        )


def _extract(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            for member in zf.namelist():
                if not (dest / member).resolve().is_relative_to(root):
                    raise DataDownloadError(f"archive member {member!r} escapes the target folder")
            zf.extractall(dest)
    except zipfile.BadZipFile as err:
        shutil.rmtree(dest, ignore_errors=True)
        raise DataDownloadError(f"downloaded archive is not a valid zip file: {err}") from err
