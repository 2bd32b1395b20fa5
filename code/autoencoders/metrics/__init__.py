"""Numbers computed from trained models and data, one module per concern:

``likelihood``  nats and bits: IWAE bounds of a VAE, a VQ-VAE's bits per dimension
``scores``      PSNR, edge energy, classifier scores, Fréchet distance, code-label agreement
``pca``         PCA, a linear AE against it, probabilistic PCA
``latents``     active units of a VAE; codes projected to 2-D (PCA, t-SNE)
``codebook``    codebook usage of a VQ-VAE, bits of neighbouring code pairs

Nothing here trains. The names are gathered here so a chapter can write
``metrics.psnr``.
"""
from __future__ import annotations

from ..losses import nats_to_bits
from .codebook import (code_counts, codebook_perplexity, codebook_usage, dead_codes,
                       neighbour_pairs, pair_bits)
from .latents import active_units, project_2d, unit_activity
from .likelihood import (binarize, bits_per_dim, importance_log_weights, iwae_nll,
                         reconstruction_sigma, vqvae_bits_per_dim)
from .pca import (LinearGaussianDecoder, LinearOptimum, PCAComparison, compare_with_pca,
                  covariance_eigenvalues, linear_vae_optimum, pca_mse, pca_reconstruct,
                  principal_angles, probabilistic_pca)
from .scores import (CodeLabelAgreement, accuracy, classifier_outputs, classifier_scores,
                     code_label_agreement, edge_energy, feature_frechet_distance,
                     frechet_distance, gaussian_statistics, psnr, reconstruction_mse,
                     reconstruction_scores)

__all__ = [
    "nats_to_bits", "bits_per_dim", "binarize", "importance_log_weights", "iwae_nll",
    "reconstruction_sigma", "vqvae_bits_per_dim", "code_counts", "codebook_perplexity",
    "codebook_usage", "dead_codes", "neighbour_pairs", "pair_bits", "active_units",
    "project_2d", "unit_activity", "LinearGaussianDecoder", "LinearOptimum",
    "linear_vae_optimum", "PCAComparison", "compare_with_pca", "covariance_eigenvalues",
    "pca_mse", "pca_reconstruct",
    "principal_angles", "probabilistic_pca", "CodeLabelAgreement", "accuracy",
    "reconstruction_mse", "reconstruction_scores",
    "classifier_outputs", "classifier_scores", "code_label_agreement", "edge_energy",
    "feature_frechet_distance", "frechet_distance", "gaussian_statistics", "psnr",
]
