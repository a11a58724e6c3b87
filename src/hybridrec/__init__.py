"""hybridrec: hybrid movie recommendations from ratings and LLM text embeddings."""

__version__ = "0.1.0"
