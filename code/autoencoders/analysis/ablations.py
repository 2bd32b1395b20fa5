"""The ablations chapter's computations (book/ablations.md): a plain
autoencoder against a VAE with the same encoder and decoder, on MNIST.

Each function takes the chapter's trained models (:func:`ablation_runs`) and
the test digits, and returns a small dataclass of numbers (and the images or
points a figure needs); the chapter glues the numbers and draws the figures.

* :func:`reference_pair`: test losses of the reference AE/VAE pair at both
  budgets, and the AE -> VAE reconstruction gap in two measured steps;
* :func:`grid_study`: the latent-size x KL-weight grid;
* :func:`layout_study`: where the codes lie, and how wide each posterior is
  against the aggregate posterior;
* :func:`denoising_study`: AEs and VAEs trained to map noisy digits to clean ones;
* :func:`sample_quality`: decoded prior draws, scored by a digit classifier.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import cache, inference, losses, metrics
from ..claims import Claim
from ..cache import Run, get_or_train, load_data
from ..data import ImageData, fixed_pick
from ..experiments import (ABLATION_AE_LATENTS, ABLATION_KL_WEIGHTS, ABLATION_LATENTS,
                           ABLATION_LAYOUT, ABLATION_NOISE, ABLATION_REF, ablation_epochs,
                           ablation_name)
from ..models.vae import VAE, reparameterize
from ..noise import corrupt
from ..metrics.latents import project_2d

REF_Z, REF_KL = ABLATION_REF["latent_dim"], ABLATION_REF["kl_weight"]
ACTIVE_THRESHOLD = 0.01  # the activity above which a latent unit counts as active
N_SAMPLES = 2000         # decoded prior draws per scored model
N_TSNE = 2000            # test codes in the t-SNE view
N_LIVE = 4000            # test codes in the live latent explorer
SURE = 0.9               # a classifier is "sure" of an image when its top class is above this
SHOWN = 12               # decoded draws kept per set for the samples figure
PIXELS = 28 * 28         # D, the pixels of an MNIST digit
# Two test MSEs of single training runs (one seed each) count as about the
# same when they differ by at most this fraction of the one compared with;
# every "better", "worse" and "about as well as" between two models of the
# chapter uses it.
SAME_MSE = 0.05
N_NEIGHBOUR_QUERIES = 2000  # test digits whose nearest neighbour in code space is looked up


# --------------------------------------------------------------- the models
@dataclass
class AblationRuns:
    """Every model of the chapter, by role."""

    grid: dict[tuple[int, float], Run]       # VAEs: (latent size, KL weight), short budget
    aes: dict[int, Run]                      # AEs: latent size, short budget
    denoisers: dict[tuple[str, float], Run]  # ("ae" | "vae", noise weight), short budget
    long: dict[str, Run]                     # the reference pair, long budget
    short: dict[str, Run]                    # the reference pair, short budget (grid members)
    layout: dict[str, Run]                   # 2-number AE and VAE, long budget, smaller lr

    def all(self) -> list[Run]:
        """Each model once."""
        return [*self.grid.values(), *self.aes.values(), *self.denoisers.values(),
                *self.long.values(), *self.layout.values()]


def ablation_runs() -> AblationRuns:
    """Train every model of the chapter, or load it from the artifact cache.

    Shown in the Ablations: what the VAE's extra pieces do chapter (book/ablations.md)."""
    grid = {(d, w): get_or_train(ablation_name("vae", d, w))    # VAEs: latent size x KL weight
            for d in ABLATION_LATENTS for w in ABLATION_KL_WEIGHTS}
    aes = {d: get_or_train(ablation_name("ae", d)) for d in ABLATION_AE_LATENTS}
    denoisers = {(m, n): get_or_train(ablation_name(m, noise_weight=n))  # noisy in, clean out
                 for m in ("ae", "vae") for n in ABLATION_NOISE}
    long = {m: get_or_train(ablation_name(m, long=True)) for m in ("ae", "vae")}
    short = {"ae": aes[REF_Z], "vae": grid[REF_Z, REF_KL]}            # the same, short budget
    # 2-number codes; long=True only names these runs: they train for MNIST_EPOCHS
    layout = {m: get_or_train(ablation_name(m, 2, ABLATION_LAYOUT["kl_weight"], long=True))
              for m in ("ae", "vae")}
    return AblationRuns(grid, aes, denoisers, long, short, layout)


def splits(runs: AblationRuns) -> tuple[ImageData, ImageData]:
    """The (train, test) digits every model of the chapter was trained and tested on."""
    return load_data(runs.short["vae"].config)


@dataclass
class Budget:
    """What the chapter trained, on what, and how long it took."""

    n_models: int
    short: int
    long: int
    train_n: int
    test_n: int
    lr: float
    batch: int
    ref_z: int
    ref_kl: float
    data: str
    train_seconds: float
    train_minutes: float
    train_device: str
    params_ae: int
    params_vae: int


def budget(runs: AblationRuns, profile) -> Budget:
    """The training budget of the chapter in ``profile``."""
    train, test = splits(runs)
    config, every = runs.short["vae"].config, runs.all()
    seconds = sum(r.metrics["train_seconds"] for r in every)
    return Budget(
        n_models=len(every), short=ablation_epochs(profile),
        long=ablation_epochs(profile, long=True), train_n=len(train), test_n=len(test),
        lr=config.lr, batch=config.batch_size, ref_z=REF_Z, ref_kl=REF_KL,
        data=runs.short["vae"].metrics["data"], train_seconds=seconds,
        train_minutes=seconds / 60,
        train_device=", ".join(sorted({r.metrics["device"] for r in every})),
        params_ae=runs.short["ae"].metrics["parameters"],
        params_vae=runs.short["vae"].metrics["parameters"])


@dataclass
class DecoderNoise:
    """What a KL weight beta claims about the decoder (the VAE-theory chapter's
    lambda = 2c): lambda = beta D, variance c = lambda / 2, s.d. sqrt(c)."""

    kl_weight: float
    lam: float
    c: float
    sd: float


def decoder_noise(weights=ABLATION_KL_WEIGHTS, pixels: int = PIXELS) -> list[DecoderNoise]:
    """The decoder noise each KL weight corresponds to, for ``pixels`` = D."""
    return [DecoderNoise(w, VAE.kl_lambda(w, pixels), VAE.variance_for(w, pixels),
                         math.sqrt(VAE.variance_for(w, pixels)))
            for w in weights]


# ------------------------------------------------------ posterior widths
@dataclass
class PosteriorWidth:
    """How wide each posterior q(z|x) is against the spread of the data's
    codes, over the active units (all units if none is active)."""

    active: int            # active units
    sigma: float           # mean posterior s.d. sigma(x), over inputs and active units
    spread: float          # s.d. of the posterior means across inputs, averaged over active units
    aggregate_var: float   # Var_x(mu_u) + E_x[sigma_u^2], the aggregate posterior's variance
    aggregate_var_min: float  # ... its smallest and largest value over the active units
    aggregate_var_max: float


def posterior_width(mu: torch.Tensor, logvar: torch.Tensor,
                    threshold: float = ACTIVE_THRESHOLD) -> PosteriorWidth:
    """:class:`PosteriorWidth` of a VAE's posteriors (``mu``, ``logvar``: one
    row per input). The aggregate posterior q(z) = E_x q(z|x) is a mixture;
    its variance per unit is the variance of the means plus the mean variance."""
    activity = metrics.unit_activity(mu)
    active = activity > threshold
    if not active.any():
        active = torch.ones_like(active)
    aggregate = activity[active] + logvar[:, active].double().exp().mean(dim=0)
    return PosteriorWidth(
        active=int((activity > threshold).sum()),
        sigma=float(torch.exp(0.5 * logvar)[:, active].mean()),
        spread=float(mu[:, active].std(dim=0).mean()),
        aggregate_var=float(aggregate.mean()), aggregate_var_min=float(aggregate.min()),
        aggregate_var_max=float(aggregate.max()))


@dataclass
class Separation:
    """How far apart different inputs' posterior means lie over the whole
    code, in units of the mean posterior s.d. sigma (over the active units):
    the scale of the noise the decoder sees along any one direction."""

    rms: float      # root mean square distance between two inputs' means / sigma
    nearest: float  # median distance from an input's mean to the nearest other one / sigma


def separation(mu: torch.Tensor, logvar: torch.Tensor, n_query: int = 2000,
               threshold: float = ACTIVE_THRESHOLD) -> Separation:
    """:class:`Separation` of a VAE's posteriors (``mu``, ``logvar``: one row
    per input). The rms distance between two independent inputs' means is
    sqrt(2 sum_u Var_x mu_u); the nearest neighbours are those of a fixed
    pick of ``n_query`` inputs among all of them."""
    sigma = posterior_width(mu, logvar, threshold).sigma
    mu = mu.double()
    rms = math.sqrt(2 * float(mu.var(dim=0).sum()))
    pick = fixed_pick(len(mu), min(n_query, len(mu)))
    distances = torch.cdist(mu[pick], mu)
    distances[torch.arange(len(pick)), pick] = float("inf")  # not itself
    return Separation(rms=rms / sigma, nearest=float(distances.min(dim=1).values.median()) / sigma)


@dataclass
class UnitShares:
    """How each active unit's aggregate-posterior variance, Var_x mu_u +
    E_x sigma_u^2, splits between the spread of the posterior means and the
    posteriors' own width, unit by unit (all units if none is active): the
    width's share E_x sigma_u^2 / (Var_x mu_u + E_x sigma_u^2)."""

    own_min: float     # the smallest share of the width, over the active units
    own_median: float  # ... its median
    means_led: int     # active units where the spread of the means is the larger part


def unit_shares(mu: torch.Tensor, logvar: torch.Tensor,
                threshold: float = ACTIVE_THRESHOLD) -> UnitShares:
    """:class:`UnitShares` of a VAE's posteriors (``mu``, ``logvar``: one row
    per input)."""
    activity = metrics.unit_activity(mu)
    active = activity > threshold
    if not active.any():
        active = torch.ones_like(active)
    width = logvar[:, active].double().exp().mean(dim=0)
    share = width / (activity[active] + width)
    return UnitShares(own_min=float(share.min()), own_median=float(share.quantile(0.5)),
                      means_led=int((share < 0.5).sum()))


@dataclass
class CodeOverlap:
    """Whether other inputs' posteriors could have produced a code drawn from
    one input's, over a fixed pick of query inputs x among all the inputs x'."""

    # median distance from x's posterior mean to the nearest other one, in x's own
    # posterior s.d. in each unit: sqrt(sum_u ((mu_u(x) - mu_u(x')) / sigma_u(x))^2)
    nearest_own: float
    # at one code z ~ q(z|x), the weight of the other inputs, 1 - q(z|x) / sum_x' q(z|x'):
    others_weight: float  # its mean over the pick
    others_most: float    # the share of the pick where it is above one half


def code_overlap(mu: torch.Tensor, logvar: torch.Tensor, n_query: int = N_NEIGHBOUR_QUERIES,
                 seed: int = 0) -> CodeOverlap:
    """:class:`CodeOverlap` of a VAE's posteriors (``mu``, ``logvar``: one row
    per input; every unit counts). The weights are those of the posterior over
    the inputs, each equally likely, given the code: the weights of the
    squared-error optimum E[x | z] over these inputs."""
    mu, logvar = mu.double(), logvar.double()
    pick = fixed_pick(len(mu), min(n_query, len(mu)))
    rows, inv = torch.arange(len(pick)), (-logvar).exp()  # 1 / sigma^2, per input and unit
    mq, iq = mu[pick], inv[pick]
    # sum_u (mu_u(x) - mu_u(x'))^2 / sigma_u(x)^2 for each query x and input x'
    d2 = (mq ** 2 * iq).sum(dim=1, keepdim=True) - 2 * (mq * iq) @ mu.T + iq @ (mu ** 2).T
    d2[rows, pick] = float("inf")  # not itself
    z = reparameterize(mq, logvar[pick], generator=torch.Generator().manual_seed(seed))
    # log q(z|x') up to a constant shared by all x', for each sampled z and input x'
    log_q = -0.5 * ((z ** 2) @ inv.T - 2 * z @ (mu * inv).T
                    + ((mu ** 2) * inv + logvar).sum(dim=1))
    others = 1 - log_q.softmax(dim=1)[rows, pick]
    return CodeOverlap(nearest_own=float(d2.min(dim=1).values.clamp(min=0).sqrt().median()),
                       others_weight=float(others.mean()),
                       others_most=float((others > 0.5).double().mean()))


def nearest_same_label(codes: torch.Tensor, labels: torch.Tensor,
                       n_query: int = N_NEIGHBOUR_QUERIES) -> float:
    """The share, in %, of a fixed pick of ``n_query`` inputs whose nearest
    other input in code space (Euclidean, over all the inputs) has the same
    label: how well the codes group the inputs by class, in the codes' own
    geometry (no projection)."""
    codes = codes.double()
    pick = fixed_pick(len(codes), min(n_query, len(codes)))
    distances = torch.cdist(codes[pick], codes)
    distances[torch.arange(len(pick)), pick] = float("inf")  # not itself
    nearest = distances.argmin(dim=1)
    return 100 * float((labels[nearest] == labels[pick]).double().mean())


# ------------------------------------------------------- the reference pair
@dataclass
class PairNumbers:
    """Test numbers of the reference AE and VAE after one budget (per pixel)."""

    ae_mse: float
    vae_mean_mse: float     # the VAE decoding the posterior mean
    vae_sample_mse: float   # ... decoding one z ~ q(z|x), as in training
    vae_kl: float           # nats per image
    vae_kl_cost: float      # kl_weight * KL, its share of the objective
    vae_loss: float         # the objective: sample MSE + kl_weight * KL
    vae_active: int
    ae_psnr: float
    vae_psnr: float         # of the mean-code reconstruction


def pair_numbers(ae: Run, vae: Run, x: torch.Tensor) -> PairNumbers:
    """:class:`PairNumbers` of one AE/VAE pair on the test digits ``x``
    (computed once per pair and test set, then read from the cache)."""
    def vae_test_numbers():
        mu, _ = inference.encode(vae.model, x)
        return {"mean_mse": metrics.reconstruction_mse(vae.model, x),
                "active": metrics.active_units(mu, ACTIVE_THRESHOLD)}
    v = cache.cached_evaluation(vae, "pair-numbers", vae_test_numbers, inputs=[x])
    t, ae_mse = vae.metrics["test"], ae.metrics["test"]["mse"]
    return PairNumbers(
        ae_mse=ae_mse, vae_mean_mse=v["mean_mse"], vae_sample_mse=t["mse"], vae_kl=t["kl"],
        vae_kl_cost=vae.config.kl_weight * t["kl"], vae_loss=t["loss"],
        vae_active=v["active"], ae_psnr=metrics.psnr(ae_mse), vae_psnr=metrics.psnr(v["mean_mse"]))


@dataclass
class ReferencePair:
    """The reference pair at both budgets, and the long budget's AE -> VAE
    reconstruction gap in two measured steps: AE -> VAE decoding the mean
    (``gap_mean``), then -> VAE decoding a sample (``gap_sample``). The steps
    add up to the whole gap; they are differences between measurements, not
    the effects of separate causes (both steps involve both additions)."""

    short: PairNumbers
    long: PairNumbers
    ratio_mean: float     # VAE (mean code) MSE / AE MSE, long budget
    ratio_sample: float   # VAE (sampled code) MSE / AE MSE
    gap_mean: float       # VAE mean-code MSE - AE MSE
    gap_sample: float     # VAE sampled-code MSE - VAE mean-code MSE
    share_mean: float     # gap_mean / (gap_mean + gap_sample)
    share_sample: float
    width: PosteriorWidth  # of the long-budget VAE on the test digits
    separation: Separation  # ... and how far apart its posterior means lie, in sigmas
    overlap: CodeOverlap    # ... and how far, and how likely, in each digit's own sigmas
    edge_ae: float         # edge energy of the AE's test reconstructions / the originals'
    edge_vae: float        # ... of the VAE's (mean code)
    vae_above_every_epoch: bool  # the VAE's training MSE above the AE's in every epoch

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``abl_<name>``): ``short_*`` and
        ``long_*`` of :class:`PairNumbers`, the gap, its steps, the edge
        energies, the posterior width of the long-budget VAE and the
        separation of its posterior means (``sep_rms``, ``sep_nearest``), and
        their overlap (``sep_nearest_own``, ``others_weight``, ``others_most``)."""
        out = {f"{budget}_{name}": value for budget in ("short", "long")
               for name, value in vars(getattr(self, budget)).items()}
        out |= {name: getattr(self, name) for name in (
            "ratio_mean", "ratio_sample", "gap_mean", "gap_sample", "share_mean",
            "share_sample", "edge_ae", "edge_vae")}
        out["long_vae_kl_per_unit"] = self.long.vae_kl / REF_Z  # nats per image and unit
        return out | {"sigma_active": self.width.sigma, "spread_active": self.width.spread,
                      # the s.d. of the posterior means as a root mean square over all
                      # REF_Z units: sep_rms = sqrt(2 REF_Z) * spread_rms / sigma_active
                      "spread_rms": self.separation.rms * self.width.sigma / math.sqrt(2 * REF_Z),
                      "width_ratio": self.width.sigma / self.width.spread,
                      "sep_rms": self.separation.rms, "sep_nearest": self.separation.nearest,
                      "sep_nearest_own": self.overlap.nearest_own,
                      "others_weight": self.overlap.others_weight,
                      "others_most": self.overlap.others_most,
                      "vae_above_every_epoch": int(self.vae_above_every_epoch)}


def reference_pair(runs: AblationRuns, x: torch.Tensor) -> ReferencePair:
    """The reference AE/VAE pair on the test digits ``x``."""
    short = pair_numbers(runs.short["ae"], runs.short["vae"], x)
    long = pair_numbers(runs.long["ae"], runs.long["vae"], x)
    gap_mean, gap_sample = long.vae_mean_mse - long.ae_mse, long.vae_sample_mse - long.vae_mean_mse
    total = long.vae_sample_mse - long.ae_mse
    ae, vae = runs.long["ae"], runs.long["vae"]

    def widths_and_edges():
        edge, (mu, logvar) = metrics.edge_energy(x), inference.encode(vae.model, x)
        return {"width": vars(posterior_width(mu, logvar)),
                "separation": vars(separation(mu, logvar)),
                "edge_ae": metrics.edge_energy(inference.reconstruct(ae.model, x)) / edge,
                "edge_vae": metrics.edge_energy(inference.reconstruct(vae.model, x)) / edge}
    stored = cache.cached_evaluation(vae, "width-and-edges", widths_and_edges, also=[ae],
                                     inputs=[x])

    def overlap():  # seconds: one encoding and two matrix products
        return vars(code_overlap(*inference.encode(vae.model, x)))
    overlapping = cache.cached_evaluation(vae, "code-overlap", overlap, inputs=[x])
    return ReferencePair(
        short, long, ratio_mean=long.vae_mean_mse / long.ae_mse,
        ratio_sample=long.vae_sample_mse / long.ae_mse, gap_mean=gap_mean,
        gap_sample=gap_sample, share_mean=gap_mean / total, share_sample=gap_sample / total,
        width=PosteriorWidth(**stored["width"]),
        separation=Separation(**stored["separation"]),
        overlap=CodeOverlap(**{k: float(v) for k, v in overlapping.items()}),
        edge_ae=float(stored["edge_ae"]),
        edge_vae=float(stored["edge_vae"]),
        vae_above_every_epoch=all(v["mse"] > a["mse"] for a, v in
                                  zip(ae.metrics["history"], vae.metrics["history"])))


def reconstruction_rows(runs: AblationRuns, x: torch.Tensor,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """``x`` and its reconstructions by the long-budget AE and VAE (the VAE
    decoding the posterior mean, and one sample of q(z|x)), as figure rows."""
    vae = runs.long["vae"].model
    mu, logvar = inference.encode(vae, x)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(seed))
    return {"original": x, "AE": inference.reconstruct(runs.long["ae"].model, x),
            "VAE, mean of q": inference.reconstruct(vae, x),
            "VAE, sampled z": inference.apply_in_batches(vae, vae.decode, z)}


# ------------------------------------------------------------- sample scores
@dataclass
class SampleScores:
    """A digit classifier's judgement of a set of images (see
    :func:`autoencoders.metrics.classifier_scores`) and their Fréchet
    distance to the test digits in its features."""

    confidence: float
    entropy: float
    class_entropy: float
    classifier_score: float
    fd: float
    images: torch.Tensor | None = field(default=None, repr=False)


@dataclass
class SampleScorer:
    """Scores decoded prior draws with the digit classifier of the VAE
    chapter against the test digits' features."""

    classifier: torch.nn.Module
    real_features: torch.Tensor
    n_samples: int = N_SAMPLES

    def score(self, images: torch.Tensor) -> SampleScores:
        """:class:`SampleScores` of ``images``."""
        logits, features = metrics.classifier_outputs(self.classifier, images)
        return SampleScores(**metrics.classifier_scores(logits),
                            fd=metrics.feature_frechet_distance(features, self.real_features),
                            images=images)

    def __call__(self, model: torch.nn.Module, latent_dim: int, **gaussian) -> SampleScores:
        """Scores of ``n_samples`` images decoded from z ~ N(0, I) (or the
        Gaussian ``mean``, ``cov``), the same draws for every model."""
        return self.score(inference.prior_samples(model, self.n_samples, latent_dim, seed=1,
                                                  **gaussian))


def sample_scorer(x_test: torch.Tensor, n_samples: int = N_SAMPLES,
                  classifier: torch.nn.Module | None = None) -> SampleScorer:
    """The scorer for samples against the test digits ``x_test``, with the
    digit classifier trained on real digits (default: the cached
    ``classifier-real`` of the current profile)."""
    if classifier is not None:
        return SampleScorer(classifier, metrics.classifier_outputs(classifier, x_test)[1], n_samples)
    run = get_or_train("classifier-real")

    def test_features():  # a second or two: the classifier over every test digit
        return {"features": metrics.classifier_outputs(run.model, x_test)[1]}
    stored = cache.cached_evaluation(run, "test-features", test_features, inputs=[x_test])
    return SampleScorer(run.model, stored["features"], n_samples)


# ------------------------------------------------------------------- the grid
@dataclass
class GridCell:
    """One model of the grid: test MSE (mean code), KL (nats per image),
    active units and the Fréchet distance of its samples (NaN for what an AE
    does not have)."""

    mse: float
    kl: float
    active: float
    fd: float
    mean_output: float  # mean pixel of the test reconstructions (an AE stuck at black: 0)
    spread: float       # their s.d. across test digits per pixel (0: one output for all)


@dataclass
class GridStudy:
    """The latent-size x KL-weight grid (cells keyed (latent size, weight),
    weight 0 for the AE) and what the chapter reads off it."""

    cells: dict[tuple[int, float], GridCell]
    latents: tuple[int, ...]
    columns: tuple[float, ...]      # 0 (the AE), then the KL weights
    big_w: float                    # the largest KL weight
    collapse_units: int             # the most active units any VAE has at big_w
    kl_big_w_max: float             # the most nats any VAE carries at big_w
    mid_w: float
    active_512: int                 # active units of the 512-number VAE at mid_w
    kl_per_unit_512: float          # its nats per image per unit
    mean_image_mse: float           # test MSE of always predicting the mean training image
    black_mse: float                # test MSE of an all-black image
    pixel_mean: float               # mean pixel of the test digits
    ae_mean_output: dict[int, float]  # mean output pixel of each AE (0: stuck at black)
    best: tuple[int, float]         # the VAE with the best samples
    best_fd: float
    prior_fd: dict[tuple[int, float], float] = field(default_factory=dict)
    # ... each VAE's aggregate codes (one z ~ q(z|x) per test digit) against
    # N(0, I): the Fréchet distance of a Gaussian fitted to them, per unit
    ae2_history: list[float] = field(default_factory=list)  # training MSE per epoch, 2-number AE

    BINDS = 1.5  # a code length "binds" when its error is this many times the 128-number code's

    def binding(self, w: float) -> list[int]:
        """The code lengths at which the VAEs of weight ``w`` reconstruct more
        than :attr:`BINDS` times worse than the 128-number one."""
        return [d for d in self.latents
                if self.cells[d, w].mse > self.BINDS * self.cells[REF_Z, w].mse]

    def vae_beats_ae(self, margin: float = 0.0) -> list[tuple[int, float]]:
        """The VAEs that reconstruct better (mean code) than the AE of their
        code length by more than ``margin`` of the AE's error, among the AEs
        that did not get stuck at black."""
        return [(d, w) for d, w, vae, ae in self._vae_ae_pairs()
                if vae < (1 - margin) * ae]

    def vae_matches_ae(self, margin: float = SAME_MSE) -> list[tuple[int, float]]:
        """The VAEs whose error (mean code) is within ``margin`` of the AE's
        of their code length, either way, among the AEs that did not get
        stuck at black."""
        return [(d, w) for d, w, vae, ae in self._vae_ae_pairs()
                if abs(vae - ae) <= margin * ae]

    def _vae_ae_pairs(self) -> list[tuple[int, float, float, float]]:
        """(code length, KL weight, VAE test MSE, AE test MSE) for every VAE
        whose code length has an AE that did not get stuck at black."""
        return [(d, w, cell.mse, self.cells[d, 0.0].mse) for (d, w), cell in self.cells.items()
                if w > 0 and (d, 0.0) in self.cells and self.ae_mean_output[d] > 0.01]

    @property
    def ae2_mean_output(self) -> float:
        """Mean output pixel of the 2-number AE."""
        return self.ae_mean_output[2]

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``abl_<name>``): every cell as
        ``grid_<key>_<i><j>`` (row i: latent size, column j: the AE, then the
        weights; what an AE lacks is left out), and what the text reads off."""
        out = {}
        for key in ("mse", "kl", "active", "fd", "spread", "mean_output", "prior_fd"):
            for (i, j), value in np.ndenumerate(self.table(key)):
                if value == value:  # not NaN: the AE has no KL and no active units
                    out[f"grid_{key}_{i}{j}"] = int(value) if key == "active" else float(value)
        big = self.columns.index(self.big_w)
        collapsed, outputs = self.table("mse")[:, big], self.table("mean_output")[:, big]
        # the collapsed models more than 10% worse than the mean image (none: all of them)
        worse = collapsed > 1.1 * self.mean_image_mse
        over = worse if worse.any() else np.ones_like(worse)
        out |= {name: getattr(self, name) for name in (
            "big_w", "collapse_units", "kl_big_w_max", "mid_w", "active_512", "kl_per_unit_512",
            "mean_image_mse", "black_mse", "pixel_mean", "ae2_mean_output", "best_fd")}
        out |= {f"ae_out_{d}": v for d, v in self.ae_mean_output.items()}
        for j, w in enumerate(self.columns):
            if w > 0:  # the range of each weight's prior fit over the code lengths
                fits = [self.prior_fd[d, w] for d in self.latents if (d, w) in self.prior_fd]
                if fits:
                    out[f"prior_fd_min_{j}"], out[f"prior_fd_max_{j}"] = min(fits), max(fits)
        small = min(w for w in self.columns if w > 0)
        ratios = [self.prior_fd[d, small] / self.prior_fd[d, self.mid_w] for d in self.latents
                  if (d, small) in self.prior_fd and (d, self.mid_w) in self.prior_fd]
        if ratios:  # at each length, the smallest weight's prior fit over the middle one's
            out["prior_fd_ratio_min"], out["prior_fd_ratio_max"] = min(ratios), max(ratios)
        later = self.ae2_history[1:] or self.ae2_history
        return out | {"best_fd_d": self.best[0], "best_fd_w": self.best[1],
                      "collapsed_mse_min": float(collapsed.min()),
                      "collapsed_mse_max": float(collapsed.max()),
                      "collapsed_over_mse_min": float(collapsed[over].min()),
                      "collapsed_out_min": float(outputs[over].min()),
                      "collapsed_out_max": float(outputs[over].max()),
                      "collapsed_over_mean": int(worse.sum()),
                      "collapsed_max_of_black": float(collapsed.max()) / self.black_mse,
                      "collapsed_spread_max": float(self.table("spread")[:, big].max()),
                      "ae2_train_first": self.ae2_history[0] if self.ae2_history else float("nan"),
                      "ae2_train_last": self.ae2_history[-1] if self.ae2_history else float("nan"),
                      "ae2_train_change": max(later) - min(later) if later else float("nan")}

    def table(self, key: str) -> np.ndarray:
        """One number per cell (rows: latent sizes; columns: AE, then weights);
        ``prior_fd`` from :attr:`prior_fd`, the rest from the cells."""
        def value(d, w):
            if key == "prior_fd":
                return self.prior_fd.get((d, w), np.nan)
            return getattr(self.cells[d, w], key) if (d, w) in self.cells else np.nan
        return np.array([[value(d, w) for w in self.columns] for d in self.latents])


def grid_cell(run: Run, x_test: torch.Tensor, scorer: SampleScorer) -> GridCell:
    """One grid model on the test digits ``x_test`` (the test split of its
    profile), computed once per trained model and then read from beside it
    in the cache. Samples: z ~ N(0, I) of the model's code length."""
    def grid_cell_numbers():
        vae = run.config.model == "vae"
        mu = inference.encode(run.model, x_test)[0] if vae else None
        recon = metrics.reconstruction_scores(run.model, x_test)  # one pass for both
        return {"mse": recon["mse"] if vae else run.metrics["test"]["mse"],
                "kl": run.metrics["test"]["kl"] if vae else float("nan"),
                "active": metrics.active_units(mu, ACTIVE_THRESHOLD) if vae else float("nan"),
                "fd": scorer(run.model, run.config.latent_dim).fd,
                "mean_output": recon["mean_output"], "spread": recon["output_spread"]}
    # the scorer's features fingerprint both the test images and the classifier
    name = f"grid-cell-{cache.fingerprint(scorer.real_features)}-{scorer.n_samples}"
    return GridCell(**cache.cached_evaluation(run, name, grid_cell_numbers))


def prior_fit(run: Run, x_test: torch.Tensor) -> float:
    """The Fréchet distance per unit between a Gaussian fitted to a VAE's
    aggregate codes on ``x_test`` (one z ~ q(z|x) each) and N(0, I),
    computed once per model and test set."""
    def prior_fit_numbers():
        return {"fd": code_cloud(aggregate_codes(run.model, x_test)).fd}
    return float(cache.cached_evaluation(run, "prior-fit", prior_fit_numbers,
                                         inputs=[x_test])["fd"])


def grid_study(runs: AblationRuns, train: ImageData, x_test: torch.Tensor,
               scorer: SampleScorer) -> GridStudy:
    """Every grid model on the test digits ``x_test``."""
    cells = {(d, w): grid_cell(run, x_test, scorer) for (d, w), run in runs.grid.items()}
    prior_fd = {key: prior_fit(run, x_test) for key, run in runs.grid.items()}
    cells.update({(d, 0.0): grid_cell(run, x_test, scorer) for d, run in runs.aes.items()})
    big_w, mid_w = max(ABLATION_KL_WEIGHTS), ABLATION_KL_WEIGHTS[1]
    vaes = [k for k in cells if k[1] > 0]
    best = min(vaes, key=lambda k: cells[k].fd)
    mean_image = train.floats().mean(dim=0, keepdim=True).expand_as(x_test)
    return GridStudy(
        cells, ABLATION_LATENTS, (0.0, *ABLATION_KL_WEIGHTS), big_w,
        collapse_units=max(cells[d, big_w].active for d in ABLATION_LATENTS),
        kl_big_w_max=max(cells[d, big_w].kl for d in ABLATION_LATENTS), mid_w=mid_w,
        active_512=cells[512, mid_w].active, kl_per_unit_512=cells[512, mid_w].kl / 512,
        mean_image_mse=float(losses.mean_squared_error(mean_image, x_test).mean()),
        black_mse=float(losses.mean_squared_error(torch.zeros_like(x_test), x_test).mean()),
        pixel_mean=float(x_test.mean()),
        ae_mean_output={d: cells[d, 0.0].mean_output for d in runs.aes},
        best=best, best_fd=cells[best].fd, prior_fd=prior_fd,
        ae2_history=[h["mse"] for h in runs.aes[2].metrics["history"]] if 2 in runs.aes else [])


# ------------------------------------------------------------------- layout
@dataclass
class CodeCloud:
    """Where a cloud of codes lies: distance of its mean from the origin,
    root mean variance per unit, and the Fréchet distance between a Gaussian
    fitted to it and N(0, I), per unit."""

    centre: float
    sd: float
    fd: float
    units: int                         # k, the code length

    @property
    def second_moment(self) -> float:
        """The codes' mean square per unit, |mean|^2 / k + sd^2: 1 for N(0, I)."""
        return self.centre ** 2 / self.units + self.sd ** 2


def code_cloud(codes: torch.Tensor) -> CodeCloud:
    """:class:`CodeCloud` of ``codes`` (one row per input)."""
    codes = codes.double()
    k = codes.shape[1]
    mean, cov = metrics.gaussian_statistics(codes)
    return CodeCloud(centre=float(np.linalg.norm(mean)), sd=float(np.sqrt(np.trace(cov) / k)),
                     fd=metrics.frechet_distance(mean, cov, np.zeros(k), np.eye(k)) / k, units=k)


def aggregate_codes(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One z ~ q(z|x) per input: a sample of the aggregate posterior, the
    codes the decoder is trained on."""
    mu, logvar = inference.encode(model, x)
    return reparameterize(mu, logvar, generator=torch.Generator().manual_seed(seed))


@dataclass
class LayoutStudy:
    """The latent layout of the 2-number pair and of the reference pair."""

    lr: float                          # learning rate of the 2-number pair
    epochs: int                        # ... and its epochs
    kl_weight: float                   # KL weight of the 2-number VAE
    mse_ae: float                      # test MSE of the 2-number AE
    mse_vae: float                     # ... and VAE (posterior mean)
    ae_mean_output: float              # mean output pixel of the 2-number AE
    codes_2d: dict[str, np.ndarray] = field(repr=False)    # the 2-number codes, AE and VAE
    runs_2d: dict[str, Run] = field(repr=False)            # their models, by the same titles
    projections: dict[str, np.ndarray] = field(repr=False)  # PCA / t-SNE of the reference pair
    clouds: dict[str, CodeCloud] = field(default_factory=dict)  # ae2, vae2, ae, vae
    widths: dict[str, PosteriorWidth] = field(default_factory=dict)  # vae2, vae
    shares: dict[str, UnitShares] = field(default_factory=dict)      # vae2, vae: unit by unit
    n_tsne: int = N_TSNE
    tsne_pick: torch.Tensor | None = None  # the test digits of the t-SNE views
    # "ae", "vae" (the reference pair; the VAE's posterior means) -> % of test
    # digits whose nearest other test digit in code space has their label
    # (nearest_same_label); empty when layout_study was given no labels
    same_label: dict[str, float] = field(default_factory=dict)

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``abl_<name>``): ``layout_*`` for the
        2-number pair and each code cloud (``layout_<model>_<field>``, with
        its second moment per unit), ``width_<model>_*`` for each VAE's
        posterior width, and ``width_<model>_unit_*`` for how it splits unit
        by unit."""
        out = {"layout_lr": self.lr, "layout_epochs": self.epochs,
               "layout_mse_ae": self.mse_ae, "layout_mse_vae": self.mse_vae,
               "layout_kl": self.kl_weight, "n_tsne": self.n_tsne,
               "layout_ae_mean_output": self.ae_mean_output}
        for model in ("ae", "vae"):  # the spread along the first principal component
            first = self.projections[f"{model.upper()}: PCA"][:, 0]
            out[f"layout_{model}_pca_sd"] = float(np.std(first))
        for model, cloud in self.clouds.items():
            out |= {f"layout_{model}_{name}": value for name, value in vars(cloud).items()}
            out[f"layout_{model}_moment"] = cloud.second_moment
            # the second moment's two parts: the variance and the squared centre, per unit
            out[f"layout_{model}_var"] = cloud.sd ** 2
            out[f"layout_{model}_centre_sq_per_unit"] = cloud.centre ** 2 / cloud.units
            out[f"layout_{model}_centre_per_unit"] = cloud.centre / math.sqrt(cloud.units)
        for model, width in self.widths.items():
            out |= {f"width_{model}_{name}": value for name, value in vars(width).items()}
            out[f"width_{model}_ratio"] = width.sigma / width.spread
            # a lower bound on the share of the aggregate variance that is the
            # posteriors' own width: mean sigma^2 >= (mean sigma)^2
            out[f"width_{model}_own_share_min"] = width.sigma ** 2 / width.aggregate_var
            # ... and on the share that is the spread of the posterior means
            out[f"width_{model}_means_share_min"] = width.spread ** 2 / width.aggregate_var
        for model, share in self.shares.items():
            out |= {f"width_{model}_unit_{name}": value for name, value in vars(share).items()}
        out |= {f"layout_{model}_same_label": v for model, v in self.same_label.items()}
        return out

    def labels(self, test_labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each projection's labels: every test digit's, the t-SNE views' pick."""
        return {name: test_labels[self.tsne_pick] if "t-SNE" in name else test_labels
                for name in self.projections}


def layout_study(runs: AblationRuns, x_test: torch.Tensor, n_tsne: int = N_TSNE,
                 labels: torch.Tensor | None = None) -> LayoutStudy:
    """Codes of the test digits: the 2-number codes themselves, PCA and
    t-SNE views of the reference pair's, where each cloud lies, (for the
    VAEs) each posterior's width against the aggregate posterior's, and,
    given the test digits' ``labels``, how well the reference pair's codes
    group them by class (:func:`nearest_same_label`). The
    2-number models' titles name the models (the live figure's fallback
    shows their decoders under the same titles); the VAE's codes are its
    posterior means."""
    ae2, vae2 = runs.layout["ae"], runs.layout["vae"]
    titles = ("AE, 2-number code", f"VAE, 2-number code (β = {vae2.config.kl_weight:g})")
    ae, vae = runs.long["ae"].model, runs.long["vae"].model

    def codes_2d():  # seconds: both 2-number models over every test digit
        mu, logvar = inference.encode(vae2.model, x_test)
        return {"z_ae": inference.encode(ae2.model, x_test), "mu": mu, "logvar": logvar,
                "vae_cloud": vars(code_cloud(aggregate_codes(vae2.model, x_test))),
                "mse_vae": metrics.reconstruction_mse(vae2.model, x_test),
                "ae_mean_output": float(inference.reconstruct(ae2.model, x_test).mean())}
    two = cache.cached_evaluation(vae2, "layout-2d", codes_2d, also=[ae2], inputs=[x_test])
    z_ae2, mu2, logvar2 = two["z_ae"], two["mu"], two["logvar"]
    n = min(n_tsne, len(x_test))

    pick = fixed_pick(len(x_test), n)  # t-SNE's test digits: a fixed random pick

    def layout_projections():  # t-SNE takes most of the chapter's time: once per model
        z_ae, (mu, logvar) = inference.encode(ae, x_test), inference.encode(vae, x_test)
        return {"projections": {"AE: PCA": project_2d(z_ae, "pca"),
                                "VAE: PCA": project_2d(mu, "pca"),
                                "AE: t-SNE": project_2d(z_ae[pick], "tsne"),
                                "VAE: t-SNE": project_2d(mu[pick], "tsne")},
                "ae": vars(code_cloud(z_ae)), "vae": vars(code_cloud(aggregate_codes(vae, x_test))),
                "width": vars(posterior_width(mu, logvar))}
    stored = cache.cached_evaluation(runs.long["vae"], f"layout-{n}", layout_projections,
                                     also=[runs.long["ae"]], inputs=[x_test])
    projections = {k: np.asarray(v) for k, v in stored["projections"].items()}
    same_label = {}
    if labels is not None:
        def neighbour_labels():  # seconds: two encodings and one distance matrix each
            z_ae, (mu, _) = inference.encode(ae, x_test), inference.encode(vae, x_test)
            return {"ae": nearest_same_label(z_ae, labels),
                    "vae": nearest_same_label(mu, labels)}
        same_label = {k: float(v) for k, v in cache.cached_evaluation(
            runs.long["vae"], "layout-neighbours", neighbour_labels, also=[runs.long["ae"]],
            inputs=[x_test, labels]).items()}
    def shares_of_units():  # seconds: one encoding
        return vars(unit_shares(*inference.encode(vae, x_test)))
    shares = {"vae2": unit_shares(mu2, logvar2), "vae": UnitShares(**{
        k: (int if k == "means_led" else float)(v) for k, v in cache.cached_evaluation(
            runs.long["vae"], "unit-shares", shares_of_units, inputs=[x_test]).items()})}
    clouds = {"ae2": code_cloud(z_ae2), "vae2": CodeCloud(**two["vae_cloud"]),
              "ae": CodeCloud(**stored["ae"]), "vae": CodeCloud(**stored["vae"])}
    return LayoutStudy(
        lr=ae2.config.lr, epochs=ae2.config.epochs, kl_weight=vae2.config.kl_weight,
        mse_ae=ae2.metrics["test"]["mse"],
        mse_vae=float(two["mse_vae"]), ae_mean_output=float(two["ae_mean_output"]),
        codes_2d=dict(zip(titles, (z_ae2.numpy(), mu2.numpy()))),
        runs_2d=dict(zip(titles, (ae2, vae2))),
        projections=projections, clouds=clouds,
        widths={"vae2": posterior_width(mu2, logvar2), "vae": PosteriorWidth(**stored["width"])},
        shares=shares, n_tsne=n, tsne_pick=pick, same_label=same_label)


# ---------------------------------------------------------------- denoising
@dataclass
class DenoisingStudy:
    """Test MSE against the clean digits at each noise weight (0 first), of
    ``"input"`` (the noisy input itself), ``"ae"``/``"vae"`` (the model
    trained at that weight; at 0 the noise-free model) and
    ``"ae-clean"``/``"vae-clean"`` (the noise-free model on the same noisy
    inputs), keyed (name, weight); the same baseline for every weight, the
    mean training image; and how often the digit classifier reads the
    input, the AE's and the VAE's output as the input's digit."""

    noise: tuple[float, ...]
    mse: dict[tuple[str, float], float]
    mean_image_mse: float      # test MSE of predicting the mean training image (NaN: not given)
    read_as_digit: dict[tuple[str, float], float]  # ("input" | "ae" | "vae", weight) ->
    # share of the test digits the classifier assigns the clean digit's label (empty: no labels)
    kl0: float                 # nats per image of the noise-free VAE
    klmax: float               # ... of the VAE trained at the largest weight
    shift: dict[str, float]    # how far the largest weight's noise moves the noise-free
    # models' codes (rms, test digits): "ae"/"vae" over the codes' spread,
    # "vae-sigma" over the VAE's own sampling noise (see code_shift)
    rows: dict[str, torch.Tensor] = field(repr=False)  # the figure's digits

    @property
    def wmax(self) -> float:
        return self.noise[-1]

    def rel(self, model: str, w: float) -> float:
        """The denoiser's MSE at ``w`` over the noise-free model's on clean digits."""
        return self.mse[model, w] / self.mse[model, 0.0]

    def add(self, model: str, w: float) -> float:
        """How much the denoiser's MSE at ``w`` exceeds the noise-free model's on clean digits."""
        return self.mse[model, w] - self.mse[model, 0.0]

    def vae_adds_more(self) -> list[float]:
        """The noise weights at which the VAE's error grew by more than the
        AE's, in absolute terms."""
        return [w for w in self.noise[1:] if self.add("vae", w) > self.add("ae", w)]

    def gain(self, model: str, w: float) -> float:
        """How many times worse the noise-free model is than the denoiser at ``w``."""
        return self.mse[model + "-clean", w] / self.mse[model, w]

    def vae_holds_up_better(self) -> list[float]:
        """The noise weights at which the VAE's error grew by a smaller factor than the AE's."""
        return [w for w in self.noise[1:] if self.rel("vae", w) < self.rel("ae", w)]

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``abl_<name>``): per noise weight i
        (0: none) ``noise<i>``, ``den_<key>_<i>`` for the inputs and each
        model (``ae_clean``: the noise-free AE on the noisy inputs), its PSNR
        and its error relative to the noise-free model's on clean digits."""
        out = {"den_wmax": self.wmax, "den_gain_ae": self.gain("ae", self.wmax),
               "den_gain_vae": self.gain("vae", self.wmax), "den_kl0": self.kl0,
               "den_klmax": self.klmax, "den_levels": len(self.noise) - 1,
               "den_vae_wins": len(self.vae_holds_up_better()),
               "den_vae_adds_more": len(self.vae_adds_more()),
               "den_clean_ratio": self.mse["vae", 0.0] / self.mse["ae", 0.0],
               "den_shift_ae": self.shift["ae"], "den_shift_vae": self.shift["vae"],
               "den_shift_vae_sigma": self.shift["vae-sigma"],
               # the VAE's increase at wmax on the AE's noise-free error: the factor
               # it would be without the VAE's higher baseline
               "den_vae_rel_on_ae_base": 1 + self.add("vae", self.wmax) / self.mse["ae", 0.0],
               # how much the noise-free models' errors grow on the noisiest inputs
               "den_ae_clean_add": self.mse["ae-clean", self.wmax] - self.mse["ae", 0.0],
               "den_vae_clean_add": self.mse["vae-clean", self.wmax] - self.mse["vae", 0.0],
               "den_ae_closer": sum(self.mse["ae", w] < self.mse["vae", w] for w in self.noise[1:]),
               "den_mean_image": self.mean_image_mse}
        for i, w in enumerate(self.noise):
            out[f"noise{i}"] = w
            for key in ("input", "ae", "vae"):
                if (key, w) in self.read_as_digit:  # empty when no labels were given
                    out[f"den_read_{key}_{i}"] = self.read_as_digit[key, w]
            for key in ("input", "ae", "vae", "ae-clean", "vae-clean"):
                out[f"den_{key.replace('-', '_')}_{i}"] = self.mse[key, w]
            for m in ("ae", "vae"):
                out[f"den_{m}_{i}_psnr"] = metrics.psnr(self.mse[m, w])
                out[f"den_{m}_{i}_rel"] = self.rel(m, w)
                out[f"den_{m}_{i}_add"] = self.add(m, w)
        return out


def denoising_study(runs: AblationRuns, x_test: torch.Tensor, digits: list[int],
                    seed: int = 7, *, mean_image_mse: float = math.nan,
                    labels: torch.Tensor | None = None,
                    classifier: Run | None = None) -> DenoisingStudy:
    """The denoisers and their noise-free baselines on the test digits, each
    corrupted with its noise weight (one fixed draw per weight), beside
    ``mean_image_mse``, the test error of the mean training image. Given the
    digits' ``labels``, the digit classifier ``classifier`` (default: the
    cached ``classifier-real``) reads the inputs and the outputs."""
    noise = (0.0, *ABLATION_NOISE)
    noisy = {w: corrupt(x_test, w, generator=torch.Generator().manual_seed(seed)) for w in noise}
    run_at = {(m, w): runs.short[m] if w == 0 else runs.denoisers[m, w]
              for m in ("ae", "vae") for w in noise}
    model_at = {key: run.model for key, run in run_at.items()}

    def denoising_errors():  # once per set of models and test digits
        errors = {}
        for w in noise:
            errors["input", w] = float(losses.mean_squared_error(noisy[w], x_test).mean())
            for m in ("ae", "vae"):
                errors[m, w] = metrics.reconstruction_mse(model_at[m, w], noisy[w], x_test)
                errors[m + "-clean", w] = metrics.reconstruction_mse(runs.short[m].model,
                                                                     noisy[w], x_test)
        return errors
    errors = cache.cached_evaluation(runs.short["vae"], f"denoising-s{seed}", denoising_errors,
                                     also=list(run_at.values()), inputs=[x_test])
    wmax = noise[-1]

    def digit_reads():  # seconds: one reconstruction and classification per model and weight
        reads = {}
        for i, w in enumerate(noise):
            shown = {"input": noisy[w], **{m: inference.reconstruct(model_at[m, w], noisy[w])
                                           for m in ("ae", "vae")}}
            for key, images in shown.items():
                logits, _ = metrics.classifier_outputs(classifier.model, images)
                reads[f"{key}_{i}"] = float((logits.argmax(dim=1) == labels).double().mean())
        return reads
    reads = {}
    if labels is not None:
        classifier = classifier if classifier is not None else get_or_train("classifier-real")
        reads = cache.cached_evaluation(runs.short["vae"], f"denoising-reads-s{seed}",
                                        digit_reads, also=[*run_at.values(), classifier],
                                        inputs=[x_test, labels])

    def code_shifts():  # seconds: two encodings per noise-free model
        return code_shift(runs.short["ae"].model, runs.short["vae"].model, x_test, noisy[wmax])
    shift = cache.cached_evaluation(runs.short["vae"], f"denoising-shift-s{seed}", code_shifts,
                                    also=[runs.short["ae"]], inputs=[x_test, noisy[wmax]])
    rows = {"clean": x_test[digits]}
    for w in ABLATION_NOISE:
        rows[f"w = {w:g}: noisy"] = noisy[w][digits]
        for m in ("ae", "vae"):
            rows[f"w = {w:g}: {m.upper()}"] = inference.reconstruct(model_at[m, w],
                                                                   noisy[w][digits])
    return DenoisingStudy(noise, errors, mean_image_mse,
                          {(key, w): float(reads[f"{key}_{i}"]) for i, w in enumerate(noise)
                           for key in ("input", "ae", "vae") if f"{key}_{i}" in reads},
                          kl0=runs.short["vae"].metrics["test"]["kl"],
                          klmax=runs.denoisers["vae", wmax].metrics["test"]["kl"],
                          shift={k: float(v) for k, v in shift.items()}, rows=rows)


def code_shift(ae: torch.nn.Module, vae: torch.nn.Module, x: torch.Tensor,
               noisy: torch.Tensor) -> dict[str, float]:
    """How far corrupting the inputs ``x`` into ``noisy`` moves each model's
    code (the VAE's: its posterior mean), as a root mean square over the
    inputs: ``"ae"``/``"vae"``, sqrt(E|e(noisy) - e(x)|^2 / E|e(x) - mean|^2),
    against the spread of the clean codes; ``"vae-sigma"``,
    sqrt(E|mu(noisy) - mu(x)|^2 / E sum_u sigma_u^2(x)), against the
    sampling noise the VAE's decoder is trained with."""
    def moved(clean, corrupted):
        return float((corrupted - clean).double().pow(2).sum(dim=1).mean())

    z, z_noisy = inference.encode(ae, x), inference.encode(ae, noisy)
    (mu, logvar), (mu_noisy, _) = inference.encode(vae, x), inference.encode(vae, noisy)
    spread = lambda c: float((c - c.mean(dim=0)).double().pow(2).sum(dim=1).mean())  # noqa: E731
    noise = float(logvar.double().exp().sum(dim=1).mean())  # E_x sum_u sigma_u^2(x)
    return {"ae": math.sqrt(moved(z, z_noisy) / spread(z)),
            "vae": math.sqrt(moved(mu, mu_noisy) / spread(mu)),
            "vae-sigma": math.sqrt(moved(mu, mu_noisy) / noise)}


# ------------------------------------------------------------ sample quality
@dataclass
class SampleQuality:
    """Decoded prior draws of the reference pair at both budgets, keyed
    (model, budget) with model ``"ae"``, ``"vae"`` or ``"ae-fit"`` (the
    long-budget AE decoding draws from a Gaussian fitted to its own training
    codes), and real training digits for scale."""

    gen: dict[tuple[str, str], SampleScores]
    real: SampleScores
    n_real: int
    feature_dim: int
    classifier_acc: float
    # per key of ``gen`` (and "real"): the images' edge energy over the real
    # training digits', and the share the classifier is sure of (top class > SURE)
    edge: dict = field(default_factory=dict)
    sure: dict = field(default_factory=dict)

    def fd(self, model: str, budget: str) -> float:
        return self.gen[model, budget].fd

    def fd_ratio(self, budget: str) -> float:
        """The AE's Fréchet distance over the VAE's."""
        return self.fd("ae", budget) / self.fd("vae", budget)

    @property
    def fit_progress(self) -> float:
        """How far the fitted Gaussian moves the AE's Fréchet distance towards
        the VAE's: 0 no change, 1 all the way."""
        ae, fit, vae = self.fd("ae", "long"), self.fd("ae-fit", "long"), self.fd("vae", "long")
        return (ae - fit) / (ae - vae)

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``abl_<name>``):
        ``gen_<model>_<budget>_<score>`` and ``gen_real_<score>``."""
        keys = ("confidence", "entropy", "classifier_score", "fd")
        out = {f"gen_{model.replace('-', '_')}_{budget}_{key}": getattr(scores, key)
               for (model, budget), scores in self.gen.items() for key in keys}
        out |= {f"gen_real_{key}": getattr(self.real, key) for key in keys}
        def tag(key):  # ("ae-fit", "long") -> "ae_fit_long"; "real" stays
            return key if isinstance(key, str) else "_".join(key).replace("-", "_")
        for name, table in (("edge", self.edge), ("sure", self.sure)):
            out |= {f"gen_{tag(key)}_{name}": value for key, value in table.items()}
        return out | {"sure_level": SURE, "n_real": self.n_real, "feature_dim": self.feature_dim,
                      "classifier_acc": self.classifier_acc, "fit_progress": self.fit_progress,
                      "gen_fd_ratio_long": self.fd_ratio("long"),
                      "gen_fd_ratio_short": self.fd_ratio("short")}


def sample_quality(runs: AblationRuns, train: ImageData, test: ImageData,
                   scorer: SampleScorer) -> SampleQuality:
    """Score the reference pair's decoded prior draws, the fitted-Gaussian
    AE's, and real training digits (as many as the samples). Stored with
    the long-budget VAE (:func:`~autoencoders.cache.cached_evaluation`): a
    chapter run again reads the scores and the first :data:`SHOWN` images of
    each set of draws (what the samples figure shows) instead of decoding
    and scoring again."""
    def scores():  # seconds: five sets of decoded draws and the real digits, classified
        gen = {(m, budget): scorer(pair[m].model, REF_Z)
               for budget, pair in (("short", runs.short), ("long", runs.long)) for m in ("ae", "vae")}
        z_train = inference.encode(runs.long["ae"].model, train.floats())
        mean, cov = metrics.gaussian_statistics(z_train)
        gen["ae-fit", "long"] = scorer(runs.long["ae"].model, REF_Z, mean=torch.from_numpy(mean),
                                       cov=torch.from_numpy(cov) + 1e-6 * torch.eye(REF_Z))
        n_real = min(scorer.n_samples, len(train))
        real = scorer.score(train.subset(n_real).images)  # a random pick: the file is sorted by class
        real_edge = metrics.edge_energy(real.images)

        def sure(images):  # the share of images whose top class the classifier gives > SURE
            logits, _ = metrics.classifier_outputs(scorer.classifier, images)
            return float((logits.double().softmax(dim=1).max(dim=1).values > SURE).double().mean())
        edge = {key: metrics.edge_energy(s.images) / real_edge for key, s in gen.items()}
        certain = {key: sure(s.images) for key, s in gen.items()} | {"real": sure(real.images)}
        name = "|".join
        return {"gen": {name(k): vars(s) | {"images": s.images[:SHOWN]} for k, s in gen.items()},
                "real": vars(real) | {"images": None}, "n_real": n_real,
                "feature_dim": int(scorer.real_features.shape[1]),
                "classifier_acc": metrics.accuracy(scorer.classifier, test.images, test.labels),
                "edge": {name(k): v for k, v in edge.items()},
                "sure": {name(k): v for k, v in certain.items() if k != "real"},
                "sure_real": certain["real"]}

    stored = cache.cached_evaluation(
        runs.long["vae"], f"sample-quality-{cache.fingerprint(scorer.real_features)}-"
                          f"{scorer.n_samples}-{SHOWN}", scores,
        also=[runs.long["ae"], runs.short["ae"], runs.short["vae"]],
        inputs=[train.images, test.images, test.labels])
    key = lambda name: tuple(name.split("|"))  # noqa: E731  "ae-fit|long" -> ("ae-fit", "long")
    gen = {key(k): SampleScores(**v) for k, v in stored["gen"].items()}
    return SampleQuality(gen, SampleScores(**stored["real"]), int(stored["n_real"]),
                         int(stored["feature_dim"]), float(stored["classifier_acc"]),
                         edge={key(k): float(v) for k, v in stored["edge"].items()},
                         sure={key(k): float(v) for k, v in stored["sure"].items()}
                         | {"real": float(stored["sure_real"])})


# ------------------------------------------------------------------ claims
# The conditions behind the chapter's comparative sentences, each a function
# of the numbers the chapter glues (autoencoders.claims; the chapter checks
# them with check_claims, tests/test_claim_breaks.py breaks each). Grid keys
# are grid_<key>_<i><j>: row i of ABLATION_LATENTS (512, 256, 128, 16, 2),
# column j of (the AE, then ABLATION_KL_WEIGHTS: 0.01, 0.001, 0.0001).
_ROWS = range(len(ABLATION_LATENTS))
_BIG, _MID, _SMALL = 1, 2, len(ABLATION_KL_WEIGHTS)     # columns of the three weights
_K128, _K16, _K2 = (ABLATION_LATENTS.index(k) for k in (128, 16, 2))

PAIR_CLAIMS = (
    Claim("abl-pair-vae-worse", "the VAE reconstructs worse, and its training error stays "
          "above the AE's in every epoch",
          lambda n: n["ratio_mean"] > 1 and n["vae_above_every_epoch"] == 1),
    Claim("abl-pair-vae-blurrier", "the VAE's reconstructions are blurrier: they keep less of "
          "the originals' edge energy than the AE's", lambda n: n["edge_vae"] < n["edge_ae"]),
    Claim("abl-pair-neighbours-close", "in one active unit the posterior s.d. is larger than "
          "the spread of the posterior means, but over the whole code two test digits' means lie "
          "several sigma apart on average, while half the digits have another within a few "
          "sigma: the median nearest distance is under 3 sigma and under half the rms distance",
          lambda n: n["sigma_active"] > n["spread_active"] and n["sep_nearest"] < 3
          and n["sep_nearest"] < 0.5 * n["sep_rms"]),
    Claim("abl-pair-codes-shared", "measured in each digit's own posterior s.d. per unit its "
          "nearest neighbour lies farther than in the average sigma, yet at a code drawn from "
          "a digit's posterior the other test digits' posteriors take on average more than a "
          "tenth of the weight, and more than half of it for more than a tenth of the digits",
          lambda n: n["sep_nearest_own"] > n["sep_nearest"] and n["others_weight"] > 0.1
          and n["others_most"] > 0.1),
)
GRID_WEIGHT_CLAIMS = (
    Claim("abl-grid-collapsed", "at the largest weight every VAE has (nearly) collapsed: under "
          "half a nat per image, at most one active unit, and nearly one output for every digit "
          "(its reconstructions vary across digits less than a tenth as much as the 128-number "
          "AE's)", lambda n: n["kl_big_w_max"] < 0.5 and n["collapse_units"] <= 1
          and n["collapsed_spread_max"] < 0.1 * n[f"grid_spread_{_K128}0"]),
    Claim("abl-grid-weight-buys-nats", "each tenfold decrease of the weight buys more nats",
          lambda n: all(n[f"grid_kl_{i}{j + 1}"] > n[f"grid_kl_{i}{j}"]
                        for i in _ROWS for j in range(_BIG, _SMALL))),
    Claim("abl-grid-weight-buys-error", "for every code of 16 numbers or more it also buys a "
          "lower error, by more than SAME_MSE = 5%",
          lambda n: all(n[f"grid_mse_{i}{j + 1}"] < (1 - SAME_MSE) * n[f"grid_mse_{i}{j}"]
                        for i in _ROWS[:_K16 + 1] for j in range(_BIG, _SMALL))),
)
_LONG = _ROWS[:_K128 + 1]  # the rows of 512, 256 and 128 numbers
GRID_LENGTH_CLAIMS = (
    Claim("abl-grid-length-above", "at both smaller weights, codes of 512, 256 and 128 numbers "
          "carry about the same nats (within 25%), and neither longer code reconstructs more "
          "than SAME_MSE = 5% better than the 128-number one",
          lambda n: all(max(n[f"grid_kl_{i}{j}"] for i in _LONG)
                        < 1.25 * min(n[f"grid_kl_{i}{j}"] for i in _LONG)
                        and min(n[f"grid_mse_{i}{j}"] for i in _LONG)
                        >= (1 - SAME_MSE) * n[f"grid_mse_{_K128}{j}"]
                        for j in (_MID, _SMALL))),
    Claim("abl-grid-length-binds", "at both smaller weights the 2-number code binds (its error "
          "is more than GridStudy.BINDS = 1.5 times the 128-number code's) and the 256- and "
          "512-number codes do not", lambda n: all(
              n[f"grid_mse_{_K2}{j}"] > GridStudy.BINDS * n[f"grid_mse_{_K128}{j}"]
              and all(n[f"grid_mse_{i}{j}"] <= GridStudy.BINDS * n[f"grid_mse_{_K128}{j}"]
                      for i in _LONG)
              for j in (_MID, _SMALL))),
    Claim("abl-grid-length-limits-nats", "at both smaller weights the 2-number code carries "
          "under half the nats of the 128-number one", lambda n: all(
              n[f"grid_kl_{_K2}{j}"] < 0.5 * n[f"grid_kl_{_K128}{j}"] for j in (_MID, _SMALL))),
    Claim("abl-grid-ae-length", "for the AE the length binds: its error with 16 numbers is "
          "more than GridStudy.BINDS = 1.5 times its error with 128",
          lambda n: n[f"grid_mse_{_K16}0"] > GridStudy.BINDS * n[f"grid_mse_{_K128}0"]),
    Claim("abl-grid-ae-samples", "at 128 and 16 numbers (the 2-number AE outputs black) the AE's "
          "samples are worse than the best VAE's of the same length", lambda n: all(
              n[f"grid_fd_{i}0"] > min(n[f"grid_fd_{i}{j}"] for j in range(_BIG, _SMALL + 1))
              for i in (_K128, _K16))),
    Claim("abl-grid-samples-middle", "at every code length the middle weight gave samples "
          "with a smaller Fréchet distance than both the largest and the smallest",
          lambda n: all(n[f"grid_fd_{i}{_MID}"] < min(n[f"grid_fd_{i}{_BIG}"],
                                                      n[f"grid_fd_{i}{_SMALL}"]) for i in _ROWS)),
    Claim("abl-grid-small-weight-prior", "at every code length the smallest weight's aggregate "
          "codes fit N(0, I) worse than the middle weight's (a larger Fréchet distance per unit)",
          lambda n: all(n[f"grid_prior_fd_{i}{_SMALL}"] > n[f"grid_prior_fd_{i}{_MID}"]
                        for i in _ROWS)),
    Claim("abl-grid-collapsed-prior", "at every code length the collapsed VAEs' (largest weight) "
          "aggregate codes fit N(0, I) better than the middle weight's (a smaller Fréchet "
          "distance per unit)",
          lambda n: all(n[f"grid_prior_fd_{i}{_BIG}"] < n[f"grid_prior_fd_{i}{_MID}"]
                        for i in _ROWS)),
)
GRID_STUCK_CLAIMS = (
    Claim("abl-grid-ae2-stuck", "the 2-number AE got stuck outputting black (mean output "
          "below 0.01), and its training error stopped moving after its first epoch (it changed "
          "by less than 1e-4 over the later epochs)",
          lambda n: n["ae2_mean_output"] < 0.01 and n["ae2_train_change"] < 1e-4),
    Claim("abl-grid-wider-aes-escaped", "the wider AEs did not get stuck (mean output above 0.01)",
          lambda n: n["ae_out_128"] > 0.01 and n["ae_out_16"] > 0.01),
)
DENOISING_CLAIMS = (
    Claim("abl-den-clean-up", "at every noise weight above 0 both models' outputs are closer to "
          "the clean digits than the noisy inputs are, and than the mean training image is",
          lambda n: all(
              n[f"den_{m}_{i}"] < min(n[f"den_input_{i}"], n["den_mean_image"])
              for m in ("ae", "vae")
              for i in range(1, int(n["den_levels"]) + 1))),
    Claim("abl-den-noise-matters-for-ae", "training with noise makes the AE a far better "
          "denoiser (the noise-free AE on the same inputs is more than twice as bad), and matters "
          "more for the AE than for the VAE", lambda n: n["den_gain_ae"] > 2
          and n["den_gain_vae"] < n["den_gain_ae"]),
    Claim("abl-den-vae-relative", "at the largest noise weight the VAE's error grew by a "
          "smaller factor than the AE's", lambda n: n[f"den_vae_{int(n['den_levels'])}_rel"]
          < n[f"den_ae_{int(n['den_levels'])}_rel"]),
    Claim("abl-den-fewer-nats", "the VAE's code carries fewer nats with noisy inputs",
          lambda n: n["den_klmax"] < n["den_kl0"]),
    Claim("abl-den-errors-grow", "both denoisers' errors against the clean digits grow with "
          "the noise weight", lambda n: all(n[f"den_{m}_{i}"] < n[f"den_{m}_{i + 1}"]
                                            for m in ("ae", "vae")
                                            for i in range(int(n["den_levels"])))),
    Claim("abl-den-vae-higher-clean", "the VAE's noise-free error is higher than the AE's",
          lambda n: n["den_vae_0"] > n["den_ae_0"]),
    Claim("abl-den-shift", "at the largest noise weight the noise moves the noise-free VAE's "
          "posterior mean by less than the length of its whole sampling-noise vector, and by a smaller share of its "
          "codes' spread than it moves the noise-free AE's code",
          lambda n: n["den_shift_vae_sigma"] < 1 and n["den_shift_vae"] < n["den_shift_ae"]),
)
SAMPLE_CLAIMS = (
    Claim("abl-samples-vae-better", "the VAE's samples are more digit-like than the AE's: a "
          "higher classifier score, and a smaller Fréchet distance after either budget",
          lambda n: n["gen_vae_long_classifier_score"] > n["gen_ae_long_classifier_score"]
          and n["gen_fd_ratio_long"] > 1 and n["gen_fd_ratio_short"] > 1),
    Claim("abl-samples-longer-helps", "training longer improved the VAE's samples, and the AE's "
          "after the long budget are still farther from real digits than the VAE's after the "
          "short one", lambda n: n["gen_vae_long_fd"] < n["gen_vae_short_fd"]
          and n["gen_ae_long_fd"] > n["gen_vae_short_fd"]),
    Claim("abl-samples-fit-closer", "with a fitted Gaussian the AE's samples come closer to real "
          "digits than the VAE's", lambda n: n["gen_ae_fit_long_fd"] < n["gen_vae_long_fd"]),
    Claim("abl-samples-fit-score", "with a fitted Gaussian the AE's classifier score is within "
          "10% of the VAE's", lambda n: abs(n["gen_ae_fit_long_classifier_score"]
                                            / n["gen_vae_long_classifier_score"] - 1) < 0.1),
)
LAYOUT_CLAIMS = (
    Claim("abl-layout-ae2-trained", "with the smaller learning rate the 2-number AE trained (mean "
          "output above 0.01)", lambda n: n["layout_ae_mean_output"] > 0.01),
    Claim("abl-layout-vae-nearer-prior", "the VAEs' codes are far closer to N(0, I) than the "
          "AEs': a Fréchet distance per unit under a tenth of the AE's, for both code lengths",
          lambda n: n["layout_vae2_fd"] < 0.1 * n["layout_ae2_fd"]
          and n["layout_vae_fd"] < 0.1 * n["layout_ae_fd"]),
    Claim("abl-layout-vae2-farther", "the 2-number VAE's codes are farther from N(0, I) than "
          "the longer VAE's (a larger Fréchet distance per unit): the KL term's pull does not "
          "bring every VAE's codes as close to the prior",
          lambda n: n["layout_vae2_fd"] > n["layout_vae_fd"]),
    Claim("abl-layout-ae-off-centre", "the 2-number AE's codes are off-centre (their mean is "
          "farther from the origin, per unit, than their spread), the 128-number AE's mean is "
          "nearer the origin, per unit, than their spread, and both AEs' codes are on their own "
          "scale (second moment per unit more than twice the prior's 1)",
          lambda n: n["layout_ae2_centre"] / math.sqrt(n["layout_ae2_units"]) > n["layout_ae2_sd"]
          and n["layout_ae_centre"] / math.sqrt(n["layout_ae_units"]) < n["layout_ae_sd"]
          and n["layout_ae2_moment"] > 2 and n["layout_ae_moment"] > 2),
    Claim("abl-layout-long-code-scale", "the longer VAE code has the prior's scale and centre: "
          "second moment per unit within 5% of 1, and its mean less than 0.1 per unit "
          "(|mean| / sqrt(k)) from the origin", lambda n: abs(n["layout_vae_moment"] - 1) < 0.05
          and n["layout_vae_centre"] / math.sqrt(n["layout_vae_units"]) < 0.1),
    Claim("abl-layout-vae2-narrow", "on average the posteriors of the 2-number VAE are narrow: "
          "their s.d., averaged over the digits and the active units, is under half the spread "
          "of the posterior means (averaged over the units)", lambda n: n["width_vae2_sigma"]
          < 0.5 * n["width_vae2_spread"]),
    Claim("abl-layout-long-wide", "on average the posteriors of the longer VAE are nearly as wide "
          "as the prior: their s.d., averaged over the active units, is above 0.8, and the square of that "
          "average, a lower bound on the posteriors' own part of the aggregate variance, is more "
          "than half of that variance", lambda n: n["width_vae_sigma"] > 0.8
          and n["width_vae_own_share_min"] > 0.5),
    Claim("abl-layout-long-units-differ", "unit by unit, the longer VAE's posteriors' own "
          "width is the larger part of the aggregate variance in the median active unit, but "
          "not in every one: in at least one the spread of the means is the larger part",
          lambda n: n["width_vae_unit_own_median"] > 0.5 and n["width_vae_unit_own_min"] < 0.5),
    Claim("abl-layout-both-group", "both models of the reference pair group the test digits by "
          "class in their codes: for more than 90% of a fixed pick of test digits the nearest "
          "other test digit in code space has the same label, for the AE and for the VAE",
          lambda n: n["layout_ae_same_label"] > 90 and n["layout_vae_same_label"] > 90),
    Claim("abl-layout-units-share", "one unit of the longer code tells digits apart less than "
          "one of the 2-number code (a larger s.d.-to-spread ratio)",
          lambda n: n["width_vae_ratio"] > n["width_vae2_ratio"]),
    Claim("abl-layout-pca-scale", "in the principal-component view the AE's codes spread more "
          "than twice as widely as the VAE's posterior means (first component's s.d.)",
          lambda n: n["layout_ae_pca_sd"] > 2 * n["layout_vae_pca_sd"]),
)


def adam_beta2() -> float:
    """The decay rate of Adam's running mean of squared gradients as the
    trainer uses it (PyTorch's default: train.py passes no ``betas``); the
    mean forgets a gradient over about 1 / (1 - beta2) steps."""
    return float(inspect.signature(torch.optim.Adam).parameters["betas"].default[1])


def settled(moment: float, tolerance: float = 0.1) -> bool:
    """Whether a code cloud has the prior's scale: its second moment per unit
    (1 for N(0, I), and where the KL term's optimum over each unit's scale
    puts it) within ``tolerance`` of 1."""
    return abs(moment - 1) <= tolerance
