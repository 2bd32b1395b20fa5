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

:class:`LinearGaussianDecoder` is a decoder with a closed-form answer (the
expectation and its gradient are known exactly), used to check that both
estimators are unbiased; :func:`derive_score_function` is the symbolic
derivation the score-function chapter prints, checked by sympy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

ESTIMATORS = ("reparameterization", "score", "score + constant baseline",
              "score + leave-one-out baseline")


# ---------------------------------------------------------------- the score
def gaussian_score(eps: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """grad of log N(z; mu, sigma^2) at z = mu + sigma * eps, per coordinate:
    d/dmu = (z - mu) / sigma^2 = eps / sigma and
    d/dsigma = ((z - mu)^2 / sigma^2 - 1) / sigma = (eps^2 - 1) / sigma."""
    return eps / sigma, (eps * eps - 1.0) / sigma


def leave_one_out_baseline(values: torch.Tensor) -> torch.Tensor:
    """For each of the n values along the last axis, the mean of the other
    n - 1 (independent of that sample, so the estimator stays unbiased)."""
    n = values.shape[-1]
    if n < 2:
        raise ValueError("a leave-one-out baseline needs at least 2 samples")
    return (values.sum(dim=-1, keepdim=True) - values) / (n - 1)


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
    the other samples of its group)."""
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
    f'(z) * eps (chain rule). ``f'`` comes from autograd, for all draws at once."""
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


def categorical_score_surrogate(logits: torch.Tensor, sample: torch.Tensor,
                                reward: torch.Tensor, baseline: torch.Tensor | float = 0.0
                                ) -> torch.Tensor:
    """A per-example surrogate loss whose gradient with respect to ``logits``
    is the one-sample score-function estimate of -grad E_{y ~ q}[reward(y)]
    for q = Categorical(softmax(logits)):

        -(reward - baseline) * log q(sample),  with reward and baseline held constant.

    Its value means nothing; only its gradient does. ``sample`` holds the
    drawn indices, ``reward`` the value of the drawn sample (e.g. log p(x|y,z))."""
    log_q = F.log_softmax(logits, dim=-1).gather(-1, sample.unsqueeze(-1)).squeeze(-1)
    return -(reward - baseline).detach() * log_q


# -------------------------------------------------- a closed-form test case
@dataclass
class LinearGaussianDecoder:
    """p(x|z) = N(x; W z + b, c I): a linear decoder with isotropic noise,
    for which E_q[log p(x|z)] and its gradient have closed forms.

    ``W`` is (D, d), ``b`` is (D,), ``c`` > 0. The objective for one image x
    depends on z only through W^T W and W^T (x - b), so evaluating it for a
    million draws costs O(d^2) each, not O(D d)."""

    W: torch.Tensor
    b: torch.Tensor
    c: float

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    def log_prob(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """z (..., d) -> log p(x|z) (...) for the one image x (D,)."""
        r = (x.reshape(-1) - self.b).to(self.W.dtype)
        gram, proj, rr = self.W.T @ self.W, self.W.T @ r, r @ r
        const = -0.5 * r.numel() * math.log(2 * math.pi * self.c)

        def f(z: torch.Tensor) -> torch.Tensor:
            sq = rr - 2 * (z @ proj) + ((z @ gram) * z).sum(dim=-1)  # ||r - W z||^2
            return const - sq / (2 * self.c)
        return f

    def expected_log_prob(self, x, mu, sigma) -> float:
        """E_{z ~ N(mu, diag sigma^2)}[log p(x|z)], exactly."""
        r = x.reshape(-1) - self.b
        resid = r - self.W @ mu
        spread = (sigma ** 2 * (self.W ** 2).sum(dim=0)).sum()
        return float(-0.5 * r.numel() * math.log(2 * math.pi * self.c)
                     - (resid @ resid + spread) / (2 * self.c))

    def exact_gradient(self, x, mu, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact gradient of :meth:`expected_log_prob` with respect to
        mu, W^T (x - b - W mu) / c, and to sigma, -sigma_j ||W_j||^2 / c."""
        r = x.reshape(-1) - self.b
        return self.W.T @ (r - self.W @ mu) / self.c, -sigma * (self.W ** 2).sum(dim=0) / self.c

    def posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviations of the exact posterior p(z|x) under the
        prior N(0, I): N(M^-1 W^T (x - b), c M^-1) with M = W^T W + c I
        (diagonal when the columns of W are orthogonal, as in PPCA)."""
        m = self.W.T @ self.W + self.c * torch.eye(self.latent_dim, dtype=self.W.dtype)
        mean = torch.linalg.solve(m, self.W.T @ (x.reshape(-1) - self.b))
        return mean, torch.sqrt(self.c * torch.diagonal(torch.linalg.inv(m)))


def probabilistic_pca(images: torch.Tensor, latent_dim: int) -> LinearGaussianDecoder:
    """The maximum-likelihood probabilistic PCA decoder (Tipping & Bishop):
    c is the mean of the discarded covariance eigenvalues, W = U (L - c I)^(1/2)
    with U, L the leading eigenvectors and eigenvalues, b the data mean.
    ``images`` are uint8 or floats in [0, 1]; returns float64 tensors."""
    x = images.double() / 255.0 if images.dtype == torch.uint8 else images.double()
    x = x.flatten(1).numpy()
    mean = x.mean(axis=0)
    vals, vecs = np.linalg.eigh(np.cov(x - mean, rowvar=False, bias=True))
    vals, vecs = vals[::-1], vecs[:, ::-1]
    c = float(vals[latent_dim:].mean())
    W = vecs[:, :latent_dim] * np.sqrt(np.maximum(vals[:latent_dim] - c, 0.0))
    return LinearGaussianDecoder(torch.from_numpy(W.copy()), torch.from_numpy(mean), c)


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


# ------------------------------------------------------ symbolic derivation
def derive_score_function(categories: int = 3) -> dict:
    """The score-function identity, checked by sympy in two closed-form cases,
    and the one-sample variances of both estimators in a scalar example.

    1. Discrete z with q(z) = softmax(phi)_z over ``categories`` values and any
       values f_z: d/dphi_j sum_z q_z f_z = sum_z q_z f_z d/dphi_j log q_z.
    2. Gaussian q = N(mu, s^2) and the linear-Gaussian decoder
       f(z) = log N(x; a z + b0, c): both sides for mu and s, by integration.
    3. The variances of the one-sample estimators of d/dmu in case 2, and of
       the score-function one with a constant baseline beta.

    Returns named sympy expressions; raises ``AssertionError`` if a check fails.
    """
    import sympy as sp

    out = {}
    # 1. discrete: the hint's sum over the values of z
    phi = sp.symbols(f"phi0:{categories}", real=True)
    fv = sp.symbols(f"f0:{categories}", real=True)
    norm = sum(sp.exp(p) for p in phi)
    q = [sp.exp(p) / norm for p in phi]
    for j in range(categories):
        lhs = sp.diff(sum(qk * fk for qk, fk in zip(q, fv)), phi[j])
        rhs = sum(qk * fk * sp.diff(sp.log(qk), phi[j]) for qk, fk in zip(q, fv))
        if sp.simplify(lhs - rhs) != 0:
            raise AssertionError(f"discrete score-function identity fails for phi_{j}")
    out["discrete_lhs"] = sp.diff(sp.Sum(sp.Function("q")(sp.Symbol("z")) * sp.Function("f")(sp.Symbol("z")),
                                         (sp.Symbol("z"), 1, sp.Symbol("K"))), sp.Symbol("phi"))

    # 2. Gaussian q and a linear-Gaussian decoder. kappa = -log(2 pi c) / 2 is
    # kept as a symbol, so that every expectation is of a polynomial in z.
    z, u, x, b0, r = sp.symbols("z u x b r", real=True)
    mu, a, kappa, beta = sp.symbols("mu a kappa beta", real=True)
    s, c = sp.symbols("sigma c", positive=True)
    f = kappa - (x - a * z - b0) ** 2 / (2 * c)
    log_q = -(z - mu) ** 2 / (2 * s ** 2) - sp.log(s) - sp.log(2 * sp.pi) / 2

    def expect(expr):  # E_{z ~ N(mu, s^2)}[expr] for a polynomial: z = mu + s u,
        poly = sp.Poly(sp.expand(expr.subs(z, mu + s * u)), u)  # E[u^k] = (k-1)!!
        return sp.expand(sum(coef * (sp.factorial2(k - 1) if k % 2 == 0 else 0)
                             for (k,), coef in poly.terms()))

    expected_f = expect(f)
    # the tidy form the chapter prints, checked against the integral
    tidy = kappa - ((x - b0 - a * mu) ** 2 + a ** 2 * s ** 2) / (2 * c)
    if sp.simplify(expected_f - tidy) != 0:
        raise AssertionError("E_q[f] is not kappa - ((x - b - a mu)^2 + a^2 sigma^2) / (2c)")
    out["f"], out["expected_f"] = f, tidy
    for param in (mu, s):
        lhs = sp.diff(expected_f, param)
        rhs = expect(sp.expand(f * sp.diff(log_q, param)))
        pathwise = expect(sp.diff(f.subs(z, mu + s * u), param).subs(u, (z - mu) / s))
        if sp.simplify(lhs - rhs) != 0 or sp.simplify(lhs - pathwise) != 0:
            raise AssertionError(f"Gaussian score-function identity fails for {param}")
        out[f"grad_{param}"] = sp.factor(lhs).subs(-a * mu - b0 + x, x - b0 - a * mu)

    # 3. one-sample variances of the two estimators of d/dmu, written with the
    # residual r = x - b - a mu of the decoder's mean at z = mu
    grad_mu = sp.diff(expected_f, mu)
    var_score = expect(sp.expand((f - beta) ** 2 * sp.diff(log_q, mu) ** 2)) - grad_mu ** 2
    var_reparam = expect(sp.expand(sp.diff(f, z) ** 2)) - grad_mu ** 2
    at_r = {x: r + b0 + a * mu}
    var_score = sp.expand(var_score.subs(at_r))
    var_reparam = sp.simplify(var_reparam.subs(at_r))
    if sp.simplify(var_reparam - a ** 4 * s ** 2 / c ** 2) != 0:
        raise AssertionError("reparameterization variance is not a^4 sigma^2 / c^2")
    best = sp.solve(sp.diff(var_score, beta), beta)
    if len(best) != 1:
        raise AssertionError("the variance-minimising baseline is not unique")
    var_best = sp.factor(sp.expand(var_score.subs(beta, best[0])))
    out["var_reparam"] = var_reparam
    out["var_score"] = sp.collect(var_score, beta)
    out["best_baseline"] = sp.collect(sp.expand(best[0]), kappa)
    out["expected_f_at_r"] = sp.expand(expected_f.subs(at_r))
    out["var_score_best"] = var_best
    # the same variance against the baseline's offset delta = E[f] - beta
    delta = sp.Symbol("delta", real=True)
    by_offset = sp.expand(var_score.subs(beta, out["expected_f_at_r"] - delta))
    out["var_score_offset"] = sp.collect(by_offset, delta, sp.factor)
    out["ratio_best"] = sp.expand(sp.simplify(var_best / var_reparam))
    out["symbols"] = dict(z=z, x=x, b=b0, r=r, mu=mu, a=a, sigma=s, c=c,
                          beta=beta, kappa=kappa, delta=delta)
    return out
