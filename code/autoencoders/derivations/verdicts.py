"""What the build-time checks returned, kept from one build to the next.

A check (:mod:`autoencoders.derivations.build`) takes no arguments, seeds
every random draw it makes, and reads none of the reader's data or settings
(what it needs, it sets itself): what it returns depends only on the
package's code, the installed libraries and Python (up to the rounding a
thread count can change). So once a check has passed, a later build with
all three unchanged would derive the same thing again; :func:`remembered`
reads the stored result instead. The key (:func:`key`) is a hash of

* every ``.py`` file of the package (any edit anywhere runs every check again),
* the name and version of every installed distribution, and Python's version,
* the check's module and name.

A check that raises stores nothing, so it runs (and fails) again next time.
``AUTOENCODERS_RECHECK=1`` runs every check whatever is stored (and stores
the new results). The results live in ``<AUTOENCODERS_CACHE>/checks/`` as
pickles: a cache that cannot be written only means they run every time, and
a stored file that cannot be read is ignored. The mutation tests call the
checks themselves, never through this module.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import pickle
import sys
from pathlib import Path
from typing import Callable, TypeVar

from .. import settings
from ..atomic import atomic_open

T = TypeVar("T")

PACKAGE = Path(__file__).resolve().parents[1]
FOLDER = "checks"          # under the cache root


@functools.lru_cache(maxsize=None)
def package_digest(root: Path = PACKAGE) -> str:
    """sha256 over every ``.py`` file under ``root``: its path and its bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def environment_digest() -> str:
    """sha256 over Python's version and every installed distribution's
    ``name==version``."""
    found = sorted({f"{(d.metadata['Name'] or '').lower()}=={d.version}"
                    for d in importlib.metadata.distributions()})
    return hashlib.sha256("\n".join([sys.version, *found]).encode()).hexdigest()


def key(check: Callable[[], object]) -> str:
    """The name a result of ``check`` is stored under (see the module's text)."""
    name = f"{check.__module__}.{check.__qualname__}"
    parts = "\n".join([name, package_digest(), environment_digest()])
    return f"{check.__name__}-{hashlib.sha256(parts.encode()).hexdigest()[:24]}"


def _path(check: Callable[[], object]) -> Path:
    return settings.cache_root() / FOLDER / f"{key(check)}.pkl"


def remembered(check: Callable[[], T]) -> T:
    """``check()``, or what it returned in an earlier run with the same key."""
    path = _path(check)
    if not settings.recheck() and path.is_file():
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception:  # unreadable or from another layout: run the check again
            pass
    result = check()       # a failing check raises here, and nothing is stored
    try:
        payload = pickle.dumps(result)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as f:
            f.write(payload)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass  # a read-only or full cache, or a result pickle cannot store: run it next time
    return result
