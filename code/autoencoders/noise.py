"""The noise model of the denoising experiments.

``corrupt(x, w)`` returns ``clip(x + w * e, 0, 1)`` with ``e ~ N(0, 1)`` drawn
independently per pixel: additive Gaussian noise of standard deviation ``w``
(in units of the pixel range), clipped back to valid intensities.
"""
from __future__ import annotations

import torch


def corrupt(x: torch.Tensor, weight: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` (values in [0, 1]) plus Gaussian noise of std ``weight``, clipped.

    Shown in the Ablations chapter (book/ablations.md).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"noise weight must lie in [0, 1], got {weight}")
    if weight == 0.0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + weight * noise).clamp_(0.0, 1.0)
