"""Live figures: trained decoders exported for the book's web pages.

A live figure runs a model's decoder in the reader's browser, so the page can
decode any point the reader picks. Two kinds exist:

* :func:`latent_explorer`: 2-number codes; the test digits' codes as a
  scatter, and the image the decoder makes at the point under the pointer;
* :func:`latent_traversal`: one test digit's code, with a slider for each of
  a few latent units, and the image decoded from the code the sliders set.

Each writes one small data file per model, ``<experiment>.js``, into the
folder named by ``AUTOENCODERS_LIVE_FIGURES`` (the book's build sets it to
``<html>/_static/live``; see ``book/_ext/live_figures.py``): the decoder's
layers as a list of operations, its weights as little-endian float32 in
base64, and the figure's data (codes, labels, test digits). Data files are
scripts, not JSON, so that a page opened from ``file://`` can load them. The
forward pass that reads them is ``book/_static/live_figures.js``. Without the
variable nothing is written (a notebook run outside the book).

Each also returns a :class:`LiveFigure`: the page's markup (the widget's
placeholder around a static fallback picture, which is what a reader sees
without JavaScript, in print and in a notebook) together with that picture
as PNG, its size on the page, and the seconds the export took.

The exported layer list is checked before it is written: rebuilt as PyTorch
layers from the exported numbers alone, it must reproduce the model's own
``decode`` (:class:`ExportError` otherwise).
"""
from __future__ import annotations

import base64
import copy
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import plots
from .atomic import atomic_open
from .cache import Run
from .inference import apply_in_batches
from .settings import LIVE_FIGURES_ENV, live_figures_folder

__all__ = ["ASSETS_ENV", "ExportError", "LiveFigure", "assets_folder", "decoder_payload",
           "latent_explorer", "latent_traversal", "rebuild_decoder"]

ASSETS_ENV = LIVE_FIGURES_ENV  # folder the data files are written to
FORMAT = 1                                # version of the data files' layout
SCRIPT = "live_figures.js"                # the forward pass, in book/_static/
TOLERANCE = 1e-5                          # rebuilt decoder vs model.decode, grey levels


class ExportError(RuntimeError):
    """A decoder that the browser's forward pass cannot reproduce."""


def assets_folder() -> Path | None:
    """Where data files go (``AUTOENCODERS_LIVE_FIGURES``), or ``None``."""
    return live_figures_folder()


# ---------------------------------------------------------------- the decoder
class _Tensors:
    """Tensors packed one after the other into one float32 buffer."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, t: torch.Tensor | None) -> dict | None:
        if t is None:
            return None
        array = t.detach().cpu().to(torch.float32).contiguous().numpy()
        ref = {"offset": self.size, "shape": list(array.shape)}
        self.parts.append(array.ravel())
        self.size += array.size
        return ref

    def base64(self) -> str:
        return _b64(np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32))


def _b64(array: np.ndarray) -> str:
    """``array`` as base64: float arrays as little-endian float32, the rest as uint8."""
    dtype = "<f4" if np.issubdtype(array.dtype, np.floating) else "u1"
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()


def _layer(module: nn.Module, tensors: _Tensors) -> dict:
    """One decoder layer as an operation the browser knows."""
    if isinstance(module, nn.Linear):
        return {"op": "linear", "in": module.in_features, "out": module.out_features,
                "weight": tensors.add(module.weight), "bias": tensors.add(module.bias)}
    if isinstance(module, nn.ReLU):
        return {"op": "relu"}
    if isinstance(module, nn.Sigmoid):
        return {"op": "sigmoid"}
    if isinstance(module, nn.Unflatten) and module.dim in (1, -1):
        return {"op": "unflatten", "shape": list(module.unflattened_size)}
    if isinstance(module, nn.ConvTranspose2d) and module.groups == 1 \
            and tuple(module.dilation) == (1, 1) and module.padding_mode == "zeros":
        return {"op": "conv_transpose", "in": module.in_channels, "out": module.out_channels,
                "kernel": list(module.kernel_size), "stride": list(module.stride),
                "padding": list(module.padding), "output_padding": list(module.output_padding),
                "weight": tensors.add(module.weight), "bias": tensors.add(module.bias)}
    raise ExportError(f"decoder layer {module!r} has no browser version; live figures know "
                      "Linear, ReLU, Sigmoid, Unflatten and ConvTranspose2d (groups 1, dilation 1)")


def _decoder_modules(model: nn.Module) -> list[nn.Module]:
    decoder = getattr(model, "decoder", None)
    body = getattr(decoder, "net", decoder)
    if not isinstance(body, nn.Sequential):
        raise ExportError(f"{type(model).__name__}: expected a decoder whose layers are an "
                          f"nn.Sequential (decoder.net), got {type(decoder).__name__}")
    return list(body)


def rebuild_decoder(payload: dict) -> nn.Sequential:
    """PyTorch layers made from an exported ``payload`` alone (its layer list
    and base64 weights): what the browser computes, in PyTorch's own ops."""
    flat = torch.from_numpy(np.frombuffer(base64.b64decode(payload["tensors"]), "<f4").copy())

    def tensor(ref):
        n = int(np.prod(ref["shape"]))
        return nn.Parameter(flat[ref["offset"]:ref["offset"] + n].view(ref["shape"]))

    layers = []
    for spec in payload["layers"]:
        op = spec["op"]
        if op == "linear":
            layer = nn.Linear(spec["in"], spec["out"], bias=spec["bias"] is not None)
        elif op == "conv_transpose":
            layer = nn.ConvTranspose2d(spec["in"], spec["out"], spec["kernel"], spec["stride"],
                                       spec["padding"], spec["output_padding"],
                                       bias=spec["bias"] is not None)
        else:
            layers.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[op]() if op != "unflatten"
                          else nn.Unflatten(1, spec["shape"]))
            continue
        layer.weight = tensor(spec["weight"])
        if spec["bias"] is not None:
            layer.bias = tensor(spec["bias"])
        layers.append(layer)
    return nn.Sequential(*layers).eval()


def _largest_gap(rebuilt: nn.Module, model: nn.Module, z: torch.Tensor) -> float:
    """The largest difference between the two decoders' outputs at ``z``
    (infinite when they cannot be computed or differ in shape)."""
    expected = apply_in_batches(model, model.decode, z)
    try:
        with torch.inference_mode():
            got = rebuilt(z)
    except RuntimeError:
        return math.inf
    return float((got - expected).abs().max()) if got.shape == expected.shape else math.inf


def decoder_payload(model: nn.Module, latent_dim: int, probes: torch.Tensor | None = None) -> dict:
    """``model``'s decoder (``model.decode``: ``model.decoder``'s layers, then
    the output activation, found by checking which one reproduces
    ``model.decode``) as a layer list with packed weights. ``probes``: codes
    at which the exported decoder must match (default: 64 prior draws, at
    three times the prior's scale)."""
    model = copy.deepcopy(model).cpu().eval()  # compared on the CPU, as the page computes
    tensors = _Tensors()
    layers = [_layer(m, tensors) for m in _decoder_modules(model)]
    payload = {"format": FORMAT, "latent_dim": latent_dim, "layers": layers,
               "tensors": tensors.base64()}
    if probes is None:
        probes = 3 * torch.randn(64, latent_dim, generator=torch.Generator().manual_seed(0))
    gaps = {}
    for activation in ([{"op": "sigmoid"}], []):  # the model's output activation, if any
        trial = {**payload, "layers": layers + activation}
        gaps[activation[0]["op"] if activation else "none"] = gap = \
            _largest_gap(rebuild_decoder(trial), model, probes)
        if gap <= TOLERANCE:
            return trial
    raise ExportError(f"{type(model).__name__}: the exported decoder does not reproduce "
                      f"model.decode (largest difference by output activation: {gaps})")


# --------------------------------------------------------------- the figures
@dataclass
class LiveFigure:
    """A live figure's markup for the page and its static fallback picture.

    Displayed in a notebook or pasted into a page (``glue``), it shows as
    HTML: the fallback picture, and a placeholder that the page's script
    fills with the live widget. Where HTML is not shown, it is the PNG."""

    html: str = field(repr=False)
    png: bytes = field(repr=False)
    files: dict[str, int]      # data file -> bytes (what was, or would be, written)
    written: bool              # whether the files were written (AUTOENCODERS_LIVE_FIGURES set)
    seconds: float             # the export's time: decoding, drawing, packing, writing

    @property
    def page_bytes(self) -> int:
        """What the figure adds to its page: the data files and the markup
        (with its inline fallback picture). The script and the style sheet
        in book/_static/, shared by every page, come on top."""
        return sum(self.files.values()) + len(self.html.encode())

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html, "image/png": base64.b64encode(self.png).decode()}


def _write(name: str, payload: dict) -> tuple[int, bool]:
    """Write ``payload`` as the data file ``<name>.js``; (bytes, written)."""
    text = (f"/* {name}: decoder weights and data for the book's live figures "
            f"(autoencoders.export) */\nLiveFigures.register({json.dumps(name)}, "
            f"{json.dumps(payload, separators=(',', ':'))});\n").encode()
    folder = assets_folder()
    if folder is not None:
        with atomic_open(folder / f"{name}.js") as f:
            f.write(text)
    return len(text), folder is not None


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _markup(kind: str, panels: list[dict], png: bytes, alt: str) -> str:
    """The live figure's HTML: the fallback picture, then the placeholder
    (hidden until the script has loaded every panel's data)."""
    inner = "".join(
        "<div class=\"live-panel\" " + " ".join(f'data-{k}="{html.escape(str(v))}"'
                                               for k, v in panel.items()) + "></div>"
        for panel in panels)
    return (f'<div class="live-figure" data-live="{kind}">'
            f'<img class="live-fallback" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f'<div class="live-widget" hidden>{inner}</div></div>')


def _tab10() -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return [to_hex(colormaps["tab10"](i)) for i in range(10)]  # the colours of plots.latent_scatter


def _window(points: np.ndarray, margin: float = 1.5) -> list[float]:
    """A square window [x0, x1, y0, y1] around the middle 98% of ``points``,
    ``margin`` times as wide, so a reader can leave the cloud."""
    low, high = np.percentile(points, [1, 99], axis=0)
    centre, half = (low + high) / 2, margin * float((high - low).max()) / 2
    return [float(centre[0] - half), float(centre[0] + half),
            float(centre[1] - half), float(centre[1] + half)]


def _lattice(window: list[float], n: int) -> torch.Tensor:
    """``n`` x ``n`` points at the centres of the window's cells, row by row
    from the top (largest second coordinate) down."""
    x0, x1, y0, y1 = window
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y1 - (np.arange(n) + 0.5) * (y1 - y0) / n
    return torch.tensor([[x, y] for y in ys for x in xs], dtype=torch.float32)


def latent_explorer(runs: dict[str, Run], codes: dict[str, np.ndarray], labels,
                    *, points: int = 4000, lattice: int = 12, alt: str = "") -> LiveFigure:
    """The live figure of 2-number latent spaces: for each model (title ->
    run, ``codes``: title -> the test digits' (N, 2) codes, ``labels``
    their classes), a scatter of ``points`` of the codes and, below it, the
    decoder's output at the pointer. The fallback decodes a ``lattice`` x
    ``lattice`` grid over the same window, one panel per model titled
    "<title>: decoder output"."""
    tick = time.perf_counter()
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    pick = np.sort(np.random.default_rng(0).permutation(len(labels))[:points])
    panels, grids, files, written = [], {}, {}, False
    for title, run in runs.items():
        z = np.asarray(codes[title], dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != 2 or run.config.latent_dim != 2:
            raise ValueError(f"latent_explorer: {title!r} needs 2-number codes, got shape "
                             f"{z.shape} and latent_dim {run.config.latent_dim}")
        window = _window(z)
        grid = _lattice(window, lattice)
        payload = decoder_payload(run.model, 2, probes=torch.cat([grid, torch.from_numpy(z[:64])]))
        payload.update(kind="explorer", title=title, window=window, colors=_tab10(),
                       points=_b64(z[pick]), labels=_b64(labels[pick].astype(np.uint8)))
        files[f"{run.config.name}.js"], written = _write(run.config.name, payload)
        # the fallback shows decoded images, not codes: its titles say so
        grids[f"{title}: decoder output"] = (apply_in_batches(run.model, run.model.decode, grid),
                                             window)
        panels.append({"model": run.config.name, "title": title})
    png = _png(plots.decoded_lattice(grids, lattice))
    alt = alt or (f"{len(runs)} panels ({', '.join(runs)}), each a {lattice} by {lattice} grid "
                  "of the images the model's decoder makes at evenly spaced points of its "
                  "two-number latent space, with the points' coordinates on the axes.")
    return LiveFigure(_markup("explorer", panels, png, alt), png, files, written,
                      time.perf_counter() - tick)


def latent_traversal(run: Run, digits: torch.Tensor, digit_labels, means: torch.Tensor,
                     units, spreads, *, span: float = 3.0, steps: int = 9,
                     alt: str = "") -> LiveFigure:
    """The live figure of a latent traversal: a few test ``digits`` (N, 1, H, W)
    with their classes and posterior ``means`` (N, k); a slider for each of
    ``units`` (their ``spreads``: the spread of the posterior means), over
    ``span`` prior standard deviations either side of 0. The fallback
    decodes the first digit's code with each unit in turn set to ``steps``
    values from -span to span."""
    tick = time.perf_counter()
    means, units = torch.as_tensor(means, dtype=torch.float32), [int(u) for u in units]
    walks = {}
    for u in units:
        walks[u] = means[0].repeat(steps, 1)
        walks[u][:, u] = torch.linspace(-span, span, steps)
    rows = {f"unit {u}": apply_in_batches(run.model, run.model.decode, z) for u, z in walks.items()}
    payload = decoder_payload(run.model, means.shape[1],
                              probes=torch.cat([means, *walks.values()]))
    images = (torch.as_tensor(digits, dtype=torch.float32) * 255).round().to(torch.uint8)
    payload.update(kind="traversal", units=units, spreads=[float(s) for s in spreads],
                   span=span, means=_b64(means.numpy()), digits=_b64(images.numpy()),
                   digit_labels=[int(c) for c in digit_labels])
    size, written = _write(run.config.name, payload)
    png = _png(plots.image_grid(rows, title=f"code of a test {int(digit_labels[0])}, one unit "
                                f"set from {-span:g} to {span:g} per row"))
    alt = alt or (f"{len(units)} rows of {steps} decoded images: the code of a test "
                  f"{int(digit_labels[0])} with one latent unit per row (units "
                  f"{', '.join(map(str, units))}) set from {-span:g} to {span:g}, left to right.")
    markup = _markup("traversal", [{"model": run.config.name}], png, alt)
    return LiveFigure(markup, png, {f"{run.config.name}.js": size}, written,
                      time.perf_counter() - tick)
