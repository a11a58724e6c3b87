"""Evaluate a saved fold model again on its fold's test part, without training: `python eval.py bundle=PATH`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hybridrec.cli_args import check_overrides

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
check_overrides(sys.argv, "eval", str(Path(__file__).resolve().parent / "configs"))


@hydra.main(config_path="configs", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hybridrec.cli import run_eval  # heavy imports only once the config is valid

    run_eval(cfg)


if __name__ == "__main__":
    main()
