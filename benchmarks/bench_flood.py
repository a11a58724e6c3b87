"""Known users and /health while a crowd of new users floods the service with texts.

    .venv/bin/python benchmarks/bench_flood.py [bundle=PATH] [seconds=20] [flood=64]

For the service's default cap on cold-start work (cold_start_slots) and without it (as many slots as
flooding clients), starts `serve.py`, lets `flood` clients send new texts back to back while 4 known
users and 1 health probe send their requests, and writes each side's latency and statuses, and the
text cache's fill afterwards, to benchmarks/results/flood.{json,md}. The per-client rate limit is
off: every client here shares one address.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results
from _load import ROOT, drive, footer, new_user_text, running_server


async def flood_run(base: str, users: list[int], seconds: float, flood: int) -> dict:
    flooding, known, health = await asyncio.gather(
        drive(
            base,
            lambda k: ("POST", "/recommend", {"user_text": new_user_text(k), "n": 10}),
            seconds,
            flood,
            60,
        ),
        drive(
            base, lambda k: ("POST", "/recommend", {"user_id": users[k % len(users)], "n": 10}), seconds, 4
        ),
        drive(base, lambda k: ("GET", "/health", None), seconds, 1),
    )
    cache = httpx.get(f"{base}/health").json()["text_cache"]
    return {"new_texts": flooding, "known_users": known, "health": health, "text_cache": cache}


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    seconds, flood = float(args.get("seconds", 20)), int(args.get("flood", 64))
    from hybridrec.bundle import find_bundle

    bundle = find_bundle(args.get("bundle"), ROOT / "outputs")
    users = [
        int(u) for u in np.loadtxt(bundle / "users.csv", delimiter=",", skiprows=1, usecols=0, dtype=int)
    ]
    settings = {
        "capped (serve.yaml defaults)": ["rate_limit=null"],
        "uncapped": ["rate_limit=null", f"cold_start_slots={flood}", "cold_start_wait_s=60"],
    }
    results = {}
    for name, overrides in settings.items():
        with running_server(bundle, *overrides, "text_cache_size=1000") as base:
            results[name] = asyncio.run(flood_run(base, users, seconds, flood))
    lines = [
        f"| cold-start work ({flood} clients flooding new texts, {seconds:g} s) | known-user /recommend p50 / p99 "
        "| /health p99 | new texts answered / refused 503 | text cache after |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        known, texts = r["known_users"], r["new_texts"]["statuses"]
        lines.append(
            f"| {name} | {known['p50_ms']} / {known['p99_ms']} ms | {r['health']['p99_ms']} ms "
            f"| {texts.get('200', 0)} / {texts.get('503', 0)} | {r['text_cache']['entries']} of {r['text_cache']['size']} |"
        )
    lines += footer(bundle, f".venv/bin/python benchmarks/bench_flood.py seconds={seconds:g} flood={flood}")
    write_results(
        "flood",
        {"bundle": str(bundle), "seconds": seconds, "flood": flood, "runs": results},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
