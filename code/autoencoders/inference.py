"""Batched evaluation of a model over a whole split: one helper,
:func:`apply_in_batches` (eval mode, ``torch.inference_mode``, batches moved
to the model's device, outputs gathered on the CPU), and the few uses every
chapter needs."""
from __future__ import annotations

import torch

from .data import unit_floats

def _batches(images: torch.Tensor, batch_size: int, device):
    """``images`` (uint8, or floats in [0, 1]) as float32 batches on ``device``."""
    for start in range(0, len(images), batch_size):
        yield unit_floats(images[start:start + batch_size].to(device))


def _to_cpu(t: torch.Tensor) -> torch.Tensor:
    """On the CPU; half and bfloat16 outputs (autocast) as float32, float64 kept."""
    if t.is_floating_point() and t.dtype != torch.float64:
        t = t.float()
    return t.cpu()


@torch.inference_mode()
def apply_in_batches(model: torch.nn.Module, fn, images: torch.Tensor,
                     batch_size: int = 1000):
    """``fn(x)`` for every batch ``x`` of ``images``, with ``model`` in eval
    mode and the batches (float32 in [0, 1]) on its device; the outputs (a
    tensor or a tuple of tensors) concatenated on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    parts = [fn(x) for x in _batches(images, batch_size, device)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat([_to_cpu(t) for t in column]) for column in zip(*parts))
    return torch.cat([_to_cpu(t) for t in parts])


def reconstruct(model: torch.nn.Module, x: torch.Tensor,
                batch_size: int = 1000) -> torch.Tensor:
    """``model(x)`` in eval mode and in batches, on the model's device; ``x``
    as uint8 images or floats in [0, 1]. Returns floats on the CPU."""
    return apply_in_batches(model, model, x, batch_size)


def encode(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000):
    """``model.encode(x)`` in eval mode and in batches, on the model's device;
    ``x`` as uint8 images or floats in [0, 1]. Returns CPU floats: the codes
    (N, k) of an autoencoder, or the pair (mu, logvar) of a VAE."""
    return apply_in_batches(model, model.encode, x, batch_size)


def code_grids(vqvae: torch.nn.Module, images: torch.Tensor,
               batch_size: int = 1000) -> torch.Tensor:
    """The code-index grids (N, h, w) a VQ-VAE assigns to ``images``, on the CPU."""
    return apply_in_batches(vqvae, vqvae.codes, images, batch_size)


@torch.inference_mode()
def prior_samples(model: torch.nn.Module, n: int, latent_dim: int, *, seed: int = 0,
                  mean: torch.Tensor | None = None,
                  cov: torch.Tensor | None = None) -> torch.Tensor:
    """Decode ``n`` codes drawn from N(0, I) (or from N(mean, cov) when given)
    with ``model.decode``: samples of a VAE, or what an autoencoder's decoder
    makes of the same draws. Returns CPU floats."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent_dim, generator=gen, dtype=torch.float64)
    if cov is not None:
        z = z @ torch.linalg.cholesky(torch.as_tensor(cov, dtype=torch.float64)).T
    if mean is not None:
        z = z + torch.as_tensor(mean, dtype=torch.float64)
    return apply_in_batches(model, model.decode, z)
