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
    from hybridrec.data.summary import data_summary

    data = load_dataset(cfg.data)
    print(data_summary(data, ProfileConfig(**cfg.data.profile)))
    return None
