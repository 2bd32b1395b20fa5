"""Data passed through an upstream model: what a model with
``Config.train_on`` set trains and is tested on.

``TRANSFORMS`` maps a name to ``fn(upstream_run, images, config) -> ImageData``.
The function gets both splits in turn (``images.split``) and may return the
test split unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch

from .data import ImageData
from .inference import apply_in_batches, code_grids
from .models.vae import reparameterize

TRANSFORMS: dict[str, Callable] = {}


def transform(name: str):
    """Register a data transform for ``Config.train_on``."""
    def register(fn):
        TRANSFORMS[name] = fn
        return fn
    return register


def _through_vae(upstream, images: ImageData, config, fresh_noise: bool,
                 what: str) -> ImageData:
    """The training split passed through the upstream VAE (the test split
    is returned unchanged: every classifier is tested on real digits). Each
    image keeps its label; the result is the decoder's mean image at z =
    mu (``fresh_noise=False``) or at a new draw z ~ q(z|x)."""
    if images.split == "test":
        return images
    model = upstream.model
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(config.seed + 1)

    def through(x):
        mu, logvar = model.encode(x)
        return model.decode(reparameterize(mu, logvar, generator=gen) if fresh_noise else mu)

    made = apply_in_batches(model, through, images.images)
    return ImageData(images.name, images.split, made.mul(255.0).round().to(torch.uint8),
                     images.labels, f"{what} by {upstream.config.name} of {images.source}")


@transform("vae-reconstructions")
def vae_reconstructions(upstream, images: ImageData, config) -> ImageData:
    """Each training digit replaced by the VAE's reconstruction (z = mu)."""
    return _through_vae(upstream, images, config, False, "reconstructions")


@transform("vae-posterior-samples")
def vae_posterior_samples(upstream, images: ImageData, config) -> ImageData:
    """Each training digit replaced by a sample of the VAE decoded from a
    fresh draw z ~ q(z|x), labelled with the digit's label."""
    return _through_vae(upstream, images, config, True, "posterior samples")


@transform("vq-codes")
def vq_codes(upstream, images: ImageData, config) -> ImageData:
    """The grids of code indices that the upstream VQ-VAE gives ``images``."""
    model = upstream.model
    if model.num_codes != config.num_codes:
        raise ValueError(f"Config {config.name!r}: num_codes must equal the "
                         f"source's ({model.num_codes}), got {config.num_codes}")
    return ImageData(images.name, images.split, code_grids(model, images.images),
                     images.labels, f"code grids of {upstream.config.name} on {images.source}")
