"""The LightningModule around HybridRecModel: training losses, RMSE/MAE per stage, optimiser from config."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from hybridrec.constants import RELEVANCE_THRESHOLD, TEST_MAE, TEST_RMSE, TRAIN_LOSS, VAL_MAE, VAL_RMSE
from hybridrec.data.context import FoldContext
from hybridrec.models.base import Recommender
from hybridrec.models.hybrid import Encoded, HybridRecModel, clip_ratings
from hybridrec.models.neighbourhood import (
    ease_weights,
    every_film_neighbour_means,
    item_baseline_ratings,
    knn_baseline_ratings,
    knn_similarity,
    liked_matrix,
    neighbour_means,
    text_neighbour_weights,
)


class HybridRecLitModule(Recommender, L.LightningModule):
    """Built per fold: ``context`` sizes the ID tables and fills the frozen buffers.

    ``mapping``, ``optimizer`` and ``scheduler`` are factories (Hydra partials), so every fold gets
    fresh ones. ``rank_weight`` weighs the ranking loss against the rating MSE (0 turns the ranking
    head off). ``members`` > 1 trains that many HybridRecModels side by side on the same batches
    (different initialisations) and averages them: their ratings, and their ranking log-probabilities.
    ``neighbourhood_weight`` > 0 adds, to those ranking scores (both standardised per user), full-rank
    neighbourhood evidence that the low-rank towers smooth away: for users with a history, an
    item-item term in closed form over the fold's ratings >= ``neighbourhood_min_rating`` (EASE^R, L2
    ``neighbourhood_reg``); for users known only by text, the films rated so by the
    ``neighbourhood_users`` known users whose demographic profile texts are nearest to theirs,
    each neighbour's films weighted by ``1 / |their ratings| ** neighbourhood_damping`` (so raters of
    hundreds of films do not outvote the rest). ``neighbourhood_space`` says where "nearest" is
    measured: between the texts' embeddings (``text``), or between what the towers make of those
    texts alone (``towers``: the members' ranking vectors side by side), a space trained on what
    people rate, where age or occupation weigh what they matter to a list.
    ``liked_neighbourhood_weight`` > 0 adds the same evidence over the liked ratings (>= 4) alone:
    the first tells which films a user will choose, this one which they will like, and a list is
    judged on both.
    ``knn_weight`` > 0 brings the same kind of evidence to the ratings of known users and films:
    that share of an item KNN with baselines (``knn_k`` most similar films the user rated,
    similarity shrunk by ``knn_shrinkage``) joins the towers' rating. ``knn_residual_weight`` > 0
    adds that share of the towers' own errors on the ``knn_k`` most similar films the user rated (the fitting
    ratings minus what the trained towers predict for them), weighted by similarity over their sum plus
    ``knn_residual_shrinkage``: where the towers err on a user's films, they err alike on the
    films most like them. ``knn_residual_space`` says which films are most alike there: by the KNN's
    similarity of their ratings (``ratings``), or by the members' mean cosine of the films' rating
    vectors (``towers``): what the towers learned to treat alike, dense where few users rated both.
    ``cold_baseline_weight`` > 0 is the same for users known only by text, with the KNN's baseline
    for a user of average bias, ``μ + b_i + E[b_u]``: the towers' rating from demographics alone is
    noisy (age, gender and occupation nearly single out a training user), and averaging it with the
    film's baseline cuts the error. With ``cold_neighbour_shrinkage`` (not None) that baseline moves
    toward how the user's nearest known users (the ``neighbourhood_users`` of the lists, found in
    ``neighbourhood_space``) rated the film: by the similarity-weighted sum of their ratings'
    deviations from it, over their weights plus that many pseudo-ratings at the baseline.
    ``cold_neighbour_rating_weight`` > 0 adds that share of what those nearest known users are
    predicted to rate the film (their own path: towers and KNN), averaged by similarity: dense where
    their ratings are sparse. The towers keep the rest of a new user's rating.
    The remaining keyword arguments are HybridRecModel's architecture.
    """

    name = "hybrid"

    def __init__(
        self,
        context: FoldContext,
        mapping: Callable,
        optimizer: Callable,
        scheduler: Callable | None = None,
        l2: float = 0.0,
        rank_weight: float = 0.0,
        rank_min_rating: float = 4.0,
        members: int = 1,
        neighbourhood_weight: float = 0.0,
        neighbourhood_reg: float = 300.0,
        neighbourhood_users: int = 100,
        neighbourhood_damping: float = 0.0,
        neighbourhood_space: str = "text",
        neighbourhood_min_rating: float = RELEVANCE_THRESHOLD,
        liked_neighbourhood_weight: float = 0.0,
        knn_weight: float = 0.0,
        knn_k: int = 40,
        knn_shrinkage: float = 100.0,
        knn_residual_weight: float = 0.0,
        knn_residual_shrinkage: float = 1.0,
        knn_residual_space: str = "ratings",
        cold_baseline_weight: float = 0.0,
        cold_neighbour_shrinkage: float | None = None,
        cold_neighbour_rating_weight: float = 0.0,
        **architecture,
    ):
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be at least 1, got {members}")
        if min(neighbourhood_weight, liked_neighbourhood_weight) < 0 or neighbourhood_reg <= 0:
            raise ValueError(
                "neighbourhood_weight and liked_neighbourhood_weight must be >= 0, neighbourhood_reg > 0"
            )
        if neighbourhood_space not in ("text", "towers"):
            raise ValueError(f"neighbourhood_space must be 'text' or 'towers', got {neighbourhood_space!r}")
        if knn_residual_space not in ("ratings", "towers"):
            raise ValueError(f"knn_residual_space must be 'ratings' or 'towers', got {knn_residual_space!r}")
        if neighbourhood_damping < 0:
            raise ValueError(f"neighbourhood_damping must be >= 0, got {neighbourhood_damping}")
        if neighbourhood_users < 1:
            raise ValueError(f"neighbourhood_users must be at least 1, got {neighbourhood_users}")
        if not 0.0 <= knn_weight <= 1.0 or knn_k < 1 or knn_shrinkage < 0:
            raise ValueError("knn_weight must be in [0, 1], knn_k >= 1 and knn_shrinkage >= 0")
        if knn_residual_weight < 0 or knn_residual_shrinkage < 0:
            raise ValueError("knn_residual_weight and knn_residual_shrinkage must be >= 0")
        if min(cold_baseline_weight, cold_neighbour_rating_weight) < 0 or (
            cold_baseline_weight + cold_neighbour_rating_weight > 1.0
        ):
            raise ValueError(
                "cold_baseline_weight and cold_neighbour_rating_weight must be >= 0 and sum to at most 1, "
                f"got {cold_baseline_weight} and {cold_neighbour_rating_weight}"
            )
        if cold_neighbour_shrinkage is not None and cold_neighbour_shrinkage < 0:
            raise ValueError(
                f"cold_neighbour_shrinkage must be >= 0 (or None), got {cold_neighbour_shrinkage}"
            )
        self.save_hyperparameters(ignore=["context", "mapping", "optimizer", "scheduler"])
        content_dim = context.embeddings.dim if context.embeddings is not None else 1
        self.nets = nn.ModuleList(
            HybridRecModel(
                context.n_users,
                context.n_items,
                content_dim,
                mapping(),
                ranking=rank_weight > 0,
                **architecture,
            )
            for _ in range(members)
        )
        for net in self.nets:
            net.attach(context)
        self.neighbourhood_weight = neighbourhood_weight
        self.liked_neighbourhood_weight = liked_neighbourhood_weight
        self.neighbourhood_users = neighbourhood_users
        self.neighbourhood_space = neighbourhood_space
        self.uses_neighbourhood = bool(neighbourhood_weight or liked_neighbourhood_weight)
        self.cold_baseline_weight = cold_baseline_weight
        # (the nearest users' ratings only ever move the cold baseline)
        self.cold_neighbour_shrinkage = cold_neighbour_shrinkage if cold_baseline_weight else None
        self.cold_neighbour_rating_weight = cold_neighbour_rating_weight
        self.cold_share = cold_baseline_weight + cold_neighbour_rating_weight  # beside the towers' (1 - it)
        self.cold_reads_neighbours = self.cold_neighbour_shrinkage is not None or bool(
            cold_neighbour_rating_weight
        )
        known = self.net.user_known.cpu()
        if self.uses_neighbourhood or self.cold_reads_neighbours:  # who the neighbours can be
            self.register_buffer("known_texts", self.net.user_demographic.cpu()[known], persistent=False)
        if self.uses_neighbourhood:  # fixed per fold, so built here once (from the context: not saved)
            self._build_neighbourhood(
                context, neighbourhood_reg, neighbourhood_min_rating, neighbourhood_damping
            )
        self.knn_weight, self.knn_k = knn_weight, knn_k
        self.knn_residual_weight, self.knn_residual_shrinkage = knn_residual_weight, knn_residual_shrinkage
        self.knn_residual_space = knn_residual_space
        reads_film_similarity = knn_residual_weight and knn_residual_space == "ratings"
        if knn_weight or reads_film_similarity:
            knn = knn_similarity(context, knn_shrinkage)
        if reads_film_similarity:
            self.register_buffer("film_similarity", torch.from_numpy(knn[0]).float(), persistent=False)
        if knn_weight:
            ratings = knn_baseline_ratings(context, knn_k, knn_shrinkage, knn=knn)
            self.register_buffer("knn_ratings", torch.from_numpy(ratings).float(), persistent=False)
        if knn_residual_weight:
            self.register_buffer("fit_ratings", torch.from_numpy(context.fit.matrix()), persistent=False)
        if cold_baseline_weight:
            baseline = item_baseline_ratings(context)
            self.register_buffer("item_baseline", torch.from_numpy(baseline).float(), persistent=False)
        if self.cold_neighbour_shrinkage is not None:
            rated = context.fit.matrix(binary=True)  # each known user's deviations from the baseline
            deviations = torch.from_numpy(((context.fit.matrix() - baseline) * rated).astype(np.float32))[
                known
            ]
            rated = torch.from_numpy(rated)[known]
            self.register_buffer("known_deviations", deviations, persistent=False)
            self.register_buffer("known_rated", rated, persistent=False)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.l2 = l2
        self.rank_weight = rank_weight
        self.rank_min_rating = rank_min_rating
        self.val_rmse, self.val_mae = MeanSquaredError(squared=False), MeanAbsoluteError()
        self.test_rmse, self.test_mae = MeanSquaredError(squared=False), MeanAbsoluteError()
        self._per_weights: dict[str, object] = {}  # what inference derives from the current weights

    @property
    def net(self) -> HybridRecModel:
        """The first member (sizes, flags and buffers are the same in all)."""
        return self.nets[0]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        ratings = torch.stack([net(users, items) for net in self.nets]).mean(0)
        return self._with_neighbours(users, items, ratings)

    def _with_neighbours(
        self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor
    ) -> torch.Tensor:
        """Blend in, for films with training ratings, the KNN's rating where the user has training
        ratings too, and the cold terms (``_cold_ratings``) where the user is known only by text."""
        user_known = self.net.user_known[users]
        if self.knn_weight or self.knn_residual_weight:
            ratings = self._with_knn(
                ratings,
                self.knn_ratings[users, items] if self.knn_weight else None,
                self._tower_error_neighbours(users, items) if self.knn_residual_weight else None,
                user_known & self.net.item_known[items],
            )
        if not self.cold_share or bool(user_known.all()):
            return ratings
        cold = ~user_known
        cold_users, rows = torch.unique(users[cold], return_inverse=True)
        expected = self._cold_ratings(self.net.user_demographic[cold_users])[rows, items[cold]]
        ratings = ratings.clone()
        ratings[cold] = self._with_cold_ratings(ratings[cold], expected, items[cold])
        return ratings

    def _with_knn(self, ratings, knn, error_neighbours, where: torch.Tensor) -> torch.Tensor:
        """The towers' ``ratings`` with the KNN's share and the towers' neighbouring errors, ``where``
        both user and film have training ratings (the terms not in use are None)."""
        blended = _mix(ratings, knn, self.knn_weight) if self.knn_weight else ratings
        if self.knn_residual_weight:
            blended = blended + self.knn_residual_weight * error_neighbours
        return torch.where(where, blended, ratings)

    @torch.no_grad()
    def _tower_error_neighbours(
        self, users: torch.Tensor, items: torch.Tensor, chunk: int = 4096
    ) -> torch.Tensor:
        """Per (user, film): the similarity-weighted mean of the towers' errors on the ``knn_k`` films
        most like it among those the user rated (shrunk by ``knn_residual_shrinkage``)."""
        errors, similarity = self._tower_errors(), self._residual_similarity()
        parts = [
            neighbour_means(
                similarity,
                self.net.seen[users[at : at + chunk]],
                errors[users[at : at + chunk]],
                items[at : at + chunk],
                self.knn_k,
                self.knn_residual_shrinkage,
            )
            for at in range(0, len(users), chunk)
        ]
        return torch.cat(parts) if parts else errors.new_zeros(0)

    def _residual_similarity(self) -> torch.Tensor:
        """(films, films): how alike two films are for the towers' neighbouring errors: the KNN's
        similarity of their ratings, or (``towers``) the members' mean cosine of their rating vectors."""
        if self.knn_residual_space == "ratings":
            return self.film_similarity

        def members_cosine():
            vectors = _side_by_side([items.rating for _, items in self.frozen()])
            return (vectors @ vectors.T).fill_diagonal_(0.0)  # a film is not its own neighbour

        return self._once_per_weights("residual_similarity", members_cosine)

    def _tower_errors(self) -> torch.Tensor:
        """(users, films): the fitting ratings minus the towers' ratings of them (0 elsewhere), once per weights."""

        def errors_on_fitting_ratings():
            rows, films = self.net.seen.nonzero(as_tuple=True)
            errors = torch.zeros_like(self.fit_ratings)
            errors[rows, films] = self.fit_ratings[rows, films] - self._tower_ratings(rows, films)
            return errors

        return self._once_per_weights("tower_errors", errors_on_fitting_ratings)

    def _with_cold_ratings(self, ratings: torch.Tensor, expected: torch.Tensor, items) -> torch.Tensor:
        """Users known only by text: the share of their ``expected`` ratings (``_cold_ratings``) in their
        ratings of films with training ratings. ``items``: the films of the rating columns (an index,
        or ``slice(None)``: all)."""
        blended = _mix(ratings, expected, self.cold_share)
        return torch.where(self.net.item_known[items], blended, ratings)

    def _cold_ratings(self, texts: torch.Tensor) -> torch.Tensor:
        """(n_texts, n_items) ratings expected of users known by these demographic texts, beside the
        towers': each film's baseline for a user of average bias (moved toward how the nearest known
        users rated it), and those users' own predicted ratings of it, in their shares."""
        weights = self._nearest_known(texts) if self.cold_reads_neighbours else None
        expected = 0.0
        if self.cold_baseline_weight:
            baselines = self.item_baseline.expand(len(texts), -1)
            if self.cold_neighbour_shrinkage is not None:
                support = weights @ self.known_rated + self.cold_neighbour_shrinkage
                baselines = baselines + (weights @ self.known_deviations) / support.clamp_min(1e-12)
            expected = expected + self.cold_baseline_weight * baselines
        if self.cold_neighbour_rating_weight:
            total = weights.sum(1, keepdim=True)  # (no similar user at all: every known user alike)
            weights = torch.where(total > 0, weights / total.clamp_min(1e-12), 1.0 / weights.shape[1])
            expected = expected + self.cold_neighbour_rating_weight * (weights @ self._known_ratings())
        return expected / self.cold_share

    def _known_ratings(self) -> torch.Tensor:
        """(known users, films): every known user's predicted rating of every film, once per weights."""

        def rate_every_film():
            users = self.net.user_known.nonzero().squeeze(1)
            towers = torch.stack(
                [net.rate_all(fu[users], fi) for net, (fu, fi) in zip(self.nets, self.frozen(), strict=True)]
            ).mean(0)
            error_neighbours = None
            if self.knn_residual_weight:
                error_neighbours = every_film_neighbour_means(
                    self._residual_similarity(),
                    self.net.seen[users],
                    self._tower_errors()[users],
                    self.knn_k,
                    self.knn_residual_shrinkage,
                )
            knn = self.knn_ratings[users] if self.knn_weight else None
            return clip_ratings(self._with_knn(towers, knn, error_neighbours, self.net.item_known[None, :]))

        return self._once_per_weights("known_ratings", rate_every_film)

    def training_step(self, batch, batch_idx):
        self._per_weights.clear()
        users, items, ratings = batch
        rating = rank = penalty = 0.0
        for net in self.nets:
            losses = net.training_losses(users, items, ratings, self.rank_min_rating)
            rating = rating + losses["rating"]
            if self.rank_weight:
                rank = rank + losses["rank"]
            if self.l2:
                penalty = penalty + net.id_penalty(users, items)
        k = len(self.nets)
        loss = (rating + self.rank_weight * rank + self.l2 * penalty) / k
        if self.rank_weight:
            self.log("train/rank_loss", rank / k, on_step=False, on_epoch=True, batch_size=len(ratings))
        self.log("train/rating_loss", rating / k, on_step=False, on_epoch=True, batch_size=len(ratings))
        self.log(TRAIN_LOSS, loss, on_step=False, on_epoch=True, batch_size=len(ratings))
        return loss

    def _evaluate(self, batch, rmse, mae, names):
        users, items, ratings = batch
        predicted = clip_ratings(self(users, items))
        rmse.update(predicted, ratings)
        mae.update(predicted, ratings)
        self.log(names[0], rmse, on_step=False, on_epoch=True, batch_size=len(ratings))
        self.log(names[1], mae, on_step=False, on_epoch=True, batch_size=len(ratings))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_rmse, self.val_mae, (VAL_RMSE, VAL_MAE))

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_rmse, self.test_mae, (TEST_RMSE, TEST_MAE))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        try:  # schedules over the whole run (OneCycleLR) need its length in steps
            scheduler = self.scheduler_factory(
                optimizer=optimizer, total_steps=self.trainer.estimated_stepping_batches
            )
        except TypeError:
            scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def load_state_dict(self, *args, **kwargs):
        self._per_weights.clear()
        return super().load_state_dict(*args, **kwargs)

    # --- inference -------------------------------------------------------------------------------

    @torch.no_grad()
    def _once_per_weights(self, name: str, compute: Callable):
        """``compute()`` in eval mode, kept until the weights change (a training step, a load)."""
        if name in self._per_weights and not self.training:
            return self._per_weights[name]
        with _eval_mode(self):
            value = compute()
        if not self.training:
            self._per_weights[name] = value
        return value

    def frozen(self) -> list[tuple[Encoded, Encoded]]:
        """Each member's tower outputs for every known user and every item, computed once per weights."""

        def encode_all():
            users = torch.arange(self.net.n_users, device=self.device)
            items = torch.arange(self.net.n_items, device=self.device)
            return [(net.encode_users(users), net.encode_items(items)) for net in self.nets]

        return self._once_per_weights("towers", encode_all)

    def warm_up(self) -> None:
        """Derive now, not on the first request, what inference reads from the weights: every tower
        output, (``knn_residual_weight``) the towers' errors on the fitting ratings and the films'
        similarity they are read by, and (``cold_neighbour_rating_weight``) the known users' predicted
        ratings, which new users borrow."""
        self.frozen()
        if self.knn_residual_weight:
            self._tower_errors()
            self._residual_similarity()
        if self.cold_neighbour_rating_weight:
            self._known_ratings()

    def _rank(self, net: HybridRecModel, users: Encoded, items: Encoded) -> torch.Tensor:
        """A member's ranking scores as log-probabilities, so members average on one scale."""
        scores = net.rank_all(users, items)
        return F.log_softmax(scores, dim=1) if net.ranking else scores

    @torch.no_grad()
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = torch.as_tensor(users, device=self.device)
        i = torch.as_tensor(items, device=self.device)
        known = None if self.training else self._per_weights.get("known_ratings")
        user_known = self.net.user_known
        if known is not None and bool(user_known[u].all()):  # derived already (a warm service): a lookup
            return known[(user_known.cumsum(0) - 1)[u], i].cpu().numpy()
        return clip_ratings(self._with_neighbours(u, i, self._tower_ratings(u, i))).cpu().numpy()

    def _tower_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The members' mean rating of aligned (user, film) rows, from the towers alone."""
        rated = [
            net.rate(fu[users], fi[items]) for net, (fu, fi) in zip(self.nets, self.frozen(), strict=True)
        ]
        return torch.stack(rated).mean(0)

    @torch.no_grad()
    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        u = torch.as_tensor(users, device=self.device)
        scores = [self._rank(net, fu[u], fi) for net, (fu, fi) in zip(self.nets, self.frozen(), strict=True)]
        scores = torch.stack(scores).mean(0)
        if self.uses_neighbourhood:
            scores = _standardise(scores) + self._neighbour_evidence()[u]
        return scores.cpu().numpy()

    @torch.no_grad()
    def text_user_scores(self, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ratings, ranking scores) over the catalog for new users known by embedded texts."""
        content = torch.as_tensor(content, dtype=torch.float32, device=self.device)
        ratings, ranks = [], []
        for net, (_, items) in zip(self.nets, self.frozen(), strict=True):
            users = net.encode_user_content(content)
            ratings.append(net.rate_all(users, items))
            ranks.append(self._rank(net, users, items))
        rank = torch.stack(ranks).mean(0)
        if self.uses_neighbourhood:
            rank = _standardise(rank) + self._text_neighbours(content)
        rating = torch.stack(ratings).mean(0)
        if self.cold_share:
            rating = self._with_cold_ratings(rating, self._cold_ratings(content), slice(None))
        return clip_ratings(rating).cpu().numpy(), rank.cpu().numpy()

    def _build_neighbourhood(
        self, context: FoldContext, reg: float, min_rating: float, damping: float
    ) -> None:
        """Every known user's neighbourhood evidence, precomputed: item-item over the films they rated
        at or above ``min_rating`` and over those they liked. Users without history (and free texts)
        get the same films of their nearest users by demographic text (rows damped by their number of
        ratings) once the towers are trained, from the known users' texts and rows kept here."""
        chosen, liked = liked_matrix(context, min_rating), liked_matrix(context)
        known = self.net.user_known.cpu()
        ratings_per_user = np.bincount(context.fit.users, minlength=context.n_users)[known.numpy()]
        vote = torch.from_numpy(1.0 / np.maximum(ratings_per_user, 1) ** damping).float()[:, None]
        self.register_buffer("known_chosen", torch.from_numpy(chosen).float()[known] * vote, persistent=False)
        self.register_buffer("known_liked", torch.from_numpy(liked).float()[known] * vote, persistent=False)
        evidence = self._neighbourhood(
            lambda x: torch.from_numpy(x @ ease_weights(x, reg)).float(), chosen, liked
        )
        self.register_buffer("neighbour_evidence", evidence, persistent=False)

    def _neighbour_evidence(self) -> torch.Tensor:
        """Every user's evidence, once per weights: the precomputed item-item term, or (users without
        history) the films of their nearest known users, which depend on the towers' weights."""

        def fill_users_without_history():
            evidence = self.neighbour_evidence.clone()
            cold = ~self.net.user_known
            if cold.any():
                evidence[cold] = self._text_neighbours(self.net.user_demographic[cold])
            return evidence

        return self._once_per_weights("neighbour_evidence", fill_users_without_history)

    def _text_neighbours(self, texts: torch.Tensor) -> torch.Tensor:
        weights = self._nearest_known(texts)
        return self._neighbourhood(lambda films: weights @ films, self.known_chosen, self.known_liked)

    def _nearest_known(self, texts: torch.Tensor) -> torch.Tensor:
        """(n_texts, n_known users) similarity weights of each text's ``neighbourhood_users`` nearest."""
        known = self._once_per_weights("known_keys", lambda: self._neighbour_keys(self.known_texts))
        return text_neighbour_weights(self._neighbour_keys(texts), known, self.neighbourhood_users)

    @torch.no_grad()
    def _neighbour_keys(self, texts: torch.Tensor) -> torch.Tensor:
        """The vectors nearest users are found by: the text embeddings, or (``towers``) each member's
        unit ranking vector (rating vector without a ranking head) of the texts alone, side by side."""
        if self.neighbourhood_space == "text":
            return texts
        keys = []
        with _eval_mode(self):
            for net in self.nets:
                encoded = net.encode_user_content(texts)
                keys.append(F.normalize(encoded.ranking if net.ranking else encoded.rating, dim=1, eps=1e-8))
        return torch.cat(keys, dim=1)

    def _neighbourhood(self, scores_of: Callable, chosen, liked) -> torch.Tensor:
        """The terms in use, each standardised per user, in their shares: ``scores_of`` the films
        chosen (rated >= ``neighbourhood_min_rating``) and of the films liked."""
        evidence = 0.0
        for weight, films in ((self.neighbourhood_weight, chosen), (self.liked_neighbourhood_weight, liked)):
            if weight:
                evidence = evidence + weight * _standardise(scores_of(films))
        return evidence

    @torch.no_grad()
    def text_item_ratings(self, content: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Predicted ratings of a new item, known by an embedded text, for the given known users."""
        content = torch.as_tensor(content, dtype=torch.float32, device=self.device)
        u = torch.as_tensor(users, device=self.device)
        ratings = [
            net.rate_all(known[u], net.encode_item_content(content))[:, 0]
            for net, (known, _) in zip(self.nets, self.frozen(), strict=True)
        ]
        return clip_ratings(torch.stack(ratings).mean(0)).cpu().numpy()

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        """Unit-length item representations (the ranking halves, else the rating halves) of all members,
        side by side: their dot product is the members' mean cosine."""
        halves = [
            (items.ranking if items.ranking is not None else items.rating) for _, items in self.frozen()
        ]
        return _side_by_side([half.double() for half in halves]).cpu().numpy()


def _side_by_side(members: list[torch.Tensor]) -> torch.Tensor:
    """Each member's rows at unit length, side by side, scaled so that the dot product of two rows
    is the members' mean cosine."""
    return torch.cat([F.normalize(rows, dim=1) for rows in members], dim=1) / np.sqrt(len(members))


@contextmanager
def _eval_mode(module: nn.Module):
    """``module`` in eval mode (no dropout, no random cold starts) for the block, then as it was."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _mix(ratings: torch.Tensor, other: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight`` of ``other`` and the rest of ``ratings``."""
    return (1 - weight) * ratings + weight * other


def _standardise(scores: torch.Tensor) -> torch.Tensor:
    """Each row to mean 0 and std 1 (a constant row, e.g. an empty history, to zeros)."""
    centred = scores - scores.mean(1, keepdim=True)
    std = centred.std(1, keepdim=True)
    return torch.where(std > 0, centred / std.clamp_min(1e-12), torch.zeros_like(centred))
