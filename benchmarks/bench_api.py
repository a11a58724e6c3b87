"""Load on the REST service: /health, /recommend for known users, /recommend for cold-start texts.

    .venv/bin/python benchmarks/bench_api.py [bundle=PATH] [seconds=20] [concurrency=16]

Starts `serve.py` on a free loopback port, drives each case with `concurrency` concurrent clients for
a bounded time, and writes requests/s, p50, p99 and the error count per case to
benchmarks/results/api.{json,md}. Traffic goes to 127.0.0.1 only, and the run stops by itself.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results
from _load import ROOT, drive, footer, new_user_text, running_server


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    seconds, concurrency = float(args.get("seconds", 20)), int(args.get("concurrency", 16))
    from hybridrec.bundle import find_bundle

    bundle = find_bundle(args.get("bundle"), ROOT / "outputs")
    users = [
        int(u) for u in np.loadtxt(bundle / "users.csv", delimiter=",", skiprows=1, usecols=0, dtype=int)
    ]
    with running_server(bundle, "rate_limit=null") as base:  # one client address: no per-client limit
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
                {"user_text": new_user_text(k), "n": 10},
            ),
        }
        results = {name: asyncio.run(drive(base, make, seconds, concurrency)) for name, make in cases.items()}
    lines = [
        f"| case ({concurrency} concurrent clients, {seconds:g} s each) | requests/s | p50 | p99 | not 200 |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        refused = ", ".join(f"{n} x {status}" for status, n in r["statuses"].items() if status != "200")
        lines.append(
            f"| {name} | {r['requests_per_s']} | {r['p50_ms']} ms | {r['p99_ms']} ms | "
            f"{r['errors']}{f' ({refused})' if refused else ''} |"
        )
    lines += [
        "",
        "A 503 is the service shedding load: a cold-start text that finds no free embedding slot within "
        "`cold_start_wait_s` is refused with Retry-After rather than queued (`api/limits.py`).",
    ]
    lines += footer(
        bundle, f".venv/bin/python benchmarks/bench_api.py seconds={seconds:g} concurrency={concurrency}"
    )
    write_results(
        "api",
        {"bundle": str(bundle), "seconds": seconds, "concurrency": concurrency, "cases": results},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
