"""The artifact cache: trained models and their test metrics.

:func:`get_or_train` returns the trained model and its test metrics. It
trains only when the cache (``AUTOENCODERS_CACHE``) has no entry for the
pair (config, hash of the training code): :func:`source_hash` reads an
explicit allow-list of the modules that decide what a training run produces,
so editing a metric, a plot, an analysis or the bench retrains nothing.
Writes are atomic; a damaged entry is reported and retrained (and only a
damaged one: any other error leaves the entry alone). Training holds a lock
on the entry, so two processes asking for one model train it once; a cache
that cannot be written gets the model trained and not saved.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no lock between processes
    fcntl = None

from . import data as data_mod
from .atomic import atomic_open, atomic_save
from .config import NAME_PATTERN, Config
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
    included. Each file counts by its syntax tree without docstrings, so a
    comment, a docstring or a change of layout retrains nothing. Cached per
    process: call ``source_hash.cache_clear()`` after editing the package in
    place."""
    root = Path(root or Path(__file__).parent)
    digest = hashlib.sha256()
    files = sorted({path for pattern in TRAINING_CODE for path in root.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no training code under {root}")
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(_code_only(path.read_text()).encode())
    return digest.hexdigest()


def _code_only(source: str) -> str:
    """``source``'s syntax tree with every docstring removed, as text."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


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
    """The cache folder of ``config``'s entry, always inside the cache's
    ``runs`` folder (``Config`` admits only plain names; this checks again)."""
    runs = cache_root() / "runs"
    folder = runs / f"{config.name}-{config.profile}-{config_key(config)}"
    if Path(os.path.normpath(folder)).parent != runs:
        raise ValueError(f"Config name {config.name!r} would put its cache entry at "
                         f"{os.path.normpath(folder)}, outside {runs}")
    return folder


def load_data(config: Config) -> tuple[data_mod.ImageData, data_mod.ImageData]:
    """The (train, test) splits that ``config`` trains and tests on: the
    images, or for a derived model the images passed through its upstream
    model (see ``Config.source``)."""
    if config.source is not None and config.train_on not in TRANSFORMS:
        raise ValueError(f"Config {config.name!r}: train_on must be one of "
                         f"{sorted(TRANSFORMS)}, got {config.train_on!r}")
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
    name, in the current profile), training only on a cache miss.

    The device is checked first (see :func:`~autoencoders.train.pick_device`).
    Training holds a lock on the entry's folder, so a second process asking
    for the same model waits and then reads the first one's result. In a
    cache that cannot be written (read-only) the model is trained, with a
    warning, and not saved."""
    if isinstance(config, str):
        config = get_config(config)
    device = pick_device(device)
    folder = run_dir(config)
    cached = _load_cached(config, folder, device, discard=False)
    if cached is not None:
        return cached
    with _entry_lock(config, folder) as writable:
        # under the lock: another process may have trained it while we
        # waited, and a damaged entry is discarded by one process only
        cached = _load_cached(config, folder, device, discard=True)
        if cached is not None:
            return cached
        return _train(config, folder, device, progress, save=writable)


def _train(config: Config, folder: Path, device: torch.device,
           progress: bool | None, save: bool) -> Run:
    train, test = load_data(config)
    torch.manual_seed(config.seed)
    model = build_model(config, train.shape, len(train))
    print(f"[{config.name}] training ({config.profile} profile, {device.type}) on "
          f"{data_mod.describe(train, test)}", file=sys.stderr)
    # metrics["steps"]: the loss terms of about 100 evenly spaced batches
    history = fit(model, train.images, train.labels, epochs=config.epochs,
                  batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                  device=device, checkpoint=folder / "checkpoint.pt" if save else None,
                  progress=progress, desc=config.name, lr_schedule=config.lr_schedule,
                  log_every=max(1, config.steps(len(train)) // 100),
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
        "threads": torch.get_num_threads(),  # 1 for a model trained by a worker (parallel)
        "data": data_mod.describe(train, test),
        "torch": torch.__version__,
    }
    if save:
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


def find_cached(config: Config | str, *, device: str | torch.device | None = None) -> Run | None:
    """The cached run of ``config`` (or an experiment name, in the current
    profile) if this code has trained it, else ``None``; never trains."""
    if isinstance(config, str):
        config = get_config(config)
    return _load_cached(config, run_dir(config), pick_device(device), discard=False)


def is_cached(config: Config | str) -> bool:
    """Whether ``config`` (or an experiment name, in the current profile) has
    a complete entry: a quick look at its files, without reading the model
    (damage is found, and the model retrained, when it is loaded)."""
    if isinstance(config, str):
        config = get_config(config)
    folder = run_dir(config)
    return (folder / "metrics.json").is_file() and (folder / "model.pt").is_file()


def cached_evaluation(run: Run, name: str, compute: Callable[[], dict], *,
                      also: Sequence[Run] = (), inputs: Sequence[torch.Tensor] = ()) -> dict:
    """``compute()`` for ``run``'s model, stored beside the model (under
    ``evals/``) and read back on later calls: an evaluation over a whole test
    split is done once per trained model. The entry is keyed by the model's
    cache key (its folder), ``name``, and the source of ``compute`` and of
    the evaluation code it relies on (:data:`EVALUATION_CODE`), so editing
    either recomputes it. ``compute`` returns a dict of tensors, numbers,
    strings, lists or dicts of these (numpy arrays become tensors).

    When the result also depends on other trained models or on input tensors
    (test images, noise), pass them as ``also`` and ``inputs``: their cache
    folders and a hash of their values join the key."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"evaluation name must be plain ([A-Za-z0-9._-]+), got {name!r}")
    digest = hashlib.sha256(name.encode())
    digest.update(inspect.getsource(compute).encode())
    digest.update(_evaluation_code_hash().encode())
    for other in also:
        digest.update(other.path.name.encode())
    for tensor in inputs:
        digest.update(fingerprint(tensor).encode())
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


def fingerprint(t: torch.Tensor) -> str:
    """A short hash of a tensor's values: part of a cached evaluation's name
    when the evaluation depends on more than the model (e.g. its test images)."""
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:12]


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


class _Damaged(Exception):
    """A cache entry's own files contradict each other: safe to discard."""


def _load_cached(config: Config, folder: Path, device: torch.device,
                 discard: bool) -> Run | None:
    """The cached run, or ``None`` when there is none or the entry is damaged
    (then, with ``discard``, reported and deleted).

    Only damage condemns an entry: metrics.json that is not the JSON this
    module writes, or model.pt missing or not matching the checksum in it.
    Any other error (a device, an unreadable folder, a torch that cannot
    read the file) propagates and leaves the entry alone."""
    metrics_file, model_file = folder / "metrics.json", folder / "model.pt"
    if not metrics_file.is_file():
        return None
    try:
        try:
            metrics = json.loads(metrics_file.read_text())
            expected, shape = metrics["model_sha256"], tuple(metrics["input_shape"])
            train_images = int(metrics["train_images"])
        except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
            raise _Damaged(f"metrics.json is unreadable ({type(err).__name__}: {err})") from None
        if not model_file.is_file():
            raise _Damaged("model.pt is missing")
        if _sha256(model_file) != expected:
            raise _Damaged("model.pt does not match the checksum in metrics.json")
    except _Damaged as err:
        if discard:
            _discard(config, folder, str(err), (metrics_file, model_file))
        return None
    model = build_model(config, shape, train_images)
    # read onto the CPU, then move: a device problem is not damage
    model.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=True))
    return Run(config, model.to(device).eval(), metrics, folder, trained=False)


def _discard(config: Config, folder: Path, why: str, files: tuple[Path, ...]) -> None:
    try:
        for file in files:
            file.unlink(missing_ok=True)
    except OSError as err:  # a read-only cache: leave the entry, train without saving
        warnings.warn(f"[{config.name}] cache entry {folder} is damaged ({why}) and "
                      f"cannot be removed ({type(err).__name__}: {err}): the cache is "
                      f"read-only; retraining without saving.", stacklevel=4)
    else:
        warnings.warn(f"[{config.name}] cache entry {folder} is damaged ({why}); "
                      f"retraining.", stacklevel=4)


@contextmanager
def _entry_lock(config: Config, folder: Path):
    """Hold an exclusive lock on ``folder``'s lock file while training into it;
    yields whether the folder can be written (``False``: a read-only cache,
    with a warning; the run is trained and not saved)."""
    def read_only(err: str) -> bool:
        warnings.warn(f"[{config.name}] the cache folder {folder} cannot be written "
                      f"({err}): the cache is read-only here; training without saving "
                      f"the model.", stacklevel=5)
        return False

    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: reading is enough to lock
            fd = os.open(folder / "lock", os.O_RDONLY)
    except OSError as err:
        fd, why = None, f"{type(err).__name__}: {err}"
    if fd is None:
        yield read_only(why)
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"[{config.name}] another process is training this model into "
                      f"{folder}; waiting for it to finish", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield os.access(folder, os.W_OK) or read_only("no write permission")
    finally:
        os.close(fd)  # closing releases the lock


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
