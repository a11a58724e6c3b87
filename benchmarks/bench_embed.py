"""Embedding speed for one fold of MovieLens 100K profiles: cold cache, warm cache, the next fold.

    HYBRIDREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_embed.py [LABEL ...]

The next fold embeds only its new user profiles (long texts, ~200 tokens): its rate is the one that
decides the larger sets. The machine's load average is recorded beside each embedder: on a shared
machine the rates are rough.

Writes benchmarks/results/embed.{json,md}. Gemini cannot be reached from this machine, so it is not
measured here (its speed is bounded by the configured request rate, not by this machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import data_dir, write_results

from hybridrec.data.context import embed_profiles
from hybridrec.data.movielens import load_movielens
from hybridrec.data.profiles import ProfileConfig
from hybridrec.data.splits import canonical_fold
from hybridrec.embedders.cache import CachedEmbedder
from hybridrec.embedders.hashing import HashingEmbedder
from hybridrec.embedders.minilm import MiniLMEmbedder
from hybridrec.embedders.static import StaticMiniLMEmbedder


def measure(label: str, make_embedder, data) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        embedder = CachedEmbedder(make_embedder(), Path(tmp) / "cache.sqlite3", progress=False)
        if hasattr(embedder.inner, "_load"):
            embedder.inner._load()  # model loading (and the static table's distilling) is not measured
        rows = {"load_average": round(os.getloadavg()[0], 2)}
        for phase, fold in (("cold", 1), ("warm", 1), ("next fold", 2)):
            train = canonical_fold(data, fold).train
            started = time.perf_counter()
            embed_profiles(data, train, embedder, ProfileConfig())
            seconds = time.perf_counter() - started
            stats = embedder.last
            rows[phase] = {
                "seconds": round(seconds, 3),
                "texts": stats.requested,
                "embedded": stats.embedded,
                "texts_per_s": round(stats.embedded / stats.seconds, 1) if stats.embedded else None,
            }
            print(label, phase, rows[phase], flush=True)
    return rows


def main() -> None:
    data = load_movielens(data_dir() / "ml-100k")
    embedders = {
        "minilm (float32, batch_size=1)": lambda: MiniLMEmbedder(batch_size=1),
        "minilm (float32, batch_size=32, default)": lambda: MiniLMEmbedder(batch_size=32),
        "minilm (bfloat16, batch_size=32)": lambda: MiniLMEmbedder(precision="bfloat16"),
        "static_minilm": lambda: StaticMiniLMEmbedder(table_dir=None),
        "hashing": lambda: HashingEmbedder(),
    }
    chosen = sys.argv[1:] or list(embedders)
    results = {label: measure(label, embedders[label], data) for label in chosen}
    lines = [
        "| embedder | cold fold 1: s (texts/s) | warm fold 1: s | fold 2 after fold 1: texts embedded, s (texts/s) "
        "| load average |",
        "|---|---|---|---|---|",
    ]
    for label, rows in results.items():
        cold, warm, nxt = rows["cold"], rows["warm"], rows["next fold"]
        lines.append(
            f"| {label} | {cold['seconds']:.1f} ({cold['texts_per_s']}) | {warm['seconds']:.2f} | "
            f"{nxt['embedded']} of {nxt['texts']}, {nxt['seconds']:.1f} ({nxt['texts_per_s']}) | "
            f"{rows['load_average']} |"
        )
    lines.append("")
    lines.append(
        "Profiles of one fold: 1,682 movies + 943 users + 943 demographic profiles (duplicates embedded once)."
    )
    lines.append(
        "MiniLM runs on one thread; the load average (1 min, 2 cores) was taken as each embedder started."
    )
    lines.append("Command: `HYBRIDREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_embed.py`")
    write_results("embed", {"results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
