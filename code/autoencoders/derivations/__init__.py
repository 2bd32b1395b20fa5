"""The book's derivations, checked while the book builds: symbolic identities
by sympy, the rest numerically against the package's own code.

``checks``          what every derivation shares: :class:`DerivationError`,
                    :class:`Derivation`, Gaussian expectations
``vae``             the symbolic identities of the VAE-theory chapter
``numeric``         quadrature, Monte Carlo and autograd cross-checks
``score_function``  the score-function identity and estimator variances
``gradients``       the score-function chapter's numeric path (estimators,
                    the linear-Gaussian decoder, probabilistic PCA)
``likelihood``      IWAE bounds, bits per dimension, the VAE's objective
``pca``             PCA and the linear autoencoder
``vq``              the VQ-VAE's gradients (straight-through, loss terms, EMA),
                    codebook usage, pair bits, the k-means start and restarts
``upkeep``          the KL warm-up and free bits, the learning-rate schedule,
                    the trainer's batching, NaN guard and resume, the claims' switch
``build``           the checks each chapter runs at build time (``run_checks``)

A failed check raises :class:`DerivationError` naming the identity and its
chapter label, which stops ``pytest`` and the book build alike.
"""
from __future__ import annotations

from .checks import (Derivation, DerivationError, density_expectation,
                     gaussian_expectation, normal_pdf)
from .numeric import (best_gaussian_elbo, conjugate_quadrature_check,
                      evidence_by_quadrature, kl_numeric_crosscheck, linear_decoder,
                      posterior_on_grid, reparameterization_gradient_check, toy_decoder)
from .score_function import derive_score_function
from .vae import (all_symbolic, conjugate_posterior, elbo_identity, gaussian_decoder_nll,
                  gaussian_kl_closed_form, gaussian_kl_diagonal, gaussian_kl_scalar,
                  kl_weight_lambda, nonlinear_reconstruction_expansion, reparameterization,
                  vae_reconstruction_vs_ae)

__all__ = [
    "DerivationError", "Derivation", "normal_pdf", "gaussian_expectation", "density_expectation",
    "conjugate_posterior", "elbo_identity", "gaussian_kl_closed_form",
    "gaussian_kl_scalar", "gaussian_kl_diagonal", "gaussian_decoder_nll",
    "kl_weight_lambda", "vae_reconstruction_vs_ae", "nonlinear_reconstruction_expansion",
    "reparameterization",
    "toy_decoder", "linear_decoder", "evidence_by_quadrature",
    "posterior_on_grid", "best_gaussian_elbo", "conjugate_quadrature_check",
    "kl_numeric_crosscheck", "reparameterization_gradient_check",
    "derive_score_function", "all_symbolic",
]
