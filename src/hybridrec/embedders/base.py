"""The one interface every embedder implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class EmbedderError(Exception):
    """Base for embedder failures (hybridrec.errors wraps the user-facing ones)."""


class Embedder(ABC):
    """Maps texts to float32 vectors of a fixed dimension.

    ``name`` identifies the model *and* every setting that changes the vectors, because the cache
    keys vectors by it: two embedders with the same name must give the same vectors.
    """

    name: str
    dim: int

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed a non-empty list of texts; returns (n, dim)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._embed(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise RuntimeError(
                f"{self.name} returned shape {vectors.shape}, expected {(len(texts), self.dim)}"
            )
        return vectors

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
