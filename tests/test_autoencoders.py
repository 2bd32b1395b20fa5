"""The plain autoencoders of the Autoencoders chapter: shapes, learning, and
the linear autoencoder's equivalence with PCA (on small synthetic data)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autoencoders import metrics
from autoencoders.models import Autoencoder
from autoencoders.train import fit
from autoencoders.analysis.picks import one_per_class

ARCHS = ("linear", "conv", "transformer")
MNIST = (1, 28, 28)


def _batch(n=16):
    """A fixed batch of digit-like images: blurred random strokes in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(n, *MNIST, generator=gen) > 0.8).float()
    return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)


@pytest.mark.parametrize("arch", ARCHS)
def test_each_autoencoder_maps_images_to_codes_and_back(arch):
    torch.manual_seed(0)
    model = Autoencoder(MNIST, latent_dim=32, arch=arch)
    x = _batch(5)
    z = model.encode(x)
    assert z.shape == (5, 32)
    assert model.decode(z).shape == x.shape
    assert model(x).shape == x.shape
    if arch != "linear":  # the sigmoid keeps the others' output in [0, 1]
        assert 0 <= model(x).min() and model(x).max() <= 1


@pytest.mark.parametrize("arch", ARCHS)
def test_a_few_adam_steps_reduce_the_loss_on_a_fixed_batch(arch):
    torch.manual_seed(0)
    model = Autoencoder(MNIST, latent_dim=32, arch=arch)
    x = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = model.loss_terms(x)["loss"].item()
    for _ in range(10):
        loss = model.loss_terms(x)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.loss_terms(x)["loss"].item()
    assert after < 0.9 * before, (before, after)


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_the_chapters_parameter_budgets(profile):
    """What the chapter says of its three autoencoders' sizes, in every
    profile: the convolutional and transformer budgets are comparable and the
    linear one is the smallest (the architectures guarantee it; not a claim)."""
    from autoencoders.experiments import get_config
    from autoencoders.models import build_model

    configs = {a: get_config(f"ae-{a}", profile) for a in ARCHS}
    counts = {a: sum(p.numel() for p in build_model(c, MNIST).parameters())
              for a, c in configs.items()}
    k = configs["linear"].latent_dim
    assert counts["linear"] == 2 * 784 * k + 784 + k  # W_enc, W_dec and biases
    assert 0.8 < counts["transformer"] / counts["conv"] < 1.25, counts
    assert min(counts, key=counts.get) == "linear", counts


def test_psnr():
    assert metrics.psnr(0.01) == pytest.approx(20.0)
    assert metrics.psnr(1e-3, peak=255.0) == pytest.approx(10 * math.log10(255**2 / 1e-3))
    assert torch.allclose(metrics.psnr(torch.tensor([0.1, 0.001])), torch.tensor([10.0, 30.0]))


def test_principal_angles_see_subspaces_not_bases():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((10, 3)))[0]
    mixed = basis @ rng.standard_normal((3, 3))  # another basis of the same space
    assert np.allclose(metrics.principal_angles(mixed, basis), 0, atol=1e-5)
    other = np.linalg.qr(np.hstack([basis, rng.standard_normal((10, 3))]))[0][:, 3:]
    assert np.allclose(metrics.principal_angles(other, basis), 90)


def _synthetic(n, d=20, k=3, seed=0):
    """n points in R^d (shaped as 1 x 4 x 5 "images") whose covariance has k
    large eigenvalues (9, 4, 2.25), a clear gap, then small ones (0.09)."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    scales = np.r_[[3.0, 2.0, 1.5], np.full(d - k, 0.3)]
    x = (rng.standard_normal((n, d)) * scales) @ q.T + rng.uniform(0, 1, d)
    return torch.tensor(x, dtype=torch.float32).reshape(n, 1, 4, 5)


def test_pca_training_error_is_the_theorems_floor():
    """On the data it was fitted to, PCA's error is the minimum of the
    linear-autoencoder theorem, the sum of the trailing covariance
    eigenvalues (per pixel: divided by d); the chapter calls it the floor of
    every linear autoencoder's training error. On other data it is not."""
    train, test = _synthetic(2000), _synthetic(500, seed=1)
    eig = metrics.covariance_eigenvalues(train)
    d = eig.size
    assert metrics.pca_mse(train, train, 3) == pytest.approx(eig[3:].sum() / d, rel=1e-6)
    rec = metrics.pca_reconstruct(train, test, 3)
    assert rec.shape == test.shape and rec.dtype == torch.float64
    assert metrics.pca_mse(train, test, 3) == pytest.approx(
        float((rec - test.double()).pow(2).mean()), rel=1e-9)


def test_a_trained_linear_autoencoder_spans_the_pca_subspace():
    """Baldi & Hornik: the linear AE's decoder spans the top-k principal
    subspace, and reconstructs as well as PCA does."""
    train, test = _synthetic(2000), _synthetic(500, seed=1)
    torch.manual_seed(0)
    model = Autoencoder((1, 4, 5), latent_dim=3, arch="linear")
    fit(model, train, epochs=20, batch_size=200, lr=2e-2, device="cpu", progress=False)
    result = metrics.compare_with_pca(model, train, test)
    assert result.k == 3
    assert result.angles.max() < 3.0, result.angles  # degrees
    assert result.random_angles.max() > 10.0  # a random subspace is far away
    assert abs(result.relative_mse_gap) < 0.02, (result.ae_mse, result.pca_mse)
    assert result.ae_reconstruction.shape == test.shape
    assert result.pca_reconstruction.shape == test.shape


def test_an_untrained_linear_autoencoder_does_not_span_it():
    train, test = _synthetic(500), _synthetic(100, seed=1)
    torch.manual_seed(0)
    result = metrics.compare_with_pca(Autoencoder((1, 4, 5), 3, "linear"), train, test)
    assert result.angles.max() > 10.0
    assert result.relative_mse_gap > 0.1


def test_figures_have_an_opaque_white_background():
    import matplotlib.pyplot as plt

    from autoencoders import plots

    x = _batch(6)
    figs = [plots.image_grid({"original": x, "noisy": (x + 0.1).clamp(0, 1)}),
            plots.history_curves({"linear": [{"mse": 0.2}, {"mse": 0.1}]},
                                 ylabel="MSE"),
            plots.principal_angles_figure(np.array([0.1, 0.5]), np.array([40, 80]),
                                          tolerance=5)]
    for fig in figs:
        assert fig.get_facecolor() == (1.0, 1.0, 1.0, 1.0)
        plt.close(fig)


@pytest.mark.parametrize("n, nrow, channels, side", [(7, 3, 1, 28), (10, 10, 3, 32),
                                                     (4, 10, 1, 5), (9, 3, 3, 4)])
def test_tile_lays_images_out_as_torchvision_does(n, nrow, channels, side):
    from torchvision.utils import make_grid

    from autoencoders.plots import tile

    x = torch.rand(n, channels, side, side + 2, generator=torch.Generator().manual_seed(n))
    expected = make_grid(x, nrow=nrow, padding=1, pad_value=0.5)[:channels]  # grey: 3 copies
    assert torch.equal(tile(x, nrow), expected)


def test_the_figure_helpers_do_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, autoencoders.plots; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------- the chapter's analysis (smoke)
@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")


def test_the_chapters_architecture_comparison_runs(smoke):
    from autoencoders.analysis import autoencoders as analysis

    r = analysis.compare_architectures()
    assert sorted(r.order) == sorted(analysis.ARCHS)
    assert [r.mse[a] for a in r.order] == sorted(r.mse.values())
    assert r.digits == one_per_class(r.test.labels)
    assert r.test.labels[r.digits].tolist() == list(range(10))
    for a in analysis.ARCHS:
        assert r.reconstructions[a].shape == (10, *MNIST)
        assert 0 < r.edge_pct[a] and r.params[a] == r.runs[a].metrics["parameters"]
        assert r.psnr[a] == pytest.approx(metrics.psnr(r.mse[a]))
    assert r.linear_gap_pct == pytest.approx(100 * (r.mse["linear"] / r.pca_mse - 1))
    # PCA's numbers, stored with the linear model, are PCA's (read back the second time)
    k = r.runs["linear"].config.latent_dim
    assert r.pca_mse == pytest.approx(metrics.pca_mse(r.train.images, r.test.images, k))
    again = analysis.compare_architectures()
    assert (again.pca_mse, again.pca_train_mse) == (r.pca_mse, r.pca_train_mse)


def test_the_chapters_pca_study_runs(smoke):
    from autoencoders.analysis import autoencoders as analysis

    s = analysis.linear_ae_vs_pca()
    assert s.comparison.k == s.run.config.latent_dim == 16
    assert s.eigenvalue_ratio >= 1 and 0 <= s.dead_pixels < 784
    assert s.median_angle <= s.max_angle <= 90
    assert s.agrees == (s.max_angle < s.angle_tolerance
                        and abs(s.comparison.relative_mse_gap) < s.mse_tolerance)


def test_the_chapters_verdict_words_follow_the_numbers():
    """Each glued verdict of the autoencoders chapter picks its words by the
    numbers: the learning verdict by the smallest last-epoch drop against the
    threshold, the architecture sentence by the two errors (within 5%: about
    the same), and the residual-angle sentence by where the worst direction is."""
    from autoencoders.analysis import autoencoders as ae

    drops = {f"{a}_drop": 5.0 for a in ae.ARCHS}
    assert ae.learning_verdict(drops).startswith("none of them has finished")
    assert ae.learning_verdict(drops | {"conv_drop": 1.0}).startswith("at least one")
    assert ae.conv_vs_transformer({"conv_mse": 0.010, "transformer_mse": 0.0102}).startswith(
        "the convolutional and the transformer autoencoder reached about the same")
    assert ae.conv_vs_transformer({"conv_mse": 0.009, "transformer_mse": 0.012}).startswith(
        "the convolutional autoencoder reached a lower error")
    assert "lower error" in ae.conv_vs_transformer({"conv_mse": 0.012, "transformer_mse": 0.009})
    assert "transformer" in ae.conv_vs_transformer({"conv_mse": 0.012, "transformer_mse": 0.009})
    assert ae.residual_words({"worst_j": 16, "k": 16}).startswith("Here the direction next to")
    assert ae.residual_words({"worst_j": 5, "k": 16}).startswith("Here the direction furthest")
