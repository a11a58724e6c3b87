"""Config as the single source of truth: the YAML and the code agree on every default."""

from __future__ import annotations

import inspect

import pytest
from conftest import REPO_ROOT
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf


def _targets(node, path: str):
    """Every (key path, node) with a ``_target_`` under ``node``."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            if not OmegaConf.is_interpolation(node, key) and not OmegaConf.is_missing(node, key):
                yield from _targets(node[key], f"{path}.{key}")


CONFIG_FILES = sorted(
    p for p in (REPO_ROOT / "configs").rglob("*.yaml") if p.parts[-2] not in ("experiment", "hydra", "local")
)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT / "configs")))
def test_code_defaults_agree_with_the_yaml(path):
    """A parameter the YAML sets for one of the project's classes either has no default in the code
    or the same one (other libraries' defaults are theirs)."""
    config = OmegaConf.load(path)
    for where, node in _targets(config, path.stem):
        if not node["_target_"].startswith("hybridrec."):
            continue
        target = get_object(node["_target_"])
        signature = inspect.signature(target)
        for name, parameter in signature.parameters.items():
            if name not in node or parameter.default is inspect.Parameter.empty:
                continue
            if OmegaConf.is_interpolation(node, name) or isinstance(node[name], DictConfig):
                continue
            assert node[name] == parameter.default, (
                f"{where}.{name}: {node[name]!r} in the YAML, {parameter.default!r} in {node['_target_']}"
            )
