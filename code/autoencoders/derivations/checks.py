"""What every derivation shares: the error a failed check raises, the
result a derivation returns, and sympy expectations under a Gaussian.

Expectations under a Gaussian are computed by the change of variables
``z = mean + std * u`` followed by sympy integration of each power of ``u``
against the standard normal density; identities are verified by expanding
logarithms and simplifying the difference of the two sides to zero.
"""
from __future__ import annotations

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


def _mvn_diag_pdf(zs, means, stds) -> sp.Expr:
    """The joint density of N(means, diag(stds^2)) written with the covariance
    matrix (not as a product of marginals)."""
    zv, mv = sp.Matrix(zs), sp.Matrix(means)
    cov = sp.diag(*[s ** 2 for s in stds])
    d = len(zs)
    quad = ((zv - mv).T * cov.inv() * (zv - mv))[0, 0]
    return sp.exp(-quad / 2) / sp.sqrt((2 * sp.pi) ** d * cov.det())

