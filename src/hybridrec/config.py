"""Building objects from Hydra configs without losing the user-facing errors inside them."""

from __future__ import annotations

from typing import Any

from hybridrec.errors import HybridRecError


def instantiate(cfg: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, but an expected error raised while building comes out as itself."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, HybridRecError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
