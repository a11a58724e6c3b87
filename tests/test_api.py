"""The REST service on a bundle trained on the synthetic data: endpoints, errors, schema, fuzzing, a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import numpy as np
import pytest
import schemathesis
from conftest import REPO_ROOT
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from test_engine import KIDS_TEXT, SCIFI_TEXT

from hybridrec.api.app import create_app, load_state
from hybridrec.api.probe import wait_until_up
from hybridrec.api.settings import Settings


@pytest.fixture(scope="module")
def api_settings(trained_bundle):
    return Settings(
        bundle=str(trained_bundle),
        search_root="/nonexistent",
        text_cache_size=100,
        max_body_bytes=16 * 1024,
        rate_limit=None,  # the module's many requests come from one address; the limit has tests of its own
    )


@pytest.fixture(scope="module")
def client(api_settings):
    with TestClient(create_app(api_settings)) as test_client:
        yield test_client


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["n_users"] == 60 and body["n_items"] == 60
    assert body["bundle_id"] and body["embedder"].startswith("hashing")
    assert body["text_cache"]["size"] == 100 and 0 <= body["text_cache"]["entries"] <= 100


def test_new_users_texts_are_held_in_a_bounded_cache_never_the_training_one(api_settings, engine):
    small = api_settings.model_copy(update={"text_cache_size": 3})
    with TestClient(create_app(small)) as client:
        for k in range(8):
            assert (
                client.post("/v1/recommend", json={"user_text": f"likes film {k}", "n": 2}).status_code == 200
            )
        assert client.get("/v1/health").json()["text_cache"] == {"entries": 3, "size": 3}
        assert not client.app.state.engine.embedder.inner.__class__.__name__.startswith("Cached")


def test_a_client_over_its_rate_gets_429_with_retry_after_and_health_stays_open(api_settings):
    limited = api_settings.model_copy(update={"rate_limit": "3/minute"})
    with TestClient(create_app(limited)) as client:
        answers = [client.post("/v1/recommend", json={"user_id": 2, "n": 2}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        assert "at most 3 per 1 minute" in answers[-1].json()["detail"]
        assert client.get("/v1/health").status_code == 200


def test_cold_start_work_beyond_its_slots_gets_503_with_retry_after(api_settings):
    gated = api_settings.model_copy(update={"cold_start_slots": 1, "cold_start_wait_s": 0.0})
    with TestClient(create_app(gated)) as client:
        gate = client.app.state.cold_start
        client.portal.call(gate.semaphore.acquire)  # a slow new user holds the only slot
        busy = client.post("/v1/recommend", json={"user_text": "space operas", "n": 2})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert client.post("/v1/predict", json={"user_text": "space operas", "item_id": 1}).status_code == 503
        assert (
            client.post("/v1/recommend", json={"user_id": 2, "n": 2}).status_code == 200
        )  # known users pass
        gate.semaphore.release()
        assert client.post("/v1/recommend", json={"user_text": "space operas", "n": 2}).status_code == 200


def test_a_gemini_outage_is_503_with_retry_after(api_settings, compose_train, fake_gemini):
    """A bundle trained on Gemini embeddings (the real client, against the fake server); the server
    then goes down: new users get 503 with Retry-After, known users their lists."""
    from hybridrec.embedders.factory import build_embedder
    from hybridrec.inference.engine import load_engine
    from hybridrec.training.final_fit import train_and_save_bundle

    cfg = compose_train(
        "embedder=gemini",
        "embedder.output_dimensionality=16",
        "embedder.requests_per_minute=0",
        "embedder.max_attempts=2",
        "embedder.initial_wait_s=0.01",
        "trainer.max_epochs=1",
    )
    bundle = train_and_save_bundle(cfg, build_embedder(cfg.embedder, None))
    engine = load_engine(bundle, "/nonexistent", text_cache_size=10, text_budget_s=5.0)
    assert engine.embedder.inner.budget_s == 5.0
    fake_gemini.fail(503, times=10)
    with TestClient(create_app(api_settings, engine)) as client:
        answer = client.post("/v1/recommend", json={"user_text": "a brand new text", "n": 2})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
        assert "Gemini embeddings failed (within a budget of 5s)" in answer.json()["detail"]
        assert client.post("/v1/recommend", json={"user_id": 2, "n": 2}).status_code == 200


def test_each_request_is_logged_once_as_json_with_its_id_and_without_its_body(client, caplog):
    import json

    with caplog.at_level("INFO", logger="hybridrec.api.access"):
        answer = client.post("/v1/recommend", json={"user_text": "a private note about me", "n": 3})
        mine = client.get("/v1/health", headers={"X-Request-ID": "my-request-42"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "hybridrec.api.access"]
    assert len(lines) == 2 and lines[0]["method"] == "POST" and lines[0]["path"] == "/v1/recommend"
    assert lines[0]["status"] == 200 and lines[0]["request_id"] == answer.headers["x-request-id"]
    assert mine.headers["x-request-id"] == "my-request-42" == lines[1]["request_id"]  # the client's own id
    assert "private" not in caplog.text


def test_predict_known_and_text_users(client, engine):
    known = client.post("/predict", json={"user_id": 1, "item_id": 2}).json()
    assert known["rating"] == pytest.approx(engine.predict(1, 2), abs=1e-4) and not known["cold_start"]
    text = client.post("/predict", json={"user_text": SCIFI_TEXT, "item_id": 2}).json()
    assert 1 <= text["rating"] <= 5 and text["cold_start"] and text["title"] == engine.item_info(2)["title"]


def test_recommend_known_user(client, engine):
    body = client.post("/recommend", json={"user_id": 5, "n": 7}).json()
    assert [i["item_id"] for i in body["items"]] == [r.item_id for r in engine.recommend(5, n=7).items]
    assert body["cold_start"] is False and body["explainer"] is None
    seen, _ = engine.seen_items(5)
    assert not {i["item_id"] for i in body["items"]} & set(seen)
    with_seen = client.post("/recommend", json={"user_id": 5, "n": 60, "exclude_seen": False}).json()
    assert len(with_seen["items"]) == 60


def test_recommend_text_users_with_genres_and_explanations(client):
    scifi = client.post("/recommend", json={"user_text": SCIFI_TEXT, "n": 5}).json()
    kids = client.post("/recommend", json={"user_text": KIDS_TEXT, "n": 5}).json()
    assert scifi["cold_start"] and scifi["items"] != kids["items"]
    horror = client.post(
        "/recommend", json={"user_id": 1, "genres": ["Horror"], "n": 3, "explain": True}
    ).json()
    assert all("Horror" in i["genres"] for i in horror["items"])
    assert horror["explainer"] == "grounded"
    assert all(
        i["explanation"]["explainer"] == "grounded" and i["explanation"]["text"] for i in horror["items"]
    )


def test_users_and_items(client, engine):
    user = client.get("/users/1").json()
    assert user["user_id"] == 1 and user["n_ratings"] == len(engine.seen_items(1)[0])
    ratings = [r["rating"] for r in user["top_rated"]]
    assert ratings == sorted(ratings, reverse=True)
    assert client.get("/items/3").json()["title"] == engine.item_info(3)["title"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "detail"),
    [
        ("get", "/users/99999", None, 404, "unknown user_id 99999"),
        ("get", "/items/99999", None, 404, "unknown item_id 99999"),
        ("get", "/items/99999/similar", None, 404, "unknown item_id 99999"),
        ("get", "/items/1/similar?n=0", None, 422, "greater than or equal to 1"),
        ("get", "/items/1/similar?n=101", None, 422, "less than or equal to 100"),
        ("post", "/predict", {"user_id": 99999, "item_id": 1}, 404, "unknown user_id 99999"),
        ("post", "/predict", {"user_id": 1, "item_id": 99999}, 404, "unknown item_id 99999"),
        ("post", "/recommend", {"user_id": 99999}, 404, "unknown user_id 99999"),
        ("post", "/recommend", {}, 422, "give exactly one of user_id, user_text or liked_items"),
        (
            "post",
            "/recommend",
            {"user_id": 1, "user_text": "hi"},
            422,
            "give exactly one of user_id, user_text or liked_items",
        ),
        ("post", "/recommend", {"user_text": ""}, 422, "at least 1 character"),
        ("post", "/recommend", {"user_text": "   "}, 422, "user_text is empty"),
        # white space to Python (a separator, an ideographic space): refused as the spec's pattern says
        ("post", "/predict", {"user_text": "\u001d\u3000", "item_id": 1}, 422, "user_text is empty"),
        ("post", "/recommend", {"user_text": "x" * 2001}, 422, "at most 2000 characters"),
        ("post", "/recommend", {"user_id": 1, "n": 0}, 422, "greater than or equal to 1"),
        ("post", "/recommend", {"user_id": 1, "n": 101}, 422, "less than or equal to 100"),
        ("post", "/recommend", {"user_id": "1"}, 422, "valid integer"),
        ("post", "/recommend", {"user_id": 1, "n": 2.5}, 422, "valid integer"),
        ("post", "/recommend", {"user_id": 1, "genres": ["Opera"]}, 422, "unknown genre 'Opera'"),
        ("post", "/recommend", {"user_id": 1, "colour": "red"}, 422, "Extra inputs are not permitted"),
        ("get", "/users/abc", None, 422, "valid integer"),
        ("get", "/users/0", None, 422, "greater than or equal to 1"),
    ],
)
def test_errors_are_clear_4xx(client, method, path, payload, status, detail):
    response = client.request(method.upper(), path, json=payload)
    assert response.status_code == status, response.text
    assert detail in response.text


def test_malformed_json_and_oversized_bodies(client):
    bad = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "JSON" in bad.text
    for unreadable in (b"[" * 1000 + b"]" * 1000, b"\xff\xfe\x00{"):  # nested too deep; not UTF-8
        answer = client.post(
            "/v1/recommend", content=unreadable, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, (unreadable[:10], answer.status_code, answer.text)
    both = client.post("/v1/recommend", json={"user_id": 1, "user_text": None})
    assert both.status_code == 422 and "must not be null" in both.text
    huge = client.post("/recommend", json={"user_text": "y" * 20_000})
    assert huge.status_code == 413 and "over 16384 bytes" in huge.json()["detail"]

    def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(20):
            yield b" " * 1024

    streamed = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_openapi_documents_every_endpoint_with_examples(client):
    spec = client.get("/openapi.json").json()
    paths = {
        "/health",
        "/predict",
        "/recommend",
        "/recommend/batch",
        "/users/{user_id}",
        "/items/{item_id}",
        "/items/{item_id}/similar",
        "/items",
        "/experiment",
        "/feedback",
    }
    assert set(spec["paths"]) == {f"/v1{p}" for p in paths}  # the unversioned aliases stay out of the spec
    operations = [op for methods in spec["paths"].values() for op in methods.values()]
    assert len({op["operationId"] for op in operations}) == len(operations) and all(
        "_v1_" not in op["operationId"] for op in operations
    )
    assert all({"404", "413", "422", "503"} <= set(op["responses"]) for op in operations)
    schemas = spec["components"]["schemas"]
    assert schemas["RecommendRequest"]["examples"] and schemas["RecommendResponse"]["examples"]
    assert client.get("/docs").status_code == 200


def test_the_unversioned_paths_answer_as_aliases_of_v1(client):
    assert client.get("/health").json() == client.get("/v1/health").json()
    body = {"user_id": 3, "n": 4}
    assert client.post("/recommend", json=body).json() == client.post("/v1/recommend", json=body).json()


def test_a_new_user_starts_from_films_they_rated(client, engine):
    liked = [{"item_id": int(i)} for i in engine.item_index.ids[:2]] + [
        {"item_id": int(engine.item_index.ids[5]), "rating": 1}
    ]
    body = client.post("/v1/recommend", json={"liked_items": liked, "n": 5}).json()
    assert body["cold_start"] and len(body["items"]) == 5
    assert not {i["item_id"] for i in body["items"]} & {x["item_id"] for x in liked}  # seen: left out
    assert client.post("/v1/recommend", json={"liked_items": [{"item_id": 99999}]}).status_code == 404


def test_batch_recommendations_equal_one_request_per_user(client):
    batch = client.post("/v1/recommend/batch", json={"user_ids": [1, 2, 3], "n": 4}).json()["results"]
    assert [r["user_id"] for r in batch] == [1, 2, 3]
    for row in batch:
        one = client.post("/v1/recommend", json={"user_id": row["user_id"], "n": 4}).json()["items"]
        assert row["items"] == one
    assert client.post("/v1/recommend/batch", json={"user_ids": [1, 99999]}).status_code == 404
    assert client.post("/v1/recommend/batch", json={"user_ids": list(range(1, 102))}).status_code == 422


def test_the_catalog_is_searched_and_paged(client, engine):
    everything = client.get("/v1/items", params={"limit": 100}).json()
    assert everything["total"] == engine.n_items and len(everything["items"]) == min(100, engine.n_items)
    page = client.get("/v1/items", params={"offset": 10, "limit": 5}).json()
    assert [i["item_id"] for i in page["items"]] == [i["item_id"] for i in everything["items"][10:15]]
    horror = client.get("/v1/items", params={"genre": "horror", "limit": 100}).json()
    assert horror["total"] and all("Horror" in i["genres"] for i in horror["items"])
    word = engine.item_info(int(engine.item_index.ids[0]))["title"].split()[0]
    titled = client.get("/v1/items", params={"q": word.lower(), "limit": 100}).json()
    assert titled["items"] and all(word.lower() in i["title"].lower() for i in titled["items"])
    assert client.get("/v1/items", params={"limit": 0}).status_code == 422


def test_the_nearest_films_are_the_item_towers_nearest_without_the_film_itself(client, engine):
    answer = client.get("/v1/items/3/similar", params={"n": 5}).json()
    assert answer["item"] == client.get("/v1/items/3").json()
    similar = answer["similar"]
    assert len(similar) == 5 and 3 not in [s["item_id"] for s in similar]
    vectors = engine.item_vectors()
    cosines = vectors @ vectors[engine.item_position(3)]
    cosines[engine.item_position(3)] = -np.inf
    expected = engine.item_index.to_id(np.argsort(-cosines, kind="stable")[:5])
    assert [s["item_id"] for s in similar] == expected.tolist()
    assert [s["similarity"] for s in similar] == sorted((s["similarity"] for s in similar), reverse=True)
    assert similar[0]["similarity"] == pytest.approx(cosines.max(), abs=1e-4)
    everything = client.get("/items/3/similar", params={"n": 100}).json()["similar"]
    assert len(everything) == engine.n_items - 1  # a list longer than the catalog: all of it


def test_the_page_is_served_at_the_root_with_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<html lang="en">' in page.text and "/static/page.js" in page.text
    assert (
        client.get("/static/page.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/static/page.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/missing.js").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]  # the page is no API operation


def test_the_spec_states_the_services_own_text_limit(api_settings):
    short = api_settings.model_copy(update={"max_text_chars": 300})
    with TestClient(create_app(short)) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        assert schemas["RecommendRequest"]["properties"]["user_text"]["maxLength"] == 300
        assert schemas["PredictRequest"]["properties"]["user_text"]["maxLength"] == 300
        too_long = client.post("/v1/recommend", json={"user_text": "x" * 301})
        assert too_long.status_code == 422 and "the limit is 300" in too_long.text


def test_prometheus_metrics_scrape(client):
    client.get("/v1/health")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "http_requests_total" in metrics.text


def test_fuzzing_the_schema_finds_no_failure_of_any_check(api_settings):
    """Schemathesis generates requests from the OpenAPI spec (valid and invalid) and runs every check
    on each answer: no 5xx, every status and body as documented, valid data accepted, invalid refused."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation.modes import GenerationMode

    # the service's default body limit, which every body the spec calls valid fits under (the module's
    # 16 KB limit, for the 413 tests, refuses a valid 2,000-character text of 4-byte characters)
    served = api_settings.model_copy(
        update={"max_body_bytes": Settings.model_fields["max_body_bytes"].default}
    )
    app = create_app(served)
    load_state(app, served)  # schemathesis calls the app without running its lifespan
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def every_check(case):
            case.call_and_validate()

        try:
            every_check()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # nothing invalid to send to an endpoint without inputs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_real_server_process_over_http(trained_bundle, tmp_path):
    port = _free_port()
    env = {**os.environ, "HYBRIDREC_CACHE_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "serve.py"),
            f"bundle={trained_bundle}",
            f"port={port}",
            "log_level=warning",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server, timeout_s=60)
        assert httpx.post(f"{base}/recommend", json={"user_id": 2, "n": 3}).json()["items"]
        assert httpx.post(f"{base}/recommend", json={"user_id": -1}).status_code == 422
        assert httpx.get(f"{base}/health").status_code == 200  # still up after bad input
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    assert server.returncode == 0


def test_serve_exits_with_one_line_when_the_bundle_is_missing(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "serve.py"), f"bundle={tmp_path / 'missing'}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no model bundle at {tmp_path / 'missing'}; pass a bundle folder or a training run folder that holds one"
    ]


def test_a_body_that_never_arrives_gets_408_not_a_hang(trained_bundle, tmp_path):
    """A Content-Length larger than what is sent: the service answers 408 once the body timeout passes."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "serve.py"),
            f"bundle={trained_bundle}",
            f"port={port}",
            "body_timeout_s=1",
            "log_level=warning",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "HYBRIDREC_CACHE_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, timeout_s=60)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            head = "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            connection.sendall(head.encode() + b'{"user_id": 1')
            answer = connection.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408"), answer[:200]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
