"""The checks that run while the book builds, gathered per chapter.

Every chapter runs its own entry in one hidden cell::

    from autoencoders.derivations.build import run_checks
    run_checks("vqvae")

so the checks that guard a chapter's formulas and numeric paths (the
quantizer's gradients, the likelihood bounds, the estimators) stop the build
when they fail, and the mutation tests (``tests/test_mutants.py``) run
exactly the same callables. A check is a function without arguments that
raises :class:`~autoencoders.derivations.checks.DerivationError` (naming the
identity and its label) when it fails, and returns what it measured.
"""
from __future__ import annotations

from typing import Callable

from .numeric import conjugate_quadrature_check, reparameterization_gradient_check
from .score_function import derive_score_function
from .vae import all_symbolic

# chapter (file name under book/) -> its checks, in the order they run
CHAPTER_CHECKS: dict[str, tuple[Callable[[], object], ...]] = {
    "vae_theory": (all_symbolic, conjugate_quadrature_check, reparameterization_gradient_check),
    "score_function": (derive_score_function,),
    "autoencoders": (),
    "vae_mnist": (),
    "ablations": (),
    "vqvae": (),
    "vqvae_generation": (),
    "questions": (),
}


def run_checks(chapter: str) -> dict[str, object]:
    """Run every check of ``chapter``; returns {check name: what it returned}.
    Raises DerivationError on the first that fails."""
    if chapter not in CHAPTER_CHECKS:
        raise ValueError(f"no checks registered for chapter {chapter!r}; "
                         f"known: {', '.join(sorted(CHAPTER_CHECKS))}")
    return {check.__name__: check() for check in CHAPTER_CHECKS[chapter]}


def all_checks() -> list[Callable[[], object]]:
    """Every build-time check of every chapter, each once."""
    seen: dict[int, Callable] = {}
    for checks in CHAPTER_CHECKS.values():
        for check in checks:
            seen.setdefault(id(check), check)
    return list(seen.values())
