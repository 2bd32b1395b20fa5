"""Score-function and reparameterization gradient estimators: unbiasedness
on closed-form cases, baselines, the symbolic derivation, the discrete VAE."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autoencoders import derivations, estimators as E, losses, metrics
from autoencoders.models import DiscreteVAE


def _problem(seed=0, D=7, d=3):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(D, d, generator=gen, dtype=torch.float64)
    b = torch.randn(D, generator=gen, dtype=torch.float64)
    dec = metrics.LinearGaussianDecoder(W, b, c=0.7)
    x = torch.randn(D, generator=gen, dtype=torch.float64)
    mu = torch.randn(d, generator=gen, dtype=torch.float64)
    sigma = 0.3 + torch.rand(d, generator=gen, dtype=torch.float64)
    return dec, x, mu, sigma


def test_closed_form_expectation_and_gradient_agree_with_autograd_and_sampling():
    dec, x, mu, sigma = _problem()
    mu_, sigma_ = mu.clone().requires_grad_(), sigma.clone().requires_grad_()
    r = x - dec.b
    value = (-0.5 * len(x) * math.log(2 * math.pi * dec.c)
             - ((r - dec.W @ mu_).pow(2).sum() + (sigma_ ** 2 * (dec.W ** 2).sum(0)).sum()) / (2 * dec.c))
    value.backward()
    g_mu, g_sigma = dec.exact_gradient(x, mu, sigma)
    assert torch.allclose(mu_.grad, g_mu) and torch.allclose(sigma_.grad, g_sigma)
    assert dec.expected_log_prob(x, mu, sigma) == pytest.approx(value.item())
    gen = torch.Generator().manual_seed(1)
    z = mu + sigma * torch.randn(400_000, len(mu), generator=gen, dtype=torch.float64)
    values = dec.log_prob(x)(z)
    assert abs(values.mean().item() - value.item()) < 5 * values.std().item() / len(z) ** 0.5


@pytest.mark.parametrize("name", E.ESTIMATORS)
def test_every_estimator_is_unbiased_on_the_closed_form_case(name):
    dec, x, mu, sigma = _problem(seed=2)
    exact = torch.cat(dec.exact_gradient(x, mu, sigma))
    gen = torch.Generator().manual_seed(3)
    eps = torch.randn(2000, 50, len(mu), generator=gen, dtype=torch.float64)  # 2000 estimates, n = 50
    g_mu, g_sigma = E.estimator_samples(name, dec.log_prob(x), mu, sigma, eps,
                                        dec.expected_log_prob(x, mu, sigma))
    est = torch.cat([g_mu.mean(1), g_sigma.mean(1)], dim=-1)
    z = (est.mean(0) - exact) / (est.var(0) / len(est)).sqrt()
    assert z.abs().max() < 4.5, z


def test_baselines_reduce_the_score_function_variance_and_reparameterization_is_lowest():
    dec, x, mu, sigma = _problem(seed=4)
    study = E.variance_study(dec.log_prob(x), mu, sigma, dec.exact_gradient(x, mu, sigma),
                             dec.expected_log_prob(x, mu, sigma), sample_counts=(1, 2, 8, 32),
                             replicates=300)
    plain = study["score"].variance
    assert study["score + leave-one-out baseline"].sample_counts == [2, 8, 32]
    assert all(b < p for b, p in zip(study["score + constant baseline"].variance, plain))
    assert all(r < b for r, b in zip(study["reparameterization"].variance,
                                     study["score + constant baseline"].variance))
    # the variance of an n-sample mean falls like 1/n
    v = study["reparameterization"].variance
    assert v[0] / v[-1] == pytest.approx(32, rel=0.35)


@pytest.mark.parametrize("name", E.ESTIMATORS)
def test_each_estimators_variance_falls_like_one_over_n(name):
    """variance_study averages n independent draws, so every estimator's
    variance falls like 1/n: the score-function chapter states it, from the
    mathematics, not as a claim of the build. (The leave-one-out baseline
    shares its draws, so it falls a little faster at small n.)"""
    dec, x, mu, sigma = _problem(seed=5)
    counts = (2, 4, 8, 16, 32)
    study = E.variance_study(dec.log_prob(x), mu, sigma, dec.exact_gradient(x, mu, sigma),
                             dec.expected_log_prob(x, mu, sigma), sample_counts=counts,
                             replicates=2000, seed=6, estimators=(name,))[name]
    assert study.sample_counts == list(counts)
    slope = np.polyfit(np.log(counts), np.log(study.variance), 1)[0]
    assert -1.25 < slope < -0.8, (slope, study.variance)


def test_leave_one_out_baseline():
    v = torch.tensor([[1.0, 2.0, 6.0]])
    assert torch.allclose(losses.leave_one_out_baseline(v), torch.tensor([[4.0, 3.5, 1.5]]))
    with pytest.raises(ValueError):
        losses.leave_one_out_baseline(torch.ones(3, 1))
    with pytest.raises(ValueError):
        E.score_function_samples(lambda z: z.sum(-1), torch.zeros(2), torch.ones(2),
                                 torch.randn(4, 2), baseline="median")


def test_categorical_score_surrogate_is_unbiased_for_the_gradient_of_an_expectation():
    logits = torch.tensor([0.3, -1.0, 0.8, 0.0], requires_grad=True)
    reward = torch.tensor([2.0, -1.0, 0.5, 3.0])
    exact = torch.autograd.grad(-(torch.softmax(logits, 0) * reward).sum(), logits)[0]
    gen = torch.Generator().manual_seed(0)
    samples = torch.multinomial(torch.softmax(logits, 0).detach(), 200_000, True, generator=gen)
    surrogate = losses.categorical_score_surrogate(logits.expand(len(samples), -1), samples,
                                              reward[samples], baseline=1.1).mean()
    estimate = torch.autograd.grad(surrogate, logits)[0]
    assert torch.allclose(estimate, exact, atol=0.02), (estimate, exact)


def test_symbolic_derivation_checks_pass_and_give_the_known_variances():
    import sympy as sp

    out = derivations.derive_score_function(categories=3)
    s = out["symbols"]
    assert sp.simplify(out["var_reparam"] - s["a"] ** 4 * s["sigma"] ** 2 / s["c"] ** 2) == 0
    assert sp.simplify(out["ratio_best"] - (sp.Rational(3, 2)
                       + 2 * s["r"] ** 2 / (s["a"] ** 2 * s["sigma"] ** 2))) == 0
    assert sp.simplify(out["grad_mu"] - s["a"] * (s["x"] - s["b"] - s["a"] * s["mu"]) / s["c"]) == 0


@pytest.mark.parametrize("estimator", ["score", "gumbel"])
def test_discrete_vae_gradients_reach_the_code_logits(estimator):
    torch.manual_seed(0)
    model = DiscreteVAE((1, 28, 28), latent_dim=2, categories=5, estimator=estimator,
                        samples=3, usage_weight=1.0).train()
    x = torch.rand(8, 1, 28, 28)
    terms = model.loss_terms(x)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert model.to_logits.weight.grad.abs().sum() > 0
    assert model.decode(torch.arange(5), torch.zeros(5, 2)).shape == (5, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert model.code(x).shape == (8,)
        assert model.loss_terms(x)["neg_elbo"] > 0
    with pytest.raises(ValueError):
        DiscreteVAE((1, 28, 28), estimator="score", samples=1)


@pytest.mark.parametrize("offset", [None, 0.0, 2.5])  # baseline 0, E_q[f], E_q[f] - 2.5
def test_closed_form_variances_match_sampling_in_several_dimensions(offset):
    dec, x, mu, sigma = _problem(seed=5)
    value = dec.expected_log_prob(x, mu, sigma)
    beta = 0.0 if offset is None else value - offset
    closed = E.closed_form_variances(dec, x, mu, sigma, beta)
    gen = torch.Generator().manual_seed(6)
    eps = torch.randn(400_000, 1, len(mu), generator=gen, dtype=torch.float64)
    f = dec.log_prob(x)
    for name, (g_mu, g_sigma) in {
            "score": E.score_function_samples(f, mu, sigma, eps, baseline=beta),
            "reparameterization": E.reparameterization_samples(f, mu, sigma, eps)}.items():
        sampled_mu, sampled_sigma = g_mu[:, 0].var(0), g_sigma[:, 0].var(0)
        assert torch.allclose(closed[name].mu, sampled_mu, rtol=0.05), (name, closed[name].mu,
                                                                        sampled_mu)
        assert torch.allclose(closed[name].sigma, sampled_sigma, rtol=0.05), name
        assert closed[name].total == pytest.approx(float(sampled_mu.sum() + sampled_sigma.sum()),
                                                   rel=0.05)


def test_closed_form_variances_agree_with_the_sympy_derivation_in_one_dimension():
    from autoencoders.analysis.score_function import check_closed_form_in_one_dimension

    for seed in range(3):
        assert check_closed_form_in_one_dimension(seed=seed) < 1e-9


def test_the_chapters_estimator_comparison_runs():
    from autoencoders.analysis import score_function as analysis

    est = analysis.compare_estimators(latent=4, replicates=60, counts=(1, 4, 16))
    assert set(est.studies) == set(E.ESTIMATORS) == set(analysis.SHORT)
    assert est.studies["score + leave-one-out baseline"].sample_counts == [4, 16]
    assert est.ratio["reparameterization"] == 1.0
    assert est.predicted_ratio["reparameterization"] == 1.0
    assert est.predicted_ratio["score"] > est.predicted_ratio["score + constant baseline"] > 1
    assert est.sigma.shape == (4,) and math.isfinite(est.value)
    assert est.n_match == analysis.two_figures(est.ratio["score + constant baseline"] * 16)
    assert [analysis.two_figures(x) for x in (13469, 9.6, 151.2, 1049)] == [13000, 10, 150, 1000]
    # the bias panel: z of the first mu-coordinate, within each study's largest |z|
    for st in est.studies.values():
        z = st.mu_z(est.exact_mu0)
        assert len(z) == len(st.sample_counts)
        assert all(abs(v) <= b + 1e-9 for v, b in zip(z, st.bias_z))
    outside, points = est.bias_points
    assert points == 3 + 3 + 3 + 2 and 0 <= outside <= points
    lo, hi = est.ratio_range("score + constant baseline", from_n=4)
    rp, const = est.studies["reparameterization"], est.studies["score + constant baseline"]
    assert hi == pytest.approx(max(const.variance[1] / rp.variance[1],
                                   const.variance[2] / rp.variance[2])) and lo <= hi
    numbers = est.numbers()
    assert numbers["bias_expected"] == pytest.approx(points * 0.0455, rel=1e-3)
    assert numbers["biasz_max"] == max(est.max_bias_z.values())
    assert numbers["parallel_from"] == 16  # the study stops before PARALLEL_FROM
    formulas = analysis.formulas()
    assert formulas.ratio_best.endswith(r"\frac{3}{2} + \frac{2 r^{2}}{a^{2} \sigma^{2}}")


def test_the_chapters_discrete_code_study_runs(monkeypatch):
    from autoencoders.analysis import score_function as analysis

    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    code = analysis.discrete_code()
    K = code.config.categories
    assert set(code.agreement) == {"score", "gumbel"}
    assert code.agreement["score"].table.sum() == code.train_n
    assert len(code.grid) == K and code.grid_read.shape == (K, 10)
    assert 1 <= code.digits_down <= 10 and 1 <= code.digits_along <= 10
    assert 0 <= code.merged_digits <= 9 and len(code.kl_y_history) == code.config.epochs


def test_majority_chance_breaks_ties_at_random():
    """A code blind to the digit scores, through the majority map, the test
    share of the most frequent training digit; with tied digits (the balanced
    offline copy) the average of their shares, not the first one's."""
    import torch

    from autoencoders.analysis.score_function import _majority_chance

    test = torch.tensor([0] * 98 + [1] * 114 + [2] * 788)
    balanced = torch.arange(10).repeat(50)
    assert abs(_majority_chance(balanced, test) - 10.0) < 1e-9
    ones_most = torch.tensor([1, 1, 1, 0, 2])
    assert abs(_majority_chance(ones_most, test) - 11.4) < 1e-9
    two_tied = torch.tensor([0, 0, 2, 2, 1])
    assert abs(_majority_chance(two_tied, test) - (9.8 + 78.8) / 2) < 1e-9
