"""Build-time checks of the likelihood numbers (:mod:`autoencoders.metrics.likelihood`,
the likelihood terms of :mod:`autoencoders.losses`) on tiny models whose
answers are known in closed form.

* IWAE: a linear-Gaussian "VAE" (decoder N(W z + b, c I), encoder giving
  Gaussian codes) has log p(x) = log N(x; b, W W^T + c I). With the exact
  posterior as encoder every importance weight equals p(x), so every bound
  (any k) is -log p(x) exactly; with another encoder the k = 1 bound averages
  to the negative ELBO, computed independently in closed form, and k = 10 lies
  between it and -log p(x).
* bits per dimension: a uniform distribution over 256 grey levels has
  8 bits per dimension; one nat is 1/log 2 bits.
* the discretized Gaussian: the masses of the 256 grey levels equal
  differences of the normal CDF (scipy), the end bins open-ended; for a sharp
  decoder the -log masses of levels far out in either tail equal mpmath's.
* the VQ-VAE bound: with a uniform prior over K codes the prior costs
  log2 K bits per code, and the decoder term equals the discretized Gaussian
  computed with scipy.
* the VAE's objective: for the Gaussian decoder the training loss is an
  affine function of the negative ELBO, with the decoder variance c that
  lambda = 2c (derived in the VAE-theory chapter) implies; both the loss and
  the negative ELBO are recomputed from torch's own distributions.
"""
from __future__ import annotations

import math
from functools import lru_cache

from .checks import _require, _require_close, _require_unbiased


def _linear_gaussian_vae(exact: bool, seed: int = 0):
    """A tiny linear-Gaussian VAE (D = 4, d = 2, c = 0.5, W with orthogonal
    columns): its encoder is the exact posterior (``exact``) or a
    deliberately different Gaussian."""
    import numpy as np
    import torch
    from torch import nn

    from .. import losses

    g = torch.Generator().manual_seed(seed)
    D, d, c = 4, 2, 0.5
    # orthogonal columns: the posterior covariance is diagonal, as the encoder's is
    W = torch.linalg.qr(torch.randn(D, d, generator=g, dtype=torch.float64))[0] * torch.tensor(
        [1.5, 0.8], dtype=torch.float64)
    b = 0.5 + 0.1 * torch.randn(D, generator=g, dtype=torch.float64)
    # exact posterior N(A (x - b), S) by Gaussian conditioning (numpy, float64)
    Wn, cov_x = W.numpy(), W.numpy() @ W.numpy().T + c * np.eye(D)
    A = np.linalg.solve(cov_x, Wn).T
    S = np.eye(d) - A @ Wn
    if not exact:
        A, S = 0.7 * A, np.diag(np.diag(S)) * 1.8

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = nn.Linear(d, D).double()
            with torch.no_grad():
                self.decoder.weight.copy_(W)
                self.decoder.bias.copy_(b)
            self.register_buffer("A", torch.from_numpy(A.copy()))
            self.register_buffer("logvar", torch.from_numpy(np.log(np.diag(S)).copy()))

        def encode(self, x):
            x = x.double()
            return (x - b) @ self.A.T, self.logvar.expand(len(x), d)

        def log_likelihood(self, mean, x):
            return -losses.gaussian_nll(mean, x.double(), c)

    return Tiny(), W, b, c, A, S


def iwae_check() -> dict:
    """``metrics.iwae_nll`` on the linear-Gaussian VAE: -log p(x) exactly for
    every k with the exact posterior; with another encoder the k = 1 bound
    averages to the closed-form negative ELBO, and k = 10 lies between it and
    -log p(x) (z-tests over many copies of one image)."""
    import numpy as np
    import torch
    from torch.distributions import MultivariateNormal, Normal, kl_divergence

    from ..metrics.likelihood import iwae_nll

    model, W, b, c, _, _ = _linear_gaussian_vae(exact=True)
    g = torch.Generator().manual_seed(7)
    x = (b + 0.3 * torch.randn(5, len(b), generator=g, dtype=torch.float64)).float()
    truth = -MultivariateNormal(b, W @ W.T + c * torch.eye(len(b), dtype=torch.float64)).log_prob(
        x.double())
    got = iwae_nll(model, x, ks=(1, 10), seed=0)
    for k, v in got.items():
        _require_close(v, truth, f"IWAE bound with the exact posterior = -log p(x) (k = {k})",
                       "eq-vm-iwae", rtol=1e-5, atol=1e-5)

    model, W, b, c, A, S = _linear_gaussian_vae(exact=False)
    one = x[:1].expand(4000, -1).contiguous()
    got = iwae_nll(model, one, ks=(1, 10), seed=1)
    x0 = x[0].double()
    mu = torch.from_numpy(A) @ (x0 - b)
    sd = torch.from_numpy(np.sqrt(np.diag(S)))
    # ELBO = E_q log N(x; W z + b, c I) - KL(q || N(0, I)), both in closed form
    resid = x0 - b - W @ mu
    recon = -0.5 * len(b) * math.log(2 * math.pi * c) - (resid @ resid + (sd ** 2 * (W ** 2).sum(0)).sum()) / (2 * c)
    kl = kl_divergence(Normal(mu, sd), Normal(torch.zeros_like(mu), torch.ones_like(sd))).sum()
    neg_elbo = float(kl - recon)
    z1 = _require_unbiased(got[1], torch.tensor(neg_elbo),
                           "IWAE bound with k = 1 = negative ELBO", "eq-vm-iwae")
    # the encoder sees x and the decoder scores another image t (the chapter
    # encodes grey digits and scores binarised ones): k = 1 averages to
    # KL(q(z|x) || p(z)) - E_q(z|x) log p(t|z), with x's posterior and t's residual
    t0 = x[1].double()
    other = iwae_nll(model, one, ks=(1,), target=x[1:2].expand(len(one), -1), seed=2)[1]
    resid_t = t0 - b - W @ mu
    recon_t = -0.5 * len(b) * math.log(2 * math.pi * c) - (
        resid_t @ resid_t + (sd ** 2 * (W ** 2).sum(0)).sum()) / (2 * c)
    _require_unbiased(other, torch.tensor(float(kl - recon_t)),
                      "IWAE bound (k = 1) of a target t under the encoder's q(z | x) = "
                      "KL(q || p) - E_q log p(t | z)", "eq-vm-iwae")
    nll = float(truth[0])
    m10, se10 = float(got[10].mean()), float(got[10].std() / math.sqrt(len(one)))
    _require(nll - 5 * se10 < m10 < float(got[1].mean()) - 5 * se10,
             "-log p(x) <= IWAE bound (k = 10) < IWAE bound (k = 1)", "eq-vm-iwae",
             f"-log p(x) = {nll:.5f}, k = 10: {m10:.5f} +- {se10:.1g}, k = 1: {float(got[1].mean()):.5f}")
    return {"neg_log_px": nll, "k1": float(got[1].mean()), "k10": m10, "neg_elbo": neg_elbo, "z": z1}


def bits_per_dim_check() -> dict:
    """A uniform distribution over 256 grey levels: 8 bits per dimension;
    log 2 nats is one bit."""
    from ..losses import nats_to_bits
    from ..metrics.likelihood import bits_per_dim

    dims = 3 * 32 * 32
    got = bits_per_dim(dims * math.log(256), dims)
    _require_close(got, 8.0, "bits per dimension of the uniform 256-level distribution = 8",
                   "tbl-vm-iwae", rtol=1e-12)
    _require_close(nats_to_bits(math.log(2)), 1.0, "log 2 nats = 1 bit", "tbl-vm-iwae", rtol=1e-12)
    return {"uniform_bits_per_dim": got}


def discretized_gaussian_check() -> dict:
    """The discretized Gaussian puts probability mass on the 256 grey levels:
    each equals a difference of scipy's normal CDFs over its bin, the end
    bins reaching to -inf and +inf (so the masses sum to one)."""
    import numpy as np
    import torch
    from scipy.stats import norm

    from ..losses import discretized_gaussian_nll

    levels = torch.arange(256, dtype=torch.float64) / 255
    out = {}
    for mean, sigma in ((0.37, 0.05), (0.02, 0.3)):
        nll = discretized_gaussian_nll(torch.full((256, 1), mean, dtype=torch.float64),
                                       levels.view(256, 1), sigma)
        mass = torch.exp(-nll)
        edges = np.concatenate([[-np.inf], (np.arange(255) + 0.5) / 255, [np.inf]])
        ref = np.diff(norm.cdf(edges, loc=mean, scale=sigma))
        out[f"largest_difference_{mean}"] = _require_close(
            mass, ref, "discretized Gaussian: mass of each grey level", "eq-vq-elbo",
            rtol=1e-6, atol=1e-12)
    # a sharp decoder (sigma = 1e-3): most levels lie tens to hundreds of
    # standard deviations out, on both sides, where differences of the CDF
    # vanish in float64; their -log masses against mpmath at 60 digits
    import mpmath

    mean, sigma, half = 0.4, 1e-3, 0.5 / 255
    picked = torch.tensor([0, 1, 60, 100, 101, 102, 140, 254, 255], dtype=torch.float64) / 255
    nll = discretized_gaussian_nll(torch.full((len(picked), 1), mean, dtype=torch.float64),
                                   picked.view(-1, 1), sigma)
    mpmath.mp.dps = 60
    ref = []
    for level in picked.tolist():
        lo = -mpmath.inf if level <= half / 2 else (mpmath.mpf(level) - half - mean) / sigma
        hi = mpmath.inf if level >= 1 - half / 2 else (mpmath.mpf(level) + half - mean) / sigma
        if lo > 0:  # 1 - Phi(t) = Phi(-t): no digits cancel in the upper tail
            lo, hi = -hi, -lo
        ref.append(float(-mpmath.log(mpmath.ncdf(hi) - mpmath.ncdf(lo))))
    out["far_tail_largest_difference"] = _require_close(
        nll, torch.tensor(ref, dtype=torch.float64),
        "discretized Gaussian: -log mass of grey levels far in either tail (sigma = 1e-3)",
        "eq-vq-elbo", rtol=1e-9)
    return out


def vqvae_bits_per_dim_check() -> dict:
    """``metrics.vqvae_bits_per_dim`` on a tiny VQ-VAE with a uniform prior
    over its K codes: the prior costs log2 K bits per code, the decoder term is
    the discretized Gaussian computed with scipy, and the total is their sum
    in bits per dimension."""
    import numpy as np
    import torch
    from scipy.stats import norm
    from torch import nn

    from ..metrics.likelihood import vqvae_bits_per_dim
    from ..models import VQVAE

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        vq = VQVAE((1, 8, 8), latent_dim=3, num_codes=6, width=8, depth=1)
        images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    k = vq.num_codes

    class Uniform(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def nll(self, codes):
            return torch.full((len(codes),), codes[0].numel() * math.log(k), dtype=torch.float64)

    sigma = 0.3       # wide enough that every level's mass is well above float32 rounding
    got = vqvae_bits_per_dim(vq, Uniform(), images, sigma)
    _require_close(got["prior_bits_per_code"], math.log2(k),
                   "a uniform prior over K codes costs log2 K bits per code", "eq-vq-elbo",
                   rtol=1e-9)
    with torch.no_grad():
        x = images.float() / 255
        x_hat = vq.decode_codes(vq.codes(x)).double().numpy()
    lv = images.double().numpy()
    lo = np.where(lv == 0, -np.inf, (lv - 0.5) / 255)
    hi = np.where(lv == 255, np.inf, (lv + 0.5) / 255)
    mass = np.maximum(norm.cdf(hi, x_hat, sigma) - norm.cdf(lo, x_hat, sigma), 1e-12)
    decoder = float(-np.log(mass).sum() / len(images))
    _require_close(got["decoder_nats"], decoder, "VQ-VAE bound: the decoder's discretized term",
                   "eq-vq-elbo", rtol=1e-4)
    dims = images[0].numel()
    # metrics.reconstruction_sigma: the sigma that maximises the Gaussian
    # decoder's likelihood of the images, found here by a 1-D search
    from scipy.optimize import minimize_scalar

    from ..metrics.likelihood import reconstruction_sigma

    residual = (x_hat - x.double().numpy()).ravel()
    best = minimize_scalar(lambda log_s: -norm.logpdf(residual, 0.0, math.exp(log_s)).sum(),
                           bounds=(-10.0, 3.0), method="bounded", options={"xatol": 1e-10})
    _require_close(reconstruction_sigma(vq, images), math.exp(best.x),
                   "reconstruction sigma = the Gaussian decoder's maximum-likelihood sigma",
                   "eq-vq-elbo", rtol=1e-4)
    total = (decoder + got["prior_nats"]) / (dims * math.log(2))
    _require_close(got["bits_per_dim"], total, "VQ-VAE bound in bits per dimension", "eq-vq-elbo",
                   rtol=1e-4)
    return {"bits_per_dim": got["bits_per_dim"]}


@lru_cache(maxsize=1)
def _lambda():
    """lambda as a function of c, derived in the VAE-theory chapter (sympy)."""
    from . import vae

    return vae.kl_weight_lambda()["lambda"]


@lru_cache(maxsize=None)
def _decoder_variance_for(kl_weight: float, pixels: int) -> float:
    """c from the VAE-theory chapter's lambda = 2c (solved by sympy) for the
    package's kl_weight = lambda / D."""
    import sympy as sp

    from . import vae

    sol = sp.solve(sp.Eq(_lambda(), sp.Float(kl_weight) * pixels), vae.c)
    _require(len(sol) == 1, "lambda = 2c", "thm-vae-lambda", f"solving for c gave {sol}")
    return float(sol[0])


def _lambda_at(c_value: float) -> float:
    """lambda at decoder variance c (the derived expression, evaluated)."""
    from . import vae

    return float(_lambda().subs(vae.c, c_value))


def vae_objective_check() -> dict:
    """The VAE's training loss against its negative ELBO, both recomputed
    from torch's distributions at the same draw of z: for the Gaussian
    decoder the loss is kl_weight * (negative ELBO - (D/2) log(2 pi c)) with
    c = kl_weight * D / 2 (from lambda = 2c), at kl_weight = 1/D D times the
    loss is the summed squared error plus the KL (the questions chapter's
    Q1), and for the Bernoulli decoder the loss with kl_weight = 1 is the
    negative ELBO."""
    import torch
    from torch.distributions import Bernoulli, Normal, kl_divergence

    from ..models.vae import VAE

    out = {}
    # the Gaussian decoder at an arbitrary weight, at beta = 1/D (the questions
    # chapter's Q1: D times the per-pixel objective is the summed one), and
    # the Bernoulli decoder
    for likelihood, w in (("gaussian", 0.004), ("gaussian", 1 / 16), ("bernoulli", 1.0)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(9)
            model = VAE((1, 4, 4), latent_dim=3, arch="linear", kl_weight=w,
                        likelihood=likelihood).double()
            x = torch.rand(6, 1, 4, 4, dtype=torch.float64)
            seen = {}
            hook = model.decoder.register_forward_pre_hook(lambda m, a: seen.setdefault("z", a[0]))
            try:
                terms = model.loss_terms(x)
            finally:
                hook.remove()
        with torch.no_grad():
            mu, logvar = model.encode(x)
            z = seen["z"]
            logits = model.decoder(z)
            kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
            D = model.pixels
            if likelihood == "gaussian":
                c = _decoder_variance_for(w, D)
                _require_close(model.decoder_variance, c, "the VAE's decoder variance c = lambda / 2",
                               "thm-vae-lambda", rtol=1e-9)
                # what the analyses read: lambda and c for any kl_weight and D
                for w_, d_ in ((w, D), (0.01, 784), (1 / 784, 784), (0.002, 3072)):
                    c_ = _decoder_variance_for(w_, d_)
                    _require_close([VAE.kl_lambda(w_, d_), VAE.variance_for(w_, d_)],
                                   [_lambda_at(c_), c_], "VAE.kl_lambda and VAE.variance_for",
                                   "thm-vae-lambda", rtol=1e-9)
                log_px = Normal(torch.sigmoid(logits), math.sqrt(c)).log_prob(x).flatten(1).sum(1)
                neg_elbo = (kl - log_px).mean()
                mse = (torch.sigmoid(logits) - x).pow(2).flatten(1).mean(1)
                _require_close(terms["loss"], (mse + w * kl).mean(),
                               "the VAE's loss = mean squared error + kl_weight KL", "eq-vae-lambda-loss",
                               rtol=1e-9)
                _require_close(terms["loss"], w * (neg_elbo - 0.5 * D * math.log(2 * math.pi * c)),
                               "the VAE's loss = kl_weight (negative ELBO - const)", "thm-vae-lambda",
                               rtol=1e-9)
                if w * D == 1:  # summed squared error + KL, with neither c nor lambda in it
                    summed = (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1) + kl
                    _require_close(D * terms["loss"], summed.mean(),
                                   "D times the per-pixel objective at beta = 1/D = the summed "
                                   "objective", "eq-q-average", rtol=1e-9)
            else:
                log_px = Bernoulli(logits=logits, validate_args=False).log_prob(x).flatten(1).sum(1)
                neg_elbo = (kl - log_px).mean()
                _require_close(terms["loss"], neg_elbo, "the Bernoulli VAE's loss = negative ELBO",
                               "eq-vae-min-loss", rtol=1e-9)
            _require_close(terms["neg_elbo"], neg_elbo,
                           f"negative ELBO of the {likelihood} VAE", "eq-vae-min-loss", rtol=1e-9)
            _require_close(terms["kl"], kl.mean(), "the VAE's KL term", "thm-vae-gaussian-kl",
                           rtol=1e-9)
        out[likelihood if likelihood == "bernoulli" or w * D != 1 else "gaussian, beta = 1/D"] = \
            float(neg_elbo)
    return out


LIKELIHOOD_CHECKS = (iwae_check, bits_per_dim_check)
VQ_LIKELIHOOD_CHECKS = (discretized_gaussian_check, vqvae_bits_per_dim_check)
