"""Train and evaluate hybridrec models: `python train.py` (one run) or `python train.py -m ...` (a sweep)."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hybridrec.cli_args import check_overrides

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
check_overrides(sys.argv, "train", str(Path(__file__).resolve().parent / "configs"))


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from hybridrec.cli import run_train  # heavy imports only once the config is valid

    return run_train(cfg)


if __name__ == "__main__":
    main()
