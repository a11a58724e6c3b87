"""The genre-intent suite on a trained bundle (default: the newest under outputs/): for each genre
with at least 20 films, the share of a new user's top 10 in the genre they ask for (literally and in
paraphrase), in the genre they refuse, and the overlap of lists between genres; beside them, the share
for asks written by someone who saw neither the suite nor the genres' glossary
(``benchmarks/data/genre_asks_heldout.json``, four per genre, none naming its genre).

    .venv/bin/python benchmarks/bench_genre_intent.py [bundle=PATH]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_results


def main() -> None:
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hybridrec.bundle import find_bundle
    from hybridrec.inference.engine import load_engine
    from hybridrec.inference.intent import asked_shares, genre_intent

    arg = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("bundle=")), None)
    bundle = find_bundle(arg, ROOT / "outputs")
    engine = load_engine(bundle, ROOT / "outputs", text_cache_size=10_000)
    report = genre_intent(engine)
    heldout = asked_shares(engine, json.loads((ROOT / "benchmarks/data/genre_asks_heldout.json").read_text()))
    summary = report["summary"]
    summary["heldout_share"] = sum(heldout.values()) / len(heldout)
    lines = [
        f"Bundle `{engine.bundle.bundle_id}` ({engine.bundle.manifest.get('embedder')}).",
        "",
        "| genre | films | asked: share of top 10 | paraphrased | held-out wordings | asked, refusing another | refused genre | its share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for genre, row in report["genres"].items():
        lines.append(
            f"| {genre} | {row['films']} | {row['literal']:.2f} | {row['paraphrase']:.2f} | {heldout[genre]:.2f} | "
            f"{row['refusing_asked']:.2f} | {row['refused_genre']} | {row['refused_share']:.2f} |"
        )
    lines += [
        f"| **mean** |  | **{summary['asked_share']:.2f}** | **{summary['paraphrase_share']:.2f}** | "
        f"**{summary['heldout_share']:.2f}** |  |  | "
        f"**{summary['refused_share']:.2f}** |",
        "",
        f"Paraphrases reach {summary['paraphrase_to_literal']:.0%} of the literal share; lists of two "
        f"genres share {summary['overlap_between_genres']:.0%} of their films on average.",
        "",
        "Command: `.venv/bin/python benchmarks/bench_genre_intent.py`",
    ]
    write_results("genre_intent", {"bundle": str(bundle), **report, "heldout": heldout}, "\n".join(lines))


if __name__ == "__main__":
    main()
