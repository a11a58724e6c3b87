"""The final fit: the configured model trained on every rating and saved as a bundle."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from hybridrec.bundle import save_bundle
from hybridrec.tracking import run_name
from hybridrec.training.fit import fit_fold
from hybridrec.training.processes import is_first_process


def train_and_save_bundle(cfg: DictConfig, embedder, cv_summary: dict | None = None) -> Path | None:
    """All ratings (less a validation carve-out when ``data.val_fraction`` > 0), saved as a bundle
    beside the run's CV results (their means go into its manifest); None in a process that only
    trains (``trainer=ddp_multinode``)."""
    output_dir = Path(cfg.paths.output_dir)
    fitted = fit_fold(
        cfg,
        "all",
        0,
        embedder,
        output_dir / "final",
        run_name=run_name(cfg),
        fold_name=f"{run_name(cfg)}-final",
    )
    if not is_first_process():  # (trainer=ddp_multinode: the first process saves)
        return None
    metrics = {k: v for k, v in (cv_summary or {}).items() if k.endswith(("_mean", "_std"))}
    metrics.update({f"final/{k}": v for k, v in fitted.val_metrics.items()})
    return save_fitted(output_dir / "bundle", cfg, fitted, {"protocol": "all", "fold": 0}, metrics)


def save_fitted(path: Path, cfg: DictConfig, fitted, split: dict, metrics: dict | None = None) -> Path:
    """A fitted fold (``fit_fold``'s result) saved as a bundle: its model, the context and ratings it
    was fitted on, the catalog and the users; ``split`` says which protocol and fold it saw."""
    dm = fitted.datamodule
    return save_bundle(
        path,
        cfg,
        fitted.model,
        dm.context,
        dm.train_interactions,
        dm.data.items,
        dm.data.users,
        metrics,
        split=split,
    )
