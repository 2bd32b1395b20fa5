"""Atomic file writes: a reader never sees a half-written file, and a full
disk is said in one line (:class:`DiskFullError`)."""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

# Written beside the file it will replace, then renamed: ``<name>*.tmp``.
TMP_SUFFIX = ".tmp"


class DiskFullError(OSError):
    """A save failed because the disk (or the user's quota) is full. An
    ``OSError`` with ``errno`` ``ENOSPC``, so code that copes with a
    read-only cache (warn, keep the result, save nothing) copes with this too."""

    def __init__(self, path: Path):
        super().__init__(errno.ENOSPC, f"the disk is full at {path}: free some space "
                                       f"(or point AUTOENCODERS_CACHE at another disk) "
                                       f"and run again")
        self.filename = str(path)

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from or during) says the
    disk or quota is full. torch reports a failed write as a ``RuntimeError``
    ("[enforce fail at inline_container.cc] unexpected pos …") raised during
    the ``OSError`` (ENOSPC) of the file, so the whole chain is read."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return True
        if isinstance(err, RuntimeError) and ("No space left on device" in str(err)
                                              or "Disk quota exceeded" in str(err)):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextmanager
def atomic_open(path: Path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    A reader never sees a half-written file: an interrupted write leaves the
    old file (or none) in place. The file gets the permissions a plain
    ``open`` would give it (``0o666`` less the user's umask), not
    ``mkstemp``'s private ``0o600``, so a group can share a cache. A write
    that fails on a full disk raises :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=TMP_SUFFIX)
    except OSError as err:
        if is_disk_full(err):
            raise DiskFullError(path) from err
        raise
    try:
        with os.fdopen(fd, mode) as f:
            if hasattr(os, "fchmod"):  # POSIX
                os.fchmod(f.fileno(), 0o666 & ~umask())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError(path) from err
        raise


def umask() -> int:
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
