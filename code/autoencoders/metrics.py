"""Numbers computed from trained models: likelihoods in bits, image quality,
codebook usage, and how close a linear autoencoder comes to PCA.

Functions take tensors and return tensors or floats; none trains anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


# --------------------------------------------------------- nats and bits
def nats_to_bits(nats: torch.Tensor | float) -> torch.Tensor | float:
    """A log-likelihood (or its negative) in nats, converted to bits."""
    return nats / math.log(2)


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """A negative log-likelihood of one example, in nats, as bits per
    dimension (per pixel and colour channel, or per code of a code grid)."""
    return nll_nats / (dims * math.log(2))


# -------------------------------------------------------- codebook usage
def code_counts(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each of the ``num_codes`` codes occurs in ``codes`` (any
    shape of int64 indices): a tensor of K counts."""
    return torch.bincount(codes.reshape(-1), minlength=num_codes)


def codebook_perplexity(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """exp(entropy) of the codes' empirical frequencies: the number of
    equally used codes that would give the same entropy. It is K when every
    code is used equally often and 1 when a single code takes everything."""
    p = code_counts(codes, num_codes).float()
    p = p / p.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return entropy.exp()


def dead_codes(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """The number of codes that never occur in ``codes``."""
    return (code_counts(codes, num_codes) == 0).sum()


# ------------------------------------------------------- reconstructions
def psnr(mse: torch.Tensor | float, peak: float = 1.0) -> torch.Tensor | float:
    """Peak signal-to-noise ratio in dB, 10 log10(peak^2 / mse), for images
    whose pixels span [0, peak]. Higher is better; each halving of the mean
    squared error adds about 3 dB."""
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(peak ** 2 / mse)
    return 10 * math.log10(peak ** 2 / mse)


@torch.inference_mode()
def reconstruct(model: torch.nn.Module, x: torch.Tensor,
                batch_size: int = 1000) -> torch.Tensor:
    """``model(x)`` in eval mode and in batches, on the model's device; ``x``
    as uint8 images or floats in [0, 1]. Returns floats on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size].to(device)
        chunk = chunk.float() / 255.0 if chunk.dtype == torch.uint8 else chunk
        out.append(model(chunk).float().cpu())
    return torch.cat(out)


# ------------------------------------------------- linear AE versus PCA
def _flat(x: torch.Tensor) -> np.ndarray:
    """Images (uint8, or floats in [0, 1]) as float64 rows of a data matrix."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.flatten(1).cpu().numpy().astype(np.float64)


def covariance_eigenvalues(images: torch.Tensor) -> np.ndarray:
    """The eigenvalues of the data's covariance matrix, largest first (the
    variances PCA's components capture, one per component)."""
    x = _flat(images)
    x -= x.mean(axis=0)
    return np.linalg.eigvalsh(x.T @ x / len(x))[::-1]


def pca_mse(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    """Test mean squared error per pixel of PCA with ``k`` components fitted
    on ``train``: the lowest error any linear autoencoder with a ``k``-number
    code can reach on data like ``train``."""
    from sklearn.decomposition import PCA

    x_train, x_test = _flat(train), _flat(test)
    pca = PCA(n_components=k).fit(x_train)
    return float(((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2).mean())


def principal_angles(a, b) -> np.ndarray:
    """The principal angles, in degrees and ascending, between the column
    spaces of ``a`` (d x k) and ``b`` (d x l): 0 where the spaces share a
    direction, 90 where a direction of one is orthogonal to the other."""
    from scipy.linalg import subspace_angles

    a, b = (np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m,
                       dtype=np.float64) for m in (a, b))
    return np.sort(np.degrees(subspace_angles(a, b)))


@dataclass
class PCAComparison:
    """A linear autoencoder next to PCA with as many components as its code."""

    k: int
    angles: np.ndarray         # principal angles decoder columns vs PCA, degrees
    random_angles: np.ndarray  # the same for a random k-dim subspace (the scale)
    ae_mse: float                # test mean squared error per pixel
    pca_mse: float
    ae_reconstruction: torch.Tensor   # test reconstructions, shaped like the input
    pca_reconstruction: torch.Tensor

    @property
    def relative_mse_gap(self) -> float:
        """(AE MSE - PCA MSE) / PCA MSE: 0 when the AE is as good as PCA."""
        return (self.ae_mse - self.pca_mse) / self.pca_mse


def compare_with_pca(model: torch.nn.Module, train: torch.Tensor,
                     test: torch.Tensor, seed: int = 0) -> PCAComparison:
    """Fit PCA (scikit-learn) on ``train`` with as many components as the
    linear autoencoder ``model`` has code numbers, and compare the two: the
    principal angles between the decoder's column space and the PCA
    components, and both test reconstruction errors. ``train``/``test`` are
    images (uint8 or floats in [0, 1])."""
    from sklearn.decomposition import PCA

    weight = model.decoder.net.weight  # (d, k): g(z) = W z + b
    k = weight.shape[1]
    x_train, x_test = _flat(train), _flat(test)
    pca = PCA(n_components=k, random_state=seed).fit(x_train)
    pca_rec = pca.inverse_transform(pca.transform(x_test))
    ae_rec = reconstruct(model, test)
    rng = np.random.default_rng(seed)
    return PCAComparison(
        k=k,
        angles=principal_angles(weight, pca.components_.T),
        random_angles=principal_angles(rng.standard_normal(weight.shape),
                                       pca.components_.T),
        ae_mse=float(((ae_rec.flatten(1).double().numpy() - x_test) ** 2).mean()),
        pca_mse=float(((pca_rec - x_test) ** 2).mean()),
        ae_reconstruction=ae_rec,
        pca_reconstruction=torch.from_numpy(pca_rec).float().reshape(ae_rec.shape),
    )


# ------------------------------------------------------------------ VQ-VAE
def _batches(images: torch.Tensor, batch_size: int, device):
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        yield x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


@torch.inference_mode()
def code_grids(vqvae: torch.nn.Module, images: torch.Tensor,
               batch_size: int = 1000) -> torch.Tensor:
    """The code-index grids (N, h, w) a VQ-VAE assigns to ``images``, on the CPU."""
    device = next(vqvae.parameters()).device
    vqvae.eval()
    return torch.cat([vqvae.codes(x).cpu() for x in _batches(images, batch_size, device)])


def codebook_usage(codes: torch.Tensor, num_codes: int) -> dict:
    """Counts, perplexity and dead codes of a whole set of code grids."""
    return {"counts": code_counts(codes, num_codes),
            "perplexity": float(codebook_perplexity(codes, num_codes)),
            "dead_codes": int(dead_codes(codes, num_codes))}


@torch.inference_mode()
def reconstruction_sigma(model: torch.nn.Module, images: torch.Tensor,
                         batch_size: int = 1000) -> float:
    """sqrt(mean squared error) of ``model``'s reconstructions of ``images``:
    the maximum-likelihood standard deviation of a Gaussian decoder
    N(x_hat, sigma^2 I) with one sigma for every pixel."""
    device = next(model.parameters()).device
    model.eval()
    sse, count = 0.0, 0
    for x in _batches(images, batch_size, device):
        sse += float((model(x) - x).pow(2).sum())
        count += x.numel()
    return math.sqrt(sse / count)


@torch.inference_mode()
def vqvae_bits_per_dim(vqvae: torch.nn.Module, prior: torch.nn.Module,
                       images: torch.Tensor, sigma: float,
                       batch_size: int = 500) -> dict:
    """An upper bound on -log2 p(x) per dimension for a VQ-VAE with a prior.

    The encoder is deterministic (q(k|x) puts all its mass on the code grid
    k(x)), so the negative ELBO is -log p(x | k(x)) - log p(k(x)): the
    decoder's term with a discretized Gaussian N(x_hat, sigma^2) over the 256
    grey levels (see ``losses.discretized_gaussian_nll``), plus the prior's
    negative log-likelihood of the code grid. Returns the two terms in nats
    per image, the bound in bits per dimension and the prior's bits per code.
    """
    from .losses import discretized_gaussian_nll

    device = next(vqvae.parameters()).device
    vqvae.eval(), prior.eval()
    decoder_nats = prior_nats = 0.0
    for x in _batches(images, batch_size, device):
        codes = vqvae.codes(x)
        x_hat = vqvae.decode_codes(codes)
        decoder_nats += float(discretized_gaussian_nll(x_hat, x, sigma).sum())
        prior_nats += float(prior.nll(codes).sum())
    n, dims = len(images), images[0].numel()
    grid = vqvae.grid[0] * vqvae.grid[1]
    decoder_nats, prior_nats = decoder_nats / n, prior_nats / n
    return {"decoder_nats": decoder_nats, "prior_nats": prior_nats,
            "bits_per_dim": bits_per_dim(decoder_nats + prior_nats, dims),
            "decoder_bits_per_dim": bits_per_dim(decoder_nats, dims),
            "prior_bits_per_code": bits_per_dim(prior_nats, grid)}


def high_frequency_energy(images: torch.Tensor) -> float:
    """Mean squared response of images (floats in [0, 1] or uint8) to the
    discrete Laplacian, per pixel: the energy in the finest details. A blurred
    image has much less of it than a sharp one."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    c = x.shape[1]
    kernel = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])
    kernel = kernel.view(1, 1, 3, 3).repeat(c, 1, 1, 1).to(x.device)
    return float(torch.nn.functional.conv2d(x, kernel, groups=c).pow(2).mean())
