"""Property tests of autoencoders.losses.gaussian_kl (float64): never negative,
zero exactly when the two Gaussians are equal, and equal to
torch.distributions.kl_divergence and to the sympy closed form of the
VAE-theory chapter."""
from __future__ import annotations

import math

import sympy as sp
import torch
from hypothesis import given, settings, strategies as st
from torch.distributions import Independent, Normal, kl_divergence

from autoencoders import derivations as D
from autoencoders.losses import gaussian_kl

MEANS = st.floats(-20, 20, allow_nan=False, allow_infinity=False)
LOGVARS = st.floats(-12, 12, allow_nan=False, allow_infinity=False)


@st.composite
def gaussian_pairs(draw):
    """(mu_q, logvar_q, mu_p, logvar_p), each a float64 vector of one length."""
    d = draw(st.integers(1, 6))
    vec = lambda s: torch.tensor(draw(st.lists(s, min_size=d, max_size=d)), dtype=torch.float64)  # noqa: E731
    return vec(MEANS), vec(LOGVARS), vec(MEANS), vec(LOGVARS)


def torch_kl(mq, lq, mp, lp):
    q = Independent(Normal(mq, (0.5 * lq).exp()), 1)
    p = Independent(Normal(mp, (0.5 * lp).exp()), 1)
    return kl_divergence(q, p)


def scale(mq, lq, mp, lp):
    """Size of the terms that the KL is a difference of (for a rounding tolerance)."""
    return float((lq.abs() + lp.abs() + (lq - lp).exp() + (mp - mq) ** 2 / lp.exp() + 1).sum())


@settings(max_examples=300, deadline=None)
@given(gaussian_pairs())
def test_kl_is_non_negative(args):
    assert float(gaussian_kl(*args)) >= -1e-15 * scale(*args)


@settings(max_examples=200, deadline=None)
@given(gaussian_pairs())
def test_kl_of_a_gaussian_with_itself_is_zero(args):
    mq, lq, _, _ = args
    assert float(gaussian_kl(mq, lq, mq.clone(), lq.clone())) == 0.0


@settings(max_examples=300, deadline=None)
@given(gaussian_pairs())
def test_kl_is_positive_when_the_gaussians_differ(args):
    """Each coordinate contributes (1/2)[(r - 1 - log r) + dmu^2 / sigma_p^2] with
    r = sigma_q^2 / sigma_p^2, and both parts are >= 0, zero only when r = 1 and
    dmu = 0; so the KL is bounded below by the largest such part."""
    mq, lq, mp, lp = args
    kl = float(gaussian_kl(mq, lq, mp, lp))
    r = (lq - lp).exp()
    bound = float(torch.maximum(0.5 * (r - 1 - (lq - lp)), 0.5 * (mp - mq) ** 2 / lp.exp()).max())
    assert kl >= bound * (1 - 1e-9) - 1e-15 * scale(*args)
    if not (torch.equal(mq, mp) and torch.equal(lq, lp)) and bound > 1e-9:
        assert kl > 0


@settings(max_examples=300, deadline=None)
@given(gaussian_pairs())
def test_kl_matches_torch_distributions(args):
    ours, theirs = float(gaussian_kl(*args)), float(torch_kl(*args))
    assert math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-12 * scale(*args))


@settings(max_examples=200, deadline=None)
@given(MEANS, LOGVARS, MEANS, LOGVARS)
def test_kl_matches_the_sympy_closed_form(m1, l1, m2, l2):
    closed = sp.lambdify((D.vae.mu_q, D.vae.sigma_q, D.vae.mu_p, D.vae.sigma_p), D.gaussian_kl_closed_form(), "math")
    expected = closed(m1, math.exp(0.5 * l1), m2, math.exp(0.5 * l2))
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    ours = float(gaussian_kl(t(m1), t(l1), t(m2), t(l2)))
    assert math.isclose(ours, expected, rel_tol=1e-6, abs_tol=1e-12 * scale(t(m1), t(l1), t(m2), t(l2)))


@settings(max_examples=100, deadline=None)
@given(gaussian_pairs())
def test_default_prior_is_the_standard_normal(args):
    mq, lq, _, _ = args
    zeros = torch.zeros_like(mq)
    assert float(gaussian_kl(mq, lq)) == float(gaussian_kl(mq, lq, zeros, zeros))


def test_kl_is_summed_over_the_last_dimension_only():
    g = torch.Generator().manual_seed(0)
    mq, lq = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    out = gaussian_kl(mq, lq)
    assert out.shape == (5,)
    per_row = torch.stack([gaussian_kl(mq[i], lq[i]) for i in range(5)])
    assert torch.allclose(out, per_row, rtol=0, atol=0)
