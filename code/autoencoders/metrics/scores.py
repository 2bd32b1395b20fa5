"""Scores of images and codes: PSNR and edge energy of reconstructions,
a classifier's judgement of samples (accuracy, classifier score, Fréchet
distance in its features), and how a discrete code lines up with labels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..data import unit_floats
from ..inference import apply_in_batches, reconstruct
from ..losses import mean_squared_error

def psnr(mse: torch.Tensor | float, peak: float = 1.0) -> torch.Tensor | float:
    """Peak signal-to-noise ratio in dB, 10 log10(peak^2 / mse), for images
    whose pixels span [0, peak]. Higher is better; each halving of the mean
    squared error adds about 3 dB."""
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(peak ** 2 / mse)
    return 10 * math.log10(peak ** 2 / mse)


def reconstruction_mse(model: torch.nn.Module, inputs: torch.Tensor,
                       target: torch.Tensor | None = None) -> float:
    """Mean squared error per pixel of ``model``'s reconstructions of
    ``inputs`` against ``target`` (default: the inputs themselves, as floats
    in [0, 1]); a VAE decodes its posterior mean."""
    target = unit_floats(inputs if target is None else target)
    return float(mean_squared_error(reconstruct(model, inputs), target).mean())


def reconstruction_scores(model: torch.nn.Module, images: torch.Tensor) -> dict[str, float]:
    """``mse`` per pixel of ``model``'s reconstructions of ``images``,
    ``edge_kept``, the % of the images' edge energy they keep,
    ``mean_output``, their mean pixel (0: an output stuck at black), and
    ``output_spread``, each pixel's standard deviation across the
    reconstructions, averaged over the pixels (0: one output for every
    input); one pass."""
    x, x_hat = unit_floats(images), reconstruct(model, images)
    return {"mse": float(mean_squared_error(x_hat, x).mean()),
            "edge_kept": 100 * edge_energy(x_hat) / edge_energy(x),
            "mean_output": float(x_hat.mean()),
            "output_spread": float(x_hat.double().std(dim=0).mean()) if len(x_hat) > 1 else 0.0}


def edge_energy(images: torch.Tensor) -> float:
    """Mean squared difference between horizontally and vertically adjacent
    pixels of images (floats in [0, 1] or uint8), summed over the two
    directions: the energy in edges and fine texture. Blurring an image
    lowers it; the ratio for a reconstruction and its original says how much
    of the original's detail survived."""
    x = unit_floats(images)
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return float(dx.pow(2).mean() + dy.pow(2).mean())


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance matrix (float64) of ``features`` (rows =
    examples): the Gaussian that a Fréchet distance compares."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor)
                   else features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """The Fréchet (2-Wasserstein) distance, squared, between N(mu1, cov1)
    and N(mu2, cov2):

        ||mu1 - mu2||^2 + tr( cov1 + cov2 - 2 (cov1 cov2)^{1/2} ),

    with the matrix square root from ``scipy.linalg.sqrtm``. This is the
    formula of the FID of Heusel et al. (2017), here applied to whichever
    features the caller provides.

    Shown in the Ablations chapter (book/ablations.md).
    """
    import warnings

    from scipy.linalg import LinAlgWarning, sqrtm

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", LinAlgWarning)
            root = sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(root)):
            raise LinAlgWarning("non-finite square root")
    except LinAlgWarning:
        # a singular product (e.g. a feature that never varies): add a tiny
        # multiple of the identity to both covariances, as FID code does
        eps = 1e-6 * max(np.trace(cov1), np.trace(cov2), 1.0) / len(cov1) * np.eye(len(cov1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LinAlgWarning)
            root = sqrtm((cov1 + eps) @ (cov2 + eps))
    # roundoff can leave tiny imaginary parts; large ones mean a real problem
    if np.iscomplexobj(root):
        if not np.allclose(root.imag, 0, atol=1e-3 * max(1.0, np.abs(root.real).max())):
            raise ValueError("sqrtm(cov1 @ cov2) has a large imaginary part; "
                             "are both covariance matrices positive semi-definite?")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


def feature_frechet_distance(a, b) -> float:
    """:func:`frechet_distance` between Gaussians fitted to two sets of
    feature vectors (rows), e.g. classifier features of samples and of real
    images."""
    return frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))


def classifier_outputs(classifier: torch.nn.Module, images: torch.Tensor,
                       batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The class logits and the penultimate features
    (``classifier.features``) of ``images`` (uint8 or floats in [0, 1]), both
    as CPU float tensors."""
    return apply_in_batches(classifier, classifier.logits_and_features, images, batch_size)


def classifier_scores(logits: torch.Tensor) -> dict[str, float]:
    """How a classifier judges a set of images, from its ``logits``:

    * ``confidence``: mean probability of the predicted class;
    * ``entropy``: mean entropy of the predicted class distribution, in nats
      (0 when the classifier is sure, log 10 for ten classes when it has no idea);
    * ``class_entropy``: entropy of the average predicted distribution (log 10
      when all classes are equally represented);
    * ``classifier_score``: exp(class_entropy - entropy), the Inception-score
      formula of Salimans et al. (2016) with this classifier: high when each
      image is clearly one class and the classes are varied (at most 10).
    """
    logp = torch.log_softmax(logits.double(), dim=1)
    p = logp.exp()
    entropy = -(p * logp).sum(dim=1)
    marginal = p.mean(dim=0)
    class_entropy = -(marginal * torch.log(marginal.clamp_min(1e-300))).sum()
    return {"confidence": float(p.max(dim=1).values.mean()),
            "entropy": float(entropy.mean()),
            "class_entropy": float(class_entropy),
            "classifier_score": float(torch.exp(class_entropy - entropy.mean()))}


def accuracy(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    """The fraction of ``images`` whose predicted class (argmax of the
    classifier's logits) equals the label."""
    logits, _ = classifier_outputs(classifier, images, batch_size)
    return float((logits.argmax(dim=1) == labels.cpu()).double().mean())


@dataclass
class CodeLabelAgreement:
    """How a discrete code (cluster index) lines up with the labels."""

    table: np.ndarray            # (codes, classes) counts on the fitting set
    majority_map: np.ndarray     # code -> the label most of its images carry
    one_to_one_map: np.ndarray   # code -> label, a one-to-one assignment (Hungarian)
    majority_accuracy: float     # on the evaluation set
    one_to_one_accuracy: float
    used_codes: int              # codes taken by at least one fitting image


def code_label_agreement(fit_codes, fit_labels, eval_codes, eval_labels,
                         num_codes: int, num_classes: int = 10) -> CodeLabelAgreement:
    """Map each code value to a label using the fitting set (e.g. training
    images) and score the map on the evaluation set (e.g. the test split):
    the majority map (each code -> its most frequent label; several codes may
    share a label) and the best one-to-one map (scipy's Hungarian algorithm on
    the count table; the clustering accuracy of the literature)."""
    from scipy.optimize import linear_sum_assignment

    fc, fl, ec, el = (np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t)
                      for t in (fit_codes, fit_labels, eval_codes, eval_labels))
    table = np.zeros((num_codes, num_classes), dtype=np.int64)
    np.add.at(table, (fc, fl), 1)
    majority = table.argmax(axis=1)
    rows, cols = linear_sum_assignment(-table)
    one_to_one = np.full(num_codes, -1, dtype=np.int64)
    one_to_one[rows] = cols
    return CodeLabelAgreement(
        table=table, majority_map=majority, one_to_one_map=one_to_one,
        majority_accuracy=float((majority[ec] == el).mean()),
        one_to_one_accuracy=float((one_to_one[ec] == el).mean()),
        used_codes=int((table.sum(axis=1) > 0).sum()))
