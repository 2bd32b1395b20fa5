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
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .data import unit_floats  # noqa: E402

# one colour per model family, reused across chapters (colour-blind safe)
COLORS = {"linear": "#0072B2", "conv": "#D55E00", "transformer": "#009E73",
          "pca": "#555555", "random": "#CC79A7"}
COLORS["convolutional"] = COLORS["conv"]


def tile(images: torch.Tensor, nrow: int, padding: int = 1,
         pad_value: float = 0.5) -> torch.Tensor:
    """``images`` (N, C, H, W) laid out ``nrow`` to a row with ``padding``
    pixels of ``pad_value`` around each: the (C, H', W') image that
    ``torchvision.utils.make_grid`` makes (a test checks they agree), without
    importing torchvision, whose import pulls in ``torch._dynamo``: more than
    half of this module's import time under ``python -X importtime``, paid
    in every chapter's kernel."""
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = images.new_full((c, rows * (h + padding) + padding,
                            cols * (w + padding) + padding), pad_value)
    for i, image in enumerate(images):
        top, left = (h + padding) * (i // cols) + padding, (w + padding) * (i % cols) + padding
        grid[:, top:top + h, left:left + w] = image
    return grid


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
    :func:`tile`; thin grey lines separate the images.
    """
    labels = list(rows)
    batches = [_as_float(rows[k]) for k in labels]
    n, (c, h, w) = batches[0].shape[0], batches[0].shape[1:]
    fig, axes = new_figure(scale * n * w / 28 + 1.6, scale * len(labels) * h / 28 + 0.3,
                           nrows=len(labels), squeeze=False)
    for ax, label, batch in zip(axes[:, 0], labels, batches):
        grid = tile(batch.clamp(0, 1), nrow=len(batch))
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
    fig, ax = new_figure(6.4, 4.0)
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
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3,
              fontsize=9)
    fig.tight_layout()
    return fig


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return unit_floats(x.detach().cpu())


# ----------------------------------------------- grids of numbers, latents
def heatmaps(panels: Mapping[str, np.ndarray], row_labels: Sequence[str],
             col_labels: Sequence[str], *, xlabel: str = "", ylabel: str = "",
             fmts: Mapping[str, str] | None = None,
             log: Sequence[str] = (), reverse: Sequence[str] = (),
             panel_width: float = 3.3, ncols: int | None = None) -> Figure:
    """One annotated heat map per entry of ``panels`` (title -> 2-D array,
    rows x columns), side by side, sharing row and column labels. ``fmts``
    gives each panel's number format (default ``.3g``); panels named in
    ``log`` get a logarithmic colour scale; those in ``reverse`` a reversed
    colour map (so that "better" has the same colour in every panel). NaN
    cells are left blank. ``ncols`` panels per row (default: all in one)."""
    from matplotlib.colors import LogNorm, Normalize

    fmts = dict(fmts or {})
    ncols = ncols or len(panels)
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(panel_width * ncols + 0.6,
                           (0.42 * len(row_labels) + 1.5) * nrows, nrows=nrows, ncols=ncols,
                           squeeze=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for k, (ax, (title, values)) in enumerate(zip(axes.flat, panels.items())):
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        if title in log and finite.size and finite.min() > 0:
            norm = LogNorm(finite.min(), finite.max())
        else:
            lo, hi = (finite.min(), finite.max()) if finite.size else (0, 1)
            norm = Normalize(lo, hi if hi > lo else lo + 1)
        cmap = "viridis_r" if title in reverse else "viridis"
        ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                if not np.isfinite(v):
                    continue
                shade = norm(v)
                shade = 1 - shade if title in reverse else shade
                ax.text(j, i, format(v, fmts.get(title, ".3g")), ha="center", va="center",
                        fontsize=8.5, color="black" if shade > 0.55 else "white")
        ax.set_xticks(range(len(col_labels)), col_labels, fontsize=8.5)
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8.5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        if k % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=9)
    fig.tight_layout()
    return fig


def latent_scatter(panels: Mapping[str, np.ndarray], labels, *, ncols: int = 2,
                   size: float = 3.4, point_size: float = 2.0,
                   prior_circle: Sequence[str] = (), equal: Sequence[str] = ()) -> Figure:
    """Scatter plots of 2-D points (title -> (N, 2) array), each point
    coloured by its class in ``labels`` (one array shared by every panel, or
    title -> that panel's labels), with one legend of the classes. Panels named in ``prior_circle`` get dashed
    circles of radius 1, 2 and 3 around the origin (where a standard normal
    puts 39%, 86% and 99% of its mass), and an equal aspect ratio, as do
    those in ``equal``."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    def as_array(x):
        return np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x)
    per_panel = {title: as_array(labels[title] if isinstance(labels, Mapping) else labels)
                 for title in panels}
    classes = np.unique(np.concatenate(list(per_panel.values())))
    cmap = plt.get_cmap("tab10")
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(size * ncols + 0.9, size * nrows, nrows=nrows, ncols=ncols,
                           squeeze=False)
    for ax, (title, points) in zip(axes.flat, panels.items()):
        points, labels = np.asarray(points), per_panel[title]
        if len(labels) != len(points):
            raise ValueError(f"panel {title!r}: {len(points)} points but {len(labels)} labels")
        order = np.random.default_rng(0).permutation(len(points))  # no class on top
        ax.scatter(points[order, 0], points[order, 1], s=point_size, linewidths=0,
                   c=[cmap(int(c) % 10) for c in labels[order]], rasterized=True)
        if title in prior_circle:
            for r in (1, 2, 3):
                ax.add_patch(Circle((0, 0), r, fill=False, ls="--", lw=0.8,
                                    color="black", alpha=0.6))
            ax.plot([0], [0], "k+", ms=8)
        if title in prior_circle or title in equal:
            ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], ls="", marker="o", ms=6, color=cmap(int(c) % 10),
                      label=str(c)) for c in classes]
    fig.legend(handles=handles, loc="center right", frameon=False, title="digit",
               fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 0.8 / (size * ncols + 0.9), 1))
    return fig


def decoded_lattice(panels: Mapping[str, tuple[torch.Tensor, Sequence[float]]], n: int, *,
                    size: float = 3.6) -> Figure:
    """One panel per entry (title -> (images, window)): ``n * n`` decoded
    images (N, 1, H, W), row by row from the top, of the points at the cell
    centres of the square ``window`` = [x0, x1, y0, y1] of a 2-number latent
    space, tiled edge to edge on the window's coordinates."""
    fig, axes = new_figure(size * len(panels), size + 0.3, ncols=len(panels), squeeze=False)
    for ax, (title, (images, window)) in zip(axes[0], panels.items()):
        grid = tile(_as_float(images).clamp(0, 1), nrow=n, padding=0)[0].numpy()
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1, extent=list(window),
                  interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("$z_1$", fontsize=9), ax.set_ylabel("$z_2$", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


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


# ------------------------------------------- VAE on MNIST, score function
ESTIMATOR_COLORS = {"reparameterization": "#0072B2", "score": "#D55E00",
                    "score + constant baseline": "#E69F00",
                    "score + leave-one-out baseline": "#009E73"}


def picture_grid(images: torch.Tensor, nrow: int, *, scale: float = 0.5,
                 title: str | None = None) -> Figure:
    """A plain grid of images (no row labels), ``nrow`` images per row, laid
    out with :func:`tile`."""
    x = _as_float(images).clamp(0, 1)
    n, (c, h, w) = x.shape[0], x.shape[1:]
    rows = -(-n // nrow)
    fig, ax = new_figure(scale * nrow * w / 28 + 0.2, scale * rows * h / 28 + (0.5 if title else 0.2))
    grid = tile(x, nrow=nrow).permute(1, 2, 0).numpy()
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout(pad=0.2)
    return fig


def loss_term_curves(history: Sequence[Mapping[str, float]], panels: Mapping[str, str],
                     *, steps: Sequence[Mapping[str, float]] | None = None,
                     steps_per_epoch: float | None = None) -> Figure:
    """One panel per loss term (title -> key of the history), side by side so
    that terms of different sizes each get their own scale: the per-epoch
    training averages, and (``steps`` from ``metrics["steps"]`` with
    ``steps_per_epoch``) the individual logged batches behind them."""
    fig, axes = new_figure(3.4 * len(panels), 3.2, ncols=len(panels), squeeze=False)
    for ax, (title, key) in zip(axes[0], panels.items()):
        if steps and steps_per_epoch:
            xs = [s["step"] / steps_per_epoch for s in steps if key in s]
            ax.plot(xs, [s[key] for s in steps if key in s], color="#999999", linewidth=0.8,
                    alpha=0.8, label="single batches")
        epochs = np.arange(1, len(history) + 1)
        ax.plot(epochs, [h[key] for h in history], "o-", color=COLORS["conv"], markersize=3,
                label="epoch average")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("nats per image")
    axes[0, 0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def estimator_figure(studies: Mapping, exact_mu: float, coordinate: int = 0) -> Figure:
    """Left: the total variance of each gradient estimator against the number
    of samples n (log-log). Right: how far each estimator's average (over the
    replicates) of one coordinate of the mu-gradient lies from the exact
    value, in standard errors; an unbiased estimator stays mostly inside the
    shaded band of +-2."""
    fig, (left, right) = new_figure(10.0, 4.2, ncols=2)
    offsets = np.linspace(-0.05, 0.05, len(studies))
    for off, (name, st) in zip(offsets, studies.items()):
        color = ESTIMATOR_COLORS.get(name)
        ns = np.asarray(st.sample_counts, dtype=float)
        left.plot(ns, st.variance, "o-", color=color, label=name, markersize=4)
        right.plot(ns * 10 ** off, st.mu_z(exact_mu, coordinate), "o", color=color,
                   markersize=5, label=name)
    right.axhspan(-2, 2, color="#dddddd", alpha=0.6, zorder=0, label="±2 standard errors")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylim(-4, 4)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("samples per estimate, n")
        ax.grid(alpha=0.3, which="both")
    left.set_yscale("log")
    left.set_ylabel("total variance of the estimate")
    right.set_ylabel(f"(average − exact) / s.e., ∂/∂μ{coordinate + 1}")
    left.set_title("variance", fontsize=10)
    right.set_title("bias check", fontsize=10)
    handles, labels = left.get_legend_handles_labels()
    band = right.get_legend_handles_labels()
    handles.append(band[0][band[1].index("±2 standard errors")])
    labels.append("±2 standard errors")
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


# ---------------------------------------------------------------- ablations
def ae_vae_training_curves(ae_history: Sequence[Mapping[str, float]],
                           vae_history: Sequence[Mapping[str, float]]) -> Figure:
    """Left: per-epoch training MSE of an AE and a VAE (sampled code) and
    the VAE's objective, on a log scale. Right: the VAE's KL per epoch."""
    fig, (ax0, ax1) = new_figure(9.6, 3.4, ncols=2)
    epochs = np.arange(1, len(ae_history) + 1)
    vae_color, ae_color = COLORS["linear"], COLORS["conv"]
    ax0.plot(epochs, [h["mse"] for h in ae_history], "o-", ms=3, color=ae_color, label="AE: MSE")
    ax0.plot(epochs, [h["mse"] for h in vae_history], "s-", ms=3, color=vae_color,
             label="VAE: MSE (sampled $z$)")
    ax0.plot(epochs, [h["loss"] for h in vae_history], "s--", ms=3, color=vae_color,
             alpha=0.6, label=r"VAE: objective (MSE + $\beta$ KL)")
    ax0.set(xlabel="epoch", ylabel="per-pixel training loss", yscale="log")
    ax0.legend(frameon=False, fontsize=8)
    ax1.plot(epochs, [h["kl"] for h in vae_history], "s-", ms=3, color=vae_color)
    ax1.set(xlabel="epoch", ylabel="VAE: KL (nats per image)")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def denoising_curves(noise: Sequence[float], mse: Mapping[tuple[str, float], float]) -> Figure:
    """Test MSE against the clean digits per noise weight (log scale): AE and
    VAE trained with noise (solid) and without (dotted, keys ``"ae-clean"``,
    ``"vae-clean"``), and the noisy input itself (dashed, key ``"input"``)."""
    fig, ax = new_figure(6.4, 3.6)
    for m, label, color in (("ae", "AE", COLORS["conv"]), ("vae", "VAE", COLORS["linear"])):
        ax.plot(noise, [mse[m, n] for n in noise], "o-", color=color,
                label=f"{label}, trained with noise")
        ax.plot(noise, [mse[m + "-clean", n] for n in noise], "o:", color=color, alpha=0.7,
                label=f"{label}, trained without noise")
    noisy = [n for n in noise if n > 0]
    ax.plot(noisy, [mse["input", n] for n in noisy], "x--", color=COLORS["pca"],
            label="noisy input itself")
    ax.set(xlabel="noise weight $w$", ylabel="test MSE against the clean digit", yscale="log",
           xticks=list(noise))
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------- questions readers ask
# Each takes the result of the matching function of autoencoders.analysis.questions.
def averaging_figure(r) -> Figure:
    """Test digits, both models' reconstructions and samples, one row each."""
    return image_grid({
        "test digits": r.originals,
        "β = 1: recon.": r.reconstructions["averaged"],
        "β = 1/D: recon.": r.reconstructions["summed"],
        "β = 1: samples": r.samples["averaged"],
        "β = 1/D: samples": r.samples["summed"]}, scale=0.8)


def kl_trajectory_figure(r) -> Figure:
    """Reconstruction and total, KL, and the path in the (rate, distortion) plane."""
    fig, axes = new_figure(11.0, 3.4, ncols=3)
    epochs = np.asarray(r.steps) / r.steps_per_epoch
    axes[0].plot(epochs, r.total, color=COLORS["linear"], lw=1, label="total (recon + KL)")
    axes[0].plot(epochs, r.recon, color=COLORS["conv"], lw=1, label="reconstruction")
    axes[0].set(xlabel="epoch", ylabel="nats per image", title="reconstruction and total")
    axes[0].legend(frameon=False, fontsize=8)
    axes[1].plot(epochs, r.kl, color=COLORS["transformer"], lw=1)
    axes[1].set(xlabel="epoch", ylabel="nats per image", title="KL (the rate)")
    points = axes[2].scatter(r.kl, r.recon, c=epochs, cmap="viridis", s=10)
    axes[2].set(xlabel="rate R = KL (nats)", ylabel="distortion = reconstruction (nats)",
                title="path in the rate–distortion plane", yscale="log")
    plain_log_ticks(axes[2].yaxis)
    fig.colorbar(points, ax=axes[2], label="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plain_log_ticks(axis) -> None:
    """Label a log ``axis`` that spans only a decade or two at 1-2-5 steps in
    plain numbers (0.2, 0.5, 1, 2, 5), with no label on the other minor
    ticks: matplotlib's default labels every minor tick of a short log axis
    as 2x10^-1, 3x10^-1, ..., and they overlap."""
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(ticker.NullFormatter())


def kl_sign_figure(r) -> Figure:
    """Histograms of the KL per test image and per latent coordinate."""
    fig, (left, right) = new_figure(9.6, 3.2, ncols=2)
    left.hist(r.per_image, bins=40, color=COLORS["linear"])
    left.set(xlabel="KL per test image (nats)", ylabel="test images",
             title=f"{len(r.per_image):,} test digits")
    positive = r.per_unit[r.per_unit > 0]
    right.hist(positive, bins=np.geomspace(positive.min(), positive.max(), 60),
               color=COLORS["conv"])
    right.set(xscale="log", xlabel="KL of one coordinate (nats, log scale)",
              ylabel="coordinates", title=f"the {r.latent_dim} coordinates of each digit")
    plain_log_ticks(right.xaxis)
    left.axvline(0, color="#555555", ls="--", lw=1)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def perplexity_figure(r) -> Figure:
    """Perplexity and codes used per batch against the batch size (log x)."""
    fig, (left, right) = new_figure(9.6, 3.4, ncols=2)
    left.errorbar(r.batch_sizes, r.mean, yerr=r.spread, marker="o", ms=4, capsize=2,
                  color=COLORS["conv"], label="perplexity of one batch (mean ± s.d.)")
    left.plot(r.batch_sizes, r.cap, ls=":", color="#555555",
              label="cap: min(K, vectors in the batch)")
    left.axhline(r.whole_set, ls="--", color=COLORS["linear"],
                 label=f"whole test set ({r.test_images:,} images)")
    left.set(xscale="log", xlabel="images per batch", ylabel="perplexity",
             ylim=(0, r.num_codes * 1.08))
    right.plot(r.batch_sizes, r.used_per_batch, "o-", ms=4, color=COLORS["conv"],
               label="codes used on one batch (mean)")
    right.axhline(r.used_whole_set, ls="--", color=COLORS["linear"],
                  label="codes used on the whole test set")
    right.axhline(r.num_codes, ls=":", color="#555555", label=f"K = {r.num_codes}")
    right.set(xscale="log", xlabel="images per batch", ylabel="codes used",
              ylim=(0, r.num_codes * 1.08))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def codebook_fixes_figure(r) -> Figure:
    """Codes used and test MSE after each epoch, and the codes unused on
    each logged training batch, one colour per fix."""
    palette = ["#555555", "#D55E00", "#0072B2", "#009E73"]
    fig, axes = new_figure(11.0, 3.4, ncols=3)
    for (name, fix), color in zip(r.fixes.items(), palette):
        epochs = np.arange(1, len(fix.codes_used_by_epoch) + 1)
        axes[0].plot(epochs, fix.codes_used_by_epoch, "o-", color=color, label=r.labels[name])
        axes[1].plot(epochs, fix.test_mse_by_epoch, "o-", color=color, label=r.labels[name])
        axes[2].plot([s["step"] for s in fix.steps], [s["dead_codes"] for s in fix.steps],
                     color=color, lw=1, label=r.labels[name])
    probe = next(iter(r.fixes.values())).probe_images
    axes[0].axhline(r.num_codes, ls=":", color="#555555")
    axes[0].set(xlabel="epoch", ylabel=f"codes used on {probe:,} test images",
                ylim=(0, r.num_codes * 1.08), title="codes in use")
    axes[1].set(xlabel="epoch", ylabel="test MSE per pixel", title="reconstruction error")
    axes[2].set(xlabel="training step", ylabel="codes unused on the batch",
                ylim=(-2, r.num_codes * 1.04), title="codes unused per batch")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].set_xticks(np.arange(1, r.epochs + 1))
    axes[1].set_xticks(np.arange(1, r.epochs + 1))
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def prior_decoding_figure(r) -> Figure:
    """One row of decoded grids per temperature."""
    return image_grid({("argmax (T = 0)" if t == 0 else f"T = {t:g}"): im
                             for t, im in r.images.items()}, scale=0.75)


def grid_trade_figure(r) -> Figure:
    """Test images and each VQ-VAE's reconstructions."""
    rows = {"test images": r.originals}
    for p in r.points.values():
        rows[f"{p.grid[0]}×{p.grid[1]} grid, K = {p.num_codes}"] = p.reconstructions
    return image_grid(rows, scale=0.75)


def collapse_figure(r) -> Figure:
    """The KL of each logged batch for the three runs (the warm-up's weight
    on a second axis), and the reconstructions of one digit per class."""
    colors = {"collapsed": "#555555", "warm-up": "#D55E00", "free bits": "#0072B2"}
    dashes = {"collapsed": "-", "warm-up": "-", "free bits": "--"}
    fig, (ax, ax_w) = new_figure(9.6, 3.3, ncols=2)
    for label, log in r.steps.items():
        epochs = [s["step"] / r.steps_per_epoch for s in log]
        ax.plot(epochs, [s["kl"] for s in log], dashes[label], color=colors[label], lw=1.2,
                label=label)
        ax_w.plot(epochs, [s.get("kl_weight_now", r.kl_weight) for s in log], dashes[label],
                  color=colors[label], lw=1.2, label=label)
    ax.set(xlabel="epoch", ylabel="KL of the batch (nats per image)", title="KL during training")
    ax_w.set(xlabel="epoch", ylabel="KL weight used", title="the weight on the KL term")
    for a in (ax, ax_w):
        a.grid(alpha=0.3)
        a.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def collapse_images_figure(r) -> Figure:
    return image_grid({"test digits": r.originals,
                             **{f"β = {r.kl_weight:g}, {label}": im
                                for label, im in r.reconstructions.items()}}, scale=0.7)


# ---------------------------------------------------------------- VAE theory
def posterior_figure(ex) -> Figure:
    """Left, the decoder means and the observation; right, the densities over
    z (an :class:`~autoencoders.analysis.vae_theory.PosteriorExample`)."""
    fig, (left, right) = new_figure(9.0, 3.2, ncols=2)
    for label, mean in ex.decoders.items():
        left.plot(ex.grid, mean, label=label)
    left.axhline(ex.x_obs, color="grey", ls=":", label="observed $x$")
    left.set(xlabel="$z$", ylabel="decoder mean $f(z)$", ylim=(-2, 4))
    for label, density in ex.densities.items():
        right.plot(ex.grid, density, ls="--" if "Gaussian" in label else "-", label=label)
    right.set(xlabel="$z$", ylabel="density")
    for ax in (left, right):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ tables
def styled_table(table, formats: Mapping[str, str]):
    """A results table (pandas DataFrame) as a Styler with number
    ``formats`` (column -> format string) and row names that do not wrap;
    chapters glue it with ``glue_table`` and caption it in the prose."""
    return (table.style.format(formats)
            .set_table_styles([{"selector": "th.row_heading", "props": "white-space: nowrap"}]))
