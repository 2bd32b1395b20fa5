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


def closed_form_in_one_dimension(derivation=None, seed: int = 0) -> float:
    """:func:`~autoencoders.estimators.closed_form_variances` (any d) at
    d = 1 against the chapter's one-dimensional sympy variances
    (``eq-sf-var-reparam``, ``eq-sf-var-score``, from
    :func:`~autoencoders.derivations.score_function.derive_score_function`)
    at random values, for three baselines; returns the largest relative
    difference."""
    import numpy as np
    import torch

    from .. import estimators
    from ..metrics.pca import LinearGaussianDecoder
    from .score_function import derive_score_function

    d = derive_score_function(categories=3) if derivation is None else derivation
    s = d["symbols"]
    rng = np.random.default_rng(seed)
    a, b, c, x, mu = rng.normal(size=5)
    c, sigma = abs(c) + 0.2, rng.uniform(0.2, 1.5)
    one = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    decoder = LinearGaussianDecoder(one(a).view(1, 1), one(b), float(c))
    value = decoder.expected_log_prob(one(x), one(mu), one(sigma))
    worst = 0.0
    for beta in (0.0, value, value + 1.0):
        closed = estimators.closed_form_variances(decoder, one(x), one(mu), one(sigma), beta)
        subs = {s["a"]: a, s["c"]: c, s["sigma"]: sigma, s["r"]: x - b - a * mu,
                s["delta"]: value - beta}
        for name, expr in (("reparameterization", d["var_reparam"]),
                           ("score", d["var_score_offset"])):
            sym_value = float(expr.subs(subs))
            worst = max(worst, _require_close(
                float(closed[name].mu[0]), sym_value,
                f"closed-form {name} variance in d dimensions, at d = 1 (beta = {float(beta):.4g})",
                "eq-sf-var-score" if name == "score" else "eq-sf-var-reparam", rtol=1e-9)
                / abs(sym_value))
    return worst


def _hermite_grid(d: int, nodes: int):
    """Gauss-Hermite product nodes (M, d) and weights (M,) for N(0, I_d):
    the weighted sum of a polynomial of degree < 2 * nodes in each coordinate
    is its exact expectation."""
    import itertools

    import numpy as np
    import torch

    u, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    points = np.array(list(itertools.product(u, repeat=d)))
    weights = np.array([np.prod(c) for c in itertools.product(w, repeat=d)])
    return torch.from_numpy(points), torch.from_numpy(weights)


def closed_form_variances_check(nodes: int = 6) -> dict:
    """The score-function chapter's closed-form variances (``eq-sf-var-d``,
    :func:`~autoencoders.estimators.closed_form_variances`) of one-draw
    estimates of grad_(mu, sigma) E_q[log p(x|z)], for a linear-Gaussian
    decoder in d = 3 dimensions with non-orthogonal columns: every coordinate
    of the mu- and the sigma-gradient, for the reparameterization estimator
    and for the score-function estimator with three constant baselines,
    against the exact variance of the package's per-draw estimates under
    Gauss-Hermite product quadrature (exact: the estimates are polynomials of
    degree at most 4 in the noise). Also, at d = 1, against sympy's
    one-dimensional variances (:func:`closed_form_in_one_dimension`)."""
    import torch

    from .. import estimators
    from ..metrics.pca import LinearGaussianDecoder

    g = torch.Generator().manual_seed(8)
    dim, pixels = 3, 6
    dec = LinearGaussianDecoder(torch.randn(pixels, dim, generator=g, dtype=torch.float64),
                                torch.randn(pixels, generator=g, dtype=torch.float64), 0.4)
    x = torch.randn(pixels, generator=g, dtype=torch.float64)
    mu = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    sigma = torch.tensor([0.7, 0.4, 1.1], dtype=torch.float64)
    f = dec.log_prob(x)
    value = dec.expected_log_prob(x, mu, sigma)
    eps, w = _hermite_grid(dim, nodes)
    eps = eps.unsqueeze(1)                                   # (M, 1, d): one draw each
    exact = dec.exact_gradient(x, mu, sigma)

    def variance(samples):                                   # (M, 1, d) -> (d,)
        s = samples[:, 0, :]
        mean = (w[:, None] * s).sum(0)
        return (w[:, None] * s ** 2).sum(0) - mean ** 2, mean

    worst = 0.0
    cases = [("reparameterization", None)] + [("score", b) for b in (0.0, value, value + 2.0)]
    for name, beta in cases:
        if name == "reparameterization":
            g_mu, g_sigma = estimators.reparameterization_samples(f, mu, sigma, eps)
            closed = estimators.closed_form_variances(dec, x, mu, sigma)[name]
        else:
            g_mu, g_sigma = estimators.score_function_samples(f, mu, sigma, eps, baseline=beta)
            closed = estimators.closed_form_variances(dec, x, mu, sigma, beta)[name]
        for part, samples, formula, grad in (("mu", g_mu, closed.mu, exact[0]),
                                              ("sigma", g_sigma, closed.sigma, exact[1])):
            var, mean = variance(samples)
            _require_close(mean, grad, f"quadrature reproduces the exact {part}-gradient",
                           "eq-sf-var-d", rtol=1e-9, atol=1e-9)
            label = "eq-sf-var-d"
            what = f"closed-form {name} variance of the {part}-gradient" + (
                "" if beta is None else f" (baseline {float(beta):.4g})")
            worst = max(worst, _require_close(formula, var, what, label, rtol=1e-8) /
                        float(var.abs().max()))
    one_d = closed_form_in_one_dimension()
    return {"largest_relative_difference": worst, "one_dimension": one_d}


SCORE_FUNCTION_CHECKS = (linear_gaussian_decoder_check, probabilistic_pca_check,
                         score_estimators_unbiased_check, variance_study_check,
                         categorical_surrogate_check, closed_form_variances_check)
