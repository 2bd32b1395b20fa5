"""Latent codes: which units of a VAE carry information about the input, and
codes laid out in two dimensions (PCA, t-SNE) for a scatter plot."""
from __future__ import annotations

import numpy as np
import torch


def unit_activity(mu: torch.Tensor) -> torch.Tensor:
    """The activity of each latent unit u, Var_x( E_q[z_u | x] ): how much the
    posterior mean of z_u moves from one input to the next (``mu``: posterior
    means, one row per input). A unit whose posterior is the prior for every
    input has activity 0."""
    return mu.double().var(dim=0, unbiased=True)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of latent units with activity (:func:`unit_activity`) above
    ``threshold``, the count of Burda, Grosse and Salakhutdinov (2016). The
    prior's variance is 1, so 0.01 means the posterior mean moves by a tenth
    of the prior's standard deviation across inputs."""
    return int((unit_activity(mu) > threshold).sum())


def project_2d(codes, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Codes (rows) as 2-D points: themselves when they are 2-D already,
    else their first two principal components (``"pca"``) or a t-SNE
    embedding (``"tsne"``), both from scikit-learn."""
    x = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes,
                   dtype=np.float64)
    if x.shape[1] == 2:
        return x
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE
        return TSNE(n_components=2, init="pca", perplexity=30.0,
                    random_state=seed).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
