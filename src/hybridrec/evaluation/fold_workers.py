"""Cross-validation folds trained side by side in worker processes (``fold_workers`` > 1).

Folds are independent: each is seeded on its own, so where it runs does not change what it
computes (only how its float operations are split over threads). On a few cores this is the faster
way to use them: this model's many small tensor operations keep two threads of one training less
busy than two single-threaded trainings. Each worker gets an equal share of the CPU threads; the
folds of a last, partial round get the threads of the workers that have nothing left to do.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from logging.handlers import QueueHandler, QueueListener
from typing import TypeVar

import torch
from omegaconf import DictConfig, OmegaConf

from hybridrec.data.dataset import DatasetSource, load_dataset
from hybridrec.embedders.cache import EmbedStats
from hybridrec.embedders.factory import build_run_embedder
from hybridrec.errors import ConfigError
from hybridrec.training.processes import die_with_parent

log = logging.getLogger(__name__)

T = TypeVar("T")

# what a worker process keeps between its folds: the run's config, its embedder and the fold function
_worker: dict = {}


def fold_workers(cfg: DictConfig, n_folds: int) -> int:
    """How many folds run at once: ``fold_workers``, at most one per fold, and 1 under a DDP
    trainer (which spawns processes of its own)."""
    requested = cfg.get("fold_workers", 1)
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ConfigError(f"fold_workers must be a whole number >= 1, got {requested!r}")
    if requested > 1 and "ddp" in str(cfg.trainer.get("strategy", "")):
        log.warning(
            "fold_workers=%d ignored: the DDP trainer already runs one fold over processes", requested
        )
        return 1
    return min(requested, n_folds)


def thread_plan(n_folds: int, workers: int, threads: int) -> list[int]:
    """Torch threads per fold, in fold order: ``threads // workers`` each, except that the folds of
    a last, partial round share all ``threads`` among themselves."""
    full_rounds = n_folds - n_folds % workers
    last_round = max(n_folds - full_rounds, 1)
    return [max(1, threads // (workers if k < full_rounds else last_round)) for k in range(n_folds)]


def map_folds(
    run_fold: Callable[[DictConfig, int, object], T],
    cfg: DictConfig,
    folds: Sequence[int],
    embedder,
) -> list[T]:
    """``run_fold(cfg, fold, embedder)`` for every fold, in fold order, sequentially or in workers.

    ``run_fold`` must be a module-level function (it is pickled by name); each worker builds the
    run's embedder from ``cfg`` (none when ``embedder`` is None: the model reads no text). The data
    is fetched here first, so that workers do not race to download it.
    Results come back in fold order; a fold that fails stops the folds not yet started and raises.
    What the workers embedded is added to ``embedder.total``, as if this process had embedded it.
    """
    workers = fold_workers(cfg, len(folds))
    if workers == 1:
        return [run_fold(cfg, fold, embedder) for fold in folds]
    load_dataset(DatasetSource.from_config(cfg.data))
    threads = thread_plan(len(folds), workers, torch.get_num_threads())
    log.info("training %d folds, %d at a time (torch threads per fold: %s)", len(folds), workers, threads)
    resolved = OmegaConf.to_container(cfg, resolve=True)  # workers have no Hydra context to resolve in
    resolved["trainer"]["enable_progress_bar"] = False  # one terminal, several folds: no bars fighting
    # spawn, not fork: forking is unsafe once torch has started its thread pools
    context = multiprocessing.get_context("spawn")
    records = context.Queue()  # the workers' log records, handled here by this process's handlers
    listener = QueueListener(records, *logging.getLogger().handlers, respect_handler_level=True)
    listener.start()
    pool = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(run_fold, resolved, embedder is not None, records, _logger_levels()),
    )
    results = []
    try:
        for result, embedded in pool.map(_run_in_worker, folds, threads):
            if embedded is not None and isinstance(getattr(embedder, "total", None), EmbedStats):
                embedder.total.add(embedded)
            results.append(result)
        return results
    finally:
        pool.shutdown(cancel_futures=True)
        listener.stop()


def _logger_levels() -> dict[str, int]:
    """This process's log levels: the root's, and those set on named loggers (Hydra's job logging)."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _start_worker(run_fold, resolved: dict, with_embedder: bool, records, levels: dict[str, int]) -> None:
    """A worker logs through the run's own handlers (its log file and console): its records go to
    the parent process, with the parent's levels. It dies with the run's process."""
    die_with_parent()
    root = logging.getLogger()
    root.handlers = [QueueHandler(records)]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    cfg = OmegaConf.create(resolved)
    _worker.update(run_fold=run_fold, cfg=cfg, embedder=build_run_embedder(cfg) if with_embedder else None)


def _run_in_worker(fold: int, threads: int):
    """One fold, and what its embedder embedded for it (None for an embedder without statistics)."""
    torch.set_num_threads(threads)
    embedder = _worker["embedder"]
    counts = isinstance(getattr(embedder, "total", None), EmbedStats)
    if counts:
        embedder.total = EmbedStats()
    result = _worker["run_fold"](_worker["cfg"], fold, embedder)
    return result, embedder.total if counts else None
