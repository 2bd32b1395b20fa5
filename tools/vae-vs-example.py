#!/usr/bin/env python3
"""The book's quick VAE against the VAE of PyTorch's ``examples/vae``, at
equal training seconds.

Arms, trained one after the other in this process (2 torch threads unless
``--threads``), on the same training digits and measured on the same test
digits (``cache.load_data`` of the registry's ``vae-mnist``):

- ``book``: the registry's ``vae-mnist`` (convolutional, 16 latent numbers,
  its batch size, peak learning rate and schedule, its epochs);
- ``example``: the model and recipe of ``examples/vae/main.py`` in PyTorch's
  examples repository, rewritten here: a 784-400-20 MLP encoder and a
  20-400-784 MLP decoder with ReLUs, a Bernoulli decoder (binary
  cross-entropy summed over pixels) and the Gaussian KL, Adam at a constant
  1e-3, batches of 128. The example sums the loss over the batch; here it is
  averaged, which Adam's update ignores up to its epsilon.

Both go through the package's ``train.fit`` (the same loop, fused Adam, the
same batch order per seed), so the comparison is of model and recipe, not of
the loop. After every epoch both are measured on the whole test set with
``train.evaluate`` (the one-sample negative ELBO, in nats per image, seeded);
that measurement is outside the clock. The example trains until its seconds
reach ``--overtime`` times the book arm's (or ``--max-epochs``).

The table compares the book's final test NELBO with the example's at the
book's training seconds (linear interpolation between the two epochs around
that time) and, as a check on the interpolation, with the example's best
epoch at or before that time. Times are also given in yardsticks
(the bench's frozen workload, read three times before and three times after
the runs, in this process).

    export PYTHONPATH=$PWD/code AUTOENCODERS_DATA=... AUTOENCODERS_OFFLINE=1
    python tools/vae-vs-example.py --seeds 0 1 2 --markdown /tmp/vae-vs-example.md
"""
from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from autoencoders import losses
from autoencoders.bench import _yardstick_reading, yardstick_summary
from autoencoders.cache import load_data
from autoencoders.experiments import get_config
from autoencoders.models import build_model
from autoencoders.train import evaluate, fit

EXPERIMENT = "vae-mnist"
ARMS = ("book", "example", "example-own-loop")


class ExampleVAE(nn.Module):
    """The VAE of PyTorch's examples/vae (784-400-20 MLPs, ReLU), with a
    ``loss_terms`` so that the package's trainer and ``evaluate`` run it."""

    def __init__(self, pixels: int = 784, hidden: int = 400, latent: int = 20):
        super().__init__()
        self.enc = nn.Linear(pixels, hidden)
        self.enc_mu = nn.Linear(hidden, latent)
        self.enc_logvar = nn.Linear(hidden, latent)
        self.dec = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, pixels)

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        flat = x.flatten(1)
        h = F.relu(self.enc(flat))
        mu, logvar = self.enc_mu(h), self.enc_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec_out(F.relu(self.dec(z)))
        recon = losses.bernoulli_nll(logits, flat)
        kl = losses.gaussian_kl(mu, logvar)
        neg_elbo = (recon + kl).mean()
        return {"loss": neg_elbo, "recon": recon.mean(), "kl": kl.mean(), "neg_elbo": neg_elbo}


    def forward(self, x: torch.Tensor):
        """The example's forward: (reconstruction probabilities, mu, logvar)."""
        h = F.relu(self.enc(x.flatten(1)))
        mu, logvar = self.enc_mu(h), self.enc_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return torch.sigmoid(self.dec_out(F.relu(self.dec(z)))), mu, logvar


def example_loop(model: ExampleVAE, images: torch.Tensor, *, epochs: int, seed: int,
                 on_epoch) -> None:
    """The example's own training loop, as its main.py writes it: a shuffling
    DataLoader of batches of 128, plain Adam at 1e-3, the loss summed over the
    batch (binary cross-entropy of the probabilities plus the KL), and
    ``loss.item()`` read after every step. Its data set here is a tensor of
    images already scaled to [0, 1] (the example decodes each image from
    torchvision's files as it goes, which costs it more)."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images.float().div(255)), batch_size=128, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        model.train()
        train_loss = 0.0
        for (data,) in loader:
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            bce = F.binary_cross_entropy(recon, data.flatten(1), reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = bce + kld
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        on_epoch(epoch)


class Enough(Exception):
    """Raised from the epoch callback once an arm has trained long enough."""


def train_arm(arm: str, seed: int, test, train, limit_seconds: float | None,
              max_epochs: int, book_fields: dict | None = None) -> list[dict]:
    """Train one arm; return [{epoch, seconds, test_neg_elbo}] after each
    epoch, seconds counted without the per-epoch measurement."""
    config = get_config(EXPERIMENT, "quick", seed=seed, **(book_fields or {}))
    torch.manual_seed(seed)
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {ARMS}")
    if arm == "book":
        model = build_model(config, train.images.shape[1:], len(train))
        kwargs = dict(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                      lr_schedule=config.lr_schedule)
    else:
        model = ExampleVAE(pixels=train.images[0].numel())
        kwargs = dict(epochs=max_epochs, batch_size=128, lr=1e-3, lr_schedule="constant")
    curve: list[dict] = []
    clock = {"seconds": 0.0, "since": 0.0}

    def on_epoch(epoch: int) -> dict:
        clock["seconds"] += time.perf_counter() - clock["since"]
        # evaluate() seeds the global generator: keep the training's random
        # state (batch order, the reparameterization's noise) out of its reach
        with torch.random.fork_rng():
            nelbo = evaluate(model, test.images, seed=seed)["neg_elbo"]
        model.train()
        curve.append({"epoch": epoch, "seconds": clock["seconds"], "test_neg_elbo": nelbo})
        print(f"  {arm} seed {seed} epoch {epoch}: {clock['seconds']:.1f} s, "
              f"test NELBO {nelbo:.2f}", flush=True)
        if limit_seconds is not None and clock["seconds"] >= limit_seconds:
            raise Enough
        clock["since"] = time.perf_counter()
        return {"test_neg_elbo": nelbo}

    clock["since"] = time.perf_counter()
    try:
        if arm == "example-own-loop":
            example_loop(model, train.images, epochs=kwargs["epochs"], seed=seed,
                         on_epoch=on_epoch)
            return curve
        fit(model, train.images, epochs=kwargs.pop("epochs"), seed=seed, device="cpu",
            progress=False, desc=f"{arm} seed {seed}", on_epoch=on_epoch, **kwargs)
    except Enough:
        pass
    return curve


def at_seconds(curve: list[dict], seconds: float) -> float:
    """The curve's test NELBO at ``seconds``, linear between epochs."""
    points = [(0.0, None)] + [(p["seconds"], p["test_neg_elbo"]) for p in curve]
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t0 <= seconds <= t1:
            if v0 is None:
                return float("nan")  # before the first epoch ended
            return v0 + (v1 - v0) * (seconds - t0) / (t1 - t0)
    raise ValueError(f"the curve ends at {curve[-1]['seconds']:.1f} s, before {seconds:.1f} s")


def summarise(runs: dict, yardstick: float) -> dict:
    """Per seed and example arm: the book's final test NELBO against the
    example's at the book's training seconds."""
    rows = []
    for seed, arms in sorted(runs.items()):
        book = arms["book"]
        t = book[-1]["seconds"]
        for arm, example in arms.items():
            if arm == "book":
                continue
            interp = at_seconds(example, t)
            best = min(p["test_neg_elbo"] for p in example if p["seconds"] <= t)
            rows.append({"seed": seed, "arm": arm, "seconds": t, "book": book[-1]["test_neg_elbo"],
                         "example_at_t": interp, "example_best_by_t": best,
                         "ratio": book[-1]["test_neg_elbo"] / interp,
                         "ratio_best": book[-1]["test_neg_elbo"] / best,
                         "example_epochs_by_t": sum(p["seconds"] <= t for p in example)})
    by_arm = {}
    for r in rows:
        by_arm.setdefault(r["arm"], []).append(r["ratio"])
    return {"yardstick_seconds": yardstick, "rows": rows,
            "ratios": {arm: {"mean": statistics.mean(v), "worst": max(v)}
                       for arm, v in by_arm.items()}}


def sampled(curve: list[dict], yd: float) -> list[dict]:
    """The first point after each whole yardstick, and the last point."""
    shown, mark = [], 1
    for p in curve:
        if p["seconds"] / yd >= mark:
            shown.append(p)
            mark = int(p["seconds"] / yd) + 1
    if curve and (not shown or shown[-1] is not curve[-1]):
        shown.append(curve[-1])
    return shown


def markdown(summary: dict, runs: dict) -> str:
    yd = summary["yardstick_seconds"]
    drift = summary.get("yardstick", {}).get("drift", float("nan"))
    lines = [f"Yardstick in this run: {yd:.2f} s (median of the readings before and after; "
             f"drift end / start {drift:.2f}).", "",
             "| seed | example arm | book's training | book's test NELBO | example's at the same "
             "seconds (its epochs by then) | example's best epoch by then | ratio book / example |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in summary["rows"]:
        lines.append(f"| {r['seed']} | {r['arm']} | {r['seconds']:.1f} s = {r['seconds'] / yd:.2f} yd "
                     f"| {r['book']:.1f} | {r['example_at_t']:.1f} ({r['example_epochs_by_t']}) "
                     f"| {r['example_best_by_t']:.1f} | {r['ratio']:.3f} |")
    lines.append("")
    for arm, r in summary["ratios"].items():
        lines.append(f"- {arm}: mean ratio {r['mean']:.3f}, worst {r['worst']:.3f}")
    lines += ["", "Test NELBO (nats) against training time (yardsticks): the first epoch to end "
              "after each whole yardstick, and the last epoch:", "",
              "| seed | arm | yd: nats |", "| ---: | --- | --- |"]
    for seed, arms in sorted(runs.items()):
        for arm, curve in arms.items():
            points = ", ".join(f"{p['seconds'] / yd:.1f}: {p['test_neg_elbo']:.1f}"
                               for p in sampled(curve, yd))
            lines.append(f"| {seed} | {arm} | {points} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--examples", nargs="+", choices=[*ARMS[1:], "none"], default=list(ARMS[1:]),
                        help="the example arms to run (default: both)")
    parser.add_argument("--book", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="Config fields to change in the book arm (for trying settings)")
    parser.add_argument("--overtime", type=float, default=1.3,
                        help="train the example to this multiple of the book arm's seconds")
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every curve here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    args = parser.parse_args(argv)
    if args.overtime < 1:
        parser.error("--overtime must be >= 1 (the example has to reach the book's seconds)")
    book_fields = {}
    for item in args.book:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--book {item!r}: expected FIELD=VALUE")
        try:
            book_fields[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            book_fields[key] = text
    torch.set_num_threads(args.threads)
    train, test = load_data(get_config(EXPERIMENT, "quick"))
    print(f"{len(train):,} training and {len(test):,} test digits; yardstick ...", flush=True)
    start = _yardstick_reading()
    runs: dict[int, dict] = {}
    for seed in args.seeds:
        runs[seed] = {"book": train_arm("book", seed, test, train, None, args.max_epochs,
                                        book_fields)}
        limit = args.overtime * runs[seed]["book"][-1]["seconds"]
        for arm in args.examples if args.examples != ["none"] else []:
            runs[seed][arm] = train_arm(arm, seed, test, train, limit, args.max_epochs)
    yardstick = yardstick_summary(start, _yardstick_reading())
    summary = summarise(runs, yardstick["seconds"])
    summary["yardstick"] = yardstick
    text = markdown(summary, runs)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
