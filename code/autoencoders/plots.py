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


# ------------------------------------------------------------------ VQ-VAE
def codebook_usage_figure(steps: Mapping[str, Sequence[Mapping[str, float]]],
                          counts: Mapping[str, torch.Tensor],
                          num_codes: int) -> Figure:
    """Codebook usage of several VQ-VAE runs: the perplexity and the number
    of codes unused on the batch, against the training step (the
    ``metrics["steps"]`` of each run), and each codebook's code frequencies
    on the test set, sorted, on a log scale (``counts``: label -> K counts).
    Two panels on top, the frequencies below."""
    palette = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#555555"]
    fig = plt.figure(figsize=(9.0, 7.0), facecolor="white")
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
            fig.add_subplot(grid[1, :])]
    for (label, log), color in zip(steps.items(), palette):
        x = [s["step"] for s in log]
        axes[0].plot(x, [s["perplexity"] for s in log], color=color, label=label)
        axes[1].plot(x, [s["dead_codes"] for s in log], color=color, label=label)
    for (label, c), color in zip(counts.items(), palette):
        c = np.asarray(c.cpu() if isinstance(c, torch.Tensor) else c, dtype=float)
        freq = np.sort(c)[::-1] / c.sum()
        axes[2].plot(np.arange(1, num_codes + 1), np.maximum(freq, 1e-7), color=color,
                     label=label, linewidth=1.8)
    axes[0].axhline(num_codes, color="#555555", linestyle="--", linewidth=1)
    axes[0].set(xlabel="training step", ylabel="perplexity of the batch's codes",
                title=f"perplexity (dashed: K = {num_codes})",
                ylim=(0, num_codes * 1.08))
    axes[1].set(xlabel="training step", ylabel="codes unused on the batch",
                title="dead codes", ylim=(-2, num_codes * 1.04))
    axes[2].axhline(1 / num_codes, color="#555555", linestyle="--", linewidth=1,
                    label="uniform use, 1/K")
    axes[2].set(xlabel="code rank (most used first)", ylabel="frequency on the test set",
                title="test-set code frequencies (codes never used: 1e-7)", yscale="log",
                xlim=(0, num_codes + 1))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(frameon=False, fontsize=9)
    axes[2].legend(frameon=False, fontsize=9, loc="lower left")
    fig.tight_layout()
    return fig
