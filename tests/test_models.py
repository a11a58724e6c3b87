"""HybridRecModel, its towers and rating mappings, on small hand-made inputs (built from the YAML)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import compose_configs
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hybridrec.data.context import build_fold_context
from hybridrec.data.movielens import WHOLE_STARS, RatingScale
from hybridrec.data.splits import canonical_fold, cold_user_fold
from hybridrec.embedders.hashing import HashingEmbedder
from hybridrec.models.history import RatingHistories
from hybridrec.models.mappings import (
    AffineMapping,
    LinearMapping,
    OrdinalMapping,
    SigmoidMapping,
    SquareMapping,
)
from hybridrec.models.noise import KeyedNoise
from hybridrec.models.towers import Tower

STARS = WHOLE_STARS  # 100K's
TINY_NET = {"hidden": 16, "depth": 1, "out_dim": 8, "id_emb_dim": 4, "liked": False, "scales": False}


def test_fixed_mappings_match_their_formulas():
    sim = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    zero = torch.zeros(4)
    assert SquareMapping(STARS)(sim, zero).tolist() == [5.0, 1.0, 2.0, 5.0]
    assert LinearMapping(STARS)(sim, zero).tolist() == [1.0, 3.0, 4.0, 5.0]
    assert LinearMapping(STARS)(sim, torch.full((4,), 0.5)).tolist() == [1.5, 3.5, 4.5, 5.5]


def test_learnable_mappings_start_at_the_mean():
    sigmoid, affine = SigmoidMapping(STARS), AffineMapping(STARS)
    sigmoid.init_from_ratings(np.array([3.0, 4.0, 3.59]))
    affine.init_from_ratings(np.array([3.0, 4.0, 3.59]))
    zero = torch.zeros(1)
    assert sigmoid(zero, zero).item() == pytest.approx(3.53, abs=1e-5)
    assert affine(zero, zero).item() == pytest.approx(3.53, abs=1e-5)
    extreme = sigmoid(torch.tensor([-1.0, 1.0]), torch.tensor([-100.0, 100.0]))
    assert extreme.min().item() >= 1.0 and extreme.max().item() <= 5.0
    assert len(list(sigmoid.parameters())) == 2 and not list(SquareMapping(STARS).parameters())


def test_ordinal_mapping_starts_at_the_star_shares_and_scores_their_likelihood():
    ratings = np.array([1, 2, 3, 3, 4, 4, 4, 5, 5, 5], dtype=np.float32)
    ordinal = OrdinalMapping(STARS, nll_weight=0.5)
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


def test_mappings_rate_on_the_data_sets_scale():
    """Half stars (10M and later): every mapping spans 0.5..5, the ordinal one with a level per half star."""
    half = RatingScale(0.5, 5.0, 0.5)
    sim, zero = torch.tensor([-1.0, 0.0, 1.0]), torch.zeros(3)
    assert SquareMapping(half)(sim, zero).tolist() == [5.0, 0.5, 5.0]
    assert LinearMapping(half)(sim, zero).tolist() == [0.5, 2.75, 5.0]
    sigmoid = SigmoidMapping(half)
    sigmoid.init_from_ratings(np.array([3.5, 4.0, 3.0]))
    assert sigmoid(torch.zeros(1), torch.zeros(1)).item() == pytest.approx(3.5, abs=1e-5)
    extreme = sigmoid(torch.tensor([-1.0, 1.0]), torch.tensor([-100.0, 100.0]))
    assert extreme.tolist() == pytest.approx([0.5, 5.0], abs=1e-4)
    ordinal = OrdinalMapping(half)
    ratings = np.array([0.5, 1.5, 2.5, 3.0, 3.5, 3.5, 4.0, 4.5, 5.0, 5.0], dtype=np.float32)
    ordinal.init_from_ratings(ratings)
    assert len(ordinal.thresholds()) == 9  # between 10 levels
    assert ordinal(torch.zeros(1), torch.zeros(1)).item() == pytest.approx(ratings.mean(), abs=1e-2)
    extreme = ordinal(torch.tensor([-1.0, 1.0]), torch.tensor([-100.0, 100.0]))
    assert extreme.tolist() == pytest.approx([0.5, 5.0], abs=1e-4)
    assert torch.isfinite(ordinal.loss(torch.zeros(10), torch.zeros(10), torch.from_numpy(ratings)))


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


def _histories(n_users=6, n_items=9, n_ratings=30):
    generator = torch.Generator().manual_seed(0)
    cells = torch.randperm(n_users * n_items, generator=generator)[:n_ratings]
    histories = RatingHistories(n_users, n_items)
    histories.attach(cells // n_items, cells % n_items)
    return histories, cells // n_items, cells % n_items, generator


@pytest.mark.parametrize("side", ["user", "item"])
def test_a_sample_of_every_rating_is_the_whole_history(side):
    """Rows with no more ratings than the sample keep all of them, weight 1: the bags and their
    gradient are the dense history's rows."""
    histories, users, items, generator = _histories()
    rows, cols = (users, items) if side == "user" else (items, users)
    weights = torch.rand(len(users), generator=generator)
    dense = torch.zeros(histories.shapes[side]).index_put_((rows, cols), weights)
    some = torch.tensor([4, 0, 2])
    sampled = histories.sample(side, some, histories.longest(side), lambda keys: torch.zeros(len(keys)))
    assert torch.equal(sampled.scale, torch.ones(len(sampled.positions)))
    table = torch.randn(dense.shape[1], 3, generator=generator, requires_grad=True)
    grad = torch.randn(len(some), 3, generator=generator)
    bags = sampled.bag(weights[sampled.positions], table)
    assert torch.allclose(bags, dense[some] @ table, atol=1e-6)
    (sampled_grad,) = torch.autograd.grad(bags, table, grad)
    (dense_grad,) = torch.autograd.grad(dense[some] @ table, table, grad)
    assert torch.allclose(sampled_grad, dense_grad, atol=1e-6)


def test_who_rated_what_among_some_films_is_the_pairs_lookup():
    histories, *_ = _histories()
    users = torch.tensor([5, 1, 3])
    for films in (torch.arange(9), torch.tensor([0, 2, 3, 7]), torch.tensor([], dtype=torch.long)):
        expected = histories.positions(users.unsqueeze(1), films.unsqueeze(0)) >= 0
        assert torch.equal(histories.rated(users, films), expected)


def test_a_long_history_is_sampled_without_bias():
    """A row longer than the sample keeps that many of its own ratings, each weighing length / kept, so
    the bag's mean over draws is the whole history's."""
    histories, users, _, generator = _histories(n_users=2, n_items=40, n_ratings=60)
    table = torch.randn(40, 3, generator=generator)
    weights = torch.rand(60, generator=generator)
    rows = torch.tensor([0, 1])
    whole = histories.bag("user", weights, table)[rows]
    noise = KeyedNoise(seed=0, member=0)
    total = torch.zeros_like(whole)
    for step in range(400):
        noise.step = step
        sampled = histories.sample("user", rows, 4, lambda keys: noise.uniform("s", keys))
        assert torch.equal(torch.diff(sampled.crow), torch.tensor([4, 4]))
        assert (users[sampled.positions] == torch.tensor([0] * 4 + [1] * 4)).all()
        total += sampled.bag(weights[sampled.positions] * sampled.scale, table)
    assert torch.allclose(total / 400, whole, atol=0.15 * whole.abs().max().item())


def test_sampled_histories_train_and_never_read_a_hidden_rating(context):
    """With a sample smaller than the longest history the model still trains (finite losses and
    gradients), and the bags of the sampled path leave out the ratings being predicted."""
    model = _model(context, ranking=True, history_sample=3, dropout=0.0, history_dropout=0.0).train()
    users = torch.from_numpy(context.fit.users[:64])
    items = torch.from_numpy(context.fit.items[:64])
    losses = model.training_losses(users, items, torch.tensor(context.fit.ratings[:64]))
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    rows = torch.unique(users)
    hidden = model.histories.positions(users, items)
    bags = model._history_bags("user", rows, hidden)
    for bag in model.bags:  # the same draws, with the hidden ratings' weights zeroed instead
        name = f"user_{bag}"
        setattr(model, name, getattr(model, name).index_fill(0, hidden, 0.0))
    assert all(torch.allclose(bags[b], model._history_bags("user", rows)[b], atol=1e-6) for b in model.bags)


def test_a_sample_as_long_as_every_history_changes_nothing(context):
    """history_sample at or above the longest history trains exactly as reading every rating."""
    losses = []
    for sample in (0, 10_000):
        torch.manual_seed(0)
        model = _model(context, ranking=True, history_sample=sample).train()
        users = torch.from_numpy(context.fit.users[:64])
        items = torch.from_numpy(context.fit.items[:64])
        losses.append(model.training_losses(users, items, torch.tensor(context.fit.ratings[:64])))
    assert all(torch.equal(losses[0][k], losses[1][k]) for k in losses[0])


def _model(context, ranking: bool = False, **kwargs):
    """A HybridRecModel as configs/model/hybrid.yaml builds it (tiny), with ``kwargs`` over the YAML."""
    net = OmegaConf.merge(compose_configs().model.net, {**TINY_NET, **kwargs})
    model = instantiate(net)(
        n_users=context.n_users,
        n_items=context.n_items,
        content_dim=context.embeddings.dim,
        rating_scale=context.rating_scale,
        ranking=ranking,
        member=0,
    )
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
    positions = model.histories.positions(users, items)
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


def _liked_batch(context, n: int = 16):
    users = torch.from_numpy(context.fit.users[:n])
    items = torch.from_numpy(context.fit.items[:n])
    return users, items, torch.full((n,), 5.0)


def test_sampled_softmax_drawing_every_film_is_the_full_softmax(context):
    """Above ``full_softmax_items`` the softmax runs over drawn films; when every film is drawn the
    logQ correction is 0 and the loss is the full softmax's."""
    full = _model(context, ranking=True).eval()
    sampled = _model(context, ranking=True, full_softmax_items=0, sampled_negatives=context.n_items).eval()
    sampled.load_state_dict(full.state_dict())
    batch = _liked_batch(context)
    torch.testing.assert_close(sampled.training_losses(*batch)["rank"], full.training_losses(*batch)["rank"])


def test_sampled_softmax_encodes_the_drawn_films_alone_and_trains_the_full_one(context):
    """A small sample: the item tower reads the batch's films and the drawn ones, and steps on the
    sampled loss lower the full softmax's loss."""
    torch.manual_seed(0)
    sampled = _model(context, ranking=True, full_softmax_items=0, sampled_negatives=10, dropout=0.0).eval()
    full = _model(context, ranking=True).eval()
    batch = _liked_batch(context)
    encoded = []
    sampled.item_tower.register_forward_hook(lambda module, inputs, output: encoded.append(len(output)))
    optimizer = torch.optim.Adam(sampled.parameters(), lr=0.01)

    def full_loss():
        full.load_state_dict(sampled.state_dict())
        with torch.no_grad():
            return full.training_losses(*batch)["rank"].item()

    before = full_loss()
    for step in range(30):
        loss = sampled.training_losses(*batch, step=step)["rank"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert max(encoded) <= len(torch.unique(batch[1])) + 10 < context.n_items
    assert full_loss() < before - 0.1


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
    # ratings of many users: some keep their IDs and bags whatever the dropouts draw
    rows = slice(0, None, len(context.fit) // 64)
    users = torch.tensor(context.fit.users[rows])
    items = torch.tensor(context.fit.items[rows])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.training_losses(users, items, torch.tensor(context.fit.ratings[rows]))
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.user_bags["implicit"].weight.grad.abs().sum() > 0


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
