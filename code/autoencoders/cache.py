"""The artifact cache: trained models and their test metrics.

:func:`get_or_train` returns the trained model and its test metrics. It
trains only when the cache (``AUTOENCODERS_CACHE``) has no entry for the
pair (config, hash of the training code): :func:`source_hash` reads an
explicit allow-list of the modules that decide what a training run produces,
so editing a metric, a plot, an analysis or the bench retrains nothing.
Writes are atomic; a damaged entry is reported and retrained.
"""
from __future__ import annotations

import hashlib
import json
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from . import data as data_mod
from .atomic import atomic_open, atomic_save
from .config import Config
from .experiments import get_config
from .inference import code_grids
from .models.quantizer import code_counts
from .models import build_model
from .settings import cache_root
from .train import evaluate, fit, pick_device
from .transforms import TRANSFORMS

# The modules (relative to the package) whose code decides what a training
# run produces. Anything else (metrics, plots, analyses, derivations, the
# book helpers, the bench, the command line) may change without retraining.
TRAINING_CODE = ("config.py", "data.py", "inference.py", "losses.py", "noise.py",
                 "train.py", "transforms.py", "models/*.py")


@lru_cache(maxsize=4)
def source_hash(root: Path | None = None) -> str:
    """SHA-256 over the training code (:data:`TRAINING_CODE`), file names
    included. Cached per process: call ``source_hash.cache_clear()`` after
    editing the package in place."""
    root = Path(root or Path(__file__).parent)
    digest = hashlib.sha256()
    files = sorted({path for pattern in TRAINING_CODE for path in root.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no training code under {root}")
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def config_key(config: Config) -> str:
    """Cache key: the config plus the hash of the training code."""
    blob = json.dumps(config.to_dict(), sort_keys=True) + source_hash()
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Run:
    """A trained model, its metrics and where they are cached."""

    config: Config
    model: torch.nn.Module
    metrics: dict
    path: Path
    trained: bool  # False when it came from the cache


def run_dir(config: Config) -> Path:
    return cache_root() / "runs" / f"{config.name}-{config.profile}-{config_key(config)}"


def load_data(config: Config) -> tuple[data_mod.ImageData, data_mod.ImageData]:
    """The (train, test) splits that ``config`` trains and tests on: the
    images, or for a derived model the images passed through its upstream
    model (see ``Config.source``)."""
    train = data_mod.load(config.dataset, "train").subset(config.train_size)
    test = data_mod.load(config.dataset, "test").subset(config.test_size)
    if config.source is not None:
        if config.train_on not in TRANSFORMS:
            raise ValueError(f"Config {config.name!r}: train_on must be one of "
                             f"{sorted(TRANSFORMS)}, got {config.train_on!r}")
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
                  log_every=max(1, config.epochs * -(-len(train) // config.batch_size) // 100),
                  on_epoch=_epoch_report(model, test.subset(config.epoch_eval), config.seed)
                  if config.epoch_eval else None)
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
        "train_images": len(train),
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


def _epoch_report(model: torch.nn.Module, probe: data_mod.ImageData, seed: int):
    """For ``Config.epoch_eval``: after each epoch, the test terms on the
    ``probe`` images ("test_" + each term of ``evaluate``) and, for a
    VQ-VAE, the number of codes those images use ("test_codes_used")."""
    def report(epoch: int) -> dict:
        terms = {f"test_{k}": v for k, v in
                 evaluate(model, probe.images, probe.labels, seed=seed).items()}
        if hasattr(model, "quantizer"):
            used = code_counts(code_grids(model, probe.images), model.num_codes) > 0
            terms["test_codes_used"] = int(used.sum())
        return terms
    return report


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
