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
def run_train(cfg: DictConfig) -> float | None:
    from hybridrec.data.movielens import load_dataset
    from hybridrec.data.profiles import ProfileConfig
    from hybridrec.data.splits import canonical_fold
    from hybridrec.data.summary import data_summary
    from hybridrec.embedders.factory import build_embedder
    from hybridrec.embedders.precompute import embed_profiles

    embedder = build_embedder(cfg.embedder, cfg.paths.embedding_cache)
    data = load_dataset(cfg.data)
    profile_config = ProfileConfig(**cfg.data.profile)
    print(data_summary(data, profile_config))
    embeddings = embed_profiles(data, canonical_fold(data, 1).train, embedder, profile_config)
    stats = embedder.last
    print(
        f"Embeddings of u1 with {embedder.name}: {embeddings.item.shape[0]} items, {embeddings.user.shape[0]} users "
        f"x {embeddings.dim} dims; {stats.embedded} texts embedded, {stats.cached} from the cache, {stats.seconds:.1f}s"
    )
    return None
