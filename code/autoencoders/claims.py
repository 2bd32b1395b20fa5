"""Build-time claims: the condition behind a sentence of the book.

A chapter's comparative or judging sentence ("sharper", "collapses", "most
codes unused") stands next to a claim whose condition is this build's
measurement. In the ``quick`` and ``full`` profiles a false claim raises
:class:`ClaimError`, so the build fails with the sentence and the numbers
instead of printing it; in ``smoke``, whose numbers mean nothing by design,
it only warns.

A claim is declared as data next to the computation whose numbers it reads
(an analysis module), as a :class:`Claim` whose test is a function of the
result's numbers (the same mapping the chapter glues)::

    AVERAGING_CLAIMS = (
        Claim("q1-averaged-no-code", "the averaged-loss VAE has no active unit",
              lambda n: n["avg_active"] == 0),
    )
    check_claims(AVERAGING_CLAIMS, avg.numbers())     # in the chapter

so a test can feed it numbers under which the sentence would be false and
see it fail (``tests/test_claim_breaks.py`` does this for every claim).
"""
from __future__ import annotations

import json
import numbers
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

__all__ = ["Claim", "ClaimError", "ClaimWarning", "check_claims", "claim", "strict_claims"]


class ClaimError(AssertionError):
    """A sentence of the book is not supported by this build's numbers."""


class ClaimWarning(UserWarning):
    """A claim that failed in a profile whose numbers are not meant to hold."""


def _plain(value):
    """numpy and torch scalars as Python numbers (for messages and JSON)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def strict_claims(profile: str | None = None) -> bool:
    """True when a false claim fails the build: every profile but ``smoke``."""
    from .config import check_profile, current_profile

    return check_profile(profile or current_profile()) != "smoke"


def claim(condition: bool, sentence: str, **numbers) -> bool:
    """Check that this build's numbers support ``sentence`` (the sentence the
    chapter prints next to this call, or its gist). ``numbers`` are the
    measurements it rests on, shown when it fails. Returns ``condition``."""
    ok = bool(condition)
    if ok:
        return True
    shown = ", ".join(f"{k} = {_plain(v)!r}" for k, v in numbers.items())
    message = f"claim not supported by this build: {sentence!r}" + (f" ({shown})" if shown else "")
    if strict_claims():
        raise ClaimError(message)
    warnings.warn(message + " [smoke profile: reported, not enforced]", ClaimWarning, stacklevel=2)
    return False


@dataclass(frozen=True)
class Claim:
    """A sentence's condition on a result's numbers.

    ``key`` names it (stable; tests refer to it), ``sentence`` is its gist as
    the chapter prints it, and ``test(numbers)`` says whether the numbers
    support it."""

    key: str
    sentence: str
    test: Callable[[Mapping], bool]

    def holds(self, numbers: Mapping) -> tuple[bool, dict]:
        """Whether ``numbers`` support the sentence, and the numbers the
        test read (shown when it does not)."""
        seen = _Reading(numbers)
        return bool(self.test(seen)), seen.read


class _Reading(Mapping):
    """A read-only view of a mapping that records which keys were read."""

    def __init__(self, numbers: Mapping):
        self._numbers, self.read = numbers, {}

    def __getitem__(self, key):
        value = self._numbers[key]
        self.read[key] = _plain(value)
        return value

    def __iter__(self):
        return iter(self._numbers)

    def __len__(self):
        return len(self._numbers)


def check_claims(claims: Iterable[Claim], numbers: Mapping) -> dict[str, bool]:
    """Check every claim of ``claims`` on ``numbers`` (see :func:`claim`:
    a false one fails the build outside ``smoke``); returns key -> held.

    With ``AUTOENCODERS_CLAIMS_RECORD`` set to a file, the numbers each claim
    read are appended to it as a JSON line (for the claim tests' snapshot)."""
    from .settings import claims_record

    out = {}
    record = claims_record()
    for c in claims:
        ok, read = c.holds(numbers)
        if record:
            with open(record, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": c.key, "holds": ok, "numbers": read}) + "\n")
        out[c.key] = claim(ok, c.sentence, **read)
    return out
