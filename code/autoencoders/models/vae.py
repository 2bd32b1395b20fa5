"""The variational autoencoder with a diagonal-Gaussian encoder q(z|x) and a
standard-normal prior p(z) = N(0, I)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import losses
from ..noise import corrupt
from .layers import DECODERS, ENCODERS


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2):
    the sample is a differentiable function of (mu, sigma), so gradients
    reach the encoder. ``generator`` (optional) draws eps reproducibly.

    Shown in the VAE theory chapter (book/vae_theory.md).
    """
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


class VAE(nn.Module):
    """Encoder -> (mu, log sigma^2) -> reparameterized z -> decoder.

    ``likelihood`` picks p(x|z):

    * ``"gaussian"``: N(f(z), cI). The objective is the per-pixel mean squared
      error plus ``kl_weight`` times the KL: the weighted loss of the theory
      chapter (equation ``eq-vae-lambda-loss``) divided by the pixel count D; so ``kl_weight = lambda / D`` and
      the decoder variance is c = kl_weight * D / 2.
    * ``"bernoulli"``: pixel intensities as Bernoulli probabilities. With
      ``kl_weight = 1`` the objective is the negative ELBO in nats per image.

    Two optional guards against posterior collapse (both off by default):
    ``kl_warmup`` > 0 raises the KL weight linearly from 0 to ``kl_weight``
    over that many training steps (KL annealing); ``free_bits`` > 0 charges
    each latent unit's batch-averaged KL only above that many nats
    (:meth:`kl_penalty`).
    """

    def __init__(self, image_shape, latent_dim: int, arch: str = "conv",
                 kl_weight: float = 1e-3, likelihood: str = "gaussian",
                 noise_weight: float = 0.0, kl_warmup: int = 0, free_bits: float = 0.0):
        super().__init__()
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        self.latent_dim, self.kl_weight = latent_dim, kl_weight
        self.likelihood, self.noise_weight = likelihood, noise_weight
        self.kl_warmup, self.free_bits = kl_warmup, free_bits
        if kl_warmup > 0:  # training steps taken, saved with the model (resumable)
            self.register_buffer("steps_taken", torch.zeros((), dtype=torch.long))
        self.image_shape = tuple(image_shape)
        self.pixels = math.prod(self.image_shape)  # D
        self.encoder = ENCODERS[arch](image_shape, 2 * latent_dim)
        self.decoder = DECODERS[arch](image_shape, latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image (pixel probabilities for Bernoulli)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the posterior mean (no sampling noise)."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z)

    @staticmethod
    def kl_lambda(kl_weight: float, pixels: int) -> float:
        """lambda, the KL weight of the summed objective ||x - f(z)||^2 + lambda KL,
        for the per-pixel ``kl_weight`` of an image of ``pixels`` = D numbers:
        lambda = kl_weight * D."""
        return kl_weight * pixels

    @staticmethod
    def variance_for(kl_weight: float, pixels: int) -> float:
        """c, the variance of the Gaussian decoder N(f(z), cI) that a per-pixel
        ``kl_weight`` corresponds to for D = ``pixels``: c = lambda / 2
        (lambda = 2c, the VAE-theory chapter's thm-vae-lambda), so c = kl_weight * D / 2.
        Analyses read c and lambda here, not from a formula of their own."""
        return VAE.kl_lambda(kl_weight, pixels) / 2

    @property
    def decoder_variance(self) -> float:
        """c, the variance of the Gaussian decoder N(f(z), cI) that the
        objective corresponds to (:meth:`variance_for` of this model's
        ``kl_weight`` and D)."""
        if self.likelihood != "gaussian":
            raise ValueError("decoder_variance is defined for the Gaussian likelihood only")
        return self.variance_for(self.kl_weight, self.pixels)

    def log_likelihood(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example, in nats, from the decoder's ``logits`` at z:
        Bernoulli, or Gaussian N(sigmoid(logits), cI) with c = :attr:`decoder_variance`."""
        if self.likelihood == "bernoulli":
            return -losses.bernoulli_nll(logits, x)
        return -losses.gaussian_nll(torch.sigmoid(logits), x, self.decoder_variance)

    def kl_scale(self) -> float | torch.Tensor:
        """The factor on ``kl_weight`` now: with ``kl_warmup`` > 0, a linear
        ramp from 0 to 1 over the first ``kl_warmup`` training steps (a
        tensor, computed on the device); 1 otherwise, and always 1 in eval
        mode (the objective proper).
        Shown in the Questions readers ask chapter (book/questions.md)."""
        if self.kl_warmup <= 0 or not self.training:
            return 1.0
        return (self.steps_taken / self.kl_warmup).clamp(max=1.0)

    def kl_penalty(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """The KL term the objective charges for a batch, with free bits
        (Kingma et al., 2016): each unit's KL, averaged over the batch, is
        charged only above ``free_bits`` nats, sum_u max(free_bits, mean KL_u).
        Units below the floor get no gradient from it: they may carry that
        many nats for free.
        Shown in the Questions readers ask chapter (book/questions.md)."""
        per_unit = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1)).mean(dim=0)
        return per_unit.clamp_min(self.free_bits).sum()

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        """The objective of the ``likelihood`` chosen (see the class), its
        reconstruction and KL terms, and the negative ELBO in nats.
        Shown in the A variational autoencoder on MNIST chapter (book/vae_mnist.md)."""
        mu, logvar = self.encode(corrupt(x, self.noise_weight))
        z = reparameterize(mu, logvar)
        logits = self.decoder(z)
        kl = losses.gaussian_kl(mu, logvar)
        mse = losses.mean_squared_error(torch.sigmoid(logits), x)
        recon = mse if self.likelihood == "gaussian" else losses.bernoulli_nll(logits, x)
        terms = {"loss": (recon + self.kl_weight * kl).mean(),
                 "recon": recon.mean(), "kl": kl.mean(), "mse": mse.mean()}
        if self.kl_warmup > 0 or self.free_bits > 0:
            # what training minimises: the warmed-up weight times the penalty
            weight = self.kl_weight * self.kl_scale()
            penalty = self.kl_penalty(mu, logvar) if self.free_bits > 0 else kl.mean()
            terms["loss"] = recon.mean() + weight * penalty
            # a number is filled in on the device, not copied from the host
            terms["kl_weight_now"] = torch.zeros((), device=x.device) + weight
            if self.training and self.kl_warmup > 0:
                self.steps_taken += 1
        if self.likelihood == "bernoulli" or self.kl_weight > 0:
            # the one-sample negative ELBO in nats per image (for the Gaussian
            # decoder: with variance c); the objective is an affine function of it
            terms["neg_elbo"] = (kl - self.log_likelihood(logits, x)).mean()
        return terms
