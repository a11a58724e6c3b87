"""Serve a trained bundle over REST: `python serve.py bundle=PATH host=127.0.0.1 port=8000` (docs at /docs)."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hybridrec.cli_args import check_overrides

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
check_overrides(sys.argv, "serve", str(Path(__file__).resolve().parent / "configs"))


@hydra.main(config_path="configs", config_name="serve", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hybridrec.cli import run_serve

    run_serve(cfg)


if __name__ == "__main__":
    main()
