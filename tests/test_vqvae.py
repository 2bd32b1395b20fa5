"""VQ-VAE: the quantizer, the straight-through gradient, the loss terms,
codebook usage metrics, the PixelCNN's masking, and a smoke training step."""
from __future__ import annotations

import math

import pytest
import torch

from autoencoders import cache, experiments, losses, metrics
from autoencoders.models import PixelCNN, VectorQuantizer, VQVAE, build_model
from autoencoders.models.pixelcnn import MaskedConv2d
from autoencoders.train import evaluate, fit
from autoencoders.analysis.picks import one_per_class


def _quantizer(k=16, d=4, **kw):
    torch.manual_seed(0)
    vq = VectorQuantizer(k, d, **kw)
    with torch.no_grad():  # spread the codes out so that ties are impossible
        vq.codebook.normal_()
    return vq


# ------------------------------------------------------------ the quantizer
def test_quantizer_shapes_and_dtypes():
    vq = _quantizer(k=16, d=4)
    z_e = torch.randn(3, 4, 5, 6)
    q = vq(z_e)
    assert q.z_q.shape == z_e.shape
    assert q.codes.shape == (3, 5, 6) and q.codes.dtype == torch.int64
    assert q.codes.min() >= 0 and q.codes.max() < 16
    assert q.codebook_loss.shape == (3,) and q.commitment_loss.shape == (3,)
    assert vq.lookup(q.codes).shape == z_e.shape


def test_nearest_code_matches_cdist_argmin():
    vq = _quantizer(k=32, d=8)
    z_e = torch.randn(4, 8, 3, 3)
    codes = vq(z_e).codes
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 8)
    expected = torch.cdist(flat, vq.codebook.detach()).argmin(dim=1)
    assert torch.equal(codes.reshape(-1), expected)


def test_decoder_input_equals_the_chosen_code_vectors():
    vq = _quantizer()
    z_e = torch.randn(2, 4, 3, 3)
    q = vq(z_e)
    torch.testing.assert_close(q.z_q, vq.lookup(q.codes))


def test_straight_through_gradient_wrt_z_e_equals_gradient_wrt_decoder_input():
    vq = _quantizer()
    decoder = torch.nn.Conv2d(4, 3, 3, padding=1)
    z_e = torch.randn(2, 4, 5, 5, requires_grad=True)
    q = vq(z_e)
    q.z_q.retain_grad()
    decoder(q.z_q).pow(2).sum().backward()
    assert z_e.grad is not None and z_e.grad.abs().sum() > 0
    torch.testing.assert_close(z_e.grad, q.z_q.grad)


@pytest.mark.parametrize("name", ["vq_nearest_code_check", "vq_straight_through_check",
                                  "vq_loss_gradients_check", "vq_ema_check"])
def test_build_time_vq_checks_pass(name):
    from autoencoders.derivations import vq as vq_checks

    assert getattr(vq_checks, name)() is not None


def test_build_time_vq_checks_catch_swapped_loss_terms(monkeypatch):
    """The quantizer reporting the commitment loss as the codebook loss (and
    the other way round) trains the wrong side with the wrong weight."""
    from autoencoders.derivations import vq as vq_checks
    from autoencoders.derivations.checks import DerivationError
    from autoencoders.models import quantizer

    real = quantizer.VectorQuantizer.forward

    def swapped(self, z_e):
        q = real(self, z_e)
        return q._replace(codebook_loss=q.commitment_loss, commitment_loss=q.codebook_loss)

    monkeypatch.setattr(quantizer.VectorQuantizer, "forward", swapped)
    with pytest.raises(DerivationError, match="moves only the codebook"):
        vq_checks.vq_loss_gradients_check()


def test_build_time_vq_checks_catch_a_missing_straight_through(monkeypatch):
    """Feeding the decoder the code vectors themselves sends the gradient to
    the codebook and none to the encoder."""
    from autoencoders.derivations import vq as vq_checks
    from autoencoders.derivations.checks import DerivationError
    from autoencoders.models import quantizer

    real = quantizer.VectorQuantizer.forward

    def no_straight_through(self, z_e):
        q = real(self, z_e)
        return q._replace(z_q=self.codebook[q.codes].permute(0, 3, 1, 2))

    monkeypatch.setattr(quantizer.VectorQuantizer, "forward", no_straight_through)
    with pytest.raises(DerivationError, match="straight-through"):
        vq_checks.vq_straight_through_check()


# ----------------------------------------------------------- the loss terms
def test_codebook_and_commitment_losses_send_gradients_to_one_side_each():
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    e = torch.randn(2, 3, 4, 4, requires_grad=True)
    expected = (z_e - e).pow(2).flatten(1).mean(1)

    cb = losses.codebook_loss(z_e, e)
    torch.testing.assert_close(cb, expected)
    cb.sum().backward()
    assert z_e.grad is None  # sg(z_e): nothing reaches the encoder
    torch.testing.assert_close(e.grad, 2 * (e - z_e).detach() / 48)

    e.grad = None
    cm = losses.commitment_loss(z_e, e)
    torch.testing.assert_close(cm, expected)
    cm.sum().backward()
    assert e.grad is None  # sg(e): nothing reaches the codebook
    torch.testing.assert_close(z_e.grad, 2 * (z_e - e).detach() / 48)


def test_vqvae_loss_is_mse_plus_codebook_plus_beta_commitment():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    for update in ("loss", "ema"):
        model = VQVAE((3, 16, 16), latent_dim=8, num_codes=16, width=16, commitment=0.25,
                      codebook_update=update).eval()
        t = model.loss_terms(x)
        codebook = t["codebook"] if update == "loss" else 0.0
        torch.testing.assert_close(t["loss"], t["mse"] + codebook + 0.25 * t["commitment"])
        torch.testing.assert_close(t["codebook"], t["commitment"])  # same value, other gradient


def test_codebook_gets_gradient_only_with_the_loss_update():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    loss_model = VQVAE((3, 16, 16), latent_dim=8, num_codes=16, width=16, codebook_update="loss")
    loss_model.loss_terms(x)["loss"].backward()
    assert loss_model.quantizer.codebook.grad is not None
    ema_model = VQVAE((3, 16, 16), latent_dim=8, num_codes=16, width=16, codebook_update="ema")
    ema_model.loss_terms(x)["loss"].backward()
    assert ema_model.quantizer.codebook.grad is None
    assert ema_model.encoder[0].weight.grad is not None


def test_ema_update_moves_a_code_to_the_mean_of_its_vectors():
    vq = _quantizer(k=2, d=2, update="ema", decay=0.0)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0], [11.0, 13.0]])
    vq.train()(z.view(4, 2, 1, 1))
    # decay 0: the codes become the means of their assigned vectors (up to smoothing)
    torch.testing.assert_close(vq.codebook.detach(), torch.tensor([[0.5, 0.5], [10.0, 11.0]]),
                               atol=1e-3, rtol=1e-3)


def test_dead_codes_are_restarted_onto_encoder_outputs():
    vq = _quantizer(k=8, d=2, restart_dead=True, patience=2)
    with torch.no_grad():
        vq.codebook[1:] = 100.0  # far away: never chosen
        vq.codebook[0] = 0.0
    z = torch.randn(16, 2, 1, 1)
    vq.train()
    for _ in range(3):
        vq(z)
    assert vq.last_restarts == 7 and vq.restarts_total.item() == 7
    flat = z.view(16, 2)
    for row in vq.codebook.detach()[1:]:
        assert (flat - row).abs().sum(1).min() < 1e-6  # each restarted code is one of the z_e


def test_a_restart_under_ema_resets_the_code_s_averages():
    """A restarted code must keep its new place through the next moving-
    average update: its count and its sum start afresh at the new vector
    (with the old sum it would jump back to the far-away dead spot)."""
    vq = _quantizer(k=4, d=2, update="ema", restart_dead=True, patience=1)
    with torch.no_grad():
        vq.codebook[3] = 100.0  # never chosen now, but much used before:
        vq.ema_count[3] = 50.0  # a large count left from then
        vq.ema_sum.copy_(vq.codebook * vq.ema_count.unsqueeze(1))
    torch.manual_seed(1)
    z = torch.randn(32, 2, 1, 1) + 5.0
    vq.train()
    vq(z)  # code 3 idle for one step
    vq(z)  # restarted onto one of the z, then one EMA update
    assert vq.restarts_total.item() >= 1
    flat = z.view(32, 2)
    gap = (flat - vq.codebook.detach()[3]).norm(dim=1).min()
    # still next to the encoder output it was moved onto (one EMA step pulls it a
    # little towards the outputs that chose it); the old sum would put it near 100
    assert gap < 0.5


def test_restarted_codes_go_to_distinct_encoder_outputs():
    vq = _quantizer(k=9, d=2, restart_dead=True, patience=1)
    with torch.no_grad():
        vq.codebook[1:] = 100.0  # eight codes never chosen
        vq.codebook[0] = 0.0
    torch.manual_seed(3)
    z = torch.randn(8, 2, 1, 1)  # as many encoder outputs as dead codes
    vq.train()
    vq(z)
    vq(z)
    assert vq.last_restarts == 8
    restarted = vq.codebook.detach()[1:]
    assert len(torch.unique(restarted, dim=0)) == 8  # no two on the same vector


def test_code_counts_match_torch_bincount():
    # code_counts avoids bincount (which waits for the host on CUDA); same counts
    from autoencoders.models.quantizer import code_counts
    torch.manual_seed(0)
    codes = torch.randint(0, 12, (5, 3, 3))
    assert torch.equal(code_counts(codes, 16), torch.bincount(codes.reshape(-1), minlength=16))


def test_a_kmeans_start_is_made_once_and_again_after_loading_an_unstarted_state():
    vq = VectorQuantizer(8, 2, init="kmeans")
    fresh = {k: v.clone() for k, v in vq.state_dict().items()}
    z = torch.randn(32, 2, 1, 1)
    vq.train()(z)
    started = vq.codebook.detach().clone()
    vq(z + 5.0)  # no second start: the codebook does not jump onto the new batch
    assert torch.equal(vq.codebook.detach(), started) and bool(vq.initialised)
    vq.load_state_dict(fresh)  # an unstarted model again: the next step starts it
    vq(z + 5.0)
    assert bool(vq.initialised) and vq.codebook.detach().mean() > 3.0


# ------------------------------------------------------------ usage metrics
def test_codebook_perplexity_and_dead_codes():
    k = 8
    uniform = torch.arange(k).repeat(5)
    assert metrics.codebook_perplexity(uniform, k).item() == pytest.approx(k)
    assert metrics.dead_codes(uniform, k).item() == 0
    single = torch.full((40,), 3)
    assert metrics.codebook_perplexity(single, k).item() == pytest.approx(1.0)
    assert metrics.dead_codes(single, k).item() == k - 1
    half = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]).view(2, 2, 2)  # any shape
    assert metrics.codebook_perplexity(half, k).item() == pytest.approx(4.0)
    assert metrics.dead_codes(half, k).item() == 4
    assert metrics.code_counts(half, k).tolist() == [2, 2, 2, 2, 0, 0, 0, 0]


def test_edge_energy_falls_when_images_are_blurred():
    torch.manual_seed(0)
    sharp = torch.rand(4, 3, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    assert metrics.edge_energy(torch.full((2, 3, 8, 8), 0.5)) == 0.0
    assert metrics.edge_energy(blurred) < 0.5 * metrics.edge_energy(sharp)
    as_uint8 = (sharp * 255).round().to(torch.uint8)
    assert metrics.edge_energy(as_uint8) == pytest.approx(metrics.edge_energy(sharp), rel=1e-3)


def test_bits_conversions():
    assert metrics.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert metrics.bits_per_dim(3072 * math.log(2) * 5, 3072) == pytest.approx(5.0)


def test_discretized_gaussian_nll_is_a_proper_distribution_over_256_levels():
    levels = torch.arange(256).float().div(255).view(256, 1, 1, 1)
    mean = torch.full((256, 1, 1, 1), 0.3)
    nll = losses.discretized_gaussian_nll(mean, levels, sigma=0.1)
    assert nll.shape == (256,)
    assert torch.exp(-nll).sum().item() == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- PixelCNN
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_convolution_kernel(mask_type):
    conv = MaskedConv2d(1, 1, 5, mask_type)
    expected = torch.tensor([[1, 1, 1, 1, 1],
                             [1, 1, 1, 1, 1],
                             [1, 1, int(mask_type == "B"), 0, 0],
                             [0, 0, 0, 0, 0],
                             [0, 0, 0, 0, 0]], dtype=torch.float32)
    assert torch.equal(conv.mask, expected)


def test_pixelcnn_output_at_i_depends_only_on_positions_before_i():
    torch.manual_seed(0)
    h, w, k = 5, 6, 7
    model = PixelCNN(k, (h, w), width=16, depth=3)
    # Differentiate through one-hot inputs so that autograd can see which
    # input positions each output reads; sum over a few random grids so that
    # a ReLU that happens to be off does not hide a dependence.
    codes = torch.randint(0, k, (4, h, w))
    one_hot = torch.nn.functional.one_hot(codes, k).float().requires_grad_(True)
    emb = (one_hot @ model.embed.weight).permute(0, 3, 1, 2)
    logits = model.head(model.blocks(model.first(emb)))
    torch.testing.assert_close(logits, model(codes))
    for i in range(h * w):
        r, c = divmod(i, w)
        grad, = torch.autograd.grad(logits[:, :, r, c].abs().sum(), one_hot, retain_graph=True)
        reads = grad.abs().sum(dim=(0, 3)).flatten() > 0
        assert not reads[i:].any(), f"position {i} reads position(s) {reads[i:].nonzero().flatten().tolist()}"
        if c > 0:
            assert reads[i - 1], f"position {i} should read its left neighbour"
        if r > 0:
            assert reads[i - w], f"position {i} should read the position above it"


def test_pixelcnn_loss_sampling_and_bits():
    torch.manual_seed(0)
    model = PixelCNN(10, (4, 4), width=8, depth=2)
    codes = torch.randint(0, 10, (6, 4, 4))
    t = model.loss_terms(codes)
    assert t["loss"].item() == pytest.approx(model.nll(codes).mean().item() / 16, rel=1e-5)
    assert t["bits_per_code"].item() == pytest.approx(t["loss"].item() / math.log(2), rel=1e-5)
    # an untrained net is close to uniform: about log2(10) bits per code
    assert abs(t["bits_per_code"].item() - math.log2(10)) < 1.0
    samples = model.sample(3, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 4, 4) and samples.dtype == torch.int64
    assert 0 <= samples.min() and samples.max() < 10


# ------------------------------------------------------------ smoke training
def test_vqvae_trains_a_few_steps_and_logs_usage():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 16, 16), generator=gen, dtype=torch.uint8)
    torch.manual_seed(0)
    model = VQVAE((3, 16, 16), latent_dim=8, num_codes=16, width=16, restart_dead=True)
    history = fit(model, x, epochs=2, batch_size=16, lr=2e-3, device="cpu",
                  progress=False, log_every=2)
    assert len(history.epochs) == 2 and len(history.steps) == 4
    for key in ("loss", "mse", "codebook", "commitment", "perplexity", "dead_codes"):
        assert key in history.epochs[-1] and math.isfinite(history.epochs[-1][key])
    assert history.epochs[-1]["mse"] < history.epochs[0]["mse"] * 1.5
    test = evaluate(model, x[:32])
    assert 1.0 <= test["perplexity"] <= 16


def test_vq_experiments_build_and_pixelcnn_trains_on_code_grids(fresh_cache):
    cfg = experiments.get_config("vqvae", "smoke", train_size=64, test_size=32)
    model = build_model(cfg, (3, 32, 32))
    assert isinstance(model, VQVAE) and model.grid == (8, 8)
    assert model.quantizer.num_codes == cfg.num_codes
    with pytest.raises(ValueError, match="codebook_update"):
        experiments.get_config("vqvae", "smoke", codebook_update="kmeans")
    with pytest.raises(ValueError, match="num_codes"):
        experiments.get_config("vqvae", "smoke", num_codes=1)


def test_pixelcnn_experiment_end_to_end_in_smoke(fresh_cache, monkeypatch):
    """The derived model: a VQ-VAE trained on images, then a PixelCNN on its
    code grids (random CIFAR-shaped images, so that the test takes seconds)."""
    from autoencoders.data import ImageData

    def fake_load(name, split):
        gen = torch.Generator().manual_seed(int(split == "train"))
        n = 64 if split == "train" else 32
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
        return ImageData(name, split, images, torch.zeros(n, dtype=torch.int64), "random")

    monkeypatch.setattr(cache.data_mod, "load", fake_load)
    config = experiments.get_config("pixelcnn", "smoke", epochs=1)
    run = cache.get_or_train(config)
    assert run.metrics["input_shape"] == [8, 8]
    assert "code grids of vqvae" in run.metrics["data"]
    assert run.metrics["test"]["bits_per_code"] < 8.5  # K = 128: log2 K = 7 if uniform
    samples = run.model.sample(2)
    upstream = cache.get_or_train(experiments.get_config("vqvae", "smoke"))
    assert upstream.trained is False  # the PixelCNN's run trained and cached it
    assert upstream.model.decode_codes(samples).shape == (2, 3, 32, 32)


# ------------------------------------- the two chapters' analyses (smoke)
@pytest.fixture
def tiny_data(fresh_cache, monkeypatch):
    """Smoke profile on random images of the real shapes (MNIST 1x28x28,
    CIFAR-10 3x32x32; 64 training and 40 test images, labels 0..9 in turn),
    so that the chapters' analyses run on freshly trained models in seconds."""
    from autoencoders.data import ImageData

    def fake_load(name, split):
        gen = torch.Generator().manual_seed(int(split == "train"))
        n = 64 if split == "train" else 40
        shape = (1, 28, 28) if name == "mnist" else (3, 32, 32)
        images = torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
        return ImageData(name, split, images, torch.arange(n) % 10, "random")

    monkeypatch.setattr(cache.data_mod, "load", fake_load)
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")


def test_vqvae_chapter_analysis(tiny_data):
    from autoencoders.analysis import vqvae

    runs = vqvae.train_variants()
    assert list(runs) == list(vqvae.VARIANTS)
    budget = vqvae.budget(runs)
    assert (budget.K, budget.h, budget.n) == (128, 8, 64)
    assert budget.bits_per_image == pytest.approx(64 * 7)
    assert budget.steps == 1 * math.ceil(64 / budget.batch)
    assert budget.memory_share == pytest.approx(budget.memory / budget.steps)
    adam = torch.optim.Adam([torch.zeros(1)]).defaults   # what the trainer's Adam gets
    assert (budget.adam_beta1, budget.adam_beta2) == adam["betas"]
    assert budget.adam_eps == adam["eps"]

    x = cache.load_data(runs["vqvae"].config)[1].floats()
    st = vqvae.straight_through_check(runs["vqvae"].model, x[:8])
    assert st.gap == 0.0 and st.forward_gap < 1e-5 and st.grad_norm > 0

    study = vqvae.codebook_study(runs)
    assert study.test_n == 40 and list(study.variants) == list(vqvae.VARIANTS)
    for name, v in study.variants.items():
        model = runs[name].model
        assert v.used + v.dead == 128 and int(v.counts.sum()) == 40 * 64
        assert 1.0 <= v.ppl <= v.used
        with torch.no_grad():
            model.eval()
            assert v.mse == pytest.approx(float((model(x) - x).pow(2).mean()), rel=1e-5)
        assert v.psnr == pytest.approx(metrics.psnr(v.mse))
        assert v.first_step == runs[name].metrics["steps"][0]["step"]
        assert set(v.numbers()) >= {"mse", "ppl", "dead", "used", "restarts", "edge_kept"}
    assert study.restart_gain == pytest.approx(
        study.variants["vqvae"].ppl / study.variants["vqvae-no-restart"].ppl)
    table = study.table()
    assert table.shape == (3, 6) and list(table.index) == list(vqvae.VARIANTS.values())
    idx = one_per_class(torch.arange(40) % 10, which=1)
    assert idx == list(range(10, 20))


def test_codebook_study_restart_gain_and_table():
    from autoencoders.analysis.vqvae import VARIANTS, CodebookStudy, VariantUsage

    def usage(ppl, dead):
        return VariantUsage(mse=0.01, psnr=20.0, codebook_term=0.001, ppl=ppl, dead=dead,
                            used=128 - dead, restarts=0, first_step=2, first_dead=120,
                            first_ppl=1.5, edge_kept=60.0, counts=torch.ones(128),
                            steps=[], model=torch.nn.Identity())

    study = CodebookStudy(num_codes=128, test_n=10, originals=torch.zeros(1), variants={
        "vqvae": usage(40.0, 3), "vqvae-ema": usage(30.0, 5), "vqvae-no-restart": usage(10.0, 90)})
    assert study.restart_gain == 4.0  # with restarts over without
    table = study.table()
    assert table.loc[VARIANTS["vqvae-no-restart"], "dead codes (test set)"] == 90
    assert study.variants["vqvae"].numbers()["used"] == 125


def test_in_use_step_is_the_first_logged_step_with_95_percent_of_codes_used():
    from autoencoders.analysis.vqvae import CodebookStudy, VariantUsage

    def logged(*dead):  # a run's logged steps 10, 20, ... with these dead codes
        return VariantUsage(mse=0.01, psnr=20.0, codebook_term=0.001, ppl=10.0, dead=0,
                            used=100, restarts=0, first_step=10, first_dead=dead[0],
                            first_ppl=1.0, edge_kept=60.0, counts=torch.ones(100),
                            steps=[{"step": 10 * (i + 1), "dead_codes": d}
                                   for i, d in enumerate(dead)],
                            model=torch.nn.Identity())

    # K = 100: in use with at most 5 dead codes on a batch; 6 is not enough,
    # and a later relapse does not move the first step
    study = CodebookStudy(num_codes=100, test_n=10, originals=torch.zeros(1), variants={
        "late": logged(90, 40, 6, 5, 30), "never": logged(90, 80, 6), "early": logged(0, 50)})
    assert study.in_use_step("late") == 40
    assert study.in_use_step("never") is None
    assert study.in_use_step("early") == 10


def test_unigram_bits():
    from autoencoders.analysis import vqvae_generation as generation

    # training codes: code 0 three times, code 1 once, K = 2; smoothed
    # frequencies (3+1)/(4+2) and (1+1)/(4+2); the test grid is all code 1
    train = torch.tensor([[[0, 0], [0, 1]]])
    test = torch.ones(1, 2, 2, dtype=torch.long)
    assert generation.unigram_bits(train, test, 2) == pytest.approx(-math.log2(2 / 6))


def test_neighbour_pairs_and_their_bits_under_the_training_pairs():
    from autoencoders.analysis import vqvae_generation as generation

    grid = torch.tensor([[[0, 1], [2, 3]]])  # pairs 0-1, 2-3 across; 0-2, 1-3 down
    assert sorted(generation.neighbour_pairs(grid, 4).tolist()) == [1, 2, 7, 11]
    # training grids: pair 0-1 twice, 0-0 and 1-1 once each (K = 2, 4 pairs);
    # smoothed counts 0-0: 2, 0-1: 3, 1-0: 1, 1-1: 2, of 8
    train = torch.tensor([[[0, 1], [0, 1]]])  # across 0-1, 0-1; down 0-0, 1-1
    assert generation.pair_bits(torch.tensor([[[0, 1]]]), train, 2) == pytest.approx(
        -math.log2(3 / 8))
    # pairs never seen (1-0) cost the most; this grid costs more than the training grid
    other = torch.tensor([[[1, 0], [1, 0]]])  # across 1-0, 1-0; down 1-1, 0-0
    expected = (2 * -math.log2(1 / 8) - math.log2(2 / 8) - math.log2(2 / 8)) / 4
    assert generation.pair_bits(other, train, 2) == pytest.approx(expected)
    assert generation.pair_bits(other, train, 2) > generation.pair_bits(train, train, 2)


def test_vqvae_generation_chapter_analysis(tiny_data):
    from autoencoders.analysis import vqvae_generation as generation

    runs = generation.train_models()
    budget = generation.budget(runs)
    assert budget.n == 64 and budget.log2K == 7.0 and budget.full_ratio > 0

    study = generation.prior_study(runs)
    test = cache.load_data(runs["VQ-VAE"].config)[1]
    codes = runs["VQ-VAE"].model.codes(test.floats())
    with torch.no_grad():
        nll = runs["prior"].model.nll(codes)
    assert study.bits == pytest.approx(float(nll.mean()) / 64 / math.log(2), rel=1e-5)
    assert study.uniform_bits == 7.0
    assert study.context_bits == pytest.approx(study.unigram_bits - study.bits)
    assert study.saving == pytest.approx(100 * (1 - study.bits / 7))
    train = cache.load_data(runs["VQ-VAE"].config)[0]
    stored = generation.code_grids(runs["VQ-VAE"], train, test)   # what both studies read
    assert torch.equal(stored[1], codes) and torch.equal(
        stored[0], runs["VQ-VAE"].model.codes(train.floats()))

    drawn = generation.samples(runs)
    assert [len(r) for r in drawn.rows.values()] == [10] * 5
    assert all(r.shape[1:] == (3, 32, 32) for r in drawn.rows.values())
    assert set(drawn.pairs) == {"test", "pixelcnn", "uniform"}
    assert all(0 <= share <= 100 for share in drawn.pairs.values())

    bound = generation.likelihood_bound(runs, sigma_images=32)
    assert bound.total == pytest.approx(bound.decoder + bound.prior)
    assert bound.prior == pytest.approx(bound.prior_code * 64 / 3072)
    assert 0 < bound.decoder_share < 100

    comparison = generation.compare_bottlenecks(runs)
    assert list(comparison.models) == ["AE", "VAE", "VQ-VAE"]
    assert list(comparison.mnist) == ["AE", "VAE"]
    ae, vae, vq = (comparison.models[n] for n in ("AE", "VAE", "VQ-VAE"))
    assert ae.extra == 0.0 and ae.objective == runs["AE"].metrics["test"]["mse"]
    t = runs["VAE"].metrics["test"]
    assert vae.extra == pytest.approx(runs["VAE"].config.kl_weight * t["kl"])
    t = runs["VQ-VAE"].metrics["test"]
    assert vq.objective == t["loss"]
    assert vq.extra == pytest.approx(t["codebook"] + 0.25 * t["commitment"])
    assert vq.objective == pytest.approx(t["mse"] + vq.extra, rel=1e-5)
    assert comparison.vae_c == pytest.approx(comparison.kl_weight * 3072 / 2)
    # the identity the chapter's answer rests on: VQ objective - AE objective
    # = the VQ-VAE's extra terms - its reconstruction advantage
    assert vq.objective - ae.objective == pytest.approx(
        vq.extra - comparison.vq_mse_advantage, rel=1e-4, abs=1e-7)
    assert comparison.table().shape == (3, 7)
    # the linear yardsticks, by a second route: PCA's error from metrics.pca_mse, and the
    # best linear VAE at the VAE's c from metrics.linear_vae_optimum
    train, test = cache.load_data(runs["VQ-VAE"].config)
    assert comparison.pca["mse"] == pytest.approx(
        metrics.pca_mse(train.images, test.images, comparison.pca["k"]), rel=1e-6)
    assert comparison.pca["k"] == min(comparison.ae_latent, len(train))
    assert 0 < comparison.pca["detail"]
    optimum = metrics.linear_vae_optimum(train.images, comparison.vae_c)
    assert comparison.linear["active"] == optimum.active
    assert comparison.linear["mse"] == pytest.approx(optimum.mse)
    assert 0 < comparison.linear["share"] <= 1
    numbers = comparison.numbers()  # under the names the chapter glues
    assert numbers["abl_vqvae_mse"] == vq.mse and numbers["mnist_ae_objective"] == \
        comparison.mnist["AE"].objective
    vae_kl = runs["VAE"].metrics["test"]["kl"]
    assert vae_kl > 0 and numbers["abl_vae_kl_bits"] == pytest.approx(vae_kl / math.log(2))
    assert study.numbers()["capacity_bits"] == 64 * 7.0
    assert study.numbers()["grid_bits"] == pytest.approx(64 * study.bits)


@pytest.mark.parametrize("update", ["loss", "ema"])
def test_vqvae_trains_under_bfloat16_autocast_with_restarts(update):
    """AUTOENCODERS_AMP=1 on the full profile's VQ-VAE: the encoder's outputs
    are bfloat16, and dead-code restarts and EMA updates write them into the
    float32 codebook (this raised a dtype error before)."""
    torch.manual_seed(0)
    model = VQVAE((3, 16, 16), latent_dim=8, num_codes=16, width=16,
                  codebook_update=update, restart_dead=True)
    model.quantizer.patience = 1
    fit(model, torch.rand(64, 3, 16, 16), epochs=2, batch_size=16, lr=1e-3, device="cpu",
        progress=False, amp=True)
    assert model.quantizer.codebook.dtype == torch.float32
    assert int(model.quantizer.restarts_total) > 0
    assert torch.isfinite(model.quantizer.codebook).all()


@pytest.mark.parametrize("grid, depth", [((8, 8), 4), ((6, 9), 2), ((3, 3), 1)])
def test_positions_given_one_label_compute_the_same_function(grid, depth):
    """An independent route to the positions a PixelCNN cannot tell apart:
    for two positions p and q given one label, moving a random grid of codes
    by q - p (new codes where it leaves cells empty) must give q the logits p
    had. Positions given different labels are not checked: that they differ
    on some grid is what the label claims, not a guarantee for every grid."""
    from autoencoders.analysis.vqvae_generation import position_classes

    torch.manual_seed(0)
    h, w = grid
    model = PixelCNN(7, grid, width=16, depth=depth).eval()
    labels = position_classes(model)
    assert labels.shape == (h * w,) and bool((labels <= torch.arange(h * w)).all())
    codes = torch.randint(0, 7, (1, h, w))
    with torch.no_grad():
        logits = model(codes)[0]
        shared = 0
        for q in range(h * w):
            p = int(labels[q])
            if p == q:
                continue
            dr, dc = q // w - p // w, q % w - p % w
            moved = torch.randint(0, 7, (1, h, w))
            rows, cols = slice(max(dr, 0), h + min(dr, 0)), slice(max(dc, 0), w + min(dc, 0))
            moved[0, rows, cols] = codes[0, max(-dr, 0):h - max(dr, 0), max(-dc, 0):w - max(dc, 0)]
            there = model(moved)[0]
            assert torch.allclose(there[:, q // w, q % w], logits[:, p // w, p % w], atol=1e-5), (p, q)
            shared += 1
    assert shared > 0 or len(labels.unique()) == h * w


@pytest.mark.parametrize("grid, depth", [((8, 8), 4), ((6, 9), 2), ((3, 3), 1)])
def test_full_context_positions_match_what_the_logits_depend_on(grid, depth):
    """An independent route to the positions whose logits read every code
    before them: change the code at one cell at a time and see which
    positions' logits move. A position is full when every earlier cell moves
    its logits on one of several random grids (so that a ReLU switched off by
    one grid does not hide a dependence). Any change counts: the path at the edge of
    the reach is a product of few small weights, while a cell outside the reach
    leaves the logits bit for bit as they were (its masked weights are zeros)."""
    from autoencoders.analysis.vqvae_generation import full_context_positions

    torch.manual_seed(0)
    h, w = grid
    model = PixelCNN(7, grid, width=16, depth=depth).eval()
    n = h * w
    depends = torch.zeros(n, n, dtype=torch.bool)  # [q, k]: logits at q move with code k
    with torch.no_grad():
        for _ in range(12):
            codes = torch.randint(0, 7, (1, h, w))
            base = model(codes)[0].flatten(1)  # (K, n)
            for k in range(n):
                changed = codes.clone()
                changed.view(-1)[k] = (changed.view(-1)[k] + 1) % 7
                moved = (model(changed)[0].flatten(1) != base).any(dim=0)
                depends[:, k] |= moved
    expected = torch.tensor([bool(depends[q, :q].all()) for q in range(n)])
    full = torch.as_tensor(full_context_positions(model)).flatten().bool()
    assert torch.equal(full, expected)
    assert bool(full[0])
