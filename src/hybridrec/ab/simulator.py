"""A traffic simulator: users of a fold's held-out ratings ask a running server for lists and act on
them, so an experiment can be run end to end on loopback and its report checked.

Each visit: a held-out user (one the bundle knows, with films they rated >= 4 in the fold's test
part) asks for a top-k list; they look down it, examining the film at rank r with probability
1 / log2(r + 1) (position bias); an examined film they rated >= 4 is clicked, watched and rated
with their held-out rating; one they rated <= 2 is dismissed. Films they never rated get nothing.
The bundle must be a fold's (its test part unseen in training): a bundle of every rating has no
held-out part, and is refused.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, RATING_COL, RELEVANCE_THRESHOLD, USER_COL
from hybridrec.errors import InvalidInputError

log = logging.getLogger(__name__)

DISLIKED = 2.0  # an examined film rated at or below this is dismissed


def held_out_ratings(bundle_path: str | Path, data_dir: str, splits_dir: str) -> pd.DataFrame:
    """The test part of the fold a fold bundle was trained for, with the users the bundle knows."""
    from omegaconf import OmegaConf

    from hybridrec.bundle import verify_bundle
    from hybridrec.data.datamodule import make_split
    from hybridrec.data.dataset import DatasetSource, load_dataset

    bundle_path = Path(bundle_path)
    manifest = verify_bundle(bundle_path)
    split = manifest.get("split") or {}
    protocol = split.get("protocol", "all")
    if protocol == "all":
        raise InvalidInputError(
            f"bundle {bundle_path} was trained on every rating: it has no held-out part to simulate users "
            "from; save fold bundles (train.py save_fold_bundles=true) and simulate on one of those"
        )
    if protocol not in ("canonical", "random90"):
        raise InvalidInputError(
            f"the simulator needs a fold of known users (canonical, random90), not {protocol}"
        )
    config = OmegaConf.load(bundle_path / "config.yaml")
    data = dict(OmegaConf.to_container(config.data, resolve=False))
    data["data_dir"] = data_dir
    test = make_split(
        load_dataset(DatasetSource.from_config(data)),
        protocol,
        int(split["fold"]),
        OmegaConf.select(config, "cv.split_seed"),
        splits_dir,
    ).test
    known = pd.read_csv(bundle_path / "users.csv", usecols=[USER_COL])[USER_COL]
    return test[test[USER_COL].isin(known)][[USER_COL, ITEM_COL, RATING_COL]]


@dataclass
class SimulatedUser:
    user_id: int
    ratings: dict[int, float]  # held-out film -> stars


@dataclass
class Outcome:
    visits: int = 0
    clicks: int = 0
    acknowledged: list[int] = field(default_factory=list)  # event ids the server answered 202 with
    failures: int = 0
    seconds: float = 0.0


def simulated_users(held_out: pd.DataFrame, count: int, rng: np.random.Generator) -> list[SimulatedUser]:
    """Up to ``count`` held-out users who liked at least one held-out film."""
    liked = held_out[held_out[RATING_COL] >= RELEVANCE_THRESHOLD][USER_COL].unique()
    chosen = rng.choice(np.sort(liked), size=min(count, len(liked)), replace=False)
    by_user = held_out[held_out[USER_COL].isin(chosen)].groupby(USER_COL)
    return [
        SimulatedUser(int(u), dict(zip(g[ITEM_COL].astype(int), g[RATING_COL].astype(float), strict=True)))
        for u, g in by_user
    ]


def act(user: SimulatedUser, items: list[dict], rng: np.random.Generator) -> list[dict]:
    """The feedback a user gives to a list (position-biased examination)."""
    feedback = []
    for rank, item in enumerate(items, start=1):
        if rng.random() >= 1 / np.log2(rank + 1):
            continue
        stars = user.ratings.get(int(item["item_id"]))
        if stars is None:
            continue
        base = {"user_id": user.user_id, "item_id": int(item["item_id"]), "variant": item.get("variant")}
        if stars >= RELEVANCE_THRESHOLD:
            feedback += [
                {**base, "event": "click"},
                {**base, "event": "watch"},
                {**base, "event": "rating", "value": stars},
            ]
        elif stars <= DISLIKED:
            feedback.append({**base, "event": "dismiss"})
    return feedback


def run_traffic(
    base_url: str,
    users: list[SimulatedUser],
    k: int,
    max_visits: int,
    max_seconds: float,
    concurrency: int,
    seed: int,
) -> Outcome:
    """Visits by randomly drawn users until ``max_visits`` or ``max_seconds``, ``concurrency`` at once."""
    outcome, lock = Outcome(), threading.Lock()
    started = time.monotonic()
    deadline = started + max_seconds
    tickets = iter(range(max_visits))

    def worker(worker_id: int) -> None:
        rng = np.random.default_rng([seed, worker_id])
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    if next(tickets, None) is None:
                        return
                user = users[int(rng.integers(len(users)))]
                try:
                    listed = client.post("/recommend", json={"user_id": user.user_id, "n": k})
                    listed.raise_for_status()
                    events, ids = act(user, listed.json()["items"], rng), []
                    for event in events:
                        answer = client.post("/feedback", json=event)
                        answer.raise_for_status()
                        ids.append(answer.json()["event_id"])
                except httpx.HTTPError as err:
                    log.warning("a visit failed: %s", err)
                    with lock:
                        outcome.failures += 1
                    continue
                with lock:
                    outcome.visits += 1
                    outcome.clicks += sum(event["event"] == "click" for event in events)
                    outcome.acknowledged.extend(ids)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    outcome.seconds = round(time.monotonic() - started, 2)
    return outcome


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(bundle: str | Path, experiment: dict, port: int, stderr_path: Path) -> subprocess.Popen:
    """The service on loopback in its own process (uvicorn on the app factory; its settings from
    the environment, as serve.py hands them to its workers)."""
    env = {
        **os.environ,
        "HYBRIDREC_BUNDLE": str(bundle),
        "HYBRIDREC_SEARCH_ROOT": "/nonexistent",
        "HYBRIDREC_RATE_LIMIT": "",  # the simulated users all come from one address
        "HYBRIDREC_EXPLAINER": json.dumps({"_target_": "hybridrec.explain.grounded.GroundedExplainer"}),
        "HYBRIDREC_EXPERIMENT": json.dumps(experiment),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "hybridrec.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with open(stderr_path, "ab") as stderr:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def stop_server(server: subprocess.Popen, timeout_s: float = 30) -> None:
    """A clean stop (SIGINT: the lifespan writes out queued exposures), SIGKILL if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout_s)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
