"""The results overview: every chapter's models and their headline numbers,
read from the artifact cache. It never trains: it lists what the chapters of
this build trained (the page is read after every chapter, see
``book/_ext/read_order.py``)."""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

from . import cache, data, experiments
from .config import PROFILES, current_profile
from .metrics.scores import psnr

# test-set entries worth a column, in this order, with their display names
HEADLINE = (("mse", "MSE"), ("psnr", "PSNR (dB)"), ("accuracy", "accuracy"),
            ("loss", "objective"), ("kl", "KL (nats)"), ("bits_per_dim", "bits/dim"),
            ("perplexity", "codebook perplexity"))


def chapters_in_toc(toc: Path) -> set[str]:
    """The chapter names (files under book/) that the book's ``_toc.yml`` lists."""
    return set(re.findall(r"file:\s*book/(\w+)\s*$", toc.read_text(), flags=re.M))


def overview_rows(profile: str | None = None, chapters: set[str] | None = None) -> list[dict]:
    """One row per experiment that a chapter shows (only the ``chapters``
    given, if any) and that is in the cache, in chapter order. A damaged
    entry gets a row too, with ``damaged`` saying what is wrong and no
    numbers (it is retrained the next time a chapter asks for it); every
    other row has ``damaged`` None."""
    rows = []
    for name, chapter in experiments.CHAPTERS.items():
        if chapters is not None and chapter not in chapters:
            continue
        config = experiments.get_config(name, profile)
        try:
            run = cache.find_cached(config, report_damage=True)
        except cache.DamagedEntry as err:
            rows.append({"experiment": name, "chapter": chapter, "model": config.model,
                         "profile": config.profile, "damaged": err.why, "test": {}})
            continue
        except data.DataUnavailableError:
            continue  # no data here, so no key: nothing this build trained
        if run is None:
            continue
        m = run.metrics
        test = dict(m["test"])
        if "mse" in test and "psnr" not in test:
            test["psnr"] = psnr(test["mse"])
        rows.append({
            "experiment": name, "chapter": chapter, "model": run.config.model,
            "data": m["data"], "profile": run.config.profile, "device": m["device"],
            "epochs": run.config.epochs, "train_seconds": m["train_seconds"],
            "images_per_second": m["train_images_per_second"],
            "parameters": m["parameters"], "test": test, "damaged": None,
        })
    return rows


def trained_count(rows: list[dict]) -> int:
    """How many of ``rows`` are models read from the cache (not damaged)."""
    return sum(not r.get("damaged") for r in rows)


# what transforms.py writes in front of the source it derived an input from:
# "code grids of vqvae on ...", "reconstructions by vae-mnist of ..."
_DERIVED = re.compile(r"(code grids of \S+|\w[\w ]*? by \S+) (?:on|of) ")


def data_line(rows: list[dict]) -> str:
    """The data the listed models were trained on, each source once, then
    the models that train on inputs derived from it (a VQ-VAE's code
    grids, a VAE's reconstructions) and what those inputs are."""
    sources, derived = set(), []
    for r in rows:
        if r.get("damaged"):
            continue
        sources.add(_DERIVED.sub("", r["data"]))
        kinds = sorted({m[1].strip() for m in _DERIVED.finditer(r["data"])})
        if kinds:
            derived.append(f"{r['experiment']} on {' and '.join(kinds)}")
    line = "; ".join(sorted(sources))
    if derived:
        line += (". Trained on inputs made from those images, one per image: "
                 + "; ".join(derived))
    return line


def and_list(parts: list[str]) -> str:
    """``parts`` joined as in a sentence: "a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def build_data_line(profile: str | None = None, chapters: set[str] | None = None) -> str:
    """Every data set that the registered experiments of ``chapters``
    (default: all) train and test on in ``profile`` (default: the current
    one), each once, described as those models get it: :func:`data.describe`
    of the profile's pick of training images and of test images. Known
    before any model trains: it reads the data, never a model."""
    picks: dict[tuple, None] = {}
    for name, chapter in experiments.CHAPTERS.items():
        if chapters is not None and chapter not in chapters:
            continue
        config = experiments.get_config(name, profile)
        picks.setdefault((config.dataset, config.train_size, config.test_size), None)
    if not picks:
        return "no data (no chapter of this copy trains a model)"
    return and_list([data.describe(data.load(name, "train").subset(n_train),
                                   data.load(name, "test").subset(n_test))
                     for name, n_train, n_test in picks])


def long_budget_note(rows: list[dict], profile: str | None = None) -> str:
    """A sentence on the epochs of the listed ablation models whose names end
    in "-long": the ablations' long budget in ``profile`` (default: the
    current one), and which of them train for another number of epochs
    (named with their epochs), read from the rows' configs. Plain text, with
    no double quotes (glued text shows a string's repr without its quotes)."""
    profile = profile or current_profile()
    budget = experiments.ablation_epochs(profile, long=True)
    long_rows = [r for r in rows if not r.get("damaged") and r["experiment"].endswith("-long")]
    note = (f"The suffix “-long” names the ablations' long budget, {budget} "
            f"epoch{'' if budget == 1 else 's'} in this profile")
    if not long_rows:
        return note + "."
    other: dict[int, list[str]] = {}
    for r in long_rows:
        if r["epochs"] != budget:
            other.setdefault(r["epochs"], []).append(r["experiment"])
    if not other:
        return note + ", and every listed “-long” model trained for it."
    base = PROFILES[profile].epochs("mnist")
    parts = [f"{and_list(names)} trained for {n} epoch{'' if n == 1 else 's'}"
             + (" (the profile's base budget for MNIST)" if n == base else "")
             for n, names in sorted(other.items())]
    return (note + f"; despite the suffix, {'; '.join(parts)}, as the epochs column shows.")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def overview_html(rows: list[dict]) -> str:
    """The rows as an HTML table; each experiment links to its chapter."""
    present = [(k, label) for k, label in HEADLINE if any(k in r["test"] for r in rows)]
    head = ["experiment", "model", *[label for _, label in present], "epochs",
            "train time (s)", "images/s", "parameters", "device", "profile"]
    out = ['<div class="results-overview-wrapper" style="overflow-x: auto">',
           '<table class="table results-overview">', "<thead><tr>",
           *[f"<th>{html.escape(h)}</th>" for h in head], "</tr></thead><tbody>"]
    for r in rows:
        if r.get("damaged"):
            out += ["<tr>", f'<td>{_link(r)}</td>', f"<td>{html.escape(r['model'])}</td>",
                    f'<td colspan="{len(head) - 2}"><strong>damaged cache entry</strong>: '
                    f'{html.escape(r["damaged"])}; it is retrained the next time a chapter '
                    f'asks for it</td>', "</tr>"]
            continue
        cells = [_link(r), r["model"],
                 *[_fmt(r["test"].get(k)) for k, _ in present], _fmt(r["epochs"]),
                 _fmt(r["train_seconds"]), _fmt(r["images_per_second"]),
                 _fmt(r["parameters"]), r["device"], r["profile"]]
        out += ["<tr>", *[f"<td>{c}</td>" for c in cells], "</tr>"]
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _link(row: dict) -> str:
    return (f'<a href="{row["chapter"]}.html" style="white-space: nowrap">'
            f'{html.escape(row["experiment"])}</a>')
