"""Where the data set is, and reading it: the one place that locates, downloads and loads it."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hybridrec.constants import ML100K_REQUIRED_FILES
from hybridrec.data.download import ensure_dataset
from hybridrec.data.movielens import MovieLens, load_movielens


@dataclass(frozen=True)
class DatasetSource:
    """A data set's folder (``data_dir/name``) and the official archive it comes from."""

    data_dir: str
    name: str
    url: str
    md5: str
    download: bool

    @classmethod
    def from_config(cls, data: Mapping) -> DatasetSource:
        """From a ``data`` config (configs/data/)."""
        return cls(str(data["data_dir"]), data["name"], data["url"], data["md5"], bool(data["download"]))

    def ensure(self) -> Path:
        """The data set's folder, downloaded (checksummed, atomically) first when it is missing."""
        return ensure_dataset(
            self.data_dir, self.name, self.url, self.md5, ML100K_REQUIRED_FILES, download=self.download
        )


@functools.lru_cache(maxsize=2)
def load_dataset(source: DatasetSource) -> MovieLens:
    """The parsed data set (downloaded first if needed); parsed once per process."""
    return load_movielens(source.ensure())
