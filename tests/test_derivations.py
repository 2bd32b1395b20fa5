"""Every check in autoencoders.derivations: each derivation holds, and each
check really fails (with a DerivationError naming the identity) when the
mathematics is broken on purpose."""
from __future__ import annotations

import pickle

import pytest
import sympy as sp

from autoencoders import derivations as D

SYMBOLIC = {
    "conjugate_posterior": D.conjugate_posterior,
    "elbo_identity": D.elbo_identity,
    "gaussian_kl_scalar": D.gaussian_kl_scalar,
    "gaussian_kl_diagonal_2": lambda: D.gaussian_kl_diagonal(2),
    "gaussian_kl_diagonal_3": lambda: D.gaussian_kl_diagonal(3),
    "gaussian_decoder_nll": lambda: D.gaussian_decoder_nll(3),
    "gaussian_decoder_nll_1": lambda: D.gaussian_decoder_nll(1),
    "kl_weight_lambda": D.kl_weight_lambda,
    "vae_reconstruction_vs_ae": D.vae_reconstruction_vs_ae,
    "reparameterization": D.reparameterization,
}


@pytest.mark.parametrize("name", sorted(SYMBOLIC))
def test_symbolic_derivation_holds(name):
    result = SYMBOLIC[name]()
    assert isinstance(result, D.Derivation)
    assert result.checks, "a derivation must check something"
    for key in result.expressions:
        assert isinstance(result.latex(key), str)


def test_all_symbolic_runs_every_derivation():
    titles = [d.title for d in D.all_symbolic()]
    assert len(titles) == 8 and len(set(titles)) == 8


# ------------------------------------------------------------ the results
def test_conjugate_posterior_parameters():
    r = D.conjugate_posterior()
    assert sp.simplify(r["posterior_mean"] - D.vae.a * (D.vae.x - D.vae.b) / (D.vae.a**2 + D.vae.s**2)) == 0
    assert sp.simplify(r["posterior_var"] - D.vae.s**2 / (D.vae.a**2 + D.vae.s**2)) == 0
    # the second route: moments of the joint Gaussian of (z, x)
    assert r["mean_x"] == D.vae.b
    assert sp.simplify(r["var_x"] - (D.vae.a**2 + D.vae.s**2)) == 0
    assert r["cov_zx"] == D.vae.a


def test_elbo_optimum_is_the_posterior():
    r = D.elbo_identity()
    assert sp.simplify(r["mu_opt"] - D.vae.a * (D.vae.x - D.vae.b) / (D.vae.a**2 + D.vae.s**2)) == 0
    assert sp.simplify(r["sigma_opt"]**2 - D.vae.s**2 / (D.vae.a**2 + D.vae.s**2)) == 0
    # the ELBO never exceeds log p(x): the gap is a KL, non-negative on a grid of values
    gap = sp.lambdify((D.vae.x, D.vae.a, D.vae.b, D.vae.s, D.vae.mu, D.vae.sigma), r["gap"])
    for args in [(1.0, 1.5, 0.3, 0.5, 0.0, 1.0), (-2.0, 0.1, 1.0, 2.0, 3.0, 0.01),
                 (0.4, -1.0, 0.0, 1.0, -0.2, 0.7)]:
        assert gap(*args) >= 0


def test_lambda_is_twice_the_decoder_variance():
    r = D.kl_weight_lambda()
    assert r["lambda"] == 2 * D.vae.c and r["alpha"] == 2 * D.vae.c
    assert r["lambda_from_minimisers"] == 2 * D.vae.c
    dim = sp.Symbol("D", positive=True, integer=True)
    assert sp.simplify(r["constant"] - dim * D.vae.c * sp.log(2 * sp.pi * D.vae.c)) == 0


def test_lambda_is_chained_from_the_decoder_nll(monkeypatch):
    """A wrong decoder NLL (squared error over c instead of 2c) gives a
    different lambda by the rescaling route than by the minimisers."""
    real = D.vae.gaussian_decoder_nll

    def wrong(D_=3):
        r = real(D_)
        xs = sorted((v for v in r["nll"].free_symbols if v.name.startswith("x_")), key=str)
        fs = sorted((v for v in r["nll"].free_symbols if v.name.startswith("f_")), key=str)
        extra = sum((xi - fi) ** 2 for xi, fi in zip(xs, fs)) / (2 * D.vae.c)
        return D.Derivation(r.title, {**r.expressions, "nll": r["nll"] + extra}, r.checks)

    monkeypatch.setattr(D.vae, "gaussian_decoder_nll", wrong)
    with pytest.raises(D.DerivationError, match="lambda = 2c.*thm-vae-lambda"):
        D.kl_weight_lambda()


def test_lambda_catches_a_nll_that_is_not_affine_in_the_error(monkeypatch):
    real = D.vae.gaussian_decoder_nll

    def squared(D_=3):
        r = real(D_)
        return D.Derivation(r.title, {**r.expressions, "nll": r["nll"] ** 2}, r.checks)

    monkeypatch.setattr(D.vae, "gaussian_decoder_nll", squared)
    with pytest.raises(D.DerivationError, match="not an affine function"):
        D.kl_weight_lambda()


def test_reparameterization_values():
    r = D.reparameterization()
    assert sp.simplify(r["E_z2"] - (D.vae.mu**2 + D.vae.sigma**2)) == 0
    assert r["grad_mu_z2"] == 2 * D.vae.mu and r["grad_sigma_z2"] == 2 * D.vae.sigma
    assert sp.simplify(r["grad_logvar_z2"] - sp.exp(D.vae.logvar)) == 0


def test_pathwise_check_compares_against_the_density(monkeypatch):
    """The left side integrates against the density N(z; mu, var): feed it the
    standard deviation where the variance belongs and the check fails."""
    real = D.checks.density_expectation
    monkeypatch.setattr(D.vae, "density_expectation",
                        lambda expr, z, mean, var: real(expr, z, mean, sp.sqrt(var)))
    with pytest.raises(D.DerivationError, match="pathwise.*thm-vae-reparam"):
        D.reparameterization()


def test_density_expectation_matches_direct_integration():
    t = sp.Symbol("t", real=True)
    m, v = sp.Symbol("m", real=True), sp.Symbol("v", positive=True)
    poly = t**4 - 3 * t + 2
    direct = sp.integrate(poly * D.normal_pdf(t, m, v), (t, -sp.oo, sp.oo), conds="none")
    assert sp.simplify(D.checks.density_expectation(poly, t, m, v) - direct) == 0


def test_score_function_checks_raise_derivation_errors(monkeypatch):
    from autoencoders.derivations import score_function as S

    r = S.derive_score_function()
    assert isinstance(r, D.Derivation) and r.checks
    real = S.density_expectation
    monkeypatch.setattr(S, "density_expectation",
                        lambda expr, z, mean, var: real(expr, z, mean, 2 * var))
    with pytest.raises(D.DerivationError, match="E_q\\[f\\].*eq-sf-toy-expectation"):
        S.derive_score_function()


def test_gaussian_expectation_matches_direct_integration():
    t = sp.Symbol("t", real=True)
    m, sd = sp.Symbol("m", real=True), sp.Symbol("sd", positive=True)
    poly = 3 * t**3 - t**2 + 2 * t - 5
    direct = sp.integrate(poly * D.normal_pdf(t, m, sd**2), (t, -sp.oo, sp.oo), conds="none")
    assert sp.simplify(D.gaussian_expectation(poly, t, m, sd) - direct) == 0


def test_gaussian_expectation_rejects_non_polynomials():
    t = sp.Symbol("t", real=True)
    with pytest.raises(sp.PolynomialError):
        D.gaussian_expectation(sp.exp(t), t, 0, 1)


# ------------------------------------------------------------ the error type
def test_derivation_error_names_the_identity():
    err = D.DerivationError("some identity", "eq-label", "residual 1")
    assert isinstance(err, AssertionError)
    assert "some identity" in str(err) and "eq-label" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


# ------------------------------------------- broken mathematics must be caught
def _flipped_kl(m_q=D.vae.mu_q, s_q=D.vae.sigma_q, m_p=D.vae.mu_p, s_p=D.vae.sigma_p):
    # the guide's formula with one sign changed
    return sp.log(s_p / s_q) + (s_q**2 - (m_p - m_q)**2) / (2 * s_p**2) - sp.Rational(1, 2)


def test_wrong_kl_closed_form_is_caught(monkeypatch):
    monkeypatch.setattr(D.vae, "gaussian_kl_closed_form", _flipped_kl)
    with pytest.raises(D.DerivationError, match="scalar Gaussian KL closed form.*thm-vae-gaussian-kl"):
        D.gaussian_kl_scalar()
    with pytest.raises(D.DerivationError, match="diagonal Gaussian KL"):
        D.gaussian_kl_diagonal(2)
    with pytest.raises(D.DerivationError, match="Gaussian KL closed form of q from N"):
        D.elbo_identity()
    with pytest.raises(D.DerivationError, match="sympy closed form"):
        D.kl_numeric_crosscheck([0.5], [0.2], [0.0], [0.0])


def test_wrong_posterior_is_caught(monkeypatch):
    real = D.vae._linear_gaussian_model

    def wrong():
        prior, lik, ev, m, v, post = real()
        v_bad = D.vae.s**2 / (D.vae.a**2 + 2 * D.vae.s**2)
        return prior, lik, ev, m, v_bad, D.normal_pdf(D.vae.z, m, v_bad)

    monkeypatch.setattr(D.vae, "_linear_gaussian_model", wrong)
    with pytest.raises(D.DerivationError, match="completing the square"):
        D.conjugate_posterior()
    with pytest.raises(D.DerivationError, match="ELBO"):
        D.elbo_identity()


def test_wrong_gaussian_moment_is_caught(monkeypatch):
    real = D.checks._standard_moment
    monkeypatch.setattr(D.checks, "_standard_moment", lambda k: 2 if k == 2 else real(k))
    with pytest.raises(D.DerivationError, match="Var\\[mu \\+ sigma eps\\]"):
        D.reparameterization()
    with pytest.raises(D.DerivationError):
        D.vae_reconstruction_vs_ae()


def test_wrong_decoder_nll_is_caught(monkeypatch):
    real = D.vae._mvn_diag_pdf
    # a wrong density (squared): its negative log is no longer the formula
    monkeypatch.setattr(D.vae, "_mvn_diag_pdf", lambda *a: real(*a) ** 2)
    with pytest.raises(D.DerivationError, match="Gaussian decoder negative log-likelihood"):
        D.gaussian_decoder_nll(2)


# ------------------------------------------------------- numerical checks
def test_conjugate_quadrature_check():
    r = D.conjugate_quadrature_check()
    assert r["rel_error"] < 1e-9 and abs(r["gap"]) < 1e-7


def test_nonlinear_decoder_has_an_elbo_gap():
    x_obs, s = 1.2, 0.3
    import math
    log_ev = math.log(D.evidence_by_quadrature(x_obs, D.toy_decoder, s))
    elbo, _, _ = D.best_gaussian_elbo(x_obs, D.toy_decoder, s)
    assert elbo < log_ev - 0.1          # a bimodal posterior: no Gaussian matches it


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_numeric_crosscheck(seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    args = [torch.randn(4, generator=g, dtype=torch.float64) for _ in range(4)]
    r = D.kl_numeric_crosscheck(*args, n=50_000, seed=seed)
    assert r["gaussian_kl"] >= 0


def test_kl_numeric_crosscheck_catches_a_wrong_kl(monkeypatch):
    import autoencoders.losses as losses
    real = losses.gaussian_kl
    monkeypatch.setattr(losses, "gaussian_kl", lambda *a: real(*a) * 1.01)
    with pytest.raises(D.DerivationError, match="torch.distributions.kl_divergence"):
        D.kl_numeric_crosscheck([0.5, 1.0], [0.2, -1.0], [0.0, 0.0], [0.0, 0.0])


def test_reparameterization_gradient_check():
    r = D.reparameterization_gradient_check()
    assert r["sample_requires_grad"] is False
    assert abs(r["autograd"]["mu"] - r["exact"]["mu"]) < 5 * r["se"]["mu"]


def test_reparameterization_gradient_check_catches_a_wrong_trick(monkeypatch):
    import torch

    import autoencoders.models.vae as vae
    # sigma = exp(logvar) instead of exp(logvar / 2): the samples have the wrong scale
    monkeypatch.setattr(vae, "reparameterize",
                        lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu))
    with pytest.raises(D.DerivationError):
        D.reparameterization_gradient_check()


# ------------------------------------------- the build-time registry
def test_registry_names_every_chapter_that_runs_checks():
    from pathlib import Path

    from autoencoders.derivations.build import CHAPTER_CHECKS

    book = Path(__file__).resolve().parents[1] / "book"
    for chapter in CHAPTER_CHECKS:
        assert (book / f"{chapter}.md").is_file(), chapter
        assert CHAPTER_CHECKS[chapter], f"no build-time checks for {chapter}"


def test_run_checks_rejects_unknown_names():
    from autoencoders.derivations.build import run_checks

    with pytest.raises(ValueError, match="no checks registered"):
        run_checks("no_such_chapter")
    with pytest.raises(ValueError, match="has no checks named"):
        run_checks("vqvae", reuse={"conjugate_posterior": None})


def test_run_checks_reuses_given_results():
    from autoencoders.derivations.build import CHAPTER_CHECKS, run_checks

    given = {check.__name__: object() for check in CHAPTER_CHECKS["vqvae"]}
    assert run_checks("vqvae", reuse=given) == given


def _numeric_checks():
    from autoencoders.derivations.build import all_checks

    return [c for c in all_checks() if not c.__module__.endswith((".vae", ".score_function"))]


@pytest.mark.parametrize("check", _numeric_checks(), ids=lambda c: c.__name__)
def test_numeric_build_time_check_passes(check):
    assert check() is not None


# ------------------------------------- the checks given an independent route
def test_best_baseline_variances_are_checked_by_quadrature():
    """A least variance that is off by a factor fails the numeric route."""
    from autoencoders.derivations import score_function as S

    r = S.derive_score_function()
    sym = r["symbols"]
    f = sym["kappa"] - (sym["x"] - sym["a"] * sym["z"] - sym["b"]) ** 2 / (2 * sym["c"])
    log_q = sp.log(D.normal_pdf(sym["z"], sym["mu"], sym["sigma"] ** 2))
    best = sp.solve(sp.diff(r["var_score"], sym["beta"]), sym["beta"])[0]
    S._numeric_variances(f, log_q, r["var_reparam"], r["var_score_best"], best, sym)
    with pytest.raises(D.DerivationError, match="eq-sf-var-score-best"):
        S._numeric_variances(f, log_q, r["var_reparam"], 1.1 * r["var_score_best"], best, sym)
    with pytest.raises(D.DerivationError, match="eq-sf-var-score-best"):
        S._numeric_variances(f, log_q, r["var_reparam"], r["var_score_best"], best + 1, sym)


def test_elbo_identity_no_longer_restates_its_consequences():
    checks = D.elbo_identity().checks
    assert "KL(q || p(z|x)) = 0 at the true posterior" not in checks
    assert "ELBO = log p(x) at the true posterior" not in checks


def test_conjugate_check_finds_the_posterior_numerically(monkeypatch):
    """The optimiser's best q is compared with the posterior's moments by
    quadrature: an optimiser that stops elsewhere fails it."""
    from autoencoders.derivations import numeric

    real = numeric.best_gaussian_elbo
    monkeypatch.setattr(numeric, "best_gaussian_elbo",
                        lambda *a, **k: (lambda e, m, t: (e, m + 1e-3, t))(*real(*a, **k)))
    with pytest.raises(D.DerivationError, match="best Gaussian q is the true posterior"):
        numeric.conjugate_quadrature_check()


def test_reparameterized_density_comes_from_sympy_stats(monkeypatch):
    """The density of mu + sigma*eps is sympy.stats', compared with the
    package's normal_pdf: a wrong normal_pdf fails it."""
    from autoencoders.derivations import vae

    real = vae.normal_pdf
    monkeypatch.setattr(vae, "normal_pdf", lambda z, m, v: real(z, m, 2 * v) if m == vae.mu else real(z, m, v))
    with pytest.raises(D.DerivationError, match="density N\\(mu, sigma\\^2\\)"):
        vae.reparameterization()


def test_pca_check_trains_the_linear_autoencoder(monkeypatch):
    """The linear AE is trained, not copied from PCA: a decoder with a
    squashing output cannot reach PCA's subspace and error."""
    import torch

    from autoencoders.derivations.pca import pca_check
    from autoencoders.models.autoencoder import Autoencoder

    monkeypatch.setattr(Autoencoder, "decode", lambda self, z: torch.sigmoid(self.decoder(z)))
    with pytest.raises(D.DerivationError, match="thm-ae-pca"):
        pca_check()


def test_vq_objective_is_recomputed_by_hand(monkeypatch):
    """The VQ-VAE objective is checked against a loss computed from the
    captured encoder output, not against the sum of its own terms."""
    import autoencoders.models.vqvae as vqvae_module
    from autoencoders.derivations import vq

    real = vqvae_module.VQVAE.loss_terms

    def inflated(self, x, y=None):
        terms = real(self, x, y)
        return dict(terms, loss=terms["loss"] * 1.01, mse=terms["mse"] * 1.01)
    monkeypatch.setattr(vqvae_module.VQVAE, "loss_terms", inflated)
    with pytest.raises(D.DerivationError, match="eq-vq"):
        vq.vq_loss_gradients_check()


def test_restart_check_catches_a_restart_off_the_batch(monkeypatch):
    """A restart that puts the dead code near, but not on, an encoder output."""
    from autoencoders.derivations import vq
    from autoencoders.models.quantizer import VectorQuantizer

    real = VectorQuantizer._restart_dead_codes

    def nudged(self, flat):
        real(self, flat)
        if self.last_restarts:
            self.codebook.data[self.idle_steps == 0] += 1e-3
    monkeypatch.setattr(VectorQuantizer, "_restart_dead_codes", nudged)
    with pytest.raises(D.DerivationError, match="restarted after"):
        vq.dead_code_restart_check()


def test_pair_bits_check_catches_unsmoothed_counts(monkeypatch):
    import torch

    from autoencoders.derivations import vq
    from autoencoders.metrics import codebook

    def unsmoothed(grids, train_codes, k):
        counts = torch.bincount(codebook.neighbour_pairs(train_codes, k), minlength=k * k).double()
        bits = -torch.log2(counts / counts.sum())
        return float(bits[codebook.neighbour_pairs(grids, k)].mean())
    monkeypatch.setattr(codebook, "pair_bits", unsmoothed)
    with pytest.raises(D.DerivationError, match="pair bits"):
        vq.pair_bits_check()


def test_claims_switch_check_leaves_the_environment_alone(monkeypatch, tmp_path):
    import os

    from autoencoders.derivations.upkeep import claims_switch_check

    record = tmp_path / "claims.jsonl"
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "quick")
    monkeypatch.setenv("AUTOENCODERS_CLAIMS_RECORD", str(record))
    assert claims_switch_check() == {"smoke": "warns", "quick": "raises", "full": "raises"}
    assert os.environ["AUTOENCODERS_PROFILE"] == "quick"
    assert os.environ["AUTOENCODERS_CLAIMS_RECORD"] == str(record)
    assert not record.exists()          # the check's own claims are not recorded


def test_new_checks_leave_the_global_random_state_alone():
    """Chapters run their checks before their own cells: a check must not
    move torch's global generator (the trainer and restarts draw from it)."""
    import torch

    from autoencoders.derivations import gradients, upkeep, vq

    torch.manual_seed(123)
    before = torch.get_rng_state()
    for check in (upkeep.kl_warmup_check, upkeep.free_bits_check, upkeep.learning_rate_check,
                  upkeep.batching_check, upkeep.resume_check, upkeep.claims_switch_check,
                  vq.codebook_usage_check, vq.pair_bits_check, vq.kmeans_start_check,
                  vq.dead_code_restart_check, gradients.closed_form_variances_check):
        check()
        assert torch.equal(torch.get_rng_state(), before), check.__name__


def test_learning_rate_check_catches_a_trainer_that_ignores_the_schedule(monkeypatch):
    import autoencoders.train as train
    from autoencoders.derivations.upkeep import learning_rate_check

    monkeypatch.setattr(train, "learning_rate", lambda schedule, lr, step, total: lr)
    with pytest.raises(D.DerivationError, match="schedule"):
        learning_rate_check()


def test_every_chapter_with_claims_checks_the_claim_switch():
    from pathlib import Path

    from autoencoders.derivations.build import CHAPTER_CHECKS
    from autoencoders.derivations.upkeep import claims_switch_check

    book = Path(__file__).resolve().parents[1] / "book"
    for chapter, checks in CHAPTER_CHECKS.items():
        if "claim(" in (book / f"{chapter}.md").read_text():
            assert claims_switch_check in checks, chapter
