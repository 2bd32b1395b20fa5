"""Mutation tests of the build-time checks.

Each mutant is a plausible one-line mistake (a few are two lines that only
make sense together) in the derivations, the losses, the models or the
metrics. It is applied to a copy of the package, and the checks that run
while the book builds (``derivations.build.all_checks()``, the same callables
as ``run_checks(chapter)``) run on the copy in a subprocess. A mutant is
*killed* when one of them raises ``DerivationError``; every mutant must be
killed, so a mistake of that kind cannot reach a built book unnoticed.

The original line of every mutant must exist in the source exactly once
(whole line, indentation included), so a refactor that moves it makes the
mutant fail loudly instead of silently not applying.

The run prints the kill rate. Mutants run two at a time
(``AUTOENCODERS_MUTANT_WORKERS`` changes that); the whole set takes a few
minutes, so it is marked ``slow``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "code" / "autoencoders"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str                       # file, relative to the package
    edits: tuple                    # ((original whole line, replacement line), ...)
    why: str = ""


def M(name, path, old, new, why=""):
    return Mutant(name, path, ((old, new),), why)


MUTANTS = [
    # ------------------------------------------------------------ losses.py
    M("kl_sign", "losses.py",
      "    per_coordinate = 0.5 * (logvar_p - logvar_q",
      "    per_coordinate = 0.5 * (logvar_q - logvar_p",
      "log(sigma_p/sigma_q) with the ratio upside down"),
    M("kl_missing_half", "losses.py",
      "    per_coordinate = 0.5 * (logvar_p - logvar_q",
      "    per_coordinate = (logvar_p - logvar_q"),
    M("kl_sigma_for_variance", "losses.py",
      "                            + (logvar_q.exp() + (mu_p - mu_q) ** 2) / logvar_p.exp()",
      "                            + ((0.5 * logvar_q).exp() + (mu_p - mu_q) ** 2) / logvar_p.exp()",
      "sigma_q where sigma_q^2 belongs"),
    M("kl_mean_over_dims", "losses.py",
      "    return per_coordinate.sum(dim=-1)",
      "    return per_coordinate.mean(dim=-1)"),
    M("gaussian_nll_missing_half", "losses.py",
      "    return squared_error(x_hat, x) / (2 * c) + 0.5 * d * math.log(2 * math.pi * c)",
      "    return squared_error(x_hat, x) / c + 0.5 * d * math.log(2 * math.pi * c)"),
    M("gaussian_nll_constant", "losses.py",
      "    return squared_error(x_hat, x) / (2 * c) + 0.5 * d * math.log(2 * math.pi * c)",
      "    return squared_error(x_hat, x) / (2 * c) + 0.5 * math.log(2 * math.pi * c)",
      "the normaliser once instead of once per dimension"),
    M("mse_sum_not_mean", "losses.py",
      "    return (x_hat - x).pow(2).flatten(1).mean(dim=1)",
      "    return (x_hat - x).pow(2).flatten(1).sum(dim=1)"),
    M("bernoulli_mean_over_pixels", "losses.py",
      '        logits, x, reduction="none").flatten(1).sum(dim=1)',
      '        logits, x, reduction="none").flatten(1).mean(dim=1)'),
    M("codebook_loss_sg_wrong_side", "losses.py",
      "    return (z_e.detach() - e).pow(2).flatten(1).mean(dim=1)",
      "    return (z_e - e.detach()).pow(2).flatten(1).mean(dim=1)"),
    M("commitment_loss_sg_wrong_side", "losses.py",
      "    return (z_e - e.detach()).pow(2).flatten(1).mean(dim=1)",
      "    return (z_e.detach() - e).pow(2).flatten(1).mean(dim=1)"),
    M("discretized_bin_width", "losses.py",
      "    half = 0.5 / (levels - 1)",
      "    half = 1.0 / (levels - 1)"),
    M("nats_to_bits_log10", "losses.py",
      "    return nats / math.log(2)",
      "    return nats / math.log(10)"),
    M("loo_baseline_includes_own_sample", "losses.py",
      "    return (values.sum(dim=-1, keepdim=True) - values) / (n - 1)",
      "    return values.sum(dim=-1, keepdim=True) / n",
      "a baseline that depends on the sample it multiplies: biased"),
    M("score_surrogate_sign", "losses.py",
      "    return -(reward - baseline).detach() * log_q",
      "    return (reward - baseline).detach() * log_q"),
    # --------------------------------------------------- models/quantizer.py
    Mutant("quantizer_losses_swapped", "models/quantizer.py", (
        ("                         codebook_loss=losses.codebook_loss(z_e, e_k),",
         "                         codebook_loss=losses.commitment_loss(z_e, e_k),"),
        ("                         commitment_loss=losses.commitment_loss(z_e, e_k))",
         "                         commitment_loss=losses.codebook_loss(z_e, e_k))"))),
    M("straight_through_reversed", "models/quantizer.py",
      "        z_q = z_e + (e_k - z_e).detach()",
      "        z_q = e_k + (z_e - e_k).detach()"),
    M("straight_through_no_stop_gradient", "models/quantizer.py",
      "        z_q = z_e + (e_k - z_e).detach()",
      "        z_q = z_e + (e_k - z_e)"),
    M("nearest_distance_sign", "models/quantizer.py",
      "                     - 2 * flat @ e.t()",
      "                     + 2 * flat @ e.t()"),
    M("ema_count_decay_inverted", "models/quantizer.py",
      "        self.ema_count.mul_(g).add_(one_hot.sum(0), alpha=1 - g)",
      "        self.ema_count.mul_(1 - g).add_(one_hot.sum(0), alpha=g)"),
    M("ema_sum_decay_inverted", "models/quantizer.py",
      "        self.ema_sum.mul_(g).add_(one_hot.t() @ flat, alpha=1 - g)",
      "        self.ema_sum.mul_(1 - g).add_(one_hot.t() @ flat, alpha=g)"),
    M("ema_updates_in_eval", "models/quantizer.py",
      "        if self.training:",
      "        if True:"),
    M("vqvae_commitment_without_beta", "models/vqvae.py",
      "        loss = mse + self.commitment * q.commitment_loss",
      "        loss = mse + q.commitment_loss"),
    # ------------------------------------------------------- models/vae.py
    M("reparameterize_variance_for_std", "models/vae.py",
      "    return mu + torch.exp(0.5 * logvar) * eps",
      "    return mu + torch.exp(logvar) * eps",
      "z = mu + exp(logvar) eps"),
    M("decoder_variance_lambda_equals_c", "models/vae.py",
      "        return self.kl_weight * self.pixels / 2",
      "        return self.kl_weight * self.pixels",
      "lambda = c instead of 2c"),
    M("vae_loss_ignores_kl_weight", "models/vae.py",
      '        terms = {"loss": (recon + self.kl_weight * kl).mean(),',
      '        terms = {"loss": (recon + kl).mean(),'),
    M("vae_likelihood_on_logits", "models/vae.py",
      "        return -losses.gaussian_nll(torch.sigmoid(logits), x, self.decoder_variance)",
      "        return -losses.gaussian_nll(logits, x, self.decoder_variance)"),
    # -------------------------------------------------------- estimators.py
    M("score_sigma_missing_minus_one", "estimators.py",
      "    return eps / sigma, (eps * eps - 1.0) / sigma",
      "    return eps / sigma, eps * eps / sigma",
      "a biased score-function estimator"),
    M("score_mu_times_sigma", "estimators.py",
      "    return eps / sigma, (eps * eps - 1.0) / sigma",
      "    return eps * sigma, (eps * eps - 1.0) / sigma"),
    M("pathwise_sigma_gradient", "estimators.py",
      "    return slope, slope * eps",
      "    return slope, slope * sigma"),
    M("variance_study_std", "estimators.py",
      "            var = estimate.var(dim=0)",
      "            var = estimate.std(dim=0)"),
    M("variance_study_sum_not_mean", "estimators.py",
      "            estimate = torch.cat([g_mu.mean(dim=1), g_sigma.mean(dim=1)], dim=-1)  # (R, 2d)",
      "            estimate = torch.cat([g_mu.sum(dim=1), g_sigma.sum(dim=1)], dim=-1)  # (R, 2d)"),
    # ------------------------------------------------ metrics/likelihood.py
    M("iwae_without_log_k", "metrics/likelihood.py",
      "            out[k].append(-(torch.logsumexp(log_w[:k], dim=0) - math.log(k)).double().cpu())",
      "            out[k].append(-torch.logsumexp(log_w[:k], dim=0).double().cpu())"),
    M("iwae_mean_not_logsumexp", "metrics/likelihood.py",
      "            out[k].append(-(torch.logsumexp(log_w[:k], dim=0) - math.log(k)).double().cpu())",
      "            out[k].append(-log_w[:k].mean(dim=0).double().cpu())",
      "averages log-weights: the ELBO for every k"),
    M("iwae_log_q_without_logvar", "metrics/likelihood.py",
      "    log_q = -0.5 * (eps ** 2 + logvar + log2pi).sum(dim=-1)     # log N(z; mu, sigma^2)",
      "    log_q = -0.5 * (eps ** 2 + log2pi).sum(dim=-1)     # log N(z; mu, sigma^2)"),
    M("iwae_samples_variance_for_std", "metrics/likelihood.py",
      "    z = mu + torch.exp(0.5 * logvar) * eps                      # (k, N, d)",
      "    z = mu + torch.exp(logvar) * eps                      # (k, N, d)"),
    M("bits_per_dim_log10", "metrics/likelihood.py",
      "    return nll_nats / (dims * math.log(2))",
      "    return nll_nats / (dims * math.log(10))"),
    # ------------------------------------------------------- metrics/pca.py
    M("posterior_variance_missing_c", "metrics/pca.py",
      "        return mean, torch.sqrt(self.c * torch.diagonal(torch.linalg.inv(m)))",
      "        return mean, torch.sqrt(torch.diagonal(torch.linalg.inv(m)))"),
    M("exact_gradient_sigma_sign", "metrics/pca.py",
      "        return self.W.T @ (r - self.W @ mu) / self.c, -sigma * (self.W ** 2).sum(dim=0) / self.c",
      "        return self.W.T @ (r - self.W @ mu) / self.c, sigma * (self.W ** 2).sum(dim=0) / self.c"),
    M("expected_log_prob_without_spread", "metrics/pca.py",
      "                     - (resid @ resid + spread) / (2 * self.c))",
      "                     - (resid @ resid) / (2 * self.c))"),
    M("eigenvalues_ascending", "metrics/pca.py",
      "    return mean, vals[::-1], vecs[:, ::-1]",
      "    return mean, vals, vecs"),
    M("ppca_noise_sum_not_mean", "metrics/pca.py",
      "    c = float(vals[latent_dim:].mean())",
      "    c = float(vals[latent_dim:].sum())"),
    M("ppca_weights_without_noise", "metrics/pca.py",
      "    W = vecs[:, :latent_dim] * np.sqrt(np.maximum(vals[:latent_dim] - c, 0.0))",
      "    W = vecs[:, :latent_dim] * np.sqrt(np.maximum(vals[:latent_dim], 0.0))"),
    M("principal_angles_radians", "metrics/pca.py",
      "    return np.sort(np.degrees(subspace_angles(a, b)))",
      "    return np.sort(subspace_angles(a, b))"),
    # ---------------------------------------------------------- derivations
    M("normal_pdf_missing_half", "derivations/checks.py",
      "    return sp.exp(-(z - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)",
      "    return sp.exp(-(z - mean) ** 2 / var) / sp.sqrt(2 * sp.pi * var)"),
    M("kl_closed_form_sign", "derivations/vae.py",
      "                  (s_q ** 2 + (m_p - m_q) ** 2) / (2 * s_p ** 2),",
      "                  (s_q ** 2 - (m_p - m_q) ** 2) / (2 * s_p ** 2),"),
    M("posterior_variance_formula", "derivations/vae.py",
      "    post_var = s ** 2 / (a ** 2 + s ** 2)",
      "    post_var = 1 / (a ** 2 + s ** 2)"),
    M("decoder_nll_formula_missing_half", "derivations/vae.py",
      "    formula = sp.Add(sq_err / (2 * c), sp.Mul(sp.Rational(D, 2), sp.log(2 * sp.pi * c),",
      "    formula = sp.Add(sq_err / c, sp.Mul(sp.Rational(D, 2), sp.log(2 * sp.pi * c),"),
    M("mvn_density_std_for_variance", "derivations/checks.py",
      "    cov = sp.diag(*[s ** 2 for s in stds])",
      "    cov = sp.diag(*stds)"),
    M("score_function_tidy_form", "derivations/score_function.py",
      "    tidy = kappa - ((x - b0 - a * mu) ** 2 + a ** 2 * s ** 2) / (2 * c)",
      "    tidy = kappa - (x - b0 - a * mu) ** 2 / (2 * c)",
      "E_q[f] without the spread of q"),
    M("elbo_kl_prior_short", "derivations/vae.py",
      "    kl_prior_short = sp.Add(sp.Mul(half, sp.Add(mu ** 2, sigma ** 2, -1, evaluate=False),",
      "    kl_prior_short = sp.Add(sp.Mul(half, sp.Add(mu ** 2, sigma, -1, evaluate=False),"),
]

# Runs in the subprocess: every build-time check, cheap numeric ones first
# (a killed mutant stops at the first failure), the symbolic ones last.
RUNNER = """
import sys, traceback
from autoencoders.derivations.build import all_checks
from autoencoders.derivations.checks import DerivationError
checks = sorted(all_checks(), key=lambda c: c.__module__.endswith(('.vae', '.score_function')))
for check in checks:
    try:
        check()
    except DerivationError as err:
        print(f"KILLED by {check.__name__}: {err}")
        sys.exit(1)
    except Exception:
        print(f"CRASHED in {check.__name__}:")
        traceback.print_exc(file=sys.stdout)
        sys.exit(2)
print("SURVIVED")
"""


def _apply(mutant: Mutant, root: Path) -> None:
    target = root / "autoencoders" / mutant.path
    lines = target.read_text().split("\n")
    for old, new in mutant.edits:
        where = [i for i, line in enumerate(lines) if line == old]
        assert len(where) == 1, (f"mutant {mutant.name}: the original line occurs {len(where)} "
                                 f"times in {mutant.path}, not once: {old!r}")
        lines[where[0]] = new
    target.write_text("\n".join(lines))


def _run(mutant: Mutant | None) -> tuple[str, str, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        root = Path(tmp)
        shutil.copytree(PACKAGE, root / "autoencoders",
                        ignore=shutil.ignore_patterns("__pycache__"))
        if mutant is not None:
            _apply(mutant, root)
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", RUNNER], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=600)
    out = (proc.stdout + proc.stderr).strip()
    status = {0: "survived", 1: "killed", 2: "crashed"}.get(proc.returncode, "crashed")
    return status, out, time.perf_counter() - start


@pytest.fixture(scope="module")
def results(request):
    """Run every mutant selected in this session (all of them if the kill
    rate is selected), a few at a time; {name: (status, output, seconds)}."""
    names = set()
    for item in request.session.items:
        if item.module is not None and item.module.__name__ == __name__:
            spec = getattr(item, "callspec", None)
            if spec is not None and "mutant" in spec.params:
                names.add(spec.params["mutant"].name)
            elif item.name in ("test_kill_rate",):
                names.update(m.name for m in MUTANTS)
    todo = [None] + [m for m in MUTANTS if m.name in names]
    workers = int(os.environ.get("AUTOENCODERS_MUTANT_WORKERS", "2"))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = dict(zip(["(unmutated)"] + [m.name for m in todo[1:]], pool.map(_run, todo)))
    yield done
    mutated = {k: v for k, v in done.items() if k != "(unmutated)"}
    if mutated:
        killed = [k for k, v in mutated.items() if v[0] == "killed"]
        survivors = sorted(set(mutated) - set(killed))
        line = (f"mutation kill rate of the build-time checks: {len(killed)}/{len(mutated)} "
                f"= {100 * len(killed) / len(mutated):.0f}%"
                + (f"; not killed: {', '.join(survivors)}" if survivors else ""))
        plugins = request.config.pluginmanager
        reporter = plugins.get_plugin("terminalreporter")
        capture = plugins.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():   # shown even without -s
                reporter.write_line("\n" + line)
        else:
            print(line)


def test_unmutated_package_passes_every_check(results):
    status, out, _ = results["(unmutated)"]
    assert status == "survived", out[-3000:]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_killed_by_the_build_time_checks(mutant, results):
    status, out, seconds = results[mutant.name]
    assert status == "killed", f"{mutant.name} {status} ({seconds:.0f} s): {mutant.why}\n{out[-3000:]}"


def test_kill_rate(results):
    mutated = {k: v for k, v in results.items() if k != "(unmutated)"}
    assert len(mutated) >= 20
    rate = sum(v[0] == "killed" for v in mutated.values()) / len(mutated)
    assert rate >= 0.95, f"kill rate {rate:.0%}"


def test_mutant_names_are_unique():
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
