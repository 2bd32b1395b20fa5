"""A VAE with one categorical latent coordinate next to continuous ones.

The latent is (y, z): y in {0, ..., K-1} with a uniform prior (meant to pick
up the digit) and z in R^d with prior N(0, I) (meant to pick up the style).
The encoder gives q(y|x) (K logits) and q(z|x) = N(mu, diag sigma^2); the
decoder p(x|y, z) is Bernoulli and sees the one-hot y next to z.

The objective is the negative ELBO,

    -E_{q(y|x) q(z|x)}[log p(x|y,z)] + KL(q(y|x) || U_K) + KL(q(z|x) || N(0, I)),

with both KL terms in closed form. The expectation over z is differentiated
by reparameterization. The expectation over y cannot be (y is discrete), so
``estimator`` picks how its gradient reaches the logits of q(y|x):

* ``"score"``: the score-function estimator with a leave-one-out baseline:
  ``samples`` codes per image, each weighted by (log p(x|y,z) - b), b the
  mean log-likelihood of the other codes, times grad log q(y|x), through a
  surrogate loss whose gradient is that estimate (see
  :meth:`DiscreteVAE.loss_terms`);
* ``"gumbel"``: the Gumbel-softmax relaxation: the decoder sees a softmax of
  (logits + Gumbel noise) / temperature instead of a one-hot sample, which is
  differentiable but biased.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..config import DISCRETE_ESTIMATORS
from ..losses import categorical_score_surrogate, leave_one_out_baseline
from .layers import DECODERS, ENCODERS
from .vae import reparameterize


def categorical_kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(Categorical(softmax(logits)) || uniform over K) = log K - H(q), per example."""
    log_q = F.log_softmax(logits, dim=-1)
    return (log_q.exp() * log_q).sum(dim=-1) + math.log(logits.shape[-1])


class DiscreteVAE(nn.Module):
    """Encoder -> (logits of y, mu and log sigma^2 of z); decoder p(x | onehot(y), z)."""

    def __init__(self, image_shape, latent_dim: int = 4, categories: int = 10,
                 arch: str = "conv", estimator: str = "score", hidden: int = 256,
                 temperature: float = 0.5, usage_weight: float = 0.0,
                 samples: int = 4):
        super().__init__()
        if estimator not in DISCRETE_ESTIMATORS:
            raise ValueError(f"estimator must be one of {DISCRETE_ESTIMATORS}, got {estimator!r}")
        self.latent_dim, self.categories = latent_dim, categories
        self.estimator, self.temperature = estimator, temperature
        self.usage_weight, self.samples = usage_weight, samples
        if estimator == "score" and samples < 2:
            raise ValueError("the score-function estimator needs samples >= 2 (leave-one-out baseline)")
        self.trunk = nn.Sequential(ENCODERS[arch](image_shape, hidden), nn.ReLU())
        self.to_logits = nn.Linear(hidden, categories)
        self.to_gaussian = nn.Linear(hidden, 2 * latent_dim)
        self.decoder = DECODERS[arch](image_shape, categories + latent_dim)

    def encode(self, x: torch.Tensor):
        """The logits of q(y|x), and mu and log sigma^2 of q(z|x)."""
        h = self.trunk(x)
        mu, logvar = self.to_gaussian(h).chunk(2, dim=1)
        return self.to_logits(h), mu, logvar

    def decode(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities for codes ``y`` (indices, or K-vectors such as
        one-hot or relaxed samples) and styles ``z``."""
        return torch.sigmoid(self._logits(y, z))

    def _logits(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if y.dim() == 1:
            y = F.one_hot(y, self.categories).to(z.dtype)
        return self.decoder(torch.cat([y, z], dim=1))

    @torch.no_grad()
    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable code value argmax_y q(y|x) of each image."""
        return self.encode(x)[0].argmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the most probable code and the mean style."""
        logits, mu, _ = self.encode(x)
        return self.decode(logits.argmax(dim=1), mu)

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        """The labels ``y`` are ignored (the model is unsupervised).
        Shown in the Beyond reparameterization: the score-function estimator
        chapter (book/score_function.md)."""
        logits, mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        kl_y = categorical_kl_uniform(logits)
        kl_z = losses.gaussian_kl(mu, logvar)
        usage = categorical_kl_uniform(torch.log(F.softmax(logits, dim=-1).mean(dim=0)))
        extra = self.usage_weight * usage
        if self.training and self.estimator == "gumbel":
            code = F.gumbel_softmax(logits, tau=self.temperature, hard=False)
            log_px = -losses.bernoulli_nll(self._logits(code, z), x)
            surrogate = torch.zeros_like(log_px)
        else:
            # S codes per image, one shared style z: y_1..y_S ~ q(y|x)
            s = self.samples if self.training else 1
            codes = torch.distributions.Categorical(logits=logits).sample((s,))  # (S, N)
            log_px = -losses.bernoulli_nll(
                self._logits(codes.reshape(-1), z.repeat(s, 1)), x.repeat(s, 1, 1, 1)
            ).view(s, -1)
            # score function for the codes, each sample's baseline the mean
            # reward of the others (leave-one-out), log p(x|y,z) the reward
            baseline = leave_one_out_baseline(log_px.T).T if s > 1 else 0.0
            surrogate = categorical_score_surrogate(logits.expand(s, -1, -1), codes,
                                                    log_px, baseline).mean(dim=0)
            log_px = log_px.mean(dim=0)
        neg_elbo = kl_y + kl_z - log_px
        if not self.training:  # evaluation: no gradient, so no surrogate term
            surrogate = torch.zeros_like(neg_elbo)
        return {"loss": (neg_elbo + surrogate).mean() + extra,
                "neg_elbo": neg_elbo.mean(), "recon": -log_px.mean(),
                "kl_y": kl_y.mean(), "kl_z": kl_z.mean(), "kl_usage": usage}
