"""Atomic file writes: a reader never sees a half-written file."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def atomic_open(path: Path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    A reader never sees a half-written file: an interrupted write leaves the
    old file (or none) in place. The file gets the permissions a plain
    ``open`` would give it (``0o666`` less the user's umask), not
    ``mkstemp``'s private ``0o600``, so a group can share a cache.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            if hasattr(os, "fchmod"):  # POSIX
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask: from /proc on Linux, else by setting it and
    setting it straight back (a brief window another thread could see)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        torch.save(obj, f)
