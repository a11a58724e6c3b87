"""The hybrid recommender: the towers and the evidence terms joined by the blend, fixed or learned."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY, compose_configs
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hybridrec.constants import ITEM_COL
from hybridrec.data.context import Interactions, build_fold_context
from hybridrec.data.queries import TextQuery
from hybridrec.data.splits import cold_user_fold
from hybridrec.embedders.hashing import HashingEmbedder
from hybridrec.models.blend import BlendWeights
from hybridrec.models.evidence.base import standardise
from hybridrec.models.recommender import HybridRecommender, fit_evidence

CONFIG = compose_configs(*[o for o in TINY if o.startswith("model.")])


@pytest.fixture(scope="module")
def context(movielens):
    """A protocol-B fold (known users, users known only by their demographic text) without the
    ratings of three films (films known only by their text)."""
    train = cold_user_fold(movielens, 1).train
    unrated = movielens.item_index.ids[:3]
    return build_fold_context(movielens, train[~train[ITEM_COL].isin(unrated)], HashingEmbedder(dim=24))


def _weights(**channels) -> BlendWeights:
    weights = OmegaConf.to_container(CONFIG.blend.weights)
    for channel, parts in channels.items():
        weights[channel] = parts
    return BlendWeights.from_config(weights)


def _recommender(context, blend: BlendWeights) -> HybridRecommender:
    torch.manual_seed(0)
    nets = instantiate(CONFIG.model)(context=context).nets
    terms, nearest = fit_evidence(instantiate(CONFIG.evidence), blend, context)
    return HybridRecommender(nets, terms, nearest, blend)


TOWERS_ONLY = dict(
    known_ratings={"towers": 1.0},
    text_ratings={"towers": 1.0},
    known_lists={"towers": 1.0},
    text_lists={"towers": 1.0},
)


def test_ratings_are_the_weighted_sum_of_the_parts_on_films_with_ratings(context):
    blend = _weights()
    model, towers = _recommender(context, blend), _recommender(context, _weights(**TOWERS_ONLY))
    assert set(model.terms) == blend.in_use() and not towers.terms  # only the weighed terms are built
    users = np.arange(context.n_users)
    items = (users * 7) % context.n_items
    known_user = context.user_known[users]
    known_item = context.item_known[items]
    u, i = torch.from_numpy(users), torch.from_numpy(items)
    tower = towers.predict(users, items)
    known = blend.known_ratings
    rows = known_user & known_item
    knn = model.terms["item_knn"].rate(u[rows], i[rows]).float().numpy()
    residuals = model.terms["tower_residuals"].rate(u[rows], i[rows]).numpy()
    expected = tower.copy()
    expected[rows] = np.clip(
        known["towers"] * model.towers.rate(u[rows], i[rows]).numpy()
        + known["item_knn"] * knn
        + known["tower_residuals"] * residuals,
        1,
        5,
    )
    # users known only by text: their demographic text's nearest known users
    cold = ~known_user & known_item
    assert rows.any() and cold.any() and (known_user & ~known_item).any()
    text_users = model.text_users(TextQuery.from_profiles(context.embeddings.user_demographic[users[cold]]))
    text = blend.text_ratings
    baseline = model.terms["cold_baseline"].rate(text_users)[np.arange(cold.sum()), items[cold]]
    neighbours = model.terms["cold_neighbour_ratings"].rate(text_users)[np.arange(cold.sum()), items[cold]]
    expected[cold] = np.clip(
        text["towers"] * model.towers.rate(u[cold], i[cold]).numpy()
        + text["cold_baseline"] * baseline.numpy()
        + text["cold_neighbour_ratings"] * neighbours.numpy(),
        1,
        5,
    )
    np.testing.assert_allclose(model.predict(users, items), expected, atol=1e-5)
    # a user described in words gets the same as a cold user with the same text
    first = int(users[cold][0])
    by_text = model.text_user_scores(TextQuery.from_profiles(context.embeddings.user_demographic[[first]]))[
        0
    ][0]
    assert by_text[items[cold][0]] == pytest.approx(expected[cold][0], abs=1e-5)


def test_users_known_by_text_are_rated_a_batch_of_rows_at_a_time(context, monkeypatch):
    """The text terms rate whole rows, a batch of users at a time: any batch size, the same ratings."""
    import hybridrec.models.recommender as module

    model = _recommender(context, _weights())
    rng = np.random.default_rng(0)
    users = rng.integers(0, context.n_users, 300)
    items = rng.integers(0, context.n_items, 300)
    assert (~context.user_known[users]).sum() > 10
    whole = model.predict(users, items)
    monkeypatch.setattr(module, "TEXT_BATCH", 3)
    np.testing.assert_allclose(model.predict(users, items), whole, atol=1e-6)


def test_list_weights_are_chosen_on_a_batch_of_users_at_a_time(context, monkeypatch):
    """The grid's NDCG is the mean over every held-out user whatever the batches they are scored in."""
    from hybridrec.training import stacking

    blend = _weights()
    model = _recommender(context, blend)
    fit = context.fit
    held = np.random.default_rng(0).random(len(fit)) < 0.2
    rest, held = (
        Interactions(fit.users[k], fit.items[k], fit.ratings[k], fit.n_users, fit.n_items)
        for k in (~held, held)
    )

    def chosen():
        return stacking._list_weights(model, rest, held, blend, "known_lists", [0.0, 0.5, 1.0, 4.0])

    whole = chosen()
    monkeypatch.setattr(stacking, "LIST_BATCH", 7)
    assert chosen() == whole


def test_lists_add_the_terms_standardised_scores_to_the_towers(context):
    blend = _weights()
    model, towers = _recommender(context, blend), _recommender(context, _weights(**TOWERS_ONLY))
    users = np.arange(context.n_users)
    known = context.user_known
    base = torch.from_numpy(towers.rank_scores(users))
    chosen = model.terms["item_item"].score(torch.from_numpy(users[known])).float()
    liked = model.terms["liked_item_item"].score(torch.from_numpy(users[known])).float()
    expected = (
        standardise(base[known])
        + blend.known_lists["item_item"] * standardise(chosen)
        + blend.known_lists["liked_item_item"] * standardise(liked)
    )
    np.testing.assert_allclose(model.rank_scores(users)[known], expected.numpy(), atol=1e-4)
    cold = users[~known][:3]
    text_users = model.text_users(TextQuery.from_profiles(context.embeddings.user_demographic[cold]))
    expected = (
        standardise(base[cold])
        + blend.text_lists["text_neighbours"] * standardise(model.terms["text_neighbours"].score(text_users))
        + blend.text_lists["liked_text_neighbours"]
        * standardise(model.terms["liked_text_neighbours"].score(text_users))
    )
    for name in ("named_films", "asked_genres"):  # the terms that read what is asked, by their confidence
        term = model.terms[name]
        weight = blend.text_lists[name] * term.confidence(text_users).unsqueeze(1)
        expected = expected + weight * standardise(term.score(text_users))
    np.testing.assert_allclose(model.rank_scores(cold), expected.numpy(), atol=1e-4)
    by_text = model.text_user_scores(TextQuery.from_profiles(context.embeddings.user_demographic[cold]))[1]
    np.testing.assert_allclose(by_text, expected.numpy(), atol=1e-4)
    # no term weighed: the towers' own scores, unstandardised
    np.testing.assert_array_equal(towers.rank_scores(users), base.numpy())


def test_blend_weights_are_checked_against_the_terms(context):
    with pytest.raises(ValueError, match="channels"):
        BlendWeights.from_config({"known_ratings": {"towers": 1.0}})
    with pytest.raises(ValueError, match=">= 0"):
        _weights(known_ratings={"towers": 1.0, "item_knn": -0.1})
    with pytest.raises(ValueError, match="not in the evidence config"):
        fit_evidence(instantiate(CONFIG.evidence), _weights(known_ratings={"knn": 0.3}), context)
    with pytest.raises(ValueError, match="a term for known users' lists"):
        fit_evidence(instantiate(CONFIG.evidence), _weights(known_ratings={"item_item": 0.3}), context)


def test_the_learned_blend_is_chosen_on_the_training_part_alone(compose_train, synthetic_data_dir, tmp_path):
    """``blend=learned``: non-negative weights chosen on data held out of the fold's training part;
    rewriting every test rating of the fold changes none of them, and the fold's members train as
    they would with fixed weights (the stacking leaves the random state as it found it)."""
    import shutil

    import pandas as pd

    from hybridrec.constants import RATING_COL, USER_COL
    from hybridrec.embedders.factory import build_embedder
    from hybridrec.training import fit_fold

    altered = tmp_path / "altered"
    shutil.copytree(synthetic_data_dir, altered)
    test = pd.read_csv(
        altered / "ml-100k" / "u1.test", sep="\t", header=None, names=[USER_COL, ITEM_COL, RATING_COL, "ts"]
    )
    test[RATING_COL] = 6 - test[RATING_COL]
    test.to_csv(altered / "ml-100k" / "u1.test", sep="\t", header=False, index=False)
    fitted = {}
    for name, overrides, data_dir in (
        ("learned", ["blend=learned"], synthetic_data_dir),
        ("altered", ["blend=learned"], altered),
        ("fixed", [], synthetic_data_dir),
    ):
        cfg = compose_train("trainer.max_epochs=2", *overrides, data_dir=data_dir)
        fitted[name] = fit_fold(
            cfg, "canonical", 1, build_embedder(cfg.embedder, None), tmp_path / name, "r", "f"
        )
    learned = fitted["learned"].blend
    assert learned == fitted["altered"].blend and learned != fitted["fixed"].blend
    weights = [w for channel in learned.as_dict().values() for w in channel.values()]
    assert all(w >= 0 for w in weights) and any(w > 0 for w in weights)
    assert learned.known_lists["towers"] == 1.0 and set(learned.known_ratings) == {
        "towers",
        "item_knn",
        "tower_residuals",
    }
    for key, value in fitted["learned"].model.nets.state_dict().items():
        assert torch.equal(value, fitted["fixed"].model.nets.state_dict()[key]), key


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (REPO_ROOT / "configs" / "experiment").glob("*.yaml"))
)
def test_every_experiment_runs_one_batch(compose_train, name):
    """No experiment file may rot: each composes and trains one batch of one fold on the synthetic data."""
    from hybridrec.embedders.factory import build_run_embedder
    from hybridrec.evaluation.cross_validation import run_cross_validation

    cfg = compose_train(
        f"experiment={name}", "trainer.max_epochs=1", "+trainer.limit_train_batches=1", "baselines=none"
    )
    cfg.cv.folds = [1]
    cfg.blend.learn = cfg.blend.get("learn") and {**cfg.blend.learn, "list_weights": [0.0, 1.0]}
    result = run_cross_validation(cfg, build_run_embedder(cfg))
    assert np.isfinite(result.rows[0]["test/ndcg@10"])
