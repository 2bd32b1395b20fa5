"""Build-time checks of the autoencoders chapter's PCA numbers
(:mod:`autoencoders.metrics.pca`), on small synthetic data with a known
answer: PCA's error is the sum of the discarded covariance eigenvalues
(Eckart-Young), and a linear autoencoder trained from a random start
reaches PCA's error and spans the principal subspace (principal angles of
zero between its decoder and the PCA components; Baldi and Hornik)."""
from __future__ import annotations

import math

from .checks import _require, _require_close


def _images(seed: int = 2):
    import torch

    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([1.0, 0.8, 0.5, 0.2, 0.1, 0.05], dtype=torch.float64)
    mix = torch.randn(6, 6, generator=g, dtype=torch.float64) * scales
    x = (0.5 + 0.08 * torch.randn(300, 6, generator=g, dtype=torch.float64) @ mix.T).clamp(0, 1)
    return x.float().view(300, 1, 2, 3)


def pca_check(k: int = 2) -> dict:
    """On 300 six-pixel images: the eigenvalues of their covariance are
    numpy's (largest first); PCA's test error per pixel on its own training
    data is the sum of the discarded eigenvalues over D; its reconstructions
    are the projections onto numpy's top singular vectors; a linear
    autoencoder trained from a random start (L-BFGS) has PCA's error and
    reconstructions, and principal angles of 0 degrees to the PCA components
    (and 90 degrees between orthogonal subspaces)."""
    import numpy as np
    import torch

    from ..losses import mean_squared_error
    from ..metrics.pca import compare_with_pca, covariance_eigh, pca_mse, principal_angles
    from ..models.autoencoder import Autoencoder

    images = _images()
    flat = images.flatten(1).double().numpy()
    D = flat.shape[1]
    mean, vals, vecs = covariance_eigh(images)
    ref = np.sort(np.linalg.eigvalsh(np.cov(flat.T, bias=True)))[::-1]
    _require_close(vals, ref, "covariance eigenvalues, largest first", "thm-ae-pca",
                   rtol=1e-9, atol=1e-15)
    _require_close(mean, flat.mean(0), "the data mean", "thm-ae-pca", rtol=1e-12)
    err = pca_mse(images, images, k)
    _require_close(err, vals[k:].sum() / D, "PCA error = sum of the discarded eigenvalues",
                   "thm-ae-pca", rtol=1e-6)

    # PCA's reconstructions by numpy's SVD of the centred data (not sklearn's
    # PCA, not the eigendecomposition above)
    centred = flat - flat.mean(0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:k].T          # (D, k)
    svd_rec = centred @ top @ top.T + flat.mean(0)
    # a linear autoencoder trained from its random start (L-BFGS on the full
    # batch, the package's own loss) to the minimum of its loss
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Autoencoder((1, 2, 3), k, arch="linear").double()
    data = images.double()
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-15, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = model.loss_terms(data)["loss"]
        loss.backward()
        return loss
    opt.step(closure)
    model = model.float()                       # as the package's models are
    cmp = compare_with_pca(model, images, images)
    name = "a trained linear AE spans the principal subspace (Baldi and Hornik)"
    _require(float(np.max(cmp.angles)) < 0.05, name, "thm-ae-pca",
             f"principal angles {cmp.angles} (a random subspace: {cmp.random_angles})")
    _require_close(cmp.ae_mse, err, "a trained linear AE reaches PCA's error", "thm-ae-pca",
                   rtol=1e-3)
    _require_close(cmp.pca_mse, vals[k:].sum() / D,
                   "compare_with_pca's PCA error = sum of the discarded eigenvalues", "thm-ae-pca",
                   rtol=1e-6)
    _require_close(cmp.pca_reconstruction, svd_rec.reshape(images.shape),
                   "compare_with_pca's PCA reconstructions (numpy SVD)", "thm-ae-pca",
                   rtol=0, atol=1e-6)
    _require_close(cmp.ae_reconstruction, cmp.pca_reconstruction,
                   "a trained linear AE reconstructs like PCA", "thm-ae-pca", rtol=0, atol=1e-3)
    with torch.no_grad():
        terms = model.loss_terms(images)
        per_pixel = float(mean_squared_error(model(images), images).mean())
    _require_close(float(terms["mse"]), cmp.ae_mse, "the autoencoder's loss per pixel",
                   "eq-ae-loss", rtol=1e-4)
    _require_close(per_pixel, cmp.ae_mse, "mean squared error per pixel", "eq-ae-loss", rtol=1e-4)
    e = np.eye(4)
    angles = principal_angles(e[:, :2], e[:, 2:])
    _require_close(angles, [90.0, 90.0], "principal angles between orthogonal subspaces = 90 degrees",
                   "fig-pca-angles", rtol=1e-9)
    tilted = principal_angles(e[:, :1], (e[:, :1] + e[:, 1:2]) / math.sqrt(2))
    _require_close(tilted, [45.0], "principal angle between a line and its 45-degree tilt",
                   "fig-pca-angles", rtol=1e-9)
    return {"pca_mse": err, "angles": cmp.angles.tolist()}
