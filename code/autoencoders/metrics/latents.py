"""Latent codes of a VAE: which units carry information about the input."""
from __future__ import annotations

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
