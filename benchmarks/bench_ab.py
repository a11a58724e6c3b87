"""The simulator's A/B and repeated A/A runs on a fold bundle: does the loop detect a weak variant,
and how often does it flag a difference between two identical ones (the false-positive rate)?

    python benchmarks/bench_ab.py --bundle RUN/folds/1/bundle --data-dir DATA [--aa-runs 10]

Each A/A run has its own experiment name (a fresh assignment) and seed (other users, other
behaviour), so the runs are independent. Writes results/ab_simulation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, write_results


def simulate(bundle: str, data_dir: str, out: Path, visits: int, *overrides: str) -> tuple[dict, list[str]]:
    command = [
        "nice",
        sys.executable,
        "-m",
        "hybridrec.ab",
        "simulate",
        f"bundle={bundle}",
        f"data_dir={data_dir}",
        f"output_dir={out}",
        f"visits={visits}",
        "seconds=120",
        *overrides,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    summary = json.loads((out / "simulation.json").read_text())
    summary.pop("acknowledged_ids")
    report = json.loads((out / "report.json").read_text())
    ctr = next(t for t in report["tests"] if t["metric"] == "ctr")
    return {**summary, "ctr_difference": ctr["difference"], "ctr_p_holm": ctr["p_holm"]}, command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="a fold bundle (train.py save_fold_bundles=true)")
    parser.add_argument("--data-dir", required=True, help="the folder holding its data set")
    parser.add_argument("--aa-runs", type=int, default=10)
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--label", default="", help="what the bundle and data are, for the table")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ab, ab_command = simulate(args.bundle, args.data_dir, Path(tmp) / "ab", args.visits, "ab=popularity")
        aa = [
            simulate(
                args.bundle,
                args.data_dir,
                Path(tmp) / f"aa{r}",
                args.visits,
                "ab=aa",
                f"ab.name=aa_{r}",
                f"seed={r}",
            )[0]
            for r in range(args.aa_runs)
        ]
    flagged = sum(run["detected"] for run in aa)
    commands = [" ".join(ab_command[1:]), f"… ab=aa ab.name=aa_<r> seed=<r>, r = 0..{args.aa_runs - 1}"]
    table = "\n".join(
        [
            f"# Simulated A/B and A/A runs ({args.label or args.bundle})",
            "",
            "| run | visits | clicks | CTR difference (B − A) | p (Holm) | detected |",
            "|---|---|---|---|---|---|",
            f"| A/B: default vs popularity | {ab['visits']} | {ab['clicks']} | {ab['ctr_difference']:+.4f} | "
            f"{ab['ctr_p_holm']:.3g} | {ab['detected']} |",
            *(
                f"| A/A #{r} | {run['visits']} | {run['clicks']} | {run['ctr_difference']:+.4f} | "
                f"{run['ctr_p_holm']:.3g} | {run['detected']} |"
                for r, run in enumerate(aa)
            ),
            "",
            f"A/A runs flagged: {flagged} of {len(aa)} (α = 0.05 on CTR, Holm over 3 metrics); "
            f"{time.perf_counter() - started:.0f} s in all.",
            "",
            "Commands (this table: `python benchmarks/bench_ab.py " + " ".join(sys.argv[1:]) + "`):",
            "",
            *(f"    {c}" for c in commands),
        ]
    )
    write_results(
        "ab_simulation",
        {
            "label": args.label,
            "bundle": args.bundle,
            "ab": ab,
            "aa": aa,
            "aa_flagged": flagged,
            "commands": commands,
        },
        table,
    )


if __name__ == "__main__":
    main()
