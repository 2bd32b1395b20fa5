"""The models, and :func:`build_model`, which makes one from a config."""
from __future__ import annotations

from .autoencoder import Autoencoder
from .vae import VAE, reparameterize
from .pixelcnn import PixelCNN
from .quantizer import VectorQuantizer
from .vqvae import VQVAE
from .classifier import DigitClassifier
from .discrete_vae import DiscreteVAE

__all__ = ["Autoencoder", "VAE", "reparameterize", "build_model",
           "VectorQuantizer", "VQVAE", "PixelCNN", "DigitClassifier", "DiscreteVAE"]


def build_model(config, image_shape):
    """The untrained model that ``config`` (a :class:`~autoencoders.config.Config`)
    describes; its fields reach the models under the same names."""
    if config.model == "ae":
        return Autoencoder(image_shape, config.latent_dim, config.arch,
                           noise_weight=config.noise_weight)
    if config.model == "vae":
        return VAE(image_shape, config.latent_dim, config.arch,
                   kl_weight=config.kl_weight, likelihood=config.likelihood,
                   noise_weight=config.noise_weight, kl_warmup=config.kl_warmup,
                   free_bits=config.free_bits)
    if config.model == "vqvae":
        return VQVAE(image_shape, latent_dim=config.latent_dim,
                     num_codes=config.num_codes, width=config.width,
                     depth=config.depth, commitment=config.commitment,
                     codebook_update=config.codebook_update, restart_dead=config.restart_dead,
                     codebook_init=config.codebook_init, downsample=config.downsample)
    if config.model == "pixelcnn":  # image_shape: the (H, W) of the code grids
        return PixelCNN(config.num_codes, image_shape, width=config.width,
                        depth=config.depth)
    if config.model == "classifier":
        return DigitClassifier(image_shape)
    if config.model == "discrete_vae":
        return DiscreteVAE(image_shape, config.latent_dim, config.categories, config.arch,
                           estimator=config.estimator, temperature=config.temperature,
                           usage_weight=config.usage_weight, samples=config.samples)
    raise ValueError(f"unknown model {config.model!r}")
