"""The hybrid recommender: the trained towers and the evidence terms, joined by their blend weights.

The one object that evaluation, bundles, the engine and the API call; no Lightning. Users with
fitting ratings read the towers and the known users' terms; users known only by a text (new users,
and the users of the cold-start protocol, by their demographic text) read the towers' text path and
the terms that read their nearest known users. Films without fitting ratings take the towers alone.
Memory: its parts' (each module says); what it is asked is scored a batch of users x films at a time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from hybridrec.data.context import FoldContext
from hybridrec.data.queries import TextQuery
from hybridrec.models.base import Recommender
from hybridrec.models.blend import TOWERS, BlendWeights
from hybridrec.models.ensemble import TowerEnsemble
from hybridrec.models.evidence.base import TEXT, EvidenceTerm, RecommenderView, TextUsers, standardise
from hybridrec.models.evidence.nearest_users import NearestKnownUsers

# users known by text whose whole rows the text terms rate at once (a multiple of the terms' own
# batches, so the users share a batch with the same users as in one call)
TEXT_BATCH = 1024


def fit_evidence(
    evidence: Mapping,
    blend: BlendWeights,
    context: FoldContext,
    states: Mapping | None = None,
    seconds: dict[str, float] | None = None,
) -> tuple[dict[str, EvidenceTerm], NearestKnownUsers | None]:
    """The terms the blend weighs, built from their factories (``evidence``) and fitted on the fold's
    context (``states``: what a bundle saved of them), and the nearest-users finder the text terms
    share (None when none is weighed). ``seconds``, if given, receives each part's fit time."""
    seconds = {} if seconds is None else seconds
    terms = {name: evidence[name]() for name in sorted(blend.in_use()) if name in evidence}
    blend.check(terms)
    for name, term in terms.items():
        started = time.perf_counter()
        term.fit(context, (states or {}).get(name))
        seconds[name] = time.perf_counter() - started
    nearest = None
    if any(term.audience == TEXT for term in terms.values()):
        started = time.perf_counter()
        nearest = evidence["nearest_users"]()
        nearest.fit(context)
        seconds["nearest_users"] = time.perf_counter() - started
    return terms, nearest


class HybridRecommender(Recommender, RecommenderView):
    """``nets`` (the trained members) as they are now; ``terms`` and ``nearest`` fitted on the
    fold (``fit_evidence``). Built again whenever the weights change: it derives what reads them."""

    name = "hybrid"

    def __init__(
        self,
        nets: nn.ModuleList,
        terms: Mapping[str, EvidenceTerm],
        nearest: NearestKnownUsers | None,
        blend: BlendWeights,
    ):
        self.nets, self.terms, self.nearest, self.blend = nets, dict(terms), nearest, blend
        self.towers = TowerEnsemble(nets)
        self.reads_text = nets[0].use_content
        self.known_users = self.towers.user_known.nonzero().squeeze(1)
        if nearest is not None:
            nearest.attach(self)
        for term in self.terms.values():
            term.attach(self)

    # --- the parts and their blend -------------------------------------------------------------------

    def text_users(self, query: TextQuery) -> TextUsers:
        """Users known by these texts, with their nearest known users (when a term reads them)."""
        if self.nearest is None:
            none = torch.zeros(len(query), 0)
            return TextUsers(query, none.long(), none)
        return self.nearest.find(query)

    def _profile_users(self, users: torch.Tensor) -> TextUsers:
        """Users without fitting ratings, known by their demographic profile's embedding."""
        return self.text_users(TextQuery.from_profiles(self.towers.user_demographic[users].numpy()))

    def rating_parts(
        self, channel: str, users: torch.Tensor, items: torch.Tensor, names
    ) -> dict[str, torch.Tensor]:
        """The ratings of aligned (user, film) pairs by the towers and by the channel's ``names``
        terms; ``text_ratings`` reads the users' demographic texts (users without fitting ratings)."""
        parts = {TOWERS: self.towers.rate(users, items)}
        terms = [name for name in names if name != TOWERS]
        if terms and channel == "known_ratings":
            parts.update({name: self.terms[name].rate(users, items) for name in terms})
        elif terms:  # the text terms rate whole rows: a batch of users x films at a time
            unique, rows = torch.unique(users, return_inverse=True)
            order = torch.argsort(rows, stable=True)
            ends = torch.searchsorted(
                rows[order], torch.arange(TEXT_BATCH, len(unique) + TEXT_BATCH, TEXT_BATCH)
            )
            begin = 0
            for start, end in zip(range(0, len(unique), TEXT_BATCH), ends.tolist(), strict=True):
                pairs, begin = order[begin:end], end
                text_users = self._profile_users(unique[start : start + TEXT_BATCH])
                for name in terms:
                    rated = self.terms[name].rate(text_users)[rows[pairs] - start, items[pairs]]
                    parts.setdefault(name, rated.new_empty(len(users)))[pairs] = rated
            parts.update({name: parts[TOWERS][:0] for name in terms if name not in parts})  # no pairs
        return parts

    def list_parts(self, channel: str, users: torch.Tensor, names) -> dict[str, torch.Tensor]:
        """(users, films) list scores of the towers and of the channel's ``names`` terms."""
        parts = {TOWERS: self.towers.rank(users)}
        terms = [name for name in names if name != TOWERS]
        if terms:
            asked = users if channel == "known_lists" else self._profile_users(users)
            parts.update({name: self.terms[name].score(asked) for name in terms})
            parts.update({f"{name}/confidence": self.terms[name].confidence(asked) for name in terms})
        return parts

    def _rated(self, channel: str, parts: Mapping[str, torch.Tensor], items) -> torch.Tensor:
        """The weighted sum of the parts' ratings, on films with fitting ratings (elsewhere the towers')."""
        towers = parts[TOWERS]
        terms = self.blend.terms(channel)
        if not terms:
            return towers
        blended = self.blend.channel(channel).get(TOWERS, 0.0) * towers
        for name, weight in terms.items():
            blended = blended + weight * parts[name].float()
        return torch.where(self.towers.item_known[items], blended, towers)

    def _listed(self, channel: str, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The towers' scores alone when the channel weighs no term; else the weighted sum of the
        towers' and the terms' scores, each standardised per user."""
        terms = self.blend.terms(channel)
        if not terms:
            return parts[TOWERS]
        evidence = 0.0
        for name, weight in terms.items():
            confidence = parts.get(f"{name}/confidence")
            if confidence is not None:
                weight = weight * confidence.unsqueeze(1)
            evidence = evidence + weight * standardise(parts[name].float())
        return self.blend.channel(channel).get(TOWERS, 0.0) * standardise(parts[TOWERS]) + evidence

    # --- what evaluation and the engine ask ---------------------------------------------------------

    def rate_known_rows(self, users: torch.Tensor) -> torch.Tensor:
        parts = {TOWERS: self.towers.rate_rows(users)}
        parts.update({name: self.terms[name].rate(users) for name in self.blend.terms("known_ratings")})
        return self.towers.rating_scale.clip(self._rated("known_ratings", parts, slice(None)))

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u, i = torch.as_tensor(users), torch.as_tensor(items)
        ratings = torch.empty(len(u))
        known = self.towers.user_known[u]
        for channel, rows in (("known_ratings", known), ("text_ratings", ~known)):
            if rows.any():
                parts = self.rating_parts(channel, u[rows], i[rows], self.blend.terms(channel))
                ratings[rows] = self._rated(channel, parts, i[rows])
        return self.towers.rating_scale.clip(ratings).numpy()

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        u = torch.as_tensor(users)
        scores = torch.empty(len(u), self.towers.n_items)
        known = self.towers.user_known[u]
        for channel, rows in (("known_lists", known), ("text_lists", ~known)):
            if rows.any():
                scores[rows] = self._listed(
                    channel, self.list_parts(channel, u[rows], self.blend.terms(channel))
                )
        return scores.numpy()

    def text_user_scores(self, query: TextQuery) -> tuple[np.ndarray, np.ndarray]:
        ratings, rank = self.towers.text_users(torch.from_numpy(query.vectors))
        text_users = self.text_users(query)
        rated = {
            TOWERS: ratings,
            **{n: self.terms[n].rate(text_users) for n in self.blend.terms("text_ratings")},
        }
        listed = {TOWERS: rank}
        for name in self.blend.terms("text_lists"):
            listed[name] = self.terms[name].score(text_users)
            listed[f"{name}/confidence"] = self.terms[name].confidence(text_users)
        ratings = self.towers.rating_scale.clip(self._rated("text_ratings", rated, slice(None)))
        return ratings.numpy(), self._listed("text_lists", listed).numpy()

    def text_item_ratings(self, content: np.ndarray, users: np.ndarray) -> np.ndarray:
        ratings = self.towers.rate_new_items(
            torch.as_tensor(content, dtype=torch.float32), torch.as_tensor(users)
        )
        return self.towers.rating_scale.clip(ratings).numpy()

    def item_vectors(self) -> np.ndarray:
        return self.towers.item_vectors().numpy()
