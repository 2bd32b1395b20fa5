"""The "Questions readers ask" chapter's tools: KL warm-up and free bits,
the k-means codebook start, the VQ-VAE's finer grid, greedy PixelCNN
sampling, the per-epoch test report, and the chapter's analysis functions
(on smoke-profile models)."""
from __future__ import annotations

import math

import pytest
import torch

from autoencoders import cache, losses
from autoencoders.analysis import questions as q
from autoencoders.config import Config
from autoencoders.experiments import EXPERIMENTS, get_config
from autoencoders.models import VAE, VQVAE, PixelCNN, VectorQuantizer, build_model
from autoencoders.models.quantizer import kmeans
from autoencoders.train import fit


# ------------------------------------------------------------- the VAE
def test_kl_warmup_ramps_the_weight_over_training_steps_only():
    torch.manual_seed(0)
    vae = VAE((1, 28, 28), 4, kl_weight=0.5, kl_warmup=4).train()
    x = torch.rand(8, 1, 28, 28)
    weights = [float(vae.loss_terms(x)["kl_weight_now"]) for _ in range(6)]
    assert weights == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5, 0.5])
    vae.eval()
    with torch.no_grad():
        terms = vae.loss_terms(x)
    assert int(vae.steps_taken) == 6  # evaluation does not count
    assert float(terms["loss"]) == pytest.approx(float(terms["recon"] + 0.5 * terms["kl"]),
                                                 rel=1e-6)


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
@pytest.mark.parametrize("images", [5_000, 60_000, 37])
def test_the_q8_warm_up_ends_halfway_through_its_own_run(profile, images):
    # a share of the steps, so the offline 5,000 digits and the downloaded
    # 60,000 both warm up over the first half (a count fixed for 60,000
    # never ended on 5,000)
    config = get_config("q-vae-kl0.01-warmup", profile)
    steps = config.epochs * -(-images // config.batch_size)  # counted here, not by Config
    assert config.steps(images) == steps
    vae = build_model(config, (1, 28, 28), images)
    assert abs(vae.kl_warmup - steps / 2) <= 0.5
    with pytest.raises(ValueError, match="training images"):
        build_model(config, (1, 28, 28))
    assert build_model(get_config("q-vae-kl0.01-freebits", profile), (1, 28, 28)).kl_warmup == 0


def test_a_vae_without_the_fixes_has_its_old_state_and_objective():
    torch.manual_seed(0)
    vae = VAE((1, 28, 28), 4, kl_weight=0.1)
    assert "steps_taken" not in vae.state_dict()
    with torch.no_grad():
        terms = vae.loss_terms(torch.rand(8, 1, 28, 28))
    assert "kl_weight_now" not in terms
    assert float(terms["loss"]) == pytest.approx(float(terms["recon"] + 0.1 * terms["kl"]), rel=1e-6)


def test_free_bits_charge_each_unit_only_above_the_floor():
    vae = VAE((1, 28, 28), 3, kl_weight=1.0, free_bits=0.5)
    mu = torch.tensor([[0.1, 2.0, 0.0], [-0.1, 2.0, 0.0]], requires_grad=True)
    logvar = torch.zeros(2, 3)
    per_unit = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1)).mean(0)
    penalty = vae.kl_penalty(mu, logvar)
    assert float(penalty.detach()) == pytest.approx(0.5 + float(per_unit[1].detach()) + 0.5)
    penalty.backward()
    # units 0 and 2 are below 0.5 nats: no gradient; unit 1 (2 nats) is charged
    assert torch.all(mu.grad[:, [0, 2]] == 0) and torch.all(mu.grad[:, 1] > 0)


# ------------------------------------------------------------- codebooks
def test_kmeans_finds_well_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = (centres.repeat_interleave(50, 0) + 0.1 * torch.randn(150, 2))
    found = kmeans(points, 3, iterations=20)
    nearest = torch.cdist(centres, found).min(dim=1).values
    assert torch.all(nearest < 0.2)


def test_kmeans_start_puts_the_codebook_on_the_first_batch_once():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, init="kmeans").train()
    z = torch.randn(4, 2, 3, 3) + 5.0  # far from the small uniform start
    vq(z)
    assert bool(vq.initialised)
    first = vq.codebook.detach().clone()
    assert float(first.mean()) == pytest.approx(5.0, abs=1.0)
    vq(z - 10.0)  # a second batch does not redo it
    assert torch.equal(vq.codebook.detach(), first)
    assert len(torch.unique(vq(z).codes)) > 1


def test_vqvae_with_downsample_2_has_a_grid_of_half_the_side():
    model = VQVAE((3, 32, 32), latent_dim=8, num_codes=4, width=16, depth=1, downsample=2)
    assert model.grid == (16, 16)
    assert model.codes(torch.rand(2, 3, 32, 32)).shape == (2, 16, 16)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    default = VQVAE((3, 32, 32), latent_dim=8, num_codes=4, width=16, depth=1)
    assert default.grid == (8, 8)
    assert list(default.state_dict()) == list(model.state_dict())
    with pytest.raises(ValueError):
        VQVAE((3, 32, 32), downsample=8)


def test_config_validates_the_new_fields():
    assert Config("x", "vae").kl_warmup == 0
    for field, bad in (("codebook_init", "random"), ("downsample", 3), ("free_bits", -1.0),
                       ("kl_warmup", -1), ("kl_warmup", 1.5), ("epoch_eval", 1.5)):
        with pytest.raises(ValueError, match=field):
            Config("x", "vqvae", **{field: bad})


# ------------------------------------------------------------- PixelCNN
def test_temperature_zero_is_greedy_argmax():
    torch.manual_seed(0)
    prior = PixelCNN(5, (3, 3), width=8, depth=1).eval()
    grids = prior.sample(4, temperature=0)
    assert all(torch.equal(g, grids[0]) for g in grids)  # no randomness left
    logits = prior(grids)
    # every position holds the most likely code given the codes before it
    assert torch.equal(logits.argmax(dim=1), grids)
    with pytest.raises(ValueError):
        prior.sample(1, temperature=-1.0)


# ------------------------------------------------------------- training
def test_on_epoch_adds_to_the_history_and_leaves_training_unchanged():
    x = torch.rand(40, 1, 28, 28)

    def model():
        torch.manual_seed(1)
        return VAE((1, 28, 28), 2, kl_weight=0.1)

    kw = dict(epochs=2, batch_size=16, lr=1e-2, seed=3, device="cpu", progress=False)
    plain, probed = model(), model()
    fit(plain, x, **kw)
    history = fit(probed, x, on_epoch=lambda e: {"probe": e, "noise": float(torch.rand(()))}, **kw)
    assert [h["probe"] for h in history.epochs] == [1, 2]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                 probed.state_dict().values()))


@pytest.mark.parametrize("name", ["vqvae", "q-vq-ema"])
def test_the_epoch_evaluation_changes_no_weight_of_a_vqvae(name, fresh_cache):
    # Q5 reads the vqvae chapter's models for two of its runs because the
    # evaluation after each epoch (eval mode, its own random state) leaves
    # the training as it was: dead-code restarts and EMA updates included
    kw = dict(epochs=3, train_size=256, test_size=64)
    probed = cache.get_or_train(get_config(name, "smoke", epoch_eval=64, **kw))
    plain = cache.get_or_train(get_config(name, "smoke", epoch_eval=0, **kw))
    assert len(probed.metrics["history"]) == 3 and "test_codes_used" in probed.metrics["history"][0]
    assert probed.metrics["model_sha256"] == plain.metrics["model_sha256"]
    assert all(torch.equal(a, b) for a, b in zip(probed.model.state_dict().values(),
                                                 plain.model.state_dict().values()))


def test_epoch_eval_records_test_terms_and_codes_used(fresh_cache):
    config = get_config("q-vq-kmeans", "smoke", epochs=2, train_size=64, epoch_eval=32)
    run = cache.get_or_train(config)
    assert len(run.metrics["history"]) == 2
    for entry in run.metrics["history"]:
        assert 0 < entry["test_codes_used"] <= config.num_codes
        assert entry["test_mse"] > 0


# ------------------------------------------------------------- analysis
def test_the_questions_experiments_are_registered_for_the_chapter():
    names = [n for n, spec in EXPERIMENTS.items() if spec["chapter"] == "questions"]
    assert {"q-vae-averaged", "q-vae-summed", "q-vq-kmeans", "q-pixelcnn-grid16-k4"} <= set(names)
    summed = get_config("q-vae-summed", "quick")
    assert summed.kl_weight * 28 * 28 == pytest.approx(1.0)
    for name in q.Q_GRIDS:  # equal bits per image
        c = get_config(name, "quick")
        side = 32 // c.downsample
        assert side * side * math.log2(c.num_codes) == 512


def test_the_textbook_kl_is_the_package_kl_and_the_terms_match():
    torch.manual_seed(0)
    mu, logvar = torch.randn(50, 6), torch.randn(50, 6)
    assert torch.allclose(q.textbook_kl(mu, logvar), losses.gaussian_kl(mu, logvar), atol=1e-5)
    terms = q.kl_term_mapping()
    assert set(terms) == {r"\log\sigma^2", r"-\mu^2", r"-e^{\log\sigma^2}", "1"}


def test_the_summed_objective_is_d_times_the_averaged_one_with_weight_one_over_d():
    torch.manual_seed(0)
    vae = VAE((1, 28, 28), 4, kl_weight=1 / 784, likelihood="gaussian")
    assert q.summed_objective_gap(vae, torch.rand(16, 1, 28, 28)) < 1e-5


@pytest.mark.usefixtures("fresh_cache")
def test_perplexity_by_batch_size_stays_under_its_cap(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    r = q.perplexity_by_batch_size(batch_sizes=(1, 4, 64))
    assert r.batch_sizes == [1, 4, 64]
    assert r.cap[0] == min(r.num_codes, r.positions)
    for mean, cap, used in zip(r.mean, r.cap, r.used_per_batch):
        assert 1 <= mean <= cap + 1e-4
        assert used <= r.used_whole_set
    assert r.whole_set >= r.mean[0] - 1e-4


@pytest.mark.usefixtures("fresh_cache")
def test_prior_decoding_argmax_gives_one_grid(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    r = q.prior_decoding(temperatures=(0.0, 1.0), n=4)
    assert r.distinct_grids[0] == 1
    assert r.images[0.0].shape[0] == 4
    assert all(1 <= d <= r.positions for d in r.distinct_codes)


def test_float32_leaves_the_kl_near_the_prior_a_hair_below_zero():
    # Q3's sentence: near q = N(0, 1) float32 rounding can make a coordinate's
    # KL negative, by far less than any KL the page shows; float64 does not
    r = q.float32_kl_near_prior()
    assert r["points"] == 2001 and r["span"] == pytest.approx(1e-3)
    assert r["negative32"] > 0 and -1e-6 < r["min32"] < 0
    assert r["negative64"] == 0


def test_a_kl_with_the_variance_from_another_quantity_can_go_negative():
    # Q3: log sigma^2 in the log term but sigma in place of sigma^2 in the other
    logvar, mu = torch.tensor([1.0]), torch.tensor([0.0])
    mixed = -0.5 * (1 + logvar - mu.pow(2) - (logvar / 2).exp())
    assert float(mixed) < 0
    assert float(q.textbook_kl(mu.view(1, 1), logvar.view(1, 1))) > 0


def test_the_q2_fall_splits_at_the_code_free_decoder():
    def trajectory(start_recon, end_recon, zero_rate):
        return q.KLTrajectory("x", [1, 2], [start_recon, end_recon], [1.0, 2.0], [0.0, 0.0],
                              10, 1, start={"recon": start_recon, "kl": 1.0, "total": 0.0},
                              end={"recon": end_recon, "kl": 2.0, "total": 0.0},
                              zero_rate=zero_rate).numbers()
    n = trajectory(240.0, 90.0, 200.0)
    assert n["code_free_fall"] == pytest.approx(40.0) and n["code_fall"] == pytest.approx(110.0)
    assert n["code_free_fall"] + n["code_fall"] == pytest.approx(n["recon_drop"])
    n = trajectory(180.0, 90.0, 200.0)  # a start already below the code-free level
    assert n["code_free_fall"] == 0 and n["code_fall"] == pytest.approx(90.0)


def test_the_q5_verdict_names_the_runs_in_use_and_needs_clear_numbers():
    k = 128  # in use: at least 0.95 K = 121.6; clearly out: under 0.90 K = 115.2

    def numbers(plain, restart, ema, kmeans):
        return {"K": k, "plain_used": plain, "restart_used": restart, "ema_used": ema,
                "kmeans_used": kmeans}
    assert q.codebook_in_use(numbers(128, 128, 122, 125)) == list(q.FIX_LABELS)
    assert q.codebook_in_use(numbers(29, 127, 18, 29)) == ["restart"]
    assert q.codebook_in_use(numbers(29, 100, 18, 40)) == []
    assert q.most_codes_in_use(numbers(29, 100, 18, 40)) == "restart"
    assert q.codebook_verdict_clear(numbers(29, 127, 18, 29))
    assert q.codebook_verdict_clear(numbers(29, 100, 18, 40))
    assert not q.codebook_verdict_clear(numbers(29, 127, 118, 29))  # EMA at the line
    assert not q.codebook_verdict_clear(numbers(29, 100, 18, 100))  # none in use, a tie


def test_the_kl_sign_figure_labels_its_short_log_axis_plainly():
    from types import SimpleNamespace

    import numpy as np

    from autoencoders import plots

    rng = np.random.default_rng(0)
    r = SimpleNamespace(per_image=rng.normal(23, 3, 500), per_unit=rng.lognormal(0.3, 0.5, 8000),
                        latent_dim=16)
    fig = plots.kl_sign_figure(r)
    fig.canvas.draw()
    right = fig.axes[1]
    assert right.get_xscale() == "log"
    assert all(t.get_text() == "" for t in right.get_xticklabels(minor=True))
    shown = [t.get_text() for t in right.get_xticklabels() if t.get_text()]
    assert shown and all(float(label) > 0 for label in shown)  # plain numbers, no 2x10^-1
