"""HybridRecModel: a user tower and an item tower over frozen LLM embeddings, joined by cosine similarity.

Each tower reads its side's frozen content vector and, when enabled, the collaborative half:
a trainable ID embedding and an implicit-feedback vector (SVD++-style: the mean of embeddings of
the items a user rated, or of the users who rated an item — training ratings only). IDs are dropped
at random during training so the same towers also work from text alone (cold start).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hybridrec.constants import MAX_RATING, MIN_RATING
from hybridrec.data.context import FoldContext
from hybridrec.models.mappings import RatingMapping
from hybridrec.models.towers import Tower


class HybridRecModel(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        content_dim: int,
        mapping: RatingMapping,
        hidden: int = 256,
        depth: int = 2,
        out_dim: int = 64,
        dropout: float = 0.1,
        activation: str = "relu",
        taper: bool = False,
        content: bool = True,
        id_emb_dim: int = 32,
        implicit: bool = True,
        biases: bool = True,
        id_dropout: float = 0.0,
        cold_start_rate: float = 0.0,
    ):
        super().__init__()
        if not content and id_emb_dim <= 0:
            raise ValueError("the model needs content embeddings or ID embeddings (id_emb_dim > 0)")
        self.n_users, self.n_items = n_users, n_items
        self.use_content = content
        self.id_dim = max(int(id_emb_dim), 0)
        self.use_implicit = implicit and self.id_dim > 0
        self.use_biases = biases
        self.id_dropout = id_dropout
        self.cold_start_rate = cold_start_rate
        self.mapping = mapping

        in_dim = (content_dim if content else 0) + self.id_dim * (2 if self.use_implicit else 1)
        tower_args = dict(
            hidden=hidden, depth=depth, out_dim=out_dim, dropout=dropout, activation=activation, taper=taper
        )
        self.user_tower = Tower(in_dim, **tower_args)
        self.item_tower = Tower(in_dim, **tower_args)
        # the last row of each table stands for "unknown" (a new user or item, or a dropped ID)
        if self.id_dim:
            self.user_id = nn.Embedding(n_users + 1, self.id_dim)
            self.item_id = nn.Embedding(n_items + 1, self.id_dim)
            for table in (self.user_id, self.item_id):
                nn.init.normal_(table.weight, std=0.05)
        if self.use_implicit:
            self.user_implicit = nn.Embedding(n_items, self.id_dim)  # items a user rated
            self.item_implicit = nn.Embedding(n_users, self.id_dim)  # users who rated an item
            for table in (self.user_implicit, self.item_implicit):
                nn.init.normal_(table.weight, std=0.05)
        if biases:
            self.user_bias = nn.Embedding(n_users + 1, 1)
            self.item_bias = nn.Embedding(n_items + 1, 1)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
        # the fold's context: frozen, rebuilt from data (not trained, so not in the state dict)
        for name, shape in (
            ("user_content", (n_users, content_dim)),
            ("user_demographic", (n_users, content_dim)),
            ("item_content", (n_items, content_dim)),
        ):
            self.register_buffer(name, torch.zeros(shape), persistent=False)
        # implicit feedback as normalised interaction matrices: row u holds 1/sqrt(|N(u)|) on u's items
        self.register_buffer("user_history", torch.zeros(0), persistent=False)
        self.register_buffer("item_history", torch.zeros(0), persistent=False)
        self.register_buffer("user_known", torch.zeros(n_users, dtype=torch.bool), persistent=False)
        self.register_buffer("item_known", torch.zeros(n_items, dtype=torch.bool), persistent=False)

    # --- context ---------------------------------------------------------------------------------

    def attach(self, context: FoldContext) -> None:
        """Load a fold's frozen content vectors and rating histories into the buffers."""
        device = self.user_known.device
        if context.embeddings is not None:
            self.user_content = torch.from_numpy(context.embeddings.user).to(device)
            self.user_demographic = torch.from_numpy(context.embeddings.user_demographic).to(device)
            self.item_content = torch.from_numpy(context.embeddings.item).to(device)
        elif self.use_content:
            raise ValueError("this model reads content embeddings, but the context has none")
        if self.use_implicit:
            self.user_history = history_matrix(
                context.fit.users, context.fit.items, self.n_users, self.n_items
            ).to(device)
            self.item_history = history_matrix(
                context.fit.items, context.fit.users, self.n_items, self.n_users
            ).to(device)
        self.user_known = torch.from_numpy(np.asarray(context.user_known)).to(device)
        self.item_known = torch.from_numpy(np.asarray(context.item_known)).to(device)
        self.mapping.init_from_mean(context.global_mean)

    # --- towers ----------------------------------------------------------------------------------

    def _encode(self, side: str, rows: torch.Tensor | None, content: torch.Tensor, dropped: torch.Tensor):
        """Tower output and bias for entities ``rows`` (None: unknown entities described by ``content``).

        The implicit vectors of all users (items) come from one product of the normalised history
        matrix with the embedding table: cheaper than gathering each row's history.
        """
        parts = [content] if self.use_content else []
        n = len(content) if rows is None else len(rows)
        unknown = self.n_users if side == "user" else self.n_items
        ids = torch.full((n,), unknown, dtype=torch.long, device=dropped.device)
        if rows is not None:
            ids = torch.where(dropped, ids, rows)
        if self.id_dim:
            parts.append((self.user_id if side == "user" else self.item_id)(ids))
        if self.use_implicit:
            if rows is None:
                implicit = content.new_zeros(n, self.id_dim)
            elif side == "user":
                implicit = (self.user_history @ self.user_implicit.weight)[rows]
            else:
                implicit = (self.item_history @ self.item_implicit.weight)[rows]
            parts.append(implicit.masked_fill(dropped.unsqueeze(1), 0.0))
        tower = self.user_tower if side == "user" else self.item_tower
        vectors = tower(torch.cat(parts, dim=1))
        if self.use_biases:
            bias = (self.user_bias if side == "user" else self.item_bias)(ids).squeeze(1)
        else:
            bias = vectors.new_zeros(n)
        return vectors, bias

    def _drop(self, n: int, rate: float, device) -> torch.Tensor:
        if self.training and rate > 0:
            return torch.rand(n, device=device) < rate
        return torch.zeros(n, dtype=torch.bool, device=device)

    def encode_users(self, users: torch.Tensor):
        """User vectors and biases; users without training ratings go down the text-only path."""
        cold = ~self.user_known[users] | self._drop(len(users), self.cold_start_rate, users.device)
        content = torch.where(cold.unsqueeze(1), self.user_demographic[users], self.user_content[users])
        dropped = cold | self._drop(len(users), self.id_dropout, users.device)
        return self._encode("user", users, content, dropped)

    def encode_items(self, items: torch.Tensor):
        dropped = ~self.item_known[items] | self._drop(len(items), self.id_dropout, items.device)
        return self._encode("item", items, self.item_content[items], dropped)

    def encode_user_content(self, content: torch.Tensor):
        """A new user known only by an embedded text."""
        return self._encode(
            "user", None, content, torch.ones(len(content), dtype=torch.bool, device=content.device)
        )

    def encode_item_content(self, content: torch.Tensor):
        """A new item known only by an embedded text."""
        return self._encode(
            "item", None, content, torch.ones(len(content), dtype=torch.bool, device=content.device)
        )

    # --- ratings ---------------------------------------------------------------------------------

    def rate(self, user_vec, user_bias, item_vec, item_bias) -> torch.Tensor:
        """Ratings of aligned (user, item) rows."""
        sim = F.cosine_similarity(user_vec, item_vec, dim=1, eps=1e-8)
        return self.mapping(sim, user_bias + item_bias)

    def rate_all(self, user_vec, user_bias, item_vec, item_bias) -> torch.Tensor:
        """Ratings of every (user, item) combination: (n_users, n_items)."""
        sim = F.normalize(user_vec, dim=1, eps=1e-8) @ F.normalize(item_vec, dim=1, eps=1e-8).T
        return self.mapping(sim, user_bias.unsqueeze(1) + item_bias.unsqueeze(0))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings (unclipped); each tower runs once per distinct user / item of the batch."""
        unique_users, user_pos = torch.unique(users, return_inverse=True)
        unique_items, item_pos = torch.unique(items, return_inverse=True)
        user_vec, user_bias = self.encode_users(unique_users)
        item_vec, item_bias = self.encode_items(unique_items)
        return self.rate(user_vec[user_pos], user_bias[user_pos], item_vec[item_pos], item_bias[item_pos])

    def id_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Per-example L2 on the ID embeddings and biases of a batch (frequent IDs pay more often)."""
        penalty = users.new_zeros((), dtype=torch.float32)
        if self.id_dim:
            penalty = (
                penalty
                + self.user_id(users).square().sum(1).mean()
                + self.item_id(items).square().sum(1).mean()
            )
        if self.use_biases:
            penalty = penalty + self.user_bias(users).square().mean() + self.item_bias(items).square().mean()
        return penalty


def history_matrix(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> torch.Tensor:
    """(n_rows, n_cols) with 1/sqrt(|row's history|) where a rating exists: dense when small, else sparse CSR."""
    counts = np.bincount(rows, minlength=n_rows).astype(np.float32)
    values = 1.0 / np.sqrt(np.maximum(counts, 1.0))[rows]
    if n_rows * n_cols <= 50_000_000:
        matrix = torch.zeros(n_rows, n_cols)
        matrix[torch.from_numpy(rows), torch.from_numpy(cols)] = torch.from_numpy(values.astype(np.float32))
        return matrix
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts.astype(np.int64), out=indptr[1:])
    return torch.sparse_csr_tensor(
        torch.from_numpy(indptr),
        torch.from_numpy(cols[order]),
        torch.from_numpy(values[order].astype(np.float32)),
        size=(n_rows, n_cols),
    )


def clip_ratings(ratings: torch.Tensor) -> torch.Tensor:
    return ratings.clamp(MIN_RATING, MAX_RATING)
