"""Inference latency: bundle load, top-10 for a known user, top-10 for a cold-start text.

    .venv/bin/python benchmarks/bench_inference.py [bundle=PATH]   (default: the newest bundle under outputs/)

1,000 calls each; cold-start texts are all different (no embedding-cache hits), as for real new users.
Writes benchmarks/results/inference.{json,md}.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

ROOT = Path(__file__).resolve().parents[1]
AGES = range(18, 68)
OCCUPATIONS = ("engineer", "student", "educator", "artist", "programmer", "writer", "retired", "librarian")
TASTES = (
    "sci-fi and action",
    "romantic comedies",
    "film noir and crime",
    "children's animation",
    "horror",
    "war films and westerns",
    "documentaries",
    "musicals and dramas",
)


def percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "calls": len(samples),
    }


def main() -> None:
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hybridrec.bundle import find_bundle
    from hybridrec.inference.engine import load_engine

    arg = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("bundle=")), None)
    bundle_path = find_bundle(arg, ROOT / "outputs")
    started = time.perf_counter()
    engine = load_engine(bundle_path, ROOT / "outputs", text_cache_size=10_000)
    load_seconds = time.perf_counter() - started
    if engine.embedder is not None:  # the model weights load lazily on first use: not a request cost
        engine.embedder.embed(["warm-up"])
    users = engine.user_index.ids
    known = []
    for k in range(1000):
        started = time.perf_counter()
        engine.recommend(int(users[k % len(users)]), n=10)
        known.append(time.perf_counter() - started)
    cold = []
    if engine.embedder is not None:
        for k in range(1000):
            text = (
                f"Age: {AGES[k % len(AGES)]}, gender: {'male' if k % 2 else 'female'}, occupation: "
                f"{OCCUPATIONS[k % len(OCCUPATIONS)]}. Enjoys {TASTES[k % len(TASTES)]} (#{k})."
            )
            started = time.perf_counter()
            engine.recommend_text(text, n=10)
            cold.append(time.perf_counter() - started)
    payload = {
        "bundle": str(bundle_path),
        "bundle_load_s": round(load_seconds, 3),
        "known_user_top10": percentiles(known),
        "cold_start_text_top10": percentiles(cold) if cold else None,
        "embedder": engine.bundle.manifest.get("embedder"),
    }
    lines = [
        "| query | p50 | p99 |",
        "|---|---|---|",
        f"| top-10, known user | {payload['known_user_top10']['p50_ms']:.2f} ms | {payload['known_user_top10']['p99_ms']:.2f} ms |",
    ]
    if cold:
        c = payload["cold_start_text_top10"]
        lines.append(
            f"| top-10, cold-start text ({payload['embedder']}) | {c['p50_ms']:.1f} ms | {c['p99_ms']:.1f} ms |"
        )
    lines += [
        "",
        "Bundle load (verify checksums, rebuild model, warm up what inference reads from the weights, "
        f"build embedder): {load_seconds:.2f} s",
        "",
        "Command: `.venv/bin/python benchmarks/bench_inference.py`",
    ]
    write_results("inference", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
