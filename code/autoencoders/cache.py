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
import inspect
import json
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from . import data as data_mod
from .atomic import atomic_open, atomic_save
from .config import NAME_PATTERN, Config
from .experiments import get_config
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


def find_cached(config: Config | str, *, device: str | torch.device | None = None) -> Run | None:
    """The cached run of ``config`` (or an experiment name, in the current
    profile) if this code has trained it, else ``None``; never trains."""
    if isinstance(config, str):
        config = get_config(config)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    return _load_cached(config, run_dir(config), device)


def cached_evaluation(run: Run, name: str, compute: Callable[[], dict]) -> dict:
    """``compute()`` for ``run``'s model, stored beside the model (under
    ``evals/``) and read back on later calls: an evaluation over a whole test
    split is done once per trained model. The entry is keyed by the model's
    cache key (its folder), ``name``, and the source of ``compute`` and of
    the evaluation code it relies on (:data:`EVALUATION_CODE`), so editing
    either recomputes it. ``compute`` returns a dict of tensors, numbers,
    strings, lists or dicts of these (numpy arrays become tensors)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"evaluation name must be plain ([A-Za-z0-9._-]+), got {name!r}")
    digest = hashlib.sha256(name.encode())
    digest.update(inspect.getsource(compute).encode())
    digest.update(_evaluation_code_hash().encode())
    path = run.path / "evals" / f"{name}-{digest.hexdigest()[:16]}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged file: compute again
            warnings.warn(f"[{run.config.name}] cached evaluation {path} is unreadable "
                          f"({type(err).__name__}: {err}); computing it again.", stacklevel=2)
    result = _tensors(compute())
    try:
        atomic_save(result, path)
    except OSError as err:  # e.g. a read-only cache: still return the result
        warnings.warn(f"[{run.config.name}] could not store evaluation {name} "
                      f"({type(err).__name__}: {err}).", stacklevel=2)
    return result


# The modules an evaluation's result depends on besides its own function.
EVALUATION_CODE = ("inference.py", "metrics/*.py", "losses.py", "data.py")


@lru_cache(maxsize=1)
def _evaluation_code_hash() -> str:
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted({p for pattern in EVALUATION_CODE for p in root.glob(pattern)}):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _tensors(value):
    """numpy arrays (and numpy scalars) inside ``value`` as torch tensors
    (and Python numbers), so that ``torch.load(weights_only=True)`` reads it."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors(v) for v in value)
    return value


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
