"""Train a chapter's missing models side by side on a CPU.

A 2-core CPU gets about a third more training out of two single-threaded
processes than out of one process with two threads (the book's small conv
models do not keep two threads busy; measured, see the README). So before a
chapter asks for its models one by one, :func:`train_missing` trains the
ones not yet cached in a pool of worker processes, longest first; the
chapter then reads them from the cache. Each worker trains through
:func:`~autoencoders.cache.get_or_train`, so its entry lock keeps a model
from being trained twice, and an interrupted worker leaves its checkpoint.

With a GPU, or one worker, nothing runs in parallel: the models are trained
in turn in this process. ``AUTOENCODERS_WORKERS`` sets the number of workers
(default: the CPU cores this process may use).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

import torch

from .cache import find_cached, get_or_train
from .config import Config
from .experiments import CHAPTERS, get_config
from .settings import cache_root, workers as workers_setting
from .train import pick_device

# Below this much work (epochs x images, summed), starting the workers (a few
# seconds each: a Python process importing torch) costs more than it saves.
MIN_POOL_WORK = 100_000


def cost(config: Config) -> float:
    """A rough training cost for ordering the pool: epochs x images (the
    default image count for a profile that uses every image)."""
    return config.epochs * (config.train_size or 60_000)


def chapter_configs(chapter: str, profile: str | None = None) -> list[Config]:
    """The configs of every experiment the registry assigns to ``chapter``."""
    names = [name for name, ch in CHAPTERS.items() if ch == chapter]
    if not names:
        raise ValueError(f"no experiments belong to chapter {chapter!r}; chapters with "
                         f"experiments: {sorted(set(CHAPTERS.values()))}")
    return [get_config(name, profile) for name in names]


def train_chapter(chapter: str, *, workers: int | None = None) -> list[str]:
    """:func:`train_missing` for every experiment of ``chapter`` (a file name
    under ``book/``) in the current profile; the chapters call it first."""
    return train_missing(chapter_configs(chapter), workers=workers)


def _train_one(config: Config, threads: int) -> str:
    torch.set_num_threads(threads)
    get_or_train(config, progress=False)
    return config.name


def train_missing(configs: list[Config | str], *, workers: int | None = None) -> list[str]:
    """Train every config (or experiment name) of ``configs`` that is not
    cached yet, ``workers`` at a time on the CPU; return the names trained.

    Models whose upstream model (``Config.source``) is also missing wait for
    a second round, so no worker sits waiting on another's lock."""
    configs = [get_config(c) if isinstance(c, str) else c for c in configs]
    missing = [c for c in configs if find_cached(c) is None]
    if not missing:
        return []
    workers = workers_setting() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    device = pick_device()
    if device.type != "cpu" or workers == 1 or len(missing) == 1 \
            or sum(map(cost, missing)) < MIN_POOL_WORK or not os.access(cache_root(), os.W_OK):
        for config in missing:  # a GPU, one worker, little work, a read-only cache: in turn
            get_or_train(config)
        return [c.name for c in missing]
    names = {c.name for c in missing}
    later = [c for c in missing if c.source in names]
    rounds = [[c for c in missing if c not in later], later]
    for batch in rounds:
        _run_pool(sorted(batch, key=cost, reverse=True), min(workers, len(batch)))
    return [c.name for c in missing]


def _run_pool(configs: list[Config], workers: int) -> None:
    if not configs:
        return
    threads = max(1, torch.get_num_threads() // workers)
    print(f"[parallel] training {len(configs)} models, {workers} at a time "
          f"({threads} thread{'s' * (threads > 1)} each)", file=sys.stderr, flush=True)
    # spawn: a fresh interpreter per worker (fork would copy a Jupyter kernel
    # and torch's thread pools)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(_train_one, config, threads) for config in configs]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()  # re-raise a worker's error here
    except BaseException:
        # an error or an interrupt: stop the other workers now (their
        # checkpoints keep what they trained) instead of waiting for them
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
