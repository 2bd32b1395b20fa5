"""The computations of the score-function chapter (book/score_function.md):
the closed-form example's formulas as the chapter prints them, the variance
study of four gradient estimators on a probabilistic-PCA decoder (with the
variances the closed form predicts for it), and the VAE with a discrete
digit code."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
import torch

from .. import data, estimators, metrics
from ..bench import FULL_TRAIN_IMAGES
from ..cache import Run, get_or_train, load_data
from ..claims import Claim
from ..derivations import derive_score_function, gradients
from ..derivations.verdicts import remembered
from ..experiments import get_config
from ..inference import apply_in_batches

# ------------------------------------------------------------------ formulas
E_Q = r"\mathbb E_{z\sim q}\big[f(z)\big]"
SCORE_VAR = (r"\operatorname{Var}\Big[\big(f(z) - \beta\big)"
             r"\frac{\partial}{\partial\mu}\log q(z)\Big]")


@dataclass
class Formulas:
    """The LaTeX ("left side = right side") of each closed form the chapter
    displays, from :func:`~autoencoders.derivations.derive_score_function`,
    written with the residual r = x - b - a mu."""

    f: str
    expected_f: str
    grad_mu: str
    grad_sigma: str
    var_reparam: str
    var_score_offset: str
    var_score_best: str
    ratio_best: str


def formulas(derivation=None) -> Formulas:
    """The chapter's displayed formulas (``derivation``: the result of
    ``derive_score_function()``; if not given, the one the chapter's
    build-time checks stored, or computed now: :func:`~autoencoders.derivations.verdicts.remembered`)."""
    d = remembered(derive_score_function) if derivation is None else derivation
    sym = d["symbols"]
    at_r = {sym["x"]: sym["r"] + sym["b"] + sym["a"] * sym["mu"]}  # r = x - b - a mu

    def show(lhs, expr, simplify=True):
        expr = expr.subs(at_r)
        return lhs + " = " + sp.latex(sp.simplify(expr) if simplify else expr)

    return Formulas(
        f=r"f(z) = \log p(x\mid z) = \kappa - \frac{(x - a z - b)^2}{2c},\qquad "
          r"\kappa = -\tfrac12\log(2\pi c).",
        expected_f=show(E_Q, d["expected_f"], simplify=False),
        grad_mu=show(r"\frac{\partial}{\partial\mu}" + E_Q, d["grad_mu"]),
        grad_sigma=show(r"\frac{\partial}{\partial\sigma}" + E_Q, d["grad_sigma"]),
        var_reparam=show(r"\operatorname{Var}\Big[\frac{\partial}{\partial\mu} "
                         r"f(\mu + \sigma\varepsilon)\Big]", d["var_reparam"]),
        var_score_offset=SCORE_VAR + " = " + sp.latex(d["var_score_offset"]),
        var_score_best=show(r"\min_\beta " + SCORE_VAR, d["var_score_best"]),
        ratio_best=show(r"\frac{\min_\beta \operatorname{Var}[\text{score function}]}"
                        r"{\operatorname{Var}[\text{reparameterization}]}", d["ratio_best"]),
    )


def check_closed_form_in_one_dimension(derivation=None, seed: int = 0) -> float:
    """Check :func:`~autoencoders.estimators.closed_form_variances` (any d)
    against the chapter's one-dimensional sympy variances
    (``eq-sf-var-reparam``, ``eq-sf-var-score``) at random values, for three
    baselines; returns the largest relative difference. Raises
    :class:`DerivationError` if they disagree. (The build-time check
    ``closed_form_variances_check`` runs this and a d = 3 quadrature.)"""
    return gradients.closed_form_in_one_dimension(derivation, seed)


# ------------------------------------------------------ the variance study
CONST, LOO = "score + constant baseline", "score + leave-one-out baseline"
PARALLEL_FROM = 30  # the sample count from which the chapter calls the variance lines parallel
# How close (relative) every measured constant-baseline ratio from PARALLEL_FROM draws on
# must be to the closed form's prediction for the chapter to call them in agreement.
PREDICTION_TOLERANCE = 0.10
SHORT = {"reparameterization": "rp", "score": "sf", "score + constant baseline": "const",
         "score + leave-one-out baseline": "loo"}


def two_figures(x: float) -> int:
    """A positive count rounded to two significant figures (13,469 -> 13,000)."""
    return int(round(round(x, 1 - int(math.floor(math.log10(x))))))


def _normal_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass
class EstimatorComparison:
    """Four gradient estimators on a probabilistic-PCA decoder of MNIST,
    for one test digit whose exact posterior is q. Dicts are keyed by
    :data:`~autoencoders.estimators.ESTIMATORS`."""

    latent: int
    replicates: int
    counts: tuple
    c: float                         # the decoder's noise variance
    sigma: torch.Tensor              # posterior standard deviations
    value: float                     # E_q[f], nats
    exact_mu0: float                 # first coordinate of the exact mu-gradient
    studies: dict                    # name -> estimators.VarianceStudy
    per_draw: dict[str, float]       # total variance of one draw (n x var at the largest n,
                                     # the n of ``ratio``)
    ratio: dict[str, float]          # variance / reparameterization's, at the largest n
    max_bias_z: dict[str, float]     # largest |z| over coordinates and sample counts
    slopes: dict[str, float]         # log-log slope of variance against n
    predicted: dict[str, float]      # closed-form per-draw total variance
    predicted_ratio: dict[str, float]  # closed-form variance / reparameterization's
    # the constant baseline's variance ratio at each count below parallel_from,
    # measured again with other seeds: seed -> [ratio at each such count]
    other_seeds: dict[int, list[float]] = field(default_factory=dict)
    # the leave-one-out baseline's variance ratio at its smallest count, from the same
    # reruns (the same draws as ``other_seeds``): seed -> ratio
    other_seeds_loo: dict[int, float] = field(default_factory=dict)

    def gain(self, name: str) -> float:
        """How many times less variance than the plain score function, at the largest n."""
        return self.studies["score"].variance[-1] / self.studies[name].variance[-1]

    @property
    def n_match(self) -> int:
        """Draws the constant-baseline estimator needs to match the
        reparameterized one's precision with the largest n, to two
        significant figures (the measured ratio is not more precise)."""
        return two_figures(self.ratio["score + constant baseline"] * self.counts[-1])

    @property
    def parallel_from(self) -> int:
        """The first sample count from :data:`PARALLEL_FROM` on (the largest
        count if the study stops before it)."""
        return next((n for n in self.counts if n >= PARALLEL_FROM), self.counts[-1])

    def ratio_range(self, name: str, from_n: int | None = None) -> tuple[float, float]:
        """The smallest and largest variance ratio of estimator ``name`` to
        the reparameterized one over the sample counts n >= ``from_n``
        (default :attr:`parallel_from`)."""
        from_n = self.parallel_from if from_n is None else from_n
        r = [v for n, v in self.ratios(name) if n >= from_n]
        return min(r), max(r)

    def ratios(self, name: str) -> list[tuple[int, float]]:
        """(n, variance ratio of estimator ``name`` to the reparameterized
        one) at every sample count the estimator ran with."""
        rp = self.studies["reparameterization"]
        st = self.studies[name]
        return [(n, v / rp.variance[rp.sample_counts.index(n)])
                for n, v in zip(st.sample_counts, st.variance)]

    def const_ratio_below(self) -> tuple[float, float]:
        """The smallest and largest constant-baseline ratio at the sample
        counts below :attr:`parallel_from` (NaN, NaN if there are none)."""
        r = [v for n, v in self.ratios(CONST) if n < self.parallel_from]
        return (min(r), max(r)) if r else (math.nan, math.nan)

    def small_count_words(self) -> dict[str, str]:
        """Words for the constant baseline's ratios below :attr:`parallel_from`:
        ``"tolerance"``, how they stand against the prediction's tolerance, and
        ``"side"``, where they lie against the other seeds' average."""
        n = self.numbers()
        low, high, tol = n["const_small_dev_min_pct"], n["const_small_dev_max_pct"], n["pred_tol_pct"]
        if low > tol:
            tolerance = "every one above it by more than the tolerance"
        elif high < -tol:
            tolerance = "every one below it by more than the tolerance"
        elif max(abs(low), abs(high)) > tol:
            tolerance = "some of them outside the tolerance"
        else:
            tolerance = "all within the tolerance too"
        mean = n.get("seeds_dev_mean_pct", math.nan)
        side = ("all above the other seeds' average" if low > mean else
                "all below the other seeds' average" if high < mean else
                "on both sides of the other seeds' average")
        return {"tolerance": tolerance, "side": side, "loo_side": self.loo_side_words(n)}

    def loo_side_words(self, n: dict[str, float] | None = None) -> str:
        """Where this seed's leave-one-out ratio at its smallest count lies
        against the other seeds' (:attr:`other_seeds_loo`): their average and
        their range ('' without other seeds). ``n``: :meth:`numbers`, if the
        caller has it already."""
        n = self.numbers() if n is None else n
        if "seeds_loo_mean" not in n:
            return ""
        mine, mean = n["ratio_loo_small"], n["seeds_loo_mean"]
        side = ("above the other seeds' average" if mine > mean else
                "below the other seeds' average" if mine < mean else
                "at the other seeds' average")
        where = (", and above all of them" if mine > n["seeds_loo_max"] else
                 ", and below all of them" if mine < n["seeds_loo_min"] else
                 ", within their range")
        return side + where

    @property
    def counts_text(self) -> str:
        """The sample counts in words: '1, 3, 10 and 30'."""
        return _listed(self.counts)

    @property
    def bias_points(self) -> tuple[int, int]:
        """In the bias panel (first coordinate of the mu-gradient, every
        estimator and sample count): the points outside +-2 standard errors,
        and all points."""
        z = [v for st in self.studies.values() for v in st.mu_z(self.exact_mu0)]
        return sum(abs(v) > 2 for v in z), len(z)

    @property
    def bias_outside_counts(self) -> int:
        """How many sample counts the bias panel's points outside +-2
        standard errors lie at (the points at one count share their draws)."""
        return len({n for st in self.studies.values()
                    for n, v in zip(st.sample_counts, st.mu_z(self.exact_mu0)) if abs(v) > 2})

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``sf_<name>``; per estimator under
        its :data:`SHORT` name)."""
        out = {"latent": self.latent, "replicates": self.replicates, "ncoords": 2 * self.latent,
               "nmax": self.counts[-1], "ncounts": len(self.counts), "c": self.c,
               "sigma_min": float(self.sigma.min()),
               "sigma_max": float(self.sigma.max()), "value": self.value,
               "slope": self.slopes["score"], "slope_loo": self.slopes[LOO],
               # the leave-one-out slope is fitted over its counts from the first with n >= 2
               "loo_nmin": self.studies[LOO].sample_counts[0],
               "n_match": self.n_match,
               "parallel_from": self.parallel_from,
               "ratio_par_min": min(self.ratio_range(k)[0] for k in (CONST, LOO)),
               "ratio_par_max": max(self.ratio_range(k)[1] for k in (CONST, LOO)),
               "bias_outside": self.bias_points[0], "bias_points": self.bias_points[1],
               "bias_outside_ncounts": self.bias_outside_counts,
               "bias_expected": self.bias_points[1] * 2 * _normal_tail(2.0),
               "biasz_min": min(self.max_bias_z.values()),
               "biasz_max": max(self.max_bias_z.values()),
               "const_gain": self.gain("score + constant baseline"),
               "loo_gain": self.gain("score + leave-one-out baseline"),
               # the constant baseline's ratio: in expectation the same number at every n
               # (both estimators average n independent draws); compared with the
               # prediction from parallel_from on, and only reported below it
               **dict(zip(("const_ratio_par_min", "const_ratio_par_max"),
                          self.ratio_range(CONST))),
               **dict(zip(("const_ratio_small_min", "const_ratio_small_max"),
                          self.const_ratio_below())),
               "pred_tol_pct": 100 * PREDICTION_TOLERANCE,
               "pred_ratio_sf": self.predicted_ratio["score"],
               "pred_ratio_const": self.predicted_ratio["score + constant baseline"]}
        out["ncounts_small"] = sum(n < self.parallel_from for n in self.counts)
        # the spread (standard deviation) ratio of the plain score function
        out["sd_ratio_sf"] = math.sqrt(self.ratio["score"])
        pred = out["pred_ratio_const"]
        out["const_pred_dev_pct"] = 100 * max(abs(out[f"const_ratio_par_{k}"] / pred - 1)
                                              for k in ("min", "max"))
        # the smaller counts, left out of the agreement: how far above (or below) it
        for k in ("min", "max"):
            out[f"const_small_dev_{k}_pct"] = 100 * (out[f"const_ratio_small_{k}"] / pred - 1)
        # this seed's small-count ratios, in % off the prediction: how many lie above it
        mine = [100 * (v / pred - 1) for n, v in self.ratios(CONST) if n < self.parallel_from]
        out["small_above"] = sum(d > 0 for d in mine)
        # the leave-one-out ratio at its smallest count (few draws, as in the discrete VAE)
        out["ratio_loo_small"] = self.ratios(LOO)[0][1]
        # the constant baseline's ratio at that count, from the same draws
        out["ratio_const_at_loo_nmin"] = dict(self.ratios(CONST))[self.ratios(LOO)[0][0]]
        # without a baseline delta = E_q[f]: the delta^2 that the plain ratio is set beside,
        # and how far (%) the measured ratio lies from it
        out["value_sq"] = self.value ** 2
        out["ratio_sf_vs_value_sq_pct"] = 100 * (self.ratio["score"] / out["value_sq"] - 1)
        # the factor (1 - sigma^2)^-2 by which the sigmas fail to cancel, at its largest
        out["sigma_factor_max"] = (1 - float(self.sigma.max()) ** 2) ** -2
        # the same small counts run again with other seeds: how far their ratios scatter
        devs = [100 * (r / pred - 1) for ratios in self.other_seeds.values() for r in ratios]
        if devs:
            out |= {"seeds_n": len(self.other_seeds), "seeds_dev_min_pct": min(devs),
                    "seeds_dev_max_pct": max(devs), "seeds_dev_mean_pct": sum(devs) / len(devs),
                    "seeds_above": sum(d > 0 for d in devs), "seeds_values": len(devs)}
            # how many of this seed's small-count ratios lie outside the others' range
            out["seeds_outside"] = sum(not min(devs) <= d <= max(devs) for d in mine)
        # the leave-one-out ratio at its smallest count, with the other seeds, and the
        # constant baseline's at that count on the same draws
        loo = list(self.other_seeds_loo.values())
        if loo:
            at = [n for n in self.counts if n < self.parallel_from].index(out["loo_nmin"])
            const = [ratios[at] for ratios in self.other_seeds.values()]
            out |= {"seeds_loo_min": min(loo), "seeds_loo_max": max(loo),
                    "seeds_loo_mean": sum(loo) / len(loo),
                    "seeds_const_at_loo_nmin_mean": sum(const) / len(const)}
        for name, key in SHORT.items():
            out |= {f"var1_{key}": self.per_draw[name], f"ratio_{key}": self.ratio[name],
                    f"biasz_{key}": self.max_bias_z[name]}
        return out


# Other seeds with which the chapter runs the sample counts below PARALLEL_FROM
# again, to see how far a variance ratio measured from the replicates scatters
OTHER_SEEDS = tuple(range(1, 11))


def compare_estimators(latent: int = 16, replicates: int = 400,
                       counts=(1, 3, 10, 30, 100, 300, 1000),
                       seed: int = 0, other_seeds=OTHER_SEEDS) -> EstimatorComparison:
    """Fit probabilistic PCA with ``latent`` dimensions to the training
    digits, take one test digit (a fixed random pick) and its exact posterior
    as q, and run :func:`~autoencoders.estimators.variance_study` on
    f(z) = log p(x|z); then the counts below :data:`PARALLEL_FROM` again, for
    the reparameterized estimator and the constant and leave-one-out
    baselines, with each of ``other_seeds``."""
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    decoder = metrics.probabilistic_pca(train.images, latent)
    one = int(data.fixed_pick(len(test), 1)[0])
    x = test.images[one].double().div(255.0)  # one real test digit, in float64 throughout
    mu, sigma = decoder.posterior(x)                     # q = its exact posterior
    exact = decoder.exact_gradient(x, mu, sigma)
    value = decoder.expected_log_prob(x, mu, sigma)
    study = estimators.variance_study(decoder.log_prob(x), mu, sigma, exact, value,
                                      sample_counts=counts, replicates=replicates, seed=seed)
    small = tuple(n for n in counts if n < PARALLEL_FROM)
    other, other_loo = {}, {}
    for other_seed in other_seeds if small else ():
        again = estimators.variance_study(decoder.log_prob(x), mu, sigma, exact, value,
                                          sample_counts=small, replicates=replicates, seed=other_seed,
                                          estimators=("reparameterization", CONST, LOO))
        rp_again = again["reparameterization"]
        other[other_seed] = [c / r for c, r in zip(again[CONST].variance, rp_again.variance)]
        if again[LOO].sample_counts:  # its smallest count, if below PARALLEL_FROM
            n_loo = again[LOO].sample_counts[0]
            other_loo[other_seed] = (again[LOO].variance[0]
                                     / rp_again.variance[rp_again.sample_counts.index(n_loo)])
    rp = study["reparameterization"].variance[-1]
    closed = {"reparameterization": estimators.closed_form_variances(decoder, x, mu, sigma)
              ["reparameterization"].total,
              "score": estimators.closed_form_variances(decoder, x, mu, sigma, 0.0)["score"].total,
              "score + constant baseline": estimators.closed_form_variances(
                  decoder, x, mu, sigma, value)["score"].total}
    return EstimatorComparison(
        latent=latent, replicates=replicates, counts=tuple(counts), c=decoder.c, sigma=sigma,
        value=value, exact_mu0=float(exact[0][0]), studies=study,
        per_draw={k: st.variance[-1] * st.sample_counts[-1] for k, st in study.items()},
        ratio={k: st.variance[-1] / rp for k, st in study.items()},
        max_bias_z={k: max(st.bias_z) for k, st in study.items()},
        slopes={k: float(np.polyfit(np.log(st.sample_counts), np.log(st.variance), 1)[0])
                for k, st in study.items()},
        predicted=closed,
        predicted_ratio={k: v / closed["reparameterization"] for k, v in closed.items()},
        other_seeds=other, other_seeds_loo=other_loo,
    )


# ------------------------------------------------- the discrete digit code
# The chapter calls the code's KL still moving when it changed by more than
# this many nats per image in the last epoch.
KL_STILL_MOVING_NATS = 0.05


@dataclass
class DiscreteCode:
    """The VAE with a categorical digit code, trained with the score
    function (``"score"``) and with the Gumbel-softmax relaxation
    (``"gumbel"``), and what its code learned."""

    runs: dict[str, Run]
    agreement: dict[str, metrics.CodeLabelAgreement]
    train_n: int
    test_n: int
    full_epochs: int
    full_train_n: int                # training digits of the full profile with this build's data
    full_train_download: int         # ... and with torchvision's download of MNIST
    full_step_ratio: float           # optimiser steps of the full profile over this run's,
    full_step_ratio_download: float  # with this build's data and with the download
    vae_neg_elbo: float              # the continuous VAE of the previous chapter
    vae_latent: int                  # and its code length
    kl_y_history: list[float]        # the score-function model's code KL per epoch
    grid: dict[str, torch.Tensor]    # "code k (ds, p%)" -> 10 decoded styles: d the most
                                     # frequent digit of code k, p% its share of the code
    grid_read: torch.Tensor          # (code values, styles): the digit a classifier reads
    merged_digits: int               # digits that no code value has as its majority
    unclaimed_digits: list[int]      # those digits
    shared_digits: dict[int, list[int]]  # digit -> the code values (two or more) it is
                                         # the majority digit of
    majority_chance: float           # the average % of test digits over the digits tied
                                     # for most frequent in training: the majority map's
                                     # expected score for a code blind to the digit (ties
                                     # broken at random; 10% on balanced training digits)

    @property
    def config(self):
        return self.runs["score"].config

    @property
    def steps(self) -> int:
        return self.config.steps(self.train_n)

    def full_does(self) -> str:
        """What the ``full`` profile trains, against this run, for
        :func:`~autoencoders.book.full_profile_note`: its epochs and training
        digits, with torchvision's download of MNIST and, where this build
        had only the offline copy, with that."""
        def epochs(n: int) -> str:
            return f"{n} epoch" + ("" if n == 1 else "s")

        def times(r: float) -> str:
            return f"{r:,.0f}" if r >= 10 else f"{r:.1f}"
        e, full_e, n = epochs(self.config.epochs), epochs(self.full_epochs), self.train_n
        if self.full_train_n == self.full_train_download:   # this build had the download
            if self.full_train_n == n:
                return (f"trains {full_e} instead of {e} on the same {n:,} training digits, "
                        f"{times(self.full_step_ratio)} times as many optimiser steps")
            return (f"trains {full_e} on all {self.full_train_n:,} training digits instead of "
                    f"{e} on {n:,}, about {times(self.full_step_ratio)} times as many "
                    "optimiser steps")
        here = (f"the same {n:,} digits of the offline copy" if self.full_train_n == n else
                f"all {self.full_train_n:,} digits of the offline copy instead of {n:,}")
        return (f"trains {full_e} instead of {e}: on all {self.full_train_download:,} MNIST "
                "training digits where torchvision can download them (about "
                f"{times(self.full_step_ratio_download)} times as many optimiser steps), and "
                f"offline, as in this build, on {here} "
                f"({times(self.full_step_ratio)} times as many)")

    @property
    def digits_down(self) -> float:
        """Different digits read down a grid column (only the code changes), on average."""
        return float(np.mean([len(set(col.tolist())) for col in self.grid_read.T]))

    @property
    def digits_along(self) -> float:
        """Different digits read along a grid row (only the style changes), on average."""
        return float(np.mean([len(set(row.tolist())) for row in self.grid_read]))

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``dv_<name>``; per model
        ``dv_<score|gumbel>_<name>``, accuracies in %)."""
        cfg, kl_y = self.config, self.kl_y_history
        out = {"epochs": cfg.epochs, "kly_first": kl_y[0], "kly_last": kl_y[-1],
               "kly_last_change": kl_y[-1] - kl_y[-2] if len(kl_y) > 1 else math.nan,
               "train_n": self.train_n, "test_n": self.test_n, "K": cfg.categories,
               "d": cfg.latent_dim, "S": cfg.samples, "S_others": cfg.samples - 1,
               "batch": cfg.batch_size, "steps": self.steps, "logK": math.log(cfg.categories),
               "usage_weight": cfg.usage_weight, "vae_nelbo": self.vae_neg_elbo,
               "vae_latent": self.vae_latent, "grid_down": self.digits_down,
               "grid_along": self.digits_along, "merged": self.merged_digits,
               "majority_chance": self.majority_chance}
        for key, run in self.runs.items():
            a, t = self.agreement[key], run.metrics["test"]
            out |= {f"{key}_majority": 100 * a.majority_accuracy, f"{key}_used": a.used_codes,
                    f"{key}_one2one": 100 * a.one_to_one_accuracy, f"{key}_nelbo": t["neg_elbo"],
                    f"{key}_kly": t["kl_y"], f"{key}_klz": t["kl_z"],
                    f"{key}_seconds": run.metrics["train_seconds"]}
        return out


def discrete_code(grid_seed: int = 1) -> DiscreteCode:
    """Train (or fetch) both discrete VAEs, map each code value to a digit
    with the training labels, and decode every code value with the same ten
    styles z ~ N(0, I) (read by the classifier trained on real digits)."""
    runs = {"score": get_or_train("dvae-score"), "gumbel": get_or_train("dvae-gumbel")}
    cfg = runs["score"].config
    dtrain, dtest = load_data(cfg)
    agreement = {}
    for key, r in runs.items():
        codes = [apply_in_batches(r.model, r.model.code, d.images) for d in (dtrain, dtest)]
        agreement[key] = metrics.code_label_agreement(codes[0], dtrain.labels, codes[1],
                                                      dtest.labels, num_codes=cfg.categories)
    a, model = agreement["score"], runs["score"].model
    styles = torch.randn(10, cfg.latent_dim, generator=torch.Generator().manual_seed(grid_seed))
    grid = {}
    with torch.inference_mode():
        for k in np.argsort(a.majority_map, kind="stable"):     # codes sorted by their digit
            label = (f"{a.majority_map[k]}s, {100 * _share(a, k):.0f}%" if a.table[k].sum()
                     else "unused")
            grid[f"code {k} ({label})"] = model.decode(torch.full((len(styles),), int(k)), styles)
    reader = get_or_train("classifier-real").model
    vae = get_or_train("vae-mnist")
    logits, _ = metrics.classifier_outputs(reader, torch.cat(list(grid.values())))
    used = a.table.sum(axis=1) > 0
    full = get_config("dvae-score", "full")
    whole = len(data.load(cfg.dataset, "train"))    # the training digits this build has
    full_n = min(full.train_size or whole, whole)
    full_download = full.train_size or FULL_TRAIN_IMAGES[cfg.dataset]
    return DiscreteCode(
        runs=runs, agreement=agreement, train_n=len(dtrain), test_n=len(dtest),
        full_epochs=full.epochs, full_train_n=full_n, full_train_download=full_download,
        full_step_ratio=full.steps(full_n) / cfg.steps(len(dtrain)),
        full_step_ratio_download=full.steps(full_download) / cfg.steps(len(dtrain)),
        vae_neg_elbo=vae.metrics["test"]["neg_elbo"], vae_latent=vae.config.latent_dim,
        kl_y_history=[h["kl_y"] for h in runs["score"].metrics["history"]],
        grid=grid, grid_read=logits.argmax(1).view(len(grid), len(styles)),
        merged_digits=10 - len(set(a.majority_map[used].tolist())),
        unclaimed_digits=sorted(set(range(10)) - set(a.majority_map[used].tolist())),
        shared_digits={d: codes for d in range(10)
                       if len(codes := [int(k) for k in np.flatnonzero(used)
                                        if a.majority_map[k] == d]) > 1},
        majority_chance=_majority_chance(dtrain.labels, dtest.labels),
    )


def _majority_chance(train_labels: torch.Tensor, test_labels: torch.Tensor) -> float:
    """The majority map's expected test accuracy, in %, for a code blind to the
    digit: every code value maps to a most frequent training digit, ties broken
    at random, so the average test share of the digits tied for most frequent."""
    counts = torch.bincount(train_labels, minlength=10)
    tied = torch.nonzero(counts == counts.max()).flatten()
    shares = torch.bincount(test_labels, minlength=10).double() / len(test_labels)
    return 100 * float(shares[tied].mean())


def _listed(items) -> str:
    """'3', '3 and 5', '3, 5 and 8'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _share(a: metrics.CodeLabelAgreement, k: int) -> float:
    """The share of code value ``k``'s training digits that are its most
    frequent digit (its majority digit, which may be under half)."""
    return float(a.table[k, a.majority_map[k]] / a.table[k].sum())


def majority_words(code: DiscreteCode) -> dict[str, str]:
    """The chapter's sentences on which digits the code's values stand for
    (``unclaimed``: the digits that are the most frequent digit of no code
    value, and the codes that share one, with the share of their training
    digits it is; ``column``: what that means for a column of the grid),
    worded for the counts of this run."""
    gone, a = code.unclaimed_digits, code.agreement["score"]
    shared = "; ".join(
        f"code values {_listed(ks)} {'both' if len(ks) == 2 else 'all'} hold {d}s most often, "
        f"{_listed([f'{100 * _share(a, k):.0f}%' for k in ks])} of their training digits"
        for d, ks in code.shared_digits.items())
    if not gone:
        return {"unclaimed": "every digit is the most frequent digit of some code value",
                "column": "a code whose values each decoded to their most frequent digit would "
                          "show all 10 digits down a column"}
    unclaimed = (f"digit {gone[0]} is" if len(gone) == 1 else f"digits {_listed(gone)} are") \
        + " the most frequent digit of no code value" + (f"; {shared}" if shared else "")
    return {"unclaimed": unclaimed,
            "column": f"a code whose values each decoded to their most frequent digit would show "
                      f"{10 - len(gone)} different digits down a column, not 10, since "
                      + unclaimed.split(";")[0]}


# ================================================================== claims
# The conditions behind the chapter's judging sentences, each a function of
# the numbers the chapter glues (see autoencoders.claims; the chapter checks
# them with check_claims, tests/test_claim_breaks.py breaks each). What the
# mathematics guarantees is checked by unit tests (tests/test_estimators.py),
# not by claims: that every estimator is unbiased (eq-sf-estimator), that the
# reparameterized variance is the lowest on this decoder (eq-sf-var-d), that
# the variances fall like 1/n (averaging n independent draws), and that the
# sampled variances agree with closed_form_variances, which is their exact
# value (so the chapter's predicted and measured ratios at the largest n are
# shown side by side, not claimed to agree). Whether
# the code's KL started near zero or still moved in the last epoch (by more
# than KL_STILL_MOVING_NATS), which digits no code value stands for, and
# whether the code or the style decides more of the digit in the grid, are
# glued in words chosen by the numbers.
ESTIMATOR_CLAIMS = (
    Claim("sf-prediction-within-tolerance", f"from {PARALLEL_FROM} draws on, every measured "
          "variance ratio of the constant baseline lies within "
          f"{100 * PREDICTION_TOLERANCE:.0f}% of the closed form's prediction",
          lambda n: all(abs(n[f"const_ratio_par_{k}"] / n["pred_ratio_const"] - 1)
                        <= PREDICTION_TOLERANCE for k in ("min", "max"))),
    Claim("sf-small-counts-scatter", f"below {PARALLEL_FROM} draws, the ratios measured "
          f"with other seeds miss the prediction by more than {100 * PREDICTION_TOLERANCE:.0f}% "
          "in both directions, and their average lies within that of the prediction",
          lambda n: n["seeds_dev_min_pct"] < -n["pred_tol_pct"]
          and n["seeds_dev_max_pct"] > n["pred_tol_pct"]
          and abs(n["seeds_dev_mean_pct"]) <= n["pred_tol_pct"]),
)
DISCRETE_CODE_CLAIMS = (
    Claim("dv-code-predicts-digit", "the code value alone predicts the digit well above chance: "
          "more than three times its 10%, by both maps",
          lambda n: min(n["score_majority"], n["score_one2one"]) > 30),
    Claim("dv-code-partial", "the code mixes digits and is only partly a digit code: more than "
          "a tenth of the test digits fall under a code value whose majority digit is another",
          lambda n: n["score_majority"] < 90),
    Claim("dv-style-changes-digit", "with the code fixed, the style alone changes which digit is "
          "drawn: a row of ten styles shows at least three different digits on average",
          lambda n: n["grid_along"] >= 3),
)
