"""``python -m autoencoders bench``: how fast the book's hot path is here.

Measures, on this machine:

* training throughput (images/s) of each model family, through the real
  training loop (:func:`autoencoders.train.fit`) on real data;
* the data-path and evaluation choices the loop makes, each against the
  alternative it replaced, as a before/after ratio measured in the same run;
* the wall time and peak memory of one ``quick`` experiment per family
  (a fresh cache, so it really trains);
* the whole-book build in ``smoke`` and ``quick`` from an empty cache, a
  rebuild with nothing changed, and one that re-executes every chapter with
  the models cached;
* the ``full`` profile's training time per chapter, estimated from FLOPs.

Each measurement runs in a child process so that its peak memory (max RSS)
is its own. Results go to ``<out>/bench.json`` and ``<out>/bench.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
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


def _child(task: str, arg: str, steps: int) -> None:
    os.environ.setdefault("AUTOENCODERS_PROGRESS", "0")
    if task == "throughput":
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
        profile, cache, out = arg.split("|")
        result = _book_build(profile, Path(cache), Path(out))
    elif task == "vae_settings":
        result = _vae_settings()
    elif task == "flops":
        result = {"experiments": _training_flops()}
    else:
        raise ValueError(task)
    result["peak_mb"] = _peak_mb()
    print("BENCH " + json.dumps(result))


# ----------------------------------------------------------- in the parent
def _run_child(task: str, arg: str = "", steps: int = 30) -> dict:
    cmd = [sys.executable, "-m", "autoencoders.bench", "--child", task, arg, str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
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


def _book_build(profile: str, cache: Path, out: Path) -> dict:
    """One ``jupyter-book build`` (run from a child process, so that the peak
    memory reported is that of this build's largest process alone)."""
    env = dict(os.environ, AUTOENCODERS_PROFILE=profile, AUTOENCODERS_CACHE=str(cache),
               AUTOENCODERS_PROGRESS="0")
    tick = time.perf_counter()
    proc = subprocess.run([_jupyter_book(), "build", str(REPO),
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


def machine() -> dict:
    import torch

    from .train import pick_device

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(pick_device()), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def run(out: Path, *, book: bool = True, experiments_too: bool = True, steps: int = 30,
        work: Path | None = None) -> dict:
    from . import experiments

    results: dict = {"machine": machine(), "throughput": {}, "quick_experiment": {}}
    print("machine:", json.dumps(results["machine"]), flush=True)
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
    if book:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(work) if work is not None else Path(tmp)
            for old in ("smoke-cache", "smoke", "quick-cache", "quick", "quick-fresh"):  # empty means empty
                shutil.rmtree(tmp / old, ignore_errors=True)
            builds = {"smoke (empty cache)": ("smoke", "smoke-cache", "smoke"),
                      "quick (empty cache)": ("quick", "quick-cache", "quick"),
                      "quick (warm: nothing changed)": ("quick", "quick-cache", "quick"),
                      "quick (models cached, every chapter executed)":
                          ("quick", "quick-cache", "quick-fresh")}
            results["book"] = {}
            for label, (profile, cache, folder) in builds.items():
                results["book"][label] = _run_child("book", f"{profile}|{tmp / cache}|{tmp / folder}")
                print(f"book {label}: {results['book'][label]}", flush=True)
        print("book:", json.dumps(results["book"]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=1))
    (out / "bench.md").write_text(markdown(results))
    return results


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['cpus']} CPUs, {m['torch_threads']} torch threads, device "
             f"`{m['device']}`, torch {m['torch']}.", "",
             "| model family | train images/s | quick experiment (s, empty cache) | peak memory (MB) |",
             "| --- | ---: | ---: | ---: |"]
    for family, t in results["throughput"].items():
        q = results["quick_experiment"].get(family, {})
        ips = f"{t['images_per_second']:,.0f}" if "images_per_second" in t else t.get("error", "")
        wall = f"{q['wall_seconds']:.0f}" if "wall_seconds" in q else "–"
        peak = max(t.get("peak_mb", 0), q.get("peak_mb", 0))
        lines.append(f"| {family} | {ips} | {wall} | {peak:,.0f} |")
    lines += ["", "| change | before | after | ratio |", "| --- | ---: | ---: | ---: |"]
    for label, c in results.get("changes", {}).items():
        ips = c.get("images_per_second", {})
        if "ratio" in c and len(ips) == 2:
            (b_name, b), (a_name, a) = ips.items()
            lines.append(f"| {label}: {b_name} → {a_name} | {b:,.0f} img/s | {a:,.0f} img/s "
                         f"| {c['ratio']:.2f}× |")
        elif ips:
            lines.append(f"| {label} | " + " | ".join(f"{k}: {v:,.0f} img/s" for k, v in ips.items())
                         + " | |")
    vae = results.get("vae_settings", {})
    if vae and "error" not in vae:
        lines += ["", "| quick VAE setting | test negative ELBO (nats) | train seconds | images/s "
                      "| training NELBO after each epoch (seconds: nats) |",
                  "| --- | ---: | ---: | ---: | --- |"]
        for label, v in vae.items():
            if not isinstance(v, dict) or "curve" not in v:
                continue
            curve = ", ".join(f"{t:.0f}: {n:.0f}" for t, n in v["curve"])
            lines.append(f"| {label} | {v['test_neg_elbo']:.1f} | {v['train_seconds']:.1f} "
                         f"| {v['images_per_second']:,.0f} | {curve} |")
    est = results.get("full_estimate", {})
    if "chapters" in est:
        lines += ["", f"Estimated training time of the `full` profile per chapter (an **estimate**: "
                      f"each run's training FLOPs, counted by `torch.utils.flop_counter`, divided by "
                      f"the FLOP rate measured above for its model family on this CPU. The GPU "
                      f"column is not a measurement: per run, the larger of its FLOPs at an "
                      f"assumed effective {est['assumed_gpu_tflops']:g} TFLOP/s and its steps at "
                      f"an assumed {est.get('assumed_gpu_ms_per_step', 0):g} ms each):", "",
                  "| chapter | runs | training TFLOPs | CPU estimate (h) | GPU estimate (min) |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for chapter, row in est["chapters"].items():
            lines.append(f"| {chapter} | {row['runs']} | {row['flops'] / 1e12:,.0f} | "
                         f"{row['cpu_seconds'] / 3600:.1f} | {row['gpu_seconds_assumed'] / 60:.1f} |")
    elif est:
        lines += ["", f"Full-profile estimate failed: {est.get('error')}"]
    if "book" in results:
        lines += ["", "| book build | seconds | ok | peak memory of largest process (MB) |",
                  "| --- | ---: | --- | ---: |"]
        for label, b in results["book"].items():
            if "error" in b:
                lines.append(f"| {label} | – | failed: {b['error']} | – |")
                continue
            peak = b.get("peak_mb_largest_process")
            lines.append(f"| {label} | {b['wall_seconds']:.0f} | {b['ok']} | "
                         + (f"{peak:,.0f} |" if peak else "– |"))
        builds = [(label, b["chapter_seconds"]) for label, b in results["book"].items()
                  if b.get("chapter_seconds")]
        if builds:
            chapters = list(dict.fromkeys(c for _, secs in builds for c in secs))
            lines += ["", "| chapter (notebook run, s) | " + " | ".join(l for l, _ in builds) + " |",
                      "| --- |" + " ---: |" * len(builds)]
            lines += [f"| {c} | " + " | ".join(f"{secs[c]:.0f}" if c in secs else "–"
                                               for _, secs in builds) + " |" for c in chapters]
        prepared = [(label, b["prepare_seconds"]) for label, b in results["book"].items()
                    if "prepare_seconds" in b]
        if prepared:
            lines += ["", "Before the chapters (training every missing model, in the build "
                          "process): " + "; ".join(f"{label} {sec:.0f} s" for label, sec in prepared)
                      + ". The chapters then run side by side, so their times overlap."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoencoders bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="folder for bench.json and bench.md (default: ./bench-results)")
    parser.add_argument("--no-book", action="store_true", help="skip the whole-book builds")
    parser.add_argument("--no-experiments", action="store_true",
                        help="skip the one-quick-experiment timings")
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per throughput run")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the book builds and their caches in this folder "
                             "(default: a temporary folder, deleted afterwards)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    results = run(args.out, book=not args.no_book, experiments_too=not args.no_experiments,
                  steps=args.steps, work=args.work)
    print(markdown(results))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
