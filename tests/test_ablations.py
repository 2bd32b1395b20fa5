"""The ablations chapter's tools: the Fréchet distance (against closed forms),
active-unit counting, classifier-based sample scores, prior samples, the
figure helpers, and a smoke run of one cell of the latent-size x KL-weight
grid through the artifact cache."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

from autoencoders import cache, experiments, inference, losses, metrics, plots


def _random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _sqrt_psd(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


# ------------------------------------------------------- Fréchet distance
def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    # commuting (diagonal) covariances: ||mu1-mu2||^2 + sum (s1 - s2)^2,
    # with s the standard deviations
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    s1, s2 = rng.uniform(0.2, 3, 5), rng.uniform(0.2, 3, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    got = metrics.frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_in_one_dimension():
    # N(1, 4) vs N(-2, 9): 3^2 + (2 - 3)^2 = 10
    assert metrics.frechet_distance(1.0, 4.0, -2.0, 9.0) == pytest.approx(10.0)


def test_frechet_distance_matches_the_symmetric_form_for_full_covariances():
    # tr (A B)^{1/2} = tr (A^{1/2} B A^{1/2})^{1/2}; the right side needs only
    # symmetric eigendecompositions, an independent route to the same number
    rng = np.random.default_rng(1)
    for d in (2, 4, 10):
        a, b = _random_spd(d, rng), _random_spd(d, rng)
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        ra = _sqrt_psd(a)
        expected = (np.sum((mu1 - mu2) ** 2) + np.trace(a) + np.trace(b)
                    - 2 * np.trace(_sqrt_psd(ra @ b @ ra)))
        got = metrics.frechet_distance(mu1, a, mu2, b)
        assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)
        assert metrics.frechet_distance(mu2, b, mu1, a) == pytest.approx(got, rel=1e-7)
        assert metrics.frechet_distance(mu1, a, mu1, a) == pytest.approx(0.0, abs=1e-7)


def test_frechet_distance_from_samples_approaches_the_population_value():
    rng = np.random.default_rng(2)
    d = 3
    a, b = _random_spd(d, rng), _random_spd(d, rng)
    mu1, mu2 = np.zeros(d), np.ones(d)
    x = rng.multivariate_normal(mu1, a, size=200_000)
    y = rng.multivariate_normal(mu2, b, size=200_000)
    population = metrics.frechet_distance(mu1, a, mu2, b)
    assert metrics.feature_frechet_distance(x, y) == pytest.approx(population, rel=0.02)
    # and torch tensors work the same as arrays
    assert metrics.feature_frechet_distance(torch.from_numpy(x[:1000]), y[:1000]) == \
        pytest.approx(metrics.feature_frechet_distance(x[:1000], y[:1000]))


def test_frechet_distance_handles_a_singular_covariance():
    cov = np.diag([1.0, 0.0])  # one direction without variance
    got = metrics.frechet_distance(np.zeros(2), cov, np.zeros(2), cov)
    assert abs(got) < 1e-4


# ------------------------------------------------------------ active units
def test_active_units_counts_the_units_whose_posterior_mean_moves():
    gen = torch.Generator().manual_seed(0)
    n, k, active = 2000, 12, 5
    mu = 0.01 * torch.randn(n, k, generator=gen)      # inactive: variance 1e-4
    mu[:, :active] = torch.randn(n, active, generator=gen)  # active: variance 1
    assert metrics.active_units(mu) == active
    assert metrics.active_units(mu, threshold=1e-6) == k
    activity = metrics.unit_activity(mu)
    assert activity[:active].min() > 0.8 and activity[active:].max() < 1e-3


# ------------------------------------------------------ classifier scores
def test_classifier_scores_of_a_clueless_and_of_a_certain_classifier():
    clueless = metrics.classifier_scores(torch.zeros(30, 10))
    assert clueless["confidence"] == pytest.approx(0.1)
    assert clueless["entropy"] == pytest.approx(math.log(10))
    assert clueless["classifier_score"] == pytest.approx(1.0)
    certain = metrics.classifier_scores(60.0 * torch.eye(10).repeat(3, 1))
    assert certain["confidence"] == pytest.approx(1.0)
    assert certain["entropy"] == pytest.approx(0.0, abs=1e-12)
    assert certain["class_entropy"] == pytest.approx(math.log(10))
    assert certain["classifier_score"] == pytest.approx(10.0)
    one_class = metrics.classifier_scores(60.0 * torch.eye(10)[[3] * 30])
    assert one_class["classifier_score"] == pytest.approx(1.0)  # sure, but no variety


class _Identity(torch.nn.Module):
    """A "decoder" that returns its code, to test prior_samples."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def decode(self, z):
        return z


def test_prior_samples_draw_from_the_requested_gaussian():
    model = _Identity()
    z = inference.prior_samples(model, 20_000, 2, seed=0)
    assert z.shape == (20_000, 2)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=0.03)
    assert torch.allclose(torch.cov(z.T), torch.eye(2), atol=0.05)
    mean, cov = torch.tensor([3.0, -1.0]), torch.tensor([[4.0, 1.0], [1.0, 2.0]])
    z = inference.prior_samples(model, 20_000, 2, seed=0, mean=mean, cov=cov)
    assert torch.allclose(z.mean(0), mean, atol=0.06)
    assert torch.allclose(torch.cov(z.T), cov, atol=0.15)
    assert torch.equal(inference.prior_samples(model, 5, 2, seed=1),
                       inference.prior_samples(model, 5, 2, seed=1))


# ----------------------------------------------------------------- figures
def test_heatmaps_and_latent_scatter_have_opaque_white_backgrounds():
    fig = plots.heatmaps({"a": np.arange(6.0).reshape(2, 3), "b": np.full((2, 3), np.nan)},
                         ["r1", "r2"], ["c1", "c2", "c3"], log=["a"], reverse=["b"])
    assert matplotlib.colors.to_rgba(fig.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    assert len(fig.axes) == 2
    rng = np.random.default_rng(0)
    points = rng.standard_normal((300, 6))
    labels = rng.integers(0, 10, 300)
    fig = plots.latent_scatter({"2-D": points[:, :2], "PCA": plots.project_2d(points)},
                               labels, prior_circle=["2-D"])
    assert matplotlib.colors.to_rgba(fig.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    assert plots.project_2d(points, "tsne").shape == (300, 2)
    with pytest.raises(ValueError):
        plots.project_2d(points, "umap")


# ------------------------------------------------ the grid's experiments
def test_every_grid_cell_denoiser_and_long_run_is_registered():
    for d in experiments.ABLATION_AE_LATENTS:
        assert experiments.ablation_name("ae", d) in experiments.EXPERIMENTS
    for d in experiments.ABLATION_LATENTS:
        for w in experiments.ABLATION_KL_WEIGHTS:
            config = experiments.get_config(experiments.ablation_name("vae", d, w), "full")
            assert (config.model, config.latent_dim, config.kl_weight) == ("vae", d, w)
            assert config.likelihood == "gaussian" and config.epochs == 5
    for n in experiments.ABLATION_NOISE:
        config = experiments.get_config(experiments.ablation_name("vae", noise_weight=n), "quick")
        assert config.noise_weight == n and config.latent_dim == 128
    long = experiments.get_config(experiments.ablation_name("ae", long=True), "full")
    assert long.epochs == 25 and long.model == "ae"
    layout = experiments.get_config(experiments.ablation_name("ae", 2, long=True), "quick")
    assert layout.lr == experiments.ABLATION_LAYOUT["lr"] and layout.epochs == 10


def test_one_grid_cell_trains_scores_and_comes_back_from_the_cache(fresh_cache):
    config = experiments.get_config(experiments.ablation_name("vae", 2, 1e-3), "smoke")
    run = cache.get_or_train(config, progress=False)
    assert run.trained
    test = run.metrics["test"]
    assert {"loss", "mse", "kl"} <= set(test)
    assert test["loss"] == pytest.approx(test["mse"] + 1e-3 * test["kl"], rel=1e-6)
    _, images = cache.load_data(config)
    mu, logvar = inference.encode(run.model, images.images[:200])
    assert mu.shape == logvar.shape == (200, 2)
    assert 0 <= metrics.active_units(mu) <= 2
    samples = inference.prior_samples(run.model, 16, 2)
    assert samples.shape == (16, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    again = cache.get_or_train(config, progress=False)
    assert not again.trained and again.metrics == run.metrics
