"""Codebook usage of a VQ-VAE over a whole set of code grids, and how its
neighbouring codes pair up. The counting primitives live beside the
quantizer that uses them in training."""
from __future__ import annotations

import torch

from ..models.quantizer import code_counts, codebook_perplexity, dead_codes

def codebook_usage(codes: torch.Tensor, num_codes: int) -> dict:
    """Counts, perplexity and dead codes of a whole set of code grids."""
    return {"counts": code_counts(codes, num_codes),
            "perplexity": float(codebook_perplexity(codes, num_codes)),
            "dead_codes": int(dead_codes(codes, num_codes))}


def neighbour_pairs(grids: torch.Tensor, k: int) -> torch.Tensor:
    """Every pair of horizontally or vertically adjacent codes in the code
    grids ``grids`` (N, h, w), each as one number ``first * k + second``."""
    grids = grids.long()
    across = grids[:, :, :-1] * k + grids[:, :, 1:]
    down = grids[:, :-1, :] * k + grids[:, 1:, :]
    return torch.cat([across.flatten(), down.flatten()])


def pair_bits(grids: torch.Tensor, train_codes: torch.Tensor, k: int) -> float:
    """The mean surprise, in bits, of the adjacent code pairs of ``grids``
    under the frequencies of adjacent pairs in the training grids (add-one
    smoothed over the K x K ordered pairs): low when neighbouring codes pair up
    as they do in the training grids. Unlike "was this pair ever seen", it
    does not saturate when the training grids contain every pair."""
    counts = torch.bincount(neighbour_pairs(train_codes, k), minlength=k * k).double() + 1
    bits = -torch.log2(counts / counts.sum())
    return float(bits[neighbour_pairs(grids, k)].mean())
