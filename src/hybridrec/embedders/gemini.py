"""Gemini embeddings (``gemini-embedding-001`` by default) through the real google-genai client."""

from __future__ import annotations

import logging

import numpy as np

from hybridrec.embedders.base import Embedder, l2_normalize
from hybridrec.gemini import (
    GeminiUnavailableError,
    RateLimiter,
    describe,
    make_client,
    require_api_key,
    retrying,
)

log = logging.getLogger(__name__)

MAX_BATCH = 100  # the API's limit on texts per batchEmbedContents request


class GeminiEmbedder(Embedder):
    """Batched, rate-limited, retried; vectors are L2-normalised (needed below 3,072 dimensions).

    The key is checked at construction, so a missing key fails at once, before any data work. Each
    batch has ``budget_s`` for all its attempts and waits together; when spent (or on an error that
    retrying cannot fix) it raises ``GeminiUnavailableError``: one line in the CLI, 503 with
    ``Retry-After`` in the API. A service gives it a short budget (a person is waiting), training a
    long one (thousands of texts, once).
    """

    def __init__(
        self,
        model: str = "gemini-embedding-001",
        output_dimensionality: int = 768,
        task_type: str = "SEMANTIC_SIMILARITY",
        batch_size: int = 100,
        requests_per_minute: float = 60,
        max_attempts: int = 6,
        initial_wait_s: float = 1.0,
        max_wait_s: float = 30.0,
        timeout_s: float = 60.0,
        budget_s: float = 120.0,
        base_url: str | None = None,
    ):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, got {batch_size}")
        self.model = model
        self.dim = int(output_dimensionality)
        self.task_type = task_type
        self.batch_size = int(batch_size)
        self.name = f"gemini-{model}-d{self.dim}-{task_type.lower()}"
        if budget_s <= 0:
            raise ValueError(f"budget_s must be positive, got {budget_s}")
        self.max_attempts, self.initial_wait_s, self.max_wait_s = max_attempts, initial_wait_s, max_wait_s
        self.budget_s = budget_s
        self._limiter = RateLimiter(requests_per_minute)
        self._client = make_client(
            require_api_key("embedder=gemini"), base_url=base_url, timeout_s=min(timeout_s, budget_s)
        )

    def _request(self, texts: list[str]) -> np.ndarray:
        from google.genai import types

        self._limiter.wait()
        response = self._client.models.embed_content(
            model=self.model,
            contents=texts,
            config=types.EmbedContentConfig(task_type=self.task_type, output_dimensionality=self.dim),
        )
        vectors = np.array([e.values for e in response.embeddings or []], dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise GeminiUnavailableError(
                f"Gemini returned {vectors.shape[0]} embeddings of size "
                f"{vectors.shape[1] if vectors.ndim == 2 else '?'} for {len(texts)} texts of size {self.dim}"
            )
        return vectors

    def _embed(self, texts: list[str]) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            attempts = retrying(
                self.max_attempts, self.initial_wait_s, self.max_wait_s, within_s=self.budget_s
            )
            try:
                parts.append(attempts(self._request, batch))
            except GeminiUnavailableError:
                raise
            except Exception as err:
                raise GeminiUnavailableError(
                    f"Gemini embeddings failed (within a budget of {self.budget_s:g}s): {describe(err)}"
                ) from err
        return l2_normalize(np.concatenate(parts))
