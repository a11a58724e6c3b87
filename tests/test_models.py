"""HybridRecModel, its towers and rating mappings, on small hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT

from hybridrec.data.context import build_fold_context
from hybridrec.data.splits import canonical_fold, cold_user_fold
from hybridrec.embedders.hashing import HashingEmbedder
from hybridrec.models.history import RatingHistories
from hybridrec.models.hybrid import HybridRecModel
from hybridrec.models.mappings import (
    AffineMapping,
    LinearMapping,
    OrdinalMapping,
    SigmoidMapping,
    SquareMapping,
)
from hybridrec.models.towers import Tower


def test_fixed_mappings_match_their_formulas():
    sim = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    zero = torch.zeros(4)
    assert SquareMapping()(sim, zero).tolist() == [5.0, 1.0, 2.0, 5.0]
    assert LinearMapping()(sim, zero).tolist() == [1.0, 3.0, 4.0, 5.0]
    assert LinearMapping()(sim, torch.full((4,), 0.5)).tolist() == [1.5, 3.5, 4.5, 5.5]


def test_learnable_mappings_start_at_the_mean():
    sigmoid, affine = SigmoidMapping(), AffineMapping()
    sigmoid.init_from_ratings(np.array([3.0, 4.0, 3.59]))
    affine.init_from_ratings(np.array([3.0, 4.0, 3.59]))
    zero = torch.zeros(1)
    assert sigmoid(zero, zero).item() == pytest.approx(3.53, abs=1e-5)
    assert affine(zero, zero).item() == pytest.approx(3.53, abs=1e-5)
    extreme = sigmoid(torch.tensor([-1.0, 1.0]), torch.tensor([-100.0, 100.0]))
    assert extreme.min().item() >= 1.0 and extreme.max().item() <= 5.0
    assert len(list(sigmoid.parameters())) == 2 and not list(SquareMapping().parameters())


def test_ordinal_mapping_starts_at_the_star_shares_and_scores_their_likelihood():
    ratings = np.array([1, 2, 3, 3, 4, 4, 4, 5, 5, 5], dtype=np.float32)
    ordinal = OrdinalMapping(nll_weight=0.5)
    ordinal.init_from_ratings(ratings)
    zero = torch.zeros(1)
    thresholds = ordinal.thresholds().detach().numpy()
    assert np.all(np.diff(thresholds) > 0)
    # at z = 0 the star probabilities are the training shares, so the rating is their mean
    cumulative = 1 / (1 + np.exp(-thresholds))  # P(rating <= k)
    assert np.allclose(cumulative, [0.1, 0.2, 0.4, 0.7], atol=2e-3)
    assert ordinal(zero, zero).item() == pytest.approx(ratings.mean(), abs=1e-2)
    extreme = ordinal(torch.tensor([-1.0, 1.0]), torch.tensor([-100.0, 100.0]))
    assert extreme.tolist() == pytest.approx([1.0, 5.0], abs=1e-4)
    # the loss, recomputed by hand: squared error of the expectation + weight * -log P(observed star)
    sim, offset, target = torch.tensor([0.3, -0.2]), torch.tensor([0.1, 0.0]), torch.tensor([4.0, 2.0])
    z = (ordinal.scale * sim + offset).detach().numpy()
    below = 1 / (1 + np.exp(-(thresholds[None, :] - z[:, None])))  # P(rating <= k), k = 1..4
    probs = np.diff(np.concatenate([np.zeros((2, 1)), below, np.ones((2, 1))], axis=1), axis=1)
    expected = (probs * np.arange(1, 6)).sum(1)
    nll = -np.log(probs[[0, 1], [3, 1]]).mean()
    by_hand = np.mean((expected - target.numpy()) ** 2) + 0.5 * nll
    assert ordinal.loss(sim, offset, target).item() == pytest.approx(by_hand, rel=1e-5)
    assert ordinal(sim, offset).detach().numpy() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("depth", "taper", "widths"), [(0, False, []), (2, False, [64, 64]), (2, True, [64, 32])]
)
def test_tower_layers(depth, taper, widths):
    tower = Tower(in_dim=10, hidden=64, depth=depth, out_dim=8, taper=taper)
    linears = [m for m in tower.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [*widths, 8]
    assert tower(torch.randn(3, 10)).shape == (3, 8)


def test_tower_reads_column_blocks_as_one_input():
    """Blocks are read with their slices of the first layer: the same map as on the joined columns."""
    tower = Tower(in_dim=10, hidden=16, depth=1, out_dim=4).eval()
    frozen, trained = torch.randn(5, 7), torch.randn(5, 3, requires_grad=True)
    out = tower(frozen, trained)
    assert torch.allclose(out, tower.net(torch.cat([frozen, trained], 1)), atol=1e-6)
    out.sum().backward()
    assert trained.grad is not None and frozen.grad is None


@pytest.mark.parametrize("side", ["user", "item"])
def test_history_bags_are_the_dense_products(side):
    """The sparse bag and its gradient equal the dense history matrix's product and gradient."""
    generator = torch.Generator().manual_seed(0)
    n_users, n_items = 6, 9
    cells = torch.randperm(n_users * n_items, generator=generator)[:20]
    users, items = cells // n_items, cells % n_items
    weights = torch.rand(20, generator=generator)
    histories = RatingHistories(n_users, n_items)
    histories.attach(users, items)
    rows, cols = (users, items) if side == "user" else (items, users)
    dense = torch.zeros(histories.shapes[side]).index_put_((rows, cols), weights)
    table = torch.randn(dense.shape[1], 3, generator=generator, requires_grad=True)
    grad = torch.randn(dense.shape[0], 3, generator=generator)
    (sparse_grad,) = torch.autograd.grad(histories.bag(side, weights, table), table, grad)
    (dense_grad,) = torch.autograd.grad(dense @ table, table, grad)
    assert torch.allclose(histories.bag(side, weights, table), dense @ table, atol=1e-6)
    assert torch.allclose(sparse_grad, dense_grad, atol=1e-6)


def _model(context, **kwargs):
    args = dict(hidden=16, depth=1, out_dim=8, id_emb_dim=4)
    args.update(kwargs)
    model = HybridRecModel(context.n_users, context.n_items, context.embeddings.dim, SigmoidMapping(), **args)
    model.attach(context)
    return model


@pytest.fixture(scope="module")
def context(movielens):
    return build_fold_context(movielens, canonical_fold(movielens, 1).train, HashingEmbedder(dim=24))


def test_towers_run_once_per_distinct_user_and_item(context):
    model = _model(context).eval()
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = inputs[0].shape[0]

        return hook

    model.user_tower.register_forward_hook(record("users"))
    model.item_tower.register_forward_hook(record("items"))
    users = torch.tensor([0, 0, 1, 1, 2, 0])
    items = torch.tensor([5, 6, 5, 5, 7, 6])
    ratings = model(users, items)
    assert ratings.shape == (6,)
    assert seen == {"users": 3, "items": 3}
    assert ratings[0].item() == pytest.approx(model(users[:1], items[:1]).item(), abs=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id_emb_dim": 0, "implicit": False, "biases": False},  # the pure content model
        {"content": False},  # IDs only
        {"implicit": False},
        {"explicit": True},
        {"liked": True},
        {"scales": True},
        {"ranking": True},
        {"depth": 0},  # linear towers
    ],
)
def test_model_variants_predict(context, kwargs):
    model = _model(context, **kwargs)
    out = model(torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert out.shape == (2,) and torch.isfinite(out).all()
    out.sum().backward()


@pytest.mark.parametrize("bag", ["implicit", "explicit", "liked"])
def test_each_history_bag_is_a_tower_input(context, bag):
    """Every bag switched on gets its tables and widens the towers' input by one ID embedding."""
    flags = {"implicit": False, "explicit": False, "liked": False}
    plain, with_bag = _model(context, **flags), _model(context, **{**flags, bag: True})
    assert bag in with_bag.user_bags and bag in with_bag.item_bags and not plain.user_bags
    widths = [m.user_tower.net[0].in_features for m in (plain, with_bag)]
    assert widths[1] - widths[0] == with_bag.id_dim


def test_model_needs_some_input(context):
    with pytest.raises(ValueError, match="content embeddings or ID"):
        _model(context, content=False, id_emb_dim=0)


def test_cold_users_read_their_demographic_text_only(movielens):
    split = cold_user_fold(movielens, 1)
    context = build_fold_context(movielens, split.train, HashingEmbedder(dim=24))
    model = _model(context).eval()
    cold = int(movielens.user_index.to_index(split.cold_users[:1])[0])
    assert not model.user_known[cold]
    encoded = model.encode_users(torch.tensor([cold]))
    by_text = model.encode_user_content(torch.from_numpy(context.embeddings.user_demographic[[cold]]))
    assert torch.allclose(encoded.rating, by_text.rating) and torch.allclose(encoded.bias, by_text.bias)


@pytest.mark.parametrize("scales", [False, True])
def test_rate_all_agrees_with_rate(context, scales):
    model = _model(context, scales=scales).eval()
    if scales:  # different scales per row, so a mix-up of rows or axes shows
        with torch.no_grad():
            model.user_scale.weight.normal_(std=0.5)
            model.item_scale.weight.normal_(std=0.5)
    with torch.no_grad():
        users = model.encode_users(torch.arange(3))
        items = model.encode_items(torch.arange(4))
        matrix = model.rate_all(users, items)
        pairs = model.rate(users[[1]], items[[2]])
    assert matrix.shape == (3, 4)
    assert matrix[1, 2].item() == pytest.approx(pairs.item(), abs=1e-5)


def test_scales_stretch_a_users_ratings_around_the_biases(context):
    """A user's scale multiplies the cosine the mapping reads: at log 2 the spread doubles; new users
    and dropped IDs take the unknown row's scale."""
    model = _model(context, scales=True).eval()
    users, items = torch.tensor([0]), torch.arange(5)
    with torch.no_grad():
        before, _ = model._similarity(model.encode_users(users)[[0] * 5], model.encode_items(items))
        model.user_scale.weight[0] = np.log(2.0)
        after, _ = model._similarity(model.encode_users(users)[[0] * 5], model.encode_items(items))
        torch.testing.assert_close(after, 2 * before)
        model.user_scale.weight[context.n_users] = 0.7
        text = model.encode_user_content(torch.from_numpy(context.embeddings.user_demographic[:2]))
    assert torch.allclose(text.scale, torch.tensor([0.7, 0.7]))


def test_id_dropout_is_off_in_eval(context):
    model = _model(context, id_dropout=0.9, cold_start_rate=0.9).eval()
    a = model(torch.tensor([0, 1]), torch.tensor([2, 3]))
    b = model(torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert torch.equal(a, b)
    assert not math.isnan(float(np.asarray(a.detach()).sum()))


def test_training_hides_the_batch_ratings_from_the_history_bags(context):
    """A target rating must not be readable from the histories: removing it changes nothing else."""
    model = _model(context, implicit=True, explicit=True, liked=True, dropout=0.0).eval()
    users = torch.from_numpy(context.fit.users[:5])
    items = torch.from_numpy(context.fit.items[:5])
    positions = model.rating_index[users, items]
    assert (positions >= 0).all()
    full = model.encode_users(torch.unique(users))
    hidden = model.encode_users(torch.unique(users), hidden=positions)
    assert not torch.allclose(hidden.rating, full.rating, atol=1e-5), "the hidden ratings count"
    for bag in model.bags:
        name = f"user_{bag}"
        setattr(model, name, getattr(model, name).index_fill(0, positions, 0.0))
    recomputed = model.encode_users(torch.unique(users))
    assert torch.allclose(hidden.rating, recomputed.rating, atol=1e-5)


def test_ranking_loss_ignores_the_rest_of_the_history(context):
    model = _model(context, ranking=True).eval()
    users = torch.from_numpy(context.fit.users[:64])
    items = torch.from_numpy(context.fit.items[:64])
    ratings = torch.full((64,), 5.0)
    losses = model.training_losses(users, items, ratings)
    assert set(losses) == {"rating", "rank"} and torch.isfinite(losses["rank"])


def test_ranking_scores_are_scaled_cosine_plus_prior(context):
    """Known users read the item prior, users known only by text the cold prior."""
    model = _model(context, ranking=True).eval()
    with torch.no_grad():
        model.item_cold_prior.weight.normal_()
        users = model.encode_users(torch.arange(4))
        users.cold = torch.tensor([False, True, False, True])
        items = model.encode_items(torch.arange(model.n_items))
        scores = model.rank_all(users, items)
    cosine = (
        torch.nn.functional.normalize(users.ranking, dim=1)
        @ torch.nn.functional.normalize(items.ranking, dim=1).T
    )
    prior = torch.where(users.cold[:, None], items.cold_prior[None], items.prior[None])
    assert torch.allclose(scores, model.rank_scale * cosine + prior, atol=1e-5)


def test_training_step_runs_in_bf16_mixed_precision(context):
    """``trainer.precision=bf16-mixed`` autocasts the step; the sparse history products stay float32."""
    model = _model(context, ranking=True, implicit=True, liked=True).train()
    users = torch.from_numpy(context.fit.users[:64])
    items = torch.from_numpy(context.fit.items[:64])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.training_losses(users, items, torch.tensor(context.fit.ratings[:64]))
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.user_bags["implicit"].weight.grad.abs().sum() > 0


def _lit(context, **kwargs):
    from functools import partial

    from hybridrec.models.lit_module import HybridRecLitModule

    torch.manual_seed(0)
    return HybridRecLitModule(
        context,
        SigmoidMapping,
        partial(torch.optim.AdamW),
        rank_weight=1.0,
        hidden=16,
        depth=1,
        out_dim=8,
        id_emb_dim=4,
        **kwargs,
    ).eval()


def test_neighbourhood_term_adds_ease_to_the_towers_ranking(movielens):
    from hybridrec.models.baselines import EASE

    # a cold-user fold, so some users have no liked ratings to draw neighbours from
    context = build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))
    towers = _lit(context)
    blended = _lit(context, neighbourhood_weight=0.5, neighbourhood_reg=50.0, neighbourhood_users=100)
    ease = EASE(context, reg=50.0).fit(context)
    users = np.arange(context.n_users)

    def standardise(x):
        x = x - x.mean(1, keepdims=True)
        return x / x.std(1, ddof=1, keepdims=True)

    expected = standardise(towers.rank_scores(users)) + 0.5 * standardise(ease.rank_scores(users))
    liked = ease.interactions.numpy().sum(1) > 0
    assert liked.any() and (~liked).any()
    np.testing.assert_allclose(blended.rank_scores(users)[liked], expected[liked], atol=1e-4)
    # users without history: the films liked by their nearest known users by demographic text
    cold = ~blended.net.user_known.numpy()
    assert cold.any() and not liked[cold].any()
    texts = context.embeddings.user_demographic / np.linalg.norm(
        context.embeddings.user_demographic, axis=1, keepdims=True
    )
    x = ease.interactions.numpy()

    def nearest_users_films(user, interactions, unit_keys=texts):
        """By hand: the films of the user's 100 nearest known users, weighted by the cosine of their
        keys (unit vectors; by default the text embeddings)."""
        similarity = unit_keys[~cold] @ unit_keys[user]
        nearest = np.argsort(-similarity)[:100]
        return (np.maximum(similarity[nearest], 0) @ interactions[~cold][nearest])[None]

    def check_users_known_by_text(model, evidence_of):
        for user in np.flatnonzero(cold)[:3]:
            row = standardise(towers.rank_scores(users[[user]])) + evidence_of(user)
            np.testing.assert_allclose(model.rank_scores(users[[user]]), row, atol=1e-4)
            by_text = model.text_user_scores(context.embeddings.user_demographic[[user]])[1]
            np.testing.assert_allclose(by_text, row, atol=1e-4)

    check_users_known_by_text(blended, lambda user: 0.5 * standardise(nearest_users_films(user, x)))
    # damped: each neighbour's films weigh 1 / sqrt(their number of ratings)
    damped = _lit(
        context,
        neighbourhood_weight=0.5,
        neighbourhood_reg=50.0,
        neighbourhood_users=100,
        neighbourhood_damping=0.5,
    )
    ratings_per_user = np.bincount(context.fit.users, minlength=context.n_users)
    assert len(set(ratings_per_user[~cold])) > 1
    x_damped = x / np.sqrt(np.maximum(ratings_per_user, 1))[:, None]
    check_users_known_by_text(damped, lambda user: 0.5 * standardise(nearest_users_films(user, x_damped)))
    np.testing.assert_allclose(damped.rank_scores(users)[liked], expected[liked], atol=1e-4)
    with pytest.raises(ValueError, match="neighbourhood_damping"):
        _lit(context, neighbourhood_weight=0.5, neighbourhood_damping=-1.0)
    # nearest in the towers' space: cosine of the members' text-only ranking vectors side by side
    towers_space = _lit(
        context,
        neighbourhood_weight=0.5,
        neighbourhood_reg=50.0,
        neighbourhood_users=100,
        neighbourhood_space="towers",
    )
    with torch.no_grad():
        keys = np.concatenate(
            [
                torch.nn.functional.normalize(
                    net.encode_user_content(torch.from_numpy(context.embeddings.user_demographic)).ranking,
                    dim=1,
                ).numpy()
                for net in towers_space.nets
            ],
            axis=1,
        )
    keys /= np.sqrt(len(towers_space.nets))  # unit length side by side: their cosine is the members' mean
    assert not np.allclose(keys @ keys.T, texts @ texts.T, atol=1e-2)  # another notion of nearness
    check_users_known_by_text(
        towers_space, lambda user: 0.5 * standardise(nearest_users_films(user, x, unit_keys=keys))
    )
    np.testing.assert_allclose(towers_space.rank_scores(users)[liked], expected[liked], atol=1e-4)
    with pytest.raises(ValueError, match="neighbourhood_space"):
        _lit(context, neighbourhood_weight=0.5, neighbourhood_space="ids")
    # a second term over the liked ratings, beside one over every rating: item-item for users with
    # a history, their nearest users' films for the others
    both = _lit(
        context,
        neighbourhood_weight=0.5,
        neighbourhood_reg=50.0,
        neighbourhood_users=100,
        neighbourhood_min_rating=1.0,
        liked_neighbourhood_weight=0.3,
    )
    chosen = EASE(context, reg=50.0, threshold=1.0).fit(context)
    expected = (
        standardise(towers.rank_scores(users))
        + 0.5 * standardise(chosen.rank_scores(users))
        + 0.3 * standardise(ease.rank_scores(users))
    )
    np.testing.assert_allclose(both.rank_scores(users)[liked], expected[liked], atol=1e-4)
    rated = chosen.interactions.numpy()
    check_users_known_by_text(
        both,
        lambda user: (
            0.5 * standardise(nearest_users_films(user, rated))
            + 0.3 * standardise(nearest_users_films(user, x))
        ),
    )
    with pytest.raises(ValueError, match="neighbourhood"):
        _lit(context, neighbourhood_weight=-1.0)
    with pytest.raises(ValueError, match="neighbourhood"):
        _lit(context, liked_neighbourhood_weight=-0.1)


def _knn_by_hand(context, user: int, item: int, k: int, shrinkage: float) -> float:
    """KNNBaseline's rating of one pair, straight from its definition: loops, no matrices."""
    from hybridrec.models.neighbourhood import fit_biases

    fit = context.fit
    user_bias, item_bias = fit_biases(context, 15.0, 10.0)

    def baseline(u, i):
        return context.global_mean + user_bias[u] + item_bias[i]

    residuals: dict[int, dict[int, float]] = {}  # film -> {rater: residual}
    for u, i, r in zip(fit.users, fit.items, fit.ratings, strict=True):
        residuals.setdefault(int(i), {})[int(u)] = float(r) - baseline(u, i)

    def similarity(i, j):
        common = set(residuals.get(i, {})) & set(residuals.get(j, {}))
        num = sum(residuals[i][u] * residuals[j][u] for u in common)
        den = math.sqrt(sum(residuals[i][u] ** 2 for u in common) * sum(residuals[j][u] ** 2 for u in common))
        n = max(len(common) - 1, 0)
        return 0.0 if den == 0 else num / den * n / (n + shrinkage)

    rated = [j for j, raters in residuals.items() if user in raters and j != item]
    nearest = sorted(((similarity(item, j), residuals[j][user]) for j in rated), reverse=True)[:k]
    positive = [(s, r) for s, r in nearest if s > 0]
    shift = sum(s * r for s, r in positive) / sum(s for s, _ in positive) if positive else 0.0
    return baseline(user, item) + shift


def test_knn_baseline_follows_its_definition(context):
    from hybridrec.models.neighbourhood import knn_baseline_ratings

    ratings = knn_baseline_ratings(context, k=5, shrinkage=10.0)
    rng = np.random.default_rng(0)
    for user, item in zip(
        rng.integers(0, context.n_users, 25), rng.integers(0, context.n_items, 25), strict=True
    ):
        assert ratings[user, item] == pytest.approx(_knn_by_hand(context, user, item, 5, 10.0), abs=1e-9)


def test_knn_baseline_matches_surprise(context):
    surprise = pytest.importorskip("surprise")
    from hybridrec.models.neighbourhood import knn_baseline_ratings

    fit = context.fit
    frame = {"user": fit.users, "item": fit.items, "rating": fit.ratings}
    import pandas as pd

    trainset = surprise.Dataset.load_from_df(
        pd.DataFrame(frame), surprise.Reader(rating_scale=(1, 5))
    ).build_full_trainset()
    reference = surprise.KNNBaseline(
        k=20,
        sim_options={"name": "pearson_baseline", "user_based": False, "shrinkage": 100},
        bsl_options={"method": "als", "reg_i": 10, "reg_u": 15, "n_epochs": 10},
        verbose=False,
    ).fit(trainset)
    ours = knn_baseline_ratings(context, k=20, shrinkage=100.0)
    # pairs the user has not rated (on those Surprise counts the film as its own nearest neighbour)
    seen = set(zip(fit.users.tolist(), fit.items.tolist(), strict=True))
    pairs = [
        (u, i) for u in np.unique(fit.users)[:40] for i in np.unique(fit.items)[:40] if (u, i) not in seen
    ]
    expected = [reference.predict(u, i, clip=False).est for u, i in pairs]
    users, items = np.array(pairs).T
    np.testing.assert_allclose(ours[users, items], expected, atol=1e-6)


def test_knn_share_joins_the_ratings_of_known_users_and_films(movielens):
    context = build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))
    towers = _lit(context)
    blended = _lit(context, knn_weight=0.3, knn_k=5)
    users = np.arange(context.n_users)
    items = (users * 7) % context.n_items
    known = blended.net.user_known.numpy() & blended.net.item_known.numpy()[items]
    assert known.any() and (~known).any()
    knn = blended.knn_ratings.numpy()[users, items]
    expected = np.where(
        known, np.clip(0.7 * towers.predict(users, items) + 0.3 * knn, 1, 5), towers.predict(users, items)
    )
    np.testing.assert_allclose(blended.predict(users, items), expected, atol=1e-5)
    # the Lightning evaluation path (validation and test metrics) predicts the same
    forward = blended(torch.as_tensor(users), torch.as_tensor(items)).clamp(1, 5).detach().numpy()
    np.testing.assert_allclose(forward, expected, atol=1e-5)
    with pytest.raises(ValueError, match="knn_weight"):
        _lit(context, knn_weight=1.5)


@pytest.mark.parametrize("space", ["ratings", "towers"])
def test_knn_residual_share_adds_the_towers_errors_on_the_most_similar_rated_films(movielens, space):
    """``knn_residual_weight``: the towers' errors on the fitting ratings, averaged over the ``knn_k``
    rated films most like the one asked (positive similarities, over their sum plus the shrinkage),
    corrects the ratings of known users and films; the Lightning path agrees. ``knn_residual_space``:
    alike by the KNN's similarity of ratings, or by the members' mean cosine of the films' rating vectors."""
    from hybridrec.models.neighbourhood import knn_similarity

    context = build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))
    k, shrinkage, members = 4, 0.5, 2
    residual = dict(
        knn_residual_weight=0.5, knn_k=k, knn_residual_shrinkage=shrinkage, knn_residual_space=space
    )
    towers = _lit(context, members=members)
    model = _lit(context, members=members, **residual)
    fit = context.fit
    errors = np.zeros((context.n_users, context.n_items))
    errors[fit.users, fit.items] = fit.ratings - towers.predict(fit.users, fit.items)
    if space == "ratings":
        similarity = knn_similarity(context, 100.0)[0]
    else:
        towers.eval()
        unit = [F.normalize(items.rating, dim=1).detach().numpy() for _, items in towers.frozen()]
        similarity = sum(u @ u.T for u in unit) / members
        np.fill_diagonal(similarity, 0.0)
    users = np.arange(context.n_users)
    items = (users * 7) % context.n_items
    base = towers.predict(users, items)
    expected = base.copy()
    for row, (user, item) in enumerate(zip(users, items, strict=True)):
        rated = np.flatnonzero(fit.users == user)
        if len(rated) == 0 or not context.item_known[item]:
            continue
        films = fit.items[rated]
        nearest = films[np.argsort(-similarity[item, films], kind="stable")[:k]]
        weights = np.clip(similarity[item, nearest], 0, None)
        correction = (weights * errors[user, nearest]).sum() / (weights.sum() + shrinkage)
        expected[row] = np.clip(base[row] + 0.5 * correction, 1, 5)
    moved = np.abs(expected - base) > 1e-3
    assert moved.sum() > 10 and (~context.user_known[users]).any()
    np.testing.assert_allclose(model.predict(users, items), expected, atol=1e-4)
    forward = model(torch.as_tensor(users), torch.as_tensor(items)).clamp(1, 5).detach().numpy()
    np.testing.assert_allclose(forward, expected, atol=1e-4)
    # a service derives the errors with the tower outputs when it loads, not on its first request
    fresh = _lit(context, members=members, **residual).eval()
    fresh.warm_up()
    assert {"towers", "tower_errors"} <= set(fresh._per_weights)
    assert ("residual_similarity" in fresh._per_weights) == (space == "towers")
    assert hasattr(fresh, "film_similarity") == (space == "ratings")  # not built where not read
    with pytest.raises(ValueError, match="knn_residual_weight"):
        _lit(context, knn_residual_weight=-0.1)
    with pytest.raises(ValueError, match="knn_residual_space"):
        _lit(context, knn_residual_weight=0.5, knn_residual_space="text")


def test_cold_baseline_share_joins_the_ratings_of_users_known_only_by_text(movielens):
    from hybridrec.models.neighbourhood import fit_biases

    context = build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))
    towers = _lit(context)
    blended = _lit(context, cold_baseline_weight=0.4)
    users = np.arange(context.n_users)
    items = (users * 7) % context.n_items
    cold = ~blended.net.user_known.numpy() & blended.net.item_known.numpy()[items]
    assert cold.any() and (~cold).any()
    user_bias, item_bias = fit_biases(context, 15.0, 10.0)
    # the film's baseline for a user of average bias over the fitting ratings (not b_u = 0)
    baseline = context.global_mean + item_bias + user_bias[context.fit.users].mean()
    expected = np.where(
        cold,
        np.clip(0.6 * towers.predict(users, items) + 0.4 * baseline[items], 1, 5),
        towers.predict(users, items),
    )
    np.testing.assert_allclose(blended.predict(users, items), expected, atol=1e-5)
    forward = blended(torch.as_tensor(users), torch.as_tensor(items)).clamp(1, 5).detach().numpy()
    np.testing.assert_allclose(forward, expected, atol=1e-5)
    # a new user described by a free text gets the same blend over the films with training ratings
    text = context.embeddings.user_demographic[:2]
    tower_ratings = towers.text_user_scores(text)[0]
    known_items = blended.net.item_known.numpy()
    expected_text = np.where(known_items, np.clip(0.6 * tower_ratings + 0.4 * baseline, 1, 5), tower_ratings)
    np.testing.assert_allclose(blended.text_user_scores(text)[0], expected_text, atol=1e-5)
    # the lists are untouched
    np.testing.assert_allclose(blended.rank_scores(users), towers.rank_scores(users), atol=1e-6)
    with pytest.raises(ValueError, match="cold_baseline_weight"):
        _lit(context, cold_baseline_weight=-0.1)


def test_cold_baseline_moves_toward_how_the_nearest_known_users_rated_the_film(movielens):
    """``cold_neighbour_shrinkage``: a new user's baseline for a film is the film's baseline plus the
    similarity-weighted deviations of their nearest known users' ratings of it, over the weights plus
    the shrinkage; the aligned-pair path and the free-text path agree."""
    from hybridrec.models.neighbourhood import item_baseline_ratings

    context = build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))
    k, shrinkage = 3, 2.0
    model = _lit(context, cold_baseline_weight=1.0, cold_neighbour_shrinkage=shrinkage, neighbourhood_users=k)
    known = context.user_known
    cold_user = int(np.flatnonzero(~known)[0])
    texts = context.embeddings.user_demographic
    unit = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    similarity = unit[known] @ unit[cold_user]
    weights = np.zeros_like(similarity)
    nearest = np.argsort(-similarity)[:k]
    weights[nearest] = np.clip(similarity[nearest], 0, None)
    baseline = item_baseline_ratings(context)
    rated = context.fit.matrix(binary=True)[known]
    deviations = (context.fit.matrix() - baseline)[known] * rated
    expected = baseline + weights @ deviations / (weights @ rated + shrinkage)
    films = np.flatnonzero(context.item_known)
    predicted = model.predict(np.full(len(films), cold_user), films)
    np.testing.assert_allclose(predicted, np.clip(expected[films], 1, 5), atol=1e-4)
    from_text = model.text_user_scores(texts[cold_user : cold_user + 1])[0][0]
    np.testing.assert_allclose(from_text[films], predicted, atol=1e-4)
    # known users keep their ratings; without the neighbours the baseline stands alone
    plain = _lit(context, cold_baseline_weight=1.0)
    alone = plain.predict(np.full(len(films), cold_user), films)
    np.testing.assert_allclose(alone, np.clip(baseline[films], 1, 5), atol=1e-5)
    assert np.abs(predicted - alone).max() > 0.05
    warm = np.flatnonzero(known)[:5]
    np.testing.assert_allclose(model.predict(warm, warm), plain.predict(warm, warm), atol=1e-6)
    with pytest.raises(ValueError, match="cold_neighbour_shrinkage"):
        _lit(context, cold_baseline_weight=0.5, cold_neighbour_shrinkage=-1.0)


def test_cold_ratings_take_a_share_of_the_nearest_known_users_predicted_ratings(movielens):
    """``cold_neighbour_rating_weight``: beside the towers and the film's baseline, a new user's rating
    takes that share of their nearest known users' predicted ratings of the film (towers, KNN and the
    towers' neighbouring errors: the known users' own path), averaged by similarity."""
    context = build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))
    k, knn = 3, dict(knn_weight=0.3, knn_residual_weight=0.5, knn_k=4)
    model = _lit(
        context, cold_baseline_weight=0.4, cold_neighbour_rating_weight=0.35, neighbourhood_users=k, **knn
    )
    towers = _lit(context, **knn)
    baseline = _lit(context, cold_baseline_weight=1.0, **knn)
    known = np.flatnonzero(context.user_known)
    cold_user = int(np.flatnonzero(~context.user_known)[0])
    texts = context.embeddings.user_demographic
    unit = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    similarity = unit[known] @ unit[cold_user]
    nearest = np.argsort(-similarity)[:k]
    weights = np.clip(similarity[nearest], 0, None)
    films = np.flatnonzero(context.item_known)
    neighbours_rate = np.stack([towers.predict(np.full(len(films), user), films) for user in known[nearest]])
    expected = (
        0.25 * towers.predict(np.full(len(films), cold_user), films)
        + 0.4 * baseline.predict(np.full(len(films), cold_user), films)
        + 0.35 * weights @ neighbours_rate / weights.sum()
    )
    predicted = model.predict(np.full(len(films), cold_user), films)
    np.testing.assert_allclose(predicted, np.clip(expected, 1, 5), atol=1e-4)
    from_text = model.text_user_scores(texts[cold_user : cold_user + 1])[0][0]
    np.testing.assert_allclose(from_text[films], predicted, atol=1e-4)
    warm = known[:5]
    np.testing.assert_allclose(model.predict(warm, warm), towers.predict(warm, warm), atol=1e-6)
    model.eval()._per_weights.clear()
    model.warm_up()  # a service derives the known users' ratings at load
    assert "known_ratings" in model._per_weights
    with pytest.raises(ValueError, match="sum to at most 1"):
        _lit(context, cold_baseline_weight=0.7, cold_neighbour_rating_weight=0.4)


def test_cold_baseline_expects_the_user_bias_of_an_average_rating(context):
    """Where raters of many films rate low, ``μ + b_i`` overrates a new user's films on average; the
    baseline with E[b_u] over the ratings comes closer to the mean rating it is judged against."""
    from dataclasses import replace

    from hybridrec.data.context import Interactions
    from hybridrec.models.neighbourhood import fit_biases, item_baseline_ratings

    fit = context.fit
    counts = np.bincount(fit.users, minlength=context.n_users)
    heavy = counts[fit.users] > np.median(counts)  # the raters of many films: a star lower
    ratings = np.clip(np.where(heavy, fit.ratings - 1.0, fit.ratings), 1, 5).astype(np.float32)
    skewed = replace(
        context,
        fit=Interactions(fit.users, fit.items, ratings, context.n_users, context.n_items),
        global_mean=float(ratings.mean()),
    )
    user_bias, item_bias = fit_biases(skewed, 15.0, 10.0)
    baseline = item_baseline_ratings(skewed)
    np.testing.assert_allclose(
        baseline, skewed.global_mean + item_bias + user_bias[fit.users].mean(), rtol=1e-6
    )
    without = skewed.global_mean + item_bias
    assert user_bias[fit.users].mean() < 0
    error = lambda b: abs(b[fit.items].mean() - ratings.mean())  # noqa: E731
    assert error(baseline) < error(without)


def test_seed_experiment_is_the_original_towers_alone(context):
    """``experiment=seed`` reproduces the original model: none of the later additions may leak in."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=seed"])
    model = instantiate(cfg.model)(context=context)
    assert len(model.nets) == 1 and not model.net.ranking and model.net.id_dim == 0
    assert not model.net.use_biases and not model.net.use_scales and model.net.bags == []
    assert model.knn_weight == 0 and model.knn_residual_weight == 0 and not model.uses_neighbourhood
    assert model.cold_baseline_weight == 0 and model.cold_neighbour_rating_weight == 0
    assert not hasattr(model, "film_similarity") and not hasattr(model, "neighbour_evidence")


def test_id_penalty_is_the_batchs_squared_ids_biases_and_scales(context):
    """``model.l2`` pays for each example's own rows: ID embeddings, biases and scales, both sides."""
    model = _model(context, scales=True)
    with torch.no_grad():
        for name in ("bias", "scale"):
            getattr(model, f"user_{name}").weight.normal_()
            getattr(model, f"item_{name}").weight.normal_()
    users, items = torch.tensor([0, 0, 1]), torch.tensor([2, 3, 3])
    expected = sum(
        getattr(model, f"{side}_{name}").weight[rows].square().sum(1).mean()
        for name in ("id", "bias", "scale")
        for side, rows in (("user", users), ("item", items))
    )
    torch.testing.assert_close(model.id_penalty(users, items), expected)
    bare = _model(context, id_emb_dim=0, implicit=False, biases=False)
    assert bare.id_penalty(users, items).item() == 0.0
