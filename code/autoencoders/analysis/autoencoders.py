"""The computations of the Autoencoders chapter (book/autoencoders.md): three
layer types side by side, and a linear autoencoder against PCA."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import metrics
from ..cache import Run, get_or_train, load_data
from ..data import ImageData
from ..inference import reconstruct
from .picks import one_per_class

# the three autoencoders of the chapter: experiment suffix -> name in the prose
ARCHS = {"linear": "linear", "conv": "convolutional", "transformer": "transformer"}
EDGE_IMAGES = 1000  # test digits whose edge energy is compared


@dataclass
class ArchitectureComparison:
    """The three autoencoders after training, each measured on the test split
    (dicts keyed by ``ARCHS``)."""

    runs: dict[str, Run]
    train: ImageData
    test: ImageData
    params: dict[str, int]
    mse: dict[str, float]            # test mean squared error per pixel
    psnr: dict[str, float]           # dB
    images_per_second: dict[str, float]
    seconds: dict[str, float]
    last_epoch_drop_pct: dict[str, float]  # % fall of the training error in the last epoch
    order: list[str]                 # by test MSE, lowest first
    pca_mse: float                   # PCA with as many components as the code has numbers
    linear_gap_pct: float            # linear AE's test MSE above that, in %
    edge_pct: dict[str, float]       # edge energy of reconstructions, % of the originals'
                                     # (the first EDGE_IMAGES test digits)
    digits: list[int]                # one test digit per class
    reconstructions: dict[str, torch.Tensor]  # of those digits, per arch

    @property
    def config(self):
        return self.runs["linear"].config


def compare_architectures() -> ArchitectureComparison:
    """Train (or fetch) the linear, convolutional and transformer
    autoencoders and measure each on the test digits."""
    runs = {arch: get_or_train(f"ae-{arch}") for arch in ARCHS}
    config = runs["linear"].config
    train, test = load_data(config)
    m = {arch: run.metrics for arch, run in runs.items()}
    mse = {a: float(m[a]["test"]["mse"]) for a in ARCHS}
    histories = {a: [e["mse"] for e in m[a]["history"]] for a in ARCHS}
    pca_mse = metrics.pca_mse(train.images, test.images, config.latent_dim)
    digits = one_per_class(test.labels)
    x = test.floats()[digits]
    some = test.subset(EDGE_IMAGES).images  # a fixed random pick
    original_edges = metrics.edge_energy(some)
    return ArchitectureComparison(
        runs=runs, train=train, test=test,
        params={a: int(m[a]["parameters"]) for a in ARCHS},
        mse=mse,
        psnr={a: float(metrics.psnr(m[a]["test"]["mse"])) for a in ARCHS},
        images_per_second={a: float(m[a]["train_images_per_second"]) for a in ARCHS},
        seconds={a: float(m[a]["train_seconds"]) for a in ARCHS},
        last_epoch_drop_pct={a: 100 * (1 - h[-1] / h[-2]) if len(h) > 1 else float("nan")
                             for a, h in histories.items()},
        order=sorted(ARCHS, key=mse.__getitem__),
        pca_mse=pca_mse,
        linear_gap_pct=100 * (mse["linear"] / pca_mse - 1),
        edge_pct={a: 100 * metrics.edge_energy(reconstruct(runs[a].model, some)) / original_edges
                  for a in ARCHS},
        digits=digits,
        reconstructions={a: reconstruct(runs[a].model, x) for a in ARCHS},
    )


@dataclass
class PCAStudy:
    """A linear autoencoder trained long, next to PCA with as many components."""

    run: Run
    test: ImageData
    comparison: metrics.PCAComparison
    eigenvalue_ratio: float   # lambda_k / lambda_(k+1) of the training digits
    dead_pixels: int          # pixels black in every training image
    angle_tolerance: float    # degrees: every principal angle must stay below
    mse_tolerance: float      # relative difference of the test MSEs allowed
    digits: list[int]

    @property
    def max_angle(self) -> float:
        return float(self.comparison.angles.max())

    @property
    def median_angle(self) -> float:
        return float(np.median(self.comparison.angles))

    @property
    def agrees(self) -> bool:
        """Both checks of the chapter pass: every principal angle below the
        tolerance and the test errors within the relative tolerance."""
        c = self.comparison
        return bool(self.max_angle < self.angle_tolerance
                    and abs(c.relative_mse_gap) < self.mse_tolerance)


def linear_ae_vs_pca(angle_tolerance: float = 5.0, mse_tolerance: float = 0.01) -> PCAStudy:
    """Train (or fetch) the dedicated linear autoencoder ``ae-linear-pca`` and
    compare its decoder subspace and test error with PCA's."""
    run = get_or_train("ae-linear-pca")
    train, test = load_data(run.config)
    comparison = metrics.compare_with_pca(run.model, train.images, test.images)
    eig = metrics.covariance_eigenvalues(train.images)
    k = comparison.k
    return PCAStudy(
        run=run, test=test, comparison=comparison,
        eigenvalue_ratio=float(eig[k - 1] / eig[k]),
        dead_pixels=int((train.images.flatten(1).amax(0) == 0).sum()),
        angle_tolerance=angle_tolerance, mse_tolerance=mse_tolerance,
        digits=one_per_class(test.labels),
    )
