"""Embedders: the hashing baseline, MiniLM, Gemini against a local fake server, and the durable cache."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
from fake_gemini import fake_vector

from hybridrec.data.context import embed_profiles
from hybridrec.data.profiles import ProfileConfig
from hybridrec.data.splits import canonical_fold
from hybridrec.embedders.base import Embedder
from hybridrec.embedders.cache import CachedEmbedder, MemoryCachedEmbedder
from hybridrec.embedders.gemini import GeminiEmbedder
from hybridrec.embedders.hashing import HashingEmbedder
from hybridrec.gemini import GeminiKeyError, GeminiUnavailableError, RateLimiter, find_api_key


class CountingEmbedder(Embedder):
    """Hashing vectors, counting every text it is asked to embed; can fail after ``fail_after`` calls."""

    def __init__(self, fail_after: int | None = None):
        self.inner = HashingEmbedder(dim=16)
        self.name, self.dim = "counting", 16
        self.seen: list[str] = []
        self.calls = 0
        self.fail_after = fail_after

    def _embed(self, texts):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.seen.extend(texts)
        return self.inner.embed(texts)


# --- hashing -------------------------------------------------------------------------------------


def test_hashing_vectors_are_normalised_and_stable():
    embedder = HashingEmbedder(dim=64)
    vectors = embedder.embed(["a space opera", "a cartoon for kids", "a space opera"])
    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors[0], vectors[2])
    assert np.array_equal(HashingEmbedder(dim=64).embed(["a space opera"])[0], vectors[0])
    assert embedder.embed([]).shape == (0, 64)
    assert HashingEmbedder(dim=64).name != HashingEmbedder(dim=128).name


# --- cache ---------------------------------------------------------------------------------------


def test_cache_embeds_each_text_once(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite3", chunk_size=2, progress=False)
    first = cached.embed(["a", "b", "a", "c"])
    assert sorted(inner.seen) == ["a", "b", "c"]
    assert (cached.last.embedded, cached.last.cached) == (3, 0)
    second = cached.embed(["c", "a", "d"])
    assert inner.seen[3:] == ["d"]
    assert np.array_equal(second[0], first[3]) and np.array_equal(second[1], first[0])
    assert (cached.last.embedded, cached.last.cached) == (1, 2)
    reopened = CachedEmbedder(CountingEmbedder(), tmp_path / "cache.sqlite3", progress=False)
    assert np.array_equal(reopened.embed(["b"])[0], first[1]) and reopened.inner.seen == []


def test_memory_cache_is_bounded_and_forgets_the_oldest_text():
    inner = CountingEmbedder()
    cached = MemoryCachedEmbedder(inner, size=2)
    first = cached.embed(["a", "b", "a"])
    assert inner.seen == ["a", "b"] and np.array_equal(first[0], first[2])
    cached.embed(["a"])  # a is now the newest
    cached.embed(["c"])  # b goes
    assert len(cached) == 2
    cached.embed(["a", "b"])
    assert inner.seen == ["a", "b", "c", "b"]
    with pytest.raises(ValueError, match="at least 1"):
        MemoryCachedEmbedder(inner, size=0)


def test_cache_resumes_after_an_interrupted_run(tmp_path):
    texts = [f"text {i}" for i in range(10)]
    path = tmp_path / "cache.sqlite3"
    dying = CachedEmbedder(CountingEmbedder(fail_after=2), path, chunk_size=3, progress=False)
    with pytest.raises(KeyboardInterrupt):
        dying.embed(texts)
    assert dying.store.count("counting") == 6  # the two finished chunks were kept
    resumed_inner = CountingEmbedder()
    resumed = CachedEmbedder(resumed_inner, path, chunk_size=3, progress=False)
    vectors = resumed.embed(texts)
    assert resumed_inner.seen == texts[6:]
    assert resumed.store.count("counting") == 10, "no duplicate rows"
    assert np.allclose(vectors, HashingEmbedder(dim=16).embed(texts))


def test_cache_sends_the_missing_texts_shortest_first(tmp_path):
    """So that a chunk holds texts of about one length; the vectors still come back in the caller's order."""
    inner = CountingEmbedder()
    texts = ["a long text here", "mid text", "a", "the longest text of all", "mid text"]
    vectors = CachedEmbedder(inner, tmp_path / "cache.sqlite3", chunk_size=2, progress=False).embed(texts)
    assert inner.seen == ["a", "mid text", "a long text here", "the longest text of all"]
    assert np.array_equal(vectors, HashingEmbedder(dim=16).embed(texts))


def test_cache_without_a_bar_logs_its_progress(tmp_path, monkeypatch, caplog):
    """Not a terminal (pytest captures stderr), or progress off: no bar, a log line now and then."""
    monkeypatch.setattr("hybridrec.embedders.cache._LOG_EVERY_S", 0.0)
    texts = [f"text {i}" for i in range(6)]
    for progress in (True, False):
        caplog.clear()
        path = tmp_path / f"cache-{progress}.sqlite3"
        with caplog.at_level("INFO", logger="hybridrec.embedders.cache"):
            CachedEmbedder(CountingEmbedder(), path, chunk_size=2, progress=progress).embed(texts)
        lines = [r.getMessage() for r in caplog.records if "new texts stored" in r.getMessage()]
        assert [line.split(": ")[1].split(" new")[0] for line in lines] == ["2 of 6", "4 of 6", "6 of 6"]


def test_a_run_without_progress_bars_embeds_without_one(tmp_path):
    from omegaconf import OmegaConf

    from hybridrec.embedders.factory import build_run_embedder

    cfg = OmegaConf.create(
        {
            "model": {"net": {"content": True}},
            "embedder": {"_target_": "hybridrec.embedders.hashing.HashingEmbedder", "dim": 8},
            "paths": {"embedding_cache": str(tmp_path / "cache.sqlite3")},
            "trainer": {"enable_progress_bar": False},
        }
    )
    assert build_run_embedder(cfg).progress is False
    cfg.trainer.enable_progress_bar = True
    assert build_run_embedder(cfg).progress is True


def _write_worker(path, start, stop):
    cached = CachedEmbedder(CountingEmbedder(), path, chunk_size=5, progress=False)
    cached.embed([f"shared {i}" for i in range(start, stop)])


def test_cache_is_shared_by_concurrent_writers(tmp_path):
    path = tmp_path / "cache.sqlite3"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_worker, args=(path, s, s + 60)) for s in (0, 20, 40)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    cached = CachedEmbedder(CountingEmbedder(), path, progress=False)
    assert cached.store.count("counting") == 100
    vectors = cached.embed([f"shared {i}" for i in range(100)])
    assert cached.inner.seen == []
    assert np.allclose(vectors, HashingEmbedder(dim=16).embed([f"shared {i}" for i in range(100)]))


def test_cache_separates_embedders(tmp_path):
    path = tmp_path / "cache.sqlite3"
    a = CachedEmbedder(HashingEmbedder(dim=16), path, progress=False)
    b = CachedEmbedder(HashingEmbedder(dim=32), path, progress=False)
    assert a.embed(["x"]).shape == (1, 16) and b.embed(["x"]).shape == (1, 32)


# --- precompute ----------------------------------------------------------------------------------


def test_precompute_embeds_only_new_profiles(movielens, tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite3", progress=False)
    fold1 = embed_profiles(movielens, canonical_fold(movielens, 1).train, cached, ProfileConfig())
    assert fold1.item.shape == (movielens.n_items, 16)
    assert fold1.user.shape == fold1.user_demographic.shape == (movielens.n_users, 16)
    first_count = len(inner.seen)
    embed_profiles(movielens, canonical_fold(movielens, 1).train, cached, ProfileConfig())
    assert len(inner.seen) == first_count, "a second run embeds nothing"
    embed_profiles(movielens, canonical_fold(movielens, 2).train, cached, ProfileConfig())
    new_texts = inner.seen[first_count:]
    assert 0 < len(new_texts) <= movielens.n_users
    assert all(t.startswith("Age: ") for t in new_texts), "items and demographics come from the cache"


def test_precompute_rows_follow_the_index_order(movielens):
    from hybridrec.data.profiles import build_item_profiles

    embeddings = embed_profiles(
        movielens, canonical_fold(movielens, 1).train, HashingEmbedder(dim=32), ProfileConfig()
    )
    texts = build_item_profiles(movielens.items)
    item_id = int(movielens.item_index.ids[5])
    assert np.array_equal(embeddings.item[5], HashingEmbedder(dim=32).embed([texts[item_id]])[0])


def test_a_genre_is_read_by_its_name_and_its_glossary_phrases(movielens):
    """A genre with glossary phrases is read one third by the unit vector of "<genre> films", two
    thirds by the mean of its phrases' unit vectors; a genre without any is its name's unit vector."""
    from hybridrec.embedders.base import l2_normalize

    embedder = HashingEmbedder(dim=32)
    glosses = {"Horror": ["scary films about monsters", "haunted houses and slashers"]}
    embeddings = embed_profiles(
        movielens, canonical_fold(movielens, 1).train, embedder, ProfileConfig(), glosses
    )
    names = list(embeddings.genre_names)
    name, *phrases = l2_normalize(embedder.embed(["Horror films", *glosses["Horror"]]))
    horror = (name + 2 * np.mean(phrases, axis=0)) / 3
    np.testing.assert_allclose(embeddings.genres[names.index("Horror")], horror, atol=1e-6)
    other = next(g for g in names if g != "Horror")
    np.testing.assert_allclose(
        embeddings.genres[names.index(other)], l2_normalize(embedder.embed([f"{other} films"]))[0], atol=1e-6
    )


# --- static: MiniLM distilled into token vectors ----------------------------------------------------


def _static_with_table(tmp_path, monkeypatch):
    """A static embedder whose table is random (distilling the real one takes half a minute)."""
    from hybridrec.embedders.static import StaticMiniLMEmbedder

    def fake_distill(tokenizer, sif_coefficient):
        rng = np.random.default_rng(0)
        return rng.normal(size=(tokenizer.get_vocab_size(), 384)).astype(np.float32)

    monkeypatch.setattr("hybridrec.embedders.static.distill_table", fake_distill)
    return StaticMiniLMEmbedder(table_dir=str(tmp_path / "static"))


def test_static_vector_depends_on_its_text_alone(tmp_path, monkeypatch):
    embedder = _static_with_table(tmp_path, monkeypatch)
    texts = ["Star Wars (1977). Genres: Action, Sci-Fi.", "Heat", "", "Fargo (1996). " * 40]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[[0, 1, 3]], axis=1), 1.0, atol=1e-6)
    assert not vectors[2].any(), "a text without tokens has no direction"
    for k, text in enumerate(texts):
        assert np.array_equal(embedder.embed([text, *texts[::-1]])[0], vectors[k])
    assert embedder.name == "static-minilm-l6-v2-sif0.0001"


def test_static_table_is_kept_for_the_next_process(tmp_path, monkeypatch):
    first = _static_with_table(tmp_path, monkeypatch).embed(["a space opera"])
    (kept,) = (tmp_path / "static").iterdir()
    assert kept.suffix == ".npy"

    def no_distilling(tokenizer, sif_coefficient):
        raise AssertionError("the kept table was not read")

    from hybridrec.embedders.static import StaticMiniLMEmbedder

    monkeypatch.setattr("hybridrec.embedders.static.distill_table", no_distilling)
    again = StaticMiniLMEmbedder(table_dir=str(tmp_path / "static")).embed(["a space opera"])
    assert np.array_equal(again, first)


def test_static_table_that_cannot_be_kept_stays_in_memory(tmp_path, monkeypatch, caplog):
    from hybridrec.embedders.static import StaticMiniLMEmbedder

    _static_with_table(tmp_path, monkeypatch)  # patches the distillation
    (tmp_path / "a file").write_text("")
    with caplog.at_level("WARNING", logger="hybridrec.embedders.static"):
        vectors = StaticMiniLMEmbedder(table_dir=str(tmp_path / "a file" / "static")).embed(["x"])
    assert vectors.shape == (1, 384) and "could not keep" in caplog.text


@pytest.mark.slow
def test_static_distilled_from_minilm_puts_science_fiction_near_science_fiction(tmp_path):
    """The real distillation (half a minute on one core): the same table twice, and meaningful."""
    from hybridrec.embedders.static import StaticMiniLMEmbedder

    embedder = StaticMiniLMEmbedder(table_dir=None)
    query, scifi, kids = embedder.embed(
        [
            "I love science fiction: spaceships, aliens and distant galaxies.",
            "Alien Planet Invasion (1990). Genres: Action, Sci-Fi.",
            "The Little Puppy's Birthday (1992). Genres: Animation, Children's.",
        ]
    )
    assert float(query @ scifi) > float(query @ kids) + 0.1
    table, tokenizer = embedder._load()
    from hybridrec.embedders.static import distill_table

    assert np.array_equal(distill_table(tokenizer, embedder.sif_coefficient), table)


# --- Gemini against the fake server ---------------------------------------------------------------


def _gemini(**kwargs):
    return GeminiEmbedder(initial_wait_s=0.01, max_wait_s=0.05, requests_per_minute=0, **kwargs)


def _expected(texts, dim):
    vectors = np.array([fake_vector(t, dim) for t in texts], dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_gemini_embeds_through_the_real_client(fake_gemini):
    embedder = _gemini(output_dimensionality=8)
    vectors = embedder.embed(["space opera", "cartoon"])
    assert np.allclose(vectors, _expected(["space opera", "cartoon"], 8), atol=1e-5)
    (call,) = fake_gemini.calls("batchEmbedContents")
    assert call.model == "gemini-embedding-001"
    assert call.headers.get("x-goog-api-key") == "test-key"
    assert [r["outputDimensionality"] for r in call.body["requests"]] == [8, 8]
    assert "test-key" not in repr(embedder) and "test-key" not in embedder.name


def test_gemini_batches_requests(fake_gemini):
    texts = [f"profile {i}" for i in range(230)]
    vectors = _gemini(output_dimensionality=4, batch_size=100).embed(texts)
    sizes = [len(c.body["requests"]) for c in fake_gemini.calls("batchEmbedContents")]
    assert sizes == [100, 100, 30]
    assert np.allclose(vectors, _expected(texts, 4), atol=1e-5)


def test_gemini_retries_a_429(fake_gemini):
    fake_gemini.fail(429, times=2)
    vectors = _gemini(output_dimensionality=4).embed(["a"])
    assert len(fake_gemini.calls("batchEmbedContents")) == 3
    assert np.allclose(vectors, _expected(["a"], 4), atol=1e-5)


def test_gemini_persistent_500_fails_clearly_after_the_retries(fake_gemini):
    fake_gemini.fail(500, times=10)
    with pytest.raises(
        GeminiUnavailableError,
        match=r"Gemini embeddings failed \(within a budget of 120s\): HTTP 500 INTERNAL",
    ):
        _gemini(output_dimensionality=4, max_attempts=3).embed(["a"])
    assert len(fake_gemini.calls("batchEmbedContents")) == 3


def test_gemini_does_not_retry_a_400(fake_gemini):
    fake_gemini.fail(400)
    with pytest.raises(GeminiUnavailableError, match="HTTP 400"):
        _gemini(output_dimensionality=4).embed(["a"])
    assert len(fake_gemini.calls("batchEmbedContents")) == 1


def test_gemini_retries_a_timeout(fake_gemini):
    fake_gemini.delay(3.0)
    vectors = _gemini(output_dimensionality=4, timeout_s=1.0).embed(["slow"])
    assert len(fake_gemini.calls("batchEmbedContents")) == 2
    assert np.allclose(vectors, _expected(["slow"], 4), atol=1e-5)


def test_gemini_gives_up_when_its_time_budget_is_spent(fake_gemini):
    """Each answer takes 3 s and the budget is 1 s (the request timeout is clipped to it): the first
    attempt times out with the budget spent, so no second one is made."""
    fake_gemini.delay(3.0, times=10)
    with pytest.raises(GeminiUnavailableError, match=r"within a budget of 1s"):
        _gemini(output_dimensionality=4, budget_s=1.0).embed(["slow"])
    assert len(fake_gemini.calls("batchEmbedContents")) == 1


def test_gemini_without_a_key_fails_at_once(monkeypatch, tmp_path):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROJECT_ROOT", str(tmp_path))
    with pytest.raises(GeminiKeyError, match="set GEMINI_API_KEY"):
        GeminiEmbedder()


def test_gemini_key_from_dotenv(monkeypatch, tmp_path):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("PROJECT_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GEMINI_API_KEY=from-dotenv\n")
    assert find_api_key() == "from-dotenv"
    monkeypatch.setenv("GEMINI_API_KEY", "")  # empty counts as unset
    assert find_api_key() == "from-dotenv"
    monkeypatch.setenv("GOOGLE_API_KEY", "from-env")
    assert find_api_key() == "from-env"


def test_rate_limiter_spaces_calls(monkeypatch):
    clock = {"now": 100.0}
    sleeps = []
    monkeypatch.setattr("hybridrec.gemini.time.monotonic", lambda: clock["now"])
    monkeypatch.setattr("hybridrec.gemini.time.sleep", lambda s: sleeps.append(s))
    limiter = RateLimiter(per_minute=120)  # one call every 0.5 s
    for _ in range(3):
        limiter.wait()
    assert sleeps == pytest.approx([0.5, 1.0])


# --- MiniLM (the real model, shipped in a PyPI package) --------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    from hybridrec.embedders.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def test_minilm_shape_norm_and_determinism(minilm):
    texts = ["Star Wars (1977). Genres: Action, Sci-Fi.", "Toy Story (1995). Genres: Animation, Children's."]
    vectors = minilm.embed(texts)
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(minilm.embed(texts), vectors)
    assert np.allclose(minilm.embed(texts[::-1])[::-1], vectors, atol=1e-6)


def test_minilm_vector_depends_on_its_text_alone(minilm, movielens):
    """Within 1e-5 (bit for bit on this machine type) whatever else is embedded with it: alone, in
    shuffled batches of profiles of every kind and length, or by an embedder of another batch size.
    So a cache's history never changes results, and the batch size is not in the name."""
    from hybridrec.data.profiles import build_demographic_profiles, build_item_profiles, build_user_profiles
    from hybridrec.embedders.minilm import MiniLMEmbedder

    rng = np.random.default_rng(0)
    users = build_user_profiles(
        movielens.users, movielens.items, movielens.ratings, ProfileConfig(), scale=movielens.rating_scale
    )
    texts = [
        *rng.choice(build_item_profiles(movielens.items).to_numpy(), 12, replace=False),
        *rng.choice(users.to_numpy(), 4, replace=False),
        *rng.choice(build_demographic_profiles(movielens.users).to_numpy(), 4, replace=False),
        "Heat",
        "Fargo (1996). Genres: Crime, Drama, Thriller.",
    ]
    alone = np.stack([minilm.embed([t])[0] for t in texts])
    order = rng.permutation(len(texts))
    shuffled = np.empty_like(alone)
    shuffled[order] = minilm.embed([texts[i] for i in order])
    other = MiniLMEmbedder(batch_size=3)
    other._model = minilm._load()  # the same weights, loaded once
    in_threes = other.embed(texts[::-1])[::-1]
    for batched in (shuffled, in_threes):
        assert np.abs(batched - alone).max() < 1e-5
    assert other.name == minilm.name


def test_minilm_keeps_the_vectors_of_caches_filled_one_text_at_a_time(minilm):
    """float32 keeps its name ("...-single") from when texts were embedded one at a time: its vectors
    must be those, within 1e-5."""
    import torch

    texts = ["Heat", "Toy Story (1995). Genres: Animation, Children's, Comedy.", "A technician. " * 20]
    model = minilm._load()
    with torch.inference_mode():
        before = model.encode(texts, batch_size=1, normalize_embeddings=True, show_progress_bar=False)
    assert np.abs(minilm.embed(texts) - before).max() < 1e-5
    assert minilm.name == "all-minilm-l6-v2-float32-len256-single"


def test_minilm_bfloat16_vectors_do_not_depend_on_the_batch_either():
    """bfloat16 rounds by batch shape up to 1e-3 unless every batch has enough tokens (512)."""
    from hybridrec.embedders.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder(precision="bfloat16")
    texts = ["Heat", "Toy Story (1995). Genres: Animation.", "Fargo (1996). Genres: Crime, Drama.", "x " * 40]
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.abs(embedder.embed(texts + texts[:2])[: len(texts)] - alone).max() < 1e-5
    assert embedder.name.endswith("-rows512"), "not the name of bfloat16 vectors embedded one at a time"


def test_minilm_vector_is_the_same_on_any_thread_count(minilm):
    """Fold workers embed on one thread, a lone run on all: the cache must not depend on which came first."""
    import torch

    # a profile of the usual length: on two threads its sums round differently (~1e-7) unless pinned
    text = (
        "Age: 24 (twenties), gender: male, occupation: technician. Prefers Documentary, Mystery, Romance;"
        " less keen on Children's, Musical, Adventure. Loved: 'Star Wars (1977)' (Action, Adventure,"
        " Romance, Sci-Fi, War) 5/5; 'Fargo (1996)' (Crime, Drama, Thriller) 5/5; 'Contact (1997)'"
        " (Drama, Sci-Fi) 5/5. Disliked: 'Batman Forever (1995)' 1/5."
    )
    before = torch.get_num_threads()
    try:
        vectors = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            vectors.append(minilm.embed([text])[0])
            assert torch.get_num_threads() == threads, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(vectors[0], vectors[1])


def test_minilm_puts_science_fiction_near_science_fiction(minilm):
    query, scifi, kids = minilm.embed(
        [
            "I love science fiction: spaceships, aliens and distant galaxies.",
            "Alien Planet Invasion (1990). Genres: Action, Sci-Fi.",
            "The Little Puppy's Birthday (1992). Genres: Animation, Children's.",
        ]
    )
    assert float(query @ scifi) > float(query @ kids) + 0.1


def test_minilm_leaves_stdout_to_the_caller():
    """With WANDB_MODE=offline, loading the model made transformers print a notice on stdout, which
    broke ``predict.py format=json``; what libraries say while loading goes to stderr."""
    import subprocess
    import sys

    code = (
        "from hybridrec.embedders.minilm import MiniLMEmbedder\n"
        "MiniLMEmbedder(1, 'float32', 'cpu', 256).embed(['hello'])\n"
    )
    env = {**os.environ, "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
