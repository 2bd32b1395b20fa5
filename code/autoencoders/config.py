"""Training budgets (profiles) and the configuration of one trained model.

A :class:`Config` says everything that decides a trained model: the model,
its sizes and loss weights, the data, the budget and the seed. It is plain,
validated data; it knows nothing of the experiment registry or the cache.

The profile (``smoke``, ``quick`` or ``full``; ``AUTOENCODERS_PROFILE``)
fixes the budget, the epochs *and* how many training images each data set
contributes, so a build costs the same whichever data source was reachable.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
from dataclasses import dataclass

import torch

from .data import DATASETS, IMAGE_SHAPES
from .settings import profile_name

MODELS = ("ae", "vae", "vqvae", "pixelcnn", "classifier", "discrete_vae")
ARCHS = ("linear", "conv", "transformer")
LIKELIHOODS = ("gaussian", "bernoulli")
CODEBOOK_UPDATES = ("loss", "ema")
CODEBOOK_INITS = ("uniform", "kmeans")
VQ_DOWNSAMPLING = (2, 4)
DISCRETE_ESTIMATORS = ("score", "gumbel")
LR_SCHEDULES = ("constant", "cosine", "warmup-cosine")
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
# The models that take images (all but the PixelCNN, which takes code grids).
IMAGE_MODELS = tuple(m for m in MODELS if m != "pixelcnn")
# What a model trained on another model's outputs may be: for each
# ``Config.train_on`` other than "images" (``transforms.TRANSFORMS`` makes
# them), the models that can train on it and the model its source must be.
DERIVED_INPUTS = {
    "vq-codes": (("pixelcnn",), "vqvae"),
    "vae-reconstructions": (IMAGE_MODELS, "vae"),
    "vae-posterior-samples": (IMAGE_MODELS, "vae"),
}
# Bounds that keep a typo from allocating terabytes: far above anything the
# book trains, far below what would exhaust a machine.
MAX_WIDTH = 4096        # hidden channels
MAX_LATENT = 65_536     # latent / code dimension
MAX_CODES = 1 << 20     # codebook size K, categorical values
MAX_DEPTH = 256         # residual / masked blocks
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_SAMPLES = 1024      # code samples per image (discrete VAE)
# The trainer seeds each epoch with seed * 100_003 + epoch, which must fit
# torch's 64-bit seed: 2**32 seeds are plenty.
MAX_SEED = 2**32 - 1


# ------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class Profile:
    """A training budget: epochs per data set and how many training and test
    images each data set contributes (``None``: all of them)."""

    name: str
    mnist_epochs: int
    cifar_epochs: int
    mnist_train_size: int | None
    cifar_train_size: int | None
    test_size: int | None

    def epochs(self, dataset: str) -> int:
        return self.mnist_epochs if dataset == "mnist" else self.cifar_epochs

    def train_size(self, dataset: str) -> int | None:
        return self.mnist_train_size if dataset == "mnist" else self.cifar_train_size


PROFILES = {
    "smoke": Profile("smoke", mnist_epochs=1, cifar_epochs=1, mnist_train_size=512,
                     cifar_train_size=512, test_size=500),
    # 5,000 MNIST digits: the size of the offline copy, and a fixed random
    # pick of the 60,000 when torchvision's download is there
    "quick": Profile("quick", mnist_epochs=10, cifar_epochs=3, mnist_train_size=5_000,
                     cifar_train_size=10_000, test_size=None),
    "full": Profile("full", mnist_epochs=25, cifar_epochs=30, mnist_train_size=None,
                    cifar_train_size=None, test_size=None),
}


def check_profile(name: str, where: str = "profile") -> str:
    """``name`` if it names a profile, else a ValueError that says ``where``
    the bad name came from and lists the good ones."""
    if name not in PROFILES:
        raise ValueError(f"{where} must be one of {sorted(PROFILES)}, got {name!r}")
    return name


def current_profile() -> str:
    """``AUTOENCODERS_PROFILE``, else ``full`` with CUDA and ``quick`` without."""
    name = profile_name()  # checked where every setting is (settings.py)
    if name is None:
        return "full" if torch.cuda.is_available() else "quick"
    return name


# ------------------------------------------------------------------- configs
@dataclass(frozen=True)
class Config:
    """Everything that decides a trained model. Validated on creation."""

    name: str
    model: str
    dataset: str = "mnist"
    arch: str = "conv"
    latent_dim: int = 32
    kl_weight: float = 0.0
    likelihood: str = "gaussian"
    noise_weight: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    profile: str = "quick"
    # Models trained on another model's outputs (a PixelCNN on a VQ-VAE's
    # codes, a classifier on a VAE's reconstructions): ``source`` names the
    # upstream experiment (same profile) and ``train_on`` the transform (see
    # ``transforms.TRANSFORMS``) that turns the data through it.
    source: str | None = None
    train_on: str = "images"
    # VQ-VAE and its PixelCNN prior. latent_dim is the code dimension d.
    num_codes: int = 128           # K code vectors (PixelCNN: K values per position)
    commitment: float = 0.25       # beta, the weight of the commitment loss
    codebook_update: str = "loss"  # "loss": codebook loss; "ema": moving averages
    restart_dead: bool = False     # move codes unused for a while onto encoder outputs
    width: int = 64                # hidden channels (VQ-VAE, PixelCNN)
    depth: int = 2                 # residual blocks (VQ-VAE) / masked blocks (PixelCNN)
    # The VAE with a categorical latent (discrete_vae): K code values next to
    # latent_dim continuous ones; how the code's gradient is estimated.
    categories: int = 10           # K values of the categorical latent
    estimator: str = "score"       # "score" (score function) or "gumbel" (relaxation)
    samples: int = 4               # code samples per image (leave-one-out baseline)
    usage_weight: float = 0.0      # weight of KL(batch-average q(y) || uniform)
    temperature: float = 0.5       # Gumbel-softmax temperature
    lr_schedule: str = "constant"  # LR_SCHEDULES; see train.learning_rate
    # Fixes for collapse and dead codes (the "Questions readers ask" chapter);
    # the defaults change nothing.
    kl_warmup: float = 0.0         # VAE: share of the run's training steps over which
                                   # the KL weight rises from 0 (0: none; 0.5: first half)
    free_bits: float = 0.0         # VAE: nats per latent unit the KL term does not charge
    codebook_init: str = "uniform" # "uniform", or "kmeans" of the first batch's z_e
    downsample: int = 4            # VQ-VAE: image side / code-grid side (2 or 4)
    epoch_eval: int = 0            # test images evaluated after every epoch (0: none)

    def __post_init__(self):
        def bad(field: str, why: str):
            raise ValueError(f"Config {self.name!r}: {field} {why}, got {getattr(self, field)!r}")

        def integer(field: str, low: int, high: int, optional: bool = False, cap: str = "",
                    why: str = "keeps a typo from asking for more memory or time than any "
                               "machine has"):
            value = getattr(self, field)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                bad(field, f"must be an integer in [{low}, {high}]"
                    + (" or None" if optional else "")
                    + (f" (the upper bound, config.{cap}, {why})" if cap else ""))

        def real(field: str, low: float, high: float = math.inf, open_low: bool = False):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value > high \
                    or (value <= low if open_low else value < low):
                bad(field, f"must be a finite number {'>' if open_low else '>='} {low}"
                    + (f" and <= {high}" if high < math.inf else ""))

        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name) \
                or self.name in {".", ".."}:
            bad("name", "must be a plain name of letters, digits, '.', '_' or '-' "
                "(it names a folder inside the cache)")
        for field, allowed in (("model", MODELS), ("dataset", DATASETS), ("arch", ARCHS),
                               ("likelihood", LIKELIHOODS), ("codebook_update", CODEBOOK_UPDATES),
                               ("estimator", DISCRETE_ESTIMATORS),
                               ("lr_schedule", LR_SCHEDULES),
                               ("codebook_init", CODEBOOK_INITS),
                               ("downsample", VQ_DOWNSAMPLING)):
            if getattr(self, field) not in allowed:
                bad(field, f"must be one of {allowed}")
        if self.profile not in PROFILES:
            bad("profile", f"must be one of {sorted(PROFILES)}")
        integer("latent_dim", 1, MAX_LATENT, cap="MAX_LATENT")
        integer("epochs", 1, MAX_EPOCHS, cap="MAX_EPOCHS")
        integer("batch_size", 1, MAX_BATCH, cap="MAX_BATCH")
        integer("train_size", 1, 10**9, optional=True)
        integer("test_size", 1, 10**9, optional=True)
        integer("seed", 0, MAX_SEED, cap="MAX_SEED",
                why="is there because the trainer mixes it with the epoch into torch's 64-bit seed")
        integer("num_codes", 2, MAX_CODES, cap="MAX_CODES")
        integer("width", 2, MAX_WIDTH, cap="MAX_WIDTH")
        integer("depth", 0, MAX_DEPTH, cap="MAX_DEPTH")
        integer("categories", 2, MAX_CODES, cap="MAX_CODES")
        integer("samples", 1, MAX_SAMPLES, cap="MAX_SAMPLES")
        real("kl_weight", 0.0)
        real("noise_weight", 0.0, 1.0)
        real("lr", 0.0, 10.0, open_low=True)
        real("commitment", 0.0)
        real("usage_weight", 0.0)
        real("temperature", 0.0, open_low=True)
        real("kl_warmup", 0.0, 1.0)
        real("free_bits", 0.0)
        integer("epoch_eval", 0, 10**9)
        if self.source is not None and not (isinstance(self.source, str)
                                            and NAME_PATTERN.fullmatch(self.source)):
            bad("source", "must be None or the plain name of an experiment")
        if not isinstance(self.train_on, str) or \
                (self.train_on != "images" and self.train_on not in DERIVED_INPUTS):
            bad("train_on", f"must be 'images' or one of {sorted(DERIVED_INPUTS)}")
        if (self.source is None) != (self.train_on == "images"):
            bad("train_on", "needs a source experiment (and a source needs a train_on)")
        # combinations the models cannot run: refused here, not deep inside torch
        if self.model == "pixelcnn" and self.train_on != "vq-codes":
            bad("train_on", "must be 'vq-codes' for a PixelCNN: it models the grids of code "
                "indices of a VQ-VAE (named by source), not images")
        if self.train_on in DERIVED_INPUTS and self.model not in DERIVED_INPUTS[self.train_on][0]:
            bad("model", f"cannot train on train_on={self.train_on!r}; the models that can are "
                f"{DERIVED_INPUTS[self.train_on][0]}")
        if self.arch == "transformer" and self.model in ("ae", "vae", "discrete_vae"):
            patch = _transformer_patch()
            side = IMAGE_SHAPES[self.dataset][1:]
            if any(s % patch for s in side):
                bad("arch", f"'transformer' cuts images into {patch}x{patch} patches, which do "
                    f"not tile {self.dataset}'s {side[0]}x{side[1]} images; use 'conv' or 'linear'")
        if not isinstance(self.restart_dead, bool):
            bad("restart_dead", "must be True or False")
        if self.model == "discrete_vae" and self.estimator == "score" and self.samples < 2:
            bad("samples", "must be >= 2 for the score-function estimator (leave-one-out baseline)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def steps_per_epoch(self, train_images: int) -> int:
        """Optimiser steps in one epoch over ``train_images`` images:
        ceil(images / batch size) (the last batch may be short)."""
        return math.ceil(train_images / self.batch_size)

    def steps(self, train_images: int) -> int:
        """The optimiser steps of a whole run on ``train_images`` images."""
        return self.epochs * self.steps_per_epoch(train_images)

    def kl_warmup_steps(self, train_images: int) -> int:
        """The steps of the KL warm-up (:attr:`kl_warmup` as a share of
        :meth:`steps`); at least 1 when there is a warm-up, 0 when there is none.
        A share, not a count, so the warm-up ends where it should whichever
        number of training images the data source gave."""
        if self.kl_warmup == 0:
            return 0
        return max(1, round(self.kl_warmup * self.steps(train_images)))


def _transformer_patch() -> int:
    """The patch side of the transformer encoder and decoder (the default of
    ``models.layers.TransformerEncoder``, read from there)."""
    from .models.layers import TransformerDecoder, TransformerEncoder

    sides = {inspect.signature(cls).parameters["patch"].default
             for cls in (TransformerEncoder, TransformerDecoder)}
    if len(sides) != 1:
        raise RuntimeError(f"the transformer encoder and decoder disagree on the patch: {sides}")
    return sides.pop()
