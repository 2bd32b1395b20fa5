"""PCA and the linear models it solves: how close a linear autoencoder
comes to PCA, and probabilistic PCA as a linear-Gaussian decoder with
closed-form expectations (the score-function chapter's test case)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..inference import reconstruct

def _flat(x: torch.Tensor) -> np.ndarray:
    """Images (uint8, or floats in [0, 1]) as float64 rows of a data matrix
    (grey levels divided by 255 in float64)."""
    x = x.detach().cpu()
    x = x.double() / 255.0 if x.dtype == torch.uint8 else x.double()
    return x.flatten(1).numpy()


def covariance_eigh(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The data's mean, and the eigenvalues (largest first) and eigenvectors
    (columns, in the same order) of its covariance matrix (float64, divided
    by N): the variances PCA's components capture and their directions."""
    x = _flat(images)
    mean = x.mean(axis=0)
    x -= mean
    vals, vecs = np.linalg.eigh(x.T @ x / len(x))
    return mean, vals[::-1], vecs[:, ::-1]


def covariance_eigenvalues(images: torch.Tensor) -> np.ndarray:
    """The eigenvalues of the data's covariance matrix, largest first (the
    variances PCA's components capture, one per component)."""
    return covariance_eigh(images)[1]


def pca_reconstruct(train: torch.Tensor, test: torch.Tensor, k: int) -> torch.Tensor:
    """``test``'s reconstructions by PCA with ``k`` components fitted on
    ``train`` (images, uint8 or floats in [0, 1]): float64, shaped like
    ``test``, not clipped to [0, 1]. PCA uses an exact solver (the
    covariance's eigendecomposition, which is fast for many images of a few
    thousand pixels): scikit-learn's default picks a randomized one for,
    e.g., 5,000 MNIST digits and k = 32, whose subspace was off by up to 5.4
    degrees there, so its training error was not quite the minimum it
    stands for."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, svd_solver="covariance_eigh").fit(_flat(train))
    return torch.from_numpy(pca.inverse_transform(pca.transform(_flat(test)))).reshape(test.shape)


def pca_mse(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    """Mean squared error per pixel on ``test`` of PCA with ``k`` components
    fitted on ``train``. With ``test`` = ``train`` it is the lowest error any
    linear autoencoder with a ``k``-number code can reach on ``train``; on
    other data PCA is a yardstick, not a bound (it is optimal only on the
    data it was fitted to)."""
    rec = pca_reconstruct(train, test, k).flatten(1).numpy()
    return float(((rec - _flat(test)) ** 2).mean())


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
    images (uint8 or floats in [0, 1]). PCA uses the exact (full SVD) solver:
    scikit-learn's default picks a randomized one for, e.g., 5,000 MNIST
    digits, whose subspace was off by 0.49 degrees there, about half the
    largest angle measured. ``seed`` draws the random subspace."""
    from sklearn.decomposition import PCA

    weight = model.decoder.net.weight  # (d, k): g(z) = W z + b
    k = weight.shape[1]
    x_train, x_test = _flat(train), _flat(test)
    pca = PCA(n_components=k, svd_solver="full").fit(x_train)
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


@dataclass
class LinearGaussianDecoder:
    """p(x|z) = N(x; W z + b, c I): a linear decoder with isotropic noise,
    for which E_q[log p(x|z)] and its gradient have closed forms.

    ``W`` is (D, d), ``b`` is (D,), ``c`` > 0. The objective for one image x
    depends on z only through W^T W and W^T (x - b), so evaluating it for a
    million draws costs O(d^2) each, not O(D d)."""

    W: torch.Tensor
    b: torch.Tensor
    c: float

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    def log_prob(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """z (..., d) -> log p(x|z) (...) for the one image x (D,)."""
        r = (x.reshape(-1) - self.b).to(self.W.dtype)
        gram, proj, rr = self.W.T @ self.W, self.W.T @ r, r @ r
        const = -0.5 * r.numel() * math.log(2 * math.pi * self.c)

        def f(z: torch.Tensor) -> torch.Tensor:
            sq = rr - 2 * (z @ proj) + ((z @ gram) * z).sum(dim=-1)  # ||r - W z||^2
            return const - sq / (2 * self.c)
        return f

    def expected_log_prob(self, x, mu, sigma) -> float:
        """E_{z ~ N(mu, diag sigma^2)}[log p(x|z)], exactly."""
        r = x.reshape(-1) - self.b
        resid = r - self.W @ mu
        spread = (sigma ** 2 * (self.W ** 2).sum(dim=0)).sum()
        return float(-0.5 * r.numel() * math.log(2 * math.pi * self.c)
                     - (resid @ resid + spread) / (2 * self.c))

    def exact_gradient(self, x, mu, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact gradient of :meth:`expected_log_prob` with respect to
        mu, W^T (x - b - W mu) / c, and to sigma, -sigma_j ||W_j||^2 / c."""
        r = x.reshape(-1) - self.b
        return self.W.T @ (r - self.W @ mu) / self.c, -sigma * (self.W ** 2).sum(dim=0) / self.c

    def posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviations of the exact posterior p(z|x) under the
        prior N(0, I): N(M^-1 W^T (x - b), c M^-1) with M = W^T W + c I
        (diagonal when the columns of W are orthogonal, as in PPCA)."""
        m = self.W.T @ self.W + self.c * torch.eye(self.latent_dim, dtype=self.W.dtype)
        mean = torch.linalg.solve(m, self.W.T @ (x.reshape(-1) - self.b))
        return mean, torch.sqrt(self.c * torch.diagonal(torch.linalg.inv(m)))


def probabilistic_pca(images: torch.Tensor, latent_dim: int) -> LinearGaussianDecoder:
    """The maximum-likelihood probabilistic PCA decoder (Tipping & Bishop):
    c is the mean of the discarded covariance eigenvalues, W = U (L - c I)^(1/2)
    with U, L the leading eigenvectors and eigenvalues, b the data mean.
    ``images`` are uint8 or floats in [0, 1]; returns float64 tensors."""
    mean, vals, vecs = covariance_eigh(images)
    c = float(vals[latent_dim:].mean())
    W = vecs[:, :latent_dim] * np.sqrt(np.maximum(vals[:latent_dim] - c, 0.0))
    return LinearGaussianDecoder(torch.from_numpy(W.copy()), torch.from_numpy(mean), c)


@dataclass
class LinearOptimum:
    """The best linear-Gaussian VAE for a decoder variance ``c`` (probabilistic
    PCA with its noise fixed at c): which units it keeps and what they buy."""

    c: float
    eigenvalues: np.ndarray  # the data covariance's, largest first
    active: int              # units kept: eigenvalues above c
    rate: float              # its KL, nats per image: sum over kept units of log(lambda / c) / 2
    mse: float               # per pixel, decoding the posterior mean on the data it was fitted to
    mean_image_mse: float    # per pixel, the code-free optimum (the data's mean image)
    sampled_mse: float       # per pixel, decoding one code sampled from each posterior (same data)


def linear_vae_optimum(images: torch.Tensor, c: float,
                       eigh: tuple | None = None) -> LinearOptimum:
    """For data ``images`` and a Gaussian decoder of variance ``c`` per pixel:
    the optimum of the linear VAE is probabilistic PCA with noise c (the ELBO
    is tight there, since the exact posterior is Gaussian with a diagonal
    covariance). Along an eigen-direction of variance lambda it keeps a unit
    exactly when lambda > c, with weight sqrt(lambda - c); the posterior of
    that unit is N(sqrt(lambda - c) u'r / lambda, c / lambda), whose KL from
    N(0, 1), averaged over the data, is log(lambda / c) / 2 nats, and decoding
    its mean leaves a residual of variance c^2 / lambda along u (lambda where
    no unit is kept). Decoding a code sampled from that posterior adds the
    sampling's variance (lambda - c) c / lambda along u, so the residual
    there is c: the sampled-code error, as a VAE's training sees it.
    ``eigh``: :func:`covariance_eigh` of ``images`` when the caller already
    has it (it is most of the cost for CIFAR-10)."""
    if not c > 0:
        raise ValueError(f"the decoder variance c must be > 0, got {c!r}")
    _, vals, _ = covariance_eigh(images) if eigh is None else eigh
    vals = np.clip(vals, 0.0, None)
    kept = vals > c
    residual = np.where(kept, c ** 2 / np.where(kept, vals, 1.0), vals)
    sampled = np.where(kept, c, vals)  # c^2 / lambda + (lambda - c) c / lambda = c
    return LinearOptimum(c=float(c), eigenvalues=vals, active=int(kept.sum()),
                         rate=float(0.5 * np.log(vals[kept] / c).sum()),
                         mse=float(residual.sum() / len(vals)),
                         mean_image_mse=float(vals.sum() / len(vals)),
                         sampled_mse=float(sampled.sum() / len(vals)))

