"""The artifact cache: trained models and their test metrics.

:func:`get_or_train` returns the trained model and its test metrics. It
trains only when the cache (``AUTOENCODERS_CACHE``) has no entry for its key
(:func:`config_key`): the config, a hash of the training code, and a
fingerprint of the data the model is trained and tested on (and, for a
model trained on another's outputs, that model's key). :func:`source_hash`
reads an explicit allow-list of the modules that decide what a training run
produces, so editing a metric, a plot, an analysis or the bench retrains
nothing.

An entry proves it is the model asked for: its ``metrics.json`` names the key
and the config it was trained for, and holds every field a reader needs, of
the right type and consistent with the data (:func:`_check_metrics`); its
``model.pt`` matches the checksum there, loads into the model the config
describes, and holds finite weights. Anything else is damage: reported,
discarded (with the entry's checkpoint and cached evaluations) and
retrained. Only damage condemns an entry: any other error (a device, a
torch that cannot read the file) leaves it alone. A run whose test metrics
are not finite failed: it raises :class:`TrainingFailed` and nothing of it
is cached.

Writes are atomic. Training holds a lock on the entry (``filelock``, so on
every OS), so two processes asking for one model train it once; a cache
that cannot be written, or a full disk, gets the model trained and not
saved, with a warning. Temporary files and stale checkpoints that an
interrupted save left in an entry are removed the next time it is used.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch
from filelock import FileLock, Timeout

from . import data as data_mod
from .atomic import TMP_SUFFIX, DiskFullError, atomic_open, atomic_save, umask
from .config import NAME_PATTERN, Config
from .experiments import check_source, get_config
from .inference import code_grids
from .models.quantizer import code_counts
from .models import build_model
from .settings import cache_root
from .train import TrainingDiverged, evaluate, fit, pick_device
from .transforms import TRANSFORMS

# The modules (relative to the package) whose code decides what a training
# run produces. Anything else (metrics, plots, analyses, derivations, the
# book helpers, the bench, the command line) may change without retraining.
TRAINING_CODE = ("config.py", "data.py", "inference.py", "losses.py", "noise.py",
                 "train.py", "transforms.py", "models/*.py")
# The functions of this module that start a run (the data subsets, the seed
# set before the model is built, the trainer's arguments, the per-epoch
# probe): hashed with the training code, the rest of this module is not.
RUN_CODE = ("load_data", "_train", "_epoch_report")


@lru_cache(maxsize=4)
def source_hash(root: Path | None = None) -> str:
    """SHA-256 over the training code (:data:`TRAINING_CODE`, file names
    included, and this module's :data:`RUN_CODE` functions). Each counts by
    its syntax tree without docstrings, so a comment, a docstring or a change
    of layout retrains nothing. Cached per process: call
    ``source_hash.cache_clear()`` after editing the package in place."""
    root = Path(root or Path(__file__).parent)
    digest = hashlib.sha256()
    files = sorted({path for pattern in TRAINING_CODE for path in root.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no training code under {root}")
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(_code_only(path.read_text()).encode())
    tree = ast.parse((root / "cache.py").read_text())
    run_code = {node.name: node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name in RUN_CODE}
    for name in RUN_CODE:
        if name not in run_code:
            raise LookupError(f"{root / 'cache.py'} defines no {name}() (cache.RUN_CODE)")
        digest.update(f"cache.{name}".encode())
        digest.update(_code_only(run_code[name]).encode())
    return digest.hexdigest()


def _code_only(source: str | ast.AST) -> str:
    """``source``'s syntax tree (or the tree given) with every docstring
    removed, as text."""
    tree = ast.parse(source) if isinstance(source, str) else copy.deepcopy(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def config_key(config: Config) -> str:
    """Cache key: the config, the hash of the training code, the data the
    model is trained and tested on (:func:`data_identity`) and, for a model
    trained on another model's outputs, that model's key and the checksum of
    its cached weights (so a model trained again under the same key, e.g.
    after damage, on another device or another torch, retrains what was
    trained on its outputs)."""
    return _key(config, ())


def _key(config: Config, below: tuple[str, ...]) -> str:
    if config.name in below:
        raise ValueError(f"Config {config.name!r}: its sources lead back to itself")
    parts = {"config": config.to_dict(), "code": source_hash(), "data": data_identity(config)}
    if config.source is not None:
        upstream = get_config(config.source, config.profile)
        upstream_key = _key(upstream, below + (config.name,))
        parts["upstream"] = upstream_key
        parts["upstream_model"] = _cached_checksum(_folder(upstream, upstream_key))
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _cached_checksum(folder: Path) -> str | None:
    """The ``model_sha256`` recorded in an entry's metrics.json (``None``
    while there is no readable one: nothing is trained on it yet)."""
    try:
        sha = json.loads((folder / "metrics.json").read_text()).get("model_sha256")
    except (OSError, ValueError, AttributeError):
        return None
    return sha if isinstance(sha, str) else None


def data_identity(config: Config) -> dict:
    """What ``config`` trains and tests on, as the cache key sees it: for each
    split, the fingerprint of the whole split as loaded (a hash of its bytes,
    computed once per process) and how many images the fixed subset takes."""
    identity = {}
    for split, size in (("train", config.train_size), ("test", config.test_size)):
        images = data_mod.load(config.dataset, split)
        identity[split] = [images.fingerprint(), min(size or len(images), len(images))]
    return identity


@dataclass
class Run:
    """A trained model, its metrics and where they are cached."""

    config: Config
    model: torch.nn.Module
    metrics: dict
    path: Path
    trained: bool  # False when it came from the cache
    saved: bool = True  # False: trained into a cache that could not keep it


def run_dir(config: Config) -> Path:
    """The cache folder of ``config``'s entry, always inside the cache's
    ``runs`` folder (``Config`` admits only plain names; this checks again,
    before any data is read for the key)."""
    _folder(config, "key")  # checks the name before any data is read
    return _folder(config, config_key(config))


def _folder(config: Config, key: str) -> Path:
    """``runs/<name>-<profile>-<key>``, after checking that it stays in ``runs``."""
    runs = cache_root() / "runs"
    prefix = f"{config.name}-{config.profile}"
    if Path(os.path.normpath(runs / f"{prefix}-key")).parent != runs:
        raise ValueError(f"Config name {config.name!r} would put its cache entry at "
                         f"{os.path.normpath(runs / prefix)}, outside {runs}")
    return runs / f"{prefix}-{key}"


def _entry_key(folder: Path) -> str:
    """The key in an entry's folder name (``<name>-<profile>-<key>``)."""
    return folder.name.rsplit("-", 1)[-1]


def load_data(config: Config) -> tuple[data_mod.ImageData, data_mod.ImageData]:
    """The (train, test) splits that ``config`` trains and tests on: the
    images, or for a derived model the images passed through its upstream
    model (see ``Config.source``)."""
    check_source(config)
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
    cache that cannot be written (read-only, or a full disk) the model is
    trained, with a warning, and not saved (``Run.saved`` is False). A run
    whose test metrics are not finite raises :class:`TrainingFailed`."""
    if isinstance(config, str):
        config = get_config(config)
    device = pick_device(device)
    if config.source is not None:  # its key holds the upstream model's checksum:
        check_source(config)       # have that model trained first
        upstream = get_config(config.source, config.profile)
        if not is_cached(upstream):
            get_or_train(upstream, progress=progress, device=device)
    folder = run_dir(config)
    cached = _load_cached(config, folder, device, discard=False)
    if cached is not None:
        _tidy(folder)
        return cached
    with _entry_lock(config, folder) as writable:
        if writable:
            _remove_strays(folder, complete=False)
        # under the lock: another process may have trained it while we
        # waited, and a damaged entry is discarded by one process only
        cached = _load_cached(config, folder, device, discard=True)
        if cached is not None:
            if writable:
                _remove_strays(folder, complete=True)
            return cached
        return _train(config, folder, device, progress, save=writable)


class TrainingFailed(TrainingDiverged):
    """A run ended with a test metric that is NaN or infinite: nothing of it
    is cached; the message names the metrics and what to change."""


def _train(config: Config, folder: Path, device: torch.device,
           progress: bool | None, save: bool) -> Run:
    train, test = load_data(config)
    torch.manual_seed(config.seed)
    model = build_model(config, train.shape, len(train))
    print(f"[{config.name}] training ({config.profile} profile, {device.type}) on "
          f"{data_mod.describe(train, test)}", file=sys.stderr)
    checkpoint = folder / "checkpoint.pt" if save else None
    try:
        # metrics["steps"]: the loss terms of about 100 evenly spaced batches
        history = fit(model, train.images, train.labels, epochs=config.epochs,
                      batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                      device=device, checkpoint=checkpoint,
                      progress=progress, desc=config.name, lr_schedule=config.lr_schedule,
                      log_every=max(1, config.steps(len(train)) // 100),
                      on_epoch=_epoch_report(model, test.subset(config.epoch_eval), config.seed)
                      if config.epoch_eval else None)
        test_terms = evaluate(model, test.images, test.labels, seed=config.seed)
        broken = {k: v for k, v in test_terms.items() if not math.isfinite(v)}
        if broken:
            raise TrainingFailed(
                f"[{config.name}] training failed: the trained model's test "
                + ", ".join(f"{k} is {v}" for k, v in broken.items())
                + f"; nothing was cached. Lower the learning rate (now {config.lr:g}) "
                f"or check the config and the data.")
    except TrainingDiverged:
        if checkpoint is not None:  # the run went wrong: resuming it would too
            _unlink_quietly(checkpoint)
        raise
    metrics = {
        "key": _entry_key(folder),
        "config": config.to_dict(),
        "data_identity": data_identity(config),
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
    saved = False
    if save:
        model_file = folder / "model.pt"
        try:
            atomic_save(model.state_dict(), model_file)
            metrics["model_sha256"] = _sha256(model_file)
            with atomic_open(folder / "metrics.json", "w") as f:  # written last: the entry is complete
                json.dump(metrics, f, indent=1)
        except DiskFullError as err:  # keep the checkpoint: the next run only saves
            metrics.pop("model_sha256", None)
            warnings.warn(f"[{config.name}] {err}. The trained model is returned but not "
                          f"cached.", stacklevel=3)
        else:
            saved = True
            _unlink_quietly(folder / "checkpoint.pt")
    return Run(config, model.eval(), metrics, folder, trained=True, saved=saved)


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


def find_cached(config: Config | str, *, device: str | torch.device | None = None,
                report_damage: bool = False) -> Run | None:
    """The cached run of ``config`` (or an experiment name, in the current
    profile) if this code has trained it, else ``None``; never trains and
    never deletes. A damaged entry counts as none, or with ``report_damage``
    raises :class:`DamagedEntry` saying what is wrong (the results page
    marks it)."""
    if isinstance(config, str):
        config = get_config(config)
    return _load_cached(config, run_dir(config), pick_device(device), discard=False,
                        report_damage=report_damage)


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
    cache key (its folder), ``name``, the source of ``compute`` and of the
    package's functions and classes it calls (:func:`code_closure`), and the
    evaluation code it relies on (:data:`EVALUATION_CODE`), so editing any of
    them recomputes it. ``compute`` returns a dict of tensors, numbers,
    strings, lists or dicts of these (numpy arrays become tensors).

    When the result also depends on other trained models or on input tensors
    (test images, noise), pass them as ``also`` and ``inputs``: their cache
    folders and a hash of their values join the key."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"evaluation name must be plain ([A-Za-z0-9._-]+), got {name!r}")
    digest = hashlib.sha256(name.encode())
    digest.update(code_closure(compute).encode())
    digest.update(_evaluation_code_hash().encode())
    # the model's own bytes: an evaluation never outlives the model it was made for
    digest.update(str(run.metrics.get("model_sha256", "")).encode())
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
        # under the entry's lock: a lock-free entry holds no half-written file
        with _lock(run.path, timeout=60):
            atomic_save(result, path)
    except (OSError, Timeout) as err:  # a read-only cache, a full disk: still return the result
        warnings.warn(f"[{run.config.name}] could not store evaluation {name} ({err}); "
                      f"it is returned and will be computed again next time.", stacklevel=2)
    return result


def code_closure(fn: Callable) -> str:
    """The source of ``fn`` (wherever it is defined) and of every function or
    class of this package that it names, directly or through those (global names and names captured
    from an enclosing function), each once and in a fixed order: what an
    evaluation's result depends on besides the data and the model. A helper
    edited in an analysis module then changes the key of every evaluation
    that calls it, and only those."""
    package = __name__.rpartition(".")[0]
    seen: dict[str, str] = {}

    def visit(obj, anywhere: bool = False) -> None:
        if inspect.ismethod(obj):
            obj = obj.__func__
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            obj = type(obj)  # an instance (a scorer, a model): its class's code
        obj = inspect.unwrap(obj)
        if not anywhere and not getattr(obj, "__module__", "").startswith(package):
            return
        key = f"{obj.__module__}.{obj.__qualname__}"
        if key in seen:
            return
        seen[key] = _source(obj, key)
        functions = [obj] if inspect.isfunction(obj) else [
            v for v in vars(obj).values() if inspect.isfunction(v)]
        for f in functions:
            names = set(f.__code__.co_names)
            for const in f.__code__.co_consts:  # nested functions and comprehensions
                if inspect.iscode(const):
                    names |= _code_names(const)
            for name in names:
                if name in f.__globals__:
                    visit(f.__globals__[name])
            for cell in f.__closure__ or ():
                try:
                    visit(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass

    visit(fn, anywhere=True)  # the evaluation itself, wherever it is defined
    return "\n".join(seen[k] for k in sorted(seen))


# An object's source, read once per process: ``inspect.getsource`` parses
# its module again on every call (3 s of the ablations page's 27 s with
# every evaluation cached, over 43 cached evaluations).
_SOURCES: dict[object, str] = {}


def _source(obj, key: str) -> str:
    """``inspect.getsource`` of a function or class (``key`` where none is
    kept), remembered per function's code object (every closure made by one
    ``def`` shares it) or per class."""
    memo = getattr(obj, "__code__", obj)
    if memo not in _SOURCES:
        try:
            _SOURCES[memo] = inspect.getsource(obj)
        except (OSError, TypeError):  # defined where no source is kept
            _SOURCES[memo] = key
    return _SOURCES[memo]


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _code_names(const)
    return names


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


class DamagedEntry(Exception):
    """A cache entry is not (or no longer) the model asked for: its files are
    damaged, contradict each other, or belong to another key."""

    def __init__(self, folder: Path, why: str):
        super().__init__(f"cache entry {folder} is damaged ({why})")
        self.folder, self.why = folder, why


def _load_cached(config: Config, folder: Path, device: torch.device,
                 discard: bool, report_damage: bool = False) -> Run | None:
    """The cached run, or ``None`` when there is none or the entry is damaged
    (then, with ``discard``, reported and deleted; with ``report_damage``,
    raised as :class:`DamagedEntry`).

    Only damage condemns an entry (see the module's docstring). Any other
    error (a device, a torch that cannot read the file) propagates and
    leaves the entry alone; an entry this user may not read is a
    ``PermissionError`` that says so."""
    metrics_file, model_file = folder / "metrics.json", folder / "model.pt"
    try:
        if not metrics_file.is_file():
            return None
        try:
            raw = json.loads(metrics_file.read_text())
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _Damaged(f"metrics.json is unreadable ({type(err).__name__}: {err})") from None
        metrics = _check_metrics(raw, config, folder)
        if not model_file.is_file():
            raise _Damaged("model.pt is missing")
        if _sha256(model_file) != metrics["model_sha256"]:
            raise _Damaged("model.pt does not match the checksum in metrics.json")
        # read onto the CPU, then move: a device problem is not damage
        state = torch.load(model_file, map_location="cpu", weights_only=True)
        model = _restore(config, metrics, state)
    except _Damaged as err:
        if discard:
            _discard(config, folder, str(err))
        if report_damage:
            raise DamagedEntry(folder, str(err)) from None
        return None
    except PermissionError as err:
        raise PermissionError(f"this user may not read the cache entry {folder} "
                              f"({err.strerror}): give it read access, or delete the "
                              f"entry to train it again") from None
    return Run(config, model.to(device).eval(), metrics, folder, trained=False)


class _Damaged(Exception):
    """An entry fails one of its checks: safe to discard."""


def _restore(config: Config, metrics: dict, state) -> torch.nn.Module:
    """The model ``config`` describes with the weights ``state``; damage
    if they do not fit it, are not finite, or do not add up to the
    parameter count in the metrics."""
    model = build_model(config, tuple(metrics["input_shape"]), metrics["train_images"])
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as err:
        raise _Damaged(f"model.pt does not hold this config's model "
                       f"({' '.join(str(err).split())[:200]})") from None
    if any(isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all()
           for t in state.values()):
        raise _Damaged("model.pt holds weights that are NaN or infinite")
    if sum(p.numel() for p in model.parameters()) != metrics["parameters"]:
        raise _Damaged("the parameter count in metrics.json is not the model's")
    return model


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_metrics(metrics, config: Config, folder: Path) -> dict:
    """``metrics`` if it proves it belongs to ``config``'s entry: the key and
    the config it names are this entry's, and every field a reader uses is
    there with its type and agrees with the data; else :class:`_Damaged`."""
    def need(ok: bool, why: str):
        if not ok:
            raise _Damaged(f"metrics.json {why}")

    need(isinstance(metrics, dict), "is not a JSON object")
    stored = metrics.get("config")
    expected = json.loads(json.dumps(config.to_dict()))
    if stored != expected:
        differ = sorted(k for k in expected if not isinstance(stored, dict)
                        or stored.get(k) != expected[k])
        need(False, f"describes another model (config fields that differ: "
                    f"{', '.join(differ[:6]) or 'extra fields'})")
    key = _entry_key(folder)
    need(metrics.get("key") == key,
         f"was written for key {metrics.get('key')!r}, not this entry's {key!r}")
    need(isinstance(metrics.get("model_sha256"), str)
         and re.fullmatch(r"[0-9a-f]{64}", metrics["model_sha256"]) is not None,
         "has no SHA-256 of model.pt")
    shape, train_images = _expected_input(config)
    need(metrics.get("input_shape") == list(shape),
         f"gives input_shape {metrics.get('input_shape')!r}; the data gives {list(shape)}")
    need(_is_real(metrics.get("train_images")) and metrics["train_images"] == train_images
         and isinstance(metrics["train_images"], int),
         f"gives train_images {metrics.get('train_images')!r}; the data gives {train_images}")
    test = metrics.get("test")
    need(isinstance(test, dict) and test and all(
        isinstance(k, str) and _is_real(v) and math.isfinite(v) for k, v in test.items()),
        "has no finite test metrics")
    for field in ("history", "steps"):
        rows = metrics.get(field)
        need(isinstance(rows, list) and all(
            isinstance(r, dict) and all(isinstance(k, str) and _is_real(v) for k, v in r.items())
            for r in rows), f"has no list of {field}")
    need(isinstance(metrics.get("parameters"), int) and _is_real(metrics["parameters"])
         and metrics["parameters"] > 0, "has no parameter count")
    need(_is_real(metrics.get("train_seconds")) and metrics["train_seconds"] >= 0,
         "has no training time")
    need(_is_real(metrics.get("train_images_per_second")), "has no training speed")
    for field in ("device", "data"):
        need(isinstance(metrics.get(field), str), f"has no {field} text")
    return metrics


def _expected_input(config: Config) -> tuple[tuple[int, ...], int]:
    """The shape of one training input and the number of training inputs
    that ``config`` gets from the data (for code grids: the image side
    divided by the source VQ-VAE's ``downsample``, as ``Config`` defines it)."""
    train = data_mod.load(config.dataset, "train")
    shape = train.shape
    if config.train_on == "vq-codes":
        upstream = get_config(config.source, config.profile)
        shape = tuple(side // upstream.downsample for side in shape[1:])
    return shape, min(config.train_size or len(train), len(train))


def _discard(config: Config, folder: Path, why: str) -> None:
    """Delete a damaged entry's files (its checkpoint and cached evaluations
    too: they came with it), or warn that a read-only cache keeps them."""
    try:
        for name in ("metrics.json", "model.pt", "checkpoint.pt"):
            (folder / name).unlink(missing_ok=True)
        if (folder / "evals").is_dir():
            shutil.rmtree(folder / "evals")
    except OSError as err:  # a read-only cache: leave the entry, train without saving
        warnings.warn(f"[{config.name}] cache entry {folder} is damaged ({why}) and "
                      f"cannot be removed ({type(err).__name__}: {err}): the cache is "
                      f"read-only; retraining without saving.", stacklevel=4)
    else:
        warnings.warn(f"[{config.name}] cache entry {folder} is damaged ({why}); "
                      f"retraining.", stacklevel=4)


def _strays(folder: Path, complete: bool) -> list[Path]:
    """Files an interrupted save left in an entry: temporary files, and (in
    a complete entry) a checkpoint of the training that made it."""
    found = [*folder.glob(f"*{TMP_SUFFIX}"), *folder.glob(f"evals/*{TMP_SUFFIX}")]
    if complete and (folder / "checkpoint.pt").exists():
        found.append(folder / "checkpoint.pt")
    return found


def _remove_strays(folder: Path, complete: bool) -> None:
    """Delete :func:`_strays`; only while holding the entry's lock, since
    every writer into an entry holds it."""
    for path in _strays(folder, complete):
        _unlink_quietly(path)


def _tidy(folder: Path) -> None:
    """After serving a complete entry: remove its strays if there are any
    and no other process holds its lock (else leave them for next time)."""
    try:
        if not _strays(folder, complete=True):
            return
        with _lock(folder, timeout=0):
            _remove_strays(folder, complete=True)
    except (OSError, Timeout):
        pass  # read-only, or in use: next time


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # read-only: harmless, it is cleaned up the next time


def _lock(folder: Path, timeout: float = -1) -> FileLock:
    """The lock of the entry in ``folder`` (a file ``lock`` there), taken by
    whoever writes into the entry. ``timeout``: seconds to wait (``-1``:
    for ever, ``0``: not at all), then ``filelock.Timeout``."""
    return FileLock(folder / "lock", timeout=timeout, mode=0o666 & ~umask())


@contextmanager
def _entry_lock(config: Config, folder: Path):
    """Hold the entry's lock while training into it; yields whether the
    folder can be written (``False``: a read-only cache, with a warning;
    the run is trained and not saved)."""
    def read_only(err: str) -> bool:
        warnings.warn(f"[{config.name}] the cache folder {folder} cannot be written "
                      f"({err}): the cache is read-only here; training without saving "
                      f"the model.", stacklevel=5)
        return False

    lock = _lock(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"[{config.name}] another process is training this model into "
                  f"{folder}; waiting for it to finish", file=sys.stderr, flush=True)
            lock.acquire()
    except OSError as err:
        yield read_only(f"{type(err).__name__}: {err}")
        return
    try:
        yield os.access(folder, os.W_OK) or read_only("no write permission")
    finally:
        lock.release()


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
