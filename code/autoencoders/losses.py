"""The terms that the models' objectives are made of.

Everything returns one value per example (reduction over pixels or latent
coordinates, not over the batch), so a caller can average, weight or sum as
its objective says.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                mu_p: torch.Tensor | float = 0.0,
                logvar_p: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL( N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p) ), summed over
    the last dimension.

    Per coordinate this is the closed form derived in the VAE-theory chapter,
    log(sigma_p/sigma_q) + (sigma_q^2 + (mu_p - mu_q)^2) / (2 sigma_p^2) - 1/2,
    written with log-variances so that it is stable for tiny variances; a
    diagonal Gaussian's KL is the sum of these per-coordinate terms.

    Shown in the VAE on MNIST chapter (book/vae_mnist.md), the VAE theory
    chapter (book/vae_theory.md) and the Questions readers ask chapter
    (book/questions.md).
    """
    # the prior's parameters as tensors beside mu_q (a number is filled in on
    # the device: copying it from the host would make a GPU wait every step)
    mu_p = torch.zeros_like(mu_q).add_(mu_p)
    logvar_p = torch.zeros_like(mu_q).add_(logvar_p)
    per_coordinate = 0.5 * (logvar_p - logvar_q
                            + (logvar_q.exp() + (mu_p - mu_q) ** 2) / logvar_p.exp()
                            - 1.0)
    return per_coordinate.sum(dim=-1)


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||x - x_hat||^2 per example (summed over every non-batch dimension)."""
    return (x_hat - x).pow(2).flatten(1).sum(dim=1)


def mean_squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-example squared error averaged over pixels (the usual "MSE")."""
    return (x_hat - x).pow(2).flatten(1).mean(dim=1)


def gaussian_nll(x_hat: torch.Tensor, x: torch.Tensor, c: float) -> torch.Tensor:
    """-log N(x; x_hat, c I) per example, in nats:
    ||x - x_hat||^2 / (2c) + (D/2) log(2 pi c)."""
    d = x[0].numel()
    return squared_error(x_hat, x) / (2 * c) + 0.5 * d * math.log(2 * math.pi * c)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log Bernoulli(x; sigmoid(logits)) per example, in nats, for x in [0, 1]
    (grey levels treated as probabilities, as is usual for MNIST)."""
    return F.binary_cross_entropy_with_logits(
        logits, x, reduction="none").flatten(1).sum(dim=1)


# ------------------------------------------------------------------ VQ-VAE
# sg(.) is the stop-gradient: in PyTorch, ``.detach()``. Both terms measure
# the same distance between an encoder output z_e and its code vector e; they
# differ only in which side the gradient reaches.
def codebook_loss(z_e: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """||sg(z_e) - e||^2 per example (mean over the latent grid):
    moves the code vectors towards the encoder outputs.
    Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
    return (z_e.detach() - e).pow(2).flatten(1).mean(dim=1)


def commitment_loss(z_e: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """||z_e - sg(e)||^2 per example (mean over the latent grid):
    keeps the encoder outputs close to the codes they chose.
    Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
    return (z_e - e.detach()).pow(2).flatten(1).mean(dim=1)


def discretized_gaussian_nll(mean: torch.Tensor, x: torch.Tensor, sigma: float,
                             levels: int = 256) -> torch.Tensor:
    """-log P(x | mean) per example, in nats, for images whose values are the
    ``levels`` grey levels 0, 1/(levels-1), ..., 1: each pixel gets the mass
    that N(mean, sigma^2) puts on its level's bin (width 1/(levels-1); the
    end bins reach to -inf and +inf). A probability, not a density, so it
    can be compared with the bits per dimension of other likelihood models."""
    half = 0.5 / (levels - 1)
    inf = torch.tensor(float("inf"), dtype=torch.float64, device=x.device)
    x, mean = x.double(), mean.double()
    # the bin's ends in standard units; the end bins reach to -inf and +inf
    hi = torch.where(x >= 1 - half / 2, inf, (x + half - mean) / sigma)
    lo = torch.where(x <= half / 2, -inf, (x - half - mean) / sigma)
    return -log_normal_mass(lo, hi).flatten(1).sum(dim=1)


def log_normal_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)) for lo < hi (either may be infinite), without
    underflow: on the side of 0 where both tails are small (flipping the
    interval when lo > 0), log Phi(b) + log(1 - Phi(a)/Phi(b)) from log Phi,
    so a bin 30 standard deviations out still gets its tiny mass."""
    flip = lo > 0
    a, b = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    log_a, log_b = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    return log_b + torch.log(-torch.expm1(log_a - log_b))


def nats_to_bits(nats: torch.Tensor | float) -> torch.Tensor | float:
    """A log-likelihood (or its negative) in nats, converted to bits."""
    return nats / math.log(2)


# ------------------------------------------- score-function surrogates
def leave_one_out_baseline(values: torch.Tensor) -> torch.Tensor:
    """For each of the n values along the last axis, the mean of the other
    n - 1 (independent of that sample, so the estimator stays unbiased)."""
    n = values.shape[-1]
    if n < 2:
        raise ValueError("a leave-one-out baseline needs at least 2 samples")
    return (values.sum(dim=-1, keepdim=True) - values) / (n - 1)


def categorical_score_surrogate(logits: torch.Tensor, sample: torch.Tensor,
                                reward: torch.Tensor, baseline: torch.Tensor | float = 0.0
                                ) -> torch.Tensor:
    """A per-example surrogate loss whose gradient with respect to ``logits``
    is the one-sample score-function estimate of -grad E_{y ~ q}[reward(y)]
    for q = Categorical(softmax(logits)):

        -(reward - baseline) * log q(sample),  with reward and baseline held constant.

    Its value means nothing; only its gradient does. ``sample`` holds the
    drawn indices, ``reward`` the value of the drawn sample (e.g. log p(x|y,z)).

    Shown in the score-function estimator chapter (book/score_function.md).
    """
    log_q = F.log_softmax(logits, dim=-1).gather(-1, sample.unsqueeze(-1)).squeeze(-1)
    return -(reward - baseline).detach() * log_q
