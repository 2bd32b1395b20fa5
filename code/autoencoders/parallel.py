"""Train a chapter's small-batch MNIST models side by side on a CPU.

Measured on a 2-core CPU: a conv VAE on MNIST with batches of 32 barely
uses torch's second thread (3,365 images/s on one thread against 3,665 on
two), so two such models trained at once, one thread each, get through about
a third more images per second than one after the other. Models with larger
steps (batches of 128, CIFAR-10's bigger images, several samples per image)
already keep both threads busy: trained one thread each, they took twice as
long and the pair gained nothing. So :func:`train_missing` trains the
missing models with small steps (:func:`small_steps`) in a pool of worker
processes, longest first, and the others in turn in this process; the
chapter then reads them all from the cache. Each worker trains through
:func:`~autoencoders.cache.get_or_train`, so its entry lock keeps a model
from being trained twice, and an interrupted worker leaves its checkpoint.

With a GPU, or one worker, nothing runs in parallel. ``AUTOENCODERS_WORKERS``
sets the number of workers (default: the CPU cores, up to 4).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

import torch

from .cache import get_or_train, is_cached
from .config import Config
from .experiments import CHAPTERS, EXPERIMENTS, get_config
from .settings import cache_root, workers as workers_setting
from .train import pick_device

# A step of at most this many input pixels (batch x pixels per image) is
# "small": 32 MNIST digits. Measured above.
SMALL_STEP_PIXELS = 32 * 28 * 28
# Below this much work (epochs x images, summed), starting the workers (a few
# seconds each: a Python process importing torch) costs more than it saves.
MIN_POOL_WORK = 100_000


def cost(config: Config) -> float:
    """A rough training cost for ordering the pool: epochs x images (the
    default image count for a profile that uses every image)."""
    return config.epochs * (config.train_size or 60_000)


def small_steps(config: Config) -> bool:
    """Whether ``config`` trains on steps too small to keep two threads busy
    (then it is worth a worker of its own): MNIST batches of at most 32
    images, one sample per image."""
    samples = config.samples if config.model == "discrete_vae" else 1
    return config.dataset == "mnist" and \
        config.batch_size * samples * 28 * 28 <= SMALL_STEP_PIXELS


def chapter_configs(chapter: str, profile: str | None = None) -> list[Config]:
    """The configs of every experiment the registry assigns to ``chapter``."""
    names = [name for name, ch in CHAPTERS.items() if ch == chapter]
    if not names:
        raise ValueError(f"no experiments belong to chapter {chapter!r}; chapters with "
                         f"experiments: {sorted(set(CHAPTERS.values()))}")
    return [get_config(name, profile) for name in names]


def train_everything(profile: str | None = None) -> bool:
    """:func:`train_missing` for every registered experiment of ``profile``
    (default: the current one), with the pool shared by all chapters; True.
    The book build calls it before it runs the chapters side by side
    (``book/_ext/side_by_side.py``): with nothing left to train, a chapter
    is imports, evaluation and drawing, and the chapters share the cores."""
    train_missing([get_config(name, profile) for name in EXPERIMENTS])
    return True


def train_chapter(chapter: str, *, workers: int | None = None) -> list[str]:
    """:func:`train_missing` for every experiment of ``chapter`` (a file name
    under ``book/``) in the current profile; the chapters call it first."""
    return train_missing(chapter_configs(chapter), workers=workers)


def _train_one(config: Config, threads: int) -> str:
    torch.set_num_threads(threads)
    get_or_train(config, progress=False, device="cpu")
    return config.name


def train_missing(configs: list[Config | str], *, workers: int | None = None,
                  device: str | torch.device | None = None) -> list[str]:
    """Train every config (or experiment name) of ``configs`` that is not
    cached yet and return their names: those with :func:`small_steps`
    ``workers`` at a time on the CPU, then the others in turn in this
    process. ``device`` as for :func:`~autoencoders.train.pick_device`:
    anything but the CPU trains every model in turn here.

    A model whose upstream model (``Config.source``) is also missing trains
    after it, in this process, so no worker sits waiting on another's lock."""
    configs = [get_config(c) if isinstance(c, str) else c for c in configs]
    missing = [c for c in configs if not is_cached(c)]  # no model loaded
    if not missing:
        return []
    workers = workers_setting() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    device = pick_device(device)
    names = {c.name for c in missing}
    pooled = [c for c in missing if small_steps(c) and c.source not in names]
    if device.type == "cpu" and workers > 1 and len(pooled) > 1 \
            and sum(map(cost, pooled)) >= MIN_POOL_WORK and os.access(cache_root(), os.W_OK):
        _run_pool(sorted(pooled, key=cost, reverse=True), min(workers, len(pooled)))
    # the rest (or everything: a GPU, one worker, little work, a read-only
    # cache) in turn in this process, models on a missing upstream last
    for config in sorted(missing, key=lambda c: c.source in names):
        if not is_cached(config):  # the pool's models are
            get_or_train(config, device=device)
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
