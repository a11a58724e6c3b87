"""The inference engine and predict.py on a bundle trained on the synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_entry_points import run_cli

from hybridrec.errors import InvalidInputError, UnknownIdError

SCIFI_TEXT = "Age: 33, gender: male, occupation: engineer. Loves sci-fi and action: aliens, robots, galaxies."
KIDS_TEXT = (
    "Age: 35, gender: female, occupation: educator. Loves animation and children's films: puppies, toys."
)


def test_engine_predictions_equal_the_models_batch_predictions(engine):
    model = engine.model
    users = np.arange(10)
    items = (users * 5) % engine.n_items
    batch = model.predict(users, items)
    one_by_one = [
        engine.predict(engine.user_index.ids[u], engine.item_index.ids[i])
        for u, i in zip(users, items, strict=True)
    ]
    assert np.allclose(batch, one_by_one, atol=1e-6)


def test_a_bundle_loads_without_lightning_and_without_refitting_its_evidence(trained_bundle):
    """Serving reads the members' weights and what the terms learned that is costly (EASE weights,
    Pearson similarities) from the bundle: no Lightning import, no inverse, no similarity at load."""
    code = (
        "import sys\n"
        "import hybridrec.models.evidence.item_item as item_item, hybridrec.models.evidence.item_knn as knn\n"
        "item_item.ease_weights = knn.pearson_baseline_rows = None  # a call would fail\n"
        "from hybridrec.inference.engine import load_engine\n"
        f"engine = load_engine({str(trained_bundle)!r}, '/nonexistent', 10, text=False)\n"
        "assert engine.recommend(int(engine.user_index.ids[0])).items\n"
        "assert engine.predict(int(engine.user_index.ids[0]), int(engine.item_index.ids[0])) > 0\n"
        "assert 'lightning' not in sys.modules, 'lightning imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_recommend_excludes_seen_items(engine):
    for user_id in engine.user_index.ids[:20]:
        seen, _ = engine.seen_items(user_id)
        listed = [r.item_id for r in engine.recommend(user_id, n=10).items]
        assert len(listed) == 10 and not set(listed) & set(seen)
    user_id = engine.user_index.ids[0]
    everything = engine.recommend(user_id, n=engine.n_items, exclude_seen=False)
    assert len(everything.items) == engine.n_items


def test_recommend_orders_by_rank_score_and_reports_ratings(engine):
    items = engine.recommend(engine.user_index.ids[3], n=10).items
    assert [r.rank_score for r in items] == sorted((r.rank_score for r in items), reverse=True)
    assert all(1.0 <= r.score <= 5.0 for r in items)


def test_genre_filter(engine):
    result = engine.recommend(engine.user_index.ids[0], n=5, genres=["horror"])
    assert result.items and all("Horror" in r.genres for r in result.items)
    with pytest.raises(InvalidInputError, match="unknown genre 'Opera'"):
        engine.recommend(engine.user_index.ids[0], genres="Opera")


def test_lists_are_personal(engine):
    lists = {tuple(r.item_id for r in engine.recommend(u, n=10).items) for u in engine.user_index.ids}
    assert len(lists) >= 0.9 * len(engine.user_index)


def test_scifi_and_kids_texts_get_different_lists(engine):
    scifi = engine.recommend_text(SCIFI_TEXT, n=10)
    kids = engine.recommend_text(KIDS_TEXT, n=10)
    assert scifi.cold_start and kids.cold_start
    scifi_ids, kids_ids = [r.item_id for r in scifi.items], [r.item_id for r in kids.items]
    assert len(set(scifi_ids) & set(kids_ids)) <= 5
    count = lambda recs, genre: sum(genre in r.genres for r in recs)  # noqa: E731
    assert count(scifi.items, "Sci-Fi") > count(kids.items, "Sci-Fi")
    assert count(kids.items, "Animation") > count(scifi.items, "Animation")


def test_the_genre_intent_suite_reports_shares_of_the_asked_and_refused_genres(engine):
    from hybridrec.inference.intent import asked_shares, genre_intent

    report = genre_intent(engine, min_films=1, n=5)
    summary = report["summary"]
    assert report["genres"] and all(
        0.0 <= summary[k] <= 1.0 for k in ("asked_share", "paraphrase_share", "refused_share")
    )
    genre = next(iter(report["genres"]))
    shares = asked_shares(engine, {genre: [f"I love {genre} films."], "Not a genre": ["anything"]}, n=5)
    listed = engine.recommend_text(f"I love {genre} films.", n=5).items
    assert shares == {genre: np.mean([genre in r.genres for r in listed])}


def test_new_item_and_text_ratings_are_on_the_scale(engine):
    assert 1.0 <= engine.score_new_item("Alien Robot Galaxy (1999). Genres: Action, Sci-Fi.") <= 5.0
    assert (
        1.0 <= engine.score_new_item("Puppy Toy (1999). Genres: Animation.", engine.user_index.ids[0]) <= 5.0
    )
    assert 1.0 <= engine.predict_text(SCIFI_TEXT, engine.item_index.ids[0]) <= 5.0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda e: e.recommend(99999), UnknownIdError, "unknown user_id 99999"),
        (lambda e: e.recommend("abc"), UnknownIdError, "unknown user_id 'abc'"),
        (lambda e: e.predict(1, 99999), UnknownIdError, "unknown item_id 99999"),
        (lambda e: e.recommend_text("   "), InvalidInputError, "user_text is empty"),
        (lambda e: e.recommend_text("x" * 2001), InvalidInputError, "2001 characters; the limit is 2000"),
        (lambda e: e.recommend(1, n=0), InvalidInputError, "n must be a whole number of at least 1"),
        (lambda e: e.recommend(1, n=2.5), InvalidInputError, "n must be a whole number"),
        (lambda e: e.score_new_item(""), InvalidInputError, "item_text is empty"),
    ],
)
def test_bad_inputs_give_clear_errors(engine, call, error, message):
    with pytest.raises(error, match=message):
        call(engine)


@pytest.mark.slow  # subprocesses (15-37 s): CI runs it after `make test`
def test_predict_cli_json_and_errors(trained_bundle, tmp_path):
    ok = run_cli("predict.py", f"bundle={trained_bundle}", "user_id=1", "format=json")
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(ok.stdout)
    assert len(rows) == 10 and set(rows[0]) == {"item_id", "title", "year", "genres", "score"}
    text = run_cli(
        "predict.py",
        f"bundle={trained_bundle}",
        f"user_text={SCIFI_TEXT} (it's ${{odd}}, [really])",
        "n=3",
        "format=json",
    )
    assert text.returncode == 0, text.stderr
    assert len(json.loads(text.stdout)) == 3
    table = run_cli("predict.py", f"bundle={trained_bundle}", "user_id=1")
    assert table.stdout.splitlines()[1].split()[:2] == ["#", "title"]
    one = run_cli("predict.py", f"bundle={trained_bundle}", "user_id=1", "item_id=2")
    assert one.returncode == 0 and "predicted rating" in one.stdout
    for args, message in [
        (["user_id=99999"], "error: unknown user_id 99999"),
        (["user_id=1", "n=0"], "error: n must be a whole number of at least 1, got 0"),
        ([], 'error: give exactly one of user_id=<id> or user_text="<description>"'),
        (["user_id=1", "format=xml"], "error: format must be table or json, got 'xml'"),
    ]:
        bad = run_cli("predict.py", f"bundle={trained_bundle}", *args)
        assert bad.returncode == 2 and bad.stderr.strip() == message, bad.stderr
    missing = run_cli("predict.py", f"bundle={tmp_path / 'none'}", "user_id=1")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no model bundle" in missing.stderr


def test_corrupt_or_incomplete_bundles_are_refused(trained_bundle, tmp_path):
    import shutil

    from hybridrec.bundle import BundleError, load_bundle

    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained_bundle, corrupt)
    with open(corrupt / "weights.pt", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="weights.pt does not match its checksum"):
        load_bundle(corrupt)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(trained_bundle, incomplete)
    (incomplete / "context.npz").unlink()
    with pytest.raises(BundleError, match="incomplete: context.npz is missing"):
        load_bundle(incomplete)
    result = run_cli("predict.py", f"bundle={corrupt}", "user_id=1")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"error: model bundle at {corrupt} is corrupt: weights.pt does not match its checksum"
    )


@pytest.mark.parametrize(
    "genres", ["genres=Sci-Fi,Action", "genres=Children's", "genres=[Sci-Fi,Action]", "genres=sci-fi"]
)
def test_predict_cli_takes_genres_as_the_readme_writes_them(trained_bundle, genres):
    """``genres=Sci-Fi,Action`` and ``genres=Children's`` once failed in Hydra's parser."""
    result = run_cli("predict.py", f"bundle={trained_bundle}", "user_id=1", "format=json", "n=5", genres)
    assert result.returncode == 0, result.stderr
    wanted = (
        {"Sci-Fi", "Action"} if "Action" in genres else {"Children's"} if "Child" in genres else {"Sci-Fi"}
    )
    assert all(wanted & set(row["genres"]) for row in json.loads(result.stdout))


def test_the_python_api_answers_as_predict_py_does(trained_bundle):
    """``from hybridrec import load_service``: the same lists as the CLI, with predict.yaml's defaults."""
    import hybridrec

    service = hybridrec.load_service(trained_bundle)
    listed = service.ask(user_id=1)
    assert len(listed.rows()) == 10  # predict.yaml's n
    cli = run_cli("predict.py", f"bundle={trained_bundle}", "user_id=1", "format=json")
    assert [r["item_id"] for r in listed.rows()] == [r["item_id"] for r in json.loads(cli.stdout)]
    explained = service.ask(user_text=SCIFI_TEXT, n=3, explain=True)
    assert len(explained.rows()) == 3 and all("explanation" in row for row in explained.rows())
    with pytest.raises(InvalidInputError, match="exactly one"):
        service.ask()


def test_a_list_longer_than_the_catalog_lists_all_of_it(engine):
    assert len(engine.recommend(1, n=10_000, exclude_seen=False).items) == engine.n_items
