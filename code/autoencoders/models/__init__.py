"""The models, and :func:`build_model`, which makes one from a config."""
from __future__ import annotations

from .autoencoder import Autoencoder
from .vae import VAE, reparameterize

__all__ = ["Autoencoder", "VAE", "reparameterize", "build_model"]


def build_model(config, image_shape):
    """The untrained model that ``config`` (an experiments.Config) describes."""
    if config.model == "ae":
        return Autoencoder(image_shape, config.latent_dim, config.arch,
                           noise_weight=config.noise_weight)
    if config.model == "vae":
        return VAE(image_shape, config.latent_dim, config.arch,
                   kl_weight=config.kl_weight, likelihood=config.likelihood,
                   noise_weight=config.noise_weight)
    raise ValueError(f"unknown model {config.model!r}")
