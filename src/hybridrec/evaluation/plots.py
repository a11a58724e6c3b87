"""Plots of a CV run and of a sweep, drawn headless with matplotlib and written next to the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.constants import PREDICTION_COL, RATING_COL


def headless_pyplot():
    """matplotlib's pyplot on the Agg backend: plots are files, never windows (CI has no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` (its folder made) and free it; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    headless_pyplot().close(fig)
    return path


def plot_cv_summary(model_name: str, rows: list[dict], baselines: dict[str, list[dict]], path: Path) -> Path:
    """Per-fold test RMSE and NDCG@10 of the model beside the baselines of the same run."""
    plt = headless_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    series = {model_name: rows, **baselines}
    folds = [r["fold"] for r in rows]
    width = 0.8 / len(series)
    for ax, key, title in (
        (axes[0], "test/rmse", "test RMSE (lower is better)"),
        (axes[1], "test/ndcg@10", "NDCG@10 (higher is better)"),
    ):
        drawn = 0
        for k, (name, fold_rows) in enumerate(series.items()):
            values = [r.get(key, np.nan) for r in fold_rows]
            if all(v is None or np.isnan(v) for v in values):
                continue  # a ranking-only baseline has no RMSE
            x = np.arange(len(folds)) + (k - (len(series) - 1) / 2) * width
            bars = ax.bar(x, values, width, color=f"C{k}", label=f"{name} ({np.nanmean(values):.3f})")
            if name == model_name:
                for bar in bars:
                    bar.set_edgecolor("black")
            drawn += 1
        ax.set_xticks(np.arange(len(folds)), [str(f) for f in folds])
        ax.set_xlabel("fold")
        ax.set_title(title)
        if key == "test/rmse" and drawn:
            low = np.nanmin([r.get(key, np.nan) for s in series.values() for r in s])
            ax.set_ylim(max(0.0, low - 0.1), None)
        ax.legend(
            fontsize=8,
            title="mean over folds",
            title_fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            ncol=2,
            frameon=False,
        )
    return save_figure(fig, path)


def plot_learning_curves(histories: dict[int, pd.DataFrame], path: Path, monitor: str) -> Path:
    """Training loss and the validation metrics per epoch, one line per fold."""
    plt = headless_pyplot()
    panels = [c for c in ("train/loss", "val/rmse", "val/ndcg@10") if any(c in h for h in histories.values())]
    if monitor not in panels and any(monitor in h for h in histories.values()):
        panels.append(monitor)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, column in zip(axes[0], panels, strict=True):
        for fold, history in histories.items():
            if column in history:
                ax.plot(history["epoch"], history[column], marker=".", label=f"fold {fold}")
        ax.set_title(column + (" (monitored)" if column == monitor else ""))
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_calibration(predictions: pd.DataFrame, path: Path) -> Path:
    """Mean predicted rating for each true rating level (test predictions of all folds)."""
    plt = headless_pyplot()
    stats = predictions.groupby(RATING_COL)[PREDICTION_COL].agg(["mean", "std", "size"])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    low, high = float(stats.index.min()), float(stats.index.max())  # the stars the test ratings use
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
    ax.errorbar(
        stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=4, label="mean ± std predicted"
    )
    for level, row in stats.iterrows():
        ax.annotate(
            f"n={int(row['size'])}",
            (level, row["mean"]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=7,
        )
    ax.set_xlabel("true rating")
    ax.set_ylabel("predicted rating")
    ax.set_xlim(low - 0.5, high + 0.5)
    ax.set_ylim(low - 0.5, high + 0.5)
    ax.set_title("calibration (test folds)")
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)


def plot_sweep(rows: list[dict], params: list[str], path: Path, metrics: tuple[str, ...]) -> Path:
    """Each metric against each swept parameter (other parameters averaged over)."""
    plt = headless_pyplot()
    metrics = [m for m in metrics if any(m in r for r in rows)]
    fig, axes = plt.subplots(
        len(metrics), len(params), figsize=(4 * len(params), 3 * len(metrics)), squeeze=False
    )
    frame = pd.DataFrame([{**r["overrides"], **{m: r.get(m) for m in metrics}} for r in rows])
    for j, param in enumerate(params):
        grouped = frame.groupby(param, sort=False)[metrics].mean()
        try:
            grouped = grouped.sort_index(key=lambda idx: pd.to_numeric(idx, errors="raise"))
        except (ValueError, TypeError):
            grouped = grouped.sort_index()
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            ax.plot([str(x) for x in grouped.index], grouped[metric], marker="o")
            ax.set_xlabel(param)
            ax.set_ylabel(metric)
    if len(params) > 1:
        fig.suptitle("each point averages the runs that share that value", fontsize=9)
    return save_figure(fig, path)


def plot_segments(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """RMSE and NDCG@10 by user segment (``analysis.by_segment``), one bar group per model."""
    plt = headless_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    segments = list(dict.fromkeys(s for t in tables.values() for s in t["segment"]))
    width = 0.8 / max(len(tables), 1)
    for ax, key, title in (
        (axes[0], "rmse", "test RMSE (lower is better)"),
        (axes[1], "ndcg@10", "NDCG@10 (higher is better)"),
    ):
        for k, (name, table) in enumerate(tables.items()):
            values = table.set_index("segment")[key].reindex(segments)
            x = np.arange(len(segments)) + (k - (len(tables) - 1) / 2) * width
            ax.bar(x, values.to_numpy(dtype=float), width, color=f"C{k}", label=name)
        ax.set_xticks(np.arange(len(segments)), segments)
        ax.set_xlabel("the user's training ratings")
        ax.set_title(title)
        ax.legend(fontsize=8)
    return save_figure(fig, path)
