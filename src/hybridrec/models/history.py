"""Rating histories as sparse matrices: a history bag is (weights of the ratings) @ (an embedding table).

The fitting ratings are held twice in CSR layout, by user and by item; the two are each other's
transpose, so the product by one and its gradient by the other never build a dense users x items
matrix (zeroing and multiplying one cost more than the rest of a training step). Who rated what is
looked up in the sorted (user, item) keys. Memory: a few integers per rating, one per user and item.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


class RatingHistories(nn.Module):
    """The fitting ratings (rows: users or items) in CSR layout, and sparse products over them."""

    def __init__(self, n_users: int, n_items: int):
        super().__init__()
        self.shapes = {"user": (n_users, n_items), "item": (n_items, n_users)}
        self.longest_rows: dict[str, int] = {}
        for side in self.shapes:  # row pointers, column of each entry, entry -> position in the ratings
            for part in ("crow", "col", "order"):
                self.register_buffer(f"{side}_{part}", torch.zeros(0, dtype=torch.long), persistent=False)
        # user x n_items + item of each entry by user: sorted, so a pair is found by binary search
        self.register_buffer("user_key", torch.zeros(0, dtype=torch.long), persistent=False)

    def attach(self, users: torch.Tensor, items: torch.Tensor) -> None:
        """Index the fitting ratings (aligned ``users``, ``items``)."""
        for side, rows, cols in (("user", users, items), ("item", items, users)):
            n_rows, n_cols = self.shapes[side]
            # numpy's argsort: two orders of magnitude faster than torch's here (each key is unique, so
            # the order is the same)
            keys = rows * n_cols + cols
            order = torch.from_numpy(np.argsort(keys.cpu().numpy())).to(rows.device)
            if side == "user":
                self.user_key = keys[order]
            crow = torch.zeros(n_rows + 1, dtype=torch.long, device=rows.device)
            crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)
            setattr(self, f"{side}_crow", crow)
            setattr(self, f"{side}_col", cols[order])
            setattr(self, f"{side}_order", order)
            self.longest_rows[side] = int((crow[1:] - crow[:-1]).max()) if n_rows else 0

    def positions(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Where each (user, item) pair (aligned, any shape) is in the fitting ratings; -1 where it is not."""
        keys = self.user_key
        if not len(keys):
            return torch.full_like(users, -1)
        query = users * self.shapes["user"][1] + items
        at = torch.searchsorted(keys, query).clamp_max_(len(keys) - 1)
        return torch.where(keys[at] == query, self.user_order[at], -1)

    def rated(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(len(users), len(items)) bool: which of ``items`` (ascending, distinct) each of ``users``
        has a fitting rating of, written from the users' rows (cheaper than a search per cell):
        each of their films found among ``items`` by a binary search, unless ``items`` is the catalog."""
        owner, entry = row_entries(self.user_crow, users)
        films = self.user_col[entry]
        out = torch.zeros(len(users), len(items), dtype=torch.bool, device=users.device)
        if len(items) == self.shapes["user"][1]:
            out[owner, films] = True
        elif len(items):
            at = torch.searchsorted(items, films).clamp_max_(len(items) - 1)
            found = items[at] == films
            out[owner[found], at[found]] = True
        return out

    def matrix(self, side: str, weights: torch.Tensor) -> torch.Tensor:
        """The ratings' ``weights`` (in rating order) as a sparse matrix with ``side``'s entities as rows."""
        return torch.sparse_csr_tensor(
            getattr(self, f"{side}_crow"),
            getattr(self, f"{side}_col"),
            weights.index_select(0, getattr(self, f"{side}_order")),
            self.shapes[side],
            check_invariants=False,
        )

    def longest(self, side: str) -> int:
        """The most ratings one of ``side``'s entities has (counted once, at ``attach``)."""
        return self.longest_rows.get(side, 0)

    def sample(self, side: str, rows: torch.Tensor, most: int, uniform: Callable) -> SampledHistories:
        """Up to ``most`` of each of ``rows``'s ratings: all of a row that has no more, else ``most``
        drawn with replacement (``uniform(keys) -> [0, 1)``, keyed by (row, draw)), each weighing
        length / ``most`` so a bag's expectation is the whole history's. Reads only what it keeps."""
        crow = getattr(self, f"{side}_crow")
        starts = crow[rows]
        lengths = crow[rows + 1] - starts
        taken = lengths.clamp_max(most)
        owner = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), taken)
        draw = torch.arange(len(owner), device=rows.device) - (torch.cumsum(taken, 0) - taken)[owner]
        length = lengths[owner]
        drawn = (uniform(rows[owner] * most + draw) * length).long().clamp_max_(length - 1)
        entry = starts[owner] + torch.where(length > most, drawn, draw)
        sampled_crow = torch.zeros(len(rows) + 1, dtype=torch.long, device=rows.device)
        sampled_crow[1:] = torch.cumsum(taken, 0)
        return SampledHistories(
            crow=sampled_crow,
            cols=getattr(self, f"{side}_col")[entry],
            positions=getattr(self, f"{side}_order")[entry],
            scale=(length / taken[owner]).float(),
            shape=(len(rows), self.shapes[side][1]),
        )

    def bag(self, side: str, weights: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Row r: the sum over r's ratings of weight x ``table``'s row of the rated (rating) entity."""
        return _SparseProduct.apply(table, weights, self, side)


@dataclass
class SampledHistories:
    """Some rows' sampled ratings in CSR layout (``crow``, ``cols``), each rating's position among the
    fitting ratings and its weight's scale (length / ratings kept)."""

    crow: torch.Tensor
    cols: torch.Tensor
    positions: torch.Tensor
    scale: torch.Tensor
    shape: tuple[int, int]

    def bag(self, weights: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Row r: the sum over its kept ratings of weight (one per kept rating) x ``table``'s row of the
        rated (rating) entity."""
        matrix = torch.sparse_csr_tensor(self.crow, self.cols, weights, self.shape, check_invariants=False)
        return _SampledProduct.apply(table, matrix)


class _SampledProduct(torch.autograd.Function):
    """``matrix @ table`` whose gradient for ``table`` is the transposed matrix times ``grad`` (the
    kept ratings alone: no other layout to build). In float32, as ``_SparseProduct``."""

    @staticmethod
    def forward(ctx, table, matrix):
        ctx.matrix = matrix
        return _float32_product(matrix, table)

    @staticmethod
    def backward(ctx, grad):
        return _float32_product(ctx.matrix.t(), grad), None


def row_entries(crow: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(owner, entry) of a CSR layout's given ``rows``: every entry of theirs, and the position in
    ``rows`` of the row it belongs to."""
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    owner = torch.repeat_interleave(torch.arange(len(rows), device=crow.device), lengths)
    shift = torch.repeat_interleave(starts - (torch.cumsum(lengths, 0) - lengths), lengths)
    return owner, shift + torch.arange(len(owner), device=crow.device)


class _SparseProduct(torch.autograd.Function):
    """``matrix @ table``, whose gradient for ``table`` is the transposed matrix (the other side's
    layout, built only when a gradient is asked for) times ``grad``.
    Always in float32: sparse products have no bf16 kernels, so mixed precision is switched off here."""

    @staticmethod
    def forward(ctx, table, weights, histories: RatingHistories, side: str):
        ctx.save_for_backward(weights)
        ctx.histories, ctx.other = histories, "item" if side == "user" else "user"
        return _float32_product(histories.matrix(side, weights), table)

    @staticmethod
    def backward(ctx, grad):
        (weights,) = ctx.saved_tensors
        return _float32_product(ctx.histories.matrix(ctx.other, weights), grad), None, None, None


def _float32_product(sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    with torch.autocast(dense.device.type, enabled=False):
        return sparse @ dense.float()
