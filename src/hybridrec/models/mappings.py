"""How a cosine similarity in [-1, 1] becomes a rating on the 1..5 scale.

``offset`` carries the user and item biases (zero when the model has none); each mapping decides
where it enters. The fixed mappings are the original project's; the learnable ones fit the scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hybridrec.constants import MAX_RATING, MIN_RATING

SPAN = MAX_RATING - MIN_RATING


class RatingMapping(nn.Module):
    def forward(self, sim: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def init_from_mean(self, mean: float) -> None:
        """Start near the training mean rating (learnable mappings)."""


class SquareMapping(RatingMapping):
    """The seed's ``1 + 4·sim²`` (symmetric: opposite vectors rate as high as aligned ones)."""

    def forward(self, sim, offset):
        return MIN_RATING + SPAN * sim.square() + offset


class LinearMapping(RatingMapping):
    """``3 + 2·sim``: -1 → 1 star, 0 → 3 stars, 1 → 5 stars."""

    def forward(self, sim, offset):
        return (MIN_RATING + MAX_RATING) / 2 + SPAN / 2 * sim + offset


class SigmoidMapping(RatingMapping):
    """``1 + 4·sigmoid(a·sim + b + offset)``: a learnable slope and centre, always inside 1..5."""

    def __init__(self, scale_init: float = 4.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.shift = nn.Parameter(torch.tensor(0.0))

    def init_from_mean(self, mean: float) -> None:
        p = min(max((mean - MIN_RATING) / SPAN, 1e-3), 1 - 1e-3)
        with torch.no_grad():
            self.shift.fill_(math.log(p / (1 - p)))

    def forward(self, sim, offset):
        return MIN_RATING + SPAN * torch.sigmoid(self.scale * sim + self.shift + offset)


class AffineMapping(RatingMapping):
    """``μ + a·sim + offset``: the classic biased-factor form, with a learnable scale on the cosine."""

    def __init__(self, scale_init: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.mean = nn.Parameter(torch.tensor((MIN_RATING + MAX_RATING) / 2))

    def init_from_mean(self, mean: float) -> None:
        with torch.no_grad():
            self.mean.fill_(mean)

    def forward(self, sim, offset):
        return self.mean + self.scale * sim + offset
