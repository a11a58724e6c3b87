"""What each way of running one fold costs: one process, two data-parallel CPU processes (ddp_cpu),
and the per-epoch checkpoint that lets a killed run resume. On a synthetic 100K-format set, so it
runs anywhere without the real data.

    .venv/bin/python benchmarks/bench_scaling.py [--users 300 --items 500 --ratings 15000 --epochs 3]

Each mode is a whole ``train.py cv=fold`` process (start-up, data, training, evaluation), timed from
outside; ``train`` is the fold's training as the run reports it. Writes benchmarks/results/scaling.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_results

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
# name: (overrides, launcher)
MODES = {
    "one process (trainer=cpu)": (["trainer=cpu"], [sys.executable]),
    "one process, no per-epoch checkpoint": (
        ["trainer=cpu", "callbacks.last_checkpoint=null"],
        [sys.executable],
    ),
    "2 CPU processes, ddp_spawn (trainer=ddp_cpu)": (["trainer=ddp_cpu"], [sys.executable]),
    "2 CPU processes started by torchrun (as ddp_multinode)": (
        ["trainer=ddp_cpu", "trainer.strategy=ddp"],
        TORCHRUN,
    ),
}


def run(overrides: list[str], launcher: list[str], data_dir: Path, run_dir: Path) -> dict:
    command = [
        *launcher,
        str(ROOT / "train.py"),
        "cv=fold",
        "embedder=hashing",  # the embedding is not what is measured (and is cached between modes)
        "logger=none",
        "final_fit=false",
        "fold_workers=1",
        "trainer.enable_progress_bar=false",
        "resume=null",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    env = {**os.environ, "HYBRIDREC_DATA_DIR": str(data_dir), "HYBRIDREC_CACHE_DIR": str(data_dir / "cache")}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(overrides)} failed:\n{result.stderr[-2000:]}")
    summary = json.loads((run_dir / "cv_summary.json").read_text())
    [fold] = summary["folds"]
    return {
        "wall_s": round(wall, 1),
        "train_s": fold["train_seconds"],
        "epochs": fold["epochs"],
        "s_per_epoch": round(fold["train_seconds"] / max(fold["epochs"], 1), 2),
        "test/rmse": round(fold["test/rmse"], 4),
        "val/rmse": round(fold["val/rmse"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--ratings", type=int, default=15_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each mode, interleaved; the fastest kept"
    )
    args = parser.parse_args()
    from hybridrec.data.synthetic import write_synthetic

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        write_synthetic(data_dir, "ml-100k", args.users, args.items, args.ratings, seed=0)
        common = [f"trainer.max_epochs={args.epochs}", "data.val_fraction=0.05"]
        for repeat in range(args.repeats):  # (interleaved: a busy spell of a shared machine hits every mode)
            for mode, (name, (overrides, launcher)) in enumerate(MODES.items()):
                row = run([*common, *overrides], launcher, data_dir, data_dir / "runs" / f"{mode}-{repeat}")
                print(name, row, flush=True)
                if name not in rows or row["wall_s"] < rows[name]["wall_s"]:
                    rows[name] = row
    size = f"{args.users} users, {args.items} films, {args.ratings:,} ratings (fold 1: 80 % train)"
    lines = [
        f"# One fold, {args.epochs} epochs, by mode: synthetic 100K-format set of {size}",
        "",
        f"The fastest of {args.repeats} interleaved runs of each mode. Training: the fold's fit as the run",
        "reports it (evidence terms, processes started, epochs, validation).",
        "",
        "| mode | wall clock (process) | training | s / epoch | test RMSE | val RMSE |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['wall_s']} s | {row['train_s']} s | {row['s_per_epoch']} | "
            f"{row['test/rmse']} | {row['val/rmse']} |"
        )
    lines += [
        "",
        f"Command: `.venv/bin/python benchmarks/bench_scaling.py --users {args.users} --items {args.items} "
        f"--ratings {args.ratings} --epochs {args.epochs} --repeats {args.repeats}`",
    ]
    write_results("scaling", {"data": vars(args), "modes": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
