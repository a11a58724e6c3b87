"""``python -m hybridrec.ab report log=PATH ...`` and ``python -m hybridrec.ab simulate bundle=PATH ...``:
the settings of configs/ab_report.yaml and configs/ab_simulate.yaml, overridden as key=value."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hybridrec.cli import check_values, exits_cleanly
from hybridrec.errors import ConfigError, InvalidInputError

log = logging.getLogger("hybridrec.ab")
COMMANDS = {"report": "ab_report", "simulate": "ab_simulate"}
USAGE = "usage: python -m hybridrec.ab report log=PATH [key=value ...] | simulate bundle=PATH [key=value ...]"


def _compose(command: str, overrides: list[str]) -> DictConfig:
    from hybridrec.python_api import compose

    try:
        cfg = compose(COMMANDS[command], *overrides)
    except Exception as err:  # Hydra's parse and composition errors: their first line says it
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(first) from None
    return cfg


def _stats(cfg: DictConfig):
    from hybridrec.ab.report import ReportSettings

    settings = ReportSettings(**cfg.stats)
    if settings.k < 1 or not 0 < settings.alpha < 1 or not 0 < settings.power < 1 or settings.resamples < 100:
        raise InvalidInputError("stats: k >= 1, alpha and power within (0, 1), resamples >= 100")
    if not 0 < abs(settings.mde) < 1:
        raise InvalidInputError(
            f"stats.mde must be a change of the CTR within (-1, 1), not 0; got {settings.mde}"
        )
    return settings


def report(cfg: DictConfig):
    """The experiment's report from its log, into ``output_dir``; the Markdown on stdout."""
    from hybridrec.ab.report import build_report, report_markdown, write_report

    check_values(cfg, {"log": str, "experiment": (str, None), "output_dir": str})
    result = build_report(cfg.log, cfg.experiment, _stats(cfg))
    write_report(result, Path(cfg.output_dir))
    print(report_markdown(result))
    print(f"written to {cfg.output_dir}")
    return result


def simulate(cfg: DictConfig):
    """Start (or target) a server, send the simulated traffic, stop it cleanly, report."""
    import numpy as np

    from hybridrec.ab.report import build_report, detected, report_markdown, write_report
    from hybridrec.ab.simulator import (
        free_port,
        held_out_ratings,
        run_traffic,
        simulated_users,
        start_server,
        stop_server,
    )
    from hybridrec.api.probe import wait_until_up
    from hybridrec.io import write_json

    check_values(
        cfg,
        {
            "bundle": str,
            "data_dir": str,
            "url": (str, None),
            "log": (str, None),
            "users": int,
            "visits": int,
            "seconds": float,
            "concurrency": int,
            "n": int,
            "seed": int,
            "output_dir": str,
        },
    )
    if min(cfg.users, cfg.visits, cfg.concurrency, cfg.n) < 1 or cfg.seconds <= 0:
        raise InvalidInputError("users, visits, concurrency and n must be at least 1, seconds above 0")
    if cfg.url is not None and cfg.log is None:
        raise InvalidInputError("with url=..., give the running server's event log too: log=PATH")
    stats_settings = _stats(cfg)
    folder = Path(cfg.output_dir)
    held_out = held_out_ratings(cfg.bundle, cfg.data_dir, cfg.paths.splits_dir)
    users = simulated_users(held_out, cfg.users, np.random.default_rng(cfg.seed))
    if not users:
        raise InvalidInputError("no held-out user liked a held-out film: nothing to simulate")
    log_path = Path(cfg.log) if cfg.log else folder / "events.sqlite3"
    server, base_url = None, cfg.url
    if base_url is None:
        experiment = {**OmegaConf.to_container(cfg.ab), "event_log": str(log_path)}
        base_url = f"http://127.0.0.1:{free_port()}"
        server = start_server(cfg.bundle, experiment, int(base_url.rsplit(":", 1)[1]), folder / "server.log")
    try:
        if server is not None:
            wait_until_up(base_url, server, timeout_s=120)
        outcome = run_traffic(base_url, users, cfg.n, cfg.visits, cfg.seconds, cfg.concurrency, cfg.seed)
    finally:
        if server is not None:
            stop_server(server)
    result = build_report(log_path, None, stats_settings)
    write_report(result, folder)
    summary = {
        "bundle": cfg.bundle,
        "experiment": result.experiment,
        "users": len(users),
        "visits": outcome.visits,
        "clicks": outcome.clicks,
        "failed_visits": outcome.failures,
        "seconds": outcome.seconds,
        "acknowledged_events": len(outcome.acknowledged),
        "detected": detected(result),
    }
    write_json(folder / "simulation.json", {**summary, "acknowledged_ids": outcome.acknowledged})
    print(report_markdown(result))
    print(json.dumps(summary))
    print(f"written to {folder}")
    return result, outcome


@exits_cleanly
def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        raise InvalidInputError(USAGE)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = _compose(argv[0], argv[1:])
    (report if argv[0] == "report" else simulate)(cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
