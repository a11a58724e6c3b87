"""The end of a Hydra multirun: one table of every setting tried, best first.

Registered as a Hydra callback (configs/hydra/default.yaml); each job's ``cv_summary.json`` and the
overrides that made it are collected from the sweep folder.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

MONITORED = "monitored"  # a job's mean over folds of the validation metric the sweep ranks by
COLUMNS = (
    MONITORED,
    "test/rmse_mean",
    "test/rmse_std",
    "test/mae_mean",
    "test/ndcg@10_mean",
    "test/recall@10_mean",
    "train_seconds_total",
)


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """One row per finished job: its swept overrides and its CV numbers."""
    rows = []
    for summary_path in sorted(sweep_dir.glob("*/cv_summary.json"), key=lambda p: _job_number(p.parent)):
        job_dir = summary_path.parent
        overrides_path = job_dir / ".hydra" / "overrides.yaml"
        overrides = list(OmegaConf.load(overrides_path)) if overrides_path.is_file() else []
        summary = json.loads(summary_path.read_text())
        row = {"job": job_dir.name, "overrides": dict(o.split("=", 1) for o in overrides if "=" in o)}
        row.update({k: summary.get(k) for k in COLUMNS if k in summary})
        row["monitor"] = summary.get("monitor")
        row[MONITORED] = summary.get(f"{row['monitor']}_mean")
        rows.append(row)
    return rows


def _job_number(path: Path) -> int:
    return int(path.name) if path.name.isdigit() else 1 << 30


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return "–" if value is None else str(value)


def swept_parameters(rows: list[dict]) -> list[str]:
    """Overrides whose value differs between jobs (the rest were fixed for the whole sweep)."""
    names = sorted({k for row in rows for k in row["overrides"]})
    return [n for n in names if len({row["overrides"].get(n) for row in rows}) > 1] or names


def sweep_table(rows: list[dict], mode: str = "min") -> str:
    params = swept_parameters(rows)
    columns = [c for c in COLUMNS if any(c in row for row in rows)]
    ordered = sorted(rows, key=lambda r: _sort_key(r.get(MONITORED), mode))
    lines = [
        "| job | " + " | ".join(params + columns) + " |",
        "|---" * (1 + len(params) + len(columns)) + "|",
    ]
    for row in ordered:
        cells = [row["overrides"].get(p, "") for p in params] + [_fmt(row.get(c)) for c in columns]
        lines.append(f"| {row['job']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _sort_key(value, mode: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return value if mode == "min" else -value


class SweepSummary(Callback):
    """Write ``sweep_summary.{md,json}`` in the sweep folder and print the table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from hybridrec.io import write_json, write_text

        sweep_dir = Path(config.hydra.sweep.dir)
        rows = collect_jobs(sweep_dir)
        if not rows:
            log.warning("no finished jobs under %s: no sweep summary", sweep_dir)
            return
        mode = OmegaConf.select(config, "monitor.mode", default="min")
        metric = OmegaConf.select(config, "monitor.metric")
        table = sweep_table(rows, mode)
        swept = set(swept_parameters(rows))
        fixed = sorted({f"{k}={v}" for row in rows for k, v in row["overrides"].items() if k not in swept})
        header = f"# Sweep {sweep_dir.name}: {len(rows)} settings, best {metric} first ({MONITORED}: its mean over folds)\n\n"
        if fixed:
            header += "Fixed for every job: " + " ".join(f"`{f}`" for f in fixed) + "\n\n"
        write_text(sweep_dir / "sweep_summary.md", header + table + "\n")
        write_json(sweep_dir / "sweep_summary.json", {"monitor": metric, "mode": mode, "jobs": rows})
        if swept:
            from hybridrec.evaluation.plots import plot_sweep

            plot_sweep(
                rows, sorted(swept), sweep_dir / "sweep_summary.png", (MONITORED, *COLUMNS[1:2], COLUMNS[4])
            )
        print(header + table)
