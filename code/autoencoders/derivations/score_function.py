"""The score-function (REINFORCE) identity of the score-function chapter,
checked by sympy, and the one-sample variances of the two gradient
estimators in a case where both have closed forms."""
from __future__ import annotations

import sympy as sp

from .checks import (Derivation, _require, _require_zero, density_expectation,
                     gaussian_expectation, normal_pdf)


def derive_score_function(categories: int = 3) -> Derivation:
    """The score-function identity, checked by sympy in two closed-form cases,
    and the one-sample variances of both estimators in a scalar example.

    1. Discrete z with q(z) = softmax(phi)_z over ``categories`` values and any
       values f_z: d/dphi_j sum_z q_z f_z = sum_z q_z f_z d/dphi_j log q_z.
    2. Gaussian q = N(mu, s^2) and the linear-Gaussian decoder
       f(z) = log N(x; a z + b0, c): the left side by integrating f against
       the density N(z; mu, s^2) (parameters inside the density) and
       differentiating; the right side, and the pathwise form, as expectations
       (:func:`~autoencoders.derivations.checks.gaussian_expectation`).
    3. The variances of the one-sample estimators of d/dmu in case 2, and of
       the score-function one with a constant baseline beta.

    Returns a :class:`Derivation` of named sympy expressions (and the
    symbols, under ``"symbols"``); raises
    :class:`~autoencoders.derivations.checks.DerivationError` naming the
    identity and the chapter's equation label if a check fails.
    """
    out, checks = {}, []
    # 1. discrete: the hint's sum over the values of z
    phi = sp.symbols(f"phi0:{categories}", real=True)
    fv = sp.symbols(f"f0:{categories}", real=True)
    norm = sum(sp.exp(p) for p in phi)
    q = [sp.exp(p) / norm for p in phi]
    name = "discrete score-function identity"
    for j in range(categories):
        lhs = sp.diff(sum(qk * fk for qk, fk in zip(q, fv)), phi[j])
        rhs = sum(qk * fk * sp.diff(sp.log(qk), phi[j]) for qk, fk in zip(q, fv))
        _require_zero(lhs - rhs, name, "eq-sf-identity",
                      f"d/dphi_{j} sum_z q_z f_z - sum_z q_z f_z d/dphi_{j} log q_z")
    checks.append(name)
    out["discrete_lhs"] = sp.diff(sp.Sum(sp.Function("q")(sp.Symbol("z")) * sp.Function("f")(sp.Symbol("z")),
                                         (sp.Symbol("z"), 1, sp.Symbol("K"))), sp.Symbol("phi"))

    # 2. Gaussian q and a linear-Gaussian decoder. kappa = -log(2 pi c) / 2 is
    # kept as a symbol, so that every expectation is of a polynomial in z.
    z, x, b0, r = sp.symbols("z x b r", real=True)
    mu, a, kappa, beta = sp.symbols("mu a kappa beta", real=True)
    s, c = sp.symbols("sigma c", positive=True)
    f = kappa - (x - a * z - b0) ** 2 / (2 * c)
    log_q = sp.log(normal_pdf(z, mu, s ** 2))
    expect = lambda expr: gaussian_expectation(expr, z, mu, s)  # noqa: E731

    # E_q[f] by integration against the density, and by the change of variables
    expected_f = density_expectation(f, z, mu, s ** 2)
    # the tidy form the chapter prints, checked against the integral
    tidy = kappa - ((x - b0 - a * mu) ** 2 + a ** 2 * s ** 2) / (2 * c)
    name = "E_q[f] = kappa - ((x - b - a mu)^2 + a^2 sigma^2) / (2c)"
    _require_zero(expected_f - tidy, name, "eq-sf-toy-expectation", "the integral minus the closed form")
    _require_zero(expect(f) - tidy, name, "eq-sf-toy-expectation",
                  "the expectation by z = mu + sigma u minus the closed form")
    checks.append(name)
    out["f"], out["expected_f"] = f, tidy
    u = sp.Symbol("u", real=True)
    for param, label in ((mu, "eq-sf-toy-grad-mu"), (s, "eq-sf-toy-grad-sigma")):
        lhs = sp.diff(expected_f, param)
        rhs = expect(sp.expand(f * sp.diff(log_q, param)))
        name = f"Gaussian score-function identity for {param}"
        _require_zero(lhs - rhs, name, "eq-sf-identity",
                      f"d/d{param} E_q[f] - E_q[f d/d{param} log q]")
        pathwise = gaussian_expectation(sp.diff(f.subs(z, mu + s * u), param), u, 0, 1)
        _require_zero(lhs - pathwise, f"reparameterized gradient for {param}", label,
                      f"d/d{param} E_q[f] - E_eps[d f(mu + sigma eps)/d{param}]")
        checks += [name, f"reparameterized gradient for {param}"]
        out[f"grad_{param}"] = sp.factor(lhs).subs(-a * mu - b0 + x, x - b0 - a * mu)

    # 3. one-sample variances of the two estimators of d/dmu, written with the
    # residual r = x - b - a mu of the decoder's mean at z = mu
    grad_mu = sp.diff(expected_f, mu)
    var_score = expect(sp.expand((f - beta) ** 2 * sp.diff(log_q, mu) ** 2)) - grad_mu ** 2
    var_reparam = expect(sp.expand(sp.diff(f, z) ** 2)) - grad_mu ** 2
    at_r = {x: r + b0 + a * mu}
    var_score = sp.expand(var_score.subs(at_r))
    var_reparam = sp.simplify(var_reparam.subs(at_r))
    name = "reparameterization variance = a^4 sigma^2 / c^2"
    _require_zero(var_reparam - a ** 4 * s ** 2 / c ** 2, name, "eq-sf-var-reparam")
    checks.append(name)
    best = sp.solve(sp.diff(var_score, beta), beta)
    # A second route, by integration against the density: the variance is a
    # quadratic in beta with leading coefficient E[score^2] > 0, so its one
    # minimiser is beta* = E[f score^2] / E[score^2], and the least variance
    # is E[f^2 score^2] - E[f score^2]^2 / E[score^2] - (d/dmu E[f])^2.
    score = sp.diff(log_q, mu)
    by_density = lambda expr: density_expectation(  # noqa: E731
        sp.expand(expr.subs(at_r)), z, mu, s ** 2)
    e_s2, e_fs2, e_f2s2 = (by_density(score ** 2), by_density(f * score ** 2),
                           by_density(f ** 2 * score ** 2))
    name = "the variance-minimising baseline is unique: beta* = E[f s^2] / E[s^2]"
    lead = sp.Poly(var_score, beta).coeff_monomial(beta ** 2)
    _require_zero(lead - e_s2, name, "eq-sf-var-score-best",
                  "the variance's coefficient of beta^2 minus E[score^2]")
    _require(bool(sp.simplify(e_s2).is_positive) and len(best) == 1, name, "eq-sf-var-score-best",
             f"E[score^2] = {sp.simplify(e_s2)}, stationary points {best}")
    _require_zero(best[0] - e_fs2 / e_s2, name, "eq-sf-var-score-best",
                  "sympy's minimiser minus E[f s^2] / E[s^2]")
    checks.append(name)
    var_best = sp.factor(sp.expand(var_score.subs(beta, best[0])))
    name = "the least score-function variance"
    _require_zero(var_best - (e_f2s2 - e_fs2 ** 2 / e_s2 - grad_mu.subs(at_r) ** 2), name,
                  "eq-sf-var-score-best",
                  "the variance at beta* minus E[f^2 s^2] - E[f s^2]^2 / E[s^2] - grad^2")
    checks.append(name)
    _numeric_variances(f, log_q, var_reparam, var_best, best[0],
                       dict(z=z, x=x, b=b0, r=r, mu=mu, a=a, sigma=s, c=c, kappa=kappa))
    checks.append("the variances and their ratio by Gauss-Hermite quadrature")
    out["var_reparam"] = var_reparam
    out["var_score"] = sp.collect(var_score, beta)
    out["best_baseline"] = sp.collect(sp.expand(best[0]), kappa)
    out["expected_f_at_r"] = sp.expand(expected_f.subs(at_r))
    out["var_score_best"] = var_best
    # the same variance against the baseline's offset delta = E[f] - beta
    delta = sp.Symbol("delta", real=True)
    by_offset = sp.expand(var_score.subs(beta, out["expected_f_at_r"] - delta))
    out["var_score_offset"] = sp.collect(by_offset, delta, sp.factor)
    out["ratio_best"] = sp.expand(sp.simplify(var_best / var_reparam))
    out["symbols"] = dict(z=z, x=x, b=b0, r=r, mu=mu, a=a, sigma=s, c=c,
                          beta=beta, kappa=kappa, delta=delta)
    return Derivation("score-function identity", out, tuple(checks))


def _numeric_variances(f, log_q, var_reparam, var_best, best, sym, nodes: int = 8) -> None:
    """At a few numbers: the one-draw estimates (f(z) - beta*) d/dmu log q(z)
    and d/dmu f(mu + sigma eps), evaluated by numpy at Gauss-Hermite nodes
    (exact for polynomials of degree < 2 * nodes), have the variances sympy
    gives, and their ratio is ``var_best / var_reparam``."""
    import numpy as np

    u, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    names = ("a", "b", "c", "kappa", "mu", "sigma", "x")
    for values in ((1.3, 0.2, 0.5, -0.4, 0.3, 0.8, 1.1), (-0.7, 1.0, 2.0, 0.9, -1.2, 0.3, 0.4)):
        num = dict(zip((sym[n] for n in names), values))
        zs = num[sym["mu"]] + num[sym["sigma"]] * u
        f_z = sp.lambdify(sym["z"], f.subs(num), "numpy")(zs)
        score_z = sp.lambdify(sym["z"], sp.diff(log_q, sym["mu"]).subs(num), "numpy")(zs)
        slope_z = sp.lambdify(sym["z"], sp.diff(f, sym["z"]).subs(num), "numpy")(zs)
        r_num = {sym["r"]: num[sym["x"]] - num[sym["b"]] - num[sym["a"]] * num[sym["mu"]]}
        beta_star = float(best.subs(r_num).subs(num))

        def variance(values):
            return float(w @ values ** 2 - (w @ values) ** 2)

        v_best = float(var_best.subs(r_num).subs(num))
        v_rep = float(var_reparam.subs(r_num).subs(num))
        quad_best, quad_rep = variance((f_z - beta_star) * score_z), variance(slope_z)
        for got, want, label in ((v_best, quad_best, "eq-sf-var-score-best"),
                                 (v_rep, quad_rep, "eq-sf-var-reparam"),
                                 (v_best / v_rep, quad_best / quad_rep, "eq-sf-ratio-best")):
            _require(abs(got - want) <= 1e-9 * abs(want), "the variances and their ratio by "
                     "Gauss-Hermite quadrature", label, f"sympy {got!r}, quadrature {want!r} "
                     f"at {dict(zip(names, values))}")
