"""How a cosine similarity in [-1, 1] becomes a rating on the data set's scale (``RatingScale``:
1..5 whole stars, or 0.5..5 in half stars); the formulas below are written for 1..5.

``offset`` carries the user and item biases (zero when the model has none); each mapping decides
where it enters. The fixed mappings are the original project's; the learnable ones fit the scale.
Each mapping also owns its training loss: the squared error of its rating, unless it models more.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hybridrec.data.movielens import RatingScale


class RatingMapping(nn.Module):
    """A mapping onto ``rating_scale`` (the data set's, given when each member is built)."""

    def __init__(self, rating_scale: RatingScale):
        super().__init__()
        self.rating_scale = rating_scale
        self.low, self.high = rating_scale.min, rating_scale.max
        self.span = rating_scale.max - rating_scale.min

    def forward(self, sim: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, sim: torch.Tensor, offset: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(sim, offset), ratings)

    def init_from_ratings(self, ratings: np.ndarray) -> None:
        """Start near the training ratings (learnable mappings)."""


class SquareMapping(RatingMapping):
    """The seed's ``1 + 4·sim²`` (symmetric: opposite vectors rate as high as aligned ones)."""

    def forward(self, sim, offset):
        return self.low + self.span * sim.square() + offset


class LinearMapping(RatingMapping):
    """``3 + 2·sim``: -1 → 1 star, 0 → 3 stars, 1 → 5 stars."""

    def forward(self, sim, offset):
        return (self.low + self.high) / 2 + self.span / 2 * sim + offset


class SigmoidMapping(RatingMapping):
    """``1 + 4·sigmoid(a·sim + b + offset)``: a learnable slope and centre, always inside 1..5."""

    def __init__(self, rating_scale: RatingScale, scale_init: float = 4.0):
        super().__init__(rating_scale)
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.shift = nn.Parameter(torch.tensor(0.0))

    def init_from_ratings(self, ratings: np.ndarray) -> None:
        p = min(max((float(np.mean(ratings)) - self.low) / self.span, 1e-3), 1 - 1e-3)
        with torch.no_grad():
            self.shift.fill_(math.log(p / (1 - p)))

    def forward(self, sim, offset):
        return self.low + self.span * torch.sigmoid(self.scale * sim + self.shift + offset)


class AffineMapping(RatingMapping):
    """``μ + a·sim + offset``: the classic biased-factor form, with a learnable scale on the cosine."""

    def __init__(self, rating_scale: RatingScale, scale_init: float = 1.0):
        super().__init__(rating_scale)
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.mean = nn.Parameter(torch.tensor((self.low + self.high) / 2))

    def init_from_ratings(self, ratings: np.ndarray) -> None:
        with torch.no_grad():
            self.mean.fill_(float(np.mean(ratings)))

    def forward(self, sim, offset):
        return self.mean + self.scale * sim + offset


class OrdinalMapping(RatingMapping):
    """Stars as ordered classes (a cumulative-logit model, like myFM's ordered probit).

    ``z = a·sim + offset``; P(rating <= k) = sigmoid(θ_k - z) for k = 1..4, with learnable ordered
    thresholds θ, and the predicted rating is the expectation ``1 + Σ_k sigmoid(z - θ_k)`` (on a
    half-star scale: 0.5 + 0.5·Σ over the 9 thresholds between its 10 levels). Trained on
    the likelihood of the observed star (``nll_weight``) beside the squared error of the expectation:
    the likelihood learns how ratings spread around a score, the squared error keeps the expectation
    on what RMSE judges.
    """

    def __init__(self, rating_scale: RatingScale, scale_init: float = 4.0, nll_weight: float = 1.0):
        super().__init__(rating_scale)
        self.step = rating_scale.step
        self.levels = rating_scale.levels
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.first = nn.Parameter(torch.tensor(-2.0))  # θ_1
        self.gaps = nn.Parameter(torch.zeros(self.levels - 2))  # θ_{k+1} - θ_k = softplus(gap)
        self.nll_weight = nll_weight

    def thresholds(self) -> torch.Tensor:
        return torch.cat([self.first.view(1), self.first + torch.cumsum(F.softplus(self.gaps), 0)])

    def init_from_ratings(self, ratings: np.ndarray) -> None:
        """Thresholds at the logits of the training ratings' cumulative shares: z = 0 is the average."""
        stars = np.clip(np.rint((ratings - self.low) / self.step), 0, self.levels - 1).astype(int)
        shares = np.cumsum(np.bincount(stars, minlength=self.levels))[:-1] / max(len(stars), 1)
        logits = np.log(np.clip(shares, 1e-3, 1 - 1e-3) / (1 - np.clip(shares, 1e-3, 1 - 1e-3)))
        logits = np.maximum.accumulate(logits + np.arange(len(logits)) * 1e-3)  # strictly ordered
        gaps = np.diff(logits)
        with torch.no_grad():
            self.first.fill_(float(logits[0]))
            self.gaps.copy_(torch.from_numpy(np.log(np.expm1(np.maximum(gaps, 1e-3)))).float())

    def _above(self, sim: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """P(rating > k) for each level k but the top (1..4 on whole stars), one column each."""
        z = self.scale * sim + offset
        return torch.sigmoid(z.unsqueeze(-1) - self.thresholds())

    def forward(self, sim, offset):
        return self.low + self.step * self._above(sim, offset).sum(-1)

    def loss(self, sim, offset, ratings):
        above = self._above(sim, offset)
        expected = self.low + self.step * above.sum(-1)
        ones, zeros = torch.ones_like(above[:, :1]), torch.zeros_like(above[:, :1])
        survival = torch.cat([ones, above, zeros], dim=1)  # P(rating > level k - 1), each level, then 0
        probs = (survival[:, :-1] - survival[:, 1:]).clamp_min(1e-6)  # P(rating = k)
        stars = ((ratings - self.low) / self.step).round().long().clamp(0, self.levels - 1)
        nll = -torch.log(probs.gather(1, stars.unsqueeze(1))).mean()
        return F.mse_loss(expected, ratings) + self.nll_weight * nll
