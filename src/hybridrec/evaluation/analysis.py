"""Reading finished runs back for analysis (the results notebook): summaries and error breakdowns."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrec.constants import ITEM_COL, PREDICTION_COL, RATING_COL, TRAIN_RATINGS_COL, USER_COL

SUMMARY_COLUMNS = (
    "test/rmse_mean",
    "test/rmse_std",
    "test/mae_mean",
    "test/ndcg@10_mean",
    "test/recall@10_mean",
    "test/coverage@10_mean",
)


def find_runs(root: str | Path) -> list[Path]:
    """Run folders (with a cv_summary.json) under ``root``, oldest first."""
    return sorted((p.parent for p in Path(root).glob("**/cv_summary.json")), key=lambda p: p.stat().st_mtime)


def runs_table(runs: list[Path]) -> pd.DataFrame:
    """One row per run: protocol, model, and the headline numbers."""
    rows = []
    for run in runs:
        summary = json.loads((run / "cv_summary.json").read_text())
        rows.append(
            {
                "run": run.name,
                "protocol": summary.get("protocol"),
                "model": summary.get("model_name") or summary.get("model"),
                "folds": len(summary.get("folds", [])),
                **{c: summary.get(c) for c in SUMMARY_COLUMNS},
            }
        )
    return pd.DataFrame(rows)


def load_fold_files(run: str | Path, name: str, folder: str = "") -> pd.DataFrame:
    """Every fold's ``folds/<k>/<folder>/<name>`` of a run, one frame with a ``fold`` column."""
    frames = []
    for fold in sorted(Path(run, "folds").iterdir(), key=lambda p: (len(p.name), p.name)):
        path = fold / folder / name
        if path.is_file():
            frames.append(pd.read_csv(path).assign(fold=int(fold.name)))
    if not frames:
        raise FileNotFoundError(f"no folds/<k>/{Path(folder, name)} in {run}")
    return pd.concat(frames, ignore_index=True)


def load_predictions(run: str | Path) -> pd.DataFrame:
    """Every fold's test predictions of a run, with a ``fold`` column."""
    return load_fold_files(run, "test_predictions.csv")


def load_user_metrics(run: str | Path) -> pd.DataFrame:
    """Every fold's list metrics per evaluated user (``ndcg@10`` …), with a ``fold`` column."""
    return load_fold_files(run, "test_users.csv")


def _rmse(frame: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((frame[PREDICTION_COL] - frame[RATING_COL]) ** 2)))


def error_by_activity(
    predictions: pd.DataFrame, train_counts: pd.Series, bins=(0, 20, 50, 100, 200, 10_000)
) -> pd.DataFrame:
    """RMSE by how many training ratings the user had (``train_counts``: ratings per user id)."""
    activity = predictions[USER_COL].map(train_counts).fillna(0)
    labels = [f"{lo}-{hi - 1}" if hi < 10_000 else f"{lo}+" for lo, hi in itertools.pairwise(bins)]
    groups = pd.cut(activity, bins=list(bins), right=False, labels=labels)
    return (
        predictions.assign(activity=groups)
        .groupby("activity", observed=True)
        .apply(
            lambda g: pd.Series({"ratings": len(g), "users": g[USER_COL].nunique(), "rmse": _rmse(g)}),
            include_groups=False,
        )
    )


def error_by_genre(predictions: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """RMSE of the test ratings of each genre's films (a film counts for each of its genres)."""
    genres = items.set_index(ITEM_COL)["genres"]
    exploded = predictions.assign(genre=predictions[ITEM_COL].map(genres)).explode("genre")
    table = exploded.groupby("genre").apply(
        lambda g: pd.Series({"ratings": len(g), "rmse": _rmse(g), "mean_rating": g[RATING_COL].mean()}),
        include_groups=False,
    )
    return table.sort_values("rmse", ascending=False)


SEGMENTS = ((0, 0, "cold"), (1, 20, "1-20"), (21, 50, "21-50"), (51, 200, "51-200"), (201, 10**9, "200+"))


def by_segment(run: str | Path, prefix: str = "test", folder: str = "") -> pd.DataFrame:
    """RMSE and NDCG@10 of a CV run by how many fitting ratings a user had (``SEGMENTS``), pooled over
    its folds, from the files the run wrote (``<prefix>_predictions.csv``, ``<prefix>_users.csv`` in
    ``folds/<k>/<folder>``)."""
    predictions = load_fold_files(run, f"{prefix}_predictions.csv", folder)
    users = load_fold_files(run, f"{prefix}_users.csv", folder)
    rows = []
    for low, high, label in SEGMENTS:
        rated = predictions[predictions[TRAIN_RATINGS_COL].between(low, high)]
        listed = users[users[TRAIN_RATINGS_COL].between(low, high)]
        if len(rated) or len(listed):
            rmse = _rmse(rated) if len(rated) and rated[PREDICTION_COL].notna().any() else float("nan")
            ndcg = float(listed["ndcg@10"].mean()) if len(listed) else float("nan")
            rows.append(
                {"segment": label, "ratings": len(rated), "users": len(listed), "rmse": rmse, "ndcg@10": ndcg}
            )
    return pd.DataFrame(rows)
