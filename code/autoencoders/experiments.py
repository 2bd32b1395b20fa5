"""Named experiments, the training profiles, and the artifact cache.

A :class:`Config` says everything that decides a trained model: the model,
its sizes and loss weights, the data, the budget and the seed. The profile
(``smoke``, ``quick`` or ``full``; ``AUTOENCODERS_PROFILE``) sets the budget
and is part of every config.

:func:`get_or_train` returns the trained model and its test metrics. It
trains only when the cache (``AUTOENCODERS_CACHE``) has no entry for the pair
(config, hash of the package's training code); writes are atomic, and a
damaged entry is reported and retrained.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from . import data as data_mod
from . import metrics
from .models import build_model
from .models.discrete_vae import DISCRETE_ESTIMATORS
from .atomic import atomic_open, atomic_save
from .settings import cache_root
from .train import evaluate, fit, pick_device

MODELS = ("ae", "vae", "vqvae", "pixelcnn", "classifier", "discrete_vae")
ARCHS = ("linear", "conv", "transformer")
LIKELIHOODS = ("gaussian", "bernoulli")
CODEBOOK_UPDATES = ("loss", "ema")


# ------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class Profile:
    """A training budget. ``epochs`` scales each experiment's epoch count;
    ``train_size``/``test_size`` cap the data (``None``: all of it)."""

    name: str
    mnist_epochs: int
    cifar_epochs: int
    train_size: int | None
    test_size: int | None


PROFILES = {
    "smoke": Profile("smoke", mnist_epochs=1, cifar_epochs=1, train_size=512, test_size=500),
    "quick": Profile("quick", mnist_epochs=10, cifar_epochs=3, train_size=None, test_size=None),
    "full": Profile("full", mnist_epochs=25, cifar_epochs=30, train_size=None, test_size=None),
}


def current_profile() -> str:
    """``AUTOENCODERS_PROFILE``, else ``full`` with CUDA and ``quick`` without."""
    name = os.environ.get("AUTOENCODERS_PROFILE", "").strip()
    if not name:
        return "full" if torch.cuda.is_available() else "quick"
    if name not in PROFILES:
        raise ValueError(f"AUTOENCODERS_PROFILE must be one of {sorted(PROFILES)}, got {name!r}")
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
    # upstream experiment (same profile) and ``train_on`` a function in
    # TRANSFORMS that turns the data through it.
    source: str | None = None
    train_on: str = "images"
    # VQ-VAE and its PixelCNN prior. latent_dim is the code dimension d.
    codebook_size: int = 128       # K code vectors (PixelCNN: K values per position)
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

    def __post_init__(self):
        def bad(field: str, why: str):
            raise ValueError(f"Config {self.name!r}: {field} {why}, got {getattr(self, field)!r}")

        if not self.name or not isinstance(self.name, str):
            bad("name", "must be a non-empty string")
        if self.model not in MODELS:
            bad("model", f"must be one of {MODELS}")
        if self.dataset not in data_mod.DATASETS:
            bad("dataset", f"must be one of {data_mod.DATASETS}")
        if self.arch not in ARCHS:
            bad("arch", f"must be one of {ARCHS}")
        if self.likelihood not in LIKELIHOODS:
            bad("likelihood", f"must be one of {LIKELIHOODS}")
        if self.profile not in PROFILES:
            bad("profile", f"must be one of {sorted(PROFILES)}")
        for field in ("latent_dim", "epochs", "batch_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                bad(field, "must be a positive integer")
        for field in ("train_size", "test_size"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value <= 0):
                bad(field, "must be a positive integer or None")
        if not self.kl_weight >= 0:  # also rejects NaN
            bad("kl_weight", "must be >= 0")
        if not 0 <= self.noise_weight <= 1:
            bad("noise_weight", "must lie in [0, 1]")
        if not self.lr > 0:
            bad("lr", "must be > 0")
        if self.source is not None and self.source not in EXPERIMENTS:
            bad("source", "must name a registered experiment")
        if self.train_on != "images" and self.train_on not in TRANSFORMS:
            bad("train_on", f"must be 'images' or one of {sorted(TRANSFORMS)}")
        if (self.source is None) != (self.train_on == "images"):
            bad("train_on", "needs a source experiment (and a source needs a train_on)")
        for field in ("codebook_size", "width"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                bad(field, "must be an integer >= 2")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            bad("depth", "must be a non-negative integer")
        if not self.commitment >= 0:
            bad("commitment", "must be >= 0")
        if self.codebook_update not in CODEBOOK_UPDATES:
            bad("codebook_update", f"must be one of {CODEBOOK_UPDATES}")
        if not isinstance(self.restart_dead, bool):
            bad("restart_dead", "must be True or False")
        for field, low in (("categories", 2), ("samples", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                bad(field, f"must be an integer >= {low}")
        if self.estimator not in DISCRETE_ESTIMATORS:
            bad("estimator", f"must be one of {DISCRETE_ESTIMATORS}")
        if self.model == "discrete_vae" and self.estimator == "score" and self.samples < 2:
            bad("samples", "must be >= 2 for the score-function estimator (leave-one-out baseline)")
        if not self.usage_weight >= 0:
            bad("usage_weight", "must be >= 0")
        if not self.temperature > 0:
            bad("temperature", "must be > 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Cache key: this config plus the hash of the package's training code."""
        blob = json.dumps(self.to_dict(), sort_keys=True) + source_hash()
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Files whose changes do not change what a training run produces.
_NOT_TRAINING_CODE = {"plots.py", "derivations.py", "__main__.py", "bench.py", "report.py"}


@lru_cache(maxsize=4)
def source_hash(root: Path | None = None) -> str:
    """SHA-256 over the package's training code (every module but the
    figure, derivation and command-line ones), so editing a model or the loop
    retrains while editing a plot does not."""
    root = Path(root or Path(__file__).parent)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.name in _NOT_TRAINING_CODE:
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------- experiments
EXPERIMENTS: dict[str, Callable[[Profile], Config]] = {}

# name -> fn(upstream Run, ImageData, config) -> ImageData: what a model with
# ``train_on=name`` trains and is tested on. The function gets both splits in
# turn (``data.split``) and may return the test split unchanged.
TRANSFORMS: dict[str, Callable] = {}


def transform(name: str):
    """Register a data transform for ``Config.train_on`` (see TRANSFORMS)."""
    def register(fn):
        TRANSFORMS[name] = fn
        return fn
    return register


# experiment name -> the chapter (docname under book/) that shows it
CHAPTERS: dict[str, str] = {}


def experiment(name: str, chapter: str | None = None):
    """Register ``fn(profile) -> dict of Config fields`` as experiment
    ``name``, shown in ``chapter`` (a file name under book/, no suffix)."""
    if chapter is not None:
        CHAPTERS[name] = chapter

    def register(fn):
        def make(profile: Profile) -> Config:
            fields = fn(profile)
            fields.setdefault("train_size", profile.train_size)
            fields.setdefault("test_size", profile.test_size)
            return Config(name=name, profile=profile.name, **fields)
        EXPERIMENTS[name] = make
        return fn
    return register


def get_config(name: str, profile: str | None = None, **overrides) -> Config:
    """The config of experiment ``name`` in ``profile`` (default: the current
    one), with any field overridden by keyword."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    config = EXPERIMENTS[name](PROFILES[profile or current_profile()])
    return dataclasses.replace(config, **overrides) if overrides else config


for _arch in ARCHS:
    @experiment(f"ae-{_arch}", chapter="autoencoders")
    def _ae(p: Profile, arch=_arch):
        return dict(model="ae", arch=arch, latent_dim=32, epochs=p.mnist_epochs)


@experiment("ae-linear-pca", chapter="autoencoders")
def _ae_linear_pca(p: Profile):
    """A linear AE trained to convergence, to compare with PCA: Adam's noise
    sets a floor on how close it gets, so more epochs and larger batches."""
    return dict(model="ae", arch="linear", latent_dim=16, epochs=20 * p.mnist_epochs,
                batch_size=250, lr=2e-3)


@experiment("vae-mnist", chapter="vae_mnist")
def _vae_mnist(p: Profile):
    return dict(model="vae", arch="conv", latent_dim=16, kl_weight=1.0,
                likelihood="bernoulli", epochs=p.mnist_epochs)


# ------------- VAE chapter: classifiers on real / VAE-made digits (vae_mnist)
@experiment("classifier-real", chapter="vae_mnist")
def _classifier_mnist(p: Profile):
    return dict(model="classifier", epochs=p.mnist_epochs)


def _through_vae(upstream: "Run", images: data_mod.ImageData, config: Config,
                 fresh_noise: bool, what: str) -> data_mod.ImageData:
    """The training split passed through the upstream VAE (the test split
    is returned unchanged: every classifier is tested on real digits). Each
    image keeps its label; the result is the decoder's mean image at z =
    mu (``fresh_noise=False``) or at a new draw z ~ q(z|x)."""
    if images.split == "test":
        return images
    model = upstream.model
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(config.seed + 1)

    def through(x):
        mu, logvar = model.encode(x)
        if fresh_noise:
            mu = mu + torch.exp(0.5 * logvar) * torch.randn(
                mu.shape, generator=gen, device=device, dtype=mu.dtype)
        return model.decode(mu)

    made = metrics.apply_in_batches(model, through, images.images)
    return data_mod.ImageData(images.name, images.split,
                              made.mul(255.0).round().to(torch.uint8), images.labels,
                              f"{what} by {upstream.config.name} of {images.source}")


@transform("vae-reconstructions")
def _vae_reconstructions(upstream: "Run", images: data_mod.ImageData,
                         config: Config) -> data_mod.ImageData:
    """Each training digit replaced by the VAE's reconstruction (z = mu)."""
    return _through_vae(upstream, images, config, False, "reconstructions")


@transform("vae-posterior-samples")
def _vae_posterior_samples(upstream: "Run", images: data_mod.ImageData,
                           config: Config) -> data_mod.ImageData:
    """Each training digit replaced by a sample of the VAE decoded from a
    fresh draw z ~ q(z|x), labelled with the digit's label."""
    return _through_vae(upstream, images, config, True, "posterior samples")


@experiment("classifier-vae-recon", chapter="vae_mnist")
def _classifier_vae_recon(p: Profile):
    return dict(model="classifier", source="vae-mnist", train_on="vae-reconstructions",
                epochs=p.mnist_epochs)


@experiment("classifier-vae-samples", chapter="vae_mnist")
def _classifier_vae_samples(p: Profile):
    return dict(model="classifier", source="vae-mnist", train_on="vae-posterior-samples",
                epochs=p.mnist_epochs)


# --------- score-function chapter: a VAE with a categorical latent (digit)
def _discrete_vae(p: Profile, **fields) -> dict:
    # batches of 64: twice the steps of the other MNIST models for the same
    # epochs, which the slowly learned code needs more than large batches
    return dict(model="discrete_vae", arch="conv", latent_dim=4, categories=10,
                likelihood="bernoulli", kl_weight=1.0, epochs=p.mnist_epochs,
                batch_size=64, **fields)


@experiment("dvae-score", chapter="score_function")
def _dvae_score(p: Profile):
    return _discrete_vae(p, estimator="score", samples=4, usage_weight=5.0)


@experiment("dvae-gumbel", chapter="score_function")
def _dvae_gumbel(p: Profile):
    return _discrete_vae(p, estimator="gumbel", temperature=0.5, usage_weight=5.0)


# ------------------------------------------------- ablations (chapter 2.4)
# Conv AEs and Gaussian VAEs (per-pixel MSE + kl_weight * KL) on MNIST. Two
# budgets: "short" is the guide's default of 5 epochs in full (3 in quick),
# "long" its recommended 25 in full (the profile's MNIST epochs: 10 in
# quick). The grid, the denoisers and their no-noise baselines use "short";
# the reference AE/VAE pair of ABLATION_REF is trained at both budgets.
# Batches of 32: on 5,000 offline training digits, 3 epochs of batches of
# 128 are only 120 steps, too few for the AE to learn (test MSE 0.03 vs 0.007).
ABLATION_LATENTS = (512, 256, 128, 16, 2)
ABLATION_AE_LATENTS = (128, 16, 2)  # AEs for the grid (512 and 256 cost much, teach little)
ABLATION_KL_WEIGHTS = (1e-2, 1e-3, 1e-4)
ABLATION_NOISE = (0.25, 0.5, 0.75)
ABLATION_REF = dict(latent_dim=128, kl_weight=1e-3)
_ABLATION_SHORT = {"smoke": 1, "quick": 3, "full": 5}
# The 2-number AE and VAE of the latent-layout figure: long budget, and a
# smaller learning rate, since at 1e-3 the 2-number conv AE gets stuck in
# its first epoch with every output pixel at 0 (the sigmoid saturates and
# its gradient vanishes); at 2e-4 it does not, for the seeds we tried.
ABLATION_LAYOUT = dict(latent_dim=2, kl_weight=1e-3, lr=2e-4)


def ablation_epochs(p: Profile, long: bool = False) -> int:
    """The epochs of an ablation model: the "long" or the "short" budget."""
    return p.mnist_epochs if long else _ABLATION_SHORT[p.name]


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
              noise_weight: float = 0.0, long: bool = False, lr: float = 1e-3) -> None:
    @experiment(ablation_name(model, latent_dim, kl_weight, noise_weight, long),
                chapter="ablations")
    def _make(p: Profile):
        fields = dict(model=model, arch="conv", latent_dim=latent_dim, batch_size=32,
                      lr=lr, noise_weight=noise_weight, epochs=ablation_epochs(p, long))
        if model == "vae":
            fields.update(kl_weight=kl_weight, likelihood="gaussian")
        return fields


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
_ablation("ae", ABLATION_LAYOUT["latent_dim"], lr=ABLATION_LAYOUT["lr"], long=True)
_ablation("vae", **ABLATION_LAYOUT, long=True)


# ------------------------------------------ CIFAR-10: AE, VAE, VQ-VAE, prior
# One budget for the CIFAR-10 comparison (chapters vqvae, vqvae_generation):
# same images, epochs, batch size and learning rate for every model. The
# quick profile trains on a fixed 10,000-image subset; full uses all 50,000.
CIFAR_TRAIN_SIZE = {"smoke": 512, "quick": 10_000, "full": None}
VQ_CODES = 128  # K


def _cifar(p: Profile, **fields) -> dict:
    return dict(dataset="cifar10", epochs=p.cifar_epochs, lr=2e-3,
                train_size=CIFAR_TRAIN_SIZE[p.name], **fields)


@experiment("cifar-ae", chapter="vqvae_generation")
def _cifar_ae(p: Profile):
    return _cifar(p, model="ae", arch="conv", latent_dim=128)


@experiment("cifar-vae", chapter="vqvae_generation")
def _cifar_vae(p: Profile):
    return _cifar(p, model="vae", arch="conv", latent_dim=128,
                  likelihood="gaussian", kl_weight=1e-4)


def _vq(p: Profile, **fields) -> dict:
    return _cifar(p, model="vqvae", latent_dim=32, codebook_size=VQ_CODES,
                  commitment=0.25, width=48, depth=1, **fields)


@experiment("vqvae", chapter="vqvae")
def _vqvae(p: Profile):
    return _vq(p, codebook_update="loss", restart_dead=True)


@experiment("vqvae-ema", chapter="vqvae")
def _vqvae_ema(p: Profile):
    return _vq(p, codebook_update="ema", restart_dead=True)


@experiment("vqvae-no-restart", chapter="vqvae")
def _vqvae_no_restart(p: Profile):
    return _vq(p, codebook_update="loss", restart_dead=False)


@transform("vq-codes")
def _vq_codes(upstream: "Run", images: data_mod.ImageData,
              config: Config) -> data_mod.ImageData:
    """The grids of code indices that the upstream VQ-VAE gives ``images``."""
    model = upstream.model
    if model.num_codes != config.codebook_size:
        raise ValueError(f"Config {config.name!r}: codebook_size must equal the "
                         f"source's ({model.num_codes}), got {config.codebook_size}")
    return data_mod.ImageData(images.name, images.split,
                              metrics.code_grids(model, images.images), images.labels,
                              f"code grids of {upstream.config.name} on {images.source}")


PIXELCNN_EPOCHS = {"smoke": 1, "quick": 4, "full": 60}


@experiment("pixelcnn", chapter="vqvae_generation")
def _pixelcnn(p: Profile):
    return dict(model="pixelcnn", dataset="cifar10", source="vqvae", train_on="vq-codes",
                codebook_size=VQ_CODES, width=48, depth=4, epochs=PIXELCNN_EPOCHS[p.name],
                lr=1e-3, train_size=CIFAR_TRAIN_SIZE[p.name])


# --------------------------------------------------------------------- cache
@dataclass
class Run:
    """A trained model, its metrics and where they are cached."""

    config: Config
    model: torch.nn.Module
    metrics: dict
    path: Path
    trained: bool  # False when it came from the cache


def run_dir(config: Config) -> Path:
    return cache_root() / "runs" / f"{config.name}-{config.profile}-{config.key()}"


def load_data(config: Config) -> tuple[data_mod.ImageData, data_mod.ImageData]:
    """The (train, test) splits that ``config`` trains and tests on: the
    images, or for a derived model the images passed through its upstream
    model (see ``Config.source``)."""
    train = data_mod.load(config.dataset, "train").subset(config.train_size)
    test = data_mod.load(config.dataset, "test").subset(config.test_size)
    if config.source is not None:
        upstream = get_or_train(get_config(config.source, config.profile))
        fn = TRANSFORMS[config.train_on]
        train, test = fn(upstream, train, config), fn(upstream, test, config)
    return train, test


def get_or_train(config: Config | str, *, progress: bool | None = None,
                 device: str | torch.device | None = None) -> Run:
    """The trained model and test metrics for ``config`` (or an experiment
    name, in the current profile), training only on a cache miss."""
    if isinstance(config, str):
        config = get_config(config)
    folder = run_dir(config)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    cached = _load_cached(config, folder, device)
    if cached is not None:
        return cached

    train, test = load_data(config)
    torch.manual_seed(config.seed)
    model = build_model(config, train.shape)
    print(f"[{config.name}] training ({config.profile} profile, {device.type}) on "
          f"{data_mod.describe(train, test)}", file=sys.stderr)
    # metrics["steps"]: the loss terms of about 100 evenly spaced batches
    history = fit(model, train.images, train.labels, epochs=config.epochs,
                  batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                  device=device, checkpoint=folder / "checkpoint.pt",
                  progress=progress, desc=config.name,
                  log_every=max(1, config.epochs * -(-len(train) // config.batch_size) // 100))
    test_terms = evaluate(model, test.images, test.labels, seed=config.seed)
    metrics = {
        "config": config.to_dict(),
        "test": test_terms,
        "history": history.epochs,
        "steps": history.steps,
        "train_seconds": history.seconds,
        "train_images_per_second": history.examples_per_second,
        "parameters": sum(p.numel() for p in model.parameters()),
        "input_shape": list(train.shape),
        "device": device.type,
        "data": data_mod.describe(train, test),
        "torch": torch.__version__,
    }
    model_file = folder / "model.pt"
    atomic_save(model.state_dict(), model_file)
    metrics["model_sha256"] = _sha256(model_file)
    with atomic_open(folder / "metrics.json", "w") as f:  # written last: the entry is complete
        json.dump(metrics, f, indent=1)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return Run(config, model.eval(), metrics, folder, trained=True)


def _load_cached(config: Config, folder: Path, device: torch.device) -> Run | None:
    metrics_file, model_file = folder / "metrics.json", folder / "model.pt"
    if not metrics_file.is_file():
        return None
    try:
        metrics = json.loads(metrics_file.read_text())
        if _sha256(model_file) != metrics["model_sha256"]:
            raise ValueError("model.pt does not match the checksum in metrics.json")
        model = build_model(config, tuple(metrics["input_shape"]))
        model.load_state_dict(torch.load(model_file, map_location=device, weights_only=True))
    except Exception as err:  # damaged, truncated or half-deleted entry
        warnings.warn(f"[{config.name}] cache entry {folder} is damaged "
                      f"({type(err).__name__}: {err}); retraining.", stacklevel=3)
        metrics_file.unlink(missing_ok=True)
        model_file.unlink(missing_ok=True)
        return None
    return Run(config, model.to(device).eval(), metrics, folder, trained=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
