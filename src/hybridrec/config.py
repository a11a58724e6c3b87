"""Building objects from Hydra configs without losing the user-facing errors inside them."""

from __future__ import annotations

from typing import Any

from hybridrec.errors import ConfigError, HybridRecError


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


_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def check_targets(cfg: Any, root: str = "") -> None:
    """Every key set beside a ``_target_`` must be a parameter of what it names, so that a mistyped
    setting (``+model.net.hiddn=3``) fails at once, naming the valid ones, not minutes later in a
    constructor."""
    import inspect

    from hydra.utils import get_object
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(cfg, DictConfig):
        return
    if "_target_" in cfg:
        try:
            target = get_object(cfg["_target_"])
        except Exception as err:
            raise ConfigError(
                f"{root or 'config'}._target_ {cfg['_target_']!r} cannot be found: {err}"
            ) from None
        signature = inspect.signature(target)
        parameters = signature.parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            unknown = [key for key in cfg if key not in parameters and key not in _HYDRA_KEYS]
            if unknown:
                valid = ", ".join(name for name in parameters if name not in ("self", "context"))
                raise ConfigError(
                    f"{root}.{unknown[0]} is not a setting of {cfg['_target_']}; its settings: {valid}"
                )
    for key in cfg:
        if not OmegaConf.is_interpolation(cfg, key):
            check_targets(cfg[key], f"{root}.{key}" if root else str(key))
