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

from . import gradients, likelihood, numeric, pca, upkeep, vq
from .numeric import conjugate_quadrature_check, reparameterization_gradient_check
from .score_function import derive_score_function
from .verdicts import remembered
from .vae import (conjugate_posterior, elbo_identity, gaussian_decoder_nll, gaussian_kl_diagonal,
                  gaussian_kl_scalar, kl_weight_lambda, nonlinear_reconstruction_expansion,
                  reparameterization, vae_reconstruction_vs_ae)


def kl_crosscheck() -> dict:
    """The package's Gaussian KL against torch.distributions, the sympy closed
    form and Monte Carlo, for one pair of 3-dimensional diagonal Gaussians."""
    return numeric.kl_numeric_crosscheck(mu_q_=[0.3, -1.0, 2.0], logvar_q_=[0.1, -0.5, 1.0],
                                         mu_p_=[0.0, 0.5, 1.0], logvar_p_=[0.0, 0.3, -0.2],
                                         n=50_000)


_VAE_MODEL = (likelihood.vae_objective_check, kl_crosscheck, reparameterization_gradient_check)
# every chapter that states a claim(...) checks the switch that makes a false one fail
_CLAIMS = (upkeep.claims_switch_check,)

# chapter (file name under book/) -> its checks, in the order they run
CHAPTER_CHECKS: dict[str, tuple[Callable[[], object], ...]] = {
    "vae_theory": (conjugate_posterior, elbo_identity, gaussian_kl_scalar, gaussian_kl_diagonal,
                   gaussian_decoder_nll, kl_weight_lambda, vae_reconstruction_vs_ae,
                   nonlinear_reconstruction_expansion, reparameterization,
                   conjugate_quadrature_check, kl_crosscheck,
                   reparameterization_gradient_check),
    "score_function": (derive_score_function, *gradients.SCORE_FUNCTION_CHECKS, *_CLAIMS),
    # the first chapter that trains: the trainer's batching, NaN guard and resume
    "autoencoders": (pca.pca_check, upkeep.batching_check, upkeep.resume_check, *_CLAIMS),
    "vae_mnist": (*_VAE_MODEL, *likelihood.LIKELIHOOD_CHECKS, upkeep.learning_rate_check,
                  *_CLAIMS),
    "ablations": (*_VAE_MODEL, *_CLAIMS),
    "vqvae": (*vq.VQ_CHECKS, vq.codebook_usage_check, vq.dead_code_restart_check, *_CLAIMS),
    "vqvae_generation": (vq.vq_nearest_code_check, *likelihood.VQ_LIKELIHOOD_CHECKS,
                         likelihood.bits_per_dim_check, vq.pair_bits_check, *_CLAIMS),
    "questions": (*_VAE_MODEL, numeric.kl_one_liner_check, vq.vq_nearest_code_check,
                  likelihood.bits_per_dim_check,
                  upkeep.kl_warmup_check, upkeep.free_bits_check, vq.codebook_usage_check,
                  vq.kmeans_start_check, *_CLAIMS),
}


def run_checks(chapter: str, reuse: dict[str, object] | None = None,
               stored: bool = True) -> dict[str, object]:
    """Run every check of ``chapter``; returns {check name: what it returned}.
    Raises DerivationError on the first that fails. ``reuse`` maps check
    names to results the chapter already computed by calling the very same
    function (with its default arguments), which are then not run again.
    The others run through :func:`~autoencoders.derivations.verdicts.remembered`:
    a check that passed before, with the package's code and the installed
    libraries unchanged since, is not run again; ``stored=False`` runs them
    all (a chapter whose table says what was checked in *this* build)."""
    if chapter not in CHAPTER_CHECKS:
        raise ValueError(f"no checks registered for chapter {chapter!r}; "
                         f"known: {', '.join(sorted(CHAPTER_CHECKS))}")
    reuse = reuse or {}
    names = {check.__name__ for check in CHAPTER_CHECKS[chapter]}
    unknown = set(reuse) - names
    if unknown:
        raise ValueError(f"{chapter!r} has no checks named {', '.join(sorted(unknown))}")
    run = remembered if stored else (lambda check: check())
    return {check.__name__: reuse[check.__name__] if check.__name__ in reuse else run(check)
            for check in CHAPTER_CHECKS[chapter]}


def all_checks() -> list[Callable[[], object]]:
    """Every build-time check of every chapter, each once."""
    seen: dict[int, Callable] = {}
    for checks in CHAPTER_CHECKS.values():
        for check in checks:
            seen.setdefault(id(check), check)
    return list(seen.values())
