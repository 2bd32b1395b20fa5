"""The symbolic derivations of the VAE-theory chapter, checked by sympy.

Each public function builds one derivation, checks it, and returns a
:class:`~autoencoders.derivations.checks.Derivation`: the named sympy
expressions that the chapter prints and the identities that were verified.
A failed check raises :class:`DerivationError` naming the identity and the
chapter label it belongs to, so a wrong formula stops both ``pytest`` and the
book build.
"""
from __future__ import annotations

import sympy as sp

from .checks import (Derivation, _U, _mvn_diag_pdf, _require, _require_zero,
                     density_expectation, gaussian_expectation, normal_pdf)


# --------------------------------------------------- 1. the conjugate posterior
# The linear-Gaussian model: p(z) = N(0, 1), p(x|z) = N(a z + b, s^2).
x, z = sp.symbols("x z", real=True)
a, b = sp.symbols("a b", real=True)
s = sp.Symbol("s", positive=True)


def _linear_gaussian_model():
    prior = normal_pdf(z, 0, 1)
    likelihood = normal_pdf(x, a * z + b, s ** 2)
    evidence = normal_pdf(x, b, a ** 2 + s ** 2)
    post_mean = a * (x - b) / (a ** 2 + s ** 2)
    post_var = s ** 2 / (a ** 2 + s ** 2)
    posterior = normal_pdf(z, post_mean, post_var)
    return prior, likelihood, evidence, post_mean, post_var, posterior


def conjugate_posterior() -> Derivation:
    """Bayes' rule in the linear-Gaussian model, by completing the square:
    p(x|z) p(z) = N(x; b, a^2+s^2) * N(z; m*, v*), so the evidence integral
    has a closed form and the posterior is Gaussian. The evidence's and the
    posterior's parameters are then derived a second, independent way: from
    the moments of the joint Gaussian of (z, x), x = a z + b + s n, and the
    conditioning formula m* = Cov(z, x) / Var(x) (x - E x),
    v* = Var(z) - Cov(z, x)^2 / Var(x)."""
    prior, likelihood, evidence, m_star, v_star, posterior = _linear_gaussian_model()
    joint_log = sp.log(likelihood) + sp.log(prior)
    bayes = "prior x likelihood = evidence x posterior (completing the square)"
    _require_zero(joint_log - sp.log(evidence) - sp.log(posterior), bayes, "lem-vae-conjugate",
                  "log p(x|z) + log p(z) - log p(x) - log N(z; m*, v*)")
    # the log joint grouped by powers of z (the form used to complete the square)
    log_joint_short = sp.Add(
        sp.Mul(-1, (a ** 2 + s ** 2) * z ** 2 / (2 * s ** 2), evaluate=False),
        a * (x - b) * z / s ** 2,
        sp.Mul(-1, (x - b) ** 2 / (2 * s ** 2), evaluate=False),
        -sp.log(2 * sp.pi * s), evaluate=False)
    _require_zero(joint_log - log_joint_short, "log p(x|z) + log p(z) by powers of z",
                  "lem-vae-conjugate")
    # second route: moments of the joint Gaussian, z ~ N(0, 1), n ~ N(0, 1)
    n = sp.Symbol("n", real=True)
    x_of = a * z + b + s * n
    E = lambda f: gaussian_expectation(gaussian_expectation(f, z, 0, 1), n, 0, 1)  # noqa: E731
    mean_x = E(x_of)
    var_x = E((x_of - mean_x) ** 2)
    cov_zx = E(z * (x_of - mean_x))
    var_z = E(z ** 2)
    moments = "evidence and posterior by Gaussian conditioning (moments of the joint)"
    _require_zero(sp.log(evidence) - sp.log(normal_pdf(x, mean_x, var_x)), moments,
                  "lem-vae-conjugate", "log p(x) - log N(x; E[x], Var[x])")
    _require_zero(m_star - cov_zx / var_x * (x - mean_x), moments, "lem-vae-conjugate",
                  "m* - Cov(z, x) (x - E[x]) / Var(x)")
    _require_zero(v_star - (var_z - cov_zx ** 2 / var_x), moments, "lem-vae-conjugate",
                  "v* - (Var(z) - Cov(z, x)^2 / Var(x))")
    return Derivation(
        "conjugate posterior",
        {"prior": prior, "likelihood": likelihood, "evidence": evidence,
         "posterior_mean": m_star, "posterior_var": v_star, "posterior": posterior,
         "log_joint": sp.expand(sp.expand_log(joint_log, force=True)),
         "log_joint_short": log_joint_short,
         "mean_x": mean_x, "var_x": var_x, "cov_zx": cov_zx},
        (bayes, "log p(x|z) + log p(z) by powers of z", moments))


# ------------------------------------------------------- 2. the ELBO identity
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)


def elbo_identity() -> Derivation:
    """log p(x) = ELBO(q) + KL(q || p(z|x)) in the linear-Gaussian model, for an
    arbitrary Gaussian q = N(mu, sigma^2); every expectation is computed by
    sympy from the densities. Then: the ELBO's Hessian in (mu, sigma) is
    negative definite at every point (so the ELBO is strictly concave on the
    convex domain sigma > 0), and its only stationary point, hence its global
    maximum, is the true posterior (so, by the identity, it equals
    log p(x) there and the KL is 0; checked numerically by
    :func:`~autoencoders.derivations.numeric.conjugate_quadrature_check`)."""
    prior, likelihood, evidence, m_star, v_star, posterior = _linear_gaussian_model()
    q = normal_pdf(z, mu, sigma ** 2)
    E = lambda f: gaussian_expectation(f, z, mu, sigma)  # noqa: E731
    recon = E(sp.log(likelihood))                                  # E_q[log p(x|z)]
    kl_prior = E(sp.log(q) - sp.log(prior))                        # KL(q || p(z))
    kl_post = E(sp.log(q) - sp.log(posterior))                     # KL(q || p(z|x))
    elbo = recon - kl_prior
    log_evidence = sp.expand(sp.expand_log(sp.log(evidence), force=True))
    name = "log p(x) = ELBO + KL(q || p(z|x))"
    _require_zero(log_evidence - (elbo + kl_post), name, "thm-vae-elbo")
    # the compact forms the chapter prints, checked against what sympy computed
    # (built unevaluated, so that they print in the order written here)
    half = sp.Rational(1, 2)
    recon_short = sp.Add(
        sp.Mul(-1, sp.Add((x - a * mu - b) ** 2, a ** 2 * sigma ** 2, evaluate=False) / (2 * s ** 2),
               evaluate=False),
        sp.Mul(-half, sp.log(2 * sp.pi * s ** 2), evaluate=False), evaluate=False)
    kl_prior_short = sp.Add(sp.Mul(half, sp.Add(mu ** 2, sigma ** 2, -1, evaluate=False),
                                   evaluate=False), -sp.log(sigma), evaluate=False)
    _require_zero(recon - recon_short, "E_q[log p(x|z)] in closed form", "eq-vae-lg-elbo")
    _require_zero(kl_prior - kl_prior_short, "KL(q || p(z)) in closed form", "eq-vae-lg-elbo")
    # the gap is the Gaussian KL of q from the posterior N(m*, v*) (section 3's formula)
    _require_zero(kl_post - gaussian_kl_closed_form(mu, sigma, m_star, sp.sqrt(v_star)),
                  "KL(q || p(z|x)) = Gaussian KL closed form of q from N(m*, v*)", "thm-vae-elbo")

    # The ELBO as a function of (mu, sigma): curvature everywhere, then the
    # stationary point. Concavity is checked first and at a general point, so
    # that "the only stationary point is the global maximum" rests on it.
    name_concave = "the ELBO's Hessian is negative definite at every (mu, sigma > 0)"
    hessian = _elbo_hessian_check(elbo, name_concave)
    grad = [sp.diff(elbo, v) for v in (mu, sigma)]
    stationary = sp.solve(grad, [mu, sigma], dict=True)
    name_opt = "the ELBO's only stationary point is the true posterior"
    _require(len(stationary) == 1, name_opt, "thm-vae-elbo",
             f"expected one stationary point, sympy found {stationary}")
    opt = stationary[0]
    _require_zero(opt[mu] - m_star, name_opt, "thm-vae-elbo", "optimal mu - posterior mean")
    _require_zero(opt[sigma] ** 2 - v_star, name_opt, "thm-vae-elbo",
                  "optimal sigma^2 - posterior variance")
    hessian_opt = sp.simplify(hessian.subs(opt))
    # There the KL is 0 and the ELBO is log p(x): that follows from the
    # identity and the optimum above. The independent route is numeric
    # (numeric.conjugate_quadrature_check): quadrature evidence against the
    # best Gaussian ELBO found by an optimiser, whose optimum is this posterior.
    return Derivation(
        "ELBO identity",
        {"q": q, "recon": recon, "kl_prior": kl_prior, "kl_post": kl_post,
         "recon_short": recon_short, "kl_prior_short": kl_prior_short,
         "elbo": elbo, "log_evidence": log_evidence, "gap": sp.factor(sp.simplify(kl_post)),
         "mu_opt": opt[mu], "sigma_opt": opt[sigma], "hessian": hessian,
         "hessian_det": sp.simplify(hessian.det()), "hessian_opt": hessian_opt},
        (name, "E_q[log p(x|z)] in closed form", "KL(q || p(z)) in closed form",
         "KL(q || p(z|x)) = Gaussian KL closed form of q from N(m*, v*)",
         name_concave, name_opt))


def _elbo_hessian_check(elbo: sp.Expr, name: str) -> sp.Matrix:
    """The Hessian of the conjugate model's ELBO in (mu, sigma) at a general
    point, by sympy's ``hessian`` of the ELBO it integrated from the
    densities. Negative definite for every real mu and every sigma > 0: both
    leading minors are simplified and their signs decided by sympy from the
    symbols' assumptions alone (a, b, x, mu real; s, sigma positive), so
    nothing is evaluated at the optimum. Also compared with the closed form
    diag(-a^2/s^2 - 1, -a^2/s^2 - 1 - 1/sigma^2) that the chapter states."""
    hessian = sp.simplify(sp.hessian(elbo, (mu, sigma)))
    minor1, minor2 = sp.simplify(hessian[0, 0]), sp.factor(sp.simplify(hessian.det()))
    _require(minor1.is_negative is True, name, "thm-vae-elbo",
             f"first leading minor {minor1} is not negative for every (mu, sigma > 0)")
    _require(minor2.is_positive is True, name, "thm-vae-elbo",
             f"second leading minor (the determinant) {minor2} is not positive "
             "for every (mu, sigma > 0)")
    curvature = -a ** 2 / s ** 2 - 1
    stated = sp.Matrix([[curvature, 0], [0, curvature - 1 / sigma ** 2]])
    for i in range(2):
        for j in range(2):
            _require_zero(hessian[i, j] - stated[i, j], name, "eq-vae-lg-hessian",
                          f"Hessian entry ({i + 1}, {j + 1}) minus the stated closed form")
    return hessian


# --------------------------------------------------------- 3. the Gaussian KL
mu_q, mu_p = sp.symbols("mu_q mu_p", real=True)
sigma_q, sigma_p = sp.symbols("sigma_q sigma_p", positive=True)


def gaussian_kl_closed_form(m_q=mu_q, s_q=sigma_q, m_p=mu_p, s_p=sigma_p) -> sp.Expr:
    """KL(N(m_q, s_q^2) || N(m_p, s_p^2)) in the form the chapter states:
    log(s_p/s_q) + (s_q^2 + (m_p - m_q)^2) / (2 s_p^2) - 1/2.
    (Built unevaluated so that it prints in this order.)"""
    return sp.Add(sp.log(s_p / s_q, evaluate=False),
                  (s_q ** 2 + (m_p - m_q) ** 2) / (2 * s_p ** 2),
                  -sp.Rational(1, 2), evaluate=False)


def gaussian_kl_scalar() -> Derivation:
    """The scalar Gaussian KL by integrating q log(q/p) over the real line."""
    q = normal_pdf(z, mu_q, sigma_q ** 2)
    p = normal_pdf(z, mu_p, sigma_p ** 2)
    log_ratio = sp.expand(sp.expand_log(sp.log(q) - sp.log(p), force=True))
    # change of variables z = mu_q + sigma_q u; dz = sigma_q du; integrate the whole integrand
    integrand = sp.expand((log_ratio * q).subs(z, mu_q + sigma_q * _U) * sigma_q)
    integral = sp.integrate(integrand, (_U, -sp.oo, sp.oo), conds="none")
    closed = gaussian_kl_closed_form()
    name = "scalar Gaussian KL closed form"
    _require_zero(integral - closed, name, "thm-vae-gaussian-kl",
                  "integral of q log(q/p) minus the closed form")
    return Derivation(
        "scalar Gaussian KL",
        {"q": q, "p": p, "log_ratio": log_ratio,
         "integral_form": sp.Integral(sp.Function("q")(z) * sp.log(sp.Function("q")(z) / sp.Function("p")(z)), (z, -sp.oo, sp.oo)),
         "integral": sp.collect(sp.simplify(integral), sigma_p), "closed_form": closed},
        (name,))


def gaussian_kl_diagonal(d: int = 2) -> Derivation:
    """KL between d-dimensional diagonal Gaussians, integrated from the joint
    densities (written with covariance matrices), equals the sum of the scalar
    closed forms."""
    zs = sp.symbols(f"z_1:{d + 1}", real=True)
    us = sp.symbols(f"u_1:{d + 1}", real=True)
    mq = sp.symbols(f"mu_q1:{d + 1}", real=True)
    mp = sp.symbols(f"mu_p1:{d + 1}", real=True)
    sq = sp.symbols(f"sigma_q1:{d + 1}", positive=True)
    spp = sp.symbols(f"sigma_p1:{d + 1}", positive=True)
    q, p = _mvn_diag_pdf(zs, mq, sq), _mvn_diag_pdf(zs, mp, spp)
    log_ratio = sp.expand(sp.expand_log(sp.log(q) - sp.log(p), force=True))
    sub = {zi: m + sd * ui for zi, m, sd, ui in zip(zs, mq, sq, us)}
    jacobian = sp.prod(sq)
    integrand = sp.expand(log_ratio.subs(sub) * sp.simplify(q.subs(sub) * jacobian))
    integral = sp.integrate(integrand, *[(ui, -sp.oo, sp.oo) for ui in us], conds="none")
    per_coordinate = [gaussian_kl_closed_form(mq[i], sq[i], mp[i], spp[i]) for i in range(d)]
    name = f"diagonal Gaussian KL = sum of per-coordinate KLs (d = {d})"
    _require_zero(integral - sp.Add(*per_coordinate), name, "lem-vae-diagonal-kl",
                  "joint-density integral minus the sum of scalar closed forms")
    return Derivation(
        f"diagonal Gaussian KL, d = {d}",
        {"q": q, "log_ratio": log_ratio, "integral": integral,
         "sum": sp.Add(*per_coordinate, evaluate=False)},
        (name,))


# ------------------------------------------------- 4. lambda from the decoder
c = sp.Symbol("c", positive=True)


def gaussian_decoder_nll(D: int = 3) -> Derivation:
    """-log N(x; f, cI) from the D-dimensional density equals
    ||x - f||^2 / (2c) + (D/2) log(2 pi c)."""
    xs = sp.symbols(f"x_1:{D + 1}", real=True)
    fs = sp.symbols(f"f_1:{D + 1}", real=True)
    density = _mvn_diag_pdf(xs, fs, [sp.sqrt(c)] * D)
    nll = -sp.log(density)
    sq_err = sum((xi - fi) ** 2 for xi, fi in zip(xs, fs))
    formula = sp.Add(sq_err / (2 * c), sp.Mul(sp.Rational(D, 2), sp.log(2 * sp.pi * c),
                                               evaluate=False), evaluate=False)
    name = f"Gaussian decoder negative log-likelihood (D = {D})"
    _require_zero(nll - formula, name, "lem-vae-gaussian-nll")
    return Derivation(f"Gaussian decoder NLL, D = {D}",
                      {"density": density, "nll": nll, "formula": formula}, (name,))


def _lambda_from_nll(D: int):
    """Route 1 of :func:`kl_weight_lambda` for a D-dimensional decoder:
    (NLL as a function of R, alpha, lambda, the constant left over)."""
    R, K, lam, alpha = sp.symbols("R K lambda alpha", positive=True)
    nll = gaussian_decoder_nll(D)
    xs = sorted((v for v in nll["nll"].free_symbols if v.name.startswith("x_")), key=str)
    fs = sorted((v for v in nll["nll"].free_symbols if v.name.startswith("f_")), key=str)
    # put the squared error R into the first coordinate: ||x - f||^2 = R
    at_r = {xs[0]: fs[0] + sp.sqrt(R), **{xi: fi for xi, fi in zip(xs[1:], fs[1:])}}
    nll_r = sp.expand(sp.expand_log(nll["nll"].subs(at_r), force=True))
    name = "lambda = 2c"
    _require(nll_r.free_symbols <= {R, c} and sp.simplify(sp.diff(nll_r, R, 2)) == 0, name,
             "thm-vae-lambda", f"the decoder NLL {nll_r} is not an affine function of the "
             "squared error alone, so its expectation is not NLL(R)")
    loss2 = nll_r + K                                           # eq. (2), expected under q
    loss3 = R + lam * K                                         # eq. (3)
    diff = alpha * loss2 - loss3
    sol = sp.solve([sp.diff(diff, R), sp.diff(diff, K)], [alpha, lam], dict=True)
    _require(len(sol) == 1, name, "thm-vae-lambda", f"expected one solution, got {sol}")
    sol = sol[0]
    const = sp.expand(sp.expand_log(diff.subs(sol), force=True))
    _require(not (const.free_symbols & {R, K}), name, "thm-vae-lambda",
             f"the remainder {const} still depends on R or K")
    return nll_r, loss2, loss3, sol[alpha], sol[lam], const


def kl_weight_lambda() -> Derivation:
    """The weight lambda of eq. (3), derived twice.

    1. From the verified decoder NLL (:func:`gaussian_decoder_nll`, computed
       from the density, for D = 1, 2, 3): it is affine in the squared error,
       so its expectation under q is the same expression in
       R = E_q||x - f(z)||^2, and eq. (2) is loss2 = NLL(R) + K. Find the
       positive scale alpha and the weight lambda for which
       alpha * loss2 - (R + lambda K) depends on neither R nor K (then both
       losses have the same minimisers), and the constant that is left
       (proportional to D).
    2. From the minimisers themselves, in the conjugate model (f(z) = a z + b,
       q = N(mu, sigma^2), every expectation by sympy from the densities): the
       lambda for which eq. (3)'s minimiser over mu equals eq. (2)'s.
    Both must give the same lambda."""
    name = "lambda = 2c"
    Dsym = sp.Symbol("D", positive=True, integer=True)
    routes = {d: _lambda_from_nll(d) for d in (1, 2, 3)}
    nll_r, loss2, loss3, alpha_, lam_, const1 = routes[1]
    lam = sp.Symbol("lambda", positive=True)
    for d, (_, _, _, alpha_d, lam_d, const_d) in routes.items():
        _require_zero(lam_d - lam_, name, "thm-vae-lambda", f"lambda(D={d}) - lambda(D=1)")
        _require_zero(alpha_d - alpha_, name, "thm-vae-lambda", f"alpha(D={d}) - alpha(D=1)")
        _require_zero(const_d - d * const1, name, "thm-vae-lambda",
                      f"constant(D={d}) - {d} constant(D=1)")
    constant = Dsym * c * sp.logcombine(sp.expand(const1 / c), force=True)  # D c log(2 pi c)
    # route 2: the minimisers in the conjugate model
    m = sp.Symbol("m", real=True)
    t = sp.Symbol("t", positive=True)
    E = lambda f: gaussian_expectation(f, z, m, t)  # noqa: E731
    kl_q = E(sp.log(normal_pdf(z, m, t ** 2)) - sp.log(normal_pdf(z, 0, 1)))
    loss2_lg = E(-sp.log(normal_pdf(x, a * z + b, c))) + kl_q
    loss3_lg = E((x - a * z - b) ** 2) + lam * kl_q
    m2 = sp.solve(sp.diff(loss2_lg, m), m)
    m3 = sp.solve(sp.diff(loss3_lg, m), m)
    _require(len(m2) == 1 and len(m3) == 1, name, "thm-vae-lambda",
             f"expected one minimiser over the mean each, got {m2} and {m3}")
    lam2 = sp.solve(sp.numer(sp.together(m3[0] - m2[0])), lam)
    _require(len(lam2) == 1, name, "thm-vae-lambda",
             f"expected one lambda with the same minimiser, got {lam2}")
    _require_zero(lam_ - lam2[0], name, "thm-vae-lambda",
                  "lambda from the rescaled loss minus lambda from the minimisers")
    return Derivation("lambda", {"nll": nll_r, "loss2": loss2, "loss3": loss3,
                                 "alpha": alpha_, "lambda": lam_, "constant": constant,
                                 "lambda_from_minimisers": lam2[0]},
                      (name, "the same lambda from the minimisers of the conjugate model"))


def vae_reconstruction_vs_ae() -> Derivation:
    """With a linear decoder f(z) = w z + b0 (D = 2, one latent) and
    q = N(g, h): E_q ||x - f(z)||^2 = ||x - f(g)||^2 + h ||w||^2, the plain
    autoencoder's loss plus a penalty on the encoder's noise."""
    x1, x2, w1, w2, b1, b2, g = sp.symbols("x_1 x_2 w_1 w_2 b_1 b_2 g", real=True)
    h = sp.Symbol("h", positive=True)
    f = lambda t: (w1 * t + b1, w2 * t + b2)  # noqa: E731
    err = lambda t: sum((xi - fi) ** 2 for xi, fi in zip((x1, x2), f(t)))  # noqa: E731
    expected = gaussian_expectation(err(z), z, g, sp.sqrt(h))
    ae_loss = err(g)
    name = "E_q||x - f(z)||^2 = ||x - f(g)||^2 + h ||w||^2"
    _require_zero(expected - ae_loss - h * (w1 ** 2 + w2 ** 2), name, "eq-vae-recon-vs-ae")
    return Derivation("VAE reconstruction vs AE loss",
                      {"expected": expected, "ae_loss": ae_loss,
                       "penalty": h * (w1 ** 2 + w2 ** 2)}, (name,))


def nonlinear_reconstruction_expansion() -> Derivation:
    """The expansion eq-vae-recon-nonlinear, for a decoder whose two outputs
    (D = 2) are general cubic polynomials of a scalar code, q = N(g, h):
    E_q ||x - f(z)||^2 minus ||x - f(g)||^2 + h (||f'(g)||^2 - <x - f(g), f''(g)>)
    has no term of degree 0 or 1 in h (the left side integrated against the
    density N(z; g, h), the right side from sympy's derivatives of f). Then
    the page's example, f(z) = z^2, g = 0, x = 1, by integrating
    (1 - z^2)^2 against the density N(z; 0, h) directly: exactly
    1 - 2h + 3h^2, which is below 1 exactly for 0 < h < 2/3."""
    h, g = sp.Symbol("h", positive=True), sp.Symbol("g", real=True)
    xs = sp.symbols("x_1 x_2", real=True)
    coef = [[sp.Symbol(f"c_{i}{k}", real=True) for k in range(4)] for i in (1, 2)]
    fs = [sp.Add(*(ck * z ** k for k, ck in enumerate(ci))) for ci in coef]
    expected = sum(density_expectation((xi - fi) ** 2, z, g, h) for xi, fi in zip(xs, fs))
    resid = [xi - fi.subs(z, g) for xi, fi in zip(xs, fs)]
    slope = [sp.diff(fi, z).subs(z, g) for fi in fs]
    curve = [sp.diff(fi, z, 2).subs(z, g) for fi in fs]
    stated = (sum(r ** 2 for r in resid)
              + h * (sum(d ** 2 for d in slope) - sum(r * k for r, k in zip(resid, curve))))
    remainder = sp.expand(expected - stated)
    name = "E_q||x - f(z)||^2 = ||x - f(g)||^2 + h(||f'||^2 - <x - f(g), f''>) + O(h^2)"
    _require_zero(remainder.subs(h, 0), name, "eq-vae-recon-nonlinear",
                  "the remainder's term of degree 0 in h")
    _require_zero(sp.diff(remainder, h).subs(h, 0), name, "eq-vae-recon-nonlinear",
                  "the remainder's term of degree 1 in h")
    # the example f(z) = z^2, g = 0, x = 1, integrated against the density itself
    t = sp.Symbol("t", real=True)
    example = sp.integrate((1 - t ** 2) ** 2 * normal_pdf(t, 0, h), (t, -sp.oo, sp.oo),
                           conds="none")
    page = 1 - 2 * h + 3 * h ** 2
    name_ex = "f(z) = z^2, g = 0, x = 1: E_q (1 - z^2)^2 = 1 - 2h + 3h^2"
    _require_zero(example - page, name_ex, "eq-vae-recon-nonlinear",
                  "the integral against N(z; 0, h) minus 1 - 2h + 3h^2")
    y = sp.Symbol("y", real=True)
    below = sp.solve_univariate_inequality(page.subs(h, y) < 1, y, relational=False)
    name_below = "1 - 2h + 3h^2 < 1 exactly for 0 < h < 2/3"
    _require(below == sp.Interval.open(0, sp.Rational(2, 3)), name_below,
             "eq-vae-recon-nonlinear", f"sympy finds it below 1 on {below}")
    return Derivation("VAE reconstruction, nonlinear decoder",
                      {"expected": expected, "stated": stated,
                       "remainder": sp.collect(remainder, h), "example": sp.expand(example)},
                      (name, name_ex, name_below))


# ---------------------------------------------- 5. reparameterization trick
eps = sp.Symbol("epsilon", real=True)
logvar = sp.Symbol("ell", real=True)


def reparameterization() -> Derivation:
    """z = mu + sigma eps, eps ~ N(0, 1): z ~ N(mu, sigma^2), and the gradient
    of E[F(z)] equals E[dF(mu + sigma eps)/d(parameter)].

    The two sides are computed by different routes: the left one by sympy
    integration of F(z) against the density N(z; mu, sigma^2), with the
    parameters *inside the density*, then differentiation; the right one as
    an expectation over eps of the pathwise derivative. Checked for F(z) = z^2
    and z^4, in the (mu, sigma) parametrization and in the log-variance one,
    sigma = exp(ell/2), that the package uses."""
    zr = mu + sigma * eps
    checks = []
    # z ~ N(mu, sigma^2): sympy.stats derives the density of the transformed
    # variable mu + sigma*eps on its own (no Jacobian typed here), and the
    # moments below come from integrating against eps's density
    from sympy.stats import Normal as NormalVariable, density as density_of

    name = "mu + sigma*eps has density N(mu, sigma^2) (change of variables)"
    density = density_of(mu + sigma * NormalVariable("epsilon_rv", 0, 1))(z)
    _require_zero(sp.log(density) - sp.log(normal_pdf(z, mu, sigma ** 2)), name, "eq-vae-reparam",
                  "log of sympy.stats' density of mu + sigma eps minus log N(z; mu, sigma^2)")
    mean = gaussian_expectation(zr, eps, 0, 1)
    var = gaussian_expectation((zr - mean) ** 2, eps, 0, 1)
    _require_zero(mean - mu, name, "eq-vae-reparam", "E[mu + sigma eps] - mu")
    _require_zero(var - sigma ** 2, name, "eq-vae-reparam", "Var[mu + sigma eps] - sigma^2")
    checks.append(name)
    out = {"z": zr, "mean": mean, "var": var}

    def by_density(F, var_expr):  # integral of F(z) N(z; mu, var) dz, by sympy
        return density_expectation(F(z), z, mu, var_expr)

    for power in (2, 4):
        F = lambda t, k=power: t ** k  # noqa: E731
        objective = by_density(F, sigma ** 2)
        for theta in (mu, sigma):
            grad_of_mean = sp.diff(objective, theta)
            mean_of_grad = gaussian_expectation(sp.diff(F(zr), theta), eps, 0, 1)
            name = f"d/d{theta} E[z^{power}] = E[d z^{power}/d{theta}] (pathwise)"
            _require_zero(grad_of_mean - mean_of_grad, name, "thm-vae-reparam",
                          "derivative of the integral against the density minus "
                          "the expected pathwise derivative")
            checks.append(name)
            out[f"grad_{theta}_z{power}"] = sp.factor(grad_of_mean)
        out[f"E_z{power}"] = objective
    # the package's parametrization: sigma = exp(ell / 2), ell = log sigma^2
    z_ell = mu + sp.exp(logvar / 2) * eps
    for power in (2, 4):
        objective = by_density(lambda t, k=power: t ** k, sp.exp(logvar))
        grad_ell = sp.diff(objective, logvar)
        pathwise = gaussian_expectation(sp.diff(z_ell ** power, logvar), eps, 0, 1)
        name = f"d/d(log sigma^2) E[z^{power}] = E[d z^{power}/d(log sigma^2)] (pathwise)"
        _require_zero(grad_ell - pathwise, name, "thm-vae-reparam")
        checks.append(name)
        out[f"grad_logvar_z{power}"] = grad_ell
    return Derivation("reparameterization", out, tuple(checks))


# ------------------------- 9. the one-liner found in most VAE code (questions, Q3)
def textbook_kl(mu, logvar):
    """The one-liner found in most VAE code: KL(N(mu, e^logvar) || N(0, I))
    per example, ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` (torch
    tensors, the last dimension is the latent)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)


def kl_term_mapping() -> dict[str, str]:
    """The four terms of the one-liner, each matched (by sympy) with a term
    of the closed form eq-vae-gaussian-kl at mu_p = 0, sigma_p = 1:
    -1/2 * 1 = -1/2; -1/2 log sigma^2 = log(sigma_p / sigma_q);
    -1/2 (-mu^2) = (mu_q - mu_p)^2 / (2 sigma_p^2); -1/2 (-sigma^2) =
    sigma_q^2 / (2 sigma_p^2). The four terms together are then compared
    with :func:`gaussian_kl_closed_form` (the form section 3 derives by
    integration) at N(0, 1). Raises DerivationError if a term does not match
    or the sums differ. Returns LaTeX: one-liner term -> closed-form term."""
    at_prior = {mu_p: 0, sigma_p: 1}
    closed = [sp.log(sigma_p / sigma_q), (mu_q - mu_p) ** 2 / (2 * sigma_p ** 2),
              sigma_q ** 2 / (2 * sigma_p ** 2), -sp.Rational(1, 2)]
    logvar = sp.log(sigma_q ** 2)
    one_liner = [logvar, -mu_q ** 2, -sp.exp(logvar), sp.Integer(1)]
    names = [r"\log\sigma^2", r"-\mu^2", r"-e^{\log\sigma^2}", r"1"]
    out = {}
    for name, term, piece in zip(names, one_liner, closed):
        _require_zero(sp.expand_log(-term / 2 - piece.subs(at_prior), force=True),
                      f"the one-liner's term {name} = {piece} of the closed form", "eq-vae-gaussian-kl")
        out[name] = sp.latex(piece)
    whole = gaussian_kl_closed_form(mu_q, sigma_q, 0, 1) - (-sp.Rational(1, 2) * sum(one_liner))
    _require_zero(sp.expand_log(whole, force=True), "the one-liner = the Gaussian KL at N(0, 1)",
                  "eq-vae-gaussian-kl")
    return out


def all_symbolic() -> list[Derivation]:
    """Eight of the chapter's nine symbolic derivations, in the chapter's
    order: every one of them except :func:`nonlinear_reconstruction_expansion`.
    That ninth one is not in this list; it runs with the chapter's build
    checks, ``CHAPTER_CHECKS["vae_theory"]`` in
    :mod:`autoencoders.derivations.build` (so through
    ``run_checks("vae_theory")`` and ``all_checks()``), which hold all nine."""
    return [conjugate_posterior(), elbo_identity(), gaussian_kl_scalar(),
            gaussian_kl_diagonal(2), gaussian_decoder_nll(3), kl_weight_lambda(),
            vae_reconstruction_vs_ae(), reparameterization()]

