"""A training run's config checked before any data is read: one clear line for a mistyped setting."""

from __future__ import annotations

from dataclasses import fields

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from hybridrec.config import check_targets
from hybridrec.data.profiles import ProfileConfig
from hybridrec.errors import ConfigError
from hybridrec.models.blend import CHANNELS, TOWERS, BlendWeights

CHECKED_GROUPS = ("data", "embedder", "model", "evidence", "baselines", "trainer", "callbacks", "logger")


def check_run_config(cfg: DictConfig) -> None:
    """Every ``_target_``'s settings, the text profiles' settings, and the blend's parts."""
    for group in CHECKED_GROUPS:
        check_targets(cfg.get(group), group)
    known = {f.name for f in fields(ProfileConfig)}
    unknown = sorted(set(cfg.data.get("profile") or {}) - known)
    if unknown:
        raise ConfigError(
            f"data.profile.{unknown[0]} is not a profile setting; the settings: {', '.join(sorted(known))}"
        )
    if cfg.get("blend") is None:
        return
    try:
        blend = BlendWeights.from_config(OmegaConf.to_container(cfg.blend.weights, resolve=True))
    except ValueError as err:
        raise ConfigError(f"blend.weights: {err}") from None
    for channel, (audience, kind) in CHANNELS.items():
        for name in blend.channel(channel):
            if name == TOWERS:
                continue
            term = cfg.evidence.get(name) if cfg.get("evidence") else None
            if term is None:
                raise ConfigError(
                    f"blend.weights.{channel}.{name} is not an evidence term; the terms: {', '.join(cfg.evidence)}"
                )
            target = get_object(term["_target_"])
            if (getattr(target, "audience", None), getattr(target, "kind", None)) != (audience, kind):
                raise ConfigError(
                    f"blend.weights.{channel}.{name}: {name} is a term for {target.audience} users' {target.kind}"
                )
