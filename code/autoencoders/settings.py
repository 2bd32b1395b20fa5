"""The settings read from the environment, at call time (so a test or a
chapter can change them), and the one place that checks them.

Every variable the package reads is in :data:`VARIABLES`, with the values it
takes. A value outside those raises :class:`SettingError`, a ``ValueError``
whose one-line message names the variable, the value and what it takes; the
command line turns it into a usage error (exit 2) before any work starts
(:func:`check_all`). On/off switches understand the usual spellings (``1``/``0``,
``true``/``false``, ``yes``/``no``, ``on``/``off``, any case); an empty value
counts as unset.
"""
from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
import warnings
from pathlib import Path

_SWITCH = "on or off (1/0, true/false, yes/no, on/off)"

# Every setting the package reads, with the values it takes (for messages).
VARIABLES = {
    "AUTOENCODERS_DATA": "a readable folder (default: the user cache's autoencoders/data)",
    "AUTOENCODERS_CACHE": "a readable folder (default: the user cache's autoencoders, "
                          "e.g. ~/.cache/autoencoders)",
    "AUTOENCODERS_OFFLINE": f"{_SWITCH}; on skips every download attempt (default off)",
    "AUTOENCODERS_PROGRESS": f"{_SWITCH}; shows or hides progress bars (default: on in "
                             "a terminal or a notebook)",
    "AUTOENCODERS_AMP": f"{_SWITCH}; on trains in bfloat16 mixed precision (default off)",
    "AUTOENCODERS_DEVICE": "cpu, cuda, cuda:N or mps (default: the best available device)",
    "AUTOENCODERS_WORKERS": "a whole number of at least 1: models trained side by side on "
                            "a CPU (default: the CPU cores, up to 4)",
    "AUTOENCODERS_PROFILE": "smoke, quick or full (default: full with CUDA, quick without)",
    "AUTOENCODERS_CLAIMS_RECORD": "a file the book's claims append their numbers to, for "
                                  "tools/claim-snapshot.py (default: none)",
    "AUTOENCODERS_RECHECK": f"{_SWITCH}; on runs every build-time check even when the "
                            "cache holds its result from the same code and libraries "
                            "(default off)",
    "AUTOENCODERS_LIVE_FIGURES": "a folder the live figures' decoder data are written to (the "
                                 "book build sets it; default: none, nothing written)",
}
ON = frozenset({"1", "true", "yes", "on"})
OFF = frozenset({"0", "false", "no", "off"})


class SettingError(ValueError):
    """An ``AUTOENCODERS_*`` variable holds a value it cannot take."""


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _bad(name: str, value: str, why: str = "") -> SettingError:
    return SettingError(f"{name}={value!r} {why or 'is not valid'}; it takes {VARIABLES[name]}")


def switch(name: str, default: bool | None) -> bool | None:
    """The on/off variable ``name`` (``default`` when unset or empty)."""
    value = _raw(name)
    if not value:
        return default
    if value.lower() in ON:
        return True
    if value.lower() in OFF:
        return False
    raise _bad(name, value)


# ------------------------------------------------------------------ folders
_warned_no_home = False


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME/autoencoders``, else ``~/.cache/autoencoders``; for a
    user with no usable home folder (no ``HOME``, no passwd entry, or a home
    that cannot be created, as in some containers) a folder under the
    system's temporary folder, with a warning."""
    global _warned_no_home
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec ignores a relative path
        return Path(xdg) / "autoencoders"
    try:
        home = Path.home()
    except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
        home = None
    if home is not None and _is_dir(home):
        candidate = home / ".cache" / "autoencoders"
        if _is_dir(candidate) or _can_create(candidate):
            return candidate
    fallback = Path(tempfile.gettempdir()) / f"autoencoders-{_user_id()}"
    if not _warned_no_home:
        _warned_no_home = True
        warnings.warn(f"this user has no usable home folder ({home or 'none found'}): keeping "
                      f"models and data in {fallback}; set AUTOENCODERS_CACHE and "
                      f"AUTOENCODERS_DATA to choose where.", stacklevel=3)
    return fallback


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a folder above it may not be read
        return False


def _can_create(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return True


def _user_id() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def _folder(name: str, default) -> tuple[Path, bool]:
    """The folder variable ``name`` as a path (``default()`` when unset) and
    whether it was set; a ``~`` that cannot be expanded is a SettingError."""
    value = _raw(name)
    if not value:
        return default(), False
    try:
        return Path(value).expanduser(), True
    except RuntimeError:  # "~" for a user without a home folder
        raise _bad(name, value, "starts with ~, but this user has no home folder: "
                                "give a full path") from None


def _check_readable(name: str, folder: Path) -> Path:
    """``folder`` if it is missing (nothing to read yet) or a folder this
    user may read; else a SettingError naming ``name``."""
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        return folder
    except NotADirectoryError:
        raise SettingError(f"{name}: {folder} cannot be a folder, since a part of that path "
                           f"is a file; it takes {VARIABLES[name]}") from None
    except PermissionError:
        raise SettingError(f"{name}: {folder} cannot be reached (a folder above it may not be "
                           f"read); give this user access or point {name} at another "
                           f"folder") from None
    except OSError as err:
        raise SettingError(f"{name}: {folder} cannot be used ({err.strerror}); it takes "
                           f"{VARIABLES[name]}") from None
    if not stat.S_ISDIR(mode):
        raise SettingError(f"{name}: {folder} is a file, not a folder; it takes {VARIABLES[name]}")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise SettingError(f"{name}: this user may not read the folder {folder}; give it "
                           f"read access or point {name} at another folder")
    return folder


def cache_root() -> Path:
    """The artifact cache (``AUTOENCODERS_CACHE``), created on demand. It
    may be read-only (writers then say they cannot write), but it must be
    readable."""
    root, _ = _folder("AUTOENCODERS_CACHE", _user_cache)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # read-only: what is there can be read; writers say they cannot write
    return _check_readable("AUTOENCODERS_CACHE", root).resolve()


def data_root() -> Path:
    """The data root (``AUTOENCODERS_DATA``); it may be read-only or missing
    (the loaders then say what they need), but not unreadable."""
    root, _ = _folder("AUTOENCODERS_DATA", lambda: _user_cache() / "data")
    return _check_readable("AUTOENCODERS_DATA", root).resolve()


# --------------------------------------------------------------- switches
def offline() -> bool:
    """True when ``AUTOENCODERS_OFFLINE`` asks to skip downloads."""
    return switch("AUTOENCODERS_OFFLINE", False)


def tqdm_disable(progress: bool | None = None) -> bool | None:
    """tqdm's ``disable`` argument for a progress switch: the explicit
    ``progress``, then ``AUTOENCODERS_PROGRESS``, then on inside a Jupyter
    kernel (whose stderr is no terminal), else ``None`` (tqdm: on for a
    terminal, off otherwise)."""
    if progress is None:
        progress = switch("AUTOENCODERS_PROGRESS", None)
        if progress is None and "ipykernel" in sys.modules:
            progress = True
    return None if progress is None else not progress


def recheck() -> bool:
    """``AUTOENCODERS_RECHECK``: run every build-time check even when its
    result is stored (:mod:`autoencoders.derivations.verdicts`)."""
    return bool(switch("AUTOENCODERS_RECHECK", False))


def mixed_precision() -> bool:
    """True when ``AUTOENCODERS_AMP`` asks for bfloat16 autocast in training.
    Off by default: it is meant for GPUs, and its effect on this book's
    numbers has not been measured on one."""
    return switch("AUTOENCODERS_AMP", False)


# ------------------------------------------------------------------ others
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
    value = _raw("AUTOENCODERS_WORKERS")
    if not value:
        return min(cpu_cores(), 4)
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise _bad("AUTOENCODERS_WORKERS", value)
    return int(value)


def profile_name() -> str | None:
    """``AUTOENCODERS_PROFILE`` if set (checked against ``config.PROFILES``),
    else ``None`` (``config.current_profile`` then picks by the device)."""
    from .config import PROFILES

    value = _raw("AUTOENCODERS_PROFILE")
    if not value:
        return None
    if value not in PROFILES:
        raise _bad("AUTOENCODERS_PROFILE", value, f"is not one of {sorted(PROFILES)}")
    return value


def device_name() -> str | None:
    """``AUTOENCODERS_DEVICE`` if set, else ``None``; whether this machine has
    that device is checked by ``train.pick_device``."""
    return _raw("AUTOENCODERS_DEVICE") or None


def claims_record() -> Path | None:
    """``AUTOENCODERS_CLAIMS_RECORD``: the file each checked claim appends its
    numbers to (a JSON line), or ``None``."""
    path, given = _folder("AUTOENCODERS_CLAIMS_RECORD", lambda: None)
    return path if given else None


# The book build sets it (book/_ext/live_figures.py reads the name from here:
# this module imports quickly, while autoencoders.export imports torch, a
# few seconds that every build, even one with nothing to do, would pay).
LIVE_FIGURES_ENV = "AUTOENCODERS_LIVE_FIGURES"


def live_figures_folder() -> Path | None:
    """``AUTOENCODERS_LIVE_FIGURES``: where the live figures' data files are
    written (the book build sets it), or ``None``."""
    path, given = _folder(LIVE_FIGURES_ENV, lambda: None)
    return path if given else None


def check_all() -> None:
    """Read every setting of :data:`VARIABLES` once: the first bad one raises
    its :class:`SettingError` (a requested device that is missing raises
    ``train.DeviceUnavailableError``, also a ``ValueError``). The command
    line calls it before it does anything."""
    from .train import pick_device

    data_root()
    cache_root()
    offline()
    tqdm_disable()
    mixed_precision()
    recheck()
    workers()
    profile_name()
    if device_name() is not None:
        pick_device()
