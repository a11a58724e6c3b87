"""How the towers and the evidence terms are joined: one weight per part in each of four channels.

Ratings are the weighted sum of the parts' ratings; lists the weighted sum of the parts' scores,
each standardised per user. Known users' channels read the terms fitted on their history; text
users' (new users, and users of the cold-start protocol) the terms that read their nearest known
users. A term weighed 0 in every channel is not built. ``fixed``: the weights of the config;
``learned`` (``hybridrec.training.stacking``): chosen per fold on data held out of its training part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hybridrec.models.evidence.base import KNOWN, LISTS, RATINGS, TEXT

TOWERS = "towers"
CHANNELS = {  # channel -> (audience, kind) of the terms it may weigh
    "known_ratings": (KNOWN, RATINGS),
    "text_ratings": (TEXT, RATINGS),
    "known_lists": (KNOWN, LISTS),
    "text_lists": (TEXT, LISTS),
}


@dataclass(frozen=True)
class BlendWeights:
    """part name -> weight, per channel; ``towers`` is the towers' own part."""

    known_ratings: dict[str, float]
    text_ratings: dict[str, float]
    known_lists: dict[str, float]
    text_lists: dict[str, float]

    @classmethod
    def from_config(cls, weights: Mapping) -> BlendWeights:
        if set(weights) != set(CHANNELS):
            raise ValueError(f"blend weights need exactly the channels {list(CHANNELS)}, got {list(weights)}")
        parsed = {}
        for channel, parts in weights.items():
            parsed[channel] = {str(name): float(weight) for name, weight in (parts or {}).items()}
            if any(weight < 0 for weight in parsed[channel].values()):
                raise ValueError(f"blend weights must be >= 0, got {parsed[channel]} in {channel}")
        return cls(**parsed)

    def channel(self, name: str) -> dict[str, float]:
        return getattr(self, name)

    def terms(self, channel: str) -> dict[str, float]:
        """The channel's terms with a non-zero weight (not the towers)."""
        return {name: w for name, w in self.channel(channel).items() if name != TOWERS and w}

    def in_use(self) -> set[str]:
        """Every term some channel weighs."""
        return {name for channel in CHANNELS for name in self.terms(channel)}

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {channel: dict(self.channel(channel)) for channel in CHANNELS}

    def check(self, terms: Mapping) -> None:
        """Every weighed part is the towers or a term of the channel's audience and kind."""
        for channel, (audience, kind) in CHANNELS.items():
            for name in self.terms(channel):
                term = terms.get(name)
                if term is None:
                    raise ValueError(f"blend.{channel} weighs {name!r}, which is not in the evidence config")
                if (term.audience, term.kind) != (audience, kind):
                    raise ValueError(
                        f"blend.{channel} weighs {name!r}, a term for {term.audience} users' {term.kind}"
                    )
