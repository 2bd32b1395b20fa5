"""Mutation tests of the build-time checks.

Each mutant is a plausible one-line mistake (a few are two lines that only
make sense together; a forgotten line is written as ``pass``) in the
derivations, the losses, the models, the metrics, the training upkeep
(``train.py``, ``config.py``: learning-rate schedule, batching, NaN guard,
resume, KL warm-up steps) or the claims' strict switch. It is applied to a copy of the package, and the checks that run
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


PAIRS = "metrics/codebook.py"

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
      "        return VAE.kl_lambda(kl_weight, pixels) / 2",
      "        return VAE.kl_lambda(kl_weight, pixels)",
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
      "        return tuple(-(torch.logsumexp(log_w[:k], dim=0) - math.log(k)) for k in ks)",
      "        return tuple(-torch.logsumexp(log_w[:k], dim=0) for k in ks)"),
    M("iwae_mean_not_logsumexp", "metrics/likelihood.py",
      "        return tuple(-(torch.logsumexp(log_w[:k], dim=0) - math.log(k)) for k in ks)",
      "        return tuple(-log_w[:k].mean(dim=0) for k in ks)",
      "averages log-weights: the ELBO for every k"),
    M("iwae_log_q_without_logvar", "metrics/likelihood.py",
      "    log_q = -0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + log2pi).sum(dim=-1)  # log N(z; mu, sigma^2)",
      "    log_q = -0.5 * ((z - mu) ** 2 / logvar.exp() + log2pi).sum(dim=-1)  # log N(z; mu, sigma^2)"),
    M("iwae_log_q_std_for_variance", "metrics/likelihood.py",
      "    log_q = -0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + log2pi).sum(dim=-1)  # log N(z; mu, sigma^2)",
      "    log_q = -0.5 * ((z - mu) ** 2 / (0.5 * logvar).exp() + logvar + log2pi).sum(dim=-1)  # log N(z; mu, sigma^2)"),
    M("iwae_targets_swapped", "metrics/likelihood.py",
      "        log_w = importance_log_weights(model, pair[:, 0], k_max, pair[:, 1], generator=gen)",
      "        log_w = importance_log_weights(model, pair[:, 1], k_max, pair[:, 0], generator=gen)",
      "encodes the target and scores the image"),
    M("reconstruction_sigma_per_image", "metrics/likelihood.py",
      "    return math.sqrt(float(sse.double().sum()) / images.numel())",
      "    return math.sqrt(float(sse.double().sum()) / len(images))"),
    M("discretized_no_tail_flip", "losses.py",
      "    flip = lo > 0",
      "    flip = lo > 1e9",
      "Phi(b) - Phi(a) near 1 for bins far above the mean: underflow"),
    M("discretized_log_mass_swapped", "losses.py",
      "    return log_b + torch.log(-torch.expm1(log_a - log_b))",
      "    return log_a + torch.log(-torch.expm1(log_a - log_b))"),
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
    M("best_baseline_taken_as_the_mean", "derivations/score_function.py",
      "    var_best = sp.factor(sp.expand(var_score.subs(beta, best[0])))",
      "    var_best = sp.factor(sp.expand(var_score.subs(beta, expected_f.subs(at_r))))",
      "the least variance evaluated at beta = E[f], which is not the minimiser"),
    # ------------------------------------- the KL warm-up and free bits (models/vae.py)
    M("kl_scale_not_capped", "models/vae.py",
      "        return (self.steps_taken / self.kl_warmup).clamp(max=1.0)",
      "        return self.steps_taken / self.kl_warmup",
      "the KL weight keeps growing past kl_weight after the warm-up"),
    M("kl_scale_also_in_eval", "models/vae.py",
      "        if self.kl_warmup <= 0 or not self.training:",
      "        if self.kl_warmup <= 0:",
      "evaluation reports the warmed-up objective, not the objective proper"),
    M("kl_warmup_counts_eval_passes", "models/vae.py",
      "            if self.training and self.kl_warmup > 0:",
      "            if self.kl_warmup > 0:",
      "every evaluation pass advances the warm-up"),
    M("kl_warmup_not_applied", "models/vae.py",
      "            weight = self.kl_weight * self.kl_scale()",
      "            weight = self.kl_weight"),
    M("free_bits_floor_on_the_total_kl", "models/vae.py",
      "        per_unit = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1)).mean(dim=0)",
      "        per_unit = losses.gaussian_kl(mu, logvar).mean(dim=0)",
      "one floor for the whole code instead of one per unit"),
    M("free_bits_floor_per_example", "models/vae.py",
      "        per_unit = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1)).mean(dim=0)",
      "        per_unit = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1)).mean(dim=1)",
      "averaged over the units of each example instead of over the batch"),
    M("free_bits_mean_over_units", "models/vae.py",
      "        return per_unit.clamp_min(self.free_bits).sum()",
      "        return per_unit.clamp_min(self.free_bits).mean()"),
    M("free_bits_ignored_in_the_loss", "models/vae.py",
      "            penalty = self.kl_penalty(mu, logvar) if self.free_bits > 0 else kl.mean()",
      "            penalty = kl.mean()"),
    # the one place the analyses read lambda and c = beta D / 2 from
    M("kl_lambda_halved", "models/vae.py",
      "        return kl_weight * pixels",
      "        return kl_weight * pixels / 2",
      "lambda = beta D / 2: every c an analysis prints is halved"),
    M("kl_lambda_divided_by_d", "models/vae.py",
      "        return kl_weight * pixels",
      "        return kl_weight / pixels",
      "lambda and beta = lambda / D mixed up"),
    M("warmup_a_share_of_one_epoch", "config.py",
      "        return max(1, round(self.kl_warmup * self.steps(train_images)))",
      "        return max(1, round(self.kl_warmup * self.steps_per_epoch(train_images)))"),
    M("steps_per_epoch_drops_the_short_batch", "config.py",
      "        return math.ceil(train_images / self.batch_size)",
      "        return train_images // self.batch_size"),
    # ------------------------------------------------- training upkeep (train.py)
    M("lr_warmup_starts_at_zero", "train.py",
      "        return lr * (step + 1) / warmup",
      "        return lr * step / warmup",
      "the first step of the warm-up has learning rate 0"),
    M("lr_cosine_ignores_the_warmup", "train.py",
      "    progress = (step - warmup) / max(1, total - warmup)",
      "    progress = step / max(1, total - warmup)"),
    M("lr_cosine_full_period", "train.py",
      "    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))",
      "    return lr * 0.5 * (1.0 + math.cos(2 * math.pi * progress))",
      "a whole cosine period: the rate climbs back to lr at the end"),
    M("fit_schedule_one_step_ahead", "train.py",
      "                        group[\"lr\"] = learning_rate(lr_schedule, lr, global_step - 1,",
      "                        group[\"lr\"] = learning_rate(lr_schedule, lr, global_step,"),
    M("batches_same_order_every_epoch", "train.py",
      "    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)",
      "    gen = torch.Generator().manual_seed(seed)"),
    M("fit_drops_the_short_batch", "train.py",
      "    steps_per_epoch = math.ceil(len(inputs) / batch_size)",
      "    steps_per_epoch = len(inputs) // batch_size",
      "the last images of every epoch's permutation are never trained on"),
    M("epoch_average_not_weighted_by_batch_size", "train.py",
      "                    sums[k] = sums.get(k, 0.0) + v * size",
      "                    sums[k] = sums.get(k, 0.0) + v"),
    M("nan_guard_misses_infinity", "train.py",
      "                if not math.isfinite(values[\"loss\"]):",
      "                if math.isnan(values[\"loss\"]):"),
    M("resume_restarts_the_epoch", "train.py",
      "        start_epoch, start_step = state[\"epoch\"], state[\"step\"]",
      "        start_epoch, start_step = state[\"epoch\"], 0"),
    M("resume_forgets_the_epoch_sums", "train.py",
      "        sums = state[\"sums\"]",
      "        sums = {}"),
    M("resume_without_the_random_state", "train.py",
      "        torch.set_rng_state(state[\"rng\"])",
      "        pass",
      "a forgotten line: the resumed run draws other noise"),
    M("interrupt_repeats_the_last_step", "train.py",
      "                position = (epoch, step + 1)",
      "                position = (epoch, step)"),
    # -------------------------------------------- codebook usage (models/quantizer.py)
    M("perplexity_entropy_in_bits", "models/quantizer.py",
      "    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()",
      "    entropy = -(p * torch.log2(p.clamp_min(1e-12))).sum()",
      "exp of an entropy in bits"),
    M("perplexity_is_the_entropy", "models/quantizer.py",
      "    return entropy.exp()",
      "    return entropy"),
    M("perplexity_frequencies_per_image", "models/quantizer.py",
      "    p = p / p.sum()",
      "    p = p / len(codes)",
      "divides by the images, not the positions"),
    M("dead_codes_counts_the_used_ones", "models/quantizer.py",
      "    return (code_counts(codes, num_codes) == 0).sum()",
      "    return (code_counts(codes, num_codes) > 0).sum()"),
    # --------------------------------------------- pair bits (metrics/codebook.py)
    M("pair_bits_not_smoothed", PAIRS,
      "    counts = torch.bincount(neighbour_pairs(train_codes, k), minlength=k * k).double() + 1",
      "    counts = torch.bincount(neighbour_pairs(train_codes, k), minlength=k * k).double()",
      "a pair never seen in training costs infinitely many bits"),
    M("pair_bits_in_nats", PAIRS,
      "    bits = -torch.log2(counts / counts.sum())",
      "    bits = -torch.log(counts / counts.sum())"),
    M("pair_bits_horizontal_only", PAIRS,
      "    return torch.cat([across.flatten(), down.flatten()])",
      "    return across.flatten()"),
    M("pair_bits_vertical_pairs_reversed", PAIRS,
      "    down = grids[:, :-1, :] * k + grids[:, 1:, :]",
      "    down = grids[:, 1:, :] * k + grids[:, :-1, :]"),
    M("pair_bits_summed", PAIRS,
      "    return float(bits[neighbour_pairs(grids, k)].mean())",
      "    return float(bits[neighbour_pairs(grids, k)].sum())"),
    # ------------------------------------------ the claims' strict switch (claims.py)
    M("claims_strict_only_in_full", "claims.py",
      "    return check_profile(profile or current_profile()) != \"smoke\"",
      "    return check_profile(profile or current_profile()) == \"full\""),
    M("claims_strict_ignores_its_argument", "claims.py",
      "    return check_profile(profile or current_profile()) != \"smoke\"",
      "    return check_profile(current_profile()) != \"smoke\""),
    M("claim_switch_inverted", "claims.py",
      "    if strict_claims():",
      "    if not strict_claims():"),
    M("check_claims_never_raises", "claims.py",
      "        out[c.key] = claim(ok, c.sentence, **read)",
      "        out[c.key] = ok"),
    M("claim_numpy_false_holds", "claims.py",
      "    ok = bool(condition)",
      "    ok = condition is not False",
      "numpy's False is not Python's False: a false claim passes"),
    # ------------------------ the score-function closed-form variances (estimators.py)
    M("closed_form_unit_c_not_squared", "estimators.py",
      "    unit = (c * sigma) ** 2",
      "    unit = c * sigma ** 2"),
    M("closed_form_reparam_sigma_drops_a_term", "estimators.py",
      "            mu=G2 / unit, sigma=(g ** 2 + G2 + Gd ** 2) / unit),",
      "            mu=G2 / unit, sigma=(g ** 2 + G2) / unit),"),
    M("closed_form_score_mu_trace_not_halved", "estimators.py",
      "            mu=(gg + g ** 2 + trG2 / 2 + 2 * G2 + c ** 2 * delta ** 2 - 2 * c * delta * Gd) / unit,",
      "            mu=(gg + g ** 2 + trG2 + 2 * G2 + c ** 2 * delta ** 2 - 2 * c * delta * Gd) / unit,"),
    M("closed_form_score_sigma_cross_term_sign", "estimators.py",
      "                   - 8 * c * delta * Gd) / unit),",
      "                   + 8 * c * delta * Gd) / unit),"),
    M("closed_form_g_without_sigma", "estimators.py",
      "    g = sigma * (W.T @ r)",
      "    g = W.T @ r"),
    M("closed_form_delta_sign", "estimators.py",
      "    delta = decoder.expected_log_prob(x, mu, sigma) - baseline",
      "    delta = baseline - decoder.expected_log_prob(x, mu, sigma)"),
    # ------------- k-means start and dead-code restarts (models/quantizer.py), last
    M("kmeans_start_may_repeat_rows", "models/quantizer.py",
      "    pick = torch.randperm(m, device=points.device)[:k] if m >= k else \\",
      "    pick = torch.randint(m, (k,), device=points.device) if m >= k else \\",
      "two codes can start on the same point and stay together"),
    M("kmeans_distance_sign", "models/quantizer.py",
      "        assign = (points.pow(2).sum(1, keepdim=True) - 2 * points @ centroids.t()",
      "        assign = (points.pow(2).sum(1, keepdim=True) + 2 * points @ centroids.t()"),
    M("kmeans_sum_not_mean", "models/quantizer.py",
      "        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)",
      "        centroids[filled] = sums[filled]"),
    M("kmeans_start_in_eval", "models/quantizer.py",
      "        if self.training and self._kmeans_start_pending():",
      "        if self._kmeans_start_pending():",
      "an evaluation pass before training sets the codebook"),
    Mutant("kmeans_start_every_step", "models/quantizer.py", (
        ("        if self.init != \"kmeans\" or self._kmeans_started:",
         "        if self.init != \"kmeans\":"),
        ("        return not self._kmeans_started",
         "        return True")),
        "the start is never remembered: k-means runs again at every training step"),
    M("restart_patience_off_by_one", "models/quantizer.py",
      "        dead = self.idle_steps >= self.patience  # (K,): True if idle",
      "        dead = self.idle_steps > self.patience  # (K,): True if idle"),
    M("restart_in_eval", "models/quantizer.py",
      "        if self.training and self.restart_dead:",
      "        if self.restart_dead:"),
    M("idle_counter_inverted", "models/quantizer.py",
      "        self.idle_steps.add_(1).masked_fill_(used, 0)",
      "        self.idle_steps.add_(1).masked_fill_(~used, 0)"),
    M("restart_onto_the_batch_mean", "models/quantizer.py",
      "        self.codebook.copy_(torch.where(moved, flat[order[i]], self.codebook))",
      "        self.codebook.copy_(torch.where(moved, flat.mean(0), self.codebook))"),
    M("restart_keeps_the_ema_sum", "models/quantizer.py",
      "        self.ema_sum.copy_(torch.where(moved, flat[order[i]], self.ema_sum))",
      "        pass",
      "a forgotten line: the next EMA step pulls the code back where it died"),
    M("restart_ema_count_zero", "models/quantizer.py",
      "        self.ema_count.masked_fill_(dead, 1.0)",
      "        self.ema_count.masked_fill_(dead, 0.0)",
      "the next EMA step divides by a count of almost 0 and throws the code far away"),
    # ---------------------- derivations/vae.py: the questions chapter's Q3 one-liner
    M("one_liner_mean_sign", "derivations/vae.py",
      "    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)",
      "    return -0.5 * (1 + logvar + mu.pow(2) - logvar.exp()).sum(dim=-1)",
      "the mean's square added where it is subtracted"),
    M("one_liner_std_for_variance", "derivations/vae.py",
      "    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)",
      "    return -0.5 * (1 + logvar - mu.pow(2) - (0.5 * logvar).exp()).sum(dim=-1)",
      "sigma where sigma^2 belongs"),
    M("one_liner_mapping_row", "derivations/vae.py",
      "              sigma_q ** 2 / (2 * sigma_p ** 2), -sp.Rational(1, 2)]",
      "              sigma_q ** 2 / sigma_p ** 2, -sp.Rational(1, 2)]",
      "the table row that pairs -e^logvar with sigma_q^2 / (2 sigma_p^2) loses its 2"),
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
