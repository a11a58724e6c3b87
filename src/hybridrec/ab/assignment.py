"""Sticky assignment of users (or sessions) to an experiment's variants by a stable hash.

``sha256("<experiment>:<unit>")`` read as a number in [0, 1) picks the variant whose share bucket
holds it: the same unit always gets the same variant in the same experiment, in every process and
after every restart (Python's ``hash()`` is salted per process, so it is never used), and a new
experiment name reshuffles everyone independently of the last.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hybridrec.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHARE_TOLERANCE = 1e-6


def unit_key(user_id: int | None, session_id: str | None) -> str | None:
    """What is assigned: a known user, else a client's session; None when neither is given."""
    if user_id is not None:
        return f"user:{int(user_id)}"
    if session_id is not None:
        return f"session:{session_id}"
    return None


def bucket(experiment: str, unit: str) -> float:
    """A stable number in [0, 1) for ``unit`` in ``experiment``: the first 8 bytes of a SHA-256."""
    digest = hashlib.sha256(f"{experiment}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Assignment:
    """An experiment's name and its variants' traffic shares, in order (the first is the control)."""

    experiment: str
    variants: tuple[tuple[str, float], ...]

    def __post_init__(self):
        if not NAME.fullmatch(self.experiment):
            raise ConfigError(f"experiment name {self.experiment!r} must be 1-64 of A-Z a-z 0-9 _ -")
        names = [name for name, _ in self.variants]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ConfigError(f"an experiment needs two or more variants with distinct names, got {names}")
        for name, share in self.variants:
            if not NAME.fullmatch(name):
                raise ConfigError(f"variant name {name!r} must be 1-64 of A-Z a-z 0-9 _ -")
            if not 0 < share <= 1:
                raise ConfigError(f"variant {name}'s share must lie in (0, 1], got {share}")
        total = sum(share for _, share in self.variants)
        if abs(total - 1) > SHARE_TOLERANCE:
            raise ConfigError(f"the variants' shares must sum to 1, got {total:g}")

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.variants]

    def variant_of(self, unit: str) -> str:
        """The variant whose bucket holds ``unit``'s hash."""
        point, edge = bucket(self.experiment, unit), 0.0
        for name, share in self.variants:
            edge += share
            if point < edge:
                return name
        return self.variants[-1][0]  # a share sum a rounding below 1
