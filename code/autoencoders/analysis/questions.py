"""The computations of the "Questions readers ask" chapter (book/questions.md).

One function per question. Each fetches its models through
:func:`~autoencoders.cache.get_or_train` (training them on a cache miss),
measures them, and returns a small dataclass; a ``*_figure`` function next
to it lays the result out as a figure (layout only, with the helpers of
:mod:`autoencoders.plots`). The chapter glues the numbers and shows the
figures; the sentences live in the chapter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import cache, inference, losses, metrics
from ..claims import Claim
from ..cache import Run, get_or_train, load_data
from ..data import fixed_pick
from ..derivations.checks import DerivationError
from ..derivations.numeric import FLOAT32_EPS, KL_AGREEMENT
from ..derivations.vae import kl_term_mapping, textbook_kl  # noqa: F401  (Q3's)
from ..experiments import (ABLATION_KL_WEIGHTS, ABLATION_LATENTS, Q_CODEBOOK_FIXES,
                           Q_COLLAPSE, Q_GRIDS, ablation_name)
from ..models.vae import VAE, reparameterize
from .picks import one_per_class
from .vqvae import full_batch_steps, usage_on_test_set
from .vqvae import CodebookStudy

DIGITS = 10  # images shown per row of a figure


# ============================================================ VAE summaries
@dataclass
class VAESummary:
    """A trained Gaussian-decoder VAE on the test set."""

    name: str
    kl_weight: float        # beta of the per-pixel objective (MSE + beta KL)
    decoder_variance: float  # c = beta D / 2, what beta claims (thm-vae-lambda)
    test_kl: float          # nats per test image (closed form, exact)
    test_mse: float         # per pixel, decoding the posterior mean
    active_units: int       # units with Var_x E[z_u | x] > 0.01
    output_spread: float    # per-pixel s.d. of the reconstructions across inputs (0: one output)
    latent_dim: int
    train_seconds: float
    trained: bool           # trained in this build (not from the cache)
    # per pixel, decoding one sampled code per test image, as training
    # evaluates the model (train.evaluate; the results page shows it)
    sampled_mse: float = math.nan

    @property
    def decoder_sd(self) -> float:
        return math.sqrt(self.decoder_variance)


def summarize_vae(run: Run, x: torch.Tensor) -> VAESummary:
    """Test numbers of a Gaussian VAE on the images ``x`` (floats in [0, 1])."""
    model = run.model

    def vae_summary():  # once per model and test set
        mu, logvar = inference.encode(model, x)
        scores = metrics.reconstruction_scores(model, x)
        return {"kl": float(losses.gaussian_kl(mu.double(), logvar.double()).mean()),
                "mse": scores["mse"], "spread": scores["output_spread"],
                "active": metrics.active_units(mu)}
    s = cache.cached_evaluation(run, "vae-summary", vae_summary, inputs=[x])
    return VAESummary(run.config.name, run.config.kl_weight,
                      model.decoder_variance, s["kl"], s["mse"],
                      s["active"], s["spread"], run.config.latent_dim,
                      run.metrics["train_seconds"], run.trained,
                      sampled_mse=run.metrics["test"]["mse"])


# ============================================== Q1: averaged versus summed
@dataclass
class AveragingComparison:
    """Q1: the same VAE trained on the per-pixel MSE with KL weight 1, and
    with KL weight 1/D (the summed objective divided by D)."""

    pixels: int                            # D
    averaged: VAESummary                   # MSE averaged over pixels + 1 * KL
    summed: VAESummary                     # MSE averaged + KL / D  (= (SSE + KL) / D)
    objective_gap: float                   # |D * loss(1/D) - (SSE + KL)| / (SSE + KL), one batch
    objective_images: int                  # the images of that batch
    originals: torch.Tensor
    reconstructions: dict[str, torch.Tensor]
    samples: dict[str, torch.Tensor]

    @property
    def variance_ratio(self) -> float:
        return self.averaged.decoder_variance / self.summed.decoder_variance

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q1_<name>``)."""
        out = {"D": self.pixels, "latent": self.summed.latent_dim, "gap": self.objective_gap,
               "gap_n": self.objective_images, "c_ratio": self.variance_ratio,
               "sd_ratio": math.sqrt(self.variance_ratio),
               "samples_n": len(self.samples["summed"])}
        for key, name in (("avg", "averaged"), ("sum", "summed")):  # s.d. per pixel across samples
            out[f"{key}_sample_spread"] = float(self.samples[name].double().std(dim=0).mean())
        out["sample_spread_ratio"] = out["avg_sample_spread"] / out["sum_sample_spread"]
        for key, m in (("avg", self.averaged), ("sum", self.summed)):
            out |= {f"{key}_beta": m.kl_weight,
                    f"{key}_lambda": VAE.kl_lambda(m.kl_weight, self.pixels),
                    f"{key}_c": m.decoder_variance, f"{key}_sd": m.decoder_sd,
                    f"{key}_kl": m.test_kl, f"{key}_active": m.active_units,
                    f"{key}_mse": m.test_mse, f"{key}_mse_sampled": m.sampled_mse,
                    f"{key}_spread": m.output_spread,
                    f"{key}_rmse": math.sqrt(m.test_mse)}  # the residual s.d. per pixel
        return out


@torch.inference_mode()
def summed_objective_gap(model, x: torch.Tensor, seed: int = 0) -> float:
    """On the batch ``x``: the relative difference between D times the
    model's per-pixel objective (``loss_terms``, KL weight 1/D) and the
    summed objective ||x - f(z)||^2 + KL, computed from the same draw of z."""
    model.eval()
    torch.manual_seed(seed)
    per_pixel = model.loss_terms(x)["loss"].double()
    torch.manual_seed(seed)
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar)
    summed = (losses.squared_error(model.decode(z), x) + losses.gaussian_kl(mu, logvar)).mean()
    return float(abs(model.pixels * per_pixel - summed.double()) / summed.double())


def averaging_vs_summing(averaged: str = "q-vae-averaged",
                         summed: str = "q-vae-summed") -> AveragingComparison:
    """Q1: both VAEs (same network, data and budget) on the test digits."""
    runs = {"averaged": get_or_train(averaged), "summed": get_or_train(summed)}
    _, test = load_data(runs["summed"].config)
    x = test.floats()
    summed_lambda = VAE.kl_lambda(runs["summed"].config.kl_weight, runs["summed"].model.pixels)
    if abs(summed_lambda - 1) > 1e-9:
        raise ValueError(f"{summed} must have KL weight 1/D")
    shown = x[one_per_class(test.labels)]
    gap = summed_objective_gap(runs["summed"].model, x[fixed_pick(len(x), 256)])
    if not gap < IDENTITY_TOLERANCE:  # true for any weights: a check of the code, not a claim
        raise DerivationError(f"D times the per-pixel objective with beta = 1/D is not the summed "
                              f"objective (relative gap {gap:.2e}; eq-q-average)")
    return AveragingComparison(
        pixels=runs["summed"].model.pixels,
        averaged=summarize_vae(runs["averaged"], x), summed=summarize_vae(runs["summed"], x),
        objective_gap=gap,
        objective_images=min(256, len(x)),
        originals=shown,
        reconstructions={k: inference.reconstruct(r.model, shown) for k, r in runs.items()},
        samples={k: inference.prior_samples(r.model, DIGITS, r.config.latent_dim, seed=1)
                 for k, r in runs.items()})


IDENTITY_TOLERANCE = 1e-5  # Q1: relative gap of eq-q-average beyond float32 rounding


# ================================================ Q2: the KL during training
@dataclass
class KLTrajectory:
    """Q2: the loss terms of the logged training batches of one VAE."""

    name: str
    steps: list[int]
    recon: list[float]
    kl: list[float]
    total: list[float]
    steps_per_epoch: int
    window: int                 # batches averaged at each end
    start: dict[str, float] = field(default_factory=dict)  # first `window` logged batches
    end: dict[str, float] = field(default_factory=dict)    # last `window` logged batches
    kl_low: float = math.nan    # the lowest logged KL ...
    kl_low_step: int = 0        # ... and its step
    zero_rate: float = math.nan  # distortion of the best decoder that ignores the code

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q2_<name>``)."""
        out = {f"{when}_{key}": getattr(self, when)[key]
               for when in ("start", "end") for key in ("recon", "kl", "total")}
        free = max(0.0, self.start["recon"] - self.zero_rate)  # the part a code-free decoder reaches
        return out | {"window": self.window, "logged": len(self.steps),
                      "first_step": self.steps[0], "last_step": self.steps[-1],
                      "kl_rise": self.end["kl"] - self.start["kl"],
                      "recon_drop": self.start["recon"] - self.end["recon"],
                      "total_drop": self.start["total"] - self.end["total"],
                      "zero_rate": self.zero_rate, "code_free_fall": free,
                      "code_fall": self.start["recon"] - self.end["recon"] - free,
                      "code_gain": self.zero_rate - self.end["recon"],
                      "gain_per_nat": (self.zero_rate - self.end["recon"]) / self.end["kl"]
                      } | self.shown(out)

    def shown(self, out: dict[str, float]) -> dict[str, float]:
        """The table's totals and every difference the chapter states, computed
        from the entries as the page shows them (each rounded to
        :data:`SHOWN_DIGITS`), so that the arithmetic a reader does on the
        page adds up. The total is the sum of the two terms (KL weight 1), so
        it is shown as the sum of the two rounded terms. Keys ``shown_*``."""
        r = {k: round(v, SHOWN_DIGITS) for k, v in out.items()}
        r["zero_rate"] = round(self.zero_rate, SHOWN_DIGITS)
        for when in ("start", "end"):
            r[f"{when}_total"] = r[f"{when}_recon"] + r[f"{when}_kl"]
        free = max(0.0, r["start_recon"] - r["zero_rate"])
        recon_drop = r["start_recon"] - r["end_recon"]
        diff = {"start_total": r["start_total"], "end_total": r["end_total"],
                "kl_rise": r["end_kl"] - r["start_kl"], "recon_drop": recon_drop,
                "total_drop": r["start_total"] - r["end_total"],
                "code_free_fall": free, "code_fall": recon_drop - free,
                "code_gain": r["zero_rate"] - r["end_recon"]}
        return {f"shown_{k}": round(v, SHOWN_DIGITS) for k, v in diff.items()}


SHOWN_DIGITS = 1  # decimals of Q2's table and text (nats per digit)


def zero_rate_distortion(images: torch.Tensor) -> float:
    """The Bernoulli reconstruction term (nats per image) of the best decoder
    that ignores the code: it outputs one image for every input, and the
    cross-entropy is lowest when that image is the data's mean (each pixel's
    term is linear in the data). What a code of 0 nats buys."""
    x = images.double().div(255.0) if images.dtype == torch.uint8 else images.double()
    logits = torch.logit(x.mean(dim=0, keepdim=True), eps=1e-6).expand_as(x)
    return float(losses.bernoulli_nll(logits, x).mean())


def kl_during_training(name: str = "vae-mnist") -> KLTrajectory:
    """Q2: reconstruction, KL and their sum over the ~100 logged batches
    (``metrics["steps"]``) of ``name``, with averages over the first and the
    last tenth of them, and the distortion a code of 0 nats allows on its
    training images (:func:`zero_rate_distortion`)."""
    run = get_or_train(name)
    if (run.config.likelihood != "bernoulli" or run.config.kl_weight != 1
            or run.config.kl_warmup or run.config.free_bits):
        raise ValueError(f"{name}: Q2 reads a Bernoulli VAE with KL weight 1 and neither "
                         "warm-up nor free bits (its loss is the negative ELBO)")
    log = run.metrics["steps"]
    train, _ = load_data(run.config)
    window = max(1, len(log) // 10)
    terms = {"recon": [s["recon"] for s in log], "kl": [s["kl"] for s in log],
             "total": [s["loss"] for s in log]}  # recon + kl_weight * KL
    low = int(np.argmin(terms["kl"]))
    return KLTrajectory(
        name, [s["step"] for s in log], terms["recon"], terms["kl"], terms["total"],
        run.config.steps_per_epoch(len(train)), window,
        start={k: float(np.mean(v[:window])) for k, v in terms.items()},
        end={k: float(np.mean(v[-window:])) for k, v in terms.items()},
        kl_low=terms["kl"][low], kl_low_step=log[low]["step"],
        zero_rate=zero_rate_distortion(train.images))


# ===================================================== Q3: the sign of the KL
@dataclass
class KLSignCheck:
    """Q3: the KL of a trained encoder's outputs on the test digits, by the
    package's function and by the textbook one-liner."""

    name: str
    per_image: np.ndarray        # KL(q(z|x) || N(0, I)) per test image, float64
    per_unit: np.ndarray         # the per-coordinate terms, float64, flattened
    max_difference: float        # |gaussian_kl - textbook|, float32 as trained
    max_relative: float          # the same, over the size of the terms (see kl_sign_check)
    min_per_image: float
    min_per_unit: float          # float64
    min_per_unit_float32: float  # the same terms in float32, as in training
    nonpositive_units: int       # coordinates whose KL (float64) is <= 0
    latent_dim: int
    terms: dict[str, str]        # textbook term -> the matching piece of eq-vae-gaussian-kl
    near_prior: dict[str, float]  # float32_kl_near_prior()
    collapsed: dict[str, float] = field(default_factory=dict)  # collapsed_kl_signs()

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q3_<name>``)."""
        near = {f"near_{k}": v for k, v in self.near_prior.items()}
        near |= {f"col_{k}": v for k, v in self.collapsed.items()}
        return near | {"n": len(self.per_image), "latent": self.latent_dim,
                "diff": self.max_difference, "diff_ulps": self.max_relative / FLOAT32_EPS,
                "agreement_ulps": KL_AGREEMENT / FLOAT32_EPS, "min_image": self.min_per_image,
                "min_unit": self.min_per_unit, "min_unit32": self.min_per_unit_float32,
                "nonpositive": self.nonpositive_units, "n_units": len(self.per_unit),
                "mean_image": float(self.per_image.mean())}


def float32_kl_near_prior(span: float = 1e-3, points: int = 2001) -> dict[str, float]:
    """The package's KL of one coordinate at mu = 0 and ``points`` log-variances
    spread evenly over [-span, span], in float32 (as training computes it)
    and in float64. Near q = N(0, 1) its terms nearly cancel (the exact value
    is about logvar^2 / 4), so float32 rounding leaves some of them a hair
    below zero. Returns the span, the points, the lowest float32 value and
    how many float32 and float64 values are negative."""
    logvar = torch.linspace(-span, span, points, dtype=torch.float64).unsqueeze(-1)
    kl64 = losses.gaussian_kl(torch.zeros_like(logvar), logvar)
    kl32 = losses.gaussian_kl(torch.zeros_like(logvar).float(), logvar.float())
    return {"span": span, "points": points, "min32": float(kl32.min()),
            "negative32": int((kl32 < 0).sum()), "negative64": int((kl64 < 0).sum())}


def collapsed_kl_signs(name: str) -> dict[str, float]:
    """Q3: the per-coordinate KL of the encoder of ``name`` (a collapsed VAE,
    whose posteriors sit near the prior) on every test digit, in float32 as
    training computes it and in float64: the code length, how many
    coordinate terms there are, how many float32 puts at exactly 0 and how
    many below 0, how many float64 puts at or below 0, the smallest and the
    median float64 term, and the mean KL per digit."""
    run = get_or_train(name)
    _, test = load_data(run.config)
    mu, logvar = inference.encode(run.model, test.floats())
    per_unit32 = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1))
    mu64, lv64 = mu.double(), logvar.double()
    per_unit64 = losses.gaussian_kl(mu64.unsqueeze(-1), lv64.unsqueeze(-1))
    return {"n_units": per_unit64.numel(), "latent": mu.shape[-1],
            "zero32": int((per_unit32 == 0).sum()), "negative32": int((per_unit32 < 0).sum()),
            "nonpositive64": int((per_unit64 <= 0).sum()), "min64": float(per_unit64.min()),
            "median64": float(per_unit64.median()),
            "mean_image": float(losses.gaussian_kl(mu64, lv64).mean())}


def kl_sign_check(name: str = "vae-mnist",
                  collapsed: str = ablation_name("vae", Q_COLLAPSE["latent_dim"],
                                                 Q_COLLAPSE["kl_weight"])) -> KLSignCheck:
    """Q3: the KL of ``name``'s encoder on every test digit, and the signs of
    the per-coordinate KL of the collapsed VAE ``collapsed`` of Q8.
    Raises DerivationError if the one-liner and ``gaussian_kl`` (the same
    expression) differ by more than float32 rounding."""
    run = get_or_train(name)
    _, test = load_data(run.config)
    mu, logvar = inference.encode(run.model, test.floats())
    package, textbook = losses.gaussian_kl(mu, logvar), textbook_kl(mu, logvar)
    # the size of the terms each digit's sum adds up (what float32 rounds)
    scale = 0.5 * (1 + logvar.abs() + mu.pow(2) + logvar.exp()).sum(dim=-1)
    relative = (package - textbook).abs() / scale
    if bool((relative > KL_AGREEMENT).any()):
        raise DerivationError("the one-liner and gaussian_kl differ by more than float32 "
                              "rounding on the test digits (eq-vae-gaussian-kl)")
    mu64, lv64 = mu.double(), logvar.double()
    per_unit = losses.gaussian_kl(mu64.unsqueeze(-1), lv64.unsqueeze(-1))
    per_unit32 = losses.gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1))
    per_image = losses.gaussian_kl(mu64, lv64)
    return KLSignCheck(
        name, per_image.numpy(), per_unit.flatten().numpy(),
        float((package - textbook).abs().max()), float(relative.max()), float(per_image.min()),
        float(per_unit.min()), float(per_unit32.min()), int((per_unit <= 0).sum()),
        run.config.latent_dim,
        kl_term_mapping(), float32_kl_near_prior(), collapsed_kl_signs(collapsed))


# ============================================ Q4: perplexity and batch size
@dataclass
class PerplexityByBatch:
    """Q4: codebook perplexity of one VQ-VAE on batches of test images."""

    name: str
    num_codes: int                  # K
    positions: int                  # code vectors per image (h * w)
    batch_sizes: list[int]          # images per batch
    mean: list[float]               # mean perplexity over the batches of that size
    spread: list[float]             # its standard deviation
    cap: list[int]                  # min(K, vectors in a batch)
    used_per_batch: list[float]     # codes used on a batch, mean
    whole_set: float                # perplexity over the whole test set
    used_whole_set: int             # codes used on the whole test set
    test_images: int
    train_batch: int                # images per training batch of the model
    covered: int                    # images every batch size is measured on

    def numbers(self, small: int = 16) -> dict[str, float]:
        """The scalars the chapter glues (``q4_<name>``); ``small`` is the
        small batch size the text quotes."""
        at = dict(zip(self.batch_sizes, self.mean))
        used = dict(zip(self.batch_sizes, self.used_per_batch))
        return {"K": self.num_codes, "n": self.positions,
                "cap1": min(self.num_codes, self.positions), "test_n": self.test_images,
                "whole": self.whole_set, "used_whole": self.used_whole_set,
                "covered": self.covered,
                "ppl_1": self.mean[0], "largest_b": self.batch_sizes[-1],
                "smallest_b": self.batch_sizes[0], "small_b": small,
                "ppl_small": at[small], "used_small": used[small],
                "used_train": used[self.train_batch],
                "train_b": self.train_batch, "ppl_train": at[self.train_batch],
                "ppl_largest": self.mean[-1],
                # codes a count on one batch (mean) or on the whole set calls dead
                "dead_small": self.num_codes - used[small],
                "dead_train": self.num_codes - used[self.train_batch],
                "dead_whole": self.num_codes - self.used_whole_set}


def perplexity_by_batch_size(name: str = "vqvae",
                             batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
                             ) -> PerplexityByBatch:
    """Q4: put the test set's code grids in a fixed random order, keep the
    first images of it that whole batches of the largest size cover, cut
    those same images into batches of each size and average the perplexity
    (eq-vq-perplexity) of each batch's codes. Each size must divide the next,
    so that a batch of one size is made of whole batches of every smaller
    size: then concavity orders the sizes' mean entropies exactly."""
    if any(b % a for a, b in zip(batch_sizes, batch_sizes[1:])):
        raise ValueError(f"each batch size must divide the next, got {batch_sizes}")
    run = get_or_train(name)
    _, test = load_data(run.config)
    k = run.config.num_codes

    def perplexities():  # once per model, test set and list of sizes
        codes = inference.code_grids(run.model, test.images)
        # a fixed random order: a batch is B random test images, not a run of
        # neighbours (a split stored in class order would make each run one class)
        codes = codes[torch.randperm(len(codes), generator=torch.Generator().manual_seed(0))]
        sizes = [b for b in batch_sizes if b <= len(codes)]
        # the same images for every size: those whole batches of the largest cover
        covered = len(codes) // sizes[-1] * sizes[-1]
        mean, spread, used = [], [], []
        for b in sizes:
            batches = codes[:covered].split(b)
            ppl = torch.tensor([float(metrics.codebook_perplexity(c, k)) for c in batches])
            mean.append(float(ppl.mean()))
            spread.append(float(ppl.std()) if len(ppl) > 1 else 0.0)
            used.append(float(np.mean([k - int(metrics.dead_codes(c, k)) for c in batches])))
        whole = metrics.codebook_usage(codes, k)
        return {"positions": codes[0].numel(), "sizes": sizes, "mean": mean, "spread": spread,
                "used": used, "whole": whole["perplexity"], "dead": whole["dead_codes"],
                "n": len(codes), "covered": covered}
    r = cache.cached_evaluation(run, "perplexity-by-batch-" + "-".join(map(str, batch_sizes)),
                                perplexities, inputs=[test.images])
    return PerplexityByBatch(name, k, r["positions"], r["sizes"], r["mean"], r["spread"],
                             [min(k, b * r["positions"]) for b in r["sizes"]], r["used"],
                             r["whole"], k - r["dead"], r["n"], run.config.batch_size,
                             r["covered"])


# ==================================================== Q5: using every code
@dataclass
class CodebookFix:
    """Q5: one VQ-VAE of the comparison."""

    name: str
    codes_used_by_epoch: list[int]    # on the epoch_eval test images, after each epoch
    test_mse_by_epoch: list[float]    # the same images
    probe_images: int                 # how many test images those are
    codes_used: int                   # on the whole test set, after training
    perplexity: float                 # on the whole test set
    test_mse: float                   # on the whole test set
    restarts: int
    steps: list[dict]                 # the logged training batches
    train_seconds: float
    trained: bool


FIX_LABELS = {"plain": "no fix", "restart": "restarts", "ema": "EMA update",
              "kmeans": "k-means start"}  # keys of Q_CODEBOOK_FIXES


@dataclass
class CodebookFixes:
    num_codes: int
    epochs: int
    train_images: int
    fixes: dict[str, CodebookFix]     # short name (Q_CODEBOOK_FIXES) -> result
    run_steps: int = 0                # optimiser steps of each run
    test_images: int = 0              # the whole test set (codes_used, perplexity, test_mse)
    ema_hold_steps: float = math.nan  # EMA: steps an unchosen code of count 1 keeps its
                                      # vector to within EMA_HOLD_SHRINK of its length
    ema_half_steps: float = math.nan  # EMA: steps until that vector is half its length
    patience: int = 0                 # restarts: idle training steps before a code is moved
    labels: dict[str, str] = field(default_factory=lambda: dict(FIX_LABELS))

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q5_<name>``): ``<fix>_used`` etc.
        per fix, named by its short name (``plain``, ``restart``, ...)."""
        out = {"K": self.num_codes, "epochs": self.epochs, "train_n": self.train_images,
               "probe": next(iter(self.fixes.values())).probe_images,
               "test_n": self.test_images, "in_use_share": CodebookStudy.IN_USE,
               "run_steps": self.run_steps, "ema_hold": self.ema_hold_steps,
               "ema_hold_shrink": EMA_HOLD_SHRINK, "ema_half": self.ema_half_steps,
               "patience": self.patience}
        epoch_steps = self.run_steps // max(1, self.epochs)  # optimiser steps per epoch
        for key, fix in self.fixes.items():
            # the first logged training batch: its step and the codes it leaves unused
            out |= {f"{key}_first_step": fix.steps[0]["step"],
                    f"{key}_first_unused": fix.steps[0]["dead_codes"]}
            # the logged batch of the first epoch that leaves the most codes unused
            # (the earliest such batch; the first logged one if none is in that epoch)
            first_epoch = [s for s in fix.steps if s["step"] <= epoch_steps] or fix.steps[:1]
            peak = max(first_epoch, key=lambda s: s["dead_codes"])
            out |= {f"{key}_peak_unused": peak["dead_codes"], f"{key}_peak_step": peak["step"]}
            # used1 and used_last: on the probe images after the first and the
            # last epoch; used: on the whole test set after training
            out |= {f"{key}_used": fix.codes_used, f"{key}_used1": fix.codes_used_by_epoch[0],
                    f"{key}_used_last": fix.codes_used_by_epoch[-1],
                    f"{key}_ppl": fix.perplexity, f"{key}_mse": fix.test_mse,
                    f"{key}_mse1": fix.test_mse_by_epoch[0], f"{key}_restarts": fix.restarts}
        return out


def codebook_fixes(runs: dict[str, str] = Q_CODEBOOK_FIXES) -> CodebookFixes:
    """Q5: the four VQ-VAEs (no fix, restarts, EMA, k-means start) trained
    with one budget, each measured after every epoch and at the end; ``runs``
    maps a short name to its experiment."""
    out = {}
    for key, name in runs.items():
        run = get_or_train(name)
        train, test = load_data(run.config)
        s = usage_on_test_set(run, test)  # the VQ-VAE chapter's evaluation: computed once
        history = run.metrics["history"]
        out[key] = CodebookFix(
            name, [h["test_codes_used"] for h in history], [h["test_mse"] for h in history],
            min(run.config.epoch_eval, len(test)), run.config.num_codes - s["dead"], s["ppl"],
            s["mse"],
            int(run.model.quantizer.restarts_total),
            # an epoch's short last batch leaves more codes unused whatever the
            # codebook (the VQ-VAE chapter leaves it out too)
            full_batch_steps(run.metrics["steps"], len(train), run.config.batch_size),
            run.metrics["train_seconds"], run.trained)
    ema_quantizer = get_or_train(runs["ema"]).model.quantizer
    return CodebookFixes(run.config.num_codes, run.config.epochs, len(train), out,
                         run_steps=run.config.steps(len(train)), test_images=len(test),
                         ema_hold_steps=ema_hold_steps(ema_quantizer),
                         ema_half_steps=ema_hold_steps(ema_quantizer, shrink=0.5),
                         patience=int(get_or_train(runs["restart"]).model.quantizer.patience))


def codebook_in_use(n) -> list[str]:
    """The runs of Q5 (short names, in :data:`FIX_LABELS` order) that end with
    nearly the whole codebook in use: at least ``CodebookStudy.IN_USE`` of
    the K codes on the whole test set. ``n``: :meth:`CodebookFixes.numbers`.
    The chapter's verdict names these runs (all of them, some, or none and
    then :func:`most_codes_in_use`)."""
    need = CodebookStudy.IN_USE * n["K"]
    return [key for key in FIX_LABELS if n[f"{key}_used"] >= need]


def most_codes_in_use(n) -> str:
    """The Q5 run with the most codes in use on the whole test set at the end."""
    return max(FIX_LABELS, key=lambda key: n[f"{key}_used"])


IN_USE_MARGIN = 0.05  # share of K: how far below the IN_USE line a run must end to count as clearly out


def codebook_verdict_clear(n) -> bool:
    """Whether the numbers support the verdict :func:`codebook_in_use` picks:
    every run ends either in use (at least IN_USE of K) or clearly out (below
    IN_USE - IN_USE_MARGIN of K), so no run sits at the line where "nearly
    the whole codebook" is a matter of taste; and when no run is in use, one
    run has strictly the most codes."""
    need, k = CodebookStudy.IN_USE * n["K"], n["K"]
    used = [n[f"{key}_used"] for key in FIX_LABELS]
    if not all(u >= need or u < need - IN_USE_MARGIN * k for u in used):
        return False
    top = sorted(used, reverse=True)
    return bool(codebook_in_use(n)) or top[0] > top[1]


EMA_HOLD_SHRINK = 0.01  # a code's vector "holds" until it has lost this share of its length


def ema_hold_steps(quantizer, count: float = 1.0, shrink: float = EMA_HOLD_SHRINK) -> float:
    """Under the moving-average update, the steps for which a code no output
    chooses keeps its vector to within ``shrink`` of its length, from a
    smoothed count ``count``. Its count and its sum both shrink by the decay
    g each step, so after t steps the vector is its old one divided by
    1 + eps / (g^t * count) (eps: the smoothing constant): it holds while the
    count stays large against eps and has lost the share ``shrink`` when
    eps / (g^t * count) = shrink / (1 - shrink), i.e. after
    log(eps (1 - shrink) / (shrink * count)) / log(g) steps (``shrink = 0.5``:
    log(eps / count) / log(g), where it is half its length)."""
    if not 0 < shrink < 1:
        raise ValueError(f"shrink must be a share between 0 and 1, got {shrink!r}")
    return (math.log(quantizer.eps * (1 - shrink) / (shrink * count))
            / math.log(quantizer.decay))


# ====================================== Q6: sampling, temperature, argmax
@dataclass
class PriorDecoding:
    """Q6: code grids drawn from the PixelCNN prior at several temperatures
    (0 = greedy argmax)."""

    temperatures: list[float]
    grids: int                              # grids drawn per temperature
    distinct_codes: list[float]             # distinct codes per grid, mean
    distinct_grids: list[int]               # different grids among those drawn
    top_share: list[float]                  # share of a grid's positions held by its commonest code
    bits_per_code: list[float]              # the prior's -log2 p of its own grids, per code
    test_distinct_codes: float              # distinct codes per grid of the whole test set
    test_bits_per_code: float               # the prior's -log2 p of those test grids, per code
    positions: int
    num_codes: int
    images: dict[float, torch.Tensor]       # decoded grids, the first DIGITS of each
    # standard errors of the means above (s.d. over the grids / sqrt(grids))
    distinct_codes_se: list[float] = field(default_factory=list)
    bits_per_code_se: list[float] = field(default_factory=list)
    test_distinct_codes_se: float = math.nan
    test_bits_per_code_se: float = math.nan
    test_images: int = 0                    # the test grids measured (the whole test set)

    def at(self, temperature: float) -> int:
        """The index of ``temperature`` in the per-temperature lists."""
        return self.temperatures.index(temperature)

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q6_<name>``), per temperature
        under ``argmax`` (T = 0) or ``t05``, ``t08``, ``t1``."""
        closest = min(range(len(self.temperatures)),
                      key=lambda i: abs(self.distinct_codes[i] - self.test_distinct_codes))
        out = {"n": self.grids, "test_codes": self.test_distinct_codes,
               "test_bits": self.test_bits_per_code, "positions": self.positions,
               "test_codes_se": self.test_distinct_codes_se,
               "test_bits_se": self.test_bits_per_code_se, "test_n": self.test_images,
               "clear_se": CLEAR_SE, "closest_T": self.temperatures[closest]}
        for i, t in enumerate(self.temperatures):
            key = temperature_key(t)
            out |= {f"{key}_T": t, f"{key}_codes": self.distinct_codes[i],
                    f"{key}_grids": self.distinct_grids[i], f"{key}_top": self.top_share[i],
                    f"{key}_bits": self.bits_per_code[i],
                    f"{key}_codes_se": self.distinct_codes_se[i],
                    f"{key}_bits_se": self.bits_per_code_se[i]}
        return out


CLEAR_SE = 2  # Q6: a gap between two means counts as clear beyond this many standard errors


def clear_side(a: float, se_a: float, b: float, se_b: float) -> int:
    """-1 if the mean ``a`` lies clearly below ``b``, 1 if clearly above, 0 if
    not clearly either: clear means by more than :data:`CLEAR_SE` standard
    errors of the difference, sqrt(se_a^2 + se_b^2). For Q6's comparison of
    a few sampled grids with the real ones, whose gap a small sample can
    make or unmake."""
    gap, se = a - b, math.hypot(se_a, se_b)
    if abs(gap) <= CLEAR_SE * se:
        return 0
    return -1 if gap < 0 else 1


def standard_error(values) -> float:
    """The standard error of the mean of ``values`` (0 for fewer than two)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def temperature_key(t: float) -> str:
    """The glue key of a temperature: ``argmax`` (T = 0), ``t05``, ``t08``, ``t1``."""
    return "argmax" if t == 0 else "t" + f"{t:g}".replace(".", "")


TEMPERATURES = (0, 0.5, 0.8, 1)
TEMPERATURE_KEYS = tuple(temperature_key(t) for t in TEMPERATURES)


def prior_decoding(vq: str = "vqvae", prior: str = "pixelcnn",
                   temperatures=TEMPERATURES, n: int = 20,
                   seed: int = 0) -> PriorDecoding:
    """Q6: ``n`` grids per temperature, their diversity, and the images."""
    vq_run, prior_run = get_or_train(vq), get_or_train(prior)
    model, pixelcnn = vq_run.model, prior_run.model
    _, test = load_data(vq_run.config)
    h, w = model.grid
    k = vq_run.config.num_codes

    def distinct(grids):
        return [len(torch.unique(g)) for g in grids]

    out = dict(distinct_codes=[], distinct_grids=[], top_share=[], bits_per_code=[],
               distinct_codes_se=[], bits_per_code_se=[])
    images = {}
    for t in temperatures:
        gen = torch.Generator(device=next(pixelcnn.parameters()).device).manual_seed(seed)
        with torch.inference_mode():
            grids = pixelcnn.eval().sample(n, generator=gen, temperature=t)
            bits = (pixelcnn.nll(grids) / (h * w) / math.log(2)).cpu().numpy()
            images[t] = model.decode_codes(grids[:DIGITS]).cpu()
        out["distinct_codes"].append(float(np.mean(distinct(grids))))
        out["distinct_codes_se"].append(standard_error(distinct(grids)))
        out["distinct_grids"].append(len(torch.unique(grids.flatten(1), dim=0)))
        top = [int(torch.bincount(g.flatten(), minlength=k).max()) / (h * w) for g in grids]
        out["top_share"].append(float(np.mean(top)))
        out["bits_per_code"].append(float(bits.mean()))
        out["bits_per_code_se"].append(standard_error(bits))

    def real_grids():  # the whole test set, once per model pair (called right away)
        codes = inference.code_grids(model, test.images)
        with torch.inference_mode():
            pixelcnn.eval()
            device = next(pixelcnn.parameters()).device
            nats = torch.cat([pixelcnn.nll(c.to(device)).cpu() for c in codes.split(1000)])
        bits = (nats.double() / (h * w) / math.log(2)).numpy()
        return {"codes": float(np.mean(distinct(codes))), "codes_se": standard_error(distinct(codes)),
                "bits": float(bits.mean()), "bits_se": standard_error(bits), "n": len(codes)}
    real = cache.cached_evaluation(prior_run, "real-grids", real_grids, also=[vq_run],
                                   inputs=[test.images])
    return PriorDecoding(list(temperatures), n,
                         test_distinct_codes=float(real["codes"]),
                         test_bits_per_code=float(real["bits"]),
                         positions=h * w, num_codes=k, images=images,
                         test_distinct_codes_se=float(real["codes_se"]),
                         test_bits_per_code_se=float(real["bits_se"]), test_images=int(real["n"]),
                         **out)


# ================================= Q7: bigger codebook or finer grid?
@dataclass
class GridPoint:
    """Q7: one VQ-VAE of the trade and its PixelCNN prior."""

    name: str
    grid: tuple[int, int]
    num_codes: int
    nominal_bits: float          # positions * log2 K
    test_mse: float
    psnr: float
    codes_used: int
    prior_bits_per_code: float   # the PixelCNN's test -log2 p per code
    prior_bits_per_image: float  # ... times the positions
    parameters: int
    prior_parameters: int
    train_seconds: float         # the VQ-VAE and its prior
    reconstructions: torch.Tensor
    edge_kept: float             # % of the test images' edge energy the reconstructions have
    edge_correlation: float      # test images: mean correlation of gradient images (edge_agreement)


def gradient_images(images: torch.Tensor) -> torch.Tensor:
    """Each image's differences between horizontally and vertically adjacent
    pixels (every channel), one row per image (float64): the terms that
    ``metrics.edge_energy`` squares, kept with their places and signs."""
    x = images.double()
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return torch.cat([dx.flatten(1), dy.flatten(1)], dim=1)


def edge_agreement(originals: torch.Tensor, reconstructions: torch.Tensor,
                   batch_size: int = 1000) -> torch.Tensor:
    """Q7: per image, the correlation between the original's gradient image
    and its reconstruction's (:func:`gradient_images`; floats in [-1, 1],
    negative when the reconstruction's gradients oppose the original's): how
    well the two gradient images agree, place by place. It is 1 when the
    reconstruction's gradients are a positive multiple of the original's
    (a uniform change of contrast does not lower it), about 0 when they are
    unrelated (and 0 for an image with no gradient at all). It does not
    separate placement from sharpness: blur spreads a step over several
    pixels and lowers it even where the edges have not moved, as misplaced
    edges do."""
    out = []
    for x, y in zip(originals.split(batch_size), reconstructions.split(batch_size)):
        a, b = gradient_images(x), gradient_images(y)
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        norms = a.norm(dim=1) * b.norm(dim=1)
        out.append((a * b).sum(1) / norms.clamp_min(torch.finfo(norms.dtype).tiny))
    return torch.cat(out)


@dataclass
class GridTrade:
    points: dict[str, GridPoint]
    originals: torch.Tensor
    train_images: int
    epochs: int
    prior_epochs: int

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q7_<name>``), per model under
        ``g<side>`` (``g8``, ``g16``)."""
        out = {"train_n": self.train_images, "epochs": self.epochs,
               "prior_epochs": self.prior_epochs, "shown": len(self.originals)}
        for p in self.points.values():
            key = f"g{p.grid[0]}"
            out |= {f"{key}_side": p.grid[0], f"{key}_positions": p.grid[0] * p.grid[1],
                    f"{key}_K": p.num_codes, f"{key}_bits": p.nominal_bits,
                    f"{key}_mse": p.test_mse, f"{key}_psnr": p.psnr,
                    f"{key}_used": p.codes_used, f"{key}_bpc": p.prior_bits_per_code,
                    f"{key}_bpi": p.prior_bits_per_image, f"{key}_params": p.parameters,
                    f"{key}_prior_params": p.prior_parameters,
                    # the prior's bits per image as a share of the grid's capacity
                    f"{key}_share": p.prior_bits_per_image / p.nominal_bits,
                    # on the test set (MSE alone says neither): the reconstructions'
                    # edge energy as a % of the originals', and how well their
                    # gradients agree with the originals' (edge_agreement)
                    f"{key}_edge": p.edge_kept, f"{key}_edge_corr": p.edge_correlation}
        return out


def grid_or_codebook(names=tuple(Q_GRIDS)) -> GridTrade:
    """Q7: each VQ-VAE's test error and codebook use, and its prior's bits."""
    points = {}
    for name in names:
        vq_run = get_or_train(name)
        prior_run = get_or_train(name.replace("q-vq", "q-pixelcnn"))
        train, test = load_data(vq_run.config)
        x = test.floats()
        h, w = vq_run.model.grid
        k = vq_run.config.num_codes

        def point_numbers():  # once per model pair and test set (called right away)
            codes = inference.code_grids(vq_run.model, test.images)
            with torch.inference_mode():
                prior_run.model.eval()
                device = next(prior_run.model.parameters()).device
                nats = torch.cat([prior_run.model.nll(c.to(device)).cpu()
                                  for c in codes.split(1000)])
            return {"mse": metrics.reconstruction_mse(vq_run.model, x), "nats": float(nats.mean()),
                    "used": k - int(metrics.dead_codes(codes, k))}
        s = cache.cached_evaluation(prior_run, "grid-point", point_numbers, also=[vq_run],
                                    inputs=[test.images])
        mse, nats = s["mse"], s["nats"]

        def edge_numbers():  # once per model and test set (called right away)
            rebuilt = inference.reconstruct(vq_run.model, x)
            return {"kept": 100 * metrics.edge_energy(rebuilt) / metrics.edge_energy(x),
                    "corr": float(edge_agreement(x, rebuilt).mean())}
        e = cache.cached_evaluation(vq_run, "grid-edges", edge_numbers, inputs=[test.images])
        shown = one_per_class(test.labels)
        points[name] = GridPoint(
            name, (h, w), k, h * w * math.log2(k), mse, float(metrics.psnr(mse)), s["used"],
            nats / (h * w) / math.log(2), nats / math.log(2),
            vq_run.metrics["parameters"], prior_run.metrics["parameters"],
            vq_run.metrics["train_seconds"] + prior_run.metrics["train_seconds"],
            inference.reconstruct(vq_run.model, x[shown]), e["kept"], e["corr"])
    return GridTrade(points, x[shown], len(train), vq_run.config.epochs, prior_run.config.epochs)


# ============================================== Q8: keeping a VAE alive
@dataclass
class CollapseFixes:
    """Q8: the collapsed beta = 0.01 ablation VAEs, and the 16-number one
    retrained with KL warm-up and with free bits."""

    kl_weight: float
    column_active: dict[int, int]        # latent size -> active units, the ablation column
    column_kl: dict[int, float]          # latent size -> test KL (nats)
    column_mse: dict[int, float]         # latent size -> test MSE per pixel (posterior mean)
    column_mse_sampled: dict[int, float]  # latent size -> test MSE per pixel (one sampled code)
    models: dict[str, VAESummary]        # "collapsed", "warm-up", "free bits"
    mean_image_mse: float                # predicting the mean training digit (test digits)
    free_bits: float                     # nats per unit
    warmup_steps: int
    total_steps: int
    steps: dict[str, list[dict]]         # logged training batches of each
    epoch_kl: dict[str, list[float]]     # training KL, averaged over each epoch
    kl_warmup_end: float                 # warm-up run: mean logged KL over the last
                                         # tenth of the warm-up's steps
    steps_per_epoch: int
    originals: torch.Tensor
    reconstructions: dict[str, torch.Tensor]
    linear: metrics.LinearOptimum        # the best linear-Gaussian VAE at this c (training digits)
    light: VAESummary                    # the same code length at the grid's smallest weight

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``q8_<name>``)."""
        m, warm_kl = self.models, self.epoch_kl["warm-up"]
        out = {"beta": self.kl_weight, "c": m["collapsed"].decoder_variance,
               "sd": m["collapsed"].decoder_sd, "latent": m["collapsed"].latent_dim,
               "column_max_active": max(self.column_active.values()),
               "column_max_kl": max(self.column_kl.values()),
               "mean_mse": self.mean_image_mse, "free_bits": self.free_bits,
               "warmup": self.warmup_steps, "total_steps": self.total_steps,
               "warm_kl_first": warm_kl[0], "warm_kl_last": warm_kl[-1],
               "warm_kl_end": self.kl_warmup_end,
               "free_floor": self.free_bits * m["free bits"].latent_dim,
               "eig1": self.linear.eigenvalues[0], "eig2": self.linear.eigenvalues[1],
               "linear_active": self.linear.active, "linear_rate": self.linear.rate,
               "linear_mse": self.linear.mse, "linear_mean_mse": self.linear.mean_image_mse,
               "linear_mse_sampled": self.linear.sampled_mse,
               "column_min_mse": min(self.column_mse.values()),
               "column_max_mse": max(self.column_mse.values()),
               "column_min_mse_sampled": min(self.column_mse_sampled.values()),
               "column_max_mse_sampled": max(self.column_mse_sampled.values()),
               "near_mean": NEAR_MEAN_IMAGE,
               # gains over the mean training digit's error, in %: the linear optimum's on
               # the training digits, the column's best on the test digits (one sampled code)
               "linear_gain_pct": 100 * (1 - self.linear.sampled_mse
                                         / self.linear.mean_image_mse),
               "column_gain_pct": 100 * (1 - min(self.column_mse_sampled.values())
                                         / self.mean_image_mse),
               "light_beta": self.light.kl_weight, "light_active": self.light.active_units,
               "light_kl": self.light.test_kl}
        for label, key in (("collapsed", "none"), ("warm-up", "warm"), ("free bits", "free")):
            out |= {f"{key}_active": m[label].active_units, f"{key}_kl": m[label].test_kl,
                    f"{key}_mse": m[label].test_mse, f"{key}_mse_sampled": m[label].sampled_mse,
                    # objective eq-abl-objective on the test digits (one sampled code)
                    f"{key}_objective": m[label].sampled_mse + self.kl_weight * m[label].test_kl}
        # per-pixel MSE / beta is nats (c = beta D / 2): the reconstruction the
        # free-bits code saves against the collapsed model, and the most any code can
        out["free_saving"] = (out["none_mse_sampled"] - out["free_mse_sampled"]) / self.kl_weight
        out["none_worth"] = out["none_mse_sampled"] / self.kl_weight
        out["free_mse_ratio"] = out["free_mse"] / out["none_mse"]
        out["free_mse_sampled_ratio"] = out["free_mse_sampled"] / out["none_mse_sampled"]
        return out


def collapse_fixes(latents=ABLATION_LATENTS, kl_weight: float = Q_COLLAPSE["kl_weight"],
                   warmup: str = "q-vae-kl0.01-warmup",
                   free_bits: str = "q-vae-kl0.01-freebits") -> CollapseFixes:
    """Q8: active units of the ablation column at ``kl_weight`` and of the
    two fixes, against the collapsed model with the same code length; the
    best linear-Gaussian VAE at that weight; and the same code length at the
    grid's smallest weight."""
    fixes = {"warm-up": get_or_train(warmup), "free bits": get_or_train(free_bits)}
    d = fixes["warm-up"].config.latent_dim
    column = {z: get_or_train(ablation_name("vae", z, kl_weight)) for z in latents}
    train, test = load_data(column[d].config)
    x = test.floats()
    runs = {"collapsed": column[d], **fixes}
    summaries = {label: summarize_vae(run, x) for label, run in runs.items()}
    col = {z: summarize_vae(run, x) for z, run in column.items()}
    shown = x[one_per_class(test.labels)]
    warm = fixes["warm-up"].config
    warmup = warm.kl_warmup_steps(len(train))
    late = [s["kl"] for s in fixes["warm-up"].metrics["steps"]
            if 0.9 * warmup <= s["step"] <= warmup] or [math.nan]
    return CollapseFixes(
        kl_weight, {z: s.active_units for z, s in col.items()},
        {z: s.test_kl for z, s in col.items()}, {z: s.test_mse for z, s in col.items()},
        {z: s.sampled_mse for z, s in col.items()},
        summaries,
        float((x - train.floats().mean(dim=0)).pow(2).mean()),
        fixes["free bits"].config.free_bits, warmup, warm.steps(len(train)),
        {label: run.metrics["steps"] for label, run in runs.items()},
        {label: [h["kl"] for h in run.metrics["history"]] for label, run in runs.items()},
        float(np.mean(late)), warm.steps_per_epoch(len(train)),
        shown, {label: inference.reconstruct(run.model, shown) for label, run in runs.items()},
        metrics.linear_vae_optimum(train.images, summaries["collapsed"].decoder_variance),
        summarize_vae(get_or_train(ablation_name("vae", d, min(ABLATION_KL_WEIGHTS))), x))


NEAR_MEAN_IMAGE = 0.02  # Q8: "at the mean image's error" means within this share of it


# ==================================================== training time spent
def new_training_seconds(chapter: str = "questions") -> dict[str, float]:
    """The training seconds of every experiment registered for ``chapter``
    (read from the cache; trains nothing that is not trained already)."""
    from ..experiments import EXPERIMENTS

    return {name: get_or_train(name).metrics["train_seconds"]
            for name, spec in EXPERIMENTS.items() if spec["chapter"] == chapter}


# ================================================================== claims
# The conditions behind the chapter's comparative sentences, each a function
# of the numbers the chapter glues (see autoencoders.claims; the chapter
# checks them with check_claims, tests/test_claim_breaks.py breaks each).
AVERAGING_CLAIMS = (
    Claim("q1-averaged-no-code", "the averaged-loss VAE with beta = 1 spends almost no nats "
          "(under 0.01 per digit) and has no active unit",
          lambda n: n["avg_active"] == 0 and n["avg_kl"] < 0.01),
    Claim("q1-averaged-one-output", "it decodes one image for every input (its reconstructions "
          "vary less than a hundredth as much as the summed model's), and its samples vary "
          "less than half as much", lambda n: n["avg_spread"] < 0.01 * n["sum_spread"]
          and n["sample_spread_ratio"] < 0.5),
    Claim("q1-summed-uses-code", "with beta = 1/D the same network keeps active units and "
          "reconstructs better, both decoding the posterior mean and decoding one sampled code",
          lambda n: n["sum_active"] > 0 and n["sum_mse"] < n["avg_mse"]
          and n["sum_mse_sampled"] < n["avg_mse_sampled"]),
)
KL_RISE_CLAIMS = (
    Claim("q2-kl-rose", "the KL went up during training", lambda n: n["end_kl"] > n["start_kl"]),
    Claim("q2-total-fell", "the reconstruction term and the total went down",
          lambda n: n["end_recon"] < n["start_recon"] and n["end_total"] < n["start_total"]),
    Claim("q2-fall-needs-code", "most of the table's fall of the reconstruction term is below "
          "what the best code-free decoder reaches: the part within its reach is under half "
          "the fall", lambda n: max(0.0, n["start_recon"] - n["zero_rate"])
          < 0.5 * (n["start_recon"] - n["end_recon"])),
    Claim("q2-rate-pays", "at the end, each nat of KL buys several (more than 3) nats of "
          "reconstruction against the best decoder that ignores the code",
          lambda n: n["zero_rate"] - n["end_recon"] > 3 * n["end_kl"]),
)
PERPLEXITY_CLAIMS = (
    # a batch can never use more codes than the whole set (it is a subset), nor a
    # batch of 16 more than the batch of 128 it is cut from: only the size of
    # the gap is measured
    Claim("q4-batch-count-overstates", "a small batch leaves on average at least 5 more "
          "codes unused than the whole test set",
          lambda n: n["used_whole"] - n["used_small"] >= 5),
    # likewise every size covers the same images and the batches are nested (a
    # batch of 2B is two of B): entropy is concave, so the mean entropy cannot
    # fall as B grows (the mean perplexity all but cannot): the claim tests sizes
    Claim("q4-small-batch-understates", "batches of the small size understate the whole test "
          "set's perplexity by at least a tenth, and the largest batches come within 5% of it",
          lambda n: n["ppl_small"] <= 0.9 * n["whole"]
          and n["ppl_largest"] >= 0.95 * n["whole"]),
)
CODEBOOK_FIX_CLAIMS = (
    Claim("q5-verdict-clear", "the verdict on which runs end with nearly the whole codebook in "
          "use is clear-cut: every run ends at least IN_USE of K in use or below IN_USE - 0.05 "
          "of K, and if none is in use one run has strictly the most codes",
          codebook_verdict_clear),
)
DECODING_CLAIMS = (
    Claim("q6-argmax-repeats", "the greedy grid repeats codes: it uses fewer than half as many "
          "distinct codes as a grid sampled at T = 1",
          lambda n: n["argmax_codes"] < 0.5 * n["t1_codes"]),
    Claim("q6-argmax-likelier", "the prior rates the greedy grid far likelier than its samples "
          "(under half their bits per code)", lambda n: n["argmax_bits"] < 0.5 * n["t1_bits"]),
    Claim("q6-temperature-trade", "lower temperatures give fewer distinct codes and fewer bits "
          "per code: they trade variety for likelihood",
          lambda n: all(n[f"{a}_codes"] < n[f"{b}_codes"] and n[f"{a}_bits"] < n[f"{b}_bits"]
                        for a, b in zip(TEMPERATURE_KEYS, TEMPERATURE_KEYS[1:]))),
)
GRID_CLAIMS = (
    Claim("q7-unequal-content", "the priors of the two grids of equal capacity need clearly "
          "different bits (by more than a tenth of the capacity)",
          lambda n: abs(n["g8_bpi"] - n["g16_bpi"]) > 0.1 * n["g8_bits"]),
)
COLLAPSE_CLAIMS = (
    Claim("q8-column-collapsed", "every VAE of the ablation column at this weight ends with no "
          "more active units and no more nats per digit than the linear optimum keeps, and "
          "under half a nat", lambda n: n["column_max_active"] <= n["linear_active"]
          and n["column_max_kl"] <= n["linear_rate"] and n["column_max_kl"] < 0.5),
    Claim("q8-column-at-mean-image", "decoded from one sampled code, as in training, every VAE "
          "of the column has a test error within NEAR_MEAN_IMAGE of the mean training digit's",
          lambda n: all(abs(n[k] - n["mean_mse"]) <= n["near_mean"] * n["mean_mse"]
                        for k in ("column_min_mse_sampled", "column_max_mse_sampled"))),
    Claim("q8-column-short-of-optimum", "the column's best gain (one sampled code) over the "
          "test error of the mean training digit is under half the linear optimum's over that "
          "image's error on the training digits",
          lambda n: n["column_gain_pct"] < 0.5 * n["linear_gain_pct"]),
    Claim("q8-16-collapsed", "the 16-number VAE of the column has collapsed: no active unit "
          "and under a tenth of a nat", lambda n: n["none_active"] == 0 and n["none_kl"] < 0.1),
    Claim("q8-linear-optimum-small", "at this weight even the best linear-Gaussian VAE keeps at "
          "most two units and carries under half a nat",
          lambda n: n["linear_active"] <= 2 and n["linear_rate"] < 0.5),
    Claim("q8-warmup-falls-back", "after the warm-up the KL falls back to under a tenth of its "
          "first epoch's and under half a nat on the test digits",
          lambda n: n["warm_kl_end"] < 0.1 * n["warm_kl_first"] and n["warm_kl"] < 0.5),
    Claim("q8-smaller-weight-alive", "at the grid's smallest weight the same code length keeps "
          "active units", lambda n: n["light_active"] > 0),
    Claim("q8-free-bits-alive", "free bits keep units active, with a code of more than a nat "
          "per digit, and cut the collapsed model's error by more than half decoding the "
          "posterior mean, and to under two thirds of it decoding one sampled code",
          lambda n: n["free_active"] > 0 and n["free_kl"] > 1
          and n["free_mse"] < 0.5 * n["none_mse"]
          and n["free_mse_sampled"] < 2 / 3 * n["none_mse_sampled"]),
    Claim("q8-free-bits-code-costs", "on objective eq-abl-objective the free-bits run scores "
          "worse than the collapsed one: its code saves less reconstruction than it costs KL",
          lambda n: n["free_objective"] > n["none_objective"]),
)
