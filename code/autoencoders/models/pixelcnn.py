"""A PixelCNN prior over grids of code indices (van den Oord et al., 2016).

It models a grid k of H x W code indices autoregressively, in raster order
(row by row, left to right):

    p(k) = prod_i p(k_i | k_1, ..., k_{i-1}).

Masked convolutions make this one network pass: every layer sees only
positions before the current one, so the logits at position i depend only
on k_1 ... k_{i-1}. This is the plain PixelCNN (stacked masked convolutions,
residual connections); it has the well-known "blind spot" (a wedge above and
to the right of each position that no stack of masked kernels reaches), which
the gated PixelCNN's two stacks remove.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import nats_to_bits


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel sees only positions before the centre.

    Mask type "A" also hides the centre (used once, on the input, so a
    position never sees its own value); type "B" lets it through (used
    after, where the centre holds features computed from earlier positions).

    Shown in the Generating with a VQ-VAE, and three bottlenecks compared chapter (book/vqvae_generation.md).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int, mask_type: str):
        if mask_type not in ("A", "B") or kernel_size % 2 == 0:
            raise ValueError("mask_type must be 'A' or 'B', kernel_size odd")
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.ones(kernel_size, kernel_size)
        # centre row: zero right of the centre (type A: the centre too)
        mask[c, c + (mask_type == "B"):] = 0
        mask[c + 1:, :] = 0                 # zero every row below it
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias,
                        padding=self.padding)


class MaskedResidualBlock(nn.Module):
    """x + conv1x1(relu(masked3x3_B(relu(x)))); 1x1 convolutions mix channels
    at one position only, so they keep the ordering."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), MaskedConv2d(width, width, 3, "B"),
                                 nn.ReLU(), nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """Categorical distribution over ``num_codes`` values at each position of
    a ``grid`` (H, W) of code indices."""

    def __init__(self, num_codes: int, grid: tuple[int, int], width: int = 64,
                 depth: int = 6):
        super().__init__()
        self.num_codes, self.grid = num_codes, tuple(grid)
        self.embed = nn.Embedding(num_codes, width)
        self.first = MaskedConv2d(width, width, 5, "A")
        self.blocks = nn.Sequential(*[MaskedResidualBlock(width) for _ in range(depth)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 1), nn.ReLU(),
                                  nn.Conv2d(width, num_codes, 1))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (N, K, H, W) for code grids (N, H, W): those at position i
        are a function of the codes before i only."""
        h = self.embed(codes).permute(0, 3, 1, 2)      # (N, width, H, W)
        return self.head(self.blocks(self.first(h)))

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """-log p(k) per grid, in nats."""
        return F.cross_entropy(self(codes), codes, reduction="none").flatten(1).sum(1)

    def loss_terms(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        per_code = self.nll(codes) / codes[0].numel()      # nats per code
        return {"loss": per_code.mean(),
                "bits_per_code": nats_to_bits(per_code.mean())}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """``n`` code grids drawn position by position in raster order: one
        network pass per position, each reading the codes drawn so far.
        ``temperature`` divides the logits (below 1: sharper); 0 takes the
        most likely code at every position (greedy argmax, no randomness).
        Shown in the Questions readers ask chapter (book/questions.md)."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        device = next(self.parameters()).device
        h, w = self.grid
        codes = torch.zeros(n, h, w, dtype=torch.long, device=device)
        for i in range(h):
            for j in range(w):
                logits = self(codes)[:, :, i, j]
                if temperature == 0:
                    codes[:, i, j] = logits.argmax(dim=1)
                    continue
                probs = torch.softmax(logits / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return codes
