"""Numerical cross-checks of the VAE-theory chapter: quadrature, Monte
Carlo and autograd against the closed forms that sympy verified."""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from .checks import _require, normal_pdf
from . import vae


def linear_decoder(zv, a: float = 1.5, b: float = 0.3):
    """The conjugate model's decoder mean: f(z) = a z + b."""
    return a * np.asarray(zv) + b


def toy_decoder(zv):
    """A tiny fixed decoder made of two tanh units (plus a small slope).
    Its output is a bump, so two regions of z explain the same x.

    Shown in the VAE theory chapter (book/vae_theory.md).
    """
    zv = np.asarray(zv, dtype=float)
    return np.tanh(2 * zv + 2) - np.tanh(2 * zv - 2) + 0.2 * zv


def _np_normal_pdf(t, mean, std):
    return np.exp(-0.5 * ((t - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def evidence_by_quadrature(x_obs: float, decoder, noise_std: float,
                           lim: float = 12.0) -> float:
    """p(x) = integral of N(x; f(z), s^2) N(z; 0, 1) dz by adaptive quadrature."""
    from scipy import integrate

    value, _ = integrate.quad(
        lambda t: _np_normal_pdf(x_obs, decoder(t), noise_std) * _np_normal_pdf(t, 0, 1),
        -lim, lim, limit=400, epsabs=0, epsrel=1e-12)
    return float(value)


def posterior_on_grid(x_obs: float, decoder, noise_std: float, grid):
    """p(z|x) on a grid, normalised by the quadrature evidence."""
    grid = np.asarray(grid, dtype=float)
    joint = _np_normal_pdf(x_obs, decoder(grid), noise_std) * _np_normal_pdf(grid, 0, 1)
    return joint / evidence_by_quadrature(x_obs, decoder, noise_std)


def best_gaussian_elbo(x_obs: float, decoder, noise_std: float, nodes: int = 200):
    """max over Gaussian q = N(m, t^2) of the ELBO, each ELBO computed with
    Gauss-Hermite quadrature, maximised over (m, log t) from several starts.
    Returns (max ELBO, m, t)."""
    from scipy import optimize

    u, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()

    def neg_elbo(params):
        m, log_t = params
        t = math.exp(log_t)
        zq = m + t * u
        log_lik = -0.5 * ((x_obs - decoder(zq)) / noise_std) ** 2 - math.log(noise_std * math.sqrt(2 * math.pi))
        kl = math.log(1 / t) + (t ** 2 + m ** 2) / 2 - 0.5
        return -(w @ log_lik - kl)

    best = min((optimize.minimize(neg_elbo, [m0, -1.0], method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
                for m0 in np.linspace(-2, 2, 5)), key=lambda r: r.fun)
    return float(-best.fun), float(best.x[0]), math.exp(float(best.x[1]))


def conjugate_quadrature_check(x_obs: float = 1.2, a_: float = 1.5, b_: float = 0.3,
                               s_: float = 0.5, rtol: float = 1e-9) -> dict:
    """Quadrature against the closed-form evidence of the conjugate model;
    log p(x) - max_q ELBO (= min_q KL(q || p(z|x))) = 0 there, with log p(x)
    the logarithm of the quadrature evidence and the ELBO maximised
    numerically (Gauss-Hermite ELBO, Nelder-Mead); and the best q has the
    mean and variance of the posterior p(z|x), both by quadrature. The
    defaults are the example of the VAE-theory chapter (its x = 1.2)."""
    dec = lambda t: linear_decoder(t, a_, b_)  # noqa: E731
    quad = evidence_by_quadrature(x_obs, dec, s_)
    closed = float(normal_pdf(vae.x, vae.b, vae.a ** 2 + vae.s ** 2).subs(
        {vae.x: x_obs, vae.a: a_, vae.b: b_, vae.s: s_}))
    rel = abs(quad - closed) / closed
    _require(rel < rtol, "quadrature evidence = closed-form evidence", "lem-vae-conjugate",
             f"relative difference {rel:.3g}")
    elbo, m, t = best_gaussian_elbo(x_obs, dec, s_)
    gap = float(math.log(quad) - elbo)
    _require(abs(gap) < 1e-7, "max ELBO = log p(x) (quadrature) in the conjugate model",
             "thm-vae-elbo", f"gap {gap:.3g}")
    # the optimiser's best q is the true posterior N(m*, v*) (Bayes' rule on
    # a grid: its mean and variance by quadrature)
    from scipy import integrate

    evidence = lambda g: integrate.quad(  # noqa: E731
        lambda z: g(z) * _np_normal_pdf(x_obs, dec(z), s_) * _np_normal_pdf(z, 0, 1),
        -12, 12, limit=400, epsabs=0, epsrel=1e-12)[0] / quad
    post_mean = evidence(lambda z: z)
    post_var = evidence(lambda z: (z - post_mean) ** 2)
    _require(abs(m - post_mean) < 1e-5 and abs(t * t - post_var) < 1e-5,
             "the best Gaussian q is the true posterior (conjugate model)", "thm-vae-elbo",
             f"optimum N({m:.6f}, {t * t:.6f}), posterior N({post_mean:.6f}, {post_var:.6f})")
    return {"quadrature": quad, "closed_form": closed, "rel_error": rel,
            "gap": gap, "q_mean": m, "q_std": t, "x_obs": x_obs}


def kl_numeric_crosscheck(mu_q_, logvar_q_, mu_p_, logvar_p_, n: int = 200_000,
                          seed: int = 0, z_tol: float = 5.0) -> dict:
    """The package's gaussian_kl against torch.distributions.kl_divergence,
    the sympy closed form, and a Monte Carlo estimate of E_q[log q - log p]
    (all float64; diagonal Gaussians, the last dimension is the latent)."""
    import torch
    from torch.distributions import Independent, Normal, kl_divergence

    from ..losses import gaussian_kl

    t = lambda v: torch.as_tensor(v, dtype=torch.float64)  # noqa: E731
    mq, lq, mp, lp = map(t, (mu_q_, logvar_q_, mu_p_, logvar_p_))
    q = Independent(Normal(mq, (0.5 * lq).exp()), 1)
    p = Independent(Normal(mp, (0.5 * lp).exp()), 1)
    ours = float(gaussian_kl(mq, lq, mp, lp))
    theirs = float(kl_divergence(q, p))
    f = sp.lambdify((vae.mu_q, vae.sigma_q, vae.mu_p, vae.sigma_p), vae.gaussian_kl_closed_form(), "math")
    symbolic = sum(f(float(m1), math.exp(0.5 * float(l1)), float(m2), math.exp(0.5 * float(l2)))
                   for m1, l1, m2, l2 in zip(mq.flatten(), lq.flatten(), mp.flatten(), lp.flatten()))
    gen = torch.Generator().manual_seed(seed)
    zs = mq + (0.5 * lq).exp() * torch.randn((n,) + tuple(mq.shape), generator=gen, dtype=torch.float64)
    samples = q.log_prob(zs) - p.log_prob(zs)
    mc, se = float(samples.mean()), float(samples.std() / math.sqrt(n))
    for other, what in ((theirs, "torch.distributions.kl_divergence"), (symbolic, "the sympy closed form")):
        _require(abs(ours - other) <= 1e-10 * max(1.0, abs(other)),
                 f"gaussian_kl = {what}", "thm-vae-gaussian-kl", f"{ours!r} vs {other!r}")
    _require(abs(mc - ours) <= z_tol * se, "Monte Carlo KL estimate agrees with the closed form",
             "thm-vae-gaussian-kl", f"MC {mc:.6g} +- {se:.2g} vs closed form {ours:.6g}")
    return {"gaussian_kl": ours, "torch": theirs, "sympy": symbolic, "mc": mc, "mc_se": se, "n": n}


FLOAT32_EPS = float(np.finfo(np.float32).eps)
# Q3: |gaussian_kl - one-liner| allowed, relative to the size of the terms: 128
# float32 machine epsilons, above the worst-case rounding of the two
# expressions together (a few operations per coordinate and a sum of 16 terms,
# each side; in practice the gap is a few epsilons), far below the O(1)
# relative gap of a sign or variance slip
KL_AGREEMENT = 128 * FLOAT32_EPS


def kl_one_liner_check(n: int = 512, latent: int = 16, seed: int = 0) -> dict:
    """The questions chapter's Q3: the one-liner (``vae.textbook_kl``) term by
    term against the closed form (``vae.kl_term_mapping``, sympy), and in
    numbers on ``n`` seeded codes of ``latent`` units (means and
    log-variances from near the prior to far from it): in float64 against
    torch.distributions' KL from N(0, I), and in float32 against the
    package's ``gaussian_kl`` within :data:`KL_AGREEMENT` of the size of the
    terms, the tolerance the chapter applies to the trained encoder."""
    import torch
    from torch.distributions import Independent, Normal, kl_divergence

    from ..losses import gaussian_kl

    vae.kl_term_mapping()
    gen = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-4, 0.5, n, dtype=torch.float64).unsqueeze(-1)
    mu = scale * torch.randn(n, latent, generator=gen, dtype=torch.float64)
    logvar = scale * torch.randn(n, latent, generator=gen, dtype=torch.float64)
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    reference = kl_divergence(q, prior)
    ours64 = vae.textbook_kl(mu, logvar)
    worst64 = float(((ours64 - reference).abs() / reference.abs().clamp_min(1e-300)).max())
    _require(worst64 < 1e-6, "the one-liner = torch.distributions' KL from N(0, I) (float64)",
             "eq-vae-gaussian-kl", f"largest relative difference {worst64:.3g}")
    mu32, logvar32 = mu.float(), logvar.float()
    terms = 0.5 * (1 + logvar32.abs() + mu32.pow(2) + logvar32.exp()).sum(dim=-1)
    gap = (gaussian_kl(mu32, logvar32) - vae.textbook_kl(mu32, logvar32)).abs() / terms
    _require(float(gap.max()) <= KL_AGREEMENT,
             "the one-liner = the package's gaussian_kl within float32 rounding",
             "eq-vae-gaussian-kl", f"largest gap {float(gap.max()) / FLOAT32_EPS:.1f} float32 eps")
    return {"float64_relative": worst64, "float32_gap_eps": float(gap.max()) / FLOAT32_EPS}


def reparameterization_gradient_check(mu_=0.7, logvar_=-0.4, n: int = 200_000,
                                      seed: int = 0, z_tol: float = 5.0) -> dict:
    """Autograd through the package's reparameterize: the gradient of the Monte
    Carlo objective mean(z_i^2) w.r.t. (mu, log sigma^2) equals, sample for
    sample, the pathwise formula, and agrees within Monte Carlo error with the
    exact gradient (2 mu, sigma^2); and a draw without the trick
    (``Normal.sample``) carries no gradient (the chapter's ``vae_sample_grad``)."""
    import torch

    from ..models.vae import reparameterize

    m = torch.tensor(float(mu_), dtype=torch.float64, requires_grad=True)
    lv = torch.tensor(float(logvar_), dtype=torch.float64, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        zs = reparameterize(m.expand(n), lv.expand(n))
    objective = zs.pow(2).mean()
    g_mu, g_lv = torch.autograd.grad(objective, (m, lv))
    sd = math.exp(0.5 * logvar_)
    with torch.no_grad():
        e = (zs - m) / sd                            # the noise that was drawn
        path_mu = 2 * zs                             # d z^2 / d mu, per sample
        path_lv = 2 * zs * e * 0.5 * sd              # d z^2 / d logvar, per sample
    name = "autograd gradient = pathwise formula"
    for g, path in ((g_mu, path_mu), (g_lv, path_lv)):
        _require(abs(float(g) - float(path.mean())) <= 1e-12 * max(1.0, abs(float(g))),
                 name, "thm-vae-reparam", f"{float(g)!r} vs {float(path.mean())!r}")
    exact = {"mu": 2 * mu_, "logvar": sd ** 2}
    se = {"mu": float(path_mu.std()) / math.sqrt(n), "logvar": float(path_lv.std()) / math.sqrt(n)}
    got = {"mu": float(g_mu), "logvar": float(g_lv)}
    for k in exact:
        _require(abs(got[k] - exact[k]) <= z_tol * se[k],
                 f"Monte Carlo gradient w.r.t. {k} agrees with the exact gradient",
                 "thm-vae-reparam", f"{got[k]:.6g} +- {se[k]:.2g} vs {exact[k]:.6g}")
    # a plain draw (Normal.sample, no trick) has no graph behind it: no
    # gradient can reach mu or logvar through it
    normal = torch.distributions.Normal(m, lv.mul(0.5).exp())
    plain = normal.sample((4,))
    _require(not plain.requires_grad and plain.grad_fn is None,
             "without the trick (Normal.sample) the draw has no gradient", "thm-vae-reparam",
             "torch's sample() returned a tensor with a graph")
    return {"autograd": got, "exact": exact, "se": se, "n": n,
            "sample_requires_grad": bool(plain.requires_grad)}
