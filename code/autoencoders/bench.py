"""``python -m autoencoders bench``: how fast the book's hot path is here.

Measures, on this machine:

* a frozen reference workload, the **yardstick** (:func:`yardstick_once`), at
  the start and at the end of the run; every time below is reported in
  seconds and in yardsticks (seconds divided by the yardstick's median), and
  the two readings show how much the machine drifted during the run;
* training throughput (images/s) of each model family, through the real
  training loop (:func:`autoencoders.train.fit`) on real data;
* the data-path and evaluation choices the loop makes, each against the
  alternative it replaced, as a before/after ratio measured in the same run;
* the wall time and peak memory of one ``quick`` experiment per family
  (a fresh cache, so it really trains);
* the whole-book build in ``smoke`` and ``quick`` from an empty cache, a
  rebuild with nothing changed, and one that re-executes every chapter with
  the models cached; with ``--baseline REV``, the three ``quick`` builds of
  this tree and of commit REV (checked out with ``git worktree``), paired and
  alternating in one run, and their ratios;
* with ``--chapters``, each chapter run alone from an empty cache (what a
  student pays for one chapter);
* every model the ``quick`` build trains: its training cost, and the glued
  numbers, figures and claims that use it (found by running each chapter
  statement by statement and noting which trained models each statement
  touches: :func:`trace_page`);
* the ``full`` profile's training time per chapter, estimated from FLOPs.

Each measurement runs in a child process so that its peak memory (max RSS)
is its own. Results go to ``<out>/bench.json`` and ``<out>/bench.md``;
``--write-docs`` turns a ``bench.json`` into the generated part of
``docs/benchmarks.md``. ``--gpu-check`` (``tools/gpu-check.sh``) trains one
epoch of each model family in ``full`` with mixed precision off and on.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# family -> experiment whose model and batch size the measurement uses
FAMILIES = {
    "conv AE": "ae-conv",
    "VAE": "vae-mnist",
    "classifier": "classifier-real",
    "VQ-VAE": "vqvae",
    "PixelCNN": "pixelcnn",
}
REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "benchmarks.md"


# ------------------------------------------------------------ the yardstick
# FROZEN. Every time the bench reports is divided by this workload's time,
# measured at the start and the end of the same run, so that runs on
# different days and machines compare. It depends on torch alone (nothing of
# the package), makes its own data from a fixed seed and always uses 2
# threads. Changing any of it breaks the comparison with every earlier
# bench.json: tests/test_bench.py pins its source, so that a change is
# deliberate (and then the docs' earlier yardstick numbers must be marked
# as from another yardstick).
YARDSTICK_STEPS = 100
YARDSTICK_REPEATS = 3
YARDSTICK_THREADS = 2
YARDSTICK_DEFINITION = (
    f"{YARDSTICK_STEPS} Adam steps (after 5 warm-up steps) of a fixed 4-layer convolutional "
    "autoencoder (1-32-64-32-1 channels, stride 2) on batches of 64 synthetic 28 x 28 images "
    f"(uniform noise, seed 2026), {YARDSTICK_THREADS} torch threads; one reading is the median "
    f"of {YARDSTICK_REPEATS} repetitions in a fresh process")


def yardstick_once() -> float:
    """Seconds for the frozen reference workload (see ``YARDSTICK_DEFINITION``)."""
    import torch
    from torch import nn

    torch.set_num_threads(YARDSTICK_THREADS)
    images = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(2026))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                        nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(i: int) -> None:
        x = images[(i % 8) * 64:(i % 8 + 1) * 64]
        loss = ((net(x) - x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for i in range(5):
        step(i)
    tick = time.perf_counter()
    for i in range(YARDSTICK_STEPS):
        step(i)
    return time.perf_counter() - tick


def _yardstick_reading() -> dict:
    times = [yardstick_once() for _ in range(YARDSTICK_REPEATS)]
    return {"seconds": statistics.median(times), "repeats": times}


def yardstick_summary(start: dict, end: dict | None) -> dict:
    """The run's yardstick from its readings: the median of every repetition
    (start and end), and the drift, end reading / start reading."""
    if "seconds" not in start:
        return {"start": start, "end": end, "error": start.get("error", "no reading")}
    repeats = start["repeats"] + (end["repeats"] if end and "repeats" in end else [])
    summary = {"start": start, "end": end, "seconds": statistics.median(repeats),
               "definition": YARDSTICK_DEFINITION}
    if end and "seconds" in end:
        summary["drift"] = end["seconds"] / start["seconds"]
    return summary


def in_yardsticks(seconds: float | None, yardstick: dict | None, *, hours: bool = False) -> str:
    """``seconds`` as "12.3 s = 4.56 yd" (or "1.2 h = 1,080 yd" with
    ``hours``; seconds alone when the run has no yardstick)."""
    if seconds is None or seconds != seconds:
        return "–"
    if hours:
        text = f"{seconds / 3600:,.1f} h"
    else:
        text = f"{seconds:,.1f} s" if seconds < 100 else f"{seconds:,.0f} s"
    yd = (yardstick or {}).get("seconds")
    if not yd:
        return text
    ratio = seconds / yd
    return f"{text} = {ratio:,.{2 if ratio < 10 else 1 if ratio < 100 else 0}f} yd"


def _peak_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


# ------------------------------------------------------------ in the child
def _throughput(name: str, steps: int) -> dict:
    """Images/s of ``fit`` for experiment ``name`` (after a warm-up)."""
    import torch

    from . import cache, experiments
    from .models import build_model
    from .train import fit, pick_device

    config = experiments.get_config(name, "quick")
    train, _ = cache.load_data(config)
    n = min(len(train), steps * config.batch_size)
    x, y = train.images[:n], train.labels[:n]
    torch.manual_seed(0)
    model = build_model(config, train.shape, len(train))
    device = pick_device()
    fit(model, x[: 2 * config.batch_size], y[: 2 * config.batch_size], epochs=1,
        batch_size=config.batch_size, lr=config.lr, device=device, progress=False)  # warm-up
    history = fit(model, x, y, epochs=1, batch_size=config.batch_size, lr=config.lr,
                  device=device, progress=False)
    return {"images_per_second": history.examples_per_second,
            "batch_size": config.batch_size,
            "parameters": sum(p.numel() for p in model.parameters())}


def _data_path(steps: int) -> dict:
    """The loop's whole-tensor batches against a per-sample DataLoader."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from . import data
    from .data import unit_floats

    images = data.load("mnist", "train").images
    batch = 128
    n = min(len(images), steps * batch)

    def tensor_batches():
        for idx in torch.randperm(n).split(batch):
            yield unit_floats(images[idx])

    def dataloader():
        ds = TensorDataset(images[:n])
        for (x,) in DataLoader(ds, batch_size=batch, shuffle=True):
            yield unit_floats(x)

    out = {}
    for label, make in (("per-sample DataLoader", dataloader), ("whole-tensor indexing", tensor_batches)):
        tick = time.perf_counter()
        for _ in range(3):
            for _x in make():
                pass
        out[label] = 3 * n / (time.perf_counter() - tick)
    return {"images_per_second": out,
            "ratio": out["whole-tensor indexing"] / out["per-sample DataLoader"]}


def _evaluation() -> dict:
    """Evaluating under inference_mode against plain autograd tracking."""
    import torch

    from . import experiments
    from .models import build_model

    config = experiments.get_config("ae-conv", "quick")
    x = torch.rand(2000, 1, 28, 28)
    model = build_model(config, (1, 28, 28)).eval()
    out = {}
    for label in ("autograd on", "inference_mode"):
        ctx = torch.inference_mode() if label == "inference_mode" else torch.enable_grad()
        with ctx:
            model(x[:200])
            tick = time.perf_counter()
            for chunk in x.split(500):
                model.loss_terms(chunk)
            out[label] = len(x) / (time.perf_counter() - tick)
    return {"images_per_second": out, "ratio": out["inference_mode"] / out["autograd on"]}


def _threads() -> dict:
    """Training throughput of the conv AE with 1 thread against the default."""
    import torch

    default = torch.get_num_threads()
    out = {}
    for n in sorted({1, default}):
        torch.set_num_threads(n)
        out[f"{n} thread(s)"] = _throughput("ae-conv", 20)["images_per_second"]
    torch.set_num_threads(default)
    return {"images_per_second": out}


def _quick_experiment(name: str) -> dict:
    """One quick experiment from an empty cache (its upstream ones included)."""
    from . import cache, experiments

    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["AUTOENCODERS_CACHE"] = cache_dir
        tick = time.perf_counter()
        run = cache.get_or_train(experiments.get_config(name, "quick"), progress=False)
        return {"wall_seconds": time.perf_counter() - tick,
                "train_seconds": run.metrics["train_seconds"]}


# The quick VAE before and after issue 16's tuning: same data, same code.
VAE_SETTINGS = {"before: bs 128, lr 1e-3 constant, 10 epochs":
                dict(batch_size=128, lr=1e-3, lr_schedule="constant", epochs=10),
                "after: the registry's vae-mnist": {}}


def _vae_settings() -> dict:
    """The quick VAE trained with the old and the new settings, from an
    empty cache each: test negative ELBO, training seconds, images/s, and the
    training negative ELBO after each epoch against the seconds so far."""
    from . import cache, experiments

    out = {}
    for label, overrides in VAE_SETTINGS.items():
        with tempfile.TemporaryDirectory() as cache_dir:
            os.environ["AUTOENCODERS_CACHE"] = cache_dir
            run = cache.get_or_train(experiments.get_config("vae-mnist", "quick", **overrides),
                                     progress=False)
        m = run.metrics
        epochs = len(m["history"])
        out[label] = {"test_neg_elbo": m["test"]["neg_elbo"], "train_seconds": m["train_seconds"],
                      "images_per_second": m["train_images_per_second"],
                      "curve": [[m["train_seconds"] * (i + 1) / epochs, h["neg_elbo"]]
                                for i, h in enumerate(m["history"])]}
    return out


# model kind -> the family whose measured speed stands in for it
KIND_FAMILY = {"ae": "conv AE", "vae": "VAE", "discrete_vae": "VAE", "classifier": "classifier",
               "vqvae": "VQ-VAE", "pixelcnn": "PixelCNN"}
FULL_TRAIN_IMAGES = {"mnist": 60_000, "cifar10": 50_000}  # torchvision's training splits
# A GPU estimate needs assumptions (stated in the output, not measured): an
# effective FLOP rate, and a floor per optimiser step, since models this small
# are bound by per-step overhead (kernel launches, Python) rather than FLOPs.
ASSUMED_GPU_TFLOPS = 4.0
ASSUMED_GPU_MS_PER_STEP = 3.0


def _training_flops() -> dict:
    """FLOPs of one training step per image (forward and backward, counted by
    ``torch.utils.flop_counter``) for every experiment a chapter shows, with
    the images its ``full`` run trains on."""
    from . import experiments

    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["AUTOENCODERS_CACHE"] = cache_dir  # smoke upstream models for derived inputs
        return {name: {"chapter": chapter, **training_flops(name)}
                for name, chapter in experiments.CHAPTERS.items()}


def training_flops(name: str) -> dict:
    """One experiment's ``full`` model: FLOPs of a training step per image on
    a batch of its (``smoke``) training inputs, and the images and steps of
    its ``full`` run. Derived inputs (code grids) come from the cache."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from . import cache, experiments
    from .data import model_input
    from .models import build_model

    full = experiments.get_config(name, "full")
    train, _ = cache.load_data(experiments.get_config(name, "smoke"))
    torch.manual_seed(0)
    images = (full.train_size or FULL_TRAIN_IMAGES[full.dataset]) * full.epochs
    model = build_model(full, train.shape, images // full.epochs)
    x, y = train.images[:32].clone(), train.labels[:32].clone()  # not inference tensors
    x = model_input(x)  # as in train
    counter = FlopCounterMode(display=False)
    with counter:
        model.loss_terms(x, y)["loss"].backward()
    return {"kind": full.model, "flops_per_image": counter.get_total_flops() / len(x),
            "full_images": images, "full_steps": images / full.batch_size}


def full_estimate(throughput: dict, flops: dict) -> dict:
    """Per chapter: the ``full`` profile's training time, estimated from the
    FLOPs of its runs and the FLOP rate measured here for the family."""
    rate = {}  # family -> FLOP/s measured on this machine
    for family, name in FAMILIES.items():
        if name in flops and "images_per_second" in throughput.get(family, {}):
            rate[family] = throughput[family]["images_per_second"] * flops[name]["flops_per_image"]
    chapters: dict[str, dict] = {}
    for name, f in flops.items():
        total = f["flops_per_image"] * f["full_images"]
        family = KIND_FAMILY.get(f["kind"])
        row = chapters.setdefault(f["chapter"], {"flops": 0.0, "cpu_seconds": 0.0, "runs": 0,
                                                 "gpu_seconds_assumed": 0.0})
        row["flops"] += total
        row["runs"] += 1
        row["gpu_seconds_assumed"] += max(total / (ASSUMED_GPU_TFLOPS * 1e12),
                                          f.get("full_steps", 0) * ASSUMED_GPU_MS_PER_STEP / 1e3)
        row["cpu_seconds"] += total / rate[family] if family in rate else float("nan")
    return {"chapters": chapters, "flop_rate": rate, "assumed_gpu_tflops": ASSUMED_GPU_TFLOPS,
            "assumed_gpu_ms_per_step": ASSUMED_GPU_MS_PER_STEP}




# ------------------------------------------- which glued values use which model
# A Run's fields whose reading counts as using the trained model: its weights,
# its metrics, its folder (cached evaluations live there). Reading its config
# does not: that is registry data, there whether the model is trained or not.
RUN_USES = ("model", "metrics", "path")
# Nor does reading these entries of its metrics: how and on what it was
# trained, not what it learned (a budget line that adds up every model's
# training seconds needs none of them trained).
BOOKKEEPING = ("config", "data", "device", "input_shape", "model_sha256", "parameters", "threads",
               "torch", "train_images", "train_images_per_second", "train_seconds")
# Pages that gather every cached model (their glues say nothing about need).
AGGREGATE_PAGES = ("results",)
_GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([^`]+)`")
_GLUE_DIRECTIVE = re.compile(r"^[`:]{3,}\{glue(?::[a-z]+)?\}\s+(\S+)", re.M)


def glued_in_prose(text: str) -> set[str]:
    """The glue names a page's Markdown shows (``{glue:text}`name:.3f``` and
    ``{glue:figure}`` directives)."""
    return {m.split(":")[0] for m in _GLUE_ROLE.findall(text)} | set(_GLUE_DIRECTIVE.findall(text))


def _reads_writes(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """Names a top-level statement reads and (re)binds or changes in place
    (``x.a = ...`` and ``x[k] = ...`` change ``x``; ``x += ...`` reads it too).
    A loop's, a comprehension's or a function's own variables are not reads:
    their values come from inside the statement, not from an earlier one."""
    reads, writes, own = set(), set(), set()
    for node in ast.walk(stmt):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            own |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        if isinstance(node, ast.Name):
            (writes if isinstance(node.ctx, (ast.Store, ast.Del)) else reads).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            writes.add(node.name)
        elif isinstance(node, ast.alias):
            writes.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, ast.Store):
            base = node
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                writes.add(base.id)
                reads.add(base.id)
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            reads.add(node.target.id)
    return reads - own, writes


def trace_statements(cells: list[str], namespace: dict, recorder: dict,
                     filename: str = "<chapter>") -> dict:
    """Run ``cells`` (code, in order) top-level statement by statement in
    ``namespace`` and say which trained models each glued value and claim uses.

    ``recorder`` is filled while a statement runs by the caller's hooks:
    ``used`` (names of the models whose weights, metrics or folder the
    statement read), ``glued`` (glue names), ``claims`` (claim sentences).
    A value's models are those its statement used, plus those of the
    variables it read. Loading a model is not using it, so a container
    that merely holds 28 loaded models passes none of them on; a glue made
    in a loop over a study shares all of the study's models. The result
    errs towards more models; it misses one only where a statement changes
    a value in place through a method call (``xs.append(...)``)."""
    deps: dict[str, set] = {}
    glues: dict[str, set] = {}
    claims: list = []
    for index, source in enumerate(cells):
        for stmt in ast.parse(source).body:
            reads, writes = _reads_writes(stmt)
            recorder.update(used=set(), glued=[], claims=[])
            code = compile(ast.Module(body=[stmt], type_ignores=[]), f"{filename}[{index}]", "exec")
            exec(code, namespace)  # noqa: S102 - the book's own chapters
            used = set(recorder["used"]).union(*(deps.get(n, set()) for n in reads))
            for name in writes:
                deps[name] = set(used)
            for name in recorder["glued"]:
                glues.setdefault(name, set()).update(used)
            claims += [[sentence, sorted(used)] for sentence in recorder["claims"]]
    return {"glue": {name: sorted(models) for name, models in glues.items()}, "claims": claims}


def trace_page(page: Path) -> dict:
    """Run one chapter (``book/<page>.md``) in this process, with the models
    taken from the cache, and return which models each of its glued values
    and claims uses (see :func:`trace_statements`), and the glue names its
    prose shows. Patches this process: run it in a child of its own."""
    import functools

    import jupytext
    import myst_nb

    from . import book, cache

    recorder: dict = {"used": set(), "glued": [], "claims": [], "quiet": 0}
    plain_getattribute = cache.Run.__getattribute__

    class Metrics(dict):
        """A run's metrics that note which entries are read."""

        def __init__(self, name, metrics):
            super().__init__(metrics)
            self.name = name

        def _read(self, key=None):
            if key not in BOOKKEEPING and not recorder["quiet"]:
                recorder["used"].add(self.name)

        def __getitem__(self, key):
            self._read(key)
            return super().__getitem__(key)

        def get(self, key, default=None):
            self._read(key)
            return super().get(key, default)

        def __iter__(self):
            self._read()
            return super().__iter__()

        def keys(self):
            self._read()
            return super().keys()

        def values(self):
            self._read()
            return super().values()

        def items(self):
            self._read()
            return super().items()

    def getattribute(run, attr):
        value = plain_getattribute(run, attr)
        if attr == "metrics":
            return Metrics(plain_getattribute(run, "config").name, value)
        if attr in RUN_USES and not recorder["quiet"]:
            recorder["used"].add(plain_getattribute(run, "config").name)
        return value

    def quietly(fn):  # loading a model is not using it
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            recorder["quiet"] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                recorder["quiet"] -= 1
        return wrapper

    plain_claim, plain_check_claims = book.claim, book.check_claims

    def claim(condition, sentence, **numbers):
        recorder["claims"].append(sentence)
        return plain_claim(condition, sentence, **numbers)

    def check_claims(claims, numbers):  # most chapters state their claims this way
        claims = list(claims)
        recorder["claims"].extend(c.sentence for c in claims)
        return plain_check_claims(claims, numbers)

    cache.Run.__getattribute__ = getattribute
    loaders = {name: getattr(cache, name) for name in ("get_or_train", "find_cached")}
    for module in [m for name, m in sys.modules.items() if name.startswith("autoencoders")]:
        for name, fn in loaders.items():  # also where it was imported by name
            if getattr(module, name, None) is fn:
                setattr(module, name, quietly(fn))
    book.claim, book.check_claims = claim, check_claims
    myst_nb.glue = lambda name, *args, **kwargs: recorder["glued"].append(name)

    text = page.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="md:myst")
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    os.environ.setdefault("MPLBACKEND", "Agg")
    here = Path.cwd()
    os.chdir(page.parent)  # as in the build: a chapter runs in book/
    try:
        traced = trace_statements(cells, {"__name__": "__main__"}, recorder, filename=page.name)
    finally:
        os.chdir(here)
    traced["prose"] = sorted(glued_in_prose(text))
    return traced


def cache_runs(cache_dir: Path) -> dict[str, dict]:
    """Every model in a cache: name -> its ``metrics.json`` fields that the
    models table needs (the newest entry when a name has several)."""
    runs: dict[str, dict] = {}
    for path in sorted(Path(cache_dir).glob("runs/*/metrics.json"), key=lambda p: p.stat().st_mtime):
        try:
            metrics = json.loads(path.read_text())
            name = metrics["config"]["name"]
        except (OSError, ValueError, KeyError):
            continue
        runs[name] = {"train_seconds": metrics.get("train_seconds"), "threads": metrics.get("threads"),
                      "profile": metrics["config"].get("profile"), "device": metrics.get("device")}
    return runs


def models_table(runs: dict[str, dict], traces: dict[str, dict], yardstick: dict | None,
                 chapters: dict[str, str] | None = None) -> list[dict]:
    """One row per trained model, most expensive first: its training seconds
    and yardsticks, its chapter, and per page the glue names that use it and
    that the page's prose shows, the glued values the prose does not show,
    and the claims that rest on it. Pages in ``AGGREGATE_PAGES`` (the results
    table, which lists every cached model) are counted apart."""
    yd = (yardstick or {}).get("seconds")
    rows = []
    for name, run in runs.items():
        row = {"model": name, "chapter": (chapters or {}).get(name), "train_seconds": run["train_seconds"],
               "yardsticks": run["train_seconds"] / yd if yd and run["train_seconds"] else None,
               "threads": run.get("threads"), "glued": {}, "glued_not_in_prose": 0, "claims": {},
               "aggregate_pages": []}
        for page, trace in traces.items():
            if "glue" not in trace:
                continue
            shown = set(trace.get("prose", ()))
            using = [g for g, models in trace["glue"].items() if name in models]
            if page in AGGREGATE_PAGES:
                if using:
                    row["aggregate_pages"].append(page)
                continue
            if [g for g in using if g in shown]:
                row["glued"][page] = sorted(g for g in using if g in shown)
            row["glued_not_in_prose"] += sum(g not in shown for g in using)
            n_claims = sum(name in models for _, models in trace.get("claims", ()))
            if n_claims:
                row["claims"][page] = n_claims
        rows.append(row)
    return sorted(rows, key=lambda r: -(r["train_seconds"] or 0))


# ------------------------------------------------------ one epoch per family
# ``--gpu-check`` (tools/gpu-check.sh): one epoch of each family's ``full``
# model, mixed precision off and on, for a machine with a GPU.
GPU_CHECK = {"conv AE": "ae-conv", "transformer AE": "ae-transformer", "VAE": "vae-mnist",
             "discrete VAE": "dvae-gumbel", "classifier": "classifier-real", "VQ-VAE": "vqvae",
             "PixelCNN": "pixelcnn"}
GPU_CHECK_CPU_STEPS = 20  # on a CPU, unless --steps says otherwise


def _one_epoch(name: str, amp: bool, steps: int) -> dict:
    """One epoch of experiment ``name``'s ``full`` model (the first ``steps``
    batches of it when ``steps`` > 0), timed with the device synchronised
    before each clock reading: images/s and peak memory. A prior over code
    grids gets the grids of an untrained upstream VQ-VAE: grids of the right
    shape and range, which is all the speed depends on."""
    import torch

    from . import data, experiments
    from .inference import code_grids
    from .models import build_model
    from .train import fit, pick_device

    device = pick_device()
    config = experiments.get_config(name, "full")
    source = experiments.get_config(config.source, "full") if config.source else config
    split = data.load(source.dataset, "train").subset(source.train_size)
    n = min(len(split), steps * config.batch_size) if steps > 0 else len(split)
    x, y = split.images[:n], split.labels[:n]
    if config.source is not None:
        torch.manual_seed(0)
        x = code_grids(build_model(source, split.shape, len(split)).to(device), x)
    torch.manual_seed(0)
    model = build_model(config, tuple(x.shape[1:]), len(x))
    x, y = x.to(device), y.to(device)
    kwargs = dict(batch_size=config.batch_size, lr=config.lr, device=device, amp=amp,
                  progress=False, lr_schedule=config.lr_schedule)

    def synchronise():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fit(model, x[:2 * config.batch_size], y[:2 * config.batch_size], epochs=1, **kwargs)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronise()
    tick = time.perf_counter()
    fit(model, x, y, epochs=1, **kwargs)
    synchronise()
    seconds = time.perf_counter() - tick
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else _peak_mb())
    result = {"experiment": name, "amp": amp, "images": n, "epoch_images": len(split),
              "steps": -(-n // config.batch_size), "seconds": seconds,
              "images_per_second": n / seconds, "peak_mb": peak,
              "peak_kind": "CUDA max_memory_allocated" if device.type == "cuda"
              else "process max RSS", "device": str(device)}
    if device.type == "cuda":
        try:
            m = SYNC_STEPS * config.batch_size
            result.update(_host_syncs(lambda: fit(model, x[:m], y[:m], epochs=1, **kwargs),
                                      steps=-(-len(x[:m]) // config.batch_size)))
        except Exception as err:  # noqa: BLE001 - the timing above stands; say why no count
            result["host_syncs_error"] = f"{type(err).__name__}: {err}"
    return result


SYNC_STEPS = 150  # optimiser steps watched for host synchronisations (fit reads every 50)


def _host_syncs(run, steps: int = SYNC_STEPS) -> dict:
    """Run ``run()`` (a ``fit`` of ``steps`` steps) with CUDA's sync
    debug mode on "warn" and count the host synchronisations it reports, with
    the three lines of Python that cause most of them. ``fit`` reads the loss
    terms every 50 steps, so a loop without per-step reads shows about
    ``steps / 50`` of them plus the few at its start and end."""
    import collections
    import warnings

    import torch

    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    where = collections.Counter(f"{Path(w.filename).name}:{w.lineno}" for w in syncs)
    return {"sync_steps": steps, "host_syncs": len(syncs),
            "sync_sources": dict(where.most_common(3))}


def gpu_check(out: Path, steps: int | None) -> dict:
    """``--gpu-check``: every family of ``GPU_CHECK``, AMP off and on."""
    info = machine()
    cpu = info["device"] == "cpu"
    steps = (GPU_CHECK_CPU_STEPS if cpu else 0) if steps is None else steps
    note = (f"{steps} steps per run, not a whole epoch (--steps {steps}; --steps 0 for the epoch)"
            if steps else "one whole epoch per run")
    print(f"gpu check on {info['device']} ({info.get('accelerator', 'no accelerator')}): {note}",
          flush=True)
    results = {"machine": info, "steps": steps, "note": note, "runs": {}}
    for family, name in GPU_CHECK.items():
        for amp in (False, True):
            label = f"{family}, AMP {'on' if amp else 'off'}"
            results["runs"][label] = _run_child("one_epoch", f"{name}|{int(amp)}", steps)
            print(f"{label}: {json.dumps(results['runs'][label])}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.json").write_text(json.dumps(results, indent=1))
    (out / "gpu-check.md").write_text(gpu_check_markdown(results))
    return results


def gpu_check_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"One epoch per model family in the `full` profile on `{m['device']}` "
             f"({m.get('accelerator', 'no accelerator')}), torch {m['torch']}: "
             f"{results['note']}. Timings synchronise the device before reading the clock.", "",
             "| family | AMP | images | seconds | images/s | peak memory (MB) | host syncs |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, r in results["runs"].items():
        family, amp = label.rsplit(", AMP ", 1)
        if "error" in r:
            lines.append(f"| {family} | {amp} | failed: {r['error']} | | | | |")
            continue
        syncs = (f"{r['host_syncs']} in {r['sync_steps']} steps" if "host_syncs" in r
                 else f"count failed: {r['host_syncs_error']}" if "host_syncs_error" in r
                 else "not counted (CUDA only)")
        lines.append(f"| {family} (`{r['experiment']}`) | {amp} | {r['images']:,} of {r['epoch_images']:,} "
                     f"| {r['seconds']:.1f} | {r['images_per_second']:,.0f} | {r['peak_mb']:,.0f} "
                     f"({r['peak_kind']}) | {syncs} |")
    if any("host_syncs" in r for r in results["runs"].values()):
        lines += ["", "Host syncs: the synchronisations CUDA's sync debug mode reports in a "
                  f"further `fit` of up to {SYNC_STEPS} steps; `fit` reads the loss terms every 50 "
                  "steps, so a loop without per-step reads shows a handful."]
    return "\n".join(lines) + "\n"


def _child(task: str, arg: str, steps: int) -> None:
    os.environ.setdefault("AUTOENCODERS_PROGRESS", "0")
    if task == "yardstick":
        result = _yardstick_reading()
    elif task == "throughput":
        result = _throughput(arg, steps)
    elif task == "data_path":
        result = _data_path(steps)
    elif task == "evaluation":
        result = _evaluation()
    elif task == "threads":
        result = _threads()
    elif task == "experiment":
        result = _quick_experiment(arg)
    elif task == "book":
        profile, cache, out, tree = arg.split("|")
        result = _book_build(profile, Path(cache), Path(out), Path(tree))
    elif task == "chapter":
        page, cache, tree = arg.split("|")
        result = _chapter_run(Path(page), Path(cache), Path(tree))
    elif task == "trace":
        result = trace_page(Path(arg))
    elif task == "one_epoch":
        name, amp = arg.split("|")
        result = _one_epoch(name, amp == "1", steps)
    elif task == "vae_settings":
        result = _vae_settings()
    elif task == "flops":
        result = {"experiments": _training_flops()}
    else:
        raise ValueError(task)
    result["peak_mb"] = result.get("peak_mb", _peak_mb())
    print("BENCH " + json.dumps(result))


# ----------------------------------------------------------- in the parent
def _run_child(task: str, arg: str = "", steps: int = 30, env: dict | None = None) -> dict:
    cmd = [sys.executable, "-m", "autoencoders.bench", "--child", task, arg, str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()] or ["no output"]
    return {"error": lines[-1][:200]}


def _jupyter_book() -> str:
    """The ``jupyter-book`` of this Python's environment (found even when the
    environment is not activated), else the one on PATH."""
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.is_file() else (shutil.which("jupyter-book") or "jupyter-book")


def _tree_env(tree: Path) -> dict:
    """The environment in which a build or chapter of ``tree`` imports
    ``tree``'s own package (not an installed or editable copy)."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(Path(tree) / "code") + (os.pathsep + path if path else "")}


def _book_build(profile: str, cache: Path, out: Path, tree: Path = REPO) -> dict:
    """One ``jupyter-book build`` of ``tree`` (run from a child process, so
    that the peak memory reported is that of this build's largest process alone)."""
    env = dict(os.environ, AUTOENCODERS_PROFILE=profile, AUTOENCODERS_CACHE=str(cache),
               AUTOENCODERS_PROGRESS="0", **_tree_env(tree))
    tick = time.perf_counter()
    proc = subprocess.run([_jupyter_book(), "build", str(tree),
                           "-W", "--keep-going", "--path-output", str(out)],
                          env=env, capture_output=True, text=True)
    result = {"wall_seconds": time.perf_counter() - tick, "ok": proc.returncode == 0,
              "peak_mb_largest_process": _peak_mb(children=True)}
    log = proc.stdout + proc.stderr
    (out / "build.log").parent.mkdir(parents=True, exist_ok=True)
    (out / "build.log").write_text(log)
    result["chapter_seconds"] = {
        Path(path).stem: float(sec) for path, sec in
        re.findall(r"^(\S+\.(?:md|ipynb)): Executed notebook in ([\d.]+) seconds", log, flags=re.M)}
    prepared = re.search(r"prepared for side by side in ([\d.]+) seconds", log)
    if prepared:  # training every missing model, before the chapters run side by side
        result["prepare_seconds"] = float(prepared.group(1))
    return result


def chapter_pages(tree: Path = REPO) -> dict[str, Path]:
    """The chapters of ``tree`` that run code: name -> ``book/<name>.md``."""
    return {p.stem: p for p in sorted((Path(tree) / "book").glob("*.md"))
            if "{code-cell}" in p.read_text(encoding="utf-8")}


def _chapter_run(page: Path, cache: Path, tree: Path) -> dict:
    """One chapter executed as a notebook in a fresh kernel, as a student
    runs it, with the models in ``cache`` (empty: it trains them all)."""
    import jupytext
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.update(AUTOENCODERS_PROFILE="quick", AUTOENCODERS_CACHE=str(cache),
                      AUTOENCODERS_PROGRESS="0", **_tree_env(tree))
    notebook = jupytext.read(page)
    tick = time.perf_counter()
    result = single_nb_execution(notebook, cwd=str(page.parent), timeout=None, allow_errors=False)
    out = {"wall_seconds": time.perf_counter() - tick, "ok": result.err is None,
           "peak_mb_largest_process": _peak_mb(children=True)}
    if result.err is not None:
        out["error"] = (result.exc_string or repr(result.err)).strip().splitlines()[-1][:200]
    return out


def machine() -> dict:
    import torch

    from .train import pick_device

    info = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(pick_device()), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["accelerator"] = torch.cuda.get_device_name()
    return info


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def commit(tree: Path = REPO) -> str | None:
    """``tree``'s commit, with "+changes" when its files differ from it."""
    try:
        head = _git("rev-parse", "--short=12", "HEAD", cwd=tree)
        dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=tree)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


@contextlib.contextmanager
def baseline_tree(rev: str, parent: Path):
    """Commit ``rev`` checked out in a ``git worktree`` under ``parent``
    (removed afterwards): yields (folder, full commit hash)."""
    try:
        sha = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(f"--baseline: {rev!r} is not a commit of the repository at {REPO}") from None
    folder = Path(parent) / f"baseline-{sha[:12]}"
    _git("worktree", "add", "--detach", "--quiet", str(folder), sha)
    try:
        yield folder, sha
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
                       capture_output=True)


# The quick builds of one tree, in order: label, output folder. The first
# starts from an emptied cache and folder, the second repeats it with nothing
# changed, the third builds into an emptied new folder with every model cached.
QUICK_BUILDS = (("quick (empty cache)", "quick"), ("quick (warm: nothing changed)", "quick"),
                ("quick (models cached, every chapter executed)", "quick-fresh"))


def _quick_builds(tree: Path, folder: Path) -> list[tuple[str, str]]:
    """(label, child argument) of ``tree``'s three quick builds in ``folder``,
    which is emptied first."""
    for old in ("quick-cache", "quick", "quick-fresh"):
        shutil.rmtree(folder / old, ignore_errors=True)
    return [(label, f"quick|{folder / 'quick-cache'}|{folder / out}|{tree}")
            for label, out in QUICK_BUILDS]


def paired_builds(trees: dict[str, Path], work: Path, pairs: int, measure=None) -> dict:
    """The quick builds of two trees ("new", "baseline"), A/B alternating:
    each build of one tree is followed by the same build of the other, and
    the tree that goes first swaps every pair. Returns both trees' results
    per pair, the ratios new / baseline and their medians."""
    measure = measure or (lambda arg: _run_child("book", arg))
    out: dict = {"pairs": [], "ratios": {}}
    for i in range(pairs):
        order = ["new", "baseline"] if i % 2 == 0 else ["baseline", "new"]
        steps = {side: _quick_builds(trees[side], work / f"pair{i + 1}" / side) for side in order}
        pair: dict = {}
        for k, (label, _) in enumerate(QUICK_BUILDS):
            for side in order:
                pair.setdefault(label, {})[side] = measure(steps[side][k][1])
                print(f"pair {i + 1}, {side}, {label}: {pair[label][side]}", flush=True)
            new, base = (pair[label][s].get("wall_seconds") for s in ("new", "baseline"))
            if new and base:
                out["ratios"].setdefault(label, []).append(new / base)
        out["pairs"].append(pair)
    out["median_ratio"] = {label: statistics.median(r) for label, r in out["ratios"].items()}
    return out


def chapter_costs(trees: dict[str, Path], work: Path, names: list[str], measure=None) -> dict:
    """Each chapter run alone from an empty cache, in each tree (A/B
    alternating from chapter to chapter when there are two)."""
    measure = measure or (lambda arg: _run_child("chapter", arg))
    pages = {side: chapter_pages(tree) for side, tree in trees.items()}
    names = names or list(dict.fromkeys(n for p in pages.values() for n in p))
    unknown = [n for n in names if not any(n in p for p in pages.values())]
    if unknown:
        raise SystemExit(f"--chapters: no chapter {', '.join(map(repr, unknown))} under book/; "
                         f"known: {', '.join(pages['new'])}")
    out: dict = {}
    for i, name in enumerate(names):
        order = list(trees) if i % 2 == 0 else list(reversed(trees))
        for side in order:
            if name not in pages[side]:
                continue
            cache = work / "chapters" / side / name
            shutil.rmtree(cache, ignore_errors=True)
            out.setdefault(name, {})[side] = measure(f"{pages[side][name]}|{cache}|{trees[side]}")
            print(f"chapter {name}, {side}: {out[name][side]}", flush=True)
    return out


def trace_book(cache: Path, tree: Path = REPO) -> dict:
    """Every chapter of ``tree`` traced (:func:`trace_page`) against the
    models in ``cache`` (a ``quick`` cache holding every model), each in a
    child process of its own."""
    env = dict(AUTOENCODERS_PROFILE="quick", AUTOENCODERS_CACHE=str(cache),
               AUTOENCODERS_PROGRESS="0", MPLBACKEND="Agg", **_tree_env(tree))
    traces = {}
    for name, page in chapter_pages(tree).items():
        traces[name] = _run_child("trace", str(page), env=env)
        print(f"traced {name}: {len(traces[name].get('glue', {}))} glued values"
              + (f", error: {traces[name]['error']}" if "error" in traces[name] else ""), flush=True)
    return traces


def run(out: Path, *, book: bool = True, experiments_too: bool = True, steps: int = 30,
        work: Path | None = None, baseline: str | None = None, pairs: int = 1,
        chapters: list[str] | None = None, models_from: Path | None = None) -> dict:
    from . import experiments

    results: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
                     "commit": commit(), "machine": machine(), "throughput": {},
                     "quick_experiment": {}}
    print("machine:", json.dumps(results["machine"]), flush=True)
    start = _run_child("yardstick")
    print(f"yardstick at the start: {json.dumps(start)}", flush=True)
    for family, name in FAMILIES.items():
        if name not in experiments.EXPERIMENTS:
            results["throughput"][family] = {"error": f"no experiment {name!r} yet"}
            continue
        results["throughput"][family] = _run_child("throughput", name, steps)
        print(f"throughput {family}: {results['throughput'][family]}", flush=True)
        if experiments_too:
            results["quick_experiment"][family] = _run_child("experiment", name)
            print(f"quick experiment {family}: {results['quick_experiment'][family]}", flush=True)
    results["changes"] = {"data path": _run_child("data_path", steps=steps),
                          "evaluation": _run_child("evaluation"),
                          "threads": _run_child("threads")}
    results["vae_settings"] = _run_child("vae_settings")
    print("vae settings:", json.dumps(results["vae_settings"]), flush=True)
    print("changes:", json.dumps(results["changes"]), flush=True)
    flops = _run_child("flops")
    results["full_estimate"] = (full_estimate(results["throughput"], flops["experiments"])
                                if "experiments" in flops else flops)
    print("full estimate:", json.dumps(results["full_estimate"]), flush=True)
    with contextlib.ExitStack() as stack:
        tmp = Path(work) if work is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        trees = {"new": REPO}
        if baseline:
            folder, sha = stack.enter_context(baseline_tree(baseline, tmp))
            trees["baseline"] = folder
            results["baseline"] = {"rev": baseline, "commit": sha[:12]}
        if book:
            shutil.rmtree(tmp / "smoke-cache", ignore_errors=True)
            shutil.rmtree(tmp / "smoke", ignore_errors=True)
            results["book"] = {"smoke (empty cache)": _run_child(
                "book", f"smoke|{tmp / 'smoke-cache'}|{tmp / 'smoke'}|{REPO}")}
            print(f"book smoke: {results['book']['smoke (empty cache)']}", flush=True)
            if baseline:
                results["paired"] = paired_builds(trees, tmp, pairs)
                results["book"].update({label: r["new"] for label, r in results["paired"]["pairs"][0].items()})
                models_from = models_from or tmp / "pair1" / "new" / "quick-cache"
            else:
                for label, arg in _quick_builds(REPO, tmp):
                    results["book"][label] = _run_child("book", arg)
                    print(f"book {label}: {results['book'][label]}", flush=True)
                models_from = models_from or tmp / "quick-cache"
        if chapters is not None:
            results["chapters_empty_cache"] = chapter_costs(trees, tmp, chapters)
        if models_from is not None:
            runs = cache_runs(models_from)
            results["models"] = {"cache": str(models_from), "runs": runs,
                                 "chapters": {n: experiments.CHAPTERS.get(n) for n in runs},
                                 "traces": trace_book(models_from)}
    end = _run_child("yardstick")
    print(f"yardstick at the end: {json.dumps(end)}", flush=True)
    results["yardstick"] = yardstick_summary(start, end)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=1))
    (out / "bench.md").write_text(markdown(results))
    return results


# ------------------------------------------------------------------ reports
def _glue_list(names: list[str], shown: int = 6) -> str:
    names = sorted(names, key=lambda n: ("fig" not in n, n))  # figures first
    head = ", ".join(f"`{n}`" for n in names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def models_markdown(results: dict) -> list[str]:
    """The models table of a bench run (empty when it has none)."""
    models = results.get("models")
    if not models:
        return []
    yd = results.get("yardstick")
    rows = models_table(models["runs"], models["traces"], yd, models.get("chapters"))
    failed = {page: t["error"] for page, t in models["traces"].items() if "error" in t}
    lines = ["", "Every model the `quick` build trains, most expensive first: its training "
                 "time (from its `metrics.json`; one thread in the build's pool, or both), and the "
                 "glued numbers and figures (by glue name, per chapter) that use it and that the "
                 "prose shows. Found by running each chapter statement by statement against the "
                 "build's cache and noting which models' weights, learned metrics or cached "
                 "evaluations each value comes from (docs/benchmarks.md says how); a glued value "
                 "made from a study shares all of the study's models. "
                 + ("The results page lists every model and is not counted. " if AGGREGATE_PAGES else "")
                 + f"Total: {len(rows)} models, "
                 + in_yardsticks(sum(r["train_seconds"] or 0 for r in rows), yd) + " of training.", "",
             "| model | chapter | training | threads | used by (glued in the prose) | claims "
             "| glued, not in the prose |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: |"]
    for r in rows:
        used = "; ".join(f"{page}: {_glue_list(names)}" for page, names in r["glued"].items())
        lines.append(f"| `{r['model']}` | {r['chapter'] or '–'} | {in_yardsticks(r['train_seconds'], yd)} "
                     f"| {r['threads'] or '–'} | {used or '**nothing**'} "
                     f"| {sum(r['claims'].values())} | {r['glued_not_in_prose']} |")
    if failed:
        lines += ["", "Chapters whose trace failed (their uses are missing above): "
                  + "; ".join(f"{page}: {err}" for page, err in failed.items())]
    return lines


def _header_md(results: dict) -> list[str]:
    m = results["machine"]
    yd = results.get("yardstick")
    lines = [f"Machine: {m['cpus']} CPUs, {m['torch_threads']} torch threads, device "
             f"`{m['device']}`" + (f" ({m['accelerator']})" if m.get("accelerator") else "")
             + f", torch {m['torch']}" + (f", Python {m['python']}" if m.get("python") else "") + "."]
    if results.get("date") or results.get("commit"):
        lines.append(f"Run: {results.get('date', '?')}, commit `{results.get('commit') or '?'}`.")
    if yd and "seconds" in yd:
        end = yd.get("end") or {}
        lines.append(f"Yardstick (1 yd): **{yd['seconds']:.2f} s**, the median of all the repetitions "
                     f"behind its readings at the start ({yd['start']['seconds']:.2f} s) and the end "
                     f"({end['seconds']:.2f} s); "
                     f"drift (end / start) {yd['drift']:.2f}." if "seconds" in end else
                     f"Yardstick (1 yd): **{yd['seconds']:.2f} s** (start reading only).")
        lines.append(f"The yardstick: {yd.get('definition', YARDSTICK_DEFINITION)}. Times below are "
                     "seconds and yardsticks (seconds / 1 yd).")
    elif yd:
        lines.append(f"Yardstick failed: {yd.get('error')}; times are in seconds only.")
    return [" ".join(lines)]


def _paired_md(results: dict, yd: dict | None) -> list[str]:
    paired = results.get("paired")
    if not paired:
        return []
    base = results.get("baseline", {})
    lines = ["", f"This tree against `{base.get('rev')}` (commit `{base.get('commit')}`), built in "
                 f"the same run, A/B alternating ({len(paired['pairs'])} pair(s); the tree that goes "
                 "first swaps from pair to pair). Ratio: this tree / baseline.", "",
             "| build | this tree | baseline | ratio per pair | median ratio |",
             "| --- | ---: | ---: | --- | ---: |"]
    for label, _ in QUICK_BUILDS:
        runs = [p[label] for p in paired["pairs"] if label in p]
        new = statistics.median([r["new"].get("wall_seconds", float("nan")) for r in runs])
        old = statistics.median([r["baseline"].get("wall_seconds", float("nan")) for r in runs])
        ok = all(r[s].get("ok", False) for r in runs for s in ("new", "baseline"))
        lines.append(f"| {label}{'' if ok else ' (a build failed)'} | {in_yardsticks(new, yd)} "
                     f"| {in_yardsticks(old, yd)} "
                     f"| {', '.join(f'{x:.2f}' for x in paired['ratios'].get(label, []))} "
                     f"| {paired['median_ratio'].get(label, float('nan')):.2f} |")
    return lines


def _book_md(results: dict, yd: dict | None) -> list[str]:
    if "book" not in results:
        return []
    lines = ["", "| book build | time | ok | peak memory of largest process (MB) |",
             "| --- | ---: | --- | ---: |"]
    for label, b in results["book"].items():
        if "error" in b:
            lines.append(f"| {label} | – | failed: {b['error']} | – |")
            continue
        peak = b.get("peak_mb_largest_process")
        lines.append(f"| {label} | {in_yardsticks(b['wall_seconds'], yd)} | {b['ok']} | "
                     + (f"{peak:,.0f} |" if peak else "– |"))
    builds = [(label, b["chapter_seconds"]) for label, b in results["book"].items()
              if b.get("chapter_seconds")]
    if builds:
        chapters = list(dict.fromkeys(c for _, secs in builds for c in secs))
        lines += ["", "| chapter (notebook run) | " + " | ".join(l for l, _ in builds) + " |",
                  "| --- |" + " ---: |" * len(builds)]
        lines += [f"| {c} | " + " | ".join(in_yardsticks(secs[c], yd) if c in secs else "–"
                                           for _, secs in builds) + " |" for c in chapters]
    prepared = [(label, b["prepare_seconds"]) for label, b in results["book"].items()
                if "prepare_seconds" in b]
    if prepared:
        lines += ["", "Before the chapters (training every missing model, in the build process): "
                  + "; ".join(f"{label} {in_yardsticks(sec, yd)}" for label, sec in prepared)
                  + ". The chapters then run side by side, so their times overlap."]
    return lines


def _chapters_md(results: dict, yd: dict | None) -> list[str]:
    costs = results.get("chapters_empty_cache")
    if not costs:
        return []
    two = any("baseline" in c for c in costs.values())
    lines = ["", "Each chapter run alone as a notebook from an empty `quick` cache (as a student "
                 "runs one): it trains every model it needs.", "",
             "| chapter | this tree | " + ("baseline | ratio |" if two else "ok |"),
             "| --- | ---: | " + ("---: | ---: |" if two else "--- |")]
    for name, c in costs.items():
        new, old = c.get("new", {}), c.get("baseline", {})
        cell = in_yardsticks(new.get("wall_seconds"), yd) + ("" if new.get("ok") else " (failed)")
        if two:
            ratio = (f"{new['wall_seconds'] / old['wall_seconds']:.2f}"
                     if new.get("wall_seconds") and old.get("wall_seconds") else "–")
            lines.append(f"| {name} | {cell} | {in_yardsticks(old.get('wall_seconds'), yd)} | {ratio} |")
        else:
            lines.append(f"| {name} | {cell} | {new.get('ok', False)} |")
    return lines


def _speed_md(results: dict, yd: dict | None) -> list[str]:
    """Throughput per family, the before/after changes, the quick VAE's settings."""
    lines = ["", "| model family | train images/s | images per yd | quick experiment (empty cache) "
                 "| peak memory (MB) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for family, t in results.get("throughput", {}).items():
        q = results.get("quick_experiment", {}).get(family, {})
        ips = f"{t['images_per_second']:,.0f}" if "images_per_second" in t else t.get("error", "")
        per_yd = (f"{t['images_per_second'] * yd['seconds']:,.0f}"
                  if "images_per_second" in t and yd and "seconds" in yd else "–")
        peak = max(t.get("peak_mb", 0), q.get("peak_mb", 0))
        lines.append(f"| {family} | {ips} | {per_yd} | {in_yardsticks(q.get('wall_seconds'), yd)} "
                     f"| {peak:,.0f} |")
    changes = results.get("changes", {})
    if changes:
        lines += ["", "| change | before | after | ratio |", "| --- | ---: | ---: | ---: |"]
    for label, c in changes.items():
        ips = c.get("images_per_second", {})
        if "ratio" in c and len(ips) == 2:
            (b_name, b), (a_name, a) = ips.items()
            lines.append(f"| {label}: {b_name} → {a_name} | {b:,.0f} img/s | {a:,.0f} img/s "
                         f"| {c['ratio']:.2f}× |")
        elif ips:
            lines.append(f"| {label} | " + " | ".join(f"{k}: {v:,.0f} img/s" for k, v in ips.items())
                         + " | |")
        elif "error" in c:
            lines.append(f"| {label} | failed: {c['error']} | | |")
    vae = results.get("vae_settings", {})
    if vae and "error" not in vae:
        lines += ["", "| quick VAE setting | test negative ELBO (nats) | training | images/s "
                      "| training NELBO after each epoch (seconds: nats) |",
                  "| --- | ---: | ---: | ---: | --- |"]
        for label, v in vae.items():
            if isinstance(v, dict) and "curve" in v:
                curve = ", ".join(f"{t:.0f}: {n:.0f}" for t, n in v["curve"])
                lines.append(f"| {label} | {v['test_neg_elbo']:.1f} | "
                             f"{in_yardsticks(v['train_seconds'], yd)} | {v['images_per_second']:,.0f} "
                             f"| {curve} |")
    return lines


def _estimate_md(results: dict, yd: dict | None) -> list[str]:
    est = results.get("full_estimate", {})
    if "chapters" not in est:
        return ["", f"Full-profile estimate failed: {est.get('error')}"] if est else []
    lines = ["", f"Estimated training time of the `full` profile per chapter (an **estimate**: each "
                 f"run's training FLOPs, counted by `torch.utils.flop_counter`, divided by the FLOP "
                 f"rate measured above for its model family on this CPU. The GPU column is not a "
                 f"measurement, nor a time on this machine: per run, the larger of its FLOPs at an "
                 f"assumed effective {est['assumed_gpu_tflops']:g} TFLOP/s and its steps at an "
                 f"assumed {est.get('assumed_gpu_ms_per_step', 0):g} ms each):", "",
             "| chapter | runs | training TFLOPs | CPU estimate | GPU estimate (min) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for chapter, row in est["chapters"].items():
        lines.append(f"| {chapter} | {row['runs']} | {row['flops'] / 1e12:,.0f} | "
                     f"{in_yardsticks(row['cpu_seconds'], yd, hours=True)} | "
                     f"{row['gpu_seconds_assumed'] / 60:.1f} |")
    return lines


def markdown(results: dict) -> str:
    """A bench run as Markdown: the machine and the yardstick, then the
    comparison with the baseline, the book builds, the chapters alone, the
    models table, the training speed and the ``full`` estimate."""
    yd = results.get("yardstick")
    lines = (_header_md(results) + _paired_md(results, yd) + _book_md(results, yd)
             + _chapters_md(results, yd) + models_markdown(results) + _speed_md(results, yd)
             + _estimate_md(results, yd))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------ docs/benchmarks.md
GENERATED_BEGIN = ("<!-- BEGIN GENERATED by `python -m autoencoders bench --write-docs` from "
                   "bench.json; do not edit by hand. sha256=")
GENERATED_END = "<!-- END GENERATED -->"
_GENERATED = re.compile(re.escape(GENERATED_BEGIN) + r"([0-9a-f]{64}) -->\n(.*?)"
                        + re.escape(GENERATED_END), re.S)


def generated_section(results: dict | None) -> str:
    """The generated part of docs/benchmarks.md for a bench run (``None``:
    a note that no run has been recorded yet), between markers that carry
    the SHA-256 of what lies between them, so that a hand edit shows."""
    if results is None:
        body = ("No bench run has been recorded with this version of the bench yet. Run "
                "`python -m autoencoders bench --baseline be333b1 --chapters` on a quiet machine, "
                "then `python -m autoencoders bench --write-docs`.\n")
    else:
        body = (f"### Latest bench run ({results.get('date', 'undated')})\n\n" + markdown(results))
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f"{GENERATED_BEGIN}{digest} -->\n{body}{GENERATED_END}"


def generated_is_intact(text: str) -> bool:
    """Whether ``text`` has one generated part and it is as generated."""
    found = _GENERATED.findall(text)
    return len(found) == 1 and hashlib.sha256(found[0][1].encode()).hexdigest() == found[0][0]


def write_docs(results: dict | None, docs: Path | None = None) -> Path:
    """Replace the generated part of ``docs`` (default: docs/benchmarks.md;
    markers included) with the tables of ``results``; the rest of the file
    is left as it is. Returns the file written."""
    docs = Path(docs or DOCS)
    text = docs.read_text(encoding="utf-8")
    start, end = text.find(GENERATED_BEGIN), text.find(GENERATED_END)
    if start < 0 or end < start:
        raise SystemExit(f"--write-docs: {docs} has no generated part (a line starting "
                         f"{GENERATED_BEGIN[:40]!r}... and one {GENERATED_END!r})")
    docs.write_text(text[:start] + generated_section(results) + text[end + len(GENERATED_END):],
                    encoding="utf-8")
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoencoders bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="folder for bench.json and bench.md (default: ./bench-results)")
    parser.add_argument("--no-book", action="store_true", help="skip the whole-book builds")
    parser.add_argument("--no-experiments", action="store_true",
                        help="skip the one-quick-experiment timings")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per throughput run (default 30); with --gpu-check, "
                             f"steps per run (default: the whole epoch on a GPU, "
                             f"{GPU_CHECK_CPU_STEPS} on a CPU; 0: the whole epoch)")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the book builds and their caches in this folder "
                             "(default: a temporary folder, deleted afterwards)")
    parser.add_argument("--baseline", metavar="REV",
                        help="also build commit REV (from a git worktree) and compare the quick "
                             "builds (and --chapters) with it, paired and alternating")
    parser.add_argument("--pairs", type=int, default=1,
                        help="with --baseline: how many A/B pairs of the quick builds (default 1)")
    parser.add_argument("--chapters", nargs="*", metavar="CHAPTER",
                        help="also run each named chapter (none named: every chapter) alone "
                             "from an empty cache")
    parser.add_argument("--models-from", type=Path, metavar="CACHE",
                        help="the quick cache whose models the models table lists (default: the "
                             "quick build's; needed with --no-book for the table)")
    parser.add_argument("--write-docs", nargs="?", const="", metavar="BENCH_JSON",
                        help="measure nothing: write the generated part of docs/benchmarks.md "
                             "from BENCH_JSON (default: <out>/bench.json)")
    parser.add_argument("--gpu-check", action="store_true",
                        help="measure nothing else: one epoch of each model family in the full "
                             "profile, mixed precision off and on (tools/gpu-check.sh)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    if args.pairs < 1:
        parser.error(f"--pairs must be a whole number >= 1, got {args.pairs}")
    if args.steps is not None and args.steps < 0:
        parser.error(f"--steps must be a whole number >= 0, got {args.steps}")
    if args.write_docs is not None:
        source = Path(args.write_docs) if args.write_docs else args.out / "bench.json"
        try:
            results = json.loads(source.read_text())
        except (OSError, ValueError) as err:
            parser.error(f"--write-docs: cannot read {source} ({err}); run the bench first")
        docs = write_docs(results)
        print(f"written: {docs} (from {source}, run of {results.get('date', 'unknown date')})")
        return 0
    if args.gpu_check:
        results = gpu_check(args.out, args.steps)
        print(gpu_check_markdown(results))
        print(f"written: {args.out / 'gpu-check.json'}, {args.out / 'gpu-check.md'}")
        return 0
    if args.baseline and args.no_book and args.chapters is None:
        parser.error("--baseline compares the book builds or --chapters; drop --no-book or add --chapters")
    results = run(args.out, book=not args.no_book, experiments_too=not args.no_experiments,
                  steps=30 if args.steps is None else args.steps, work=args.work,
                  baseline=args.baseline, pairs=args.pairs, chapters=args.chapters,
                  models_from=args.models_from)
    print(markdown(results))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
