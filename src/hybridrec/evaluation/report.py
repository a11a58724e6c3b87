"""The CV summary: per-fold rows, mean ± sample std, written as JSON and as a readable table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hybridrec.io import write_json, write_text


def mean_std(values) -> tuple[float, float]:
    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def summarize_folds(rows: list[dict], keys: list[str]) -> dict:
    """``<key>_mean`` and ``<key>_std`` (sample std) over folds for each key (``test/rmse_mean``, …)."""
    summary: dict = {}
    for key in keys:
        summary[f"{key}_mean"], summary[f"{key}_std"] = mean_std(row.get(key) for row in rows)
    summary["train_seconds_total"] = float(sum(row.get("train_seconds", 0.0) for row in rows))
    return summary


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str], summary: dict | None = None) -> str:
    lines = ["| fold | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row['fold']} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    if summary is not None:
        cells = []
        for c in columns:
            mean, std = summary.get(f"{c}_mean"), summary.get(f"{c}_std")
            cells.append(f"{_fmt(mean)} ± {_fmt(std)}" if f"{c}_mean" in summary else "")
        lines.append("| **mean ± std** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_cv_summary(output_dir: Path, payload: dict, markdown: str) -> None:
    write_json(output_dir / "cv_summary.json", payload)
    write_text(output_dir / "cv_summary.md", markdown + "\n")
