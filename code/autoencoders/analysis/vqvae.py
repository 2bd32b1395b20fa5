"""The computations of the Vector-quantised VAEs chapter (book/vqvae.md):
the three VQ-VAE variants, their training budget, a check of the
straight-through gradient on the trained model, the encoder's outputs before
training, and the codebook-usage study (perplexity, dead codes, restarts,
reconstruction error)."""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd
import torch
import torch.nn.functional as F

from .. import cache, data, inference, metrics
from ..cache import Run, get_or_train, load_data
from ..claims import Claim
from ..experiments import get_config
from ..models import build_model
from ..train import batches, learning_rate

# experiment name -> what it changes (the main model first)
VARIANTS = {"vqvae": "codebook loss + restarts",
            "vqvae-ema": "EMA update + restarts",
            "vqvae-no-restart": "codebook loss, no restarts"}


def train_variants() -> dict[str, Run]:
    """The three VQ-VAEs of :data:`VARIANTS`, trained or fetched from the cache."""
    return {name: get_or_train(name) for name in VARIANTS}


@dataclass
class Budget:
    """The main VQ-VAE's sizes and training budget (the chapter glues each
    field as ``vq_<field>``)."""

    K: int                 # codebook size
    d: int                 # code dimension
    h: int                 # the code grid is h x h
    n: int                 # positions of the grid
    log2K: float
    bits_per_image: float  # n log2 K: the size of one image's code
    beta: float            # commitment weight
    width: int
    epochs: int
    train_n: int
    test_n: int
    batch: int
    steps: int             # training steps of one run
    lr: float
    params: int
    data: str              # which data the runs used (data.describe)
    full_epochs: int       # what the full profile does
    full_images: str
    seconds: float         # training time of the three variants together
    patience: int          # idle steps before a dead code is restarted
    decay: float           # EMA decay gamma
    ema_step: float        # 1 - gamma: how far one step moves a code with a steady count
    memory: float          # 1 / (1 - gamma): steps the averages remember
    memory_share: float    # memory / steps
    # Adam on a code whose gradient has become zero, as the trainer builds it:
    # train.fit passes only ``lr`` (and ``fused``, the same update), so betas and
    # eps are torch's defaults and there is no weight decay. In the limit of
    # late training, when the bias corrections are ~1 (eps left out), each idle
    # step is ``adam_ratio`` = beta1 / sqrt(beta2) times the one before; see
    # :func:`adam_idle` for the corrections at a given step.
    adam_beta1: float
    adam_beta2: float
    adam_eps: float
    adam_ratio: float
    adam_half: float       # steps for the step to halve: ln 2 / -ln(adam_ratio)
    adam_drift: float      # the idle steps' total, in units of the last full step:
                           # adam_ratio / (1 - adam_ratio)
    adam_left: float       # the step after ``patience`` idle steps, over the last full one
    adam_memory: float     # 1 / (1 - beta2): the time scale of beta2's bias correction
    adam_corr_end: float   # that correction, 1 - beta2^t, at the run's last step


def budget(runs: dict[str, Run]) -> Budget:
    """Sizes and budget of ``runs["vqvae"]`` (and the time of all ``runs``)."""
    run = runs["vqvae"]
    config, model = run.config, run.model
    train, test = load_data(config)
    log2k = float(torch.log2(torch.tensor(float(config.num_codes))))
    steps = config.steps(len(train))
    full = get_config("vqvae", "full")
    memory = 1 / (1 - model.quantizer.decay)
    # what train.fit gets (see Budget): Adam's defaults, read from its signature
    # (building an optimizer here would import torch's compiler stack: 2 s)
    adam = {name: p.default for name, p in inspect.signature(torch.optim.Adam).parameters.items()}
    beta1, beta2 = adam["betas"]
    ratio = beta1 / math.sqrt(beta2)
    patience = model.quantizer.patience
    return Budget(
        K=config.num_codes, d=config.latent_dim, h=model.grid[0],
        n=model.grid[0] * model.grid[1], log2K=log2k,
        bits_per_image=model.grid[0] * model.grid[1] * log2k, beta=config.commitment,
        width=config.width, epochs=config.epochs, train_n=len(train), test_n=len(test),
        batch=config.batch_size, steps=steps, lr=config.lr,
        params=run.metrics["parameters"], data=run.metrics["data"],
        full_epochs=full.epochs,
        full_images=(f"{full.train_size:,}" if full.train_size
                     else f"all {len(data.load('cifar10', 'train')):,}"),
        seconds=sum(r.metrics["train_seconds"] for r in runs.values()),
        patience=patience, decay=model.quantizer.decay,
        ema_step=1 - model.quantizer.decay, memory=memory, memory_share=memory / steps,
        adam_beta1=beta1, adam_beta2=beta2, adam_eps=adam["eps"], adam_ratio=ratio,
        adam_half=math.log(2) / -math.log(ratio), adam_drift=ratio / (1 - ratio),
        adam_left=ratio ** patience, adam_memory=1 / (1 - beta2),
        adam_corr_end=1 - beta2 ** steps)


class AdamIdle(NamedTuple):
    """Adam's step on a code whose gradient is zero after step ``start``,
    with the bias corrections of the steps where it happens (eps left out)."""

    start: int     # the code's last step with a gradient
    ratio: float   # each idle step over the one before, on average over the
                   # first ``patience`` idle steps (their geometric mean)
    half: float    # steps for the step to halve at that rate: ln 2 / -ln(ratio)
    drift: float   # the idle steps up to the run's last step, added, in units of the
                   # step at ``start``
    left: float    # the step after ``patience`` idle steps, over the step at ``start``


def adam_idle(start: int, config, budget: Budget) -> AdamIdle:
    """:class:`AdamIdle` for a code of a run with ``config`` (and its
    ``budget``) whose last gradient came at step ``start`` (1-based, Adam's
    own step count: with the codebook loss the codebook gets a gradient, zero
    for unchosen rows, at every step). After it the moments only decay, m_t = beta1^k m_start and
    v_t = beta2^k v_start (k = t - start), so the step lr_t m_t / (1 - beta1^t)
    / sqrt(v_t / (1 - beta2^t)) over the step at ``start`` is the same for
    every element of the code; lr_t follows the config's schedule."""
    b1, b2, total = budget.adam_beta1, budget.adam_beta2, budget.steps

    def size(t: int) -> float:  # the step at t, up to the code's factor m / sqrt(v)
        k = t - start
        lr = learning_rate(config.lr_schedule, config.lr, t - 1, total)
        return lr * b1 ** k / (1 - b1 ** t) * math.sqrt((1 - b2 ** t) / b2 ** k)
    last, patience = size(start), budget.patience
    left = size(start + patience) / last
    ratio = left ** (1 / patience)
    return AdamIdle(start=start, ratio=ratio, half=math.log(2) / -math.log(ratio),
                    drift=sum(size(t) for t in range(start + 1, total + 1)) / last,
                    left=left)


def idle_starts(run: Run) -> list[int]:
    """The last step with a gradient of each code that a logged training batch
    of ``run`` restarted, sorted: a code restarted at step t had been idle
    for ``patience`` steps, so it was last chosen at step t - patience - 1
    (a restart is logged only on a logged step, and a code never chosen
    before, t - patience - 1 = 0, has no step and is left out)."""
    patience = run.model.quantizer.patience
    return sorted(s["step"] - patience - 1 for s in run.metrics["steps"]
                  for _ in range(int(s.get("restarts", 0))) if s["step"] - patience - 1 >= 1)


@dataclass
class StraightThrough:
    """The straight-through estimator measured on a trained model."""

    gap: float          # largest |gradient at z_e - gradient at the decoder input|
    forward_gap: float  # largest |decoder input - chosen code vector|
    grad_norm: float    # norm of the gradient at z_e (the scale of ``gap``)
    quant_share: float  # mean ||z_e - e||^2 / mean ||z_e||^2: how far the decoder's
                        # input is from the encoder's output, relative to its size
    grad_cos: float     # cosine, per image, between the reconstruction loss's gradient
                        # with respect to the decoder input taken at the codes e (what
                        # straight-through copies to z_e) and taken at z_e itself
                        # (decoding z_e directly), averaged over the images
    grad_cos_min: float  # the smallest of those cosines
    grad_rel_gap: float  # ||gradient at e - gradient at z_e|| / ||gradient at z_e||,
                         # per image, averaged over the images

    def __repr__(self) -> str:
        return f"StraightThrough({', '.join(f'{k}={v:.2g}' for k, v in vars(self).items())})"

    def numbers(self) -> dict[str, float]:
        """The scalars, for gluing and the claims."""
        return dict(vars(self))


def straight_through_check(model: torch.nn.Module, x: torch.Tensor) -> StraightThrough:
    """Differentiate the reconstruction error of images ``x`` (floats in
    [0, 1]) and compare the gradient that reaches the encoder output z_e with
    the one at the decoder input ``q.z_q`` (z_e + sg[e - z_e]: the package's
    z_q is the whole decoder input); that input with the chosen code vectors
    e, and e with z_e (squared distance relative to z_e's squared length).
    Then test the premise of straight-through: the decoder's gradient taken
    at e (what is copied to z_e) against the one taken at z_e, as if z_e had
    been decoded directly (a local, first-order comparison).

    Shown in the Vector-quantised VAEs chapter (book/vqvae.md)."""
    z_e = model.encode(x).detach().requires_grad_(True)
    q = model.quantizer(z_e)
    q.z_q.retain_grad()
    (model.decode(q.z_q) - x).pow(2).mean().backward()
    e = model.quantizer.lookup(q.codes)

    def grad_at(v: torch.Tensor) -> torch.Tensor:  # d(error)/d(decoder input) at v
        v = v.detach().requires_grad_(True)
        loss = (model.decode(v) - x).pow(2).mean()
        return torch.autograd.grad(loss, v)[0].flatten(1)  # one row per image

    at_e, at_z_e = grad_at(e), grad_at(z_e)
    cos = F.cosine_similarity(at_e, at_z_e, dim=1)
    return StraightThrough(
        gap=(z_e.grad - q.z_q.grad).abs().max().item(),
        forward_gap=(q.z_q - e).abs().max().item(),
        grad_norm=z_e.grad.norm().item(),
        quant_share=((z_e - e).pow(2).mean() / z_e.pow(2).mean()).item(),
        grad_cos=cos.mean().item(), grad_cos_min=cos.min().item(),
        grad_rel_gap=((at_e - at_z_e).norm(dim=1) / at_z_e.norm(dim=1)).mean().item())


@dataclass
class InitialCodes:
    """The encoder's outputs on the first training batch before any training
    step, and the codes nearest to them (the model built as training builds
    it, with the run's seed)."""

    cosine: float    # mean cosine of the outputs with their mean direction (1: all alike)
    codes: int       # distinct codes nearest to some output
    positions: int   # outputs (grid positions) of the batch
    K: int           # codebook size
    output_norm: float       # mean length of the outputs
    code_norm: float         # mean length of the code vectors as initialised
    code_sq: float           # mean ||e||^2 of the code vectors as initialised
    projection_top: float    # the largest 2 z.e over the codes, averaged over the outputs
    projection_share: float  # outputs whose nearest code is the one with the largest z.e

    def numbers(self) -> dict[str, float]:
        """The scalars, for gluing and the claims."""
        return dict(vars(self))


def initial_codes(run: Run) -> InitialCodes:
    """:class:`InitialCodes` for the config of ``run``: a fresh model seeded
    as its training was (the global random state is left as it was), fed the
    run's first training batch. One forward pass, no training."""
    config = run.config
    train, _ = load_data(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, train.shape, len(train))
    idx = batches(len(train), config.batch_size, 0, config.seed, torch.device("cpu"))[0]
    with torch.no_grad():
        z_e = model.encode(data.model_input(train.images[idx]))
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        cosine = F.cosine_similarity(flat, flat.mean(0, keepdim=True), dim=1).mean()
        nearest = model.quantizer.nearest(flat)
        e = model.quantizer.codebook.detach()
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2: how often the projection
        # term alone picks the nearest code
        dots = flat @ e.t()
        projection = dots.argmax(dim=1)
        share = (nearest == projection).float().mean()
    return InitialCodes(cosine=float(cosine), codes=int(nearest.unique().numel()),
                        positions=len(flat), K=config.num_codes,
                        output_norm=float(flat.norm(dim=1).mean()),
                        code_norm=float(e.norm(dim=1).mean()),
                        code_sq=float(e.pow(2).sum(dim=1).mean()),
                        projection_top=float(2 * dots.max(dim=1).values.mean()),
                        projection_share=float(share))


@dataclass
class VariantUsage:
    """One VQ-VAE's codebook use and reconstruction error on the test set
    (the chapter glues the numbers as ``<variant>_<field>``)."""

    mse: float            # test mean squared error per pixel
    psnr: float
    codebook_term: float  # mean ||z_e - e||^2 on the test set (the EMA model's codebook
                          # does not train on it; its encoder trains on beta times it)
    ppl: float            # perplexity of the test set's codes
    dead: int             # codes no test position uses
    used: int             # K - dead
    restarts: int         # dead codes restarted during training (idle codes moved)
    first_step: int       # the first logged training step ...
    first_dead: int       # ... its unused codes ...
    first_ppl: float      # ... and its perplexity
    edge_kept: float      # % of the test images' edge energy the reconstructions keep
    counts: torch.Tensor = field(repr=False)          # K code counts on the test set
    steps: list = field(repr=False)                   # metrics["steps"] of the run, full
                                                      # batches only (see full_batch_steps)
    model: torch.nn.Module = field(repr=False)

    def numbers(self) -> dict[str, float]:
        """The scalar fields, for gluing."""
        return {k: v for k, v in vars(self).items() if k not in ("counts", "steps", "model")}

    def reconstructions(self, images: torch.Tensor) -> torch.Tensor:
        """The variant's reconstructions of ``images`` (floats in [0, 1])."""
        return inference.reconstruct(self.model, images)

    # ---- the logged training batches (``steps``), read by the chapter
    @property
    def batch_ppl_peak(self) -> float:
        """The highest perplexity of a logged training batch."""
        return max(s["perplexity"] for s in self.steps)

    @property
    def batch_ppl_peak_step(self) -> int:
        """The logged step of :attr:`batch_ppl_peak` (the first, on a tie)."""
        return max(self.steps, key=lambda s: s["perplexity"])["step"]

    @property
    def batch_ppl_last(self) -> float:
        """The perplexity of the last logged training batch."""
        return self.steps[-1]["perplexity"]

    def late_fall(self, share: float = 0.1) -> tuple[float, int]:
        """The highest perplexity among the last ``share`` of the logged
        batches (the last one excluded) and its step: with
        :attr:`batch_ppl_last`, how far the batches' perplexity fell at the end."""
        tail = self.steps[-max(2, round(share * len(self.steps))) - 1:-1] or self.steps[-1:]
        best = max(tail, key=lambda s: s["perplexity"])
        return float(best["perplexity"]), int(best["step"])

    def late_geomean(self, share: float = 0.1) -> tuple[float, int]:
        """The geometric mean of the perplexities of the last ``share`` of the
        logged batches (the last one included), i.e. the exponential of their
        mean entropy, and how many batches that is: what the test perplexity
        is set against. The logged batches are full ones (:attr:`steps`), all
        with as many positions, so by the concavity of entropy pooling their
        positions gives a perplexity of at least this value."""
        tail = self.steps[-max(2, round(share * len(self.steps))):]
        entropy = sum(math.log(float(s["perplexity"])) for s in tail) / len(tail)
        return math.exp(entropy), len(tail)

    def unused_at(self, step: int) -> int | None:
        """The codes unused on the batch of logged ``step`` (``None``: not logged)."""
        return next((int(s["dead_codes"]) for s in self.steps if s["step"] == step), None)

    def after_first_wave(self, num_codes: int) -> Wave | None:
        """The first logged batch that uses at least half of the ``num_codes``
        codes (in a run with restarts: just after the first wave of restarts),
        and the later logged batch that leaves the most codes unused
        (``None``: no logged batch uses half the codes, or none comes after)."""
        first = next((i for i, s in enumerate(self.steps)
                      if num_codes - s["dead_codes"] >= num_codes / 2), None)
        if first is None or first + 1 >= len(self.steps):
            return None
        peak = max(self.steps[first + 1:], key=lambda s: s["dead_codes"])
        return Wave(low_step=self.steps[first]["step"],
                    low_unused=int(self.steps[first]["dead_codes"]),
                    peak_step=peak["step"], peak_unused=int(peak["dead_codes"]))


class Wave(NamedTuple):
    """Codes unused on logged training batches around the first restart wave."""

    low_step: int     # the first logged batch using at least half of the codes ...
    low_unused: int   # ... and its unused codes
    peak_step: int    # the later logged batch with the most unused codes ...
    peak_unused: int  # ... and its unused codes


def colour_kept(originals: torch.Tensor, reconstructions: torch.Tensor) -> float:
    """The % of the ``originals``' colour saturation that the
    ``reconstructions`` keep (both (N, 3, H, W) floats in [0, 1]); a pixel's
    saturation here is the gap between its largest and smallest channel, and
    the images' saturation is its mean over pixels. 100: as colourful as the
    originals; 0: grey."""
    def saturation(x: torch.Tensor) -> float:
        return float((x.amax(dim=1) - x.amin(dim=1)).mean())
    return 100 * saturation(reconstructions) / saturation(originals)


def full_batch_steps(steps: list[dict], train_images: int, batch_size: int) -> list[dict]:
    """The logged training ``steps`` (``metrics["steps"]``) without those on
    the short last batch of an epoch: when ``train_images`` is not a multiple
    of ``batch_size`` and an epoch has more than one batch, its last batch holds
    fewer positions, so more codes go unused on it whatever the codebook."""
    per_epoch = -(-train_images // batch_size)
    if train_images % batch_size == 0 or per_epoch == 1:
        return list(steps)
    return [s for s in steps if s["step"] % per_epoch != 0]


@dataclass
class CodebookStudy:
    """The three variants' codebook use side by side."""

    num_codes: int
    test_n: int
    originals: torch.Tensor = field(repr=False)  # the test images, floats
    variants: dict[str, VariantUsage] = field(default_factory=dict)
    batch_size: int = 0
    short_batch: int = 0      # images in an epoch's last batch when it is short, else 0
    short_steps: list = field(default_factory=list)  # logged steps left out (short batches)
    log_every: int = 1        # training logs one step in this many (from the runs' logs)

    @property
    def restart_gain(self) -> float:
        """Test perplexity with restarts over that without."""
        return self.variants["vqvae"].ppl / self.variants["vqvae-no-restart"].ppl

    def late_numbers(self) -> dict[str, float]:
        """The EMA run's test perplexity with the geometric mean of the
        perplexities of its last logged batches (:meth:`VariantUsage.late_geomean`),
        for :data:`EMA_FALL_CLAIMS`."""
        ema = self.variants["vqvae-ema"]
        return {"ema_ppl": ema.ppl, "ema_late_geomean": ema.late_geomean()[0]}

    IN_USE = 0.95  # a codebook counts as in use when a batch uses this share of it

    def in_use_step(self, name: str) -> int | None:
        """The first logged training step at which run ``name``'s batch used
        at least :attr:`IN_USE` of the codes (``None``: no logged step did)."""
        need = self.IN_USE * self.num_codes
        return next((s["step"] for s in self.variants[name].steps
                     if self.num_codes - s["dead_codes"] >= need), None)

    def batch_used_peak(self, name: str) -> int:
        """The most codes that a logged (full) training batch of run ``name`` used."""
        return max(self.num_codes - int(s["dead_codes"]) for s in self.variants[name].steps)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame.from_dict({VARIANTS[name]: {
            "test MSE": v.mse, "test PSNR (dB)": v.psnr, "quantisation error": v.codebook_term,
            "test perplexity": v.ppl, "dead codes (test set)": v.dead,
            "restarts in training": v.restarts} for name, v in self.variants.items()},
            orient="index")

    TABLE_FORMATS = {"test MSE": "{:.4f}", "test PSNR (dB)": "{:.2f}",
                     "quantisation error": "{:.4f}", "test perplexity": "{:.1f}",
                     "dead codes (test set)": "{:d}", "restarts in training": "{:d}"}


def usage_on_test_set(run: Run, test: data.ImageData) -> dict:
    """A VQ-VAE's codebook usage (perplexity ``ppl``, ``dead`` codes, the
    code ``counts``) and reconstruction scores on the test images: one cached
    evaluation per model, which this chapter and the questions chapter's Q5
    both read."""
    k = run.config.num_codes

    def codebook_on_test_set():
        usage = metrics.codebook_usage(inference.code_grids(run.model, test.images), k)
        return {"ppl": usage["perplexity"], "dead": usage["dead_codes"],
                "counts": usage["counts"], **metrics.reconstruction_scores(run.model, test.images)}
    return cache.cached_evaluation(run, "codebook-study", codebook_on_test_set,
                                   inputs=[test.images])


def codebook_study(runs: dict[str, Run]) -> CodebookStudy:
    """Code usage, reconstruction error and restarts of each run on the
    test set, with the usage of the first logged training batch."""
    _, test = load_data(runs["vqvae"].config)
    x = test.floats()
    k = runs["vqvae"].config.num_codes
    study = CodebookStudy(num_codes=k, test_n=len(test), originals=x)
    for name, run in runs.items():
        s = usage_on_test_set(run, test)
        first = run.metrics["steps"][0]
        n, b = run.metrics["train_images"], run.config.batch_size
        kept = full_batch_steps(run.metrics["steps"], n, b)
        dropped = {log["step"] for log in run.metrics["steps"]} - {log["step"] for log in kept}
        if dropped:
            study.short_batch = n % b
            study.short_steps = sorted(set(study.short_steps) | dropped)
        study.batch_size = b
        logged = [log["step"] for log in run.metrics["steps"]]
        # a step is logged when its number is a multiple of the interval, so
        # the first logged step is the interval itself
        study.log_every = max(study.log_every, min(
            (later - earlier for earlier, later in zip(logged, logged[1:])),
            default=logged[0] if logged else 1))
        study.variants[name] = VariantUsage(
            mse=s["mse"], psnr=metrics.psnr(s["mse"]),
            codebook_term=run.metrics["test"]["codebook"],
            ppl=s["ppl"], dead=s["dead"], used=k - s["dead"],
            restarts=int(run.model.quantizer.restarts_total),
            first_step=first["step"], first_dead=int(first["dead_codes"]),
            first_ppl=first["perplexity"], edge_kept=float(s["edge_kept"]),
            counts=s["counts"], steps=kept, model=run.model)
    return study


# ================================================================== claims
# The conditions behind the chapter's sentences, each a function of the
# numbers the chapter glues (see autoencoders.claims; the chapter checks them
# with check_claims, tests/test_claim_breaks.py breaks each). That the
# straight-through gradient is copied exactly holds for any weights (the
# unit tests check it), so it is shown, not claimed.
STRAIGHT_THROUGH_CLAIMS = (
    Claim("vq-st-grad-aligned", "on the trained model, the decoder's gradient taken at the codes "
          "(what straight-through copies to z_e) points broadly the way of the gradient taken "
          "at z_e itself: per-image cosine above 0.5 on average and positive on every image",
          lambda n: n["grad_cos"] > 0.5 and n["grad_cos_min"] > 0),
    Claim("vq-st-grad-rough", "the two gradients are not copies of each other: their difference "
          "is, on average over the images, more than a quarter of the gradient at z_e",
          lambda n: n["grad_rel_gap"] > 0.25),
)
EMA_FALL_CLAIMS = (
    Claim("vq-ema-test-shares-fall", "the EMA model's test perplexity is below the geometric "
          "mean of the perplexities of its last logged training batches (equal-size batches, "
          "so the least that pooling their positions could give): evidence that the trained "
          "EMA model shares at least part of its batches' late fall",
          lambda n: n["ema_ppl"] < n["ema_late_geomean"]),
)
INIT_CLAIMS = (
    Claim("vq-init-aligned", "before training, the encoder's outputs on a batch point in nearly "
          "the same direction (mean cosine with their mean direction above 0.9), and only a "
          "few codes (at most a tenth of the codebook) are nearest to any of them",
          lambda n: n["cosine"] > 0.9 and n["codes"] <= n["K"] / 10),
    Claim("vq-init-far", "before training, the encoder's outputs on a batch are on average "
          "more than five times as long as the code vectors, the codes' ||e||^2 is on average "
          "less than a fifth of the largest 2 z.e, and for more than 90% of the outputs "
          "the nearest code is also the code with the largest projection z.e",
          lambda n: (n["output_norm"] > 5 * n["code_norm"]
                     and n["projection_top"] > 5 * n["code_sq"]
                     and n["projection_share"] > 0.9)),
)
