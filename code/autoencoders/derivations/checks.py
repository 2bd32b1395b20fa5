"""What every derivation shares: the error a failed check raises, the
result a derivation returns, and sympy expectations under a Gaussian.

Expectations under a Gaussian are computed by the change of variables
``z = mean + std * u`` followed by sympy integration of each power of ``u``
against the standard normal density; identities are verified by expanding
logarithms and simplifying the difference of the two sides to zero.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp


# ------------------------------------------------------------------ checking
class DerivationError(AssertionError):
    """A derivation's check failed. ``identity`` names what broke, ``label``
    is the chapter's equation or theorem label for it."""

    def __init__(self, identity: str, label: str | None, detail: str):
        self.identity, self.label, self.detail = identity, label, detail
        where = f" [{label}]" if label else ""
        super().__init__(f"identity '{identity}'{where} does not hold: {detail}")

    def __reduce__(self):  # keep the exception picklable (pytest-xdist, nbclient)
        return (type(self), (self.identity, self.label, self.detail))


def _simplified(expr: sp.Expr) -> sp.Expr:
    return sp.simplify(sp.expand(sp.expand_log(sp.expand(expr), force=True)))


def _require_zero(residual: sp.Expr, identity: str, label: str | None,
                  what: str = "left side minus right side") -> None:
    r = _simplified(residual)
    if r != 0:
        raise DerivationError(identity, label, f"{what} simplifies to {r}, not 0")


def _require(ok: bool, identity: str, label: str | None, detail: str) -> None:
    if not ok:
        raise DerivationError(identity, label, detail)


def _require_close(got, expected, identity: str, label: str | None,
                   rtol: float = 1e-9, atol: float = 0.0) -> float:
    """Numbers (or arrays/tensors, compared element by element) agree to
    ``atol + rtol * |expected|``; returns the largest absolute difference."""
    import numpy as np

    g = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=float)
    e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected,
                   dtype=float)
    _require(g.shape == e.shape, identity, label, f"shapes {g.shape} and {e.shape} differ")
    diff = np.abs(g - e)
    worst = float(diff.max()) if diff.size else 0.0
    ok = bool(np.all(diff <= atol + rtol * np.abs(e)))
    _require(ok, identity, label, f"largest difference {worst:.3g} "
             f"(got {g.ravel()[:4]}, expected {e.ravel()[:4]})")
    return worst


def _require_unbiased(samples, exact, identity: str, label: str | None,
                      z_tol: float = 5.0) -> float:
    """The mean of i.i.d. ``samples`` (first axis) agrees with ``exact`` (the
    rest of the shape) within ``z_tol`` standard errors in every coordinate:
    a z-test for an unbiased Monte Carlo estimator. Returns the largest |z|."""
    import numpy as np

    x = np.asarray(samples.detach().cpu() if hasattr(samples, "detach") else samples, dtype=float)
    e = np.asarray(exact.detach().cpu() if hasattr(exact, "detach") else exact, dtype=float)
    n = x.shape[0]
    se = x.std(axis=0, ddof=1) / np.sqrt(n)
    z = np.abs(x.mean(axis=0) - e) / np.maximum(se, 1e-300)
    worst = float(z.max())
    _require(worst <= z_tol, identity, label,
             f"Monte Carlo mean is {worst:.1f} standard errors from the exact value "
             f"(n = {n}; mean {x.mean(axis=0).ravel()[:4]}, exact {e.ravel()[:4]})")
    return worst


@contextmanager
def _seeded(seed: int):
    """torch's global generator seeded with ``seed`` for the block, and put
    back as it was afterwards (a check must not move a chapter's random state)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def _captured_io(model, out_key: str, in_key: str, retain_grad: bool = False):
    """Keep, under ``out_key``, the output of ``model.encoder`` and, under
    ``in_key``, the input of ``model.decoder`` in the next forward pass
    (with their gradients when ``retain_grad``)."""
    seen = {}

    def keep_out(module, args, out):
        if retain_grad:
            out.retain_grad()
        seen[out_key] = out

    def keep_in(module, args):
        if retain_grad:
            args[0].retain_grad()
        seen[in_key] = args[0]

    hooks = [model.encoder.register_forward_hook(keep_out),
             model.decoder.register_forward_pre_hook(keep_in)]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


@dataclass(frozen=True)
class Derivation:
    """What a derivation produced: named expressions (in the order the chapter
    shows them) and the identities that were checked."""

    title: str
    expressions: dict = field(default_factory=dict)
    checks: tuple = ()

    def __getitem__(self, key: str):
        return self.expressions[key]

    def latex(self, key: str, **kwargs) -> str:
        """``sympy.latex`` of one expression (``order='none'`` keeps the order
        in which a closed form was written)."""
        return sp.latex(self.expressions[key], **kwargs)


# ------------------------------------------------------ Gaussian expectations
_U = sp.Symbol("u", real=True)


def normal_pdf(z, mean, var) -> sp.Expr:
    """The density of N(mean, var) at z."""
    return sp.exp(-(z - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


@lru_cache(maxsize=None)
def _standard_moment(k: int) -> sp.Expr:
    """E[u^k] for u ~ N(0, 1), by sympy integration."""
    return sp.integrate(_U ** k * normal_pdf(_U, 0, 1), (_U, -sp.oo, sp.oo), conds="none")


def gaussian_expectation(expr, z, mean, std) -> sp.Expr:
    """E[expr] for z ~ N(mean, std^2), where expr is a polynomial in z once its
    logarithms are expanded (log-densities of Gaussians are).

    Change of variables z = mean + std*u, u ~ N(0, 1), then linearity: each
    power u^k is integrated against the standard normal density by sympy.
    """
    integrand = sp.expand(sp.expand_log(sp.expand(expr), force=True).subs(z, mean + std * _U))
    poly = sp.Poly(integrand, _U)  # raises PolynomialError if not polynomial in u
    return sp.expand(sum(c * _standard_moment(k) for (k,), c in poly.terms()))


_M, _V = sp.Symbol("m", real=True), sp.Symbol("v", positive=True)


@lru_cache(maxsize=None)
def _raw_moment(k: int) -> sp.Expr:
    """The integral of z^k N(z; m, v) dz over the real line, by sympy, with the
    mean m and variance v inside the density (no change of variables)."""
    t = sp.Symbol("t", real=True)
    return sp.expand(sp.integrate(t ** k * normal_pdf(t, _M, _V), (t, -sp.oo, sp.oo), conds="none"))


def density_expectation(expr, z, mean, var) -> sp.Expr:
    """The integral of expr(z) N(z; mean, var) dz for a polynomial expr in z:
    by linearity, each power z^k is integrated against the density itself
    (a route independent of :func:`gaussian_expectation`'s change of
    variables)."""
    poly = sp.Poly(sp.expand(expr), z)  # raises PolynomialError if not polynomial in z
    return sp.expand(sum(coef * _raw_moment(k).subs({_M: mean, _V: var})
                         for (k,), coef in poly.terms()))


def _mvn_diag_pdf(zs, means, stds) -> sp.Expr:
    """The joint density of N(means, diag(stds^2)) written with the covariance
    matrix (not as a product of marginals)."""
    zv, mv = sp.Matrix(zs), sp.Matrix(means)
    cov = sp.diag(*[s ** 2 for s in stds])
    d = len(zs)
    quad = ((zv - mv).T * cov.inv() * (zv - mv))[0, 0]
    return sp.exp(-quad / 2) / sp.sqrt((2 * sp.pi) ** d * cov.det())

