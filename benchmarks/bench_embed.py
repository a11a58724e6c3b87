"""Embedding speed for one fold of MovieLens 100K profiles: cold cache, warm cache, the next fold.

    HYBRIDREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_embed.py

Writes benchmarks/results/embed.{json,md}. Gemini cannot be reached from this machine, so it is not
measured here (its speed is bounded by the configured request rate, not by this machine).
"""

from __future__ import annotations

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


def measure(label: str, make_embedder, data) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        embedder = CachedEmbedder(make_embedder(), Path(tmp) / "cache.sqlite3", progress=False)
        if hasattr(embedder.inner, "_load"):
            embedder.inner._load()  # model loading is measured apart from embedding
        rows = {}
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
        "minilm (float32, default)": lambda: MiniLMEmbedder(precision="float32"),
        "minilm (bfloat16)": lambda: MiniLMEmbedder(precision="bfloat16"),
        "hashing": lambda: HashingEmbedder(),
    }
    results = {label: measure(label, make, data) for label, make in embedders.items()}
    lines = [
        "| embedder | cold fold 1: s (texts/s) | warm fold 1: s | fold 2 after fold 1: texts embedded, s |",
        "|---|---|---|---|",
    ]
    for label, rows in results.items():
        cold, warm, nxt = rows["cold"], rows["warm"], rows["next fold"]
        lines.append(
            f"| {label} | {cold['seconds']:.1f} ({cold['texts_per_s']}) | {warm['seconds']:.2f} | "
            f"{nxt['embedded']} of {nxt['texts']}, {nxt['seconds']:.1f} |"
        )
    lines.append("")
    lines.append(
        "Profiles of one fold: 1,682 movies + 943 users + 943 demographic profiles (duplicates embedded once)."
    )
    lines.append("Command: `HYBRIDREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_embed.py`")
    write_results("embed", {"results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
