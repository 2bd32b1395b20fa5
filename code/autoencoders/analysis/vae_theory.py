"""The VAE-theory chapter's computations (book/vae_theory.md): the LaTeX
layout of its long sympy results (sums broken over lines inside
``aligned``), the one-dimensional posterior example, and the tables of what
was checked."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sympy as sp


def split_sum(expr, per_line):
    """LaTeX of a sum, broken after every `per_line` terms (inside aligned)."""
    terms = [sp.latex(term) for term in sp.Add(expr).as_ordered_terms()]
    out = []
    for i, term in enumerate(terms):
        sign = " " if term.startswith("-") else " + "
        out.append(term if i == 0 else (r" \\ &\quad" if i % per_line == 0 else "") + sign + term)
    return "".join(out)


def by_coordinate(expr, per_line):
    """Like :func:`split_sum`, with the terms grouped by the coordinate they involve."""
    def coordinate(term):
        names = "".join(str(s) for s in term.free_symbols)
        return next((i for i in "123456789" if i in names), "~")
    groups = {}
    for term in sp.Add(expr).as_ordered_terms():
        groups.setdefault(coordinate(term), []).append(term)
    lines = [split_sum(sp.Add(*groups[k], evaluate=False), per_line) for k in sorted(groups)]
    return r" \\ &\quad + ".join(lines).replace(r"+  -", "-").replace("+ -", "- ")


# ------------------------------------------------ the posterior out of reach
@dataclass
class PosteriorExample:
    """The chapter's one-dimensional example (``sec`` "Why the posterior is
    out of reach"): a conjugate model with a linear decoder, and the
    nonlinear toy decoder whose posterior has two bumps."""

    x_obs: float                       # the observation
    grid: np.ndarray                   # z values of the figure
    decoders: dict[str, np.ndarray]    # label -> decoder mean f(z) on the grid
    densities: dict[str, np.ndarray]   # label -> a density over z on the grid
    quadrature_rel_error: float        # conjugate model: quadrature vs closed-form evidence
    linear_gap: float                  # conjugate model: log p(x) - best Gaussian ELBO
    toy_evidence: float                # nonlinear decoder: p(x) by quadrature
    toy_elbo: float                    # ... the best Gaussian q's ELBO
    toy_m: float                       # ... and that q's mean
    toy_t: float                       # ... and standard deviation
    toy_bump_mass: float               # posterior mass of the bump the best q sits on
    a: float                           # conjugate model: decoder mean a z + b
    b: float
    s_linear: float                    # noise standard deviations of the two decoders
    s_toy: float

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``vae_<name>``)."""
        log_evidence = math.log(self.toy_evidence)
        return {"x_obs": self.x_obs, "quad_rel": max(self.quadrature_rel_error, 1e-16),
                "lin_gap": abs(self.linear_gap), "toy_evidence": self.toy_evidence,
                "toy_logev": log_evidence, "toy_elbo": self.toy_elbo,
                "toy_gap": log_evidence - self.toy_elbo, "toy_m": self.toy_m,
                "toy_t": self.toy_t, "toy_bump_mass": self.toy_bump_mass,
                "a": self.a, "b": self.b, "s_linear": self.s_linear, "s_toy": self.s_toy}


def _bump_mass(x_obs: float, decoder, noise_std: float, z_at: float, grid) -> float:
    """Posterior mass p(z|x) of the bump that contains ``z_at``: the bumps are
    split at the lowest point of the density between its two highest peaks
    on ``grid`` (the whole mass if it has a single peak)."""
    from scipy import integrate
    from scipy.signal import find_peaks

    from .. import derivations as D

    density = D.posterior_on_grid(x_obs, decoder, noise_std, grid)
    peaks, _ = find_peaks(density)
    if len(peaks) < 2:
        return 1.0
    lo, hi = sorted(peaks[np.argsort(density[peaks])[-2:]])
    valley = float(grid[lo + int(np.argmin(density[lo:hi + 1]))])
    evidence = D.evidence_by_quadrature(x_obs, decoder, noise_std)

    def joint(t):  # N(x; f(t), s^2) N(t; 0, 1)
        r = (x_obs - float(decoder(t))) / noise_std
        return math.exp(-0.5 * (r * r + t * t)) / (2 * math.pi * noise_std)

    ends = (-12.0, valley) if z_at < valley else (valley, 12.0)
    return float(integrate.quad(joint, *ends, limit=400, epsabs=0, epsrel=1e-10)[0] / evidence)


def posterior_example(x_obs: float = 1.2, s_linear: float = 0.5, s_toy: float = 0.3,
                      a: float = 1.5, b: float = 0.3, points: int = 601) -> PosteriorExample:
    """Evidence by quadrature (checked against the closed form for the
    conjugate model, decoder mean ``a z + b``), the exact posteriors on a
    grid, and the best Gaussian q for the toy decoder. ``s_*`` are the
    decoders' noise standard deviations."""
    from .. import derivations as D

    linear = lambda t: D.linear_decoder(t, a, b)  # noqa: E731
    check = D.conjugate_quadrature_check(x_obs=x_obs, a_=a, b_=b, s_=s_linear)
    toy_elbo, toy_m, toy_t = map(float, D.best_gaussian_elbo(x_obs, D.toy_decoder, s_toy))
    grid = np.linspace(-3, 3, points)
    best_q = np.exp(-0.5 * ((grid - toy_m) / toy_t) ** 2) / (toy_t * math.sqrt(2 * math.pi))
    return PosteriorExample(
        x_obs, grid,
        decoders={"linear $f(z) = az + b$": linear(grid),
                  "nonlinear toy decoder": D.toy_decoder(grid)},
        densities={r"linear: $p(z\mid x)$": D.posterior_on_grid(x_obs, linear, s_linear, grid),
                   r"nonlinear: $p(z\mid x)$": D.posterior_on_grid(x_obs, D.toy_decoder,
                                                                    s_toy, grid),
                   "nonlinear: best Gaussian $q$": best_q},
        quadrature_rel_error=float(check["rel_error"]), linear_gap=float(check["gap"]),
        toy_evidence=float(D.evidence_by_quadrature(x_obs, D.toy_decoder, s_toy)),
        toy_elbo=toy_elbo, toy_m=toy_m, toy_t=toy_t,
        toy_bump_mass=_bump_mass(x_obs, D.toy_decoder, s_toy, toy_m, grid),
        a=a, b=b, s_linear=s_linear, s_toy=s_toy)


# ------------------------------------------------------------------- tables
def kl_crosscheck_table(num: dict) -> pd.DataFrame:
    """The four computations of one diagonal-Gaussian KL
    (:func:`autoencoders.derivations.kl_numeric_crosscheck`'s result)."""
    rows = {"<code>autoencoders.losses.gaussian_kl</code>": f"{num['gaussian_kl']:.12f}",
            "<code>torch.distributions.kl_divergence</code>": f"{num['torch']:.12f}",
            "sympy closed form, summed over coordinates": f"{num['sympy']:.12f}",
            f"Monte Carlo, {num['n']:,} samples (± one standard error)":
                f"{num['mc']:.4f} ± {num['mc_se']:.4f}"}
    return pd.DataFrame({"KL (nats)": rows}).rename_axis("method")


# what each numerical (not symbolic) check of the chapter compares
NUMERICAL_CHECKS = {
    "conjugate_quadrature_check":
        "conjugate model at x = {x_obs:g}: quadrature evidence = closed-form evidence; "
        "an optimiser's best Gaussian ELBO = log of the quadrature evidence, and its q = "
        "the posterior (mean and variance by quadrature)",
    "kl_crosscheck":
        "gaussian_kl = torch.distributions.kl_divergence = sympy closed form; Monte Carlo agrees",
    "reparameterization_gradient_check":
        "autograd through reparameterize = pathwise formula; agrees with the exact gradient"}


# how far each check reaches, one entry per identity it checks (the last one
# repeats): "general" proves the page's statement symbolically in all its
# parameters, "instance" checks it in one model or dimension ({dim} is the
# dimension the derivation's title names)
SCOPE = {
    "conjugate_posterior": ("general: the conjugate lemma as stated",),
    "elbo_identity": ("instance: conjugate model, Gaussian q",),
    "gaussian_kl_scalar": ("general: the scalar KL theorem as stated",),
    "gaussian_kl_diagonal": ("instance: {dim}",),
    "gaussian_decoder_nll": ("instance: {dim}",),
    "kl_weight_lambda": ("instance: D = 1, 2, 3", "instance: conjugate model"),
    "vae_reconstruction_vs_ae": ("instance: linear decoder, D = 2, scalar code",),
    "nonlinear_reconstruction_expansion": ("instance: cubic decoder, D = 2, scalar code",
                                           "general: the example f(z) = z^2 as stated"),
    "reparameterization": ("instance of (i): scalar code",
                           "instance of (ii): scalar code, F = z^2 and z^4"),
    "conjugate_quadrature_check": ("numbers: one example",),
    "kl_crosscheck": ("numbers: one example",),
    "reparameterization_gradient_check": ("numbers: one example",),
}


def _scope(name: str, index: int, title: str) -> str:
    scopes = SCOPE[name]
    return scopes[min(index, len(scopes) - 1)].format(dim=title.rpartition(", ")[2])


def checks_table(built: dict) -> pd.DataFrame:
    """One row per identity that ``run_checks("vae_theory")`` verified: the
    sympy derivations' checks, then the numerical cross-checks, each with how
    far it reaches (:data:`SCOPE`)."""
    from ..derivations import Derivation

    rows = [(r.title, f"<code>{html.escape(check)}</code>", _scope(name, i, r.title))
            for name, r in built.items() if isinstance(r, Derivation)
            for i, check in enumerate(r.checks)]
    rows += [("numerical", NUMERICAL_CHECKS[name].format(**built[name]), _scope(name, 0, ""))
             for name in built if name in NUMERICAL_CHECKS]
    return pd.DataFrame(rows, columns=["derivation", "identity", "scope"])


def reparameterization_numbers(grads: dict, mu: float, logvar: float) -> dict[str, float]:
    """The numbers the chapter glues (``vae_rep_<name>``) from
    ``reparameterization_gradient_check(mu_=mu, logvar_=logvar)``."""
    out = {"n": f"{grads['n']:,}", "mu": mu, "ell": logvar}
    for short, key in (("mu", "mu"), ("ell", "logvar")):
        out |= {f"g{short}": grads["autograd"][key], f"e{short}": grads["exact"][key],
                f"se{short}": grads["se"][key]}
    return out
