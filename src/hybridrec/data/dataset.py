"""Where the data set is, and reading it: the one place that locates, downloads and loads it."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hybridrec.data.download import ensure_dataset
from hybridrec.data.movielens import MovieLens
from hybridrec.data.readers import REQUIRED_FILES, read_dataset
from hybridrec.errors import ConfigError


@dataclass(frozen=True)
class DatasetSource:
    """A data set's folder (``data_dir/name``, the official archive's folder name) and that archive."""

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
        if self.name not in REQUIRED_FILES:
            raise ConfigError(
                f"data.name={self.name!r} is no MovieLens folder; the folders: {', '.join(REQUIRED_FILES)}"
            )
        return ensure_dataset(
            self.data_dir, self.name, self.url, self.md5, REQUIRED_FILES[self.name], download=self.download
        )


@functools.lru_cache(maxsize=2)
def load_dataset(source: DatasetSource) -> MovieLens:
    """The parsed data set (downloaded first if needed), read by its folder's reader; once per process."""
    return read_dataset(source.ensure())
