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


def build_model(config, image_shape, train_images: int | None = None):
    """The untrained model that ``config`` (a :class:`~autoencoders.config.Config`)
    describes; its fields reach the models under the same names, but for the
    KL warm-up, a share of the run's steps that the VAE takes as a number of
    steps: a VAE with ``config.kl_warmup`` needs ``train_images``."""
    if config.model == "ae":
        return Autoencoder(image_shape, config.latent_dim, config.arch,
                           noise_weight=config.noise_weight)
    if config.model == "vae":
        return VAE(image_shape, config.latent_dim, config.arch,
                   kl_weight=config.kl_weight, likelihood=config.likelihood,
                   noise_weight=config.noise_weight, kl_warmup=_warmup_steps(config, train_images),
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


def _warmup_steps(config, train_images: int | None) -> int:
    if config.kl_warmup and train_images is None:
        raise ValueError(f"[{config.name}] a KL warm-up is a share of the training steps: "
                         "build_model needs the number of training images")
    return config.kl_warmup_steps(train_images)
