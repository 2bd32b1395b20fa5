"""Encoders and decoders of three layer types, each mapping between an image
of shape (C, H, W) and a flat vector.

The same pair serves the plain autoencoder (encoder output = latent code) and
the VAE (encoder output = mean and log-variance, twice the latent size).

The default sizes give the convolutional and the transformer autoencoder
comparable parameter counts (about 271k and 254k for a 32-number code on
MNIST); the linear one has no size to tune besides the code length.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LinearEncoder(nn.Module):
    """One affine map from the flattened image to ``out_dim`` numbers.
    Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LinearDecoder(nn.Module):
    """One affine map from the code back to the image (no nonlinearity, so a
    linear autoencoder stays linear, as the PCA result needs).
    Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = nn.Linear(latent_dim, math.prod(image_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(1, self.image_shape)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (H -> H/4), then a linear map to ``out_dim``.
    Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], out_dim: int,
                 width: int = 32):
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"ConvEncoder needs H and W divisible by 4, got {h}x{w}")
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * (h // 4) * (w // 4), out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: linear, then two transposed
    convolutions (H/4 -> H). Outputs logits; the caller applies the sigmoid.
    Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 width: int = 32):
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * (h // 4) * (w // 4)), nn.ReLU(),
            nn.Unflatten(1, (2 * width, h // 4, w // 4)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _Patches(nn.Module):
    """Cut images into non-overlapping ``p x p`` patches (tokens) and back.
    Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], patch: int):
        super().__init__()
        c, h, w = image_shape
        if h % patch or w % patch:
            raise ValueError(f"patch size {patch} must divide the image size {h}x{w}")
        self.image_shape, self.patch = tuple(image_shape), patch
        self.tokens = (h // patch) * (w // patch)
        self.token_dim = c * patch * patch

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (N,C,H,W) -> (N,T,c*p*p)
        return nn.functional.unfold(x, self.patch, stride=self.patch).transpose(1, 2)

    def join(self, t: torch.Tensor) -> torch.Tensor:  # (N,T,c*p*p) -> (N,C,H,W)
        return nn.functional.fold(t.transpose(1, 2), self.image_shape[1:],
                                  self.patch, stride=self.patch)


def _transformer(dim: int, depth: int, heads: int) -> nn.TransformerEncoder:
    """``depth`` pre-norm self-attention layers of width ``dim`` with ``heads``
    heads. Shown in the Autoencoders chapter (book/autoencoders.md)."""
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim,
                                       dropout=0.0, batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class TransformerEncoder(nn.Module):
    """Patches as tokens, a small pre-norm transformer, then the flattened
    token features mapped linearly to a bottleneck vector of ``out_dim``.
    Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], out_dim: int,
                 patch: int = 7, dim: int = 72, depth: int = 2, heads: int = 4):
        super().__init__()
        self.patches = _Patches(image_shape, patch)
        self.embed = nn.Linear(self.patches.token_dim, dim)
        self.position = nn.Parameter(0.02 * torch.randn(1, self.patches.tokens, dim))
        self.body = _transformer(dim, depth, heads)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Flatten(),
                                  nn.Linear(self.patches.tokens * dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.patches.split(x)) + self.position
        return self.head(self.body(tokens))


class TransformerDecoder(nn.Module):
    """The bottleneck vector expanded into one token per patch (plus learned
    positions), a small transformer, and a linear map from each token to its
    patch's pixels (logits). Shown in the Autoencoders chapter (book/autoencoders.md)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 patch: int = 7, dim: int = 72, depth: int = 2, heads: int = 4):
        super().__init__()
        self.patches = _Patches(image_shape, patch)
        self.dim = dim
        self.expand = nn.Linear(latent_dim, self.patches.tokens * dim)
        self.position = nn.Parameter(0.02 * torch.randn(1, self.patches.tokens, dim))
        self.body = _transformer(dim, depth, heads)
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, self.patches.token_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tokens = self.expand(z).unflatten(1, (self.patches.tokens, self.dim))
        return self.patches.join(self.out(self.body(tokens + self.position)))


ENCODERS = {"linear": LinearEncoder, "conv": ConvEncoder, "transformer": TransformerEncoder}
DECODERS = {"linear": LinearDecoder, "conv": ConvDecoder, "transformer": TransformerDecoder}
