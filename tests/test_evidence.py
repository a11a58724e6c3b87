"""Each evidence term against a case computed by hand (loops and dense matrices, no shared code)."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hybridrec.data.context import Interactions, build_fold_context
from hybridrec.data.queries import TextQuery
from hybridrec.data.splits import canonical_fold, cold_user_fold
from hybridrec.embedders.hashing import HashingEmbedder
from hybridrec.models.baselines import EASE
from hybridrec.models.baselines import ItemKNN as BaselineKNN
from hybridrec.models.evidence.asked_genres import AskedGenres
from hybridrec.models.evidence.base import SparseRows, TextUsers, rated_film_means
from hybridrec.models.evidence.biases import fit_biases
from hybridrec.models.evidence.cold_baseline import ColdBaseline, item_baseline_ratings
from hybridrec.models.evidence.cold_neighbours import ColdNeighbourRatings
from hybridrec.models.evidence.item_item import ItemItem
from hybridrec.models.evidence.item_knn import ItemKNN
from hybridrec.models.evidence.named_films import NamedFilms
from hybridrec.models.evidence.nearest_users import NearestKnownUsers
from hybridrec.models.evidence.text_match import TextMatch
from hybridrec.models.evidence.text_neighbours import TextNeighbours
from hybridrec.models.evidence.tower_residuals import TowerResiduals

DENSE = 10_000  # a bound above the synthetic catalog: the dense forms


@pytest.fixture(scope="module")
def context(movielens):
    return build_fold_context(movielens, canonical_fold(movielens, 1).train, HashingEmbedder(dim=24))


@pytest.fixture(scope="module")
def cold_context(movielens):
    """A protocol-B fold: some users have no fitting ratings."""
    return build_fold_context(movielens, cold_user_fold(movielens, 1).train, HashingEmbedder(dim=24))


def _dense(fit: Interactions, values=None) -> np.ndarray:
    out = np.zeros((fit.n_users, fit.n_items))
    out[fit.users, fit.items] = fit.ratings if values is None else values
    return out


def test_sparse_rows_write_out_and_sum_rows_as_dense_matrices():
    rows, cols = np.array([2, 0, 2, 1, 0]), np.array([1, 3, 0, 2, 0])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    sparse = SparseRows(rows, cols, values, 4, 4)
    dense = np.zeros((4, 4), dtype=np.float32)
    dense[rows, cols] = values
    asked = torch.tensor([2, 3, 0])
    np.testing.assert_array_equal(sparse.dense(asked).numpy(), dense[[2, 3, 0]])
    np.testing.assert_array_equal(sparse.mask(asked).numpy(), dense[[2, 3, 0]] != 0)
    weights = torch.tensor([[0.5, 2.0], [1.0, 0.0]])
    neighbours = torch.tensor([[0, 2], [3, 1]])
    expected = weights.numpy()[:, :, None] * dense[neighbours.numpy()]
    np.testing.assert_allclose(sparse.weighted_sum(neighbours, weights).numpy(), expected.sum(1))


def test_item_item_is_ease_in_closed_form(context):
    """EASE^R: B = I - P / diag(P) with P = (XᵀX + λI)⁻¹, zero diagonal; a user's scores are x_u B."""
    term = ItemItem(reg=50.0, min_rating=4.0, max_dense_items=DENSE)
    term.fit(context)
    fit = context.fit
    x = _dense(fit, (fit.ratings >= 4).astype(float))
    precision = np.linalg.inv(x.T @ x + 50.0 * np.eye(fit.n_items))
    weights = np.eye(fit.n_items) - precision / np.diag(precision)[None, :]
    np.testing.assert_allclose(np.diag(weights), 0.0, atol=1e-12)
    users = torch.arange(10)
    np.testing.assert_allclose(term.score(users).numpy(), x[:10] @ weights, atol=1e-9)
    restored = ItemItem(reg=50.0, min_rating=4.0, max_dense_items=DENSE)
    restored.fit(context, term.state())  # a bundle's saved weights replace the inverse
    np.testing.assert_array_equal(restored.score(users).numpy(), term.score(users).numpy())


def test_item_item_above_its_bound_is_ease_on_the_films_most_often_chosen(context):
    """Above ``max_dense_items`` films EASE^R is fitted on that many films most often chosen (ties:
    the lower index); the other films score 0 and are not read."""
    term = ItemItem(reg=50.0, min_rating=4.0, max_dense_items=7)
    term.fit(context)
    fit = context.fit
    x = _dense(fit, (fit.ratings >= 4).astype(float))
    films = np.sort(np.argsort(-x.sum(0), kind="stable")[:7])
    np.testing.assert_array_equal(term.films.numpy(), films)
    block = x[:, films]
    precision = np.linalg.inv(block.T @ block + 50.0 * np.eye(7))
    weights = np.eye(7) - precision / np.diag(precision)[None, :]
    expected = np.zeros((fit.n_users, fit.n_items))
    expected[:, films] = block @ weights
    users = torch.arange(fit.n_users)
    np.testing.assert_allclose(term.score(users).numpy(), expected, atol=1e-9)
    outside = np.setdiff1d(np.arange(fit.n_items), films)
    rows = term.rows(torch.tensor([films[2], outside[0]])).numpy()
    np.testing.assert_allclose(rows[0, films], weights[2], atol=1e-9)
    assert not rows[0, outside].any() and not rows[1].any()
    restored = ItemItem(reg=50.0, min_rating=4.0, max_dense_items=7)
    restored.fit(context, term.state())
    np.testing.assert_array_equal(restored.score(users).numpy(), term.score(users).numpy())


def _knn_by_hand(context, user: int, item: int, k: int, shrinkage: float) -> float:
    """KNNBaseline's rating of one pair, straight from its definition: loops, no matrices."""
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


def test_item_knn_follows_its_definition(context):
    term = ItemKNN(k=5, shrinkage=10.0, reg_user=15.0, reg_item=10.0, max_dense_items=DENSE, neighbours=5)
    term.fit(context)
    rng = np.random.default_rng(0)
    users = rng.integers(0, context.n_users, 25)
    items = rng.integers(0, context.n_items, 25)
    pairs = term.rate(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    rows = term.rate(torch.from_numpy(users)).numpy()  # every film of each user's row
    for n, (user, item) in enumerate(zip(users, items, strict=True)):
        expected = _knn_by_hand(context, user, item, 5, 10.0)
        assert pairs[n] == pytest.approx(expected, abs=1e-9)
        assert rows[n, item] == pytest.approx(expected, abs=1e-9)


def test_item_knn_matches_surprise(context):
    surprise = pytest.importorskip("surprise")
    import pandas as pd

    fit = context.fit
    frame = pd.DataFrame({"user": fit.users, "item": fit.items, "rating": fit.ratings})
    trainset = surprise.Dataset.load_from_df(
        frame, surprise.Reader(rating_scale=(1, 5))
    ).build_full_trainset()
    reference = surprise.KNNBaseline(
        k=20,
        sim_options={"name": "pearson_baseline", "user_based": False, "shrinkage": 100},
        bsl_options={"method": "als", "reg_i": 10, "reg_u": 15, "n_epochs": 10},
        verbose=False,
    ).fit(trainset)
    term = ItemKNN(k=20, shrinkage=100.0, reg_user=15.0, reg_item=10.0, max_dense_items=DENSE, neighbours=20)
    term.fit(context)
    # pairs the user has not rated (on those Surprise counts the film as its own nearest neighbour)
    seen = set(zip(fit.users.tolist(), fit.items.tolist(), strict=True))
    pairs = [
        (u, i) for u in np.unique(fit.users)[:40] for i in np.unique(fit.items)[:40] if (u, i) not in seen
    ]
    expected = [reference.predict(u, i, clip=False).est for u, i in pairs]
    users, items = np.array(pairs).T
    ours = term.rate(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)


class _Towers:
    """Stand-in towers: a fixed rating per pair and fixed film vectors."""

    def __init__(self, n_items: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.n_items = n_items
        vectors = torch.randn(n_items, 6, generator=generator)
        self.vectors = vectors / vectors.norm(dim=1, keepdim=True)

    def rate(self, users, items):
        return 3.0 + 0.01 * ((users * 7 + items * 3) % 50).float()

    def item_rating_vectors(self):
        return self.vectors


@pytest.mark.parametrize("space", ["towers", "ratings"])
def test_tower_residuals_average_the_towers_errors_on_the_most_similar_rated_films(context, space):
    """Per pair: the towers' errors on the k rated films most like the film asked, weighted by the
    positive similarities over their sum plus the shrinkage; the same on a whole row."""
    k, shrinkage = 4, 0.5
    term = TowerResiduals(k, shrinkage, space, 100.0, 15.0, 10.0, max_dense_items=DENSE, neighbours=k)
    term.fit(context)
    towers = _Towers(context.n_items)
    term.attach(SimpleNamespace(towers=towers))
    fit = context.fit
    errors = _dense(
        fit, fit.ratings - towers.rate(torch.from_numpy(fit.users), torch.from_numpy(fit.items)).numpy()
    )
    if space == "towers":
        similarity = (towers.vectors @ towers.vectors.T).numpy()
        np.fill_diagonal(similarity, 0.0)
    else:
        knn = ItemKNN(k, 100.0, 15.0, 10.0, DENSE, k)
        knn.fit(context)
        similarity = knn.similarity.dense.float().numpy()
    users = np.arange(context.n_users)
    items = (users * 7) % context.n_items
    expected = np.zeros(len(users))
    for row, (user, item) in enumerate(zip(users, items, strict=True)):
        films = fit.items[fit.users == user]
        nearest = films[np.argsort(-similarity[item, films], kind="stable")[:k]]
        weights = np.clip(similarity[item, nearest], 0, None)
        expected[row] = (weights * errors[user, nearest]).sum() / (weights.sum() + shrinkage)
    assert np.abs(expected).max() > 0.05
    got = term.rate(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    rows = term.rate(torch.from_numpy(users[:5])).numpy()
    np.testing.assert_allclose(rows[np.arange(5), items[:5]], expected[:5], atol=1e-5)


def _fitted(term, context):
    term.fit(context)
    term.attach(SimpleNamespace(towers=_Towers(context.n_items)))
    return term


@pytest.mark.parametrize(
    "make",
    [
        lambda bound, neighbours: ItemKNN(4, 100.0, 15.0, 10.0, bound, neighbours),
        lambda bound, neighbours: TowerResiduals(4, 0.5, "ratings", 100.0, 15.0, 10.0, bound, neighbours),
        lambda bound, neighbours: TowerResiduals(4, 0.5, "towers", 100.0, 15.0, 10.0, bound, neighbours),
    ],
    ids=["item_knn", "tower_residuals_ratings", "tower_residuals_towers"],
)
def test_a_terms_sparse_form_equals_its_dense_form_on_small_data(context, make):
    """Above ``max_dense_items`` films a term keeps each film's nearest films (or computes the rows
    it is asked for): keeping them all gives the dense form's numbers, pairs and whole rows; the
    sparse form is what a bundle saves and loads."""
    users = torch.arange(context.n_users)
    items = (users * 7) % context.n_items
    dense = _fitted(make(DENSE, context.n_items), context)
    sparse = _fitted(make(0, context.n_items), context)
    assert dense.similarity is None or dense.similarity.dense is not None
    assert sparse.similarity is None or sparse.similarity.dense is None
    expected = dense.rate(users, items), dense.rate(users[:3])
    torch.testing.assert_close(sparse.rate(users, items), expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(sparse.rate(users[:3]), expected[1], atol=1e-5, rtol=0)
    restored = make(0, context.n_items)
    restored.fit(context, sparse.state())
    restored.attach(SimpleNamespace(towers=_Towers(context.n_items)))
    torch.testing.assert_close(restored.rate(users, items), sparse.rate(users, items))


@pytest.mark.parametrize("bound", [DENSE, 7])
@pytest.mark.parametrize("name", ["ease", "knn"])
def test_a_terms_baseline_reloads_from_its_state_dict_dense_or_sparse(context, name, bound):
    """A bundle stores a term baseline's fitted state as buffers sized as fitted; a fresh baseline
    loads them and lists the same films."""

    def make():
        if name == "ease":
            return EASE(context, reg=50.0, threshold=4.0, max_dense_items=bound)
        return BaselineKNN(context, 4, 100.0, 15.0, 10.0, max_dense_items=bound, neighbours=10)

    fitted = make().fit(context)
    restored = make()
    restored.load_state_dict(fitted.state_dict())
    users = np.arange(context.n_users)
    np.testing.assert_array_equal(restored.rank_scores(users), fitted.rank_scores(users))


def test_sparse_similarity_keeps_each_films_nearest_positive_films(context):
    """Each film's list: its ``neighbours`` most similar films among those with a positive similarity."""
    dense = ItemKNN(4, 100.0, 15.0, 10.0, DENSE, 4)
    dense.fit(context)
    sparse = ItemKNN(4, 100.0, 15.0, 10.0, 0, 6)
    sparse.fit(context)
    full = dense.similarity.dense.numpy()
    rows = sparse.similarity.rows(torch.arange(context.n_items)).numpy()
    for film in range(context.n_items):
        kept = np.flatnonzero(rows[film])
        nearest = np.argsort(-full[film], kind="stable")[:6]
        assert set(kept) == set(nearest[full[film, nearest] > 0])
        np.testing.assert_allclose(rows[film, kept], full[film, kept], atol=1e-12)
    # columns: every film's similarity to the films asked, as its own list holds it
    columns = sparse.similarity.columns(torch.tensor([3, 0, 5])).numpy()
    np.testing.assert_array_equal(columns, rows[:, [3, 0, 5]])


def _cosine_neighbours(keys: np.ndarray, known: np.ndarray, text: np.ndarray, k: int):
    unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    similarity = unit[known] @ (text / np.linalg.norm(text))
    nearest = np.argsort(-similarity, kind="stable")[:k]
    return nearest, np.clip(similarity[nearest], 0, None)


def test_nearest_known_users_by_text_cosine(cold_context):
    finder = NearestKnownUsers(k=5, space="text")
    finder.fit(cold_context)
    demographic = torch.from_numpy(cold_context.embeddings.user_demographic)
    finder.attach(SimpleNamespace(towers=SimpleNamespace(user_demographic=demographic)))
    known = np.flatnonzero(cold_context.user_known)
    np.testing.assert_array_equal(finder.known.numpy(), known)
    texts = cold_context.embeddings.user_demographic[~cold_context.user_known][:3]
    found = finder.find(TextQuery.from_profiles(texts))
    for row, text in enumerate(texts):
        nearest, weights = _cosine_neighbours(cold_context.embeddings.user_demographic, known, text, 5)
        assert set(found.neighbours[row].tolist()) == set(nearest.tolist())
        np.testing.assert_allclose(np.sort(found.weights[row].numpy()), np.sort(weights), atol=1e-6)
    with pytest.raises(ValueError, match="space"):
        NearestKnownUsers(k=5, space="ids")


def _neighbours_of(cold_context, k: int = 4) -> tuple[TextUsers, np.ndarray]:
    """Three texts' nearest known users (by hand) and the known users' indexes."""
    known = np.flatnonzero(cold_context.user_known)
    texts = cold_context.embeddings.user_demographic[~cold_context.user_known][:3]
    found = [_cosine_neighbours(cold_context.embeddings.user_demographic, known, t, k) for t in texts]
    neighbours = torch.tensor(np.stack([n for n, _ in found]))
    weights = torch.tensor(np.stack([w for _, w in found]), dtype=torch.float32)
    return TextUsers(TextQuery.from_profiles(texts), neighbours, weights), known


def test_text_neighbours_sum_the_nearest_users_films_damped_by_their_activity(cold_context):
    term = TextNeighbours(min_rating=4.0, damping=0.5)
    term.fit(cold_context)
    users, known = _neighbours_of(cold_context)
    fit = cold_context.fit
    counts = np.bincount(fit.users, minlength=cold_context.n_users)
    liked = _dense(fit, (fit.ratings >= 4).astype(float)) / np.sqrt(np.maximum(counts, 1))[:, None]
    expected = np.stack(
        [w.numpy() @ liked[known[n.numpy()]] for n, w in zip(users.neighbours, users.weights, strict=True)]
    )
    np.testing.assert_allclose(term.score(users).numpy(), expected, atol=1e-5)


def test_cold_baseline_moves_the_films_baseline_toward_the_nearest_users_deviations(cold_context):
    shrinkage = 2.0
    term = ColdBaseline(neighbour_shrinkage=shrinkage, reg_user=15.0, reg_item=10.0)
    term.fit(cold_context)
    users, known = _neighbours_of(cold_context)
    fit = cold_context.fit
    user_bias, item_bias = fit_biases(cold_context, 15.0, 10.0)
    baseline = cold_context.global_mean + item_bias + user_bias[fit.users].mean()
    rated = _dense(fit, np.ones(len(fit)))
    deviations = (_dense(fit) - baseline) * rated
    expected = np.stack(
        [
            baseline + (w @ deviations[known[n]]) / (w @ rated[known[n]] + shrinkage)
            for n, w in zip(users.neighbours.numpy(), users.weights.numpy(), strict=True)
        ]
    )
    np.testing.assert_allclose(term.rate(users).numpy(), expected, atol=1e-4)
    alone = ColdBaseline(neighbour_shrinkage=None, reg_user=15.0, reg_item=10.0)
    alone.fit(cold_context)
    np.testing.assert_allclose(
        alone.rate(users).numpy(), np.broadcast_to(baseline, expected.shape), atol=1e-5
    )


def test_cold_baseline_expects_the_user_bias_of_an_average_rating(context):
    """Where raters of many films rate low, ``μ + b_i`` overrates a new user's films on average; the
    baseline with E[b_u] over the ratings comes closer to the mean rating it is judged against."""
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
    baseline = item_baseline_ratings(skewed, 15.0, 10.0)
    np.testing.assert_allclose(
        baseline, skewed.global_mean + item_bias + user_bias[fit.users].mean(), rtol=1e-6
    )
    without = skewed.global_mean + item_bias
    assert user_bias[fit.users].mean() < 0
    error = lambda b: abs(b[fit.items].mean() - ratings.mean())  # noqa: E731
    assert error(baseline) < error(without)


def test_cold_neighbour_ratings_average_the_nearest_users_predicted_ratings(cold_context):
    """By similarity; every known user alike when no neighbour is similar."""
    known = torch.from_numpy(np.flatnonzero(cold_context.user_known))
    predicted = torch.rand(
        cold_context.n_users, cold_context.n_items, generator=torch.Generator().manual_seed(1)
    )
    view = SimpleNamespace(known_users=known, rate_known_rows=lambda users: 1 + 4 * predicted[users])
    term = ColdNeighbourRatings()
    term.attach(view)
    users = TextUsers(
        TextQuery.from_profiles(np.zeros((2, 4))),
        torch.tensor([[0, 3, 5], [2, 2, 7]]),
        torch.tensor([[0.5, 0.2, 0.3], [0.0, 0.0, 0.0]]),
    )
    rows = 1 + 4 * predicted[known]
    expected_first = (0.5 * rows[0] + 0.2 * rows[3] + 0.3 * rows[5]) / 1.0
    got = term.rate(users)
    torch.testing.assert_close(got[0], expected_first)
    torch.testing.assert_close(got[1], rows.mean(0))


def test_known_rows_are_rated_once_and_kept_within_their_bound():
    """The rows of the known users a text's neighbours are: rated when first asked, then read from
    the cache, least recently used out first once the bound is reached."""
    from hybridrec.models.evidence.cold_neighbours import KnownRows

    predicted = torch.rand(6, 5, generator=torch.Generator().manual_seed(0))
    asked = []

    def rate_known_rows(users):
        asked.append(users.tolist())
        return predicted[users]

    view = SimpleNamespace(known_users=torch.tensor([0, 2, 3, 5]), rate_known_rows=rate_known_rows)
    rows = KnownRows(view, max_bytes=2 * 5 * 4)  # two rows of five float32 films
    torch.testing.assert_close(rows(torch.tensor([1, 0])), predicted[[2, 0]])
    torch.testing.assert_close(rows(torch.tensor([0, 1])), predicted[[0, 2]])
    assert asked == [[2, 0]]
    torch.testing.assert_close(
        rows(torch.tensor([3])), predicted[[5]]
    )  # out goes position 0, the least recently used
    rows(torch.tensor([0, 1]))
    assert asked == [[2, 0], [5], [0]]


def test_rated_film_means_pairs_and_rows_agree():
    """The pair path (a chunk of dense rows) and the row path (the user's own films) are one mean."""
    rows = SparseRows(np.array([0, 0, 0, 1]), np.array([0, 2, 3, 1]), np.array([1.0, -2.0, 0.5, 3.0]), 2, 4)
    similarity = torch.tensor(
        [[0.0, 0.9, 0.4, -0.2], [0.9, 0.0, 0.1, 0.3], [0.4, 0.1, 0.0, 0.8], [-0.2, 0.3, 0.8, 0.0]],
        dtype=torch.float64,
    )
    users, items = torch.tensor([0, 0, 1]), torch.tensor([1, 0, 2])
    pairs = rated_film_means(rows, users, items, lambda f: similarity[f], lambda f: similarity[:, f], 2, 0.5)
    # user 0 rated films 0, 2, 3 (values 1, -2, 0.5); film 1's two nearest among them: 0 (0.9), 3 (0.3)
    assert pairs[0].item() == pytest.approx((0.9 * 1.0 + 0.3 * 0.5) / (1.2 + 0.5))
    # film 0: nearest rated 2 (0.4), 3 (-0.2 → 0)
    assert pairs[1].item() == pytest.approx(0.4 * -2.0 / (0.4 + 0.5))
    assert pairs[2].item() == pytest.approx(0.1 * 3.0 / (0.1 + 0.5))
    full = rated_film_means(
        rows, users[:2], None, lambda f: similarity[f], lambda f: similarity[:, f], 2, 0.5
    )
    torch.testing.assert_close(full[0, 1], pairs[0])
    torch.testing.assert_close(full[1, 0], pairs[1])


def test_whole_rows_grouped_by_history_length_equal_the_pair_path(monkeypatch):
    """Whole rows go in groups of users padded to the group's longest history: each row equals the
    pair path's, whatever the group (histories shorter than k, an empty one, groups of one user)."""
    from hybridrec.models.evidence import base

    rng = np.random.default_rng(0)
    n_users, n_films = 12, 30
    rated = rng.random((n_users, n_films)) < np.linspace(0.0, 0.6, n_users)[:, None]
    users_of, films_of = np.nonzero(rated)
    rows = SparseRows(users_of, films_of, rng.normal(size=len(users_of)), n_users, n_films)
    similarity = torch.from_numpy(rng.normal(size=(n_films, n_films)))
    users = torch.tensor([5, 0, 11, 3, 5, 8])
    items = torch.arange(n_films).repeat(len(users))
    for block in (n_films * 40, 1):  # several users a group, then one user a group
        monkeypatch.setattr(base, "ROW_BLOCK_ENTRIES", block)
        full = rated_film_means(
            rows, users, None, lambda f: similarity[f], lambda f: similarity[:, f], 4, 0.5
        )
        pairs = rated_film_means(
            rows,
            users.repeat_interleave(n_films),
            items,
            lambda f: similarity[f],
            lambda f: similarity[:, f],
            4,
            0.5,
        )
        torch.testing.assert_close(full, pairs.reshape(len(users), n_films))
    assert full[1].abs().sum() == 0  # user 0 rated nothing


def test_text_match_scores_the_liked_clauses_against_the_disliked_ones(context):
    """Cosine of the liking clauses to every film's text, minus the disliking ones'; confidence from
    how far the best films stand out (none for a flat text, all for a peaked one)."""
    term = TextMatch(dislike_weight=0.5, top=3, flat=1.0, peaked=3.0)
    term.fit(context)
    films = context.embeddings.item / np.linalg.norm(context.embeddings.item, axis=1, keepdims=True)
    liked, disliked = films[[0, 5]], np.stack([films[7], np.zeros(films.shape[1])])
    query = TextQuery(
        ["a", "b"], liked, liked, disliked.astype(np.float32), [np.zeros(0, int)] * 2, [np.zeros(0, int)] * 2
    )
    users = TextUsers(query, torch.zeros(2, 0).long(), torch.zeros(2, 0))
    expected = liked @ films.T - 0.5 * disliked @ films.T
    np.testing.assert_allclose(term.score(users).numpy(), expected, atol=1e-5)
    cosines = liked @ films.T
    lift = (np.sort(cosines, axis=1)[:, -3:].mean(1) - cosines.mean(1)) / cosines.std(1, ddof=1)
    np.testing.assert_allclose(term.confidence(users).numpy(), np.clip((lift - 1.0) / 2.0, 0, 1), atol=1e-4)


def test_named_films_sum_the_similarity_to_the_films_named():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    term = NamedFilms()
    term.attach(SimpleNamespace(towers=SimpleNamespace(item_vectors=lambda: vectors.double())))
    none = np.zeros(0, dtype=np.int64)
    query = TextQuery(
        ["x", "y"],
        np.zeros((2, 1)),
        np.zeros((2, 1)),
        np.zeros((2, 1)),
        [np.array([0, 1]), none],
        [np.array([2]), none],
    )
    users = TextUsers(query, torch.zeros(2, 0).long(), torch.zeros(2, 0))
    expected_first = (vectors[[0, 1]] @ vectors.T).sum(0) - vectors[2] @ vectors.T
    torch.testing.assert_close(term.score(users)[0], expected_first)
    torch.testing.assert_close(term.score(users)[1], torch.zeros(3))
    torch.testing.assert_close(term.confidence(users), torch.tensor([1.0, 0.0]))


def test_asked_genres_lift_the_films_of_the_genres_a_text_asks_for(context):
    """A text asks for a genre as much as its cosine to the genre's embedded name exceeds the mean
    over genres by more than the margin; films score the sum over their genres; refused genres count
    against; confidence from the best genre's lift."""
    term = AskedGenres(margin=0.05, dislike_weight=0.5, flat=0.0, sure=0.5)
    term.fit(context)
    names = list(context.embeddings.genre_names)
    labels = context.embeddings.genres / np.linalg.norm(context.embeddings.genres, axis=1, keepdims=True)
    liked = labels[[names.index("Horror")]] + 0.3 * labels[[names.index("Comedy")]]
    disliked = labels[[names.index("Romance")]]
    query = TextQuery(["t"], liked, liked, disliked, [np.zeros(0, int)], [np.zeros(0, int)])
    users = TextUsers(query, torch.zeros(1, 0).long(), torch.zeros(1, 0))

    def asked(vector):
        cosines = labels @ (vector[0] / np.linalg.norm(vector[0]))
        return np.clip(cosines - cosines.mean() - 0.05, 0, None), (cosines - cosines.mean()).max()

    want, best = asked(liked)
    refuse, _ = asked(disliked)
    films = np.array([[g in gs for g in names] for gs in context.items["genres"]], dtype=float)
    np.testing.assert_allclose(term.score(users).numpy()[0], films @ (want - 0.5 * refuse), atol=1e-5)
    assert want[names.index("Horror")] > 0
    assert term.confidence(users).item() == pytest.approx(min(best / 0.5, 1.0), abs=1e-5)


def test_bm25_steers_by_the_words_and_a_text_of_stopwords_steers_nothing(context):
    from hybridrec.data.queries import TextQuery
    from hybridrec.models.text_baselines import BM25Films

    model = BM25Films(context, threshold=4.0, shrinkage=10.0).fit(context)
    genre = next(g for g in context.items.genres.explode().dropna().unique() if g != "unknown")
    texts = [f"I love {genre} films", "I am a"]
    query = replace(TextQuery.from_profiles(np.zeros((2, 1), dtype=np.float32)), texts=texts)
    steer = model._steer(query)
    has_genre = context.items.genres.map(lambda gs: genre in gs).to_numpy()
    assert steer[0][has_genre].min() > steer[0][~has_genre].max()
    assert not steer[1].any()
