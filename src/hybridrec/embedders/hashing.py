"""A dependency-free baseline: hashed word n-grams and character trigrams, L2-normalised.

No model, no download, microseconds per text: for ablations ("what does the language model add?")
and for fast tests. Uses blake2b, not Python's salted ``hash``, so vectors are stable across runs.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from hybridrec.embedders.base import Embedder, l2_normalize

_WORD = re.compile(r"[a-z0-9']+")


class HashingEmbedder(Embedder):
    def __init__(self, dim: int = 512, max_ngram: int = 2, char_trigrams: bool = True):
        if dim < 8:
            raise ValueError(f"hashing dim must be at least 8, got {dim}")
        self.dim = int(dim)
        self.max_ngram = int(max_ngram)
        self.char_trigrams = bool(char_trigrams)
        self.name = f"hashing-d{self.dim}-w{self.max_ngram}{'-c3' if self.char_trigrams else ''}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        features = [
            " ".join(words[i : i + n])
            for n in range(1, self.max_ngram + 1)
            for i in range(len(words) - n + 1)
        ]
        if self.char_trigrams:
            features += [f"#{w[i : i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
        return features

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        return l2_normalize(out)
