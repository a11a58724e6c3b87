"""The report of an online experiment, from its event log: per variant, exposures, click-through rate,
watch rate at k and the mean rating of recommended films, each with a confidence interval; a test of
each variant against the control (the first); a sample-ratio-mismatch check; and whether there is
enough data for a stated minimum detectable effect. Interleaved experiments add the team-draft
credit: impressions won by each variant, and a sign test.

The unit of analysis is the unit of assignment (a user or a session): each metric is a ratio of
sums over units, its interval a bootstrap over units and its test a permutation of units between
the variants, so a user who comes back many times does not count as many independent trials.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from hybridrec.ab.events import EXPOSURE, read_log
from hybridrec.errors import InvalidInputError

SRM_ALPHA = 0.001  # a sample-ratio mismatch is flagged below this p (the usual, strict threshold)


@dataclass(frozen=True)
class ReportSettings:
    k: int  # watch rate at k: a film shown in the top k was watched
    mde: float  # minimum detectable effect: an absolute change of the control's CTR
    alpha: float
    power: float  # the power wanted at the MDE
    resamples: int
    seed: int


@dataclass
class Estimate:
    value: float
    ci_low: float
    ci_high: float


@dataclass
class VariantSummary:
    name: str
    share: float
    units: int
    impressions: int
    shown: int
    clicks: int
    metrics: dict[str, Estimate]


@dataclass
class Test:
    variant: str  # against the control
    metric: str
    difference: float  # variant - control
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float = float("nan")
    verdict: str = ""


@dataclass
class Report:
    experiment: str
    interleaving: bool
    settings: ReportSettings
    variants: list[VariantSummary]
    tests: list[Test]
    srm: dict
    power: dict
    interleaved: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _per_unit(events: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per unit: its variant, impressions, films shown, clicks, watched impressions (top k),
    ratings of films it was shown and their sum."""
    exposures = events[events.kind == EXPOSURE]
    feedback = events[events.kind != EXPOSURE]
    units = exposures.groupby("unit").agg(
        variant=("variant", "first"), impressions=("impression", "nunique"), shown=("item_id", "size")
    )
    clicks = feedback[feedback.kind == "click"].groupby("unit").size()
    shown_before = _after_exposure(feedback[feedback.kind.isin(["watch", "rating"])], exposures)
    watched = shown_before[(shown_before.kind == "watch") & (shown_before["rank"] <= k)]
    watched_impressions = watched.groupby("unit")["impression"].nunique()
    ratings = shown_before[shown_before.kind == "rating"].groupby("unit")["value"].agg(["sum", "size"])
    units["clicks"] = clicks.reindex(units.index, fill_value=0)
    units["watched"] = watched_impressions.reindex(units.index, fill_value=0)
    units["rating_sum"] = ratings["sum"].reindex(units.index, fill_value=0.0)
    units["ratings"] = ratings["size"].reindex(units.index, fill_value=0)
    return units


def _after_exposure(feedback: pd.DataFrame, exposures: pd.DataFrame) -> pd.DataFrame:
    """Feedback on a film the unit had been shown, joined to the latest such exposure (its rank,
    impression and the variant that showed it)."""
    if feedback.empty or exposures.empty:
        return feedback.assign(rank=pd.Series(dtype=float), impression=pd.Series(dtype=object))
    shown = exposures[["ts", "unit", "item_id", "rank", "impression", "variant"]].sort_values("ts")
    joined = pd.merge_asof(
        feedback.drop(columns=["rank", "impression"]).sort_values("ts"),
        shown,
        on="ts",
        by=["unit", "item_id"],
        suffixes=("", "_shown"),
    )
    return joined[joined["rank"].notna()]


# metric -> (numerator column, denominator column) of the per-unit table
RATIOS = {
    "ctr": ("clicks", "shown"),
    "watch_rate": ("watched", "impressions"),
    "mean_rating": ("rating_sum", "ratings"),
}


def _ratio(numerator: np.ndarray, denominator: np.ndarray):
    def statistic(index, axis=-1):
        return numerator[index].sum(axis) / np.maximum(denominator[index].sum(axis), 1e-12)

    return statistic


def _interval(units: pd.DataFrame, metric: str, settings: ReportSettings) -> Estimate:
    num, den = (units[c].to_numpy(float) for c in RATIOS[metric])
    if den.sum() == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    statistic = _ratio(num, den)
    index = np.arange(len(units))
    value = float(statistic(index))
    if len(units) < 2:
        return Estimate(value, float("nan"), float("nan"))
    interval = stats.bootstrap(
        (index,),
        statistic,
        vectorized=True,
        n_resamples=settings.resamples,
        method="percentile",
        batch=200,
        random_state=np.random.default_rng(settings.seed),
    ).confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def _test(units: pd.DataFrame, control: str, variant: str, metric: str, settings: ReportSettings) -> Test:
    """The difference of a ratio metric between two variants: a bootstrap interval (units resampled
    within each variant) and a permutation test (units shuffled between them)."""
    num, den = (units[c].to_numpy(float) for c in RATIOS[metric])
    a = np.flatnonzero((units.variant == control).to_numpy())
    b = np.flatnonzero((units.variant == variant).to_numpy())
    statistic = _ratio(num, den)

    def difference(x, y, axis=-1):
        return statistic(y, axis) - statistic(x, axis)

    if len(a) < 2 or len(b) < 2 or den[a].sum() == 0 or den[b].sum() == 0:
        return Test(variant, metric, float("nan"), float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(settings.seed)
    observed = float(difference(a, b))
    interval = stats.bootstrap(
        (a, b),
        difference,
        vectorized=True,
        n_resamples=settings.resamples,
        method="percentile",
        batch=200,
        random_state=rng,
    ).confidence_interval
    p_value = stats.permutation_test(
        (a, b), difference, vectorized=True, n_resamples=settings.resamples, batch=200, random_state=rng
    ).pvalue
    return Test(variant, metric, observed, float(interval.low), float(interval.high), float(p_value))


def sample_ratio_check(counts: dict[str, int], shares: dict[str, float]) -> dict:
    """Chi-square of the units each variant got against its configured share."""
    observed = np.array([counts.get(name, 0) for name in shares], dtype=float)
    expected = observed.sum() * np.array(list(shares.values()))
    p_value = float(stats.chisquare(observed, expected).pvalue) if observed.sum() else float("nan")
    return {
        "observed": dict(zip(shares, observed.astype(int).tolist(), strict=True)),
        "expected": dict(zip(shares, np.round(expected, 1).tolist(), strict=True)),
        "p_value": p_value,
        "threshold": SRM_ALPHA,
        "mismatch": bool(p_value < SRM_ALPHA),
    }


def power_at_mde(summaries: list[VariantSummary], settings: ReportSettings) -> dict:
    """Power of a two-proportion test of CTR at the MDE, with the films shown so far, and the films
    shown per variant it would take to reach ``settings.power``. Shown films are counted as
    independent trials, which a user's repeated visits are not: read it as an optimistic bound."""
    control, other = summaries[0], summaries[1]
    baseline = control.metrics["ctr"].value
    target = min(max(baseline + settings.mde, 1e-6), 1 - 1e-6)
    if not (control.shown and other.shown) or np.isnan(baseline):
        return {"mde": settings.mde, "achieved": float("nan"), "enough": False}
    effect = abs(proportion_effectsize(target, baseline))
    analysis = NormalIndPower()
    achieved = analysis.solve_power(
        effect_size=effect, nobs1=control.shown, alpha=settings.alpha, ratio=other.shown / control.shown
    )
    needed = analysis.solve_power(effect_size=effect, alpha=settings.alpha, power=settings.power, ratio=1.0)
    return {
        "mde": settings.mde,
        "baseline_ctr": baseline,
        "target": settings.power,
        "achieved": float(achieved),
        "shown_needed_per_variant": int(np.ceil(needed)),
        "enough": bool(achieved >= settings.power),
    }


def _interleaving(events: pd.DataFrame, names: list[str]) -> dict:
    """Team-draft credit: each impression is won by the variant whose films got more clicks."""
    exposures = events[events.kind == EXPOSURE]
    clicks = _after_exposure(events[events.kind == "click"], exposures)
    credited = clicks.groupby(["impression", "variant_shown"]).size().unstack(fill_value=0)
    credited = credited.reindex(columns=names, fill_value=0)
    wins = {n: int((credited[n] > credited[[m for m in names if m != n]].max(axis=1)).sum()) for n in names}
    impressions = int(exposures.impression.nunique())
    decided = sum(wins.values())
    p_value = float(stats.binomtest(wins[names[1]], decided, 0.5).pvalue) if decided else float("nan")
    return {"impressions": impressions, "wins": wins, "ties": impressions - decided, "sign_test_p": p_value}


def build_report(log_path: str | Path, experiment: str | None, settings: ReportSettings) -> Report:
    try:
        events, experiments = read_log(log_path)
    except FileNotFoundError as err:
        raise InvalidInputError(str(err)) from None
    if experiments.empty:
        raise InvalidInputError(f"the log {log_path} holds no experiment")
    name = experiment or str(experiments.name.iloc[-1])
    rows = experiments[experiments.name == name]
    if rows.empty:
        raise InvalidInputError(
            f"no experiment {name!r} in the log; it holds {', '.join(experiments.name.unique())}"
        )
    definition = json.loads(rows.definition.iloc[-1])
    shares = {n: float(s) for n, s in definition["variants"].items()}
    names = list(shares)
    events = events[events.experiment == name]
    notes = []
    if len(rows) > 1:
        notes.append(
            f"the experiment was served with {len(rows)} definitions; the last one's shares are used"
        )
    units = _per_unit(events, settings.k)
    if units.empty:
        raise InvalidInputError(f"experiment {name!r} has no exposures yet")
    summaries = []
    for variant in names:
        mine = units[units.variant == variant] if not definition["interleaving"] else units
        summaries.append(
            VariantSummary(
                name=variant,
                share=shares[variant],
                units=len(mine),
                impressions=int(mine.impressions.sum()),
                shown=int(mine.shown.sum()),
                clicks=int(mine.clicks.sum()),
                metrics={metric: _interval(mine, metric, settings) for metric in RATIOS},
            )
        )
    tests, interleaved = [], None
    if definition["interleaving"]:
        interleaved = _interleaving(events, names)
        notes.append("interleaved: every unit saw both variants; the comparison is the team-draft credit")
        srm = {"p_value": float("nan"), "mismatch": False, "note": "no split to check: every unit sees both"}
        power = {"mde": settings.mde, "note": "not computed for interleaving"}
    else:
        for variant in names[1:]:
            family = [_test(units, names[0], variant, metric, settings) for metric in RATIOS]
            p_values = np.nan_to_num([t.p_value for t in family], nan=1.0)
            for test, p_holm in zip(family, multipletests(p_values, method="holm")[1], strict=True):
                test.p_holm = float(p_holm)
                significant = test.p_holm < settings.alpha and test.difference != 0
                test.verdict = (
                    f"{variant} {'higher' if test.difference > 0 else 'lower'}"
                    if significant
                    else "no significant difference"
                )
            tests.extend(family)
        srm = sample_ratio_check(units.variant.value_counts().to_dict(), shares)
        power = power_at_mde(summaries, settings)
    return Report(
        name, bool(definition["interleaving"]), settings, summaries, tests, srm, power, interleaved, notes
    )


def detected(report: Report, metric: str = "ctr") -> bool:
    """Whether the report finds a difference in ``metric`` (interleaving: the sign test)."""
    if report.interleaved is not None:
        return bool(report.interleaved["sign_test_p"] < report.settings.alpha)
    return any(t.metric == metric and t.verdict != "no significant difference" for t in report.tests)


def report_markdown(report: Report) -> str:
    s = report.settings
    lines = [
        f"# A/B report: experiment `{report.experiment}`",
        "",
        f"Unit of analysis: the assigned user or session. Intervals: 95 % percentile bootstrap over units "
        f"({s.resamples} resamples); tests: permutation of units between variants, Holm over the "
        f"{len(RATIOS)} metrics of each variant (α = {s.alpha}). CTR: clicks / films shown; watch rate@{s.k}: "
        f"impressions with a film of their top {s.k} watched; mean rating: ratings given to films shown.",
        "",
        "| variant | share | units | impressions | films shown | clicks | CTR | watch rate@k | mean rating |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report.variants:
        cells = [f"{m.value:.4f} [{m.ci_low:.4f}, {m.ci_high:.4f}]" for m in (v.metrics[k] for k in RATIOS)]
        lines.append(
            f"| {v.name} | {v.share:.2f} | {v.units} | {v.impressions} | {v.shown} | {v.clicks} | "
            + " | ".join(cells)
            + " |"
        )
    if report.tests:
        lines += [
            "",
            f"## Against the control ({report.variants[0].name})",
            "",
            "| variant | metric | difference | 95 % CI | p | p (Holm) | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in report.tests:
            lines.append(
                f"| {t.variant} | {t.metric} | {t.difference:+.4f} | [{t.ci_low:+.4f}, {t.ci_high:+.4f}] | "
                f"{t.p_value:.3g} | {t.p_holm:.3g} | **{t.verdict}** |"
            )
    if report.interleaved is not None:
        i = report.interleaved
        lines += [
            "",
            "## Team-draft interleaving",
            "",
            f"{i['impressions']} impressions; won: "
            + ", ".join(f"{n} {w}" for n, w in i["wins"].items())
            + f"; ties {i['ties']}; sign test p = {i['sign_test_p']:.3g}",
        ]
    srm, power = report.srm, report.power
    lines += ["", "## Checks", ""]
    if "observed" in srm:
        lines.append(
            f"- sample ratio: observed {srm['observed']}, expected {srm['expected']}; χ² p = "
            f"{srm['p_value']:.3g} → {'**MISMATCH**: the assignment or the logging is broken' if srm['mismatch'] else 'no mismatch'} "
            f"(flagged below p = {srm['threshold']})"
        )
    if "achieved" in power:
        lines.append(
            f"- power: for an absolute CTR change of {power['mde']:+g} from the control's "
            f"{power.get('baseline_ctr', float('nan')):.4f}, a two-proportion test at α = {s.alpha} has power "
            f"{power['achieved']:.2f} with the films shown so far ({power.get('shown_needed_per_variant', '?')} "
            f"per variant give {power['target']:.0%}): "
            + ("**enough data**" if power["enough"] else "**not enough data yet**")
            + " (films shown counted as independent trials: an optimistic bound)"
        )
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def plot_report(report: Report, path: Path) -> Path:
    """One panel per metric: each variant's value with its interval."""
    from hybridrec.evaluation.plots import headless_pyplot, save_figure

    plt = headless_pyplot()
    titles = {"ctr": "CTR", "watch_rate": f"watch rate@{report.settings.k}", "mean_rating": "mean rating"}
    fig, axes = plt.subplots(1, len(RATIOS), figsize=(3.4 * len(RATIOS), 3.4))
    names = [v.name for v in report.variants]
    for ax, metric in zip(axes, RATIOS, strict=True):
        values = [v.metrics[metric] for v in report.variants]
        heights = [m.value for m in values]
        errors = [
            [max(m.value - m.ci_low, 0) for m in values],
            [max(m.ci_high - m.value, 0) for m in values],
        ]
        ax.bar(
            names,
            heights,
            yerr=np.nan_to_num(errors),
            capsize=6,
            color=["tab:blue", "tab:orange", "tab:green"][: len(names)],
        )
        ax.set_title(titles[metric])
        if metric == "mean_rating":
            finite = [h for h in heights if np.isfinite(h)]
            if finite:
                ax.set_ylim(max(min(finite) - 1, 0), max(finite) + 0.5)
    fig.suptitle(f"experiment {report.experiment} (95 % CI over units)", fontsize=10)
    return save_figure(fig, path)


def write_report(report: Report, folder: Path) -> list[Path]:
    from hybridrec.io import write_json, write_text

    return [
        write_text(folder / "report.md", report_markdown(report)),
        write_json(folder / "report.json", report.as_dict()),
        plot_report(report, folder / "report.png"),
    ]
