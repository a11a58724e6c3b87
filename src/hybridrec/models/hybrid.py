"""HybridRecModel: a user tower and an item tower over frozen LLM embeddings, joined by cosine similarity.

Each tower reads its side's frozen content vector and, when enabled, the collaborative half: a
trainable ID embedding and history bags — the normalised sum of embeddings of the items a user rated
(or of the users who rated an item): one bag per kind switched on, unweighted (``implicit``,
SVD++-style), weighted by the centred rating (``explicit``), or over the liked (>= 4) ratings only
(``liked``; still normalised by the whole history, so it also says what share was liked). Training
ratings only.
IDs are dropped at random during training so the same towers also work from text alone (cold start).
Every random choice of training (dropout, dropped IDs and histories, new users, sampled films) is keyed
noise (``hybridrec.models.noise``): a hash of the member, the step and what it falls on, so the processes
of data-parallel training make the choices of one process.

Two heads share the towers. The rating head maps the cosine of the rating halves of the two tower
outputs (times a learned scale per user and per item, ``scales``: how far from its biases each one's
ratings stray) to the data set's stars (``rating_scale``). The ranking head (``ranking=True``) scores every catalog item for a user as
``scale · cosine(ranking halves) + item prior`` (a prior of its own for new users, who bring no
history to explain popularity away) and is trained with a softmax over the catalog to
predict which items a user goes on to rate highly: what a top-10 list is judged on (above
``full_softmax_items`` films, a sampled softmax: see ``_softmax_films``). During training
the ratings being predicted are removed from the histories the towers read, so the model learns to
predict unseen ratings from the rest of the history, exactly as it is used.

Memory: the tables and frozen vectors, (users + items) x width; the histories, a few numbers per
rating; a training step, its users x the softmax's films, and the history bags' ratings: all of them,
or with ``history_sample`` at most that many for each user and film the step encodes
(``_history_bags``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hybridrec.constants import RELEVANCE_THRESHOLD
from hybridrec.data.context import FoldContext
from hybridrec.data.movielens import RatingScale
from hybridrec.models.history import RatingHistories
from hybridrec.models.mappings import RatingMapping
from hybridrec.models.noise import KeyedNoise
from hybridrec.models.softmax import liked_films_loss
from hybridrec.models.towers import Tower


@dataclass
class Encoded:
    """Tower outputs of a set of users or items: rating half, ranking half, bias, ranking prior."""

    rating: torch.Tensor
    ranking: torch.Tensor | None
    bias: torch.Tensor
    prior: torch.Tensor | None = None  # items: learned log-prior of being chosen (popularity)
    cold_prior: torch.Tensor | None = None  # items: the same for users known only by text
    cold: torch.Tensor | None = None  # users: True for users known only by text
    scale: torch.Tensor | None = None  # log-scale of this row's rating cosine (``scales``)

    def __getitem__(self, rows) -> Encoded:
        """The rows at these positions (index_select: its backward is cheaper than indexing's)."""
        rows = torch.as_tensor(rows, device=self.rating.device)
        pick = lambda t: None if t is None else t.index_select(0, rows)  # noqa: E731
        return Encoded(
            pick(self.rating),
            pick(self.ranking),
            pick(self.bias),
            pick(self.prior),
            pick(self.cold_prior),
            pick(self.cold),
            pick(self.scale),
        )


class HybridRecModel(nn.Module):
    """The towers, their heads and the fold's frozen context (see the module docstring). Sized by
    ``n_users``, ``n_items`` and ``content_dim``; ``mapping`` is a RatingMapping or a factory of one
    (a Hydra partial: each member gets its own, onto ``rating_scale``, the data set's); ``member``, its
    place among the members, keys its training noise; the rest is the architecture
    (configs/model/hybrid.yaml)."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        content_dim: int,
        mapping: RatingMapping | Callable[..., RatingMapping],
        rating_scale: RatingScale,
        *,
        member: int,
        hidden: int,
        depth: int,
        out_dim: int,
        dropout: float,
        activation: str,
        taper: bool,
        content: bool,
        id_emb_dim: int,
        implicit: bool,
        explicit: bool,
        liked: bool,
        biases: bool,
        scales: bool,
        id_dropout: float,
        history_dropout: float,
        cold_start_rate: float,
        described_rate: float,
        ranking: bool,
        rank_scale_init: float,
        full_softmax_items: int,
        sampled_negatives: int,
        history_sample: int,
    ):
        mapping = mapping if isinstance(mapping, nn.Module) else mapping(rating_scale=rating_scale)
        if mapping.rating_scale != rating_scale:
            raise ValueError(
                f"the mapping is onto {mapping.rating_scale}, the model's ratings on {rating_scale}"
            )
        super().__init__()
        if not content and id_emb_dim <= 0:
            raise ValueError("the model needs content embeddings or ID embeddings (id_emb_dim > 0)")
        self.n_users, self.n_items = n_users, n_items
        self.use_content = content
        self.id_dim = max(int(id_emb_dim), 0)
        self.bags = [
            name
            for name, on in (("implicit", implicit), ("explicit", explicit), ("liked", liked))
            if on and self.id_dim > 0
        ]
        self.use_biases = biases
        self.use_scales = scales
        self.id_dropout = id_dropout
        self.history_dropout = history_dropout
        self.cold_start_rate = cold_start_rate
        self.described_rate = described_rate
        self.ranking = ranking
        if sampled_negatives < 1:
            raise ValueError(f"sampled_negatives must be at least 1, got {sampled_negatives}")
        self.full_softmax_items, self.sampled_negatives = full_softmax_items, sampled_negatives
        if history_sample < 0:
            raise ValueError(f"history_sample must be 0 (every rating) or more, got {history_sample}")
        self.history_sample = history_sample
        self.out_dim = out_dim
        self.mapping = mapping
        self.rating_scale = rating_scale
        self.noise = KeyedNoise(torch.initial_seed(), member)

        in_dim = (content_dim if content else 0) + self.id_dim * (1 + len(self.bags))
        tower_out = out_dim * (2 if ranking else 1)
        tower_args = dict(
            hidden=hidden, depth=depth, out_dim=tower_out, dropout=dropout, activation=activation, taper=taper
        )
        self.user_tower = Tower(in_dim, **tower_args)
        self.item_tower = Tower(in_dim, **tower_args)
        # the last row of each table stands for "unknown" (a new user or item, or a dropped ID)
        if self.id_dim:
            self.user_id = _table(n_users + 1, self.id_dim, std=0.05)
            self.item_id = _table(n_items + 1, self.id_dim, std=0.05)
        # history bags: user_bags embed the items a user rated, item_bags the users who rated an item
        self.user_bags = nn.ModuleDict({b: _table(n_items, self.id_dim, std=0.05) for b in self.bags})
        self.item_bags = nn.ModuleDict({b: _table(n_users, self.id_dim, std=0.05) for b in self.bags})
        if biases:
            self.user_bias = _table(n_users + 1, 1, std=0.0)
            self.item_bias = _table(n_items + 1, 1, std=0.0)
        if scales:  # how far each user's (item's) ratings stray from the biases: a cosine has no length
            self.user_scale = _table(n_users + 1, 1, std=0.0)
            self.item_scale = _table(n_items + 1, 1, std=0.0)
        if ranking:
            self.item_prior = _table(n_items + 1, 1, std=0.0)
            self.item_cold_prior = _table(n_items + 1, 1, std=0.0)
            self.rank_scale = nn.Parameter(torch.tensor(float(rank_scale_init)))
        # the fold's context: frozen, rebuilt from data (not trained, so not in the state dict)
        for name, shape in (
            ("user_content", (n_users, content_dim)),
            ("user_demographic", (n_users, content_dim)),
            ("user_described", (n_users, content_dim)),
            ("item_content", (n_items, content_dim)),
        ):
            self.register_buffer(name, torch.zeros(shape), persistent=False)
        # the fitting ratings (user, item) and, per bag and side, each rating's weight in its row's
        # history: 1/sqrt(|history|) (times r - mean for explicit)
        self.histories = RatingHistories(n_users, n_items)
        for bag in self.bags:
            self.register_buffer(f"user_{bag}", torch.zeros(0), persistent=False)
            self.register_buffer(f"item_{bag}", torch.zeros(0), persistent=False)
        self.register_buffer("user_known", torch.zeros(n_users, dtype=torch.bool), persistent=False)
        self.register_buffer("item_known", torch.zeros(n_items, dtype=torch.bool), persistent=False)
        # each fitting rating's position: the key of its history-dropout mask (made once, at attach)
        self.register_buffer("rating_positions", torch.zeros(0, dtype=torch.long), persistent=False)

    # --- context ---------------------------------------------------------------------------------

    def attach(self, context: FoldContext) -> None:
        """Load a fold's frozen content vectors and rating histories into the buffers."""
        device = self.user_known.device
        if context.embeddings is not None:
            self.user_content = torch.from_numpy(context.embeddings.user).to(device)
            self.user_demographic = torch.from_numpy(context.embeddings.user_demographic).to(device)
            self.item_content = torch.from_numpy(context.embeddings.item).to(device)
            if self.described_rate:
                if context.embeddings.user_described is None:
                    raise ValueError("described_rate > 0 needs descriptions: set data.profile.described_told")
                self.user_described = torch.from_numpy(context.embeddings.user_described).to(device)
        elif self.use_content:
            raise ValueError("this model reads content embeddings, but the context has none")
        fit = context.fit
        weights_of = {
            "implicit": None,
            "explicit": fit.ratings - context.global_mean,
            "liked": (fit.ratings >= RELEVANCE_THRESHOLD).astype(np.float32),
        }
        for bag in self.bags:
            setattr(self, f"user_{bag}", history_weights(fit.users, self.n_users, weights_of[bag]).to(device))
            setattr(self, f"item_{bag}", history_weights(fit.items, self.n_items, weights_of[bag]).to(device))
        users, items = torch.from_numpy(fit.users).long(), torch.from_numpy(fit.items).long()
        self.histories.attach(users.to(device), items.to(device))
        self.rating_positions = torch.arange(len(users), device=device)
        self.user_known = torch.from_numpy(np.asarray(context.user_known)).to(device)
        self.item_known = torch.from_numpy(np.asarray(context.item_known)).to(device)
        self.mapping.init_from_ratings(fit.ratings)
        if self.ranking:  # start the ranking prior at log popularity: training refines it
            counts = np.bincount(fit.items[fit.ratings >= 4], minlength=self.n_items + 1).astype(np.float32)
            with torch.no_grad():
                self.item_prior.weight.copy_(torch.from_numpy(np.log1p(counts))[:, None])
                self.item_cold_prior.weight.copy_(torch.from_numpy(np.log1p(counts))[:, None])

    # --- towers ----------------------------------------------------------------------------------

    def _drop(self, stream: str, rows: torch.Tensor, rate: float) -> torch.Tensor:
        """In training, True for a share ``rate`` of ``rows`` (entity ids), drawn per ``stream``."""
        if self.training and rate > 0:
            return self.noise.below(stream, rows, rate)
        return torch.zeros(len(rows), dtype=torch.bool, device=rows.device)

    def _encode(self, side: str, rows, content, dropped, hidden=None) -> Encoded:
        """Tower outputs for entities ``rows`` (None: unknown entities described by ``content`` alone).

        ``hidden``: positions (in the fitting ratings) of ratings removed from the histories, for training.
        """
        collaborative = []  # the trained inputs, beside the frozen content (one block for the tower)
        n = len(content)
        unknown = self.n_users if side == "user" else self.n_items
        ids = torch.full((n,), unknown, dtype=torch.long, device=content.device)
        if rows is not None:
            ids = torch.where(dropped, ids, rows)
        if self.id_dim:
            collaborative.append((self.user_id if side == "user" else self.item_id)(ids))
        bags = self._history_bags(side, rows, hidden) if rows is not None and self.bags else {}
        for bag in self.bags:
            vector = bags[bag] if rows is not None else content.new_zeros(n, self.id_dim)
            collaborative.append(vector.masked_fill(dropped.unsqueeze(1), 0.0))
        parts = ([content] if self.use_content else []) + (
            [torch.cat(collaborative, 1)] if collaborative else []
        )
        keys = rows if rows is not None else torch.arange(n, device=content.device)
        tower = self.user_tower if side == "user" else self.item_tower

        def drop(layer: int, shape) -> torch.Tensor:  # a tower's dropout: keyed by (entity, unit)
            units = torch.arange(shape[1], device=keys.device)
            rate = tower.net[layer].p
            return self.noise.below(f"{side}-tower-{layer}", keys.unsqueeze(1) * shape[1] + units, rate)

        out = tower(*parts, drop=drop)
        bias = (
            (self.user_bias if side == "user" else self.item_bias)(ids).squeeze(1)
            if self.use_biases
            else out.new_zeros(n)
        )
        rating, ranking = (out[:, : self.out_dim], out[:, self.out_dim :]) if self.ranking else (out, None)
        encoded = Encoded(rating, ranking, bias)
        if self.use_scales:
            encoded.scale = (self.user_scale if side == "user" else self.item_scale)(ids).squeeze(1)
        if self.ranking and side == "item":
            encoded.prior, encoded.cold_prior = (
                self.item_prior(ids).squeeze(1),
                self.item_cold_prior(ids).squeeze(1),
            )
        return encoded

    def _history_bags(self, side: str, rows: torch.Tensor, hidden=None) -> dict[str, torch.Tensor]:
        """Each bag of ``rows`` (entity ids). In training, where a row has more than
        ``history_sample`` ratings, the bags read a keyed sample of that many (each weighing its
        share of the whole): a step then reads at most that many ratings per row it encodes."""
        tables = self.user_bags if side == "user" else self.item_bags
        if not (self.training and self.history_sample) or self.histories.longest(side) <= self.history_sample:
            kept = self._kept_history(side, self.rating_positions, hidden)
            return {
                bag: self.histories.bag(
                    side, _times(getattr(self, f"{side}_{bag}"), kept), tables[bag].weight
                ).index_select(0, rows)
                for bag in self.bags
            }
        uniform = lambda keys: self.noise.uniform(f"history-sample-{side}", keys)  # noqa: E731
        sampled = self.histories.sample(side, rows, self.history_sample, uniform)
        kept = _times(sampled.scale, self._kept_history(side, sampled.positions, hidden))
        return {
            bag: sampled.bag(getattr(self, f"{side}_{bag}")[sampled.positions] * kept, tables[bag].weight)
            for bag in self.bags
        }

    def _kept_history(self, side: str, positions: torch.Tensor, hidden=None) -> torch.Tensor | None:
        """What each of the fitting ratings at ``positions`` counts for in this side's history bags
        (None: all of it). In training, each step sees a random part of every history (denoising;
        the same part in every bag, keyed by the rating's position), and ``hidden``, the ratings
        being predicted (positions in the fitting ratings), are removed so no target is read from a
        history."""
        kept = None
        if self.training and self.history_dropout > 0:
            dropped = self.noise.below(f"history-{side}", positions, self.history_dropout)
            kept = (~dropped).float() / (1.0 - self.history_dropout)
        if hidden is not None:
            if kept is None:
                kept = torch.ones(len(positions), device=positions.device)
            if positions is self.rating_positions:  # every rating, in order: each at its own position
                kept = kept.index_fill(0, hidden, 0.0)
            elif len(hidden):  # a sample: each looked up among the hidden ones
                ordered = torch.sort(hidden).values
                at = torch.searchsorted(ordered, positions).clamp_max_(len(ordered) - 1)
                kept = kept.masked_fill(ordered[at] == positions, 0.0)
        return kept

    def encode_users(self, users: torch.Tensor, hidden=None) -> Encoded:
        """Users without training ratings (and, in training, a random share) take the text-only path:
        their demographic profile, or in training (``described_rate``) their own words."""
        cold = ~self.user_known[users] | self._drop("cold-start", users, self.cold_start_rate)
        content = torch.where(cold.unsqueeze(1), self.user_demographic[users], self.user_content[users])
        if self.training and self.described_rate:
            described = cold & self._drop("described", users, self.described_rate)
            content = torch.where(described.unsqueeze(1), self.user_described[users], content)
        dropped = cold | self._drop("user-id", users, self.id_dropout)
        encoded = self._encode("user", users, content, dropped, hidden)
        encoded.cold = cold
        return encoded

    def encode_items(self, items: torch.Tensor, hidden=None) -> Encoded:
        dropped = ~self.item_known[items] | self._drop("item-id", items, self.id_dropout)
        return self._encode("item", items, self.item_content[items], dropped, hidden)

    def encode_user_content(self, content: torch.Tensor) -> Encoded:
        """A new user known only by an embedded text."""
        cold = torch.ones(len(content), dtype=torch.bool, device=content.device)
        encoded = self._encode("user", None, content, cold)
        encoded.cold = cold
        return encoded

    def encode_item_content(self, content: torch.Tensor) -> Encoded:
        """A new item known only by an embedded text."""
        return self._encode(
            "item", None, content, torch.ones(len(content), dtype=torch.bool, device=content.device)
        )

    # --- heads -----------------------------------------------------------------------------------

    def rate(self, users: Encoded, items: Encoded) -> torch.Tensor:
        """Ratings of aligned (user, item) rows."""
        return self.mapping(*self._similarity(users, items))

    def _similarity(self, users: Encoded, items: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """(cosine, biases) of aligned rows: what the rating mapping reads."""
        sim = F.cosine_similarity(users.rating, items.rating, dim=1, eps=1e-8)
        if self.use_scales:
            sim = sim * torch.exp(users.scale + items.scale)
        return sim, users.bias + items.bias

    def rate_all(self, users: Encoded, items: Encoded) -> torch.Tensor:
        """(len(users), len(items)) ratings of every combination: callers pass users a chunk at a time."""
        sim = F.normalize(users.rating, dim=1, eps=1e-8) @ F.normalize(items.rating, dim=1, eps=1e-8).T
        if self.use_scales:
            sim = sim * torch.exp(users.scale.unsqueeze(1) + items.scale.unsqueeze(0))
        return self.mapping(sim, users.bias.unsqueeze(1) + items.bias.unsqueeze(0))

    def rank_all(self, users: Encoded, items: Encoded) -> torch.Tensor:
        """(len(users), len(items)) ranking scores (callers chunk the users); the rating when there is
        no ranking head."""
        if not self.ranking:
            return self.rate_all(users, items)
        # scale * cosine + prior (the cold prior for users known only by text) as one product: the
        # priors ride on two extra columns, [1, cold] . [prior, cold_prior - prior]; no pass over the
        # (users, items) scores but the product's own
        ones = users.ranking.new_ones(len(users.ranking), 1)
        cold = torch.zeros_like(ones) if users.cold is None else users.cold.unsqueeze(1).to(ones.dtype)
        user_side = torch.cat([self.rank_scale * F.normalize(users.ranking, dim=1, eps=1e-8), ones, cold], 1)
        item_side = torch.cat(
            [
                F.normalize(items.ranking, dim=1, eps=1e-8),
                items.prior.unsqueeze(1),
                (items.cold_prior - items.prior).unsqueeze(1),
            ],
            1,
        )
        return user_side @ item_side.T

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings (unclipped); each tower runs once per distinct user / item of the batch."""
        unique_users, user_pos = torch.unique(users, return_inverse=True)
        unique_items, item_pos = torch.unique(items, return_inverse=True)
        return self.rate(self.encode_users(unique_users)[user_pos], self.encode_items(unique_items)[item_pos])

    # --- training --------------------------------------------------------------------------------

    def training_losses(
        self,
        users,
        items,
        ratings,
        rank_min_rating: float = 4.0,
        batch: tuple | None = None,
        step: int = 0,
    ) -> dict[str, torch.Tensor]:
        """The rating mapping's loss on the batch and (with the ranking head) the softmax loss of its liked items.

        The batch's own ratings are removed from the histories the towers read, so every target is
        predicted from the rest of the history, as at test time. ``batch``: the (users, items) of the
        whole batch when these pairs are one process's share of it (data-parallel training): all of
        its ratings are hidden, and its films join a sampled softmax, as in one process. ``step``: the
        optimiser step, which keys the training noise.
        """
        self.noise.step = step
        batch_users, batch_items = batch if batch is not None else (users, items)
        unique_users, user_pos = torch.unique(users, return_inverse=True)
        hidden = self.histories.positions(batch_users, batch_items)
        hidden = hidden[hidden >= 0]  # (pairs outside the fitting ratings are in no history)
        encoded_users = self.encode_users(unique_users, hidden=hidden)
        if self.ranking:  # the softmax's films: the whole catalog, or a sample of a large one
            films, correction = self._softmax_films(batch_items)
            item_pos = torch.searchsorted(films, items)
        else:
            films, item_pos = torch.unique(items, return_inverse=True)
        encoded_items = self.encode_items(films, hidden=hidden)
        pairs = self._similarity(encoded_users[user_pos], encoded_items[item_pos])
        losses = {"rating": self.mapping.loss(*pairs, ratings)}
        if self.ranking:
            liked = ratings >= rank_min_rating
            if liked.any():  # the softmax of the users who liked a film of the batch
                rows, liked_row = torch.unique(user_pos[liked], return_inverse=True)
                logits = self.rank_all(encoded_users[rows], encoded_items)
                if correction is not None:
                    logits = logits + correction
                # the rest of each user's history is known, not to be predicted: out of the softmax
                hide = self.histories.rated(unique_users[rows], films)
                row_of = torch.full_like(unique_users, -1).index_copy_(
                    0, rows, torch.arange(len(rows), device=rows.device)
                )
                pair_row = row_of[user_pos]
                in_rows = pair_row >= 0
                hide[pair_row[in_rows], item_pos[in_rows]] = False
                losses["rank"] = liked_films_loss(logits, hide, liked_row, item_pos[liked])
            else:
                losses["rank"] = ratings.new_zeros(())
        return losses

    def _softmax_films(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The films the ranking softmax runs over (ascending) and what to add to their logits.

        Up to ``full_softmax_items`` films: the whole catalog, nothing added. Above: a sampled
        softmax over the batch's films and ``sampled_negatives`` films drawn uniformly without
        replacement; a drawn film outside the batch was there with probability drawn / catalog, so
        its logit is raised by log(catalog / drawn) (the logQ correction), which keeps the sum over
        the drawn films an unbiased estimate of the sum over the rest of the catalog. With as many
        negatives as films it is the full softmax again."""
        n = self.n_items
        if n <= self.full_softmax_items:
            return torch.arange(n, device=items.device), None
        draw = torch.Generator().manual_seed(self.noise.salt("sampled-films") % 2**32)
        drawn = torch.randperm(n, generator=draw)[: self.sampled_negatives].to(items.device)
        films = torch.unique(torch.cat([items, drawn]))
        correction = torch.where(torch.isin(films, items), 0.0, math.log(n / len(drawn)))
        return films, correction

    def id_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Per-example L2 on the ID embeddings, biases and scales of a batch (frequent IDs pay more often)."""
        tables = [
            name
            for name, on in (("id", self.id_dim), ("bias", self.use_biases), ("scale", self.use_scales))
            if on
        ]
        penalty = torch.zeros((), device=users.device)
        for name in tables:
            for table, rows in (
                (getattr(self, f"user_{name}"), users),
                (getattr(self, f"item_{name}"), items),
            ):
                penalty = penalty + table(rows).square().sum(1).mean()
        return penalty


def _times(weights: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
    return weights if kept is None else weights * kept


def _table(rows: int, dim: int, std: float) -> nn.Embedding:
    table = nn.Embedding(rows, dim)
    if std:
        nn.init.normal_(table.weight, std=std)
    else:
        nn.init.zeros_(table.weight)
    return table


def history_weights(rows: np.ndarray, n_rows: int, weights=None) -> torch.Tensor:
    """Each rating's weight in its row's history: weight / sqrt(|row's history|) (weight 1 by default)."""
    counts = np.bincount(rows, minlength=n_rows).astype(np.float32)
    values = 1.0 / np.sqrt(np.maximum(counts, 1.0))[rows]
    if weights is not None:
        values = values * weights
    return torch.from_numpy(values.astype(np.float32))
