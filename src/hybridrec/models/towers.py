"""The towers: MLPs from a user's or an item's inputs to the shared similarity space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class Tower(nn.Module):
    """``depth`` hidden layers of width ``hidden`` (halved per layer when ``taper``), then a linear
    projection to ``out_dim``. ``depth=0`` is a single linear map (the "no MLP" ablation).

    The input comes in column blocks (``forward(*parts)``, ``in_dim`` columns together): the first
    layer reads each block with its own slice of the weights, so no gradient is computed for blocks
    that need none (the frozen LLM embeddings, most of the columns)."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        depth: int,
        out_dim: int,
        dropout: float = 0.0,
        activation: str = "relu",
        taper: bool = False,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        layers: list[nn.Module] = []
        width = in_dim
        for k in range(depth):
            next_width = max(out_dim, hidden >> k) if taper else hidden
            layers += [nn.Linear(width, next_width), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = next_width
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        first, rest = self.net[0], self.net[1:]
        out, start = None, 0
        for part in parts:
            end = start + part.shape[1]
            term = F.linear(part, first.weight[:, start:end])
            out, start = (term if out is None else out + term), end
        return rest(out + first.bias)
