"""What the entry points do once Hydra has composed their config; each returns the CLI's result."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf, open_dict

from hybridrec.errors import HybridRecError

log = logging.getLogger(__name__)

T = TypeVar("T")


def exits_cleanly(func: Callable[..., T]) -> Callable[..., T]:
    """Turn an expected failure into one readable line on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HybridRecError as err:
            log.debug("failed", exc_info=True)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


@exits_cleanly
def run_train(cfg: DictConfig) -> float:
    """Cross-validate the configured model, then (``final_fit``) train it on all ratings and save a
    bundle; a run killed before it finished is finished by the same command (``resume``)."""
    from hybridrec.errors import ConfigError
    from hybridrec.runs import open_run
    from hybridrec.training.checks import check_run_config
    from hybridrec.training.processes import is_first_process, started_by_a_launcher

    check_values(
        cfg,
        {
            "seed": int,
            "final_fit": bool,
            "save_fold_bundles": bool,
            "fold_workers": int,
            "run_name": (str, None),
            "tags": list,
            "task_name": str,
            "resume": (str, None),
        },
    )
    check_run_config(cfg)
    if _in_sweep() and not cfg.data.get("val_fraction", 0) > 0:
        raise ConfigError(
            "a sweep chooses its setting on validation, never on the test folds: data.val_fraction must be > 0"
        )
    attempt = Path(cfg.paths.output_dir)  # the folder Hydra made for this command
    # a resumed run: its folder and name (trainer=ddp_multinode: the first process holds the run)
    run = open_run(
        cfg, cfg.run_name or _run_name(), owner=is_first_process(), search=not started_by_a_launcher()
    )
    try:
        monitored = _train(cfg, run)
        run.finish()
    finally:
        run.release()
    if run.folder.resolve() != attempt.resolve() and (run.folder / "cv_summary.json").is_file():
        from hybridrec.io import write_text

        for name in ("cv_summary.json", "cv_summary.md"):  # this command's folder shows what it finished
            write_text(attempt / name, (run.folder / name).read_text())  # (and a sweep's table lists it)
        log.info("finished the run in %s (its summary copied here)", run.folder)
    return monitored


def _train(cfg: DictConfig, run) -> float:
    from hybridrec.data.datamodule import check_protocol
    from hybridrec.data.dataset import DatasetSource, load_dataset
    from hybridrec.data.profiles import ProfileConfig
    from hybridrec.data.summary import data_summary
    from hybridrec.embedders.factory import build_run_embedder
    from hybridrec.evaluation.cross_validation import run_cross_validation
    from hybridrec.tracking import log_cv_summary

    with open_dict(cfg):  # named once here: fold workers have no Hydra context to ask
        cfg.run_name = run.name
    embedder = build_run_embedder(cfg)
    data, profile = load_dataset(DatasetSource.from_config(cfg.data)), ProfileConfig(**cfg.data.profile)
    check_protocol(data, cfg.cv.protocol, profile)  # before any fold is trained
    log.info("%s", data_summary(data, profile))
    result = run_cross_validation(cfg, embedder)
    log.info("%s", result.markdown)
    if embedder is not None and hasattr(embedder, "total"):
        stats = embedder.total
        log.info(
            "embeddings (%s): %d texts embedded, %d read from the cache (%.1fs)",
            embedder.name,
            stats.embedded,
            stats.cached,
            stats.seconds,
        )
    bundle_dir = None
    if cfg.final_fit:
        from hybridrec.training.final_fit import train_and_save_bundle

        bundle_dir = train_and_save_bundle(cfg, embedder, result.summary)
        if bundle_dir is not None:
            log.info("model bundle: %s", bundle_dir)
    if result.summary:  # (the first process's; the others only trained)
        log_cv_summary(cfg, result.summary, result.plots, bundle_dir)
    return result.monitor_mean


def _is(value, kind) -> bool:
    """Whether ``value`` is of ``kind`` as a setting means it (a bool is no number, an int is a float)."""
    if kind is None:
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float) and isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    if kind is list:
        return OmegaConf.is_list(value) or isinstance(value, list)
    return isinstance(value, kind)


def check_values(cfg: DictConfig, kinds: dict) -> None:
    """Each setting of ``kinds`` holds its kind (``int``, ``bool``, ``str``; a tuple: any of them,
    ``None`` for null), never something a program would silently truncate or guess: ``user_id=1.5``
    and ``exclude_seen=maybe`` are refused."""
    from hybridrec.errors import InvalidInputError

    names = {
        int: "a whole number",
        bool: "true or false",
        str: "a text",
        float: "a number",
        list: "a list",
        None: "null",
    }
    from omegaconf.errors import MissingMandatoryValue

    for key, kind in kinds.items():
        allowed = kind if isinstance(kind, tuple) else (kind,)
        try:
            if OmegaConf.is_missing(cfg, key):
                raise MissingMandatoryValue(key)
            value = cfg.get(key)
        except MissingMandatoryValue:
            raise InvalidInputError(f"{key} must be given ({key}=...)") from None
        if not any(_is(value, k) for k in allowed):
            raise InvalidInputError(f"{key} must be {' or '.join(names[k] for k in allowed)}, got {value!r}")


def _in_sweep() -> bool:
    """Whether this run is a job of a Hydra multirun (a sweep, an Optuna search)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _run_name() -> str:
    """The run folder's name; in a sweep, the sweep folder's and the job's (``<sweep>-<job>``), so
    that every sweep's job 0 is not grouped under "0"."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    config = HydraConfig.get()
    folder = Path(config.runtime.output_dir)
    return f"{folder.parent.name}-{folder.name}" if config.mode == RunMode.MULTIRUN else folder.name


@exits_cleanly
def run_eval(cfg: DictConfig) -> dict:
    """Evaluate a fold's saved bundle on that fold's test part (never a bundle of all ratings: every
    test rating was in its training)."""
    import json

    from omegaconf import open_dict

    from hybridrec.bundle import find_bundle, load_bundle
    from hybridrec.errors import InvalidInputError
    from hybridrec.evaluation.cross_validation import evaluate_model
    from hybridrec.training.fit import build_datamodule

    check_values(cfg, {"bundle": str, "data_dir": str, "format": str})
    if cfg.format not in ("table", "json"):
        raise InvalidInputError(f"format must be table or json, got {cfg.format!r}")
    bundle = load_bundle(find_bundle(cfg.bundle, cfg.paths.log_dir))
    split = bundle.manifest.get("split") or {}
    if split.get("protocol", "all") == "all":
        raise InvalidInputError(
            f"bundle {bundle.bundle_id} was trained on every rating, the test folds' too: evaluating it would "
            "leak; save fold bundles (train.py save_fold_bundles=true) and evaluate one of those"
        )
    trained = bundle.config
    with open_dict(trained):
        trained.data.data_dir = cfg.data_dir
    embedder = None
    if bundle.model.reads_text:
        from hybridrec.embedders.factory import build_embedder

        embedder = build_embedder(trained.embedder, cfg.paths.embedding_cache, progress=False)
    datamodule = build_datamodule(trained, split["protocol"], int(split["fold"]), embedder)
    metrics = {
        k: v for k, v in evaluate_model(bundle.model, datamodule).metrics.items() if isinstance(v, float)
    }
    payload = {"bundle": bundle.bundle_id, **split, **metrics}
    if cfg.format == "json":
        print(json.dumps(payload, indent=2))
    else:
        print(f"{split['protocol']} fold {split['fold']}, bundle {bundle.bundle_id}")
        print("\n".join(f"{key:<24} {value:.4f}" for key, value in metrics.items()))
    return payload


@exits_cleanly
def run_compare(cfg: DictConfig) -> dict:
    """Two CV runs on the same folds compared with statistics; compare.md, .json and .png into the
    run's folder, the table on stdout."""
    from hybridrec.ab.offline import compare_runs, comparison_markdown, plot_comparison
    from hybridrec.errors import InvalidInputError
    from hybridrec.io import write_json, write_text

    check_values(
        cfg,
        {"a": str, "b": str, "resamples": int, "confidence": float, "alpha": float, "seed": int},
    )
    if not 0 < cfg.confidence < 1 or not 0 < cfg.alpha < 1 or cfg.resamples < 100:
        raise InvalidInputError("confidence and alpha must lie between 0 and 1, resamples be at least 100")
    result = compare_runs(cfg.a, cfg.b, cfg.resamples, cfg.confidence, cfg.alpha, cfg.seed)
    folder = Path(cfg.paths.output_dir)
    markdown = comparison_markdown(result)
    write_text(folder / "compare.md", markdown)
    write_json(folder / "compare.json", result.as_dict())
    plot_comparison(result, folder / "compare.png")
    print(markdown)
    print(f"written to {folder}")
    return result.as_dict()


@exits_cleanly
def run_predict(cfg: DictConfig) -> None:
    """Print a top-N list, or one predicted rating, for a known user or a user described in words."""
    import json

    from hybridrec.errors import InvalidInputError
    from hybridrec.inference.engine import load_engine
    from hybridrec.service import RecommendationService, RecommendQuery

    check_values(
        cfg,
        {
            "user_id": (int, None),
            "item_id": (int, None),
            "user_text": (str, None),
            "item_text": (str, None),
            "n": int,
            "genres": (str, list, None),
            "exclude_seen": bool,
            "explain": bool,
            "format": str,
            "max_text_chars": int,
            "text_cache_size": int,
            "text_budget_s": float,
            "bundle": (str, None),
        },
    )
    has_user = cfg.user_id is not None
    if cfg.item_text is None or cfg.user_text is not None:
        RecommendationService.check_user_choice(cfg.user_id, cfg.user_text)
    if cfg.format not in ("table", "json"):
        raise InvalidInputError(f"format must be table or json, got {cfg.format!r}")
    engine = load_engine(
        cfg.bundle,
        cfg.paths.log_dir,
        cfg.text_cache_size,
        cfg.max_text_chars,
        text_budget_s=cfg.text_budget_s,
    )

    if cfg.item_text is not None:
        rating = engine.score_new_item(cfg.item_text, cfg.user_id)
        who = f"user {cfg.user_id}" if has_user else "the average user"
        _emit(
            cfg,
            {"item_text": cfg.item_text, "user_id": cfg.user_id, "rating": round(rating, 4)},
            f"predicted rating of the new film for {who}: {rating:.2f}",
        )
        return
    explainer = None
    if cfg.explain:
        from hybridrec.explain.gemini import build_explainer

        explainer = build_explainer(cfg.explainer, cfg.paths.explanation_cache)
    service = RecommendationService(engine, explainer)
    if cfg.item_id is not None:
        rating = service.predict(cfg.item_id, user_id=cfg.user_id, user_text=cfg.user_text)
        info = engine.item_info(cfg.item_id)
        payload = {
            "user_id": cfg.user_id,
            "item_id": info["item_id"],
            "title": info["title"],
            "rating": round(rating, 4),
        }
        _emit(cfg, payload, f"{_title(info)}: predicted rating {rating:.2f}")
        return
    listed = service.recommend(RecommendQuery.of(cfg))
    rows = listed.rows()
    if cfg.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    result = listed.result
    if has_user:
        print(f"Top {len(result.items)} for user {cfg.user_id}")
    else:
        print(f"Top {len(result.items)} for a new user: {result.user_text!r}")
    print(render_table(rows))


def _title(info: dict) -> str:
    return f"{info['title']} ({info['year']})" if info.get("year") else info["title"]


def _emit(cfg: DictConfig, payload: dict, line: str) -> None:
    import json

    print(json.dumps(payload, indent=2) if cfg.format == "json" else line)


def render_table(rows: list[dict]) -> str:
    """rank | title | year | genres | predicted rating as aligned text; an explanation goes under its film."""
    header = ("#", "title", "year", "genres", "predicted")
    body = [
        (
            str(k),
            r["title"],
            str(r["year"] or ""),
            ", ".join(r["genres"]),
            "" if r["score"] is None else f"{r['score']:.2f}",
        )
        for k, r in enumerate(rows, start=1)
    ]
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]

    def line(cells) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)]
    for cells, row in zip(body, rows, strict=True):
        lines.append(line(cells))
        if "explanation" in row:
            why = row["explanation"]
            lines.append(f"{'':{widths[0]}}  ↳ {why['text']} [{why['explainer']}]")
    return "\n".join(lines)


@exits_cleanly
def run_serve(cfg: DictConfig) -> None:
    """Load the bundle first (one clear line if it is missing, corrupt or cannot be built), then start
    uvicorn: one worker serves what was loaded here; more workers load their own."""
    import json
    import os

    import uvicorn
    from omegaconf import OmegaConf

    from hybridrec.api.limits import parse_rate
    from hybridrec.bundle import find_bundle
    from hybridrec.errors import InvalidInputError
    from hybridrec.inference.engine import load_engine

    check_values(
        cfg,
        {
            "bundle": (str, None),
            "host": str,
            "port": int,
            "workers": int,
            "log_level": str,
            "max_text_chars": int,
            "max_body_bytes": int,
            "body_timeout_s": float,
            "text_cache_size": int,
            "text_budget_s": float,
            "rate_limit": (str, None),
            "cold_start_slots": int,
            "cold_start_wait_s": float,
            "graceful_shutdown_s": float,
            "cors_origins": list,
            "event_log": str,
        },
    )
    if not 1 <= cfg.port <= 65535 or cfg.workers < 1 or cfg.max_text_chars < 1 or cfg.graceful_shutdown_s < 0:
        raise InvalidInputError(
            "port must be 1-65535, workers and max_text_chars at least 1, graceful_shutdown_s >= 0"
        )
    if cfg.log_level not in ("critical", "error", "warning", "info", "debug"):
        raise InvalidInputError(
            f"log_level must be critical, error, warning, info or debug, got {cfg.log_level!r}"
        )
    if cfg.rate_limit is not None:
        parse_rate(cfg.rate_limit)
    if cfg.cold_start_slots < 1 or cfg.text_cache_size < 1 or cfg.text_budget_s <= 0:
        raise InvalidInputError("cold_start_slots and text_cache_size must be at least 1, text_budget_s > 0")
    bundle = find_bundle(cfg.bundle, cfg.paths.log_dir)
    engine = load_engine(
        bundle, cfg.paths.log_dir, cfg.text_cache_size, cfg.max_text_chars, text_budget_s=cfg.text_budget_s
    )
    ab = OmegaConf.select(cfg, "ab")
    experiment = (
        None if ab is None else {**OmegaConf.to_container(ab, resolve=True), "event_log": cfg.event_log}
    )
    settings = {
        "BUNDLE": str(bundle),
        "SEARCH_ROOT": str(cfg.paths.log_dir),
        "TEXT_CACHE_SIZE": str(cfg.text_cache_size),
        "TEXT_BUDGET_S": str(cfg.text_budget_s),
        "RATE_LIMIT": cfg.rate_limit or "",
        "COLD_START_SLOTS": str(cfg.cold_start_slots),
        "COLD_START_WAIT_S": str(cfg.cold_start_wait_s),
        "EXPLANATION_CACHE": str(cfg.paths.explanation_cache),
        "EXPLAINER": json.dumps(OmegaConf.to_container(cfg.explainer, resolve=True)),
        "MAX_TEXT_CHARS": str(cfg.max_text_chars),
        "MAX_BODY_BYTES": str(cfg.max_body_bytes),
        "BODY_TIMEOUT_S": str(cfg.body_timeout_s),
        "CORS_ORIGINS": json.dumps(list(cfg.cors_origins)),
        "EXPERIMENT": json.dumps(experiment),
    }
    for key, value in settings.items():  # workers are separate processes: they read their settings from here
        os.environ[f"HYBRIDREC_{key}"] = value
    from hybridrec.api.app import create_app, install_request_ids
    from hybridrec.api.settings import get_settings

    logging.basicConfig(
        level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
    )
    install_request_ids()
    one = int(cfg.workers) == 1
    uvicorn.run(
        create_app(get_settings(), engine) if one else "hybridrec.api.app:create_app",
        factory=not one,
        host=cfg.host,
        port=int(cfg.port),
        workers=int(cfg.workers),
        log_level=cfg.log_level,
        access_log=False,  # the app logs each request itself, with its latency
        timeout_graceful_shutdown=cfg.graceful_shutdown_s,
    )
