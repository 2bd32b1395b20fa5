"""The plain (deterministic) autoencoder: x -> f(x) = z -> g(z) = x_hat."""
from __future__ import annotations

import torch
from torch import nn

from .. import losses
from ..noise import corrupt
from .layers import DECODERS, ENCODERS


class Autoencoder(nn.Module):
    """Encoder f and decoder g trained to minimise ||x - g(f(x))||^2.

    ``arch`` picks the layer type ("linear", "conv" or "transformer"). The
    linear one has no output nonlinearity; the others squash the decoder's
    output into [0, 1] with a sigmoid. With ``noise_weight > 0`` the input is
    corrupted (see :func:`autoencoders.noise.corrupt`) and the target stays
    clean: a denoising autoencoder.
    """

    def __init__(self, image_shape, latent_dim: int, arch: str = "conv",
                 noise_weight: float = 0.0):
        super().__init__()
        self.arch, self.latent_dim, self.noise_weight = arch, latent_dim, noise_weight
        self.encoder = ENCODERS[arch](image_shape, latent_dim)
        self.decoder = DECODERS[arch](image_shape, latent_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return out if self.arch == "linear" else torch.sigmoid(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        """The squared error per image, averaged over the batch (``loss``), and
        per pixel (``mse``). Shown in the Autoencoders chapter (book/autoencoders.md)."""
        x_hat = self(corrupt(x, self.noise_weight))
        sse = losses.squared_error(x_hat, x)
        return {"loss": sse.mean(), "mse": sse.mean() / x[0].numel()}
