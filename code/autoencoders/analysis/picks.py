"""Fixed picks of examples that several chapters' analyses share: one
example of each class for a figure's row. (A fixed random subset of a split
is :meth:`autoencoders.data.ImageData.subset`.)"""
from __future__ import annotations

import torch


def one_per_class(labels: torch.Tensor, which: int = 0, classes: int = 10) -> list[int]:
    """The index of the ``which``-th example (0: the first) of each class
    0 .. ``classes`` - 1 in ``labels``, in class order: a figure's row that
    shows every class once."""
    return [int((labels == c).nonzero()[which]) for c in range(classes)]
