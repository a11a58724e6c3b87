"""Recommendations from a trained bundle: `python predict.py user_id=1` or `python predict.py user_text="..."`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
from hybridrec.cli_args import check_overrides, quote_free_text

sys.argv = quote_free_text(sys.argv, keys=("user_text", "item_text", "genres"))
check_overrides(sys.argv, "predict", str(Path(__file__).resolve().parent / "configs"))


@hydra.main(config_path="configs", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hybridrec.cli import run_predict

    run_predict(cfg)


if __name__ == "__main__":
    main()
