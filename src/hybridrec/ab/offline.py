"""Offline comparison of two cross-validation runs on the same folds: per metric, each run's value,
the difference (B - A), a 95 % paired bootstrap interval over users, paired tests over users and over
folds, and a verdict after a Holm correction over the metrics.

Users are the unit: a user's test ratings (and lists) in every fold are pooled, and users are
resampled with both runs' values together (``scipy.stats.bootstrap(paired=True)``). Catalog coverage
belongs to all lists together, not to a user, so it is compared over folds alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats
from statsmodels.stats.multitest import multipletests

from hybridrec.constants import ITEM_COL, PREDICTION_COL, RATING_COL, TOP_K, USER_COL
from hybridrec.errors import InvalidInputError
from hybridrec.evaluation.analysis import load_predictions, load_user_metrics


class NotComparableError(InvalidInputError):
    """Two runs that were not evaluated on the same folds, data and protocol."""


@dataclass(frozen=True)
class Metric:
    name: str  # as in cv_summary.json: test/<name>
    higher_is_better: bool
    unit: str  # "users" or "folds": what the interval and the main test resample


METRICS = (
    Metric("rmse", False, "users"),
    Metric("mae", False, "users"),
    Metric(f"ndcg@{TOP_K}", True, "users"),
    Metric(f"recall@{TOP_K}", True, "users"),
    Metric(f"coverage@{TOP_K}", True, "folds"),
)


@dataclass
class Run:
    """A finished CV run's files: its summary, config and per-fold test predictions and lists."""

    path: Path
    summary: dict
    config: dict
    predictions: pd.DataFrame
    users: pd.DataFrame

    @classmethod
    def read(cls, path: str | Path, label: str) -> Run:
        path = Path(path)
        if not (path / "cv_summary.json").is_file():
            raise InvalidInputError(f"{label}={path} is no finished CV run (no cv_summary.json there)")
        config_file = path / ".hydra" / "config.yaml"
        config = OmegaConf.to_container(OmegaConf.load(config_file)) if config_file.is_file() else {}
        try:
            predictions, users = load_predictions(path), load_user_metrics(path)
        except FileNotFoundError as err:
            raise InvalidInputError(f"{label}={path}: {err}") from None
        return cls(path, json.loads((path / "cv_summary.json").read_text()), config, predictions, users)

    def setting(self, dotted: str):
        node = self.config
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def fold_values(self, metric: str) -> dict[int, float]:
        return {int(row["fold"]): float(row.get(f"test/{metric}", np.nan)) for row in self.summary["folds"]}


def check_comparable(a: Run, b: Run) -> None:
    """Refuse, in one line, runs that differ in protocol, data set, folds, split seed or test part."""

    def refuse(what: str, value_a, value_b) -> None:
        raise NotComparableError(
            f"the runs differ in {what} (a: {value_a}, b: {value_b}); compare two runs of the same folds, "
            "data and protocol"
        )

    for what, value_a, value_b in (
        ("protocol", a.summary.get("protocol"), b.summary.get("protocol")),
        ("data set", a.setting("data.name"), b.setting("data.name")),
        ("folds", sorted(a.fold_values("rmse")), sorted(b.fold_values("rmse"))),
        ("split seed", a.setting("cv.split_seed"), b.setting("cv.split_seed")),
        (
            "described users' told ratings",
            a.setting("data.profile.described_told"),
            b.setting("data.profile.described_told"),
        ),
    ):
        if value_a != value_b:
            refuse(what, value_a, value_b)
    columns = ["fold", USER_COL, ITEM_COL, RATING_COL]
    test_a = a.predictions[columns].sort_values(columns, ignore_index=True)
    test_b = b.predictions[columns].sort_values(columns, ignore_index=True)
    if not test_a.equals(test_b):
        refuse("test ratings", f"{len(test_a)} rows", f"{len(test_b)} rows, not the same")
    users_a = a.users[["fold", USER_COL]].sort_values(["fold", USER_COL], ignore_index=True)
    users_b = b.users[["fold", USER_COL]].sort_values(["fold", USER_COL], ignore_index=True)
    if not users_a.equals(users_b):
        refuse("users evaluated on lists", f"{len(users_a)}", f"{len(users_b)}, not the same")


@dataclass
class MetricComparison:
    metric: str
    higher_is_better: bool
    a: float
    b: float
    difference: float  # b - a
    ci_low: float
    ci_high: float
    unit: str  # what the interval resampled: users, or folds
    n: int  # users (or folds) resampled
    test: str  # the main test
    p_value: float
    p_holm: float = float("nan")
    fold_test_p: float = float("nan")  # paired t-test over the folds' values
    verdict: str = ""


def _paired_users(a: Run, b: Run, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per user, pooled over folds: (A's values, B's values, weights), or None when a run has none.
    Rating metrics: summed squared (or absolute) errors and the number of ratings; list metrics:
    the mean over the user's folds and weight 1."""
    if metric in ("rmse", "mae"):
        if a.predictions[PREDICTION_COL].isna().any() or b.predictions[PREDICTION_COL].isna().any():
            return None  # a ranking-only model predicts no ratings

        def errors(run: Run) -> pd.DataFrame:
            frame = run.predictions.sort_values(["fold", USER_COL, ITEM_COL])
            error = frame[PREDICTION_COL] - frame[RATING_COL]
            per_rating = error**2 if metric == "rmse" else error.abs()
            return per_rating.groupby(frame[USER_COL]).agg(["sum", "count"])

        ea, eb = errors(a), errors(b)
        return ea["sum"].to_numpy(), eb["sum"].loc[ea.index].to_numpy(), ea["count"].to_numpy(float)
    if metric not in a.users or metric not in b.users:
        return None
    mean_a = a.users.groupby(USER_COL)[metric].mean()
    mean_b = b.users.groupby(USER_COL)[metric].mean().loc[mean_a.index]
    return mean_a.to_numpy(), mean_b.to_numpy(), np.ones(len(mean_a))


def _statistic(metric: str):
    """The run-level value from per-user sums (vectorised over resamples, ``axis``)."""
    if metric == "rmse":
        return lambda values, weights, axis=-1: np.sqrt(values.sum(axis) / weights.sum(axis))
    return lambda values, weights, axis=-1: values.sum(axis) / weights.sum(axis)


def _compare_users(a: Run, b: Run, metric: Metric, resamples: int, confidence: float, seed: int):
    paired = _paired_users(a, b, metric.name)
    if paired is None:
        return None
    values_a, values_b, weights = paired
    value = _statistic(metric.name)

    def difference(x_a, x_b, w, axis=-1):
        return value(x_b, w, axis) - value(x_a, w, axis)

    observed = float(difference(values_a, values_b, weights))
    if np.array_equal(values_a, values_b):  # identical runs: nothing to resample, nothing to test
        low = high = observed
        p_value = 1.0
    else:
        interval = stats.bootstrap(
            (values_a, values_b, weights),
            difference,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            batch=500,
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
        # per user: mean squared (absolute) error per rating, or the list metric
        p_value = float(stats.wilcoxon(values_b / weights, values_a / weights, zero_method="zsplit").pvalue)
    return MetricComparison(
        metric=metric.name,
        higher_is_better=metric.higher_is_better,
        a=float(value(values_a, weights)),
        b=float(value(values_b, weights)),
        difference=observed,
        ci_low=low,
        ci_high=high,
        unit="users",
        n=len(weights),
        test="Wilcoxon signed-rank over users",
        p_value=p_value,
    )


def _fold_test(a: Run, b: Run, metric: str) -> tuple[np.ndarray, np.ndarray, float]:
    folds_a, folds_b = a.fold_values(metric), b.fold_values(metric)
    values_a = np.array([folds_a[f] for f in sorted(folds_a)])
    values_b = np.array([folds_b[f] for f in sorted(folds_a)])
    if np.isnan(values_a).any() or np.isnan(values_b).any():
        return values_a, values_b, float("nan")
    if np.allclose(values_a, values_b, rtol=0, atol=1e-12) or len(values_a) < 2:
        return values_a, values_b, 1.0 if len(values_a) >= 2 else float("nan")
    return values_a, values_b, float(stats.ttest_rel(values_b, values_a).pvalue)


def _compare_folds(a: Run, b: Run, metric: Metric, confidence: float) -> MetricComparison | None:
    values_a, values_b, p_value = _fold_test(a, b, metric.name)
    if np.isnan(values_a).any() or np.isnan(values_b).any() or len(values_a) < 2:
        return None
    differences = values_b - values_a
    mean = float(differences.mean())
    if np.isnan(p_value) or (p_value == 1.0 and np.allclose(differences, 0)):
        low = high = mean
    else:
        interval = stats.ttest_rel(values_b, values_a).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    return MetricComparison(
        metric=metric.name,
        higher_is_better=metric.higher_is_better,
        a=float(values_a.mean()),
        b=float(values_b.mean()),
        difference=mean,
        ci_low=low,
        ci_high=high,
        unit="folds",
        n=len(values_a),
        test="paired t-test over folds",
        p_value=p_value,
        fold_test_p=p_value,
    )


def _verdict(row: MetricComparison, alpha: float) -> str:
    if not row.p_holm < alpha or row.difference == 0:
        return "no significant difference"
    b_better = row.difference > 0 if row.higher_is_better else row.difference < 0
    return "B better" if b_better else "A better"


@dataclass
class Comparison:
    a: str
    b: str
    protocol: str
    folds: list[int]
    users: int
    alpha: float
    confidence: float
    resamples: int
    correction: str
    metrics: list[MetricComparison]

    def as_dict(self) -> dict:
        return {**asdict(self), "metrics": [asdict(m) for m in self.metrics]}


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    resamples: int,
    confidence: float,
    alpha: float,
    seed: int,
) -> Comparison:
    """Every metric of ``METRICS`` both runs have, compared; Holm's correction over them."""
    a, b = Run.read(run_a, "a"), Run.read(run_b, "b")
    check_comparable(a, b)
    rows = []
    for metric in METRICS:
        row = (
            _compare_users(a, b, metric, resamples, confidence, seed)
            if metric.unit == "users"
            else _compare_folds(a, b, metric, confidence)
        )
        if row is None:
            continue
        row.fold_test_p = _fold_test(a, b, metric.name)[2]
        rows.append(row)
    if not rows:
        raise InvalidInputError("the runs share no metric to compare")
    p_values = np.array([r.p_value for r in rows])
    adjusted = multipletests(np.nan_to_num(p_values, nan=1.0), alpha=alpha, method="holm")[1]
    for row, p_holm in zip(rows, adjusted, strict=True):
        row.p_holm = float(p_holm)
        row.verdict = _verdict(row, alpha)
    return Comparison(
        a=str(a.path),
        b=str(b.path),
        protocol=str(a.summary.get("protocol")),
        folds=sorted(a.fold_values("rmse")),
        users=int(a.users[USER_COL].nunique()),
        alpha=alpha,
        confidence=confidence,
        resamples=resamples,
        correction=f"Holm over the {len(rows)} metrics (family-wise error rate {alpha})",
        metrics=rows,
    )


def comparison_markdown(result: Comparison) -> str:
    level = f"{result.confidence:.0%}"
    lines = [
        "# Offline comparison of two CV runs",
        "",
        f"- A: `{result.a}`",
        f"- B: `{result.b}`",
        f"- protocol `{result.protocol}`, folds {result.folds}, {result.users} users with lists; "
        "the same test ratings and users in both runs (checked)",
        f"- intervals: {level} paired percentile bootstrap over users ({result.resamples} resamples; a "
        "user's ratings and lists pooled over the folds), coverage: paired t interval over folds",
        f"- tests: Wilcoxon signed-rank over users (per user: mean squared or absolute error, or the list "
        f"metric), coverage: paired t-test over folds; correction: {result.correction}",
        "",
        f"| metric | A | B | B − A | {level} CI | unit | p | p (Holm) | p over folds | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result.metrics:
        better = "higher" if m.higher_is_better else "lower"
        lines.append(
            f"| {m.metric} ({better} is better) | {m.a:.4f} | {m.b:.4f} | {m.difference:+.4f} | "
            f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}] | {m.n} {m.unit} | {m.p_value:.3g} | {m.p_holm:.3g} | "
            f"{m.fold_test_p:.3g} | **{m.verdict}** |"
        )
    return "\n".join(lines) + "\n"


def plot_comparison(result: Comparison, path: Path) -> Path:
    """One panel per metric: B − A with its interval, against zero."""
    from hybridrec.evaluation.plots import headless_pyplot, save_figure

    plt = headless_pyplot()
    fig, axes = plt.subplots(1, len(result.metrics), figsize=(2.6 * len(result.metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], result.metrics, strict=True):
        color = {"B better": "tab:green", "A better": "tab:red"}.get(m.verdict, "tab:gray")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.errorbar(
            [0],
            [m.difference],
            yerr=[[m.difference - m.ci_low], [m.ci_high - m.difference]],
            fmt="o",
            color=color,
            capsize=6,
        )
        ax.set_xticks([])
        ax.set_title(f"{m.metric}\n{m.verdict}", fontsize=9)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes[0][0].set_ylabel(f"B − A, {result.confidence:.0%} CI")
    return save_figure(fig, path)
