"""Load on the REST service: /health, /recommend for known users, /recommend for cold-start texts.

    .venv/bin/python benchmarks/bench_api.py [bundle=PATH] [seconds=20] [concurrency=16]

Starts `serve.py` on a free loopback port, drives each case with `concurrency` concurrent clients for
a bounded time, and writes requests/s, p50, p99 and the error count per case to
benchmarks/results/api.{json,md}. Traffic goes to 127.0.0.1 only, and the run stops by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

ROOT = Path(__file__).resolve().parents[1]
TASTES = ("sci-fi and action", "romantic comedies", "film noir", "children's animation", "horror", "westerns")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def drive(base: str, make_request, seconds: float, concurrency: int) -> dict:
    latencies, errors, statuses = [], 0, {}
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(
        base_url=base, timeout=10.0, limits=httpx.Limits(max_connections=concurrency)
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


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    seconds, concurrency = float(args.get("seconds", 20)), int(args.get("concurrency", 16))
    from hybridrec.api.probe import wait_until_up
    from hybridrec.bundle import find_bundle

    bundle = find_bundle(args.get("bundle"), ROOT / "outputs")
    users = [
        int(u) for u in np.loadtxt(bundle / "users.csv", delimiter=",", skiprows=1, usecols=0, dtype=int)
    ]
    port = free_port()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HYBRIDREC_CACHE_DIR": cache}
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "serve.py"), f"bundle={bundle}", f"port={port}", "log_level=warning"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, server, timeout_s=120)
            httpx.post(f"{base}/recommend", json={"user_text": "warm-up text", "n": 10}, timeout=60)
            cases = {
                "GET /health": lambda k: ("GET", "/health", None),
                "POST /recommend (known users)": lambda k: (
                    "POST",
                    "/recommend",
                    {"user_id": users[k % len(users)], "n": 10},
                ),
                "POST /recommend (cold-start texts)": lambda k: (
                    "POST",
                    "/recommend",
                    {
                        "user_text": f"Age: {18 + k % 50}, occupation: engineer. Enjoys {TASTES[k % len(TASTES)]} (#{k}).",
                        "n": 10,
                    },
                ),
            }
            results = {
                name: asyncio.run(drive(base, make, seconds, concurrency)) for name, make in cases.items()
            }
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    lines = [
        f"| case ({concurrency} concurrent clients, {seconds:g} s each) | requests/s | p50 | p99 | errors |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['requests_per_s']} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['errors']} |"
        )
    lines += [
        "",
        f"Bundle: `{bundle}`. Client and server share this machine's CPUs.",
        f"Command: `.venv/bin/python benchmarks/bench_api.py seconds={seconds:g} concurrency={concurrency}`",
    ]
    write_results(
        "api",
        {"bundle": str(bundle), "seconds": seconds, "concurrency": concurrency, "cases": results},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
