#!/usr/bin/env python3
"""The book's VQ-VAE against the same network with vector-quantize-pytorch's
``VectorQuantize`` in place of the book's quantizer.

Both arms use the registry's ``vqvae`` experiment (its encoder, decoder,
data, budget and trainer settings, quick profile unless told otherwise) and
the package's own trainer (``train.fit``), data (``cache.load_data``) and
metrics (``train.evaluate``'s test MSE, ``metrics.codebook``'s perplexity on
the whole test set). Only the quantizer differs. Runs with the same seed
start from the same encoder and decoder weights and see the same batches.

The library is not a dependency of the project. Install it in a throwaway
virtual environment that also sees the project's packages, e.g.::

    python3 -m venv /tmp/vqlib
    echo ~/.venvs/ae/lib/python3.11/site-packages > /tmp/vqlib/lib/python3.11/site-packages/ae.pth
    /tmp/vqlib/bin/pip install 'vector-quantize-pytorch==1.32.*'

and run this script with that Python. Without the library the library arms
are skipped (the script says so) and the book's arms still run.

    export PYTHONPATH=$PWD/code AUTOENCODERS_DATA=... AUTOENCODERS_OFFLINE=1
    python tools/vq-vs-library.py --epochs 3 15 --seeds 0 1          # train what is missing, print
    python tools/vq-vs-library.py --markdown docs/vq-vs-library.md   # also write the table

Arms: ``ours`` (the registry's ``vqvae``, whatever its recipe is) and
``library`` (the same, with the library's quantizer: EMA decay 0.99, k-means
start, dead codes below an EMA count of 2 replaced, everything else at the
library's defaults). More arms with ``--arm LABEL=BASE,FIELD=VALUE,...``:
BASE is ``ours`` or ``library``; a FIELD is a ``Config`` field
(``lr_schedule=warmup-cosine``), ``q.NAME`` an attribute set on the book's
quantizer after it is built, or ``lib.NAME`` a keyword for
``VectorQuantize``. ``--compare OURS:LIBRARY`` picks the pairs of the table.

Every finished run is appended to a results file (default: under
``$AUTOENCODERS_CACHE``) keyed by what decides it (the arm, its config, the
seed and epochs, the initial weights, the training code, the library
version), so an interrupted sweep resumes where it stopped and a code change
retrains exactly the runs it affects; training itself checkpoints, so an
interrupted run resumes too. A run with a constant learning rate is trained
once to the largest budget and measured after each requested epoch count
(the shorter runs are its prefixes); a scheduled one is trained per budget.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import inspect
import json
import sys
from pathlib import Path

import torch
from torch import nn

from autoencoders import __name__ as _pkg  # noqa: F401  (fails early without PYTHONPATH)
from autoencoders import losses
from autoencoders.atomic import atomic_open
from autoencoders.cache import load_data, source_hash
from autoencoders.config import Config
from autoencoders.experiments import get_config
from autoencoders.inference import code_grids
from autoencoders.metrics.codebook import codebook_usage
from autoencoders.models import build_model
from autoencoders.models.quantizer import Quantized
from autoencoders.models.vqvae import VQVAE
from autoencoders.settings import cache_root
from autoencoders.train import evaluate, fit

try:
    import vector_quantize_pytorch
    from vector_quantize_pytorch import VectorQuantize
    LIBRARY_VERSION = getattr(vector_quantize_pytorch, "__version__", None)
    if LIBRARY_VERSION is None:
        from importlib.metadata import version
        LIBRARY_VERSION = version("vector-quantize-pytorch")
except ImportError:
    VectorQuantize = None
    LIBRARY_VERSION = None

EXPERIMENT = "vqvae"
# The library's recommended settings named in issue 27; the rest stays at its defaults
# (among them the rotation trick for the gradient and a commitment weight of 1).
LIBRARY_SETTINGS = dict(decay=0.99, kmeans_init=True, threshold_ema_dead_code=2)
# Config fields that only the book's quantizer reads: not part of a library arm.
OURS_ONLY_FIELDS = ("codebook_update", "restart_dead", "codebook_init", "commitment")


# ------------------------------------------------------------ library adapter
class LibraryQuantizer(nn.Module):
    """``VectorQuantize`` behind the interface :class:`VQVAE` expects of its
    quantizer (``forward`` returning :class:`Quantized`, ``lookup``,
    ``update``, ``last_restarts``). The library moves its codebook itself
    (moving averages), so ``update`` is ``"ema"``: the VQ-VAE adds no
    codebook term. The commitment term is the library's own formula (mean
    squared distance between the encoder output and its detached code),
    computed per example so that ``evaluate`` can average it; the VQ-VAE
    weighs it with the library's ``commitment_weight``."""

    update = "ema"

    def __init__(self, num_codes: int, code_dim: int, **settings):
        super().__init__()
        if VectorQuantize is None:
            raise RuntimeError("vector-quantize-pytorch is not installed (see this script's docstring)")
        self.num_codes = num_codes
        self.commitment_weight = settings.pop("commitment_weight", 1.0)
        # the library's loss is not used (its commitment term is recomputed per example)
        self.vq = VectorQuantize(dim=code_dim, codebook_size=num_codes, accept_image_fmap=True,
                                 commitment_weight=0.0, **settings)
        self.register_buffer("restarts_total", torch.zeros((), dtype=torch.long))
        # a tensor beside the model, as the book's quantizer keeps it
        self.register_buffer("last_restarts", torch.zeros((), dtype=torch.long), persistent=False)
        codebook = self.vq._codebook
        replace = codebook.replace

        def counted_replace(batch_samples, batch_mask, seq_mask=None):
            self.last_restarts += batch_mask.sum()
            self.restarts_total += batch_mask.sum()
            return replace(batch_samples, batch_mask, seq_mask)
        codebook.replace = counted_replace  # count the dead codes the library replaces

    def forward(self, z_e: torch.Tensor) -> Quantized:
        self.last_restarts.zero_()
        z_q, codes, _ = self.vq(z_e)
        e_k = z_q.detach()  # the chosen code vectors (the forward value of z_q)
        return Quantized(z_q=z_q, codes=codes,
                         codebook_loss=losses.codebook_loss(z_e, e_k),
                         commitment_loss=losses.commitment_loss(z_e, e_k))

    @torch.no_grad()
    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vq.get_codes_from_indices(codes)


# ------------------------------------------------------------------- arms
@dataclasses.dataclass(frozen=True)
class Arm:
    label: str
    base: str                   # "ours" or "library"
    fields: tuple = ()          # Config overrides, (name, value) pairs
    quantizer: tuple = ()       # q.NAME overrides
    library: tuple = ()         # lib.NAME keywords

    def config(self, epochs: int, seed: int, profile: str) -> Config:
        config = get_config(EXPERIMENT, profile, epochs=epochs, seed=seed, **dict(self.fields))
        return dataclasses.replace(config, name=f"{EXPERIMENT}-{self.label}")

    def library_settings(self) -> dict:
        return {**LIBRARY_SETTINGS, **dict(self.library)}

    def describe(self, profile: str = "quick") -> str:
        """The arm's quantizer and trainer settings, in one line."""
        config = self.config(1, 0, profile)
        shown = ("batch_size", "lr", "lr_schedule", "latent_dim", "num_codes")
        if self.base == "ours":
            shown += OURS_ONLY_FIELDS
        parts = [f"{k}={getattr(config, k)}" for k in shown]
        parts += [f"q.{k}={v}" for k, v in self.quantizer]
        if self.base == "library":
            parts += [f"lib.{k}={v}" for k, v in self.library_settings().items()]
        return f"{self.base} ({', '.join(parts)})"


def _value(text: str, like=None):
    """``text`` as the type of ``like`` (a field's default), else the
    Python literal it spells, else the string."""
    if isinstance(like, bool) or text in ("True", "False"):
        if text not in ("True", "False"):
            raise ValueError(f"expected True or False, got {text!r}")
        return text == "True"
    if like is not None and not isinstance(like, str):
        return type(like)(ast.literal_eval(text))
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_arm(spec: str) -> Arm:
    """``LABEL=BASE,FIELD=VALUE,...`` (see the module's docstring)."""
    label, _, rest = spec.partition("=")
    base, *settings = rest.split(",")
    if not label or base not in ("ours", "library"):
        raise ValueError(f"--arm {spec!r}: expected LABEL=ours|library[,FIELD=VALUE...]")
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    fields, quantizer, library = [], [], []
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--arm {spec!r}: {item!r} is not FIELD=VALUE")
        if key.startswith("q."):
            quantizer.append((key[2:], _value(text)))
        elif key.startswith("lib."):
            library.append((key[4:], _value(text)))
        elif key in defaults:
            fields.append((key, _value(text, defaults[key])))
        else:
            raise ValueError(f"--arm {spec!r}: {key!r} is not a Config field, q.NAME or lib.NAME")
    return Arm(label, base, tuple(fields), tuple(quantizer), tuple(library))


DEFAULT_ARMS = (Arm("ours", "ours"), Arm("library", "library"))


def build(arm: Arm, config: Config, image_shape, train_images: int) -> VQVAE:
    """The untrained VQ-VAE of ``arm``: the registry's model (seeded), with
    the library's quantizer swapped in for a library arm. The encoder and
    decoder are drawn before the swap, so both arms start from the same
    weights."""
    torch.manual_seed(config.seed)
    model = build_model(config, image_shape, train_images)
    for name, value in arm.quantizer:
        if not hasattr(model.quantizer, name):
            raise ValueError(f"arm {arm.label!r}: the quantizer has no attribute {name!r}")
        setattr(model.quantizer, name, value)
    if arm.base == "library":
        settings = arm.library_settings()
        model.quantizer = LibraryQuantizer(config.num_codes, config.latent_dim, **settings)
        model.commitment = model.quantizer.commitment_weight
    return model


# --------------------------------------------------------------- run keys
def _code_digest(*paths: Path) -> str:
    from autoencoders.cache import _code_only
    digest = hashlib.sha256()
    for path in paths:
        digest.update(_code_only(path.read_text()).encode())
    return digest.hexdigest()


def run_key(arm: Arm, config: Config, model: VQVAE, measured: tuple[int, ...]) -> str:
    """What decides a run's numbers. For the book's arms: the config and the
    whole training code. For a library arm: the config without the book's
    quantizer fields, the library's settings and version, and the code that
    the library arm runs (trainer, data, losses, the VQ-VAE's own methods,
    the initial encoder and decoder weights): editing the book's quantizer
    does not retrain the library."""
    fields = config.to_dict()
    fields.pop("name")
    package = Path(inspect.getfile(VQVAE)).parents[1]
    if arm.base == "ours":
        code = source_hash()
        extra = {"quantizer": dict(arm.quantizer)}
    else:
        for name in OURS_ONLY_FIELDS:
            fields.pop(name)
        weights = hashlib.sha256()
        for name, t in model.state_dict().items():
            if not name.startswith("quantizer."):
                weights.update(name.encode() + t.detach().cpu().numpy().tobytes())
        methods = "".join(inspect.getsource(getattr(VQVAE, m))
                          for m in ("encode", "decode", "forward", "loss_terms"))
        code = _code_digest(*(package / f for f in ("train.py", "data.py", "losses.py",
                                                    "inference.py"))) \
            + hashlib.sha256(methods.encode()).hexdigest() + weights.hexdigest()
        extra = {"library": arm.library_settings(), "version": LIBRARY_VERSION}
    blob = json.dumps({"base": arm.base, "config": fields, "measured": measured,
                       "code": code, "torch": torch.__version__, **extra},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------- running
def measure(model: VQVAE, test) -> dict:
    """Test MSE (``train.evaluate``) and codebook use on the whole test set."""
    terms = evaluate(model, test.images, test.labels, seed=0)
    usage = codebook_usage(code_grids(model, test.images), model.num_codes)
    return {"mse": terms["mse"], "commitment": terms["commitment"],
            "perplexity": usage["perplexity"], "codes_used": model.num_codes - usage["dead_codes"]}


def train_arm(arm: Arm, budgets: list[int], seed: int, profile: str, results: dict,
              folder: Path) -> list[dict]:
    """Train ``arm`` with ``seed`` for each budget in ``budgets`` not yet in
    ``results``; one run to the largest budget when its learning rate is
    constant. Returns the new records."""
    base = arm.config(max(budgets), seed, profile)
    groups = [budgets] if base.lr_schedule == "constant" else [[b] for b in budgets]
    new = []
    for group in groups:
        config = arm.config(max(group), seed, profile)
        train, test = load_data(config)
        model = build(arm, config, train.shape, len(train))
        key = run_key(arm, config, model, tuple(group))
        todo = [b for b in group if f"{key}/{b}" not in results]
        if not todo:
            continue
        print(f"[{arm.label} seed {seed}] training {config.epochs} epochs, measured after "
              f"{', '.join(map(str, group))}: {arm.describe(profile)}", file=sys.stderr)
        wanted = set(group)

        def report(epoch: int) -> dict:
            return {"measured": measure(model, test)} if epoch in wanted else {}
        history = fit(model, train.images, train.labels, epochs=config.epochs,
                      batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                      checkpoint=folder / f"checkpoint-{key}.pt", desc=f"{arm.label} s{seed}",
                      lr_schedule=config.lr_schedule, on_epoch=report)
        restarts = int(getattr(model.quantizer, "restarts_total", torch.tensor(0)))
        for b in group:
            record = {"key": f"{key}/{b}", "arm": arm.label, "base": arm.base,
                      "describe": arm.describe(profile), "epochs": b, "seed": seed,
                      "profile": profile, "train_images": len(train), "test_images": len(test),
                      "batch_size": config.batch_size, "lr": config.lr,
                      "lr_schedule": config.lr_schedule,
                      "library_version": LIBRARY_VERSION if arm.base == "library" else None,
                      **history.epochs[b - 1]["measured"]}
            if b == config.epochs:
                record["restarts"] = restarts
            new.append(record)
            results[record["key"]] = record
        (folder / f"checkpoint-{key}.pt").unlink(missing_ok=True)
    return new


def load_results(path: Path) -> dict:
    if not path.is_file():
        return {}
    return {r["key"]: r for r in json.loads(path.read_text())}


def save_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(sorted(results.values(), key=lambda r: (r["arm"], r["epochs"], r["seed"])),
                  f, indent=1)


# ------------------------------------------------------------------- table
def current(results: dict, arm: Arm, budgets, seeds, profile) -> dict:
    """The records of ``arm`` for the current code, by (epochs, seed)."""
    found = {}
    for seed in seeds:
        base = arm.config(max(budgets), seed, profile)
        groups = [budgets] if base.lr_schedule == "constant" else [[b] for b in budgets]
        for group in groups:
            config = arm.config(max(group), seed, profile)
            if arm.base == "library" and VectorQuantize is None:
                # without the library the key cannot be rebuilt: take the latest record
                for r in results.values():
                    if r["arm"] == arm.label and r["seed"] == seed and r["epochs"] in group \
                            and r["profile"] == profile:
                        found[(r["epochs"], seed)] = r
                continue
            train, _ = load_data(config)
            key = run_key(arm, config, build(arm, config, train.shape, len(train)), tuple(group))
            for b in group:
                if f"{key}/{b}" in results:
                    found[(b, seed)] = results[f"{key}/{b}"]
    return found


def table(pairs, results, arms, budgets, seeds, profile) -> str:
    lines = []
    for ours_label, lib_label in pairs:
        ours = current(results, arms[ours_label], budgets, seeds, profile)
        lib = current(results, arms[lib_label], budgets, seeds, profile)
        lines += [f"**{ours_label}**: {arms[ours_label].describe(profile)}  ",
                  f"**{lib_label}**: {arms[lib_label].describe(profile)}", "",
                  f"| epochs | seed | {lib_label} test MSE | {ours_label} test MSE | ratio "
                  f"| {lib_label} perplexity | {ours_label} perplexity "
                  f"| codes used ({lib_label} / {ours_label}) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for b in budgets:
            rows = [(s, lib.get((b, s)), ours.get((b, s))) for s in seeds]
            for s, l, o in rows:
                if l is None and o is None:
                    continue
                fmt = lambda r, k, f: format(r[k], f) if r else "not run"  # noqa: E731
                ratio = f"{o['mse'] / l['mse']:.2f}" if l and o else "–"
                lines.append(f"| {b} | {s} | {fmt(l, 'mse', '.5f')} | {fmt(o, 'mse', '.5f')} "
                             f"| {ratio} | {fmt(l, 'perplexity', '.1f')} "
                             f"| {fmt(o, 'perplexity', '.1f')} "
                             f"| {fmt(l, 'codes_used', 'd')} / {fmt(o, 'codes_used', 'd')} |")
            both = [(l, o) for _, l, o in rows if l and o]
            if len(both) > 1:
                lm = sum(l["mse"] for l, _ in both) / len(both)
                om = sum(o["mse"] for _, o in both) / len(both)
                lp = sum(l["perplexity"] for l, _ in both) / len(both)
                op = sum(o["perplexity"] for _, o in both) / len(both)
                worst = max(o["mse"] / l["mse"] for l, o in both)
                lines.append(f"| {b} | mean of {len(both)} | {lm:.5f} | {om:.5f} "
                             f"| {om / lm:.2f} (worst seed {worst:.2f}) | {lp:.1f} | {op:.1f} | |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, nargs="+", default=[3, 15], help="budgets (epochs)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds")
    p.add_argument("--profile", default="quick", help="profile of the training images (quick)")
    p.add_argument("--arm", action="append", default=[], metavar="LABEL=BASE,FIELD=VALUE,...",
                   help="an extra arm (see the docstring); repeatable")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="train only these arms")
    p.add_argument("--compare", nargs="+", metavar="OURS:LIBRARY", default=["ours:library"],
                   help="pairs of arms for the table (default ours:library)")
    p.add_argument("--no-train", action="store_true", help="print the table from saved results")
    p.add_argument("--results", type=Path, help="results file (default: under $AUTOENCODERS_CACHE)")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    if any(e < 1 for e in args.epochs):
        p.error("--epochs: every budget must be a positive number of epochs")
    arms = {a.label: a for a in DEFAULT_ARMS}
    for spec in args.arm:
        try:
            arm = parse_arm(spec)
        except ValueError as err:
            p.error(str(err))
        arms[arm.label] = arm
    pairs = [tuple(c.split(":", 1)) for c in args.compare]
    for pair in pairs:
        if len(pair) != 2 or not all(label in arms for label in pair):
            p.error(f"--compare {':'.join(pair)}: expected OURS:LIBRARY, two of {sorted(arms)}")
    budgets, seeds = sorted(set(args.epochs)), list(dict.fromkeys(args.seeds))
    folder = cache_root() / "vq-vs-library"
    folder.mkdir(parents=True, exist_ok=True)
    path = args.results or folder / "results.json"
    results = load_results(path)
    if VectorQuantize is None:
        print("vector-quantize-pytorch is not installed: the library arms are skipped "
              "(install it in a throwaway venv, see the docstring)", file=sys.stderr)
    else:
        print(f"vector-quantize-pytorch {LIBRARY_VERSION}", file=sys.stderr)
    if not args.no_train:
        for label in args.only or list(arms):
            if label not in arms:
                p.error(f"--only {label}: no such arm; known: {sorted(arms)}")
            arm = arms[label]
            if arm.base == "library" and VectorQuantize is None:
                print(f"[{label}] skipped: no library", file=sys.stderr)
                continue
            for seed in seeds:
                train_arm(arm, budgets, seed, args.profile, results, folder)
                save_results(path, results)  # after every run: an interruption keeps it
    text = (f"Profile `{args.profile}`, experiment `{EXPERIMENT}`, the package's trainer; "
            f"test MSE and perplexity on the whole test set. vector-quantize-pytorch "
            f"{LIBRARY_VERSION or '(not installed here; saved results)'}, torch "
            f"{torch.__version__}.\n\n" + table(pairs, results, arms, budgets, seeds, args.profile))
    print(text)
    if args.markdown:
        header = ("# The book's VQ-VAE against vector-quantize-pytorch\n\n"
                  "Written by `tools/vq-vs-library.py "
                  + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
                  + "`; do not edit by hand.\n\n")
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(header + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
