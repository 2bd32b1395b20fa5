"""The VQ-VAE: a convolutional encoder, a vector quantizer, a convolutional
decoder (van den Oord et al., 2017).

An image of shape (C, H, W) becomes a grid of (H/4) x (W/4) vectors in R^d;
each is replaced by its nearest code vector, and the decoder maps the grid of
code vectors back to an image. So a 32x32 CIFAR-10 image is described by
8 x 8 = 64 code indices, each one of K values.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import losses
from .quantizer import VectorQuantizer, codebook_perplexity, dead_codes


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))): the block of the paper's
    encoder and decoder."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(), nn.Conv2d(width, width // 2, 3, padding=1),
            nn.ReLU(), nn.Conv2d(width // 2, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class VQEncoder(nn.Sequential):
    """(C, H, W) -> (d, H/4, W/4): two stride-2 convolutions, residual
    blocks, and a 1x1 convolution to the code dimension d. With
    ``downsample=2`` the first convolution is a stride-1 3x3 one (same
    layers and widths, a grid of H/2 x W/2)."""

    def __init__(self, channels: int, width: int, latent_dim: int, depth: int,
                 downsample: int = 4):
        first = (nn.Conv2d(channels, width // 2, 4, stride=2, padding=1) if downsample == 4
                 else nn.Conv2d(channels, width // 2, 3, padding=1))
        super().__init__(
            first, nn.ReLU(),
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            *[ResidualBlock(width) for _ in range(depth)], nn.ReLU(),
            nn.Conv2d(width, latent_dim, 1))


class VQDecoder(nn.Sequential):
    """(d, H/4, W/4) -> (C, H, W) logits: the mirror of :class:`VQEncoder`
    (with ``downsample=2``, from H/2 x W/2: the last layer a stride-1 3x3)."""

    def __init__(self, channels: int, width: int, latent_dim: int, depth: int,
                 downsample: int = 4):
        last = (nn.ConvTranspose2d(width // 2, channels, 4, stride=2, padding=1)
                if downsample == 4 else nn.Conv2d(width // 2, channels, 3, padding=1))
        super().__init__(
            nn.Conv2d(latent_dim, width, 3, padding=1),
            *[ResidualBlock(width) for _ in range(depth)], nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.ReLU(),
            last)


class VQVAE(nn.Module):
    """Encoder -> vector quantizer -> decoder, trained on

        mean squared error + codebook loss + beta * commitment loss

    with beta = ``commitment`` (the codebook term only with
    ``codebook_update="loss"``; with ``"ema"`` the
    codebook follows moving averages instead). ``loss_terms`` also reports
    codebook usage on the batch: the perplexity of the chosen codes and the
    number of codes no position chose ("dead" on that batch).
    """

    def __init__(self, image_shape, latent_dim: int = 32, num_codes: int = 128,
                 width: int = 64, depth: int = 2, commitment: float = 0.25,
                 codebook_update: str = "loss", restart_dead: bool = False,
                 codebook_init: str = "uniform", downsample: int = 4):
        super().__init__()
        c, h, w = image_shape
        if downsample not in (2, 4):
            raise ValueError(f"downsample must be 2 or 4, got {downsample!r}")
        if h % downsample or w % downsample:
            raise ValueError(f"VQVAE needs H and W divisible by {downsample}, got {h}x{w}")
        self.commitment, self.num_codes = commitment, num_codes
        self.grid = (h // downsample, w // downsample)
        self.encoder = VQEncoder(c, width, latent_dim, depth, downsample)
        self.quantizer = VectorQuantizer(num_codes, latent_dim, update=codebook_update,
                                         restart_dead=restart_dead, init=codebook_init)
        self.decoder = VQDecoder(c, width, latent_dim, depth, downsample)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z_e(x): the encoder's grid of vectors, (N, d, H/4, W/4)."""
        return self.encoder(x)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """The image (values in [0, 1]) for a grid of code vectors."""
        return torch.sigmoid(self.decoder(z_q))

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The grid of code indices (N, H/4, W/4) that describes each image."""
        return self.quantizer(self.encode(x)).codes

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The image for a grid of code indices (e.g. sampled by a prior)."""
        return self.decode(self.quantizer.lookup(codes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantizer(self.encode(x)).z_q)

    def loss_terms(self, x: torch.Tensor, y=None) -> dict:
        """Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
        q = self.quantizer(self.encode(x))
        x_hat = self.decode(q.z_q)
        mse = losses.mean_squared_error(x_hat, x)
        loss = mse + self.commitment * q.commitment_loss
        if self.quantizer.update == "loss":   # with "ema": no gradient
            loss = loss + q.codebook_loss
        k = self.num_codes
        return {"loss": loss.mean(), "mse": mse.mean(),
                "codebook": q.codebook_loss.mean(),
                "commitment": q.commitment_loss.mean(),
                # codebook usage on this batch, logged by the trainer
                "perplexity": codebook_perplexity(q.codes, k),
                "dead_codes": dead_codes(q.codes, k).float(),
                "restarts": self.quantizer.last_restarts.float()}
