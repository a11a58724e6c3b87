"""The trained members, frozen: their tower outputs for every user and film, computed once, and the
members' mean ratings and ranking scores read from them. No Lightning: what inference runs.

Memory: (users + films) x members x the towers' output width.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hybridrec.data.context import FoldContext
from hybridrec.models.hybrid import Encoded, HybridRecModel


def build_members(
    net: Callable[..., HybridRecModel], context: FoldContext, members: int, ranking: bool
) -> nn.ModuleList:
    """``members`` HybridRecModels from the ``net`` factory, sized by the fold's context, rating on its
    data set's scale, and attached to it."""
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    content_dim = context.embeddings.dim if context.embeddings is not None else 1
    nets = nn.ModuleList(
        net(
            n_users=context.n_users,
            n_items=context.n_items,
            content_dim=content_dim,
            rating_scale=context.rating_scale,
            ranking=ranking,
            member=member,
        )
        for member in range(members)
    )
    for member in nets:
        member.attach(context)
    return nets


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode without gradients (no dropout, no random cold starts), then as it was."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def side_by_side(members: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each member's rows at unit length, side by side, scaled so that the dot product of two rows
    is the members' mean cosine."""
    return torch.cat([F.normalize(rows, dim=1) for rows in members], dim=1) / np.sqrt(len(members))


class TowerEnsemble:
    """The members' tower outputs for every user and film (from the weights as they are now)."""

    def __init__(self, nets: nn.ModuleList):
        self.nets = nets
        first = nets[0]
        self.n_users, self.n_items, self.ranking = first.n_users, first.n_items, first.ranking
        self.rating_scale = first.rating_scale
        self.user_known, self.item_known = first.user_known, first.item_known
        self.user_demographic = first.user_demographic
        with eval_mode(nets):
            users = torch.arange(self.n_users, device=first.user_known.device)
            items = torch.arange(self.n_items, device=first.user_known.device)
            self.encoded = [(net.encode_users(users), net.encode_items(items)) for net in nets]

    def _members(self) -> Iterator[tuple[HybridRecModel, Encoded, Encoded]]:
        for net, (users, items) in zip(self.nets, self.encoded, strict=True):
            yield net, users, items

    @staticmethod
    def _rank(net: HybridRecModel, users: Encoded, items: Encoded) -> torch.Tensor:
        """A member's ranking scores as log-probabilities, so members average on one scale."""
        scores = net.rank_all(users, items)
        return F.log_softmax(scores, dim=1) if net.ranking else scores

    def rate(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The members' mean rating of aligned (user, film) rows (unclipped)."""
        with torch.no_grad():
            return torch.stack([net.rate(u[users], i[items]) for net, u, i in self._members()]).mean(0)

    def rate_rows(self, users: torch.Tensor) -> torch.Tensor:
        """(n, films) the members' mean rating of every film (unclipped)."""
        with torch.no_grad():
            return torch.stack([net.rate_all(u[users], i) for net, u, i in self._members()]).mean(0)

    def rank(self, users: torch.Tensor) -> torch.Tensor:
        """(n, films) the members' mean ranking scores."""
        with torch.no_grad():
            return torch.stack([self._rank(net, u[users], i) for net, u, i in self._members()]).mean(0)

    def text_users(self, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ratings, ranking scores) over the catalog of new users known by embedded texts."""
        ratings, ranks = [], []
        with eval_mode(self.nets):
            for net, _, items in self._members():
                users = net.encode_user_content(content)
                ratings.append(net.rate_all(users, items))
                ranks.append(self._rank(net, users, items))
        return torch.stack(ratings).mean(0), torch.stack(ranks).mean(0)

    def text_keys(self, texts: torch.Tensor) -> torch.Tensor:
        """Each member's unit ranking vector (rating vector without a ranking head) of the texts
        alone, side by side: where users known only by text find their nearest known users."""
        keys = []
        with eval_mode(self.nets):
            for net in self.nets:
                encoded = net.encode_user_content(texts)
                keys.append(F.normalize(encoded.ranking if net.ranking else encoded.rating, dim=1, eps=1e-8))
        return torch.cat(keys, dim=1)

    def rate_new_items(self, content: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """(users, texts) ratings of new films known by embedded texts (unclipped)."""
        with eval_mode(self.nets):
            return torch.stack(
                [net.rate_all(u[users], net.encode_item_content(content)) for net, u, _ in self._members()]
            ).mean(0)

    def item_rating_vectors(self) -> torch.Tensor:
        """The members' unit rating vectors of every film, side by side (dot product: mean cosine)."""
        return side_by_side([items.rating for _, _, items in self._members()])

    def item_vectors(self) -> torch.Tensor:
        """The same of the ranking halves (the rating halves without a ranking head), in float64."""
        halves = [(i.ranking if i.ranking is not None else i.rating).double() for _, _, i in self._members()]
        return side_by_side(halves)
