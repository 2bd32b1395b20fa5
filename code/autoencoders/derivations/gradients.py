"""Build-time checks of the score-function chapter's numeric path: the
linear-Gaussian decoder with closed-form answers
(:class:`~autoencoders.metrics.pca.LinearGaussianDecoder`), probabilistic
PCA, the gradient estimators of :mod:`autoencoders.estimators` and the
categorical score-function surrogate of the discrete VAE.

Each closed form is compared with an independent route (torch's own
densities, an exact cubature, finite differences, Gaussian conditioning,
the stationarity of the likelihood), and each estimator's mean with the
exact gradient by a z-test on many independent replicates (fixed seed, so a
build is reproducible; the threshold of 5 standard errors is far from what
a correct estimator reaches, and a biased one fails it by a wide margin).
"""
from __future__ import annotations

import math

from .checks import _require, _require_close, _require_unbiased

_D, _K, _C = 5, 2, 0.3


def _tiny_decoder(seed: int = 0):
    """A LinearGaussianDecoder with D = 5, d = 2, c = 0.3 and non-orthogonal
    columns (float64), an observation x, and a q = N(mu, diag sigma^2) that
    is not its posterior."""
    import torch

    from ..metrics.pca import LinearGaussianDecoder

    g = torch.Generator().manual_seed(seed)
    W = torch.randn(_D, _K, generator=g, dtype=torch.float64)
    b = torch.randn(_D, generator=g, dtype=torch.float64)
    x = torch.randn(_D, generator=g, dtype=torch.float64)
    mu = torch.tensor([0.4, -0.7], dtype=torch.float64)
    sigma = torch.tensor([0.6, 0.9], dtype=torch.float64)
    return LinearGaussianDecoder(W, b, _C), x, mu, sigma


def linear_gaussian_decoder_check() -> dict:
    """log p(x|z) against torch's Normal; E_q[log p(x|z)] against an exact
    cubature (2d sigma points, exact for quadratics); its gradient against
    central finite differences; the posterior against Gaussian conditioning
    of the joint (z, x) (a route through the D x D covariance of x, not the
    d x d matrix the package inverts)."""
    import torch

    dec, x, mu, sigma = _tiny_decoder()
    f = dec.log_prob(x)
    gen = torch.Generator().manual_seed(1)
    zs = torch.randn(7, _K, generator=gen, dtype=torch.float64)
    ref = torch.distributions.Normal(zs @ dec.W.T + dec.b, math.sqrt(dec.c)).log_prob(x).sum(-1)
    _require_close(f(zs), ref, "log p(x|z) = log N(x; W z + b, c I)", "eq-sf-toy", rtol=1e-10)

    # sigma points mu +- sqrt(d) sigma_j e_j: their average is E_q of any quadratic
    pts = torch.cat([mu + math.sqrt(_K) * torch.diag(sigma), mu - math.sqrt(_K) * torch.diag(sigma)])
    cubature = float(f(pts).mean())
    value = dec.expected_log_prob(x, mu, sigma)
    _require_close(value, cubature, "E_q[log p(x|z)] in closed form", "eq-sf-toy-expectation",
                   rtol=1e-10)

    h = 1e-5
    fd = []
    for which in ("mu", "sigma"):
        for j in range(_K):
            step = torch.zeros(_K, dtype=torch.float64)
            step[j] = h
            args = {"mu": mu, "sigma": sigma}
            plus = dict(args, **{which: args[which] + step})
            minus = dict(args, **{which: args[which] - step})
            fd.append((dec.expected_log_prob(x, **plus) - dec.expected_log_prob(x, **minus)) / (2 * h))
    exact = torch.cat(dec.exact_gradient(x, mu, sigma))
    _require_close(exact, torch.tensor(fd, dtype=torch.float64),
                   "the exact gradient of E_q[log p(x|z)] (finite differences)",
                   "eq-sf-toy-grad-mu", rtol=1e-6, atol=1e-6)

    # posterior by conditioning the joint Gaussian: Cov(x) = W W^T + c I, Cov(z, x) = W^T
    cov_x = dec.W @ dec.W.T + dec.c * torch.eye(_D, dtype=torch.float64)
    gain = torch.linalg.solve(cov_x, dec.W).T                  # W^T Cov(x)^-1
    mean = gain @ (x - dec.b)
    cov = torch.eye(_K, dtype=torch.float64) - gain @ dec.W
    post_mean, post_std = dec.posterior(x)
    name = "the posterior of the linear-Gaussian decoder (Gaussian conditioning)"
    _require_close(post_mean, mean, name, "eq-sf-toy", rtol=1e-9, atol=1e-12)
    _require_close(post_std, torch.sqrt(torch.diagonal(cov)), name, "eq-sf-toy", rtol=1e-9)
    return {"expected_log_prob": value, "posterior_std": post_std.tolist()}


def probabilistic_pca_check() -> dict:
    """The fitted probabilistic PCA is a maximum of the likelihood
    sum_n log N(x_n; b, W W^T + c I): its gradient (autograd, float64)
    vanishes there, and small random perturbations of (W, c) lower it; the
    covariance eigenvalues it starts from agree with numpy's, largest first."""
    import numpy as np
    import torch

    from ..metrics.pca import covariance_eigh, probabilistic_pca

    g = torch.Generator().manual_seed(2)
    mix = torch.randn(6, 6, generator=g, dtype=torch.float64) * torch.tensor([1.0, 0.8, 0.5, 0.2, 0.1, 0.05],
                                                                              dtype=torch.float64)
    images = (0.5 + 0.08 * torch.randn(300, 6, generator=g, dtype=torch.float64) @ mix.T).clamp(0, 1)
    images = images.float().view(300, 1, 2, 3)       # images are float32 (or uint8)
    flat = images.flatten(1).double().numpy()
    _, vals, vecs = covariance_eigh(images)
    ref = np.sort(np.linalg.eigvalsh(np.cov(flat.T, bias=True)))[::-1]
    _require_close(vals, ref, "covariance eigenvalues, largest first", "fig-sf-study", rtol=1e-9,
                   atol=1e-15)
    cov = np.cov(flat.T, bias=True)
    _require_close(cov @ vecs, vecs * vals, "covariance eigenvectors (C v = lambda v)", "fig-sf-study",
                   rtol=1e-7, atol=1e-12)

    ppca = probabilistic_pca(images, 2)
    x = torch.from_numpy(flat)

    def loglik(W, log_c, b):
        cov_x = W @ W.T + log_c.exp() * torch.eye(6, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(b, cov_x).log_prob(x).sum()

    W = ppca.W.clone().requires_grad_(True)
    log_c = torch.tensor(math.log(ppca.c), dtype=torch.float64, requires_grad=True)
    b = ppca.b.clone().requires_grad_(True)
    best = loglik(W, log_c, b)
    grads = torch.autograd.grad(best, (W, log_c, b))
    worst = max(float(t.abs().max()) for t in grads) / len(x)
    name = "probabilistic PCA is a stationary point of the likelihood"
    _require(worst < 1e-8, name, "fig-sf-study", f"gradient per example {worst:.3g}")
    with torch.no_grad():
        for _ in range(4):
            dW = 1e-2 * torch.randn(W.shape, generator=g, dtype=torch.float64)
            dc = 1e-2 * float(torch.randn(1, generator=g))
            other = loglik(W + dW, log_c + dc, b)
            _require(float(other) < float(best), "probabilistic PCA maximises the likelihood",
                     "fig-sf-study", f"a perturbation raised it from {float(best):.6f} to {float(other):.6f}")
    return {"c": ppca.c, "gradient": worst}


def score_estimators_unbiased_check(groups: int = 20_000, n: int = 2, seed: int = 3) -> dict:
    """Every estimator of :data:`autoencoders.estimators.ESTIMATORS`, fed the
    linear-Gaussian decoder's log p(x|.), is unbiased for the exact gradient
    (z-test over ``groups`` independent n-draw estimates; n = 2 so that a
    leave-one-out baseline that leaks the sample's own value is caught)."""
    import torch

    from .. import estimators

    dec, x, mu, sigma = _tiny_decoder()
    f = dec.log_prob(x)
    exact = torch.cat(dec.exact_gradient(x, mu, sigma))
    value = dec.expected_log_prob(x, mu, sigma)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(groups, n, _K, generator=gen, dtype=torch.float64)
    worst = {}
    for name in estimators.ESTIMATORS:
        g_mu, g_sigma = estimators.estimator_samples(name, f, mu, sigma, eps, value)
        estimate = torch.cat([g_mu.mean(dim=1), g_sigma.mean(dim=1)], dim=-1)   # (groups, 2d)
        worst[name] = _require_unbiased(estimate, exact, f"the {name} estimator is unbiased",
                                        "eq-sf-estimator")
    return {"max_abs_z": worst, "groups": groups, "n": n}


def variance_study_check() -> dict:
    """:func:`autoencoders.estimators.variance_study` reports the variance of
    the n-sample estimator (the per-draw variance over n, measured here
    independently) and a small bias z-score for unbiased estimators."""
    import torch

    from .. import estimators

    dec, x, mu, sigma = _tiny_decoder()
    f = dec.log_prob(x)
    exact = dec.exact_gradient(x, mu, sigma)
    value = dec.expected_log_prob(x, mu, sigma)
    counts = (2, 8)
    study = estimators.variance_study(f, mu, sigma, exact, value, sample_counts=counts,
                                      replicates=1000, seed=4)
    gen = torch.Generator().manual_seed(5)
    eps = torch.randn(50_000, 1, _K, generator=gen, dtype=torch.float64)
    for name, row in study.items():
        _require(row.sample_counts == list(counts), "variance study covers every sample count",
                 "fig-sf-study", f"{name}: {row.sample_counts}")
        _require(max(row.bias_z) < 5, f"variance study: the {name} estimator shows no bias",
                 "fig-sf-study", f"bias z-scores {row.bias_z}")
        if name.endswith("leave-one-out baseline"):
            continue        # its per-draw variance depends on n; checked for bias only
        g_mu, g_sigma = estimators.estimator_samples(name, f, mu, sigma, eps, value)
        per_draw = float(torch.cat([g_mu[:, 0], g_sigma[:, 0]], dim=-1).var(dim=0).sum())
        for k, var in zip(row.sample_counts, row.variance):
            ratio = var * k / per_draw
            _require(0.8 < ratio < 1.25, f"variance study: the variance of the {name} estimator "
                     "falls as 1/n", "fig-sf-study", f"n = {k}: reported {var:.4g}, "
                     f"per-draw variance / n = {per_draw / k:.4g}")
    return {name: row.variance for name, row in study.items()}


def categorical_surrogate_check(groups: int = 20_000, samples: int = 2, seed: int = 6) -> dict:
    """The discrete VAE's surrogate: the gradient of
    ``categorical_score_surrogate`` with the leave-one-out baseline is an
    unbiased estimate of -d/dlogits E_{y ~ softmax(logits)}[f(y)] (z-test),
    and ``categorical_kl_uniform`` equals torch's KL from the uniform."""
    import torch
    from torch.distributions import Categorical, kl_divergence

    from ..losses import categorical_score_surrogate, leave_one_out_baseline
    from ..models.discrete_vae import categorical_kl_uniform

    logits = torch.tensor([0.3, -0.8, 1.1, 0.0], dtype=torch.float64)
    reward = torch.tensor([-2.0, 1.5, 0.5, 3.0], dtype=torch.float64)
    k = len(logits)
    base = logits.detach().requires_grad_(True)
    (exact,) = torch.autograd.grad(-(torch.softmax(base, -1) * reward).sum(), base)
    gen = torch.Generator().manual_seed(seed)
    per_group = logits.expand(groups, k).clone().requires_grad_(True)     # one leaf row per group
    draws = torch.multinomial(torch.softmax(logits, -1), groups * samples, replacement=True,
                              generator=gen).view(groups, samples)
    values = reward[draws]                                                # (groups, samples)
    baseline = leave_one_out_baseline(values)
    surrogate = categorical_score_surrogate(per_group.unsqueeze(1).expand(groups, samples, k),
                                            draws, values, baseline)
    (grad,) = torch.autograd.grad(surrogate.mean(dim=1).sum(), per_group)
    z = _require_unbiased(grad, exact, "the score-function surrogate's gradient is unbiased",
                          "eq-sf-estimator")
    test = torch.tensor([[0.3, -0.8, 1.1, 0.0], [2.0, -1.0, 0.5, 0.1]], dtype=torch.float64)
    ref = kl_divergence(Categorical(logits=test), Categorical(logits=torch.zeros_like(test)))
    _require_close(categorical_kl_uniform(test), ref, "KL(q(y|x) || uniform)", "eq-sf-mixed-elbo",
                   rtol=1e-10, atol=1e-14)
    return {"max_abs_z": z}


SCORE_FUNCTION_CHECKS = (linear_gaussian_decoder_check, probabilistic_pca_check,
                         score_estimators_unbiased_check, variance_study_check,
                         categorical_surrogate_check)
