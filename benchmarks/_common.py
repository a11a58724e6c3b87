"""Helpers shared by the benchmarks: where results go, and the machine they were measured on."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def data_dir() -> Path:
    value = os.environ.get("HYBRIDREC_DATA_DIR")
    if not value:
        raise SystemExit("set HYBRIDREC_DATA_DIR to a folder holding ml-100k/")
    return Path(value)


def write_results(name: str, payload: dict, table: str) -> Path:
    """Write ``results/<name>.json`` (numbers) and ``results/<name>.md`` (a table), then print the table."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **payload}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / f"{name}.md").write_text(table + "\n")
    print(table)
    return RESULTS_DIR / f"{name}.json"
