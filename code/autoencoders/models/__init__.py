"""The models, and :func:`build_model`, which makes one from a config."""
from __future__ import annotations

from .autoencoder import Autoencoder
from .vae import VAE, reparameterize
from .pixelcnn import PixelCNN
from .quantizer import VectorQuantizer
from .vqvae import VQVAE

__all__ = ["Autoencoder", "VAE", "reparameterize", "build_model",
           "VectorQuantizer", "VQVAE", "PixelCNN"]


def build_model(config, image_shape):
    """The untrained model that ``config`` (an experiments.Config) describes."""
    if config.model == "ae":
        return Autoencoder(image_shape, config.latent_dim, config.arch,
                           noise_weight=config.noise_weight)
    if config.model == "vae":
        return VAE(image_shape, config.latent_dim, config.arch,
                   kl_weight=config.kl_weight, likelihood=config.likelihood,
                   noise_weight=config.noise_weight)
    if config.model == "vqvae":
        return VQVAE(image_shape, code_dim=config.latent_dim,
                     num_codes=config.codebook_size, width=config.width,
                     res_blocks=config.depth, beta=config.commitment,
                     update=config.codebook_update, restart_dead=config.restart_dead)
    if config.model == "pixelcnn":  # image_shape: the (H, W) of the code grids
        return PixelCNN(config.codebook_size, image_shape, width=config.width,
                        layers=config.depth)
    raise ValueError(f"unknown model {config.model!r}")
