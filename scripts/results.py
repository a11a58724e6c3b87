"""Build RESULTS.md from cross-validation runs that this script performs (or reuses).

    make results                       # runs what is missing under outputs/results/, then writes RESULTS.md
    .venv/bin/python scripts/results.py --rerun            # run everything again
    .venv/bin/python scripts/results.py --only default     # one experiment (see EXPERIMENTS)
    .venv/bin/python scripts/results.py --rerun --fold-workers 2   # folds two at a time (faster on 2 cores)

Each experiment is one `python train.py ...` command (printed in RESULTS.md beside its row); its run
folder outputs/results/<name>/ keeps cv_summary.json, the per-fold predictions and the plots. A run
whose folder already holds a cv_summary.json made with the same command is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "outputs" / "results"
COMMON = ["final_fit=false", "logger=none", "trainer.enable_progress_bar=false"]
STAMP = "results_command.json"  # in a run folder: the arguments that made it

# The rows of RESULTS.md, in table order: each one experiment overlay, configs/experiment/<name>.yaml,
# whose first comment line says what it shows.
EXPERIMENTS = [
    "all_baselines",
    "cold_users",
    "described_users",
    "described_without_text_terms",
    "new_films",
    "learned_blend",
    "cold_learned_blend",
    "ids_only",
    "content_only",
    "no_neighbourhood",
    "no_knn",
    "residual_ratings_similarity",
    "linear_towers",
    "mapping_square",
    "mapping_linear",
    "mapping_affine",
    "mapping_ordinal",
    "embedder_hashing",
    "original",
    "cold_embedder_hashing",
    "cold_no_neighbour_ratings",
    "cold_towers_only",
    "validation_carve_out",
]
DEFAULT, COLD, DESCRIBED = "all_baselines", "cold_users", "described_users"  # protocols A, B and C


def describe(name: str) -> str:
    """What an experiment shows: the first comment line of its file, after the package line."""
    lines = (ROOT / "configs" / "experiment" / f"{name}.yaml").read_text().splitlines()
    return next(line[2:] for line in lines if line.startswith("# ") and "@package" not in line)


# Reference numbers measured on exactly these protocols (../shared/eval-protocol.md).
ANCHORS = {
    "rating": [
        (
            "Bayesian FM (myFM, ordered probit) + side info + training-only implicit feedback",
            "0.879",
            "0.885",
        ),
        ("PyTorch biases + factors + side features + training-only implicit feedback", "0.887", "0.895"),
        ("Surprise SVD, grid-tuned on a split of u1.base", "0.9125", "0.9234"),
        ("Surprise SVD++ / item KNNBaseline / BaselineOnly", "0.922 / 0.920 / 0.946", ""),
        ("GLocal-K (published, epoch chosen on the test set: not leak-free)", "", "0.889"),
        ("the original project (test ratings leaked into its user profiles)", "", "0.923"),
    ],
    "topn": [
        ("EASE^R (λ tuned on a split of u1.base), interactions = ratings >= 4", "0.400 ± 0.042"),
        ("PureSVD / ALS (implicit)", "0.399 / 0.397"),
        ("Popularity", "0.205"),
        ("rating-trained SVD ranked by predicted rating", "0.103"),
    ],
    "cold": [
        ("demographic kNN (50 nearest users by age bucket, gender, occupation)", "NDCG@10 0.414 ± 0.02"),
        ("global popularity (ratings >= 4)", "NDCG@10 0.406"),
        ("item mean rating", "RMSE 1.024, MAE 0.817"),
    ],
}


def command(name: str, fold_workers: int | None = None) -> list[str]:
    workers = [] if fold_workers is None else [f"fold_workers={fold_workers}"]
    return [f"experiment={name}", *workers, *COMMON, f"hydra.run.dir={RUNS / name}"]


def shown(name: str) -> str:
    """The command of a row as one would type it: the experiment's overrides, and fold_workers if
    its run was made with a value other than the config's (it changes float rounding, so it is part
    of the command)."""
    stamp = RUNS / name / STAMP
    made_with = json.loads(stamp.read_text()) if stamp.is_file() else []
    workers = [a for a in made_with if a.startswith("fold_workers=")]
    return "python train.py " + " ".join([f"experiment={name}", *workers, "final_fit=false"])


def run(name: str, rerun: bool, fold_workers: int | None = None) -> dict:
    folder = RUNS / name
    stamp = folder / STAMP
    args = command(name, fold_workers)
    if (
        not rerun
        and (folder / "cv_summary.json").is_file()
        and stamp.is_file()
        and json.loads(stamp.read_text()) == args
    ):
        print(f"[{name}] reusing {folder}", flush=True)
    else:
        print(f"[{name}] python train.py {' '.join(args)}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)  # nothing of an earlier run may mix in
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "train.py"), *args], check=True, cwd=ROOT)
        stamp.write_text(json.dumps(args))
        print(f"[{name}] done in {time.perf_counter() - started:.0f}s", flush=True)
    return json.loads((folder / "cv_summary.json").read_text())


def recompute(name: str, summary: dict) -> list[str]:
    """Check a run against its own per-fold prediction files, read here with plain pandas.

    On the canonical protocol each file must hold exactly the ratings of the official ``u{k}.test``;
    RMSE and MAE recomputed from the files must match cv_summary.json.
    """
    import numpy as np
    import pandas as pd

    data = Path(os.environ["HYBRIDREC_DATA_DIR"]) / "ml-100k"
    errors: list[np.ndarray] = []
    problems: list[str] = []
    for row in summary["folds"]:
        fold = row["fold"]
        frame = pd.read_csv(RUNS / name / "folds" / str(fold) / "test_predictions.csv")
        if summary.get("protocol") == "canonical":
            official = pd.read_csv(
                data / f"u{fold}.test", sep="\t", names=["user_id", "item_id", "rating", "ts"]
            )
            key = ["user_id", "item_id", "rating"]
            ours, theirs = (f[key].astype(float).sort_values(key).to_numpy() for f in (frame, official))
            if ours.shape != theirs.shape or not (ours == theirs).all():
                problems.append(f"fold {fold}: predictions do not cover exactly u{fold}.test")
        error = frame["prediction"].to_numpy() - frame["rating"].to_numpy()
        errors.append(error)
        rmse = float(np.sqrt(np.mean(error**2)))
        if abs(rmse - row["test/rmse"]) > 1e-5:
            problems.append(
                f"fold {fold}: RMSE {rmse:.6f} from the file, {row['test/rmse']:.6f} in cv_summary.json"
            )
    rmses = [float(np.sqrt(np.mean(e**2))) for e in errors]
    maes = [float(np.mean(np.abs(e))) for e in errors]
    verdict = "; ".join(problems) if problems else "matches cv_summary.json"
    return [
        f"| {name} | {np.mean(rmses):.4f} | {np.mean(maes):.4f} | {sum(len(e) for e in errors)} | {verdict} |"
    ]


def header(*columns: str) -> list[str]:
    """A markdown table's header and separator rows."""
    return ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]


def pm(summary: dict, key: str, digits: int = 4) -> str:
    """``mean ± std`` over folds of a test metric."""
    mean, std = summary.get(f"test/{key}_mean"), summary.get(f"test/{key}_std")
    if mean is None or mean != mean:
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fold1(summary: dict, key: str) -> str:
    """A test metric on fold 1 alone."""
    row = next((r for r in summary.get("folds", []) if r["fold"] == 1), None)
    value = None if row is None else row.get(f"test/{key}")
    return "–" if value is None or value != value else f"{value:.4f}"


def entries(summary: dict, label: str):
    """The model's row, then its baselines' rows."""
    yield label, summary
    for name, baseline in (summary.get("baselines") or {}).items():
        yield f"{name} (baseline)", baseline


def timing(summary: dict) -> str:
    """A run's wall time and its folds' summed training time (see the report's header)."""
    return f"wall {summary.get('seconds_total', 0):.0f} s, fit {summary.get('train_seconds_total', 0):.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rerun", action="store_true", help="run every experiment again")
    parser.add_argument("--only", nargs="*", choices=EXPERIMENTS, help="run only these experiments")
    parser.add_argument(
        "--fold-workers",
        type=int,
        default=None,
        help="folds trained at once (train.py fold_workers=N; default: configs/train.yaml's; shown in the commands)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HYBRIDREC_DATA_DIR", str(ROOT / "data"))
    names = args.only or EXPERIMENTS
    results = {name: run(name, args.rerun, args.fold_workers) for name in names}
    for name in EXPERIMENTS:  # earlier runs of the others still belong in the report
        if name not in results and (RUNS / name / "cv_summary.json").is_file():
            results[name] = json.loads((RUNS / name / "cv_summary.json").read_text())
    write_report({name: results[name] for name in EXPERIMENTS if name in results})  # the table order


def write_report(results: dict[str, dict]) -> None:
    lines = [
        "# Results",
        "",
        "Generated by `make results` (`scripts/results.py`) from the cross-validation runs it performs; each run",
        "folder (`outputs/results/<experiment>/`) holds the per-fold predictions, `cv_summary.json` and the plots.",
        "All numbers are leak-free: profiles, history bags, biases and every weight come from each fold's",
        "training part only. Each fold's model trains on its whole training part for 20 epochs, an epoch count",
        "chosen on validation carved from the training parts (the `validation_carve_out` ablation holds 5 % out",
        "for early stopping and checkpoint choice; its validation curves are `docs/validation_curves.png`).",
        "Mean ± sample std over the 5 folds; u1 is fold 1 alone. Times: `wall` is the whole CV run as it went on",
        "the machine of the day (fitting, the baselines evaluated on each fold, and embedding any profile text the",
        "cache did not hold yet); `fit` sums the folds' training alone (with `fold_workers` above 1, folds train at",
        "once, so it can exceed the wall time). `benchmarks/bench_train.py` times the default CV alone, warm cache.",
        "",
    ]
    default = results.get(DEFAULT)
    if default:
        lines += [
            "## Rating prediction (canonical folds u1–u5)",
            "",
            *header("model", "RMSE", "RMSE u1", "MAE", "time"),
        ]
        for label, s in entries(default, "**hybrid (default)**"):
            lines.append(
                f"| {label} | {pm(s, 'rmse')} | {fold1(s, 'rmse')} | {pm(s, 'mae')} | "
                f"{timing(default) if label.startswith('**') else ''} |"
            )
        lines += [
            "",
            f"Command: `{shown(DEFAULT)}`",
            "",
            "## Top-10 lists, protocol A (warm users)",
            "",
            *header(
                "model",
                "NDCG@10",
                "NDCG@10 u1",
                "Recall@10",
                "HitRate@10",
                "Precision@10",
                "coverage@10",
                "distinct lists (u1)",
            ),
        ]
        for label, s in entries(default, "**hybrid (default)**"):
            distinct = next(
                (r.get("test/distinct_lists") for r in s.get("folds", []) if r["fold"] == 1), None
            )
            users = next((r.get("test/users") for r in s.get("folds", []) if r["fold"] == 1), None)
            lines.append(
                f"| {label} | {pm(s, 'ndcg@10')} | {fold1(s, 'ndcg@10')} | {pm(s, 'recall@10')} | {pm(s, 'hit_rate@10')} | "
                f"{pm(s, 'precision@10')} | {pm(s, 'coverage@10')} | "
                f"{'–' if distinct is None else f'{distinct:.0f} of {users:.0f}'} |"
            )
        lines += ["", f"Command: `{shown(DEFAULT)}`", ""]
    cold = results.get(COLD)
    if cold:
        lines += [
            "## Cold start, protocol B (users known only by age, gender and occupation)",
            "",
            *header("model", "NDCG@10", "Recall@10", "HitRate@10", "RMSE", "MAE"),
        ]
        for label, s in entries(cold, "**hybrid (default)**"):
            lines.append(
                f"| {label} | {pm(s, 'ndcg@10')} | {pm(s, 'recall@10')} | {pm(s, 'hit_rate@10')} | "
                f"{pm(s, 'rmse')} | {pm(s, 'mae')} |"
            )
        lines += ["", f"Command: `{shown(COLD)}`", ""]
    lines += described(results.get(DESCRIBED), results.get("described_without_text_terms"))
    lines += new_films(results.get("new_films"))
    cold_ablations = [n for n in EXPERIMENTS if n.startswith("cold_") and n != COLD and n in results]
    ablations = [n for n in EXPERIMENTS if not n.startswith(("cold_", "described_", "new_")) and n in results]
    if ablations:
        lines += [
            "## Ablations (canonical folds)",
            "",
            *header("experiment", "what changes", "RMSE", "RMSE u1", "NDCG@10", "time", "command"),
        ]
        for name in ablations:
            s = results[name]
            lines.append(
                f"| {name} | {describe(name)} | {pm(s, 'rmse')} | {fold1(s, 'rmse')} | "
                f"{pm(s, 'ndcg@10')} | {timing(s)} | `{shown(name)}` |"
            )
        lines.append("")
    if cold_ablations:
        lines += [
            "## Ablations (cold start, protocol B)",
            "",
            *header("experiment", "what changes", "NDCG@10", "RMSE", "time", "command"),
        ]
        for name in [COLD, *cold_ablations] if cold else cold_ablations:
            s = results[name]
            lines.append(
                f"| {name} | {describe(name)} | {pm(s, 'ndcg@10')} | {pm(s, 'rmse')} | "
                f"{timing(s)} | `{shown(name)}` |"
            )
        lines.append("")
    lines += targets(default, cold)
    lines += [
        "## Recomputed from the per-fold prediction files",
        "",
        "Every fold writes `folds/<k>/test_predictions.csv`; these figures are recomputed from those files",
        "alone (canonical runs are also checked to cover exactly the official `u<k>.test` ratings).",
        "",
        *header("experiment", "RMSE mean", "MAE mean", "test ratings", "check"),
    ]
    for name, summary in results.items():
        lines += recompute(name, summary)
    lines += [
        "",
        "## Anchors (measured elsewhere on the same protocols; ../shared/eval-protocol.md)",
        "",
        *header("rating CV", "RMSE mean", "RMSE u1"),
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in ANCHORS["rating"]]
    lines += ["", *header("top-10, protocol A", "NDCG@10")] + [f"| {a} | {b} |" for a, b in ANCHORS["topn"]]
    lines += ["", *header("cold start, protocol B", "")] + [f"| {a} | {b} |" for a, b in ANCHORS["cold"]]
    lines += ["", *learned_weights(results), *decisions()]
    (ROOT / "RESULTS.md").write_text("\n".join(lines))
    print(f"wrote {ROOT / 'RESULTS.md'}")
    if default:
        update_readme(
            default, results.get(COLD), results.get(DESCRIBED), results.get("described_without_text_terms")
        )
        from hybridrec.evaluation.plots import plot_cv_summary

        baselines = {name: b["folds"] for name, b in (default.get("baselines") or {}).items()}
        plot_cv_summary(
            default.get("model_name", "hybrid"), default["folds"], baselines, ROOT / "docs" / "cv_summary.png"
        )
    curves = RUNS / "validation_carve_out" / "learning_curves.png"
    if curves.is_file():
        shutil.copyfile(curves, ROOT / "docs" / "validation_curves.png")


def described(summary: dict | None, without_text_terms: dict | None = None) -> list[str]:
    """Protocol C's table: the model (and the model without the terms that read what the user asks
    for) and its baselines, pooled over phrasings and per phrasing."""
    if not summary:
        return []
    styles = sorted({k.split("/")[1] for k in summary if k.startswith("test/") and k.count("/") == 2})
    lines = [
        "## Cold start in the users' own words, protocol C",
        "",
        "Protocol B's cold users, each telling 5 of their ratings (seeded) as a description in three",
        "phrasings (literal genre names, paraphrases only, the films first; `data/descriptions.py`); the",
        "told films are left out of the lists and the rest of their ratings are scored. Written once under",
        "`paths.splits_dir`, read by every run.",
        "",
        *header("model", "NDCG@10", *[f"NDCG@10 {s}" for s in styles], "Recall@10", "RMSE"),
    ]
    rows = list(entries(summary, "**hybrid (default)**"))
    if without_text_terms:
        rows.insert(1, ("hybrid without named films and asked genres", without_text_terms))
    for label, s in rows:
        cells = [pm(s, "ndcg@10"), *[pm(s, f"{style}/ndcg@10") for style in styles]]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {pm(s, 'recall@10')} | {pm(s, 'rmse')} |")
    commands = [f"`{shown(DESCRIBED)}`"]
    if without_text_terms:
        commands.append(f"`{shown('described_without_text_terms')}`")
    return [*lines, "", f"Commands: {', '.join(commands)}", ""]


def new_films(summary: dict | None) -> list[str]:
    """The new-film protocol's table."""
    if not summary:
        return []
    lines = [
        "## New films, known only by their text",
        "",
        "Five seeded folds of films, each unseen in training; their ratings are scored, and each user's",
        "list ranks the fold's new films alone (relevant: the ones they rated 4-5).",
        "",
        *header("model", "RMSE", "MAE", "NDCG@10", "Recall@10"),
    ]
    for label, s in entries(summary, "**hybrid (default)**"):
        lines.append(
            f"| {label} | {pm(s, 'rmse')} | {pm(s, 'mae')} | {pm(s, 'ndcg@10')} | {pm(s, 'recall@10')} |"
        )
    return [*lines, "", f"Command: `{shown('new_films')}`", ""]


def learned_weights(results: dict[str, dict]) -> list[str]:
    """The weights the learned blend chose, per fold (blend=learned rows)."""
    lines = []
    for name in ("learned_blend", "cold_learned_blend"):
        summary = results.get(name)
        if not summary:
            continue
        if not lines:
            lines = [
                "## The learned blend's weights",
                "",
                "Chosen per fold on data held out of its training part (`blend=learned`: NNLS for ratings, the",
                "best NDCG@10 of a grid for lists); `blend=fixed` is the first row of each channel.",
                "",
                *header("run", "fold", "channel", "weights"),
            ]
        fixed = OmegaConf.load(ROOT / "configs" / "blend" / "fixed.yaml").weights
        for channel, weights in fixed.items():
            lines.append(f"| fixed | – | {channel} | {_weights(weights)} |")
        for row in summary["folds"]:
            for channel, weights in row.get("blend", {}).items():
                lines.append(f"| {name} | {row['fold']} | {channel} | {_weights(weights)} |")
    return [*lines, ""] if lines else []


def _weights(weights) -> str:
    return ", ".join(f"{part} {float(w):.3f}" for part, w in weights.items())


DECISIONS = ("<!-- decisions -->", "<!-- /decisions -->")


def decisions() -> list[str]:
    """The "Decisions" section, carried over from the current RESULTS.md as it is (written by hand:
    what was tried on validation, and why the defaults are what they are)."""
    text = (ROOT / "RESULTS.md").read_text() if (ROOT / "RESULTS.md").is_file() else ""
    if DECISIONS[0] not in text:
        return []
    start, end = text.index(DECISIONS[0]), text.index(DECISIONS[1]) + len(DECISIONS[1])
    return [text[start:end], ""]


# The targets the project set itself (issue 6): (what, protocol, key, comparison, bound)
TARGETS = [
    ("rating RMSE, mean of u1–u5", DEFAULT, "test/rmse_mean", "<=", 0.885),
    ("rating RMSE, u1", DEFAULT, "u1_rmse", "<=", 0.890),
    ("top-10 NDCG@10 (protocol A)", DEFAULT, "test/ndcg@10_mean", ">=", 0.42),
    ("top-10 catalog coverage (above EASE^R's)", DEFAULT, "test/coverage@10_mean", ">", 0.16),
    ("cold-start NDCG@10 (protocol B)", COLD, "test/ndcg@10_mean", ">=", 0.42),
    ("cold-start RMSE (protocol B)", COLD, "test/rmse_mean", "<=", 1.015),
]


def targets(default: dict | None, cold: dict | None) -> list[str]:
    runs = {DEFAULT: default, COLD: cold}
    lines = ["## Against the targets", "", *header("target", "bound", "measured", "met")]
    for what, run, key, op, bound in TARGETS:
        summary = runs[run]
        if not summary:
            continue
        value = float(fold1(summary, "rmse")) if key == "u1_rmse" else summary[key]
        met = {"<=": value <= bound, ">=": value >= bound, ">": value > bound}[op]
        lines.append(f"| {what} | {op} {bound} | {value:.4f} | {'yes' if met else '**no**'} |")
    return [*lines, ""]


def update_readme(
    default: dict, cold: dict | None, described: dict | None = None, without_text_terms: dict | None = None
) -> None:
    """Rewrite the headline table between the README's markers from the same runs."""
    baselines = default.get("baselines") or {}
    rating = sorted(
        (
            (b, s["test/rmse_mean"])
            for b, s in baselines.items()
            if s["test/rmse_mean"] == s["test/rmse_mean"]
        ),
        key=lambda x: x[1],
    )
    ranking = sorted(
        ((b, s["test/ndcg@10_mean"], s["test/coverage@10_mean"]) for b, s in baselines.items()),
        key=lambda x: -x[1],
    )
    rows = [
        *header(
            "protocol",
            "metric",
            "hybrid (default)",
            "baselines in the same run",
            "reference (eval-protocol.md)",
        ),
        f"| rating CV u1–u5 | RMSE | {pm(default, 'rmse')} (u1 {fold1(default, 'rmse')}) | "
        + ", ".join(f"{b} {v:.4f}" for b, v in rating[:2])
        + " | Bayesian FM 0.879, Surprise SVD tuned 0.9125 |",
        f"| top-10, protocol A | NDCG@10 | {pm(default, 'ndcg@10')}, coverage {default['test/coverage@10_mean']:.2f} | "
        + ", ".join(f"{b} {v:.4f} (coverage {c:.2f})" for b, v, c in ranking[:2])
        + " | EASE^R 0.400, popularity 0.205 |",
    ]
    if cold:
        cold_baselines = cold.get("baselines") or {}
        popularity = cold_baselines.get("popularity", {})
        rows.append(
            f"| cold start, protocol B | NDCG@10 / RMSE | {pm(cold, 'ndcg@10')} / {pm(cold, 'rmse')} | "
            f"popularity {popularity.get('test/ndcg@10_mean', float('nan')):.4f} / {popularity.get('test/rmse_mean', float('nan')):.4f} | "
            "demographic kNN 0.414, popularity 0.406; item mean RMSE 1.024 |"
        )
    if described:
        popularity = (described.get("baselines") or {}).get("popularity", {})
        without = (
            f"; without named films and asked genres {without_text_terms['test/ndcg@10_mean']:.4f}"
            if without_text_terms
            else ""
        )
        rows.append(
            f"| described users, protocol C | NDCG@10 | {pm(described, 'ndcg@10')} | "
            f"popularity {popularity.get('test/ndcg@10_mean', float('nan')):.4f}{without} | – |"
        )
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = (
        text.index("<!-- headline -->\n") + len("<!-- headline -->\n"),
        text.index("<!-- /headline -->"),
    )
    readme.write_text(text[:start] + "\n".join(rows) + "\n" + text[end:])


if __name__ == "__main__":
    main()
