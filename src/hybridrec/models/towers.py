"""The towers: MLPs from a user's or an item's inputs to the shared similarity space."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class Tower(nn.Module):
    """``depth`` hidden layers of width ``hidden`` (halved per layer when ``taper``), then a linear
    projection to ``out_dim``. ``depth=0`` is a single linear map (the "no MLP" ablation).

    The input comes in column blocks (``forward(*parts)``, ``in_dim`` columns together): the first
    layer reads each block with its own slice of the weights, so no gradient is computed for blocks
    that need none (the frozen LLM embeddings, most of the columns). Dropout in training takes its
    masks from ``drop(layer, shape) -> bool mask`` when given (keyed noise: ``hybridrec.models.noise``)."""

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

    def forward(self, *parts: torch.Tensor, drop: Callable | None = None) -> torch.Tensor:
        first = self.net[0]
        out, start = None, 0
        for part in parts:
            end = start + part.shape[1]
            term = F.linear(part, first.weight[:, start:end])
            out, start = (term if out is None else out + term), end
        out = out + first.bias
        for position, layer in enumerate(self.net[1:], start=1):
            if isinstance(layer, nn.Dropout) and drop is not None and self.training and layer.p > 0:
                out = out.masked_fill(drop(position, out.shape), 0.0) * (1.0 / (1.0 - layer.p))
            else:
                out = layer(out)
        return out
