"""Codebook usage of a VQ-VAE over a whole set of code grids. The
counting primitives live beside the quantizer that uses them in training."""
from __future__ import annotations

import torch

from ..models.quantizer import code_counts, codebook_perplexity, dead_codes

def codebook_usage(codes: torch.Tensor, num_codes: int) -> dict:
    """Counts, perplexity and dead codes of a whole set of code grids."""
    return {"counts": code_counts(codes, num_codes),
            "perplexity": float(codebook_perplexity(codes, num_codes)),
            "dead_codes": int(dead_codes(codes, num_codes))}
