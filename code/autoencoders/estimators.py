"""Two Monte Carlo estimators of the gradient of an expectation under a
Gaussian, ``grad_phi E_{z ~ q_phi}[f(z)]`` with ``q_phi = N(mu, diag sigma^2)``
and ``phi = (mu, sigma)``:

* the **score-function** (REINFORCE, likelihood-ratio) estimator
  ``(f(z) - b) grad_phi log q_phi(z)``, which needs only values of ``f``, so
  it also works for discrete ``z``; ``b`` is a baseline (control variate);
* the **reparameterization** (pathwise) estimator ``grad_phi f(mu + sigma * eps)``,
  which needs the derivative of ``f``.

Every function works on whole tensors of draws ``eps`` of shape
``(..., n, d)`` (replicates, samples, latent coordinates), so a variance study
over many sample counts runs without a Python loop over samples.

:class:`~autoencoders.metrics.pca.LinearGaussianDecoder` is a decoder with a
closed-form answer, used to check that both estimators are unbiased;
:func:`closed_form_variances` gives both estimators' exact variances for it
in any dimension. The symbolic derivation the chapter prints (one dimension)
is :func:`autoencoders.derivations.score_function.derive_score_function`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .losses import leave_one_out_baseline

ESTIMATORS = ("reparameterization", "score", "score + constant baseline",
              "score + leave-one-out baseline")


# ---------------------------------------------------------------- the score
def gaussian_score(eps: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """grad of log N(z; mu, sigma^2) at z = mu + sigma * eps, per coordinate:
    d/dmu = (z - mu) / sigma^2 = eps / sigma and
    d/dsigma = ((z - mu)^2 / sigma^2 - 1) / sigma = (eps^2 - 1) / sigma."""
    return eps / sigma, (eps * eps - 1.0) / sigma


def score_function_samples(f: Callable[[torch.Tensor], torch.Tensor],
                           mu: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor,
                           baseline: float | torch.Tensor | str | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample score-function estimates ``(f(z) - b) grad log q(z)`` of the
    gradients with respect to ``mu`` and ``sigma``, each of ``eps``'s shape
    ``(..., n, d)``; their mean over the ``n`` axis is the n-sample estimator.

    ``f`` maps ``(..., d)`` to ``(...)``. ``baseline``: ``None`` (b = 0), a
    number or tensor (a constant, which must not depend on the draws), or
    ``"loo"`` (leave-one-out: each sample's baseline is the mean of ``f`` over
    the other samples of its group).

    Shown in the Beyond reparameterization: the score-function estimator
    chapter (book/score_function.md)."""
    z = mu + sigma * eps
    values = f(z)
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(f"baseline must be None, a number, a tensor or 'loo', got {baseline!r}")
        b = leave_one_out_baseline(values)
    else:
        b = 0.0 if baseline is None else baseline
    weight = (values - b).unsqueeze(-1)
    score_mu, score_sigma = gaussian_score(eps, sigma)
    return weight * score_mu, weight * score_sigma


def reparameterization_samples(f: Callable[[torch.Tensor], torch.Tensor],
                               mu: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample pathwise estimates: with z = mu + sigma * eps, the gradient
    of f(z) with respect to mu is f'(z) and with respect to sigma is
    f'(z) * eps (chain rule). ``f'`` comes from autograd, for all draws at once.

    Shown in the Beyond reparameterization: the score-function estimator
    chapter (book/score_function.md)."""
    with torch.enable_grad():
        z = (mu + sigma * eps).detach().requires_grad_(True)
        (slope,) = torch.autograd.grad(f(z).sum(), z)
    return slope, slope * eps


def estimator_samples(name: str, f, mu, sigma, eps, exact_value: float | None = None):
    """Per-sample (mu, sigma) gradient estimates of estimator ``name`` (one of
    :data:`ESTIMATORS`); the constant baseline is ``exact_value`` = E_q[f]."""
    if name == "reparameterization":
        return reparameterization_samples(f, mu, sigma, eps)
    if name == "score":
        return score_function_samples(f, mu, sigma, eps)
    if name == "score + constant baseline":
        if exact_value is None:
            raise ValueError("the constant baseline needs exact_value = E_q[f(z)]")
        return score_function_samples(f, mu, sigma, eps, baseline=exact_value)
    if name == "score + leave-one-out baseline":
        return score_function_samples(f, mu, sigma, eps, baseline="loo")
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got {name!r}")


# -------------------------------------------------- a closed-form test case
@dataclass
class ClosedFormVariance:
    """The exact variance of a one-draw gradient estimate, per coordinate of
    the mu-gradient and of the sigma-gradient (an n-draw mean has 1/n of it)."""

    mu: torch.Tensor
    sigma: torch.Tensor

    @property
    def total(self) -> float:
        """Summed over all 2d coordinates, as :class:`VarianceStudy` measures it."""
        return float(self.mu.sum() + self.sigma.sum())


def closed_form_variances(decoder, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
                          baseline: float = 0.0) -> dict[str, ClosedFormVariance]:
    """The exact variances of one-draw estimates of grad_(mu, sigma) E_q[f],
    f(z) = log p(x|z), for the linear-Gaussian decoder ``decoder``
    (p(x|z) = N(W z + b, c I), a
    :class:`~autoencoders.metrics.pca.LinearGaussianDecoder`), the image ``x``
    and q = N(mu, diag sigma^2), in any number d of dimensions:
    ``"reparameterization"`` and ``"score"`` with the constant ``baseline``
    beta. (The leave-one-out baseline is not a constant and is not covered.)

    With r = x - b - W mu (the residual at the mean of q), g = sigma * W^T r,
    G = diag(sigma) W^T W diag(sigma) and delta = E_q[f] - beta, Gaussian
    moments (Stein's lemma, E[u_j^2 F(u)] = E[F] + E[d^2 F / du_j^2], and its
    fourth-order analogue) give, per coordinate j and in units of
    1 / (c sigma_j)^2:

    * reparameterization: (G^2)_jj for mu_j; g_j^2 + (G^2)_jj + G_jj^2 for sigma_j;
    * score function: |g|^2 + g_j^2 + tr(G^2)/2 + 2 (G^2)_jj + c^2 delta^2
      - 2 c delta G_jj for mu_j; 2|g|^2 + 8 g_j^2 + 5 G_jj^2 + 8 (G^2)_jj
      + tr(G^2) + 2 c^2 delta^2 - 8 c delta G_jj for sigma_j.

    In one dimension the mu-rows are the chapter's ``eq-sf-var-reparam`` and
    ``eq-sf-var-score``.

    Shown in the Beyond reparameterization: the score-function estimator
    chapter (book/score_function.md)."""
    W, c = decoder.W, decoder.c
    mu, sigma = mu.to(W.dtype), sigma.to(W.dtype)
    r = x.reshape(-1).to(W.dtype) - decoder.b - W @ mu
    g = sigma * (W.T @ r)
    G = sigma[:, None] * (W.T @ W) * sigma[None, :]
    G2, Gd = torch.diagonal(G @ G), torch.diagonal(G)
    gg, trG2 = g @ g, G2.sum()
    delta = decoder.expected_log_prob(x, mu, sigma) - baseline
    unit = (c * sigma) ** 2
    return {
        "reparameterization": ClosedFormVariance(
            mu=G2 / unit, sigma=(g ** 2 + G2 + Gd ** 2) / unit),
        "score": ClosedFormVariance(
            mu=(gg + g ** 2 + trG2 / 2 + 2 * G2 + c ** 2 * delta ** 2 - 2 * c * delta * Gd) / unit,
            sigma=(2 * gg + 8 * g ** 2 + 5 * Gd ** 2 + 8 * G2 + trG2 + 2 * c ** 2 * delta ** 2
                   - 8 * c * delta * Gd) / unit),
    }


# ------------------------------------------------------ the variance study
@dataclass
class VarianceStudy:
    """Results of :func:`variance_study` for one estimator, per sample count n:
    ``variance`` is the total variance (summed over the gradient's
    coordinates) of the n-sample estimate, ``bias_z`` the largest |z-score|
    of the mean over all replicates against the exact gradient."""

    name: str
    replicates: int
    sample_counts: list
    variance: list
    bias_z: list
    mean_gradient: list  # of the mu-gradient, averaged over replicates
    mu_variance: list    # per coordinate of the mu-gradient, across replicates

    def mu_z(self, exact_mu: float, coordinate: int = 0) -> list[float]:
        """Per sample count, the z-score of the replicates' average of one
        coordinate of the mu-gradient against its exact value ``exact_mu``
        (the difference in standard errors of that average)."""
        return [(float(m[coordinate]) - exact_mu) / (float(v[coordinate]) / self.replicates) ** 0.5
                for m, v in zip(self.mean_gradient, self.mu_variance)]


def variance_study(f, mu: torch.Tensor, sigma: torch.Tensor, exact_grad,
                   exact_value: float, sample_counts=(1, 3, 10, 30, 100, 300, 1000),
                   replicates: int = 400, seed: int = 0,
                   estimators=ESTIMATORS) -> dict[str, VarianceStudy]:
    """Estimate grad_(mu, sigma) E_q[f] with each estimator from n draws, for
    every n in ``sample_counts``, ``replicates`` times each (all draws of one n
    at once). ``exact_grad`` = (grad_mu, grad_sigma). Estimators that cannot
    run with n draws (leave-one-out with n = 1) are skipped at that n."""
    gen = torch.Generator().manual_seed(seed)
    exact = torch.cat(exact_grad)
    out = {name: VarianceStudy(name, replicates, [], [], [], [], []) for name in estimators}
    for n in sample_counts:
        eps = torch.randn(replicates, n, mu.numel(), generator=gen, dtype=mu.dtype)
        for name in estimators:
            if name.endswith("leave-one-out baseline") and n < 2:
                continue
            g_mu, g_sigma = estimator_samples(name, f, mu, sigma, eps, exact_value)
            estimate = torch.cat([g_mu.mean(dim=1), g_sigma.mean(dim=1)], dim=-1)  # (R, 2d)
            var = estimate.var(dim=0)
            z = (estimate.mean(dim=0) - exact) / (var / replicates).sqrt().clamp_min(1e-300)
            row = out[name]
            row.sample_counts.append(n)
            row.variance.append(float(var.sum()))
            row.bias_z.append(float(z.abs().max()))
            row.mean_gradient.append(estimate[:, :mu.numel()].mean(dim=0))
            row.mu_variance.append(var[:mu.numel()])
    return out
