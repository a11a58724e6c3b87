"""Load helpers for the service benchmarks: a real `serve.py` on a free loopback port, and clients
that drive it for a bounded time."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASTES = ("sci-fi and action", "romantic comedies", "film noir", "children's animation", "horror", "westerns")


def footer(bundle: Path, command: str) -> list[str]:
    """The lines under a service benchmark's table: what was served, and how to run it again."""
    return ["", f"Bundle: `{bundle}`. Client and server share this machine's CPUs.", f"Command: `{command}`"]


def new_user_text(k: int) -> str:
    """A different text each time: nothing is served from the text cache."""
    return f"Age: {18 + k % 50}, occupation: engineer. Enjoys {TASTES[k % len(TASTES)]} (#{k})."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(bundle: Path, *overrides: str) -> Iterator[str]:
    """`serve.py` on ``bundle`` with ``overrides``, up and warmed (one text embedded); yields its base URL."""
    from hybridrec.api.probe import wait_until_up

    port = free_port()
    with tempfile.TemporaryDirectory() as cache:
        server = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "serve.py"),
                f"bundle={bundle}",
                f"port={port}",
                "log_level=warning",
                *overrides,
            ],
            cwd=ROOT,
            env={**os.environ, "HYBRIDREC_CACHE_DIR": cache},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, server, timeout_s=120)
            httpx.post(f"{base}/recommend", json={"user_text": "warm-up text", "n": 10}, timeout=60)
            yield base
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)


async def drive(
    base: str, make_request: Callable[[int], tuple], seconds: float, concurrency: int, timeout_s: float = 10.0
) -> dict:
    """``concurrency`` clients, each sending ``make_request(k)`` back to back for ``seconds``: requests/s,
    latency percentiles and the count of each status."""
    latencies, errors, statuses = [], 0, {}
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(
        base_url=base, timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def worker(worker_id: int) -> None:
            nonlocal errors
            k = worker_id
            while time.perf_counter() < deadline:
                method, path, body = make_request(k)
                k += concurrency
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                    statuses["client error"] = statuses.get("client error", 0) + 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "errors": errors,
        "statuses": {str(k): v for k, v in statuses.items()},
    }
