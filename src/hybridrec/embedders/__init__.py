"""Text embedders (offline MiniLM, Gemini, hashing), their durable cache, and profile precomputation."""

from hybridrec.embedders.base import Embedder

__all__ = ["Embedder"]
