"""Where things live (data root, artifact cache) and how files are written.

Environment variables, read at call time so a test or a chapter can set them:

``AUTOENCODERS_DATA``     data root (default ``~/.cache/autoencoders/data``)
``AUTOENCODERS_OFFLINE``  ``1`` skips every download attempt
``AUTOENCODERS_CACHE``    trained models and metrics (default ``~/.cache/autoencoders``)
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autoencoders"


def cache_root() -> Path:
    """The artifact cache (``AUTOENCODERS_CACHE``), created on demand."""
    root = Path(os.environ.get("AUTOENCODERS_CACHE") or _user_cache()).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def data_root() -> Path:
    """The data root (``AUTOENCODERS_DATA``); it may be read-only."""
    return Path(os.environ.get("AUTOENCODERS_DATA") or _user_cache() / "data"
                ).expanduser().resolve()


def offline() -> bool:
    """True when ``AUTOENCODERS_OFFLINE`` asks to skip downloads."""
    return os.environ.get("AUTOENCODERS_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


@contextmanager
def atomic_open(path: Path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    A reader never sees a half-written file: an interrupted write leaves the
    old file (or none) in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        torch.save(obj, f)
