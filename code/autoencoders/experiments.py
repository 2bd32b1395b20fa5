"""The registry of named experiments: plain data.

``EXPERIMENTS`` maps an experiment's name to its :class:`~autoencoders.config.Config`
fields and the chapter (a file name under ``book/``) that shows it. A field
whose value is a dict keyed by profile name (``{"smoke": 1, "quick": 3,
"full": 5}``) takes the current profile's value; the epochs and the training
images default to the profile's budget for the experiment's data set.
:func:`get_config` turns an entry into a validated ``Config``.
"""
from __future__ import annotations

import dataclasses

from .config import DERIVED_INPUTS, PROFILES, Config, check_profile, current_profile

# Per-profile values (a field set to one of these takes the profile's value).
MNIST_EPOCHS = {name: p.mnist_epochs for name, p in PROFILES.items()}
CIFAR_EPOCHS = {name: p.cifar_epochs for name, p in PROFILES.items()}

EXPERIMENTS: dict[str, dict] = {}


def _add(name: str, chapter: str, **fields) -> None:
    if name in EXPERIMENTS:
        raise ValueError(f"experiment {name!r} registered twice")
    EXPERIMENTS[name] = dict(chapter=chapter, **fields)


# ---------------------------------------------- autoencoders (chapter 1)
for _arch in ("linear", "conv", "transformer"):
    _add(f"ae-{_arch}", "autoencoders", model="ae", arch=_arch, latent_dim=32)
# A linear AE trained to convergence, to compare with PCA: Adam's noise sets
# a floor on how close it gets, so more epochs and larger batches.
_add("ae-linear-pca", "autoencoders", model="ae", arch="linear", latent_dim=16,
     epochs={name: 20 * e for name, e in MNIST_EPOCHS.items()}, batch_size=250, lr=2e-3)

# ------------------------------------------------ VAE on MNIST (vae_mnist)
# Batches of 32 and a learning rate that warms up to 4e-3 and decays on a
# cosine: on the quick profile's 5,000 digits, 8 epochs reach a test negative
# ELBO of 109.3 nats (seed 0; 110.15 with seed 1) in about the time that 10
# epochs of batches of 128 at a constant 1e-3 take to reach 121.9 (measured,
# with a sweep of cheaper settings; see docs/benchmarks.md).
_add("vae-mnist", "vae_mnist", model="vae", arch="conv", latent_dim=16, kl_weight=1.0,
     likelihood="bernoulli", batch_size=32, lr=4e-3, lr_schedule="warmup-cosine",
     epochs={"smoke": 1, "quick": 8, "full": 25})
# classifiers on real digits and on VAE-made digits (tested on real ones)
_add("classifier-real", "vae_mnist", model="classifier")
_add("classifier-vae-recon", "vae_mnist", model="classifier", source="vae-mnist",
     train_on="vae-reconstructions")
_add("classifier-vae-samples", "vae_mnist", model="classifier", source="vae-mnist",
     train_on="vae-posterior-samples")

# ------------- score-function chapter: a VAE with a categorical latent (digit)
# batches of 64: twice the steps of the other MNIST models for the same
# epochs, which the slowly learned code needs more than large batches
_DISCRETE = dict(model="discrete_vae", arch="conv", latent_dim=4, categories=10,
                 likelihood="bernoulli", kl_weight=1.0, batch_size=64, usage_weight=5.0)
_add("dvae-score", "score_function", **_DISCRETE, estimator="score", samples=4)
_add("dvae-gumbel", "score_function", **_DISCRETE, estimator="gumbel", temperature=0.5)

# ------------------------------------------------- ablations (chapter 2.4)
# Conv AEs and Gaussian VAEs (per-pixel MSE + kl_weight * KL) on MNIST. Two
# budgets, the guide's in every profile but smoke: "short" is its default of
# 5 epochs, "long" its recommended 25. The grid, the denoisers and their
# no-noise baselines use "short"; the reference AE/VAE pair of ABLATION_REF
# is trained at both budgets (the guide compares samples after 5 and 25).
# Batches of 32: on 5,000 training digits, a few epochs of batches of 128
# are too few steps for the AE to learn (3 epochs: test MSE 0.03 vs 0.007).
ABLATION_LATENTS = (512, 256, 128, 16, 2)
ABLATION_AE_LATENTS = (128, 16, 2)  # AEs for the grid (512 and 256 cost much, teach little)
ABLATION_KL_WEIGHTS = (1e-2, 1e-3, 1e-4)
ABLATION_NOISE = (0.25, 0.5, 0.75)
ABLATION_REF = dict(latent_dim=128, kl_weight=1e-3)
ABLATION_SHORT_EPOCHS = {"smoke": 1, "quick": 5, "full": 5}
ABLATION_LONG_EPOCHS = {"smoke": 2, "quick": 25, "full": 25}
# The 2-number AE and VAE of the latent-layout figure: the profile's MNIST
# epochs, and a smaller learning rate, since at 1e-3 the 2-number conv AE gets stuck in
# its first epoch with every output pixel at 0 (the sigmoid saturates and
# its gradient vanishes); at 2e-4 it does not, for the seeds we tried.
ABLATION_LAYOUT = dict(latent_dim=2, kl_weight=1e-3, lr=2e-4)


def ablation_epochs(profile, long: bool = False) -> int:
    """The epochs of an ablation model in ``profile`` (a name or a
    :class:`~autoencoders.config.Profile`): the "long" or the "short" budget."""
    return (ABLATION_LONG_EPOCHS if long else ABLATION_SHORT_EPOCHS)[getattr(profile, "name", profile)]


def ablation_name(model: str, latent_dim: int = ABLATION_REF["latent_dim"],
                  kl_weight: float = ABLATION_REF["kl_weight"],
                  noise_weight: float = 0.0, long: bool = False) -> str:
    """The registered name of an ablation experiment, e.g. ``abl-vae-z128-kl0.001``,
    ``abl-ae-z2``, ``abl-vae-z128-kl0.001-noise0.5`` or ``abl-ae-z128-long``."""
    name = f"abl-{model}-z{latent_dim}" + (f"-kl{kl_weight:g}" if model == "vae" else "")
    if noise_weight:
        name += f"-noise{noise_weight:g}"
    return name + ("-long" if long else "")


def _ablation(model: str, latent_dim: int, kl_weight: float = 0.0,
              noise_weight: float = 0.0, long: bool = False, lr: float = 1e-3,
              epochs: dict | None = None) -> None:
    fields = dict(model=model, arch="conv", latent_dim=latent_dim, batch_size=32, lr=lr,
                  noise_weight=noise_weight,
                  epochs=epochs or (ABLATION_LONG_EPOCHS if long else ABLATION_SHORT_EPOCHS))
    if model == "vae":
        fields.update(kl_weight=kl_weight, likelihood="gaussian")
    _add(ablation_name(model, latent_dim, kl_weight, noise_weight, long), "ablations", **fields)


for _d in ABLATION_LATENTS:
    if _d in ABLATION_AE_LATENTS:
        _ablation("ae", _d)
    for _w in ABLATION_KL_WEIGHTS:
        _ablation("vae", _d, _w)
for _n in ABLATION_NOISE:
    _ablation("ae", ABLATION_REF["latent_dim"], noise_weight=_n)
    _ablation("vae", **ABLATION_REF, noise_weight=_n)
_ablation("ae", ABLATION_REF["latent_dim"], long=True)
_ablation("vae", **ABLATION_REF, long=True)
_ablation("ae", ABLATION_LAYOUT["latent_dim"], lr=ABLATION_LAYOUT["lr"], long=True,
          epochs=MNIST_EPOCHS)
_ablation("vae", **ABLATION_LAYOUT, long=True, epochs=MNIST_EPOCHS)

# ------------------------------------------ CIFAR-10: AE, VAE, VQ-VAE, prior
# One budget for the CIFAR-10 comparison (chapters vqvae, vqvae_generation):
# same images, epochs, batch size and learning rate for every model.
VQ_CODES = 128  # K
# Test images evaluated after every epoch by the VQ-VAEs that the questions
# chapter's Q5 compares. Two of them are this chapter's own models: the
# evaluation runs in eval mode under its own random state, so it changes no
# weight, and one training serves both chapters.
VQ_EPOCH_EVAL = {"smoke": 100, "quick": 2000, "full": 10_000}
_CIFAR = dict(dataset="cifar10", lr=2e-3)
_VQ = dict(_CIFAR, model="vqvae", latent_dim=32, num_codes=VQ_CODES, commitment=0.25,
           width=48, depth=1)
_VQ_PROBED = dict(_VQ, epoch_eval=VQ_EPOCH_EVAL)
_add("cifar-ae", "vqvae_generation", **_CIFAR, model="ae", arch="conv", latent_dim=128)
_add("cifar-vae", "vqvae_generation", **_CIFAR, model="vae", arch="conv", latent_dim=128,
     likelihood="gaussian", kl_weight=1e-4)
_add("vqvae", "vqvae", **_VQ_PROBED, codebook_update="loss", restart_dead=True)
_add("vqvae-ema", "vqvae", **_VQ, codebook_update="ema", restart_dead=True)
_add("vqvae-no-restart", "vqvae", **_VQ_PROBED, codebook_update="loss", restart_dead=False)
PIXELCNN_EPOCHS = {"smoke": 1, "quick": 4, "full": 60}
_add("pixelcnn", "vqvae_generation", model="pixelcnn", dataset="cifar10", source="vqvae",
     train_on="vq-codes", num_codes=VQ_CODES, width=48, depth=4, epochs=PIXELCNN_EPOCHS,
     lr=1e-3)


# ------------------------------------- questions readers ask (questions)
# Q1: the MNIST VAE's network and budget with a Gaussian decoder, its squared
# error averaged over the D = 784 pixels, and a KL weight of 1 (the usual
# slip) or of 1/D (the summed objective, divided by D).
_Q_VAE = dict(model="vae", arch="conv", latent_dim=16, likelihood="gaussian")
_add("q-vae-averaged", "questions", **_Q_VAE, kl_weight=1.0)
_add("q-vae-summed", "questions", **_Q_VAE, kl_weight=1 / (28 * 28))
# Q8: the collapsed ablation VAE (16-number code, KL weight 0.01, the short
# budget) with KL warm-up over the first half of its steps, or with free bits.
Q_COLLAPSE = dict(latent_dim=16, kl_weight=1e-2)
Q_FREE_BITS = 1.0  # nats per latent unit
_Q_ABL = dict(model="vae", arch="conv", likelihood="gaussian", batch_size=32, lr=1e-3,
              epochs=ABLATION_SHORT_EPOCHS, **Q_COLLAPSE)
_add("q-vae-kl0.01-warmup", "questions", **_Q_ABL, kl_warmup=0.5)
_add("q-vae-kl0.01-freebits", "questions", **_Q_ABL, free_bits=Q_FREE_BITS)
# Q5: four ways to keep the codebook used, at one budget, measured on test
# images after every epoch: no fix and restarts are the vqvae chapter's own
# models; the EMA update (without restarts) and the k-means start are added.
_add("q-vq-ema", "questions", **_VQ_PROBED, codebook_update="ema")
_add("q-vq-kmeans", "questions", **_VQ_PROBED, codebook_update="loss", codebook_init="kmeans")
Q_CODEBOOK_FIXES = {"plain": "vqvae-no-restart", "restart": "vqvae", "ema": "q-vq-ema",
                    "kmeans": "q-vq-kmeans"}  # short name -> experiment
# Q7: equal bits per image (positions x log2 K = 512), two grids: 8 x 8 codes
# of K = 256, or 16 x 16 codes of K = 4; each with a small PixelCNN prior.
Q_GRIDS = {"q-vq-grid8-k256": dict(downsample=4, num_codes=256),
           "q-vq-grid16-k4": dict(downsample=2, num_codes=4)}
for _name, _grid in Q_GRIDS.items():
    _add(_name, "questions", **dict(_VQ, restart_dead=True, **_grid))
    _add(_name.replace("q-vq", "q-pixelcnn"), "questions", model="pixelcnn",
         dataset="cifar10", source=_name, train_on="vq-codes",
         num_codes=_grid["num_codes"], width=32, depth=2, epochs=PIXELCNN_EPOCHS, lr=1e-3)


# ---------------------------------------------------------------- look-ups
# experiment name -> the chapter (docname under book/) that shows it
CHAPTERS: dict[str, str] = {name: spec["chapter"] for name, spec in EXPERIMENTS.items()}


def get_config(name: str, profile: str | None = None, **overrides) -> Config:
    """The config of experiment ``name`` in ``profile`` (default: the current
    one), with any field overridden by keyword."""
    return check_source(_registered(name, profile, **overrides))


def _registered(name: str, profile: str | None = None, **overrides) -> Config:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    profile = check_profile(profile, "profile") if profile is not None else current_profile()
    p = PROFILES[profile]
    fields = {key: value[profile] if isinstance(value, dict) else value
              for key, value in EXPERIMENTS[name].items() if key != "chapter"}
    dataset = fields.get("dataset", "mnist")
    fields.setdefault("epochs", p.epochs(dataset))
    fields.setdefault("train_size", p.train_size(dataset))
    fields.setdefault("test_size", p.test_size)
    config = Config(name=name, profile=profile, **fields)
    return dataclasses.replace(config, **overrides) if overrides else config


def check_source(config: Config) -> Config:
    """``config`` if its chain of sources (``Config.source``) can run: each a
    registered experiment of the model kind its ``train_on`` needs, on the
    same data set, with the same number of codes for code grids, and no
    loop. Else a ValueError naming the field, before anything trains."""
    seen, derived = [config.name], config
    while derived.source is not None:
        name, source = derived.name, derived.source
        if source not in EXPERIMENTS:
            raise ValueError(f"Config {name!r}: source must name a registered "
                             f"experiment, got {source!r}")
        if source in seen:
            raise ValueError(f"Config {name!r}: source {source!r} leads back to itself "
                             f"({' -> '.join(seen + [source])})")
        upstream = _registered(source, derived.profile)
        needs = DERIVED_INPUTS[derived.train_on][1]
        if upstream.model != needs:
            raise ValueError(f"Config {name!r}: source must name a {needs} experiment for "
                             f"train_on={derived.train_on!r}, got {source!r} (a {upstream.model})")
        if upstream.dataset != derived.dataset:
            raise ValueError(f"Config {name!r}: dataset must be its source's "
                             f"({upstream.dataset!r}), got {derived.dataset!r}")
        if derived.train_on == "vq-codes" and upstream.num_codes != derived.num_codes:
            raise ValueError(f"Config {name!r}: num_codes must equal its source's "
                             f"({upstream.num_codes}), got {derived.num_codes}")
        seen.append(source)
        derived = upstream
    return config
