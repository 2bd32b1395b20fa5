"""The vector quantizer: the discrete bottleneck of the VQ-VAE.

A codebook holds K vectors e_1 ... e_K in R^d (the *latent embedding space*).
The encoder produces a grid of vectors z_e, one per position (the *latent
feature space*); each is replaced by its nearest codebook vector,

    k = argmin_j ||z_e - e_j||,    z_q = e_k,

and the decoder sees z_q. The argmin has no gradient, so the decoder's
gradient is copied to the encoder with the straight-through estimator
z_e + sg(z_q - z_e). The codebook learns either from the codebook loss
||sg(z_e) - e||^2 (``update="loss"``) or from exponential moving averages of
the encoder outputs assigned to each code (``update="ema"``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..config import CODEBOOK_INITS, CODEBOOK_UPDATES

UPDATES = CODEBOOK_UPDATES
INITS = CODEBOOK_INITS


def code_counts(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each of the ``num_codes`` codes occurs in ``codes`` (any
    shape of int64 indices): a tensor of K counts."""
    flat = codes.reshape(-1)
    # index_add_, not torch.bincount: bincount reads the largest index back to
    # the host, which on CUDA stops the training loop at every step
    return torch.zeros(num_codes, dtype=torch.long, device=flat.device).index_add_(
        0, flat, torch.ones_like(flat))


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


@torch.no_grad()
def kmeans(points: torch.Tensor, k: int, iterations: int = 10) -> torch.Tensor:
    """``k`` centroids of the rows of ``points`` (M, d) by Lloyd's algorithm,
    started from ``k`` distinct random rows (drawn from torch's global
    generator; with replacement if M < k). A centroid that loses all its
    points keeps its place."""
    m = len(points)
    pick = torch.randperm(m, device=points.device)[:k] if m >= k else \
        torch.randint(m, (k,), device=points.device)
    centroids = points[pick].clone()
    for _ in range(iterations):
        assign = (points.pow(2).sum(1, keepdim=True) - 2 * points @ centroids.t()
                  + centroids.pow(2).sum(1)).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
    return centroids


class Quantized(NamedTuple):
    """What :meth:`VectorQuantizer.forward` returns (tensors are per example)."""

    z_q: torch.Tensor          # decoder input, (N, d, H, W): z_e + sg(e_k - z_e)
    codes: torch.Tensor        # chosen code indices k, (N, H, W), int64
    codebook_loss: torch.Tensor    # ||sg(z_e) - e_k||^2 per example, (N,)
    commitment_loss: torch.Tensor  # ||z_e - sg(e_k)||^2 per example, (N,)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization of a grid of d-dimensional vectors.

    ``num_codes`` is K and ``code_dim`` is d. With ``update="ema"`` the
    codebook is not trained by the optimiser but set, after each training
    step's assignment, to a moving average (``decay``) of the encoder vectors
    that chose each code. With ``restart_dead=True`` a code that no encoder
    vector has chosen for ``patience`` training steps is moved onto a random
    encoder output of the current batch, so that it gets chosen again.
    With ``init="kmeans"`` the codebook is replaced, at the first training
    step, by the k-means centroids of that batch's encoder outputs.
    """

    def __init__(self, num_codes: int, code_dim: int, update: str = "loss",
                 decay: float = 0.99, restart_dead: bool = False,
                 patience: int = 20, eps: float = 1e-5, init: str = "uniform"):
        super().__init__()
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        if init == "kmeans":  # saved with the model: a resumed run does not redo it
            self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self._kmeans_started = False  # the buffer's value, once read (see _kmeans_start_pending)
        self.register_load_state_dict_post_hook(
            lambda module, _: setattr(module, "_kmeans_started", False))
        self.num_codes, self.code_dim, self.update = num_codes, code_dim, update
        self.decay, self.restart_dead, self.patience, self.eps = decay, restart_dead, patience, eps
        # The codebook: row j is e_j. Small uniform start (as in the paper's code).
        self.codebook = nn.Parameter(
            torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes),
            requires_grad=(update == "loss"))
        # Training steps since each code was last chosen (to find dead codes),
        # and, for the EMA update, moving averages of counts and vector sums.
        self.register_buffer("idle_steps", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("restarts_total", torch.zeros((), dtype=torch.long))
        # codes restarted at the last training step: a tensor on the model's
        # device, logged with the loss terms (not saved with the model)
        self.register_buffer("last_restarts", torch.zeros((), dtype=torch.long),
                             persistent=False)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", self.codebook.detach().clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat`` (M, d),
        from all M x K distances ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2.

        Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
        e = self.codebook
        distances = (flat.pow(2).sum(1, keepdim=True)
                     - 2 * flat @ e.t()
                     + e.pow(2).sum(1))
        return distances.argmin(dim=1)

    def forward(self, z_e: torch.Tensor) -> Quantized:
        """Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
        n, d, h, w = z_e.shape
        # One row per grid position: (N, d, H, W) -> (N*H*W, d).
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        if self.training and self._kmeans_start_pending():
            self._kmeans_init(flat.detach())
        if self.training and self.restart_dead:
            self._restart_dead_codes(flat.detach())
        with torch.no_grad():
            codes = self.nearest(flat)       # k for every position
        # e_k for every position, put back into the grid: (N, d, H, W).
        e_k = F.embedding(codes, self.codebook)
        e_k = e_k.view(n, h, w, d).permute(0, 3, 1, 2)
        if self.training:
            self._track_usage(codes)
            if self.update == "ema":
                self._ema_update(flat.detach(), codes)
        # Straight-through: the value is e_k, the gradient goes
        # to z_e unchanged.
        z_q = z_e + (e_k - z_e).detach()
        return Quantized(z_q=z_q, codes=codes.view(n, h, w),
                         codebook_loss=losses.codebook_loss(z_e, e_k),
                         commitment_loss=losses.commitment_loss(z_e, e_k))

    @torch.no_grad()
    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """The grid of code vectors (N, d, H, W) for a grid of indices (N, H, W):
        what the decoder needs to turn sampled codes into an image."""
        return F.embedding(codes, self.codebook).permute(0, 3, 1, 2)

    # ------------------------------------------------------- training upkeep
    @torch.no_grad()
    def _track_usage(self, codes: torch.Tensor) -> None:
        used = code_counts(codes, self.num_codes) > 0
        self.idle_steps.add_(1).masked_fill_(used, 0)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        """N_j <- g N_j + (1-g) n_j
        m_j <- g m_j + (1-g) (sum of the z_e that chose code j)
        e_j <- m_j / N_j   (N_j smoothed: an unused code must not divide by 0)

        Shown in the Vector-quantised VAEs chapter (book/vqvae.md).
        """
        flat = flat.to(self.codebook.dtype)  # float32 averages, also under bfloat16 autocast
        g, k = self.decay, self.num_codes
        one_hot = F.one_hot(codes, k).to(flat.dtype)          # (M, K)
        self.ema_count.mul_(g).add_(one_hot.sum(0), alpha=1 - g)
        self.ema_sum.mul_(g).add_(one_hot.t() @ flat, alpha=1 - g)
        total = self.ema_count.sum()
        n = (self.ema_count + self.eps) / (total + k * self.eps) * total
        self.codebook.copy_(self.ema_sum / n.unsqueeze(1))

    def _kmeans_start_pending(self) -> bool:
        """Whether a ``kmeans`` codebook still waits for its start. The
        buffer (saved with the model) is read from the device once; after
        that the answer is kept on the host, so a GPU does not wait for this
        read at every step."""
        if self.init != "kmeans" or self._kmeans_started:
            return False
        self._kmeans_started = bool(self.initialised)
        return not self._kmeans_started

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        """Put the K code vectors on the k-means centroids of ``flat``, the
        first training batch's encoder outputs, so that every code starts
        where some encoder outputs are.
        Shown in the Questions readers ask chapter (book/questions.md)."""
        centroids = kmeans(flat, self.num_codes)
        self.codebook.copy_(centroids)
        self.ema_sum.copy_(centroids * self.ema_count.unsqueeze(1))
        self.initialised.fill_(True)
        self._kmeans_started = True

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        """Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
        dead = self.idle_steps >= self.patience  # (K,): True if idle
        flat = flat.to(self.codebook.dtype)  # float32 under autocast too
        # The i-th dead code moves onto the batch's encoder output
        # order[i]: a random one, and distinct from the other dead
        # codes' while the batch has enough outputs (two codes on one
        # vector would leave one of them idle). Masks, not indices:
        # nothing is read back to the host, so a GPU never waits here.
        order = torch.randperm(len(flat), device=flat.device)
        i = (dead.cumsum(0) - 1).clamp_min(0) % len(flat)
        moved = dead.unsqueeze(1)
        self.codebook.copy_(torch.where(moved, flat[order[i]], self.codebook))
        # for the moving averages, the code starts afresh: a count of 1 and
        # a sum equal to its new place (else the next update would pull it
        # back to where the old averages say it was)
        self.ema_sum.copy_(torch.where(moved, flat[order[i]], self.ema_sum))
        self.ema_count.masked_fill_(dead, 1.0)
        self.idle_steps.masked_fill_(dead, 0)
        self.last_restarts.copy_(dead.sum())
        self.restarts_total += self.last_restarts
