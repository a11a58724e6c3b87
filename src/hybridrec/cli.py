"""What the entry points do once Hydra has composed their config; each returns the CLI's result."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from hybridrec.errors import HybridRecError

log = logging.getLogger(__name__)

T = TypeVar("T")


def exits_cleanly(func: Callable[..., T]) -> Callable[..., T]:
    """Turn an expected failure into one readable line on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HybridRecError as err:
            log.debug("failed", exc_info=True)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


@exits_cleanly
def run_train(cfg: DictConfig) -> float:
    """Cross-validate the configured model, then (``final_fit``) train it on all ratings and save a bundle."""
    from hybridrec.data.movielens import load_dataset
    from hybridrec.data.profiles import ProfileConfig
    from hybridrec.data.summary import data_summary
    from hybridrec.embedders.factory import build_embedder
    from hybridrec.evaluation.cross_validation import run_cross_validation

    embedder = (
        build_embedder(cfg.embedder, cfg.paths.embedding_cache) if cfg.model.get("content", False) else None
    )
    print(data_summary(load_dataset(cfg.data), ProfileConfig(**cfg.data.profile)), flush=True)
    result = run_cross_validation(cfg, embedder)
    print(result.markdown)
    if embedder is not None and hasattr(embedder, "total"):
        stats = embedder.total
        print(
            f"embeddings ({embedder.name}): {stats.embedded} texts embedded, {stats.cached} read from the cache "
            f"({stats.seconds:.1f}s)"
        )
    if cfg.final_fit:
        from hybridrec.inference.bundle import train_and_save_bundle

        bundle_dir = train_and_save_bundle(cfg, embedder, result.summary)
        print(f"model bundle: {bundle_dir}")
    return result.monitor_mean
