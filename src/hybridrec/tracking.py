"""Experiment loggers for one fold (CSV, W&B), built from the ``logger`` config group."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def run_name(cfg) -> str:
    """A run's name in W&B and the reports: ``run_name``, else its folder's name (set by the entry
    point: in a sweep, the sweep folder's name and the job's number)."""
    return cfg.get("run_name") or Path(cfg.paths.output_dir).name


def run_tags(cfg) -> list[str]:
    """Tags that say what a run is (model, protocol, embedder, data set), beside the config's own."""
    from omegaconf import OmegaConf

    model = str(OmegaConf.select(cfg, "model._target_", default="")).rsplit(".", 1)[-1]
    embedder = str(OmegaConf.select(cfg, "embedder._target_", default="")).rsplit(".", 1)[-1]
    automatic = [
        f"model:{model}",
        f"protocol:{OmegaConf.select(cfg, 'cv.protocol')}",
        f"embedder:{embedder}",
        f"data:{OmegaConf.select(cfg, 'data.name')}",
    ]
    return [*automatic, *(cfg.get("tags") or [])]


def csv_logger(save_dir: str | Path, name: str, group: str, run_tags: list[str], config: dict | None = None):
    """``<save_dir>/metrics.csv``: one row per logged epoch."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(save_dir), name="", version="")
    if config:
        logger.log_hyperparams({**config, "tags": run_tags})
    return logger


def wandb_is_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def wandb_logger(
    save_dir: str | Path,
    name: str,
    group: str,
    project: str,
    entity: str | None,
    offline: bool | None,
    tags: list[str],
    run_tags: list[str],
    config: dict | None = None,
):
    """A W&B run for one fold, in the CV run's group; offline unless the user is logged in.

    Offline runs land in ``<save_dir>/wandb/`` and can be uploaded later with ``wandb sync``.
    """
    from lightning.pytorch.loggers import WandbLogger

    if offline is None:
        offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_is_logged_in()
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        name=name,
        group=group,
        project=project,
        entity=entity,
        offline=offline,
        tags=[*run_tags, *tags],
        save_dir=str(save_dir),
        config=config,
        reinit="create_new",
    )


def close_loggers(loggers) -> None:
    """Finish every logger; a W&B run is closed even after a crash, so the next fold starts its own."""
    for logger in loggers:
        try:
            logger.finalize("success")
        except Exception:
            log.warning("could not finalize %s", type(logger).__name__, exc_info=True)
        experiment = getattr(logger, "_experiment", None)
        if experiment is not None and hasattr(experiment, "finish"):
            experiment.finish()


def log_cv_summary(cfg, payload: dict, plots: list[Path], bundle: Path | None = None) -> None:
    """With the W&B logger: one more run in the CV's group holding the summary table, numbers and
    plots, the run's config and tags, and as artifacts the per-fold predictions and the bundle."""
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not wandb_cfg:
        return
    import pandas as pd
    import wandb

    offline = wandb_cfg.get("offline")
    if offline is None:
        offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_is_logged_in()
    from omegaconf import OmegaConf

    save_dir, name = Path(cfg.paths.output_dir), run_name(cfg)
    run = wandb.init(
        project=wandb_cfg.get("project", "hybridrec"),
        entity=wandb_cfg.get("entity"),
        group=name,
        name=f"{name}-summary",
        job_type="cv-summary",
        dir=str(save_dir),
        mode="offline" if offline else "online",
        tags=[*run_tags(cfg), *(wandb_cfg.get("tags") or [])],
        config=OmegaConf.to_container(cfg, resolve=True),
        reinit="create_new",
    )
    try:
        rows = [{"model": payload.get("model_name", "model"), **r} for r in payload["folds"]]
        for name, baseline in (payload.get("baselines") or {}).items():
            rows += [{"model": name, **r} for r in baseline["folds"]]
        table = pd.DataFrame(rows).drop(columns=["best_epoch", "blend"], errors="ignore")
        run.log({"cv/folds": wandb.Table(dataframe=table)})
        run.log({f"cv/{path.stem}": wandb.Image(str(path)) for path in plots})
        run.summary.update({f"cv/{k}": v for k, v in payload.items() if k.endswith(("_mean", "_std"))})
        predictions = wandb.Artifact(f"{name}-predictions", type="predictions")
        for fold in sorted((save_dir / "folds").glob("*/test_predictions.csv")):
            predictions.add_file(str(fold), name=f"fold{fold.parent.name}.csv")
        run.log_artifact(predictions)
        if bundle is not None:
            artifact = wandb.Artifact(
                f"{name}-bundle", type="model", description="holds MovieLens ratings: do not share"
            )
            artifact.add_dir(str(bundle))
            run.log_artifact(artifact)
    finally:
        run.finish()
