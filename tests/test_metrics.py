"""The metrics of metrics/ on cases with known answers (the Fréchet distance,
active units and classifier scores are tested in test_ablations.py, PCA in
test_autoencoders.py, the likelihood bounds in the build-time checks)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autoencoders import metrics


def test_psnr_of_floats_and_tensors():
    assert metrics.psnr(0.01) == pytest.approx(20.0)
    assert float(metrics.psnr(torch.tensor(0.001))) == pytest.approx(30.0)
    assert metrics.psnr(0.04, peak=2.0) == pytest.approx(20.0)  # peak^2 / mse = 100


def test_nats_and_bits():
    assert metrics.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    # a uniform distribution over 256 grey levels: 8 bits per dimension
    assert metrics.bits_per_dim(784 * math.log(256), 784) == pytest.approx(8.0)


def test_edge_energy_of_flat_striped_and_blurred_images():
    flat = torch.full((2, 1, 8, 8), 0.5)
    assert metrics.edge_energy(flat) == 0.0
    stripes = torch.zeros(1, 1, 8, 8)
    stripes[..., ::2] = 1.0                       # every horizontal neighbour differs by 1
    assert metrics.edge_energy(stripes) == pytest.approx(1.0)
    blurred = (stripes + stripes.roll(1, dims=-1)) / 2
    assert metrics.edge_energy(blurred) < metrics.edge_energy(stripes)
    assert metrics.edge_energy((stripes * 255).to(torch.uint8)) == pytest.approx(1.0)


def test_codebook_usage_counts_perplexity_and_dead_codes():
    codes = torch.tensor([[0, 1], [2, 3]])        # 4 of 8 codes, equally often
    usage = metrics.codebook_usage(codes, 8)
    assert usage["counts"].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert usage["perplexity"] == pytest.approx(4.0)
    assert usage["dead_codes"] == 4
    assert metrics.codebook_usage(torch.zeros(10, dtype=torch.long), 8)["perplexity"] == \
        pytest.approx(1.0)


def test_code_label_agreement_maps_a_permuted_clustering_exactly():
    labels = np.repeat(np.arange(3), 5)
    codes = (labels + 1) % 3                      # a relabelling of the classes
    agree = metrics.code_label_agreement(codes, labels, codes, labels, num_codes=3,
                                         num_classes=3)
    assert agree.majority_accuracy == 1.0 and agree.one_to_one_accuracy == 1.0
    assert agree.used_codes == 3
    merged = metrics.code_label_agreement(np.zeros(15, int), labels, np.zeros(15, int), labels,
                                          num_codes=3, num_classes=3)
    assert merged.one_to_one_accuracy == pytest.approx(1 / 3) and merged.used_codes == 1


def test_binarize_is_seeded_and_follows_the_intensity():
    x = torch.full((2000, 1, 4, 4), 0.25)
    a, b = metrics.binarize(x, seed=3), metrics.binarize(x, seed=3)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert float(a.mean()) == pytest.approx(0.25, abs=0.01)


class _Halve(torch.nn.Module):
    """A stand-in model whose reconstruction is half its input."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, x):
        return 0.5 * x


def test_reconstruction_mse_and_scores_by_hand():
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    model = _Halve()
    assert metrics.reconstruction_mse(model, x) == pytest.approx(float((0.25 * x ** 2).mean()),
                                                                 rel=1e-6)
    # against another target (a denoiser scored on clean images)
    assert metrics.reconstruction_mse(model, x, torch.zeros_like(x)) == pytest.approx(
        float((0.25 * x ** 2).mean()), rel=1e-6)
    assert metrics.reconstruction_mse(model, x, x / 2) == pytest.approx(0.0, abs=1e-12)
    uint8 = (x * 255).round().to(torch.uint8)
    floats = uint8.float() / 255
    scores = metrics.reconstruction_scores(model, uint8)
    assert scores["mse"] == pytest.approx(float((0.25 * floats ** 2).mean()), rel=1e-6)
    # halving every pixel quarters every squared difference between neighbours
    assert scores["edge_kept"] == pytest.approx(25.0, rel=1e-5)
    assert scores["mean_output"] == pytest.approx(float(floats.mean()) / 2, rel=1e-6)


def test_linear_vae_optimum_matches_an_explicit_probabilistic_pca_and_its_likelihood():
    """The closed forms of metrics.linear_vae_optimum (units kept where the
    data's variance exceeds c, rate sum log(lambda/c)/2, residual c^2/lambda)
    against (1) the explicit model: W = U (L - c)^(1/2) on the kept
    directions, each image's exact posterior, its KL by losses.gaussian_kl and
    the error of decoding its mean, and (2) a grid search of the marginal
    likelihood along each direction, which is what makes lambda > c the rule."""
    from autoencoders import losses
    from autoencoders.metrics.pca import LinearGaussianDecoder, covariance_eigh

    gen = torch.Generator().manual_seed(0)
    scales = torch.tensor([3.0, 2.0, 1.2, 0.8, 0.5, 0.3], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    x = 0.5 + (torch.randn(4000, 6, generator=gen, dtype=torch.float64) * scales) @ q.T
    c = 1.7
    opt = metrics.linear_vae_optimum(x, c)
    mean, vals, vecs = covariance_eigh(x)
    kept = vals > c
    assert opt.active == int(kept.sum()) == 2  # variances ~9 and 4 above c; 1.44 below
    w = torch.from_numpy(vecs[:, kept] * np.sqrt(vals[kept] - c))
    decoder = LinearGaussianDecoder(w, torch.from_numpy(mean), c)
    kls, errors, sampled = [], [], []
    for image in x:
        mu, sigma = decoder.posterior(image)
        kls.append(float(losses.gaussian_kl(mu, 2 * sigma.log())))
        errors.append(float(((image - decoder.b - w @ mu) ** 2).mean()))
        # decode codes drawn from the posterior, as a VAE's training does
        z = mu + sigma * torch.randn(64, len(mu), generator=gen, dtype=torch.float64)
        sampled.append(float(((image - decoder.b - z @ w.T) ** 2).mean()))
    assert opt.sampled_mse == pytest.approx(np.mean(sampled), rel=0.01)
    assert opt.sampled_mse > opt.mse
    assert opt.rate == pytest.approx(np.mean(kls), rel=1e-9)
    assert opt.mse == pytest.approx(np.mean(errors), rel=1e-9)
    assert opt.mean_image_mse == pytest.approx(float(((x - x.mean(0)) ** 2).mean()), rel=1e-9)
    # along each direction the model's variance is w^2 + c; the data's is lambda
    grid = np.linspace(0.0, 20.0, 200_001)
    for lam in vals:
        loglik = -0.5 * (np.log(2 * np.pi * (grid + c)) + lam / (grid + c))
        best = grid[np.argmax(loglik)]
        assert best == pytest.approx(max(lam - c, 0.0), abs=1e-3)


def test_discretized_gaussian_nll_is_exact_for_sharp_decoders_and_far_tails():
    """Against scipy (bins near the mean) and mpmath at 60 digits (bins far
    out in a tail, where Phi differences underflow float64), for sigma = 1e-3:
    each pixel's -log of the mass N(mean, sigma^2) puts on its grey level's
    bin, the end bins reaching to -inf and +inf. The float32 version clamped
    every mass below 1e-12, so a pixel off by more than about 7 sigma cost
    27.6 nats however far off it was."""
    import mpmath
    from scipy.stats import norm

    from autoencoders.losses import discretized_gaussian_nll

    sigma, half = 1e-3, 0.5 / 255
    levels = torch.tensor([0, 1, 37, 128, 200, 254, 255], dtype=torch.float64) / 255
    offsets = torch.tensor([0.0, 0.4, -0.9, 1.7, 2.5])  # in units of sigma: near
    far = torch.tensor([12.0, -40.0, 300.0, -300.0])     # and far out
    mpmath.mp.dps = 60

    def exact(x, mean):
        lo = -mpmath.inf if x <= half / 2 else mpmath.mpf(x - half - mean) / sigma
        hi = mpmath.inf if x >= 1 - half / 2 else mpmath.mpf(x + half - mean) / sigma
        if lo > 0:  # the upper tail: 1 - Phi(t) = Phi(-t), so no digits cancel
            lo, hi = -hi, -lo
        return float(-mpmath.log(mpmath.ncdf(hi) - mpmath.ncdf(lo)))

    for shifts, reference in ((offsets, "scipy"), (far, "mpmath")):
        for x in levels:
            for shift in shifts:
                mean = float(x) + float(shift) * sigma
                got = float(discretized_gaussian_nll(torch.tensor([[mean]], dtype=torch.float64),
                                                     x.view(1, 1), sigma))
                if reference == "scipy":
                    lo = -math.inf if x <= half / 2 else (float(x) - half - mean) / sigma
                    hi = math.inf if x >= 1 - half / 2 else (float(x) + half - mean) / sigma
                    want = -math.log(norm.cdf(hi) - norm.cdf(lo))
                else:
                    want = exact(float(x), float(mean))
                assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (float(x), float(shift))
