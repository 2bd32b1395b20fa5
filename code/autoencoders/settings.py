"""The settings read from the environment, at call time (so a test or a
chapter can change them):

``AUTOENCODERS_DATA``     data root (default ``~/.cache/autoencoders/data``)
``AUTOENCODERS_OFFLINE``  ``1`` skips every download attempt
``AUTOENCODERS_CACHE``    trained models and metrics (default ``~/.cache/autoencoders``)
``AUTOENCODERS_PROGRESS`` ``0``/``1`` hides/shows progress bars
``AUTOENCODERS_AMP``      ``1`` trains in bfloat16 mixed precision (autocast)
``AUTOENCODERS_DEVICE``   e.g. ``cpu``, ``cuda:1`` (checked by ``train.pick_device``)
``AUTOENCODERS_WORKERS``  models trained side by side on a CPU (default: the cores, up to 4)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autoencoders"


def cache_root() -> Path:
    """The artifact cache (``AUTOENCODERS_CACHE``), created on demand."""
    root = Path(os.environ.get("AUTOENCODERS_CACHE") or _user_cache()).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # read-only: what is there can be read; writers say they cannot write
    return root.resolve()


def data_root() -> Path:
    """The data root (``AUTOENCODERS_DATA``); it may be read-only."""
    return Path(os.environ.get("AUTOENCODERS_DATA") or _user_cache() / "data"
                ).expanduser().resolve()


def offline() -> bool:
    """True when ``AUTOENCODERS_OFFLINE`` asks to skip downloads."""
    return os.environ.get("AUTOENCODERS_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def tqdm_disable(progress: bool | None = None) -> bool | None:
    """tqdm's ``disable`` argument for a progress switch: the explicit
    ``progress``, then ``AUTOENCODERS_PROGRESS``, then on inside a Jupyter
    kernel (whose stderr is no terminal), else ``None`` (tqdm: on for a
    terminal, off otherwise)."""
    if progress is None:
        env = os.environ.get("AUTOENCODERS_PROGRESS", "").strip().lower()
        if env:
            progress = env not in {"0", "false", "no"}
        elif "ipykernel" in sys.modules:
            progress = True
    return None if progress is None else not progress


def mixed_precision() -> bool:
    """True when ``AUTOENCODERS_AMP`` asks for bfloat16 autocast in training.
    Off by default: it is meant for GPUs, and its effect on this book's
    numbers has not been measured on one."""
    return os.environ.get("AUTOENCODERS_AMP", "").strip().lower() in {"1", "true", "yes"}


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers() -> int:
    """``AUTOENCODERS_WORKERS``, else the CPU cores up to 4 (each worker is
    a Python process holding torch, about 0.4 GB): how many models
    ``parallel.train_missing`` trains at once on a CPU."""
    env = os.environ.get("AUTOENCODERS_WORKERS", "").strip()
    if not env:
        return min(cpu_cores(), 4)
    if not env.isdigit() or int(env) < 1:
        raise ValueError(f"AUTOENCODERS_WORKERS must be a whole number of at least 1, got {env!r}")
    return int(env)
