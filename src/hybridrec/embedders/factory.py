"""The embedder a config asks for, behind the durable cache."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from hybridrec.config import instantiate
from hybridrec.embedders.base import Embedder
from hybridrec.embedders.cache import CachedEmbedder


def build_embedder(embedder_cfg, cache_path: str | Path | None, progress: bool = True) -> Embedder:
    """Instantiate ``embedder_cfg``; wrap it in the on-disk cache unless ``cache_path`` is None."""
    embedder = instantiate(embedder_cfg)
    if cache_path is None:
        return embedder
    return CachedEmbedder(embedder, cache_path, progress=progress)


def build_run_embedder(cfg) -> Embedder | None:
    """A training run's embedder behind its cache; None when the model reads no content (IDs only).

    Its progress bar follows the run's (``trainer.enable_progress_bar``): one switch for every bar.
    """
    if not OmegaConf.select(cfg, "model.net.content", default=False):
        return None
    progress = bool(OmegaConf.select(cfg, "trainer.enable_progress_bar", default=True))
    return build_embedder(cfg.embedder, cfg.paths.embedding_cache, progress=progress)
