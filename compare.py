"""Compare two CV runs on the same folds with statistics: `python compare.py a=RUN_DIR b=RUN_DIR`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hybridrec.cli_args import check_overrides

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
check_overrides(sys.argv, "compare", str(Path(__file__).resolve().parent / "configs"))


@hydra.main(config_path="configs", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hybridrec.cli import run_compare  # heavy imports only once the config is valid

    run_compare(cfg)


if __name__ == "__main__":
    main()
