"""The final fit: the configured model trained on every rating and saved as a bundle."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from hybridrec.bundle import save_bundle
from hybridrec.tracking import run_name
from hybridrec.training.fit import fit_fold


def train_and_save_bundle(cfg: DictConfig, embedder, cv_summary: dict | None = None) -> Path:
    """All ratings (less a validation carve-out when ``data.val_fraction`` > 0), saved as a bundle
    beside the run's CV results (their means go into its manifest)."""
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
    dm = fitted.datamodule
    metrics = {k: v for k, v in (cv_summary or {}).items() if k.endswith(("_mean", "_std"))}
    metrics.update({f"final/{k}": v for k, v in fitted.val_metrics.items()})
    return save_bundle(
        output_dir / "bundle",
        cfg,
        fitted.model,
        dm.context,
        dm.train_interactions,
        dm.data.items,
        dm.data.users,
        metrics,
        split={"protocol": "all", "fold": 0},
    )
