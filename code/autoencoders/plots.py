"""Figure helpers: image grids, training curves, principal angles.

Every helper returns a :class:`matplotlib.figure.Figure` with an opaque white
background, so a figure stays legible on the book's dark theme as well as
its light one (a transparent PNG would put black axis labels on a dark page).
Chapters ``glue`` the figure and give it a caption and alt text.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.rcParams.update({
    "figure.facecolor": "white", "savefig.facecolor": "white",
    "savefig.transparent": False, "axes.facecolor": "white",
})

import matplotlib.pyplot as plt  # noqa: E402  (after the rcParams above)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

# one colour per model family, reused across chapters (colour-blind safe)
COLORS = {"linear": "#0072B2", "conv": "#D55E00", "transformer": "#009E73",
          "pca": "#555555", "random": "#CC79A7"}
COLORS["convolutional"] = COLORS["conv"]


def new_figure(width: float, height: float, **subplots) -> tuple[Figure, object]:
    """``plt.subplots`` with the opaque white background every figure needs."""
    fig, axes = plt.subplots(figsize=(width, height), facecolor="white",
                             **subplots)
    fig.patch.set_alpha(1.0)
    return fig, axes


def image_grid(rows: Mapping[str, torch.Tensor], *, scale: float = 0.6,
               title: str | None = None) -> Figure:
    """Rows of images, one labelled row per entry of ``rows``.

    Each value is a batch ``(N, C, H, W)`` of floats in [0, 1] (uint8 images
    are scaled); every row should hold the same images in the same order, e.g.
    the originals and then each model's reconstruction of them, so that a
    column compares one digit across models. Rows are laid out with
    ``torchvision.utils.make_grid``; thin grey lines separate the images.
    """
    labels = list(rows)
    batches = [_as_float(rows[k]) for k in labels]
    n, (c, h, w) = batches[0].shape[0], batches[0].shape[1:]
    fig, axes = new_figure(scale * n * w / 28 + 1.6, scale * len(labels) * h / 28 + 0.3,
                           nrows=len(labels), squeeze=False)
    for ax, label, batch in zip(axes[:, 0], labels, batches):
        grid = make_grid(batch.clamp(0, 1), nrow=len(batch), padding=1, pad_value=0.5)
        image = grid.permute(1, 2, 0).numpy()
        ax.imshow(image[..., 0] if c == 1 else image, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=11)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout(h_pad=0.3)
    return fig


def curves(series: Mapping[str, Sequence[float]], *, xlabel: str, ylabel: str,
           logy: bool = False, colors: Mapping[str, str] | None = None,
           reference: Mapping[str, float] | None = None) -> Figure:
    """Line plots, one per entry of ``series`` (x = 1, 2, ...), with optional
    horizontal dashed ``reference`` lines (label -> value)."""
    colors = {**COLORS, **(colors or {})}
    fig, ax = new_figure(6.4, 3.6)
    for label, ys in series.items():
        xs = np.arange(1, len(ys) + 1)
        ax.plot(xs, ys, marker="o", markersize=3, label=label,
                color=colors.get(label.split()[0].lower()))
    for label, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color=COLORS["pca"], label=label)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def history_curves(histories: Mapping[str, Sequence[Mapping[str, float]]],
                   key: str = "mse", **kwargs) -> Figure:
    """Per-epoch averages of ``key`` from several training histories (the
    ``metrics["history"]`` of a run), one curve per entry."""
    return curves({label: [epoch[key] for epoch in history]
                   for label, history in histories.items()}, xlabel="epoch", **kwargs)


def principal_angles_figure(angles: np.ndarray, random_angles: np.ndarray,
                            tolerance: float | None = None) -> Figure:
    """Principal angles (degrees) per dimension on a log axis: the learned
    subspace against PCA's, next to a random subspace of the same size (what
    "unrelated" looks like), and an optional tolerance line."""
    fig, ax = new_figure(6.4, 3.6)
    dims = np.arange(1, len(angles) + 1)
    floor = 1e-3  # an angle of exactly 0 cannot sit on a log axis
    ax.plot(dims, np.maximum(angles, floor), "o-", color=COLORS["linear"],
            label="linear AE decoder vs PCA")
    ax.plot(dims, np.maximum(random_angles, floor), "s--", color=COLORS["random"],
            label="random subspace vs PCA")
    if tolerance is not None:
        ax.axhline(tolerance, color=COLORS["pca"], linestyle=":", linewidth=1.2,
                   label=f"tolerance ({tolerance:g}°)")
    ax.set_yscale("log")
    ax.set_ylim(min(floor * 5, ax.get_ylim()[0]), 100)
    ax.set_xticks(dims)
    ax.set_xlabel("principal angle number (smallest first)")
    ax.set_ylabel("angle (degrees, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False, loc="center right")
    fig.tight_layout()
    return fig


def _as_float(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().cpu()
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
