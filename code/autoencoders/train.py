"""One training loop for every model.

A model takes part by having ``loss_terms(x, y) -> dict`` whose ``"loss"``
entry is the scalar to minimise; the other entries are logged. The loop owns
the rest: device, seeding, batching by random permutation of whole in-memory
tensors, tqdm progress, per-epoch averages, a guard against NaN/inf losses,
and checkpoints from which an interrupted run resumes exactly.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from .atomic import atomic_save
from .config import LR_SCHEDULES
from .data import model_input
from .settings import device_name, mixed_precision, tqdm_disable


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the step and terms."""


class DeviceUnavailableError(ValueError):
    """The requested device does not exist here; the message names where the
    request came from (``AUTOENCODERS_DEVICE``, a ``--device`` flag, ...)."""


def pick_device(preferred: str | torch.device | None = None, *,
                where: str = "device") -> torch.device:
    """``preferred`` if given, else ``AUTOENCODERS_DEVICE`` if set, else CUDA,
    then Apple MPS, then CPU.

    A requested device is checked here, before any data loads: a name torch
    does not parse, or a device this machine lacks (``cuda`` without CUDA,
    ``cuda:3`` with two GPUs, ``mps`` off a Mac), raises
    :class:`DeviceUnavailableError` naming ``where`` the request came from
    (for ``preferred``) or ``AUTOENCODERS_DEVICE``.
    """
    if preferred is None and device_name():
        preferred, where = device_name(), "AUTOENCODERS_DEVICE"
    if preferred is not None:
        return _check_device(preferred, where)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_device(requested: str | torch.device, where: str) -> torch.device:
    def unavailable(why: str):
        return DeviceUnavailableError(
            f"{where}={str(requested)!r}: {why}. Use cpu, cuda, cuda:N or mps, "
            f"or leave {where} unset to pick the best available device.")

    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError, ValueError):
        raise unavailable("not a device name") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise unavailable("this machine has no CUDA device (or torch was built without CUDA)")
        if device.index is not None and device.index >= count:
            raise unavailable(f"this machine has {count} CUDA device(s), "
                              f"cuda:0 to cuda:{count - 1}")
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if not (mps and mps.is_available()):
            raise unavailable("Apple's MPS is not available on this machine")
        return device
    backend = getattr(torch, device.type, None)  # e.g. torch.xpu
    if backend is None or not getattr(backend, "is_available", lambda: False)():
        raise unavailable(f"torch has no available {device.type!r} backend here")
    return device


def batches(n: int, batch_size: int, epoch: int, seed: int,
            device: torch.device) -> list[torch.Tensor]:
    """The index batches of one epoch: a permutation seeded by (seed, epoch),
    so a resumed run sees exactly the batches the interrupted one would have."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).to(device).split(batch_size))


@dataclass
class History:
    """Per-epoch averages of every loss term, plus timing; ``steps`` holds
    the terms of every ``log_every``-th batch, for curves finer than epochs."""

    epochs: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    examples: int = 0
    steps: list[dict] = field(default_factory=list)

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("nan")




def learning_rate(schedule: str, lr: float, step: int, total: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``: ``lr``
    throughout (``constant``), decaying to 0 on a half cosine (``cosine``),
    or rising linearly over the first 5% of the steps and then decaying on a
    half cosine (``warmup-cosine``). A function of the step alone, so a
    resumed run continues the same schedule."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return lr
    warmup = max(1, total // 20) if schedule == "warmup-cosine" else 0
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def fit(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor | None = None,
        *, epochs: int, batch_size: int, lr: float, seed: int = 0,
        device: torch.device | str | None = None,
        checkpoint: Path | None = None, checkpoint_every: int = 100,
        progress: bool | None = None, desc: str = "training",
        on_step: Callable[[int], None] | None = None,
        log_every: int = 10, amp: bool | None = None,
        lr_schedule: str = "constant",
        on_epoch: Callable[[int], dict] | None = None,
        sync_every: int = 50) -> History:
    """Train ``model`` with Adam on ``inputs`` (and ``labels``).

    ``inputs`` is the whole training set as one tensor; ``uint8`` images are
    scaled to [0, 1] batch by batch, other dtypes (e.g. code indices) pass as
    they are. With ``checkpoint`` set, the state is saved there every
    ``checkpoint_every`` steps, at every epoch end and when the run is
    interrupted, and a later call resumes from it. ``on_step(global_step)``
    is called after each optimiser step (tests use it to interrupt a run).
    Every ``log_every``-th step's terms go to ``History.steps``.
    ``lr_schedule`` shapes the learning rate over the run (see
    :func:`learning_rate`).

    ``amp`` (default: ``AUTOENCODERS_AMP``) runs the forward pass under
    bfloat16 autocast, and on CUDA also stores images and convolution weights
    channels-last; the weights and the optimiser stay float32.

    ``on_epoch(epoch)`` (1-based), if given, is called after every epoch
    (e.g. to measure the model on test images); the dict it returns joins
    that epoch's entry of ``History.epochs``. It runs outside the timing,
    and the random state and train mode are restored after it.

    The loss terms are read from the device every ``sync_every`` steps, not
    after each one; a loss that is not finite stops the run at the next read
    with :class:`TrainingDiverged`, naming the step where it first happened.
    """
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
        raise ValueError(f"sync_every must be a whole number >= 1, got {sync_every!r}")
    device = pick_device(device)
    amp = mixed_precision() if amp is None else amp
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    channels_last = amp and device.type == "cuda"
    if channels_last:
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()
    inputs = inputs.to(device)
    labels = labels.to(device) if labels is not None else None
    # fused: one kernel for the whole update where torch has one (CPU, CUDA);
    # the same Adam up to rounding, and a fifth to a quarter less time per
    # step for the book's conv VAEs on a 2-core CPU (measured; docs/benchmarks.md)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr,
                                 fused=device.type in ("cpu", "cuda"))
    steps_per_epoch = math.ceil(len(inputs) / batch_size)

    history, start_epoch, start_step = History(), 0, 0
    sums: dict[str, float] = {}
    state = None
    if checkpoint is not None and Path(checkpoint).is_file():
        state = _resume(checkpoint, model, optimizer, device)
    if state is not None:
        start_epoch, start_step = state["epoch"], state["step"]
        sums = state["sums"]
        history = History(state["history"], state["seconds"], state["examples"],
                          state.get("steps", []))
    else:
        torch.manual_seed(seed)

    def save(epoch: int, step: int) -> None:
        nonlocal checkpoint
        if checkpoint is None:
            return
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "rng": torch.get_rng_state(), "epoch": epoch, "step": step,
                 "sums": sums, "history": history.epochs,
                 "seconds": history.seconds, "examples": history.examples,
                 "steps": history.steps}
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state()
        try:
            atomic_save(state, checkpoint)
        except OSError as err:  # a full disk, a folder gone read-only: keep training
            warnings.warn(f"{desc}: cannot write the checkpoint {checkpoint} ({err}); "
                          f"training on without checkpoints (an interruption now loses "
                          f"the run's progress).", stacklevel=2)
            checkpoint = None

    bar = tqdm(total=epochs * steps_per_epoch,
               initial=start_epoch * steps_per_epoch + start_step, desc=desc,
               unit="step", disable=tqdm_disable(progress),
               leave=False)
    # The loss terms stay on the device and are read in one transfer every
    # ``sync_every`` steps (and before every checkpoint and at every epoch's
    # end), so a GPU never waits for the host after each step. The clock is
    # read right after such a transfer, when the device has finished.
    window: list[tuple[int, int, tuple[str, ...], torch.Tensor]] = []
    started = time.perf_counter()

    def flush() -> None:
        nonlocal started
        if window:
            flat = torch.cat([values for *_, values in window]).cpu().double()  # waits for the device
            history.seconds += time.perf_counter() - started
            rows = flat.split([len(keys) for _, _, keys, _ in window])
            for (global_step, size, keys, _), row in zip(window, rows):
                values = dict(zip(keys, row.tolist()))
                if not math.isfinite(values["loss"]):
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                    raise TrainingDiverged(
                        f"{desc}: the loss became {values['loss']} at step {global_step} "
                        f"(epoch {(global_step - 1) // steps_per_epoch + 1}, batch "
                        f"{(global_step - 1) % steps_per_epoch + 1}); terms: {shown}. "
                        f"Lower the learning rate (now {lr}) or check the inputs.")
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v * size
                if log_every and global_step % log_every == 0:
                    history.steps.append({"step": global_step, **values})
            bar.set_postfix(loss=f"{values['loss']:.4g}")
            window.clear()
        started = time.perf_counter()

    model.train()
    position = (start_epoch, start_step)  # the next step to run
    try:
        for epoch in range(start_epoch, epochs):
            order = batches(len(inputs), batch_size, epoch, seed, device)
            for step in range(start_step if epoch == start_epoch else 0, steps_per_epoch):
                idx = order[step]
                x = model_input(inputs[idx])
                if channels_last and x.dim() == 4 and x.is_floating_point():
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast():
                    terms = model.loss_terms(x, labels[idx] if labels is not None else None)
                loss = terms["loss"].float()
                global_step = epoch * steps_per_epoch + step + 1
                if lr_schedule != "constant":
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(lr_schedule, lr, global_step - 1,
                                                    epochs * steps_per_epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                window.append((global_step, len(idx), tuple(terms),
                               torch.stack([v.detach().to(loss.device, torch.float32)
                                            for v in terms.values()])))
                history.examples += len(idx)
                position = (epoch, step + 1)
                bar.update()
                if len(window) >= sync_every:
                    flush()
                if global_step % checkpoint_every == 0 and step + 1 < steps_per_epoch:
                    flush()
                    save(*position)
                    started = time.perf_counter()
                if on_step is not None:
                    on_step(global_step)
            flush()
            history.epochs.append({k: v / len(inputs) for k, v in sums.items()})
            if on_epoch is not None:
                with torch.random.fork_rng(devices=[] if device.type != "cuda" else None):
                    history.epochs[-1].update(on_epoch(epoch + 1))
                model.train()
            sums = {}
            position = (epoch + 1, 0)
            save(*position)
            started = time.perf_counter()
    except KeyboardInterrupt:
        flush()  # the steps done count: their terms join the saved sums
        save(*position)  # keep what was done: the next call resumes from here
        raise
    finally:
        bar.close()
    model.eval()
    return history


def _shorten(message: str, width: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= width else message[:width - 1] + "…"


_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def _resume(checkpoint: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            device: torch.device) -> dict | None:
    """Restore model, optimiser and RNGs from ``checkpoint`` and return its
    state, or, if the file cannot be read or restored (half-written, from
    another model, a different format), warn naming it, delete it and
    return ``None``: the run starts fresh with the model as it was."""
    before = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    try:
        # read onto the CPU: the RNG states must stay CPU byte tensors, and
        # load_state_dict copies the weights onto the model's device
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        needed = {"model", "optimizer", "rng", "epoch", "step", "sums",
                  "history", "seconds", "examples"}
        if not isinstance(state, dict) or not needed <= state.keys():
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"not a training checkpoint (found {found})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    except _OUT_OF_MEMORY:
        raise  # the device is full: the checkpoint is fine, keep it
    except Exception as err:  # unreadable: start fresh rather than fail every later run
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])
        warnings.warn(f"checkpoint {checkpoint} cannot be resumed from "
                      f"({type(err).__name__}: {_shorten(str(err))}); "
                      f"deleting it and training from the start.", stacklevel=3)
        try:
            Path(checkpoint).unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder: the caller trains without a checkpoint anyway
        return None
    return state


@torch.inference_mode()
def evaluate(model: torch.nn.Module, inputs: torch.Tensor,
             labels: torch.Tensor | None = None, *, batch_size: int = 1000,
             seed: int = 0, device: torch.device | str | None = None) -> dict:
    """Average each of ``model.loss_terms`` over a whole data set, in eval mode
    and with a fixed seed (so noise or sampling inside the loss is repeatable)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).eval()
    torch.manual_seed(seed)
    rows = []  # (images, term names, their values on the device), read once at the end
    for start in range(0, len(inputs), batch_size):
        x = model_input(inputs[start:start + batch_size].to(device))
        y = labels[start:start + batch_size].to(device) if labels is not None else None
        terms = model.loss_terms(x, y)
        rows.append((len(x), tuple(terms),
                     torch.stack([v.to(x.device, torch.float32) for v in terms.values()])))
    values = torch.cat([v for *_, v in rows]).cpu().double().split([len(k) for _, k, _ in rows])
    sums: dict[str, float] = {}
    for (size, keys, _), row in zip(rows, values):
        for k, v in zip(keys, row.tolist()):
            sums[k] = sums.get(k, 0.0) + v * size
    return {k: v / len(inputs) for k, v in sums.items()}
