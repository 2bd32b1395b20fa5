"""The ablations chapter's tools: the Fréchet distance (against closed forms),
active-unit counting, classifier-based sample scores, prior samples, the
figure helpers, a smoke run of one cell of the latent-size x KL-weight grid
through the artifact cache, and the chapter's analysis functions
(``analysis/ablations.py``) on known inputs and on a pair of smoke models."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

from autoencoders import cache, experiments, inference, metrics, plots
from autoencoders.analysis import ablations
from autoencoders.models.vae import VAE
from autoencoders.analysis.picks import one_per_class


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
    fig = plots.latent_scatter({"2-D": points[:, :2], "PCA": metrics.project_2d(points)},
                               labels, prior_circle=["2-D"])
    assert matplotlib.colors.to_rgba(fig.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    assert metrics.project_2d(points, "tsne").shape == (300, 2)
    with pytest.raises(ValueError):
        metrics.project_2d(points, "umap")


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


# ------------------------------------------- the chapter's analysis functions
def test_decoder_noise_is_what_the_vae_says_its_kl_weight_means():
    for row in ablations.decoder_noise():
        vae = VAE((1, 28, 28), latent_dim=2, kl_weight=row.kl_weight)
        assert row.c == pytest.approx(vae.decoder_variance)
        assert row.lam == pytest.approx(2 * row.c) and row.sd == pytest.approx(math.sqrt(row.c))
    assert ablations.decoder_noise([0.01])[0].sd == pytest.approx(math.sqrt(3.92))


def test_posterior_width_separates_narrow_posteriors_from_their_wide_mixture():
    # 3 active units whose means spread with s.d. 1.5 and whose posteriors have
    # s.d. 0.2, and 5 inactive units with q(z_u|x) = N(0, 1): the aggregate
    # posterior's variance per active unit is 1.5^2 + 0.2^2
    gen = torch.Generator().manual_seed(0)
    n, active = 20_000, 3
    mu = torch.zeros(n, 8)
    mu[:, :active] = 1.5 * torch.randn(n, active, generator=gen)
    logvar = torch.zeros(n, 8)
    logvar[:, :active] = math.log(0.2 ** 2)
    w = ablations.posterior_width(mu, logvar)
    assert w.active == active
    assert w.sigma == pytest.approx(0.2, rel=1e-5)
    assert w.spread == pytest.approx(1.5, rel=0.02)
    assert w.aggregate_var == pytest.approx(1.5 ** 2 + 0.2 ** 2, rel=0.03)
    assert w.aggregate_var_min <= w.aggregate_var <= w.aggregate_var_max
    # no active unit: every unit counts, and the aggregate of N(0, 1)'s is N(0, 1)
    w = ablations.posterior_width(torch.zeros(100, 4), torch.zeros(100, 4))
    assert w.active == 0 and w.sigma == pytest.approx(1.0)
    assert w.aggregate_var == pytest.approx(1.0)


def test_code_cloud_of_the_prior_and_of_a_shifted_scaled_cloud():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(50_000, 4, generator=gen)
    cloud = ablations.code_cloud(z)
    assert cloud.centre < 0.03 and cloud.sd == pytest.approx(1.0, abs=0.01)
    assert cloud.fd == pytest.approx(0.0, abs=1e-3)
    # N(3 * 1, 2^2 I): centre 3 * 2 = 6, sd 2; per unit 3^2 + (2 - 1)^2 = 10
    cloud = ablations.code_cloud(3.0 + 2.0 * z)
    assert cloud.centre == pytest.approx(6.0, abs=0.05) and cloud.sd == pytest.approx(2.0, rel=0.01)
    assert cloud.fd == pytest.approx(10.0, rel=0.01)


def test_one_per_class_picks_the_first_of_each_class():
    labels = torch.tensor([3, 0, 1, 0, 2, 3, 1, 2])
    assert one_per_class(labels, classes=4) == [1, 2, 4, 0]


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """One smoke AE and VAE with the reference code length, standing in for
    every role of the chapter (grid, denoisers, both budgets, layout), and a
    smoke digit classifier, in a cache of their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOENCODERS_CACHE", str(tmp_path_factory.mktemp("abl-cache")))
        get = lambda name: cache.get_or_train(experiments.get_config(name, "smoke"),  # noqa: E731
                                              progress=False)
        ae, vae = get(experiments.ablation_name("ae")), get(experiments.ablation_name("vae"))
        classifier = get("classifier-real").model
        train, test = cache.load_data(vae.config)
    runs = ablations.AblationRuns(
        grid={(d, w): vae for d in experiments.ABLATION_LATENTS
              for w in experiments.ABLATION_KL_WEIGHTS},
        aes={d: ae for d in experiments.ABLATION_AE_LATENTS},
        denoisers={(m, n): {"ae": ae, "vae": vae}[m] for m in ("ae", "vae")
                   for n in experiments.ABLATION_NOISE},
        long={"ae": ae, "vae": vae}, short={"ae": ae, "vae": vae}, layout={"ae": ae, "vae": vae})
    test = test.subset(300)
    return runs, train, test, classifier


def test_reference_pair_measures_the_gap_in_two_steps_that_add_up(smoke_runs):
    runs, _, test, _ = smoke_runs
    x = test.floats()
    pair = ablations.reference_pair(runs, x)
    long, vae = pair.long, runs.long["vae"]
    # the mean-code MSE is the VAE's reconstruction error; the rest comes from the cache
    assert long.vae_mean_mse == pytest.approx(
        float(((inference.reconstruct(vae.model, x) - x) ** 2).mean()), rel=1e-5)
    assert long.vae_loss == pytest.approx(long.vae_sample_mse + vae.config.kl_weight * long.vae_kl,
                                          rel=1e-6)
    assert long.ae_psnr == pytest.approx(10 * math.log10(1 / long.ae_mse))
    assert pair.gap_mean + pair.gap_sample == pytest.approx(long.vae_sample_mse - long.ae_mse)
    assert pair.share_mean + pair.share_sample == pytest.approx(1.0)
    assert pair.ratio_mean == pytest.approx(long.vae_mean_mse / long.ae_mse)
    assert 0 < pair.edge_ae and 0 < pair.edge_vae
    mu, logvar = inference.encode(vae.model, x)
    assert pair.width == ablations.posterior_width(mu, logvar)
    assert pair.separation == ablations.separation(mu, logvar)
    assert pair.numbers()["sep_nearest"] == pair.separation.nearest


def test_reconstruction_rows_decode_one_reparameterized_sample(smoke_runs):
    runs, _, test, _ = smoke_runs
    x = test.floats()[:10]
    rows = ablations.reconstruction_rows(runs, x, seed=3)
    assert list(rows) == ["original", "AE", "VAE, mean of q", "VAE, sampled z"]
    vae = runs.long["vae"].model
    with torch.no_grad():  # by hand: z = mu + sigma * eps with the seeded eps
        mu, logvar = vae.encode(x)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
        expected = vae.decode(mu + torch.exp(0.5 * logvar) * eps)
    assert torch.allclose(rows["VAE, sampled z"], expected, atol=1e-6)
    assert torch.allclose(rows["VAE, mean of q"], vae.decode(mu).detach(), atol=1e-6)


def test_grid_layout_denoising_and_sample_studies_on_smoke_models(smoke_runs):
    runs, train, test, classifier = smoke_runs
    x = test.floats()
    scorer = ablations.sample_scorer(x, n_samples=200, classifier=classifier)
    grid = ablations.grid_study(runs, train, x, scorer)
    mse = grid.table("mse")
    assert mse.shape == (len(experiments.ABLATION_LATENTS),
                         1 + len(experiments.ABLATION_KL_WEIGHTS))
    assert np.isnan(mse[0, 0]) and np.isfinite(mse[2, 0])  # no AE with 512 numbers
    assert np.isnan(grid.table("kl")[:, 0]).all()          # AEs have no KL
    assert grid.black_mse == pytest.approx(float((x ** 2).mean()), rel=1e-5)
    assert grid.mean_image_mse < grid.black_mse
    assert grid.best_fd == min(c.fd for (d, w), c in grid.cells.items() if w > 0)
    assert set(grid.ae_mean_output) == set(experiments.ABLATION_AE_LATENTS)
    assert set(grid.prior_fd) == set(runs.grid) and all(v >= 0 for v in grid.prior_fd.values())
    g = grid.numbers()
    assert g["prior_fd_min_3"] <= g["prior_fd_max_3"] and "grid_prior_fd_20" not in g  # no AE
    assert g["ae2_train_first"] == runs.aes[2].metrics["history"][0]["mse"]
    assert 0 <= grid.ae2_mean_output <= 1
    # a second study reads each cell from beside its model in the cache
    cell_files = [f for run in {id(r): r for r in runs.grid.values()}.values()
                  for f in (run.path / "evals").glob("grid-cell-*.pt")]
    assert cell_files
    again = ablations.grid_study(runs, train, x, scorer)
    for key in ("mse", "kl", "active", "fd"):
        np.testing.assert_array_equal(again.table(key), grid.table(key))

    layout = ablations.layout_study(runs, x, n_tsne=100)
    assert set(layout.clouds) == {"ae2", "vae2", "ae", "vae"}
    assert layout.numbers()["layout_epochs"] == runs.layout["ae"].config.epochs
    assert all(p.shape == (100 if "t-SNE" in k else len(x), 2)
               for k, p in layout.projections.items())
    # the 2-number models' codes and numbers are stored beside the VAE and read back
    assert list((runs.layout["vae"].path / "evals").glob("layout-2d-*.pt"))
    assert layout.mse_vae == pytest.approx(metrics.reconstruction_mse(runs.layout["vae"].model, x))
    again = ablations.layout_study(runs, x, n_tsne=100)
    assert again.numbers() == layout.numbers()

    digits = one_per_class(test.labels)
    den = ablations.denoising_study(runs, x, digits)
    assert den.mse["input", 0.0] == 0 and den.rel("ae", 0.0) == 1.0
    inputs = [den.mse["input", w] for w in den.noise[1:]]
    assert inputs == sorted(inputs) and all(e < w ** 2 for e, w in zip(inputs, den.noise[1:]))
    # the same model in both roles: trained "with" and "without" noise agree
    assert den.gain("vae", den.wmax) == pytest.approx(1.0)
    assert set(den.shift) == {"ae", "vae", "vae-sigma"}
    assert den.add("ae", den.wmax) == pytest.approx(den.mse["ae", den.wmax] - den.mse["ae", 0.0])
    assert den.rows["clean"].shape == (10, 1, 28, 28) and len(den.rows) == 1 + 3 * 3

    quality = ablations.sample_quality(runs, train, test, scorer)
    assert set(quality.gen) == {("ae", "short"), ("vae", "short"), ("ae", "long"),
                                ("vae", "long"), ("ae-fit", "long")}
    assert quality.gen["vae", "long"].images.shape == (ablations.SHOWN, 1, 28, 28)
    assert quality.real.images is None and quality.n_real == 200
    assert quality.real.fd < quality.fd("ae", "long")  # real digits are closest to real digits
    assert 0 <= quality.classifier_acc <= 1
    again = ablations.sample_quality(runs, train, test, scorer)   # read back from the cache
    assert again.numbers() == quality.numbers() and again.edge == quality.edge
    assert again.sure == quality.sure and set(again.sure) == set(quality.gen) | {"real"}
    assert torch.equal(again.gen["ae-fit", "long"].images, quality.gen["ae-fit", "long"].images)


def test_separation_measures_distances_between_means_in_posterior_sds():
    # Gaussian means with variance s^2 in each of k units and posterior s.d.
    # sigma: two independent means lie sqrt(2 k) s apart (rms)
    gen = torch.Generator().manual_seed(2)
    n, k, s, sigma = 20_000, 6, 0.7, 0.35
    mu = s * torch.randn(n, k, generator=gen)
    logvar = torch.full((n, k), 2 * math.log(sigma))
    sep = ablations.separation(mu, logvar, n_query=500)
    assert sep.rms == pytest.approx(math.sqrt(2 * k) * s / sigma, rel=0.02)
    # means on a line, spaced d apart: every nearest neighbour is d away
    d = 0.1
    mu = torch.zeros(1000, 3)
    mu[:, 0] = d * torch.arange(1000)
    sep = ablations.separation(mu, torch.full((1000, 3), 2 * math.log(sigma)), n_query=200)
    assert sep.nearest == pytest.approx(d / sigma, rel=1e-4)


class _Linear(torch.nn.Module):
    """A stand-in encoder: the first ``k`` pixels times ``scale`` (and, for
    a "VAE", a constant log-variance)."""

    def __init__(self, k, scale, logvar=None):
        super().__init__()
        self.k, self.scale, self.logvar = k, scale, logvar
        self.p = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        z = self.scale * x.flatten(1)[:, :self.k]
        return z if self.logvar is None else (z, torch.full_like(z, self.logvar))


def test_code_shift_compares_the_move_with_the_spread_and_with_the_sampling_noise():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(4000, 1, 4, 4, generator=gen)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    k, sigma = 5, 0.2
    shift = ablations.code_shift(_Linear(k, 1.0), _Linear(k, 3.0, 2 * math.log(sigma)), x, noisy)
    moved = (noisy - x).flatten(1)[:, :k].double().pow(2).sum(1).mean()
    first = x.flatten(1)[:, :k].double()
    spread = (first - first.mean(0)).pow(2).sum(1).mean()
    # against the spread the move does not depend on the code's scale ...
    assert shift["ae"] == pytest.approx(float((moved / spread).sqrt()), rel=1e-5)
    assert shift["vae"] == pytest.approx(shift["ae"], rel=1e-5)
    # ... against the sampling noise it does: 3 |dx| / sqrt(k sigma^2)
    assert shift["vae-sigma"] == pytest.approx(float(3 * (moved / (k * sigma ** 2)).sqrt()),
                                               rel=1e-5)
    assert ablations.code_shift(_Linear(k, 1.0), _Linear(k, 3.0, 0.0), x, x) == \
        {"ae": 0.0, "vae": 0.0, "vae-sigma": 0.0}


def test_an_invertible_affine_map_of_the_code_leaves_the_autoencoder_unchanged():
    # the layout section's reason why an AE's code has no preferred place or
    # scale: z -> A z + b, applied by the encoder's last linear layer and
    # undone by the decoder's first, changes the codes but no reconstruction
    from autoencoders.models.autoencoder import Autoencoder
    torch.manual_seed(0)
    k = 3
    ae = Autoencoder((1, 28, 28), k).double().eval()
    x = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    before_z, before = ae.encode(x), ae(x)
    a = torch.tensor([[2.0, 0.5, 0.0], [0.0, 0.3, -1.0], [1.0, 0.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([5.0, -3.0, 0.5], dtype=torch.float64)
    last, first = ae.encoder.net[-1], ae.decoder.net[0]
    with torch.no_grad():
        last.weight.copy_(a @ last.weight), last.bias.copy_(a @ last.bias + b)
        inverse = torch.linalg.inv(a)
        first.bias.add_(-first.weight @ inverse @ b), first.weight.copy_(first.weight @ inverse)
    assert torch.allclose(ae.encode(x), before_z @ a.T + b)
    assert not torch.allclose(ae.encode(x), before_z)
    assert torch.allclose(ae(x), before, atol=1e-10)


def test_grid_study_reads_binding_lengths_and_vaes_that_beat_their_ae():
    cell = lambda mse: ablations.GridCell(mse, 1.0, 1, 10.0, 0.1, 0.1)  # noqa: E731
    mses = {(128, 0.0): 0.010, (16, 0.0): 0.030, (2, 0.0): 0.11,
            (512, 1e-3): 0.021, (256, 1e-3): 0.020, (128, 1e-3): 0.020, (16, 1e-3): 0.029,
            (2, 1e-3): 0.031, (512, 1e-4): 0.012, (256, 1e-4): 0.012, (128, 1e-4): 0.011,
            (16, 1e-4): 0.025, (2, 1e-4): 0.05}
    grid = ablations.GridStudy(
        {key: cell(m) for key, m in mses.items()}, (512, 256, 128, 16, 2), (0.0, 1e-3, 1e-4),
        big_w=1e-3, collapse_units=0, kl_big_w_max=0.1, mid_w=1e-3, active_512=0,
        kl_per_unit_512=0.0, mean_image_mse=0.07, black_mse=0.11, pixel_mean=0.13,
        ae_mean_output={128: 0.13, 16: 0.13, 2: 0.0}, best=(16, 1e-3), best_fd=10.0)
    # more than 1.5 times the 128-number code's error: 0.031 > 0.030, 0.025 > 0.0165
    assert grid.binding(1e-3) == [2] and grid.binding(1e-4) == [16, 2]
    # the 16-number VAEs beat their AE (0.029 and 0.025 < 0.030); the stuck 2-number AE
    # (mean output 0) does not count, though every 2-number VAE is below its 0.11
    assert grid.vae_beats_ae() == [(16, 1e-3), (16, 1e-4)]
