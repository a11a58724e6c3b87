"""Every vector is computed once: a durable cache keyed by (embedder name, sha256 of the text)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hybridrec.embedders.base import Embedder
from hybridrec.store import DurableStore

log = logging.getLogger(__name__)

_LOG_EVERY_S = 60.0  # without a bar (not a terminal, or turned off), a long job logs its progress this often


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class EmbedStats:
    """What the last ``embed`` call did: texts asked for, found in the cache, newly embedded."""

    requested: int = 0
    cached: int = 0
    embedded: int = 0
    seconds: float = 0.0

    def add(self, other: EmbedStats) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class CachedEmbedder(Embedder):
    """Wraps an embedder: looks texts up first, embeds only the missing ones, stores them in chunks.

    Each chunk is committed on its own, so an interrupted run resumes where it stopped. The missing
    texts go out shortest first, so a chunk holds texts of about one length (a batching embedder
    then pads, or splits, little). ``progress``: a bar on a terminal; elsewhere, or without it, a
    long job logs a line a minute.
    """

    def __init__(self, embedder: Embedder, path: str | Path, chunk_size: int = 256, progress: bool = True):
        self.inner = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.store = DurableStore(path, table="embeddings")
        self.chunk_size = int(chunk_size)
        self.progress = progress
        self.last = EmbedStats()
        self.total = EmbedStats()  # summed over every call, for a run's one-line summary

    def _decode(self, blob: bytes) -> np.ndarray:
        vector = np.frombuffer(blob, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise ValueError(f"cached vector of {self.name} has {vector.size} values, expected {self.dim}")
        return vector

    def _embed(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        keys = [text_key(t) for t in texts]
        found = {k: self._decode(v) for k, v in self.store.get_many(self.name, keys).items()}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        n_cached = sum(k in found for k in keys)
        text_of = dict(zip(keys, texts, strict=True))
        missing.sort(key=lambda k: len(text_of[k]))  # stable: equal lengths keep their order
        with tqdm(
            total=len(missing),
            desc=f"embed {self.name}",
            unit="text",
            disable=None if self.progress and missing else True,  # None: no bar unless a terminal
        ) as bar:
            bar.set_postfix(cached=len(set(keys)) - len(missing))
            logged = started
            for start in range(0, len(missing), self.chunk_size):
                chunk = missing[start : start + self.chunk_size]
                vectors = self.inner.embed([text_of[k] for k in chunk])
                self.store.put_many(
                    self.name, ((k, v.tobytes()) for k, v in zip(chunk, vectors, strict=True))
                )
                found.update(zip(chunk, vectors, strict=True))
                bar.update(len(chunk))
                if bar.disable and time.perf_counter() - logged >= _LOG_EVERY_S:
                    logged = time.perf_counter()
                    _log_progress(self.name, start + len(chunk), len(missing), logged - started)
        self.last = EmbedStats(len(texts), n_cached, len(missing), time.perf_counter() - started)
        self.total.add(self.last)
        if missing:
            log.log(
                logging.INFO if len(missing) >= 10 else logging.DEBUG,  # a service embeds one text a request
                "embedded %d new texts with %s in %.1fs (%d of %d found in the cache)",
                len(missing),
                self.name,
                self.last.seconds,
                self.last.cached,
                len(texts),
            )
        return np.stack([found[k] for k in keys])


def _log_progress(name: str, done: int, total: int, seconds: float) -> None:
    rate = done / seconds
    log.info(
        "embedding with %s: %d of %d new texts stored (%.1f texts/s, about %.0f min left)",
        name,
        done,
        total,
        rate,
        (total - done) / rate / 60,
    )


class MemoryCachedEmbedder(Embedder):
    """Wraps an embedder for a service: the ``size`` texts embedded last are kept in memory, the
    rest forgotten. What strangers type never reaches the durable training cache, and cannot grow
    memory without bound. Memory: ``size`` x dim floats."""

    def __init__(self, embedder: Embedder, size: int):
        if size < 1:
            raise ValueError(f"the text cache needs room for at least 1 text, got {size}")
        self.inner, self.name, self.dim, self.size = embedder, embedder.name, embedder.dim, size
        self.vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.vectors)

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            found = {t: self.vectors[t] for t in texts if t in self.vectors}
            for text in found:
                self.vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = self.inner.embed(missing)
            with self.lock:
                for text, vector in zip(missing, fresh, strict=True):
                    found[text] = self.vectors[text] = vector
                while len(self.vectors) > self.size:
                    self.vectors.popitem(last=False)
        return np.stack([found[t] for t in texts])
