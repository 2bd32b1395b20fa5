"""A small convolutional digit classifier.

It serves two purposes in the book: measuring how much class information a
generative model keeps (train it on the model's reconstructions or samples,
test it on real digits), and scoring generated samples, for which
:meth:`DigitClassifier.features` gives the penultimate-layer features that a
Fréchet distance is computed from.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DigitClassifier(nn.Module):
    """Two 3x3 convolution + max-pool stages, a hidden layer of
    ``feature_dim`` units (the features) and a linear read-out to
    ``num_classes`` logits. Works for any (C, H, W) with H, W divisible by 4."""

    def __init__(self, image_shape, num_classes: int = 10, width: int = 16,
                 feature_dim: int = 128):
        """Shown in the A variational autoencoder on MNIST chapter (book/vae_mnist.md)."""
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"DigitClassifier needs H and W divisible by 4, got {h}x{w}")
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (h // 4) * (w // 4), feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations, shape (N, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (N, num_classes)."""
        return self.head(self.features(x))

    def logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both of the above from one pass through the network."""
        features = self.features(x)
        return self.head(features), features

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        if y is None:
            raise ValueError("DigitClassifier.loss_terms needs labels y")
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y),
                "accuracy": (logits.argmax(dim=1) == y).float().mean()}
