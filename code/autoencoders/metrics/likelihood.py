"""Likelihoods in nats and bits: importance-weighted bounds of a VAE's
-log p(x) (IWAE), and the bits-per-dimension bound of a VQ-VAE with a prior."""
from __future__ import annotations

import math

import torch

from ..data import unit_floats
from ..inference import apply_in_batches
from ..losses import discretized_gaussian_nll
from ..models.vae import reparameterize

def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """A negative log-likelihood of one example, in nats, as bits per
    dimension (per pixel and colour channel, or per code of a code grid)."""
    return nll_nats / (dims * math.log(2))


def binarize(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A fixed stochastic binarisation of grey-level images: each pixel is 1
    with probability equal to its intensity (the usual "dynamically
    binarised MNIST" test set, with a seeded draw so the number repeats)."""
    x = unit_floats(images)
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.cpu(), generator=gen)


@torch.inference_mode()
def importance_log_weights(model: torch.nn.Module, x: torch.Tensor, k: int,
                           target: torch.Tensor | None = None,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """log w_i = log p(target|z_i) + log p(z_i) - log q(z_i|x) for k draws
    z_i ~ q(z|x) per image: a (k, N) tensor. ``model`` is a VAE (``encode``
    giving mean and log-variance, ``decoder`` giving logits and
    ``log_likelihood(logits, x)``); ``target`` (default ``x``) is what the
    decoder's likelihood is evaluated on, e.g. a binarised copy of ``x``.

    Shown in the VAE on MNIST chapter (book/vae_mnist.md).
    """
    target = x if target is None else target
    mu, logvar = model.encode(x)
    mu, logvar = mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape)
    z = reparameterize(mu, logvar, generator=generator)          # (k, N, d)
    log2pi = math.log(2 * math.pi)
    log_q = -0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + log2pi).sum(dim=-1)  # log N(z; mu, sigma^2)
    log_prior = -0.5 * (z ** 2 + log2pi).sum(dim=-1)            # log N(z; 0, I)
    logits = model.decoder(z.flatten(0, 1))
    repeated = target.unsqueeze(0).expand(k, *target.shape).flatten(0, 1)
    log_lik = model.log_likelihood(logits, repeated).view(k, -1)
    return log_lik + log_prior - log_q


@torch.inference_mode()
def iwae_nll(model: torch.nn.Module, images: torch.Tensor, ks=(1, 10, 100), *,
             target: torch.Tensor | None = None, seed: int = 0,
             max_decodes: int = 5000) -> dict[int, torch.Tensor]:
    """Importance-weighted estimates of -log p(x) per image (Burda et al.,
    2016), in nats, for each number of samples k in ``ks``:

        -log (1/k) sum_i w_i,   w_i = p(x, z_i) / q(z_i | x),  z_i ~ q(z|x).

    k = 1 is the negative ELBO; each larger k gives a bound that is, in
    expectation, tighter (lower) and tends to -log p(x). The estimates for
    the different k reuse the first k of the same max(ks) draws. Returns
    {k: tensor of N values}. ``images`` are uint8 or floats in [0, 1] and go
    to the encoder; ``target`` (default: the images) is scored."""
    device = next(model.parameters()).device
    x = unit_floats(images)
    t = x if target is None else target.float()
    k_max = max(ks)
    gen = torch.Generator(device=device).manual_seed(seed)

    def bounds(pair):  # a batch of (image, target) pairs -> one bound per k
        log_w = importance_log_weights(model, pair[:, 0], k_max, pair[:, 1], generator=gen)
        return tuple(-(torch.logsumexp(log_w[:k], dim=0) - math.log(k)) for k in ks)
    # the images and their targets side by side, so each batch carries both
    got = apply_in_batches(model, bounds, torch.stack([x, t], dim=1),
                           batch_size=max(1, max_decodes // k_max))
    return {k: v.double() for k, v in zip(ks, got)}


@torch.inference_mode()
def reconstruction_sigma(model: torch.nn.Module, images: torch.Tensor,
                         batch_size: int = 1000) -> float:
    """sqrt(mean squared error) of ``model``'s reconstructions of ``images``:
    the maximum-likelihood standard deviation of a Gaussian decoder
    N(x_hat, sigma^2 I) with one sigma for every pixel."""
    sse = apply_in_batches(model, lambda x: (model(x) - x).pow(2).flatten(1).sum(dim=1),
                           images, batch_size)
    return math.sqrt(float(sse.double().sum()) / images.numel())


@torch.inference_mode()
def vqvae_bits_per_dim(vqvae: torch.nn.Module, prior: torch.nn.Module,
                       images: torch.Tensor, sigma: float,
                       batch_size: int = 500) -> dict:
    """An upper bound on -log2 p(x) per dimension for a VQ-VAE with a prior.

    The encoder is deterministic (q(k|x) puts all its mass on the code grid
    k(x)), so the negative ELBO is -log p(x | k(x)) - log p(k(x)): the
    decoder's term with a discretized Gaussian N(x_hat, sigma^2) over the 256
    grey levels (see ``losses.discretized_gaussian_nll``), plus the prior's
    negative log-likelihood of the code grid. Returns the two terms in nats
    per image, the bound in bits per dimension and the prior's bits per code.
    """
    prior.eval()

    def nats(x):  # per image: the decoder's term and the prior's
        codes = vqvae.codes(x)
        return discretized_gaussian_nll(vqvae.decode_codes(codes), x, sigma), prior.nll(codes)
    decoder, prior_nll = apply_in_batches(vqvae, nats, images, batch_size)
    n, dims = len(images), images[0].numel()
    grid = vqvae.grid[0] * vqvae.grid[1]
    decoder_nats, prior_nats = float(decoder.double().sum()) / n, float(prior_nll.double().sum()) / n
    return {"decoder_nats": decoder_nats, "prior_nats": prior_nats,
            "bits_per_dim": bits_per_dim(decoder_nats + prior_nats, dims),
            "decoder_bits_per_dim": bits_per_dim(decoder_nats, dims),
            "prior_bits_per_code": bits_per_dim(prior_nats, grid)}
