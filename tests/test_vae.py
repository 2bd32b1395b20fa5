"""The VAE's loss against torch.distributions, and the IWAE bound."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from autoencoders import losses, metrics
from autoencoders.models import VAE


def _images(n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=gen)


def _posterior_sample(model, x, seed):
    """mu, logvar and the z that loss_terms draws after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    return mu, logvar, z


@pytest.mark.parametrize("arch", ["conv", "linear"])
def test_bernoulli_vae_loss_is_the_negative_elbo_of_torch_distributions(arch):
    torch.manual_seed(0)
    model = VAE((1, 28, 28), latent_dim=5, arch=arch, kl_weight=1.0, likelihood="bernoulli")
    x = _images()
    mu, logvar, z = _posterior_sample(model, x, seed=7)
    # grey levels as Bernoulli "probabilities": the same formula, off its support
    log_px = Bernoulli(logits=model.decoder(z), validate_args=False).log_prob(x).flatten(1).sum(1)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    torch.manual_seed(7)
    terms = model.loss_terms(x)
    assert terms["recon"].item() == pytest.approx(-log_px.mean().item(), rel=1e-5)
    assert terms["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx((kl - log_px).mean().item(), rel=1e-5)
    assert terms["neg_elbo"].item() == pytest.approx(terms["loss"].item(), rel=1e-6)


def test_gaussian_vae_loss_is_the_rescaled_negative_elbo_with_lambda_2c():
    torch.manual_seed(1)
    kl_weight = 0.004
    model = VAE((1, 28, 28), latent_dim=3, arch="conv", kl_weight=kl_weight, likelihood="gaussian")
    d = 28 * 28
    c = model.decoder_variance
    assert c == pytest.approx(kl_weight * d / 2)  # lambda = kl_weight * D = 2c
    x = _images(seed=2)
    mu, logvar, z = _posterior_sample(model, x, seed=3)
    mean = torch.sigmoid(model.decoder(z))
    log_px = Normal(mean, math.sqrt(c)).log_prob(x).flatten(1).sum(1)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    neg_elbo = kl - log_px
    # ||x - f(z)||^2 + 2c KL is 2c (-ELBO) minus a constant; divided by D:
    rescaled = (2 * c / d) * neg_elbo - c * math.log(2 * math.pi * c)
    torch.manual_seed(3)
    terms = model.loss_terms(x)
    assert terms["loss"].item() == pytest.approx(rescaled.mean().item(), rel=1e-4)
    assert terms["neg_elbo"].item() == pytest.approx(neg_elbo.mean().item(), rel=1e-4)
    sse = (x - mean).pow(2).flatten(1).sum(1)
    assert (sse + 2 * c * kl).mean().item() / d == pytest.approx(terms["loss"].item(), rel=1e-4)


def test_gaussian_kl_matches_torch_for_any_diagonal_gaussians():
    gen = torch.Generator().manual_seed(4)
    mq, lq, mp, lp = (torch.randn(8, 6, generator=gen) for _ in range(4))
    expected = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp())).sum(1)
    assert torch.allclose(losses.gaussian_kl(mq, lq, mp, lp), expected, atol=1e-5)
    assert torch.allclose(losses.gaussian_kl(mq, lq),
                          kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(0.0, 1.0)).sum(1),
                          atol=1e-5)


class _LinearGaussianVAE(nn.Module):
    """p(z) = N(0, 1), p(x|z) = N(a z, c) in one dimension, with an encoder
    returning a fixed Gaussian: log p(x) is known exactly."""

    def __init__(self, a, c, q_mean, q_logvar):
        super().__init__()
        self.a, self.c = a, c
        self.q = nn.Parameter(torch.tensor([q_mean, q_logvar]))

    def encode(self, x):
        n = x.shape[0]
        return self.q[0].expand(n, 1), self.q[1].expand(n, 1)

    def decoder(self, z):
        return self.a * z

    def log_likelihood(self, mean, x):
        return Normal(mean, math.sqrt(self.c)).log_prob(x).sum(1)


def test_iwae_is_exact_with_the_true_posterior_and_tightens_with_k_otherwise():
    a, c, x0 = 2.0, 0.5, 1.3
    x = torch.full((50, 1), x0)
    true_nll = -Normal(0.0, math.sqrt(a * a + c)).log_prob(torch.tensor(x0)).item()
    post_var = c / (a * a + c)
    exact = _LinearGaussianVAE(a, c, a * x0 / (a * a + c), math.log(post_var))
    for k, nll in metrics.iwae_nll(exact, x, ks=(1, 7)).items():
        assert torch.allclose(nll, torch.full_like(nll, true_nll), atol=1e-4), k
    wrong = _LinearGaussianVAE(a, c, 0.0, 0.0)  # q = the prior: a loose bound
    bounds = {k: v.mean().item() for k, v in metrics.iwae_nll(wrong, x, ks=(1, 10, 1000)).items()}
    assert bounds[1] > bounds[10] > bounds[1000] > true_nll - 0.05
    assert bounds[1000] - true_nll < 0.1 * (bounds[1] - true_nll)


def test_iwae_with_k_1_averages_to_the_models_negative_elbo():
    torch.manual_seed(5)
    model = VAE((1, 28, 28), latent_dim=4, arch="linear", kl_weight=1.0, likelihood="bernoulli")
    x = _images(n=4).repeat(500, 1, 1, 1)
    one = metrics.iwae_nll(model, x, ks=(1,), seed=0)[1].mean().item()
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = model.loss_terms(x)["neg_elbo"].item()
    assert one == pytest.approx(elbo, rel=2e-3)
    assert metrics.bits_per_dim(one, 784) == pytest.approx(one / (784 * math.log(2)))


def test_the_binarised_k_1_bound_averages_to_the_grey_level_one():
    """eq-vm-binarised of the VAE chapter: the Bernoulli log-likelihood is
    linear in the target, so with the same draws of z (from q(z|x) of the grey
    image) the k = 1 bound averaged over binarisations b ~ Bernoulli(x) is
    the grey-level one. With pixels of 0, 1/2 and 1 the two binarisations
    that round the halves up and down are that average exactly."""
    torch.manual_seed(7)
    model = VAE((1, 28, 28), latent_dim=4, arch="linear", kl_weight=1.0, likelihood="bernoulli")
    gen = torch.Generator().manual_seed(8)
    x = torch.randint(0, 3, (5, 1, 28, 28), generator=gen).float() / 2  # 0, 1/2, 1
    up, down = (x >= 0.5).float(), (x > 0.5).float()
    grey = metrics.iwae_nll(model, x, ks=(1,), seed=3)[1]
    b_up = metrics.iwae_nll(model, x, ks=(1,), target=up, seed=3)[1]
    b_down = metrics.iwae_nll(model, x, ks=(1,), target=down, seed=3)[1]
    assert torch.allclose((b_up + b_down) / 2, grey, rtol=1e-6, atol=1e-4)
    assert (b_up - b_down).abs().min() > 1.0  # the target is what is scored


# ------------------------------------------- the chapter's analysis (smoke)
def test_the_vae_chapters_analysis_runs(monkeypatch):
    from autoencoders.analysis import vae_mnist as analysis

    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    vae = analysis.vae_training()
    assert vae.pixels == 784 and vae.full_epochs == 25
    assert vae.recon_first == vae.run.metrics["history"][0]["recon"]
    bounds = analysis.likelihood_bounds(vae, n=20, ks=(1, 10))
    assert bounds.k_max == 10 and bounds.gap == pytest.approx(bounds.nll[1] - bounds.nll[10])
    assert bounds.bits_per_dim[1] == pytest.approx(metrics.bits_per_dim(bounds.nll[1], 784))
    pics = analysis.pictures(vae, judged=50, walk_pairs=((1, 7),), walk_steps=5)
    assert pics.at_mean.shape == pics.at_draw.shape == pics.digits.shape == (10, 1, 28, 28)
    assert pics.samples.shape == (64, 1, 28, 28) and list(pics.walk) == ["1 → 7"]
    assert pics.walk["1 → 7"].shape == (5, 1, 28, 28)
    assert set(pics.confident_pct) == {"real", "recon", "samples"}
    assert set(pics.read_as_label_pct) == {"real", "recon", "draw"} and pics.judged == 50
    assert set(pics.read_gap_se) == {"recon", "draw"}
    assert all(0 <= v <= 100 for v in pics.read_as_label_pct.values())
    assert pics.labels == list(range(10)) and len(pics.read_at_mean) == 10
    assert pics.misread_at_mean == [y for y, r in zip(range(10), pics.read_at_mean) if y != r]
    assert pics.code_var.shape == (vae.config.latent_dim,) and pics.code_sigma > 0
    assert all(0 <= v <= 100 for v in [*pics.confident_pct.values(), pics.walk_confident_pct])
    assert 0 <= pics.draw_vs_mean_mse < 1 and 0 <= pics.mean_vs_digit_mse < 1
    # the numbers the chapter glues and its claims read
    assert vae.numbers()["last_drop"] == vae.last_drop
    assert bounds.numbers()["iw_best"] == bounds.nll[10] and bounds.numbers()["iw_kmax"] == 10
    assert pics.numbers()["draw_vs_mean_pct"] == pytest.approx(
        100 * pics.draw_vs_mean_mse / pics.mean_vs_digit_mse)
    assert pics.numbers()["confident_samples"] == pics.confident_pct["samples"]
    again = analysis.pictures(vae, judged=50, walk_pairs=((1, 7),), walk_steps=5)  # stored
    assert again.numbers() == pics.numbers() and again.labels == pics.labels
    assert torch.equal(again.walk["1 → 7"], pics.walk["1 → 7"])
    assert torch.equal(again.code_var, pics.code_var) and again.judged == 50
