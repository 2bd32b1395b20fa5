"""The computations of the Autoencoders chapter (book/autoencoders.md): three
layer types side by side, and a linear autoencoder against PCA."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import cache, losses, metrics
from ..cache import Run, get_or_train, load_data
from ..claims import Claim
from ..data import ImageData
from ..inference import reconstruct
from ..metrics.pca import _flat, covariance_eigh
from .picks import one_per_class

# the three autoencoders of the chapter: experiment suffix -> name in the prose
ARCHS = {"linear": "linear", "conv": "convolutional", "transformer": "transformer"}
EDGE_IMAGES = 1000  # test digits whose edge energy and background are compared
# The background is measured on black pixels with no ink within this many
# pixels (in the square of side 2 * BACKGROUND_MARGIN + 1 around them), out
# of reach of a stroke's locally blurred edge: what it measures there is grey
# that a local blur does not put there (speckle, or a linear code's smooth
# ghost strokes; the measure does not tell them apart).
BACKGROUND_MARGIN = 3
# The standard deviation, in pixels, of the Gaussian blur applied to the
# originals to show what blur alone does to the edge energy and that background.
BLUR_SIGMA = 2.0
# Random subspaces drawn to give the principal angles of the PCA study a scale.
RANDOM_DRAWS = 100
# A test digit counts as lying in the span of the centred training digits
# when the part of it (minus the mean) outside that span is below this
# fraction of its length (rounding error, not data).
SPAN_TOLERANCE = 1e-9
# A run whose training error still fell by more than this, in %, in its last
# epoch has not finished learning: at that rate ten more epochs would take
# off a further ~18%.
STILL_LEARNING_PCT = 2.0
# Test errors within this fraction of each other count as "about the same"
# (one seed each: differences this small are not worth a sentence).
SAME_ERROR_WITHIN = 0.05


@dataclass
class ArchitectureComparison:
    """The three autoencoders after training, each measured on the test split
    (dicts keyed by ``ARCHS``)."""

    runs: dict[str, Run]
    train: ImageData
    test: ImageData
    params: dict[str, int]
    mse: dict[str, float]            # test mean squared error per pixel
    psnr: dict[str, float]           # dB
    images_per_second: dict[str, float]
    seconds: dict[str, float]
    last_epoch_drop_pct: dict[str, float]  # % fall of the training error in the last epoch
    train_mse_history: dict[str, list[float]]  # training error per epoch (mean over its batches)
    order: list[str]                 # by test MSE, lowest first
    pca_mse: float                   # test MSE of PCA with as many components as the code
                                     # has numbers (fitted on the training digits)
    linear_gap_pct: float            # linear AE's test MSE above that, in %
    pca_train_mse: float             # PCA's MSE on the training digits: the least any
                                     # linear AE with this code length can reach there
    linear_train_mse: float          # the trained linear AE's, on the same digits
    edge_pct: dict[str, float]       # edge energy of reconstructions, % of the originals'
                                     # (a fixed random pick of EDGE_IMAGES test digits)
    background_rms: dict[str, float]  # root mean square of the reconstructions where
                                      # the original has no ink within BACKGROUND_MARGIN
                                      # pixels (the same digits)
    blurred_edge_pct: float          # the same two measures for the originals blurred
    blurred_background: float        # by a Gaussian of BLUR_SIGMA pixels
    pca_edge_pct: float              # and for PCA's reconstructions with as many
    pca_background: float            # components (the linear optimum on the training digits)
    digits: list[int]                # one test digit per class
    reconstructions: dict[str, torch.Tensor]  # of those digits, per arch

    @property
    def config(self):
        return self.runs["linear"].config

    @property
    def transformer_lower_epochs(self) -> list[int]:
        """The epochs (from 1) in which the transformer's training error was
        below the convolutional autoencoder's."""
        h = self.train_mse_history
        return [e + 1 for e, (c, t) in enumerate(zip(h["conv"], h["transformer"])) if t < c]

    @property
    def conv_lower_epochs(self) -> list[int]:
        """The epochs (from 1) in which the convolutional autoencoder's
        training error was below the transformer's."""
        h = self.train_mse_history
        return [e + 1 for e, (c, t) in enumerate(zip(h["conv"], h["transformer"])) if c < t]

    @property
    def linear_train_gap_pct(self) -> float:
        """How far the linear AE's training error is above PCA's, in %."""
        return 100 * (self.linear_train_mse / self.pca_train_mse - 1)

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``ae_<name>``; per autoencoder
        ``ae_<arch>_<name>``)."""
        c, ips = self.config, self.images_per_second
        out = {"latent": c.latent_dim, "epochs": c.epochs, "batch": c.batch_size, "lr": c.lr,
               "train_n": len(self.train), "test_n": len(self.test),
               "edge_n": EDGE_IMAGES, "background_margin": BACKGROUND_MARGIN,
               "blur_sigma": BLUR_SIGMA, "blurred_edge_pct": self.blurred_edge_pct,
               "blurred_background": self.blurred_background,
               "pca32_edge_pct": self.pca_edge_pct, "pca32_background": self.pca_background,
               "pca32_mse": self.pca_mse, "linear_gap_pct": self.linear_gap_pct,
               "pca_train_mse": self.pca_train_mse, "linear_train_mse": self.linear_train_mse,
               "linear_train_gap_pct": self.linear_train_gap_pct,
               "conv_over_tr_speed": ips["conv"] / ips["transformer"],
               "linear_over_conv_speed": ips["linear"] / ips["conv"],
               "params_tr_over_conv": self.params["transformer"] / self.params["conv"],
               # the training curves of the convolutional and the transformer
               # autoencoder: in how many epochs the transformer's was the lower,
               # and the last epoch each was the lower one (0: never)
               "tr_lower_epochs": len(self.transformer_lower_epochs),
               "tr_lower_last": max(self.transformer_lower_epochs, default=0),
               "conv_lower_last": max(self.conv_lower_epochs, default=0)}
        for a in ARCHS:
            out |= {f"{a}_params": self.params[a], f"{a}_mse": self.mse[a],
                    f"{a}_psnr": self.psnr[a], f"{a}_ips": ips[a], f"{a}_seconds": self.seconds[a],
                    f"{a}_drop": self.last_epoch_drop_pct[a], f"{a}_edge_pct": self.edge_pct[a],
                    f"{a}_background": self.background_rms[a],
                    f"{a}_rank": self.order.index(a) + 1}  # 1 = lowest test error
        return out


def learning_verdict(numbers) -> str:
    """The chapter's words on whether the three runs have finished learning,
    chosen by their last-epoch drops (``<arch>_drop``, in %) against
    :data:`STILL_LEARNING_PCT`."""
    if min(numbers[f"{a}_drop"] for a in ARCHS) > STILL_LEARNING_PCT:
        return ("none of them has finished learning, and the numbers compare the three at "
                "equal, modest effort rather than at their best.")
    return ("at least one has nearly stopped improving; the numbers compare the three at "
            "equal effort.")


def conv_vs_transformer(numbers) -> str:
    """The summary's sentence on the convolutional against the transformer
    autoencoder, chosen by their test errors (``conv_mse``, ``transformer_mse``):
    a ranking from one seed, with the hypothesis it is consistent with."""
    conv, tr = numbers["conv_mse"], numbers["transformer_mse"]
    errors = f"test error {conv:.4f} against {tr:.4f}"
    if abs(conv - tr) <= SAME_ERROR_WITHIN * tr:
        return (f"the convolutional and the transformer autoencoder reached about the same "
                f"error ({errors}), so at this budget the convolution's assumptions gave no "
                "clear advantage.")
    if conv < tr:
        return (f"the convolutional autoencoder reached a lower error than the transformer "
                f"({errors}). That is consistent with the idea that the convolution's "
                "assumptions suit digits, but one seed at one training budget cannot show "
                "that they are the cause.")
    return (f"the transformer reached a lower error than the convolutional autoencoder "
            f"({errors}), so at this budget its weaker assumptions did not hold it back.")


def training_order_words(numbers) -> str:
    """The sentence after :func:`conv_vs_transformer`: whether the training
    curves of the two (``tr_lower_last``, ``conv_lower_last``: the last epoch
    in which each had the lower training error, 0 for never; ``epochs``)
    agree with their order by test error, or crossed, so that the order
    depends on when training stops. Plain text without the final full stop
    (the chapter adds a reference to the figure)."""
    conv, tr, epochs = numbers["conv_mse"], numbers["transformer_mse"], numbers["epochs"]
    if abs(conv - tr) <= SAME_ERROR_WITHIN * tr:
        return (f"The transformer's training error was the lower of the two in "
                f"{numbers['tr_lower_epochs']} of the {epochs} epochs")
    leader, other = ("convolutional autoencoder", "transformer") if conv < tr else (
        "transformer", "convolutional autoencoder")
    last = numbers["tr_lower_last"] if conv < tr else numbers["conv_lower_last"]
    if last == 0:
        return (f"The training curves agree: the {leader}'s training error was the lower one "
                f"in every one of the {epochs} epochs")
    if last == epochs:
        return (f"By training error, the {other} was even the lower one in the last epoch, "
                "so this order is not settled")
    return (f"The order is also recent: by training error the {other} was the lower one as "
            f"late as epoch {last} of {epochs}, so by that measure the order depends on when "
            "training stops")


def transformer_pace_words(numbers) -> str:
    """How the transformer's training error compared with the convolutional
    autoencoder's, epoch by epoch (``tr_lower_epochs``, ``tr_lower_last``,
    ``epochs``), for the table of layer types; plain text."""
    n, last, epochs = numbers["tr_lower_epochs"], numbers["tr_lower_last"], numbers["epochs"]
    if n == 0:
        return ("its training error stayed above the convolutional autoencoder's in every "
                f"one of the {epochs} epochs")
    if n == epochs:
        return ("its training error was below the convolutional autoencoder's in every one "
                f"of the {epochs} epochs")
    return (f"its training error was below the convolutional autoencoder's in {n} of the "
            f"{epochs} epochs, the last of them epoch {last}, so which of the two was ahead "
            "in training depended on the epoch")


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` (uint8 or floats in [0, 1], N x C x H x W) as floats blurred
    by a Gaussian of standard deviation ``sigma`` pixels (cut at 4 sigma;
    black beyond the border)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    r = int(np.ceil(4 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, -1, -1)
    return F.conv2d(x, kernel, padding=r, groups=x.shape[1])


def compare_architectures() -> ArchitectureComparison:
    """Train (or fetch) the linear, convolutional and transformer
    autoencoders and measure each on the test digits."""
    runs = {arch: get_or_train(f"ae-{arch}") for arch in ARCHS}
    config = runs["linear"].config
    train, test = load_data(config)
    m = {arch: run.metrics for arch, run in runs.items()}
    mse = {a: float(m[a]["test"]["mse"]) for a in ARCHS}
    histories = {a: [e["mse"] for e in m[a]["history"]] for a in ARCHS}
    linear_train_mse = losses.mean_squared_error(
        reconstruct(runs["linear"].model, train.images), train.floats()).mean().item()
    digits = one_per_class(test.labels)
    x = test.floats()[digits]
    some = test.subset(EDGE_IMAGES).images  # a fixed random pick

    def pca_numbers():  # seconds: PCA fitted to the training digits, for three sets
        k = config.latent_dim
        return {"test": metrics.pca_mse(train.images, test.images, k),
                "train": metrics.pca_mse(train.images, train.images, k),
                "some": metrics.pca_reconstruct(train.images, some, k)}
    pca = cache.cached_evaluation(runs["linear"], "pca-yardsticks", pca_numbers,
                                  inputs=[train.images, test.images, some])
    pca_mse, pca_train_mse = float(pca["test"]), float(pca["train"])
    original_edges = metrics.edge_energy(some)
    # black pixels with no ink within BACKGROUND_MARGIN pixels
    ink = (some > 0).float()
    far = F.max_pool2d(ink, 2 * BACKGROUND_MARGIN + 1, stride=1, padding=BACKGROUND_MARGIN) == 0
    # measured as displayed, clipped to [0, 1]: the linear map and PCA have no
    # sigmoid, and what they put below black shows as black
    rebuilt = {a: reconstruct(runs[a].model, some).clamp(0, 1) for a in ARCHS}
    blurred = gaussian_blur(some, BLUR_SIGMA)
    pca_rebuilt = pca["some"].clamp(0, 1)
    return ArchitectureComparison(
        runs=runs, train=train, test=test,
        params={a: int(m[a]["parameters"]) for a in ARCHS},
        mse=mse,
        psnr={a: float(metrics.psnr(m[a]["test"]["mse"])) for a in ARCHS},
        images_per_second={a: float(m[a]["train_images_per_second"]) for a in ARCHS},
        seconds={a: float(m[a]["train_seconds"]) for a in ARCHS},
        last_epoch_drop_pct={a: 100 * (1 - h[-1] / h[-2]) if len(h) > 1 else float("nan")
                             for a, h in histories.items()},
        train_mse_history=histories,
        order=sorted(ARCHS, key=mse.__getitem__),
        pca_mse=pca_mse,
        linear_gap_pct=100 * (mse["linear"] / pca_mse - 1),
        pca_train_mse=pca_train_mse, linear_train_mse=linear_train_mse,
        edge_pct={a: 100 * metrics.edge_energy(rebuilt[a]) / original_edges for a in ARCHS},
        background_rms={a: rebuilt[a].float()[far].square().mean().sqrt().item()
                        for a in ARCHS},
        blurred_edge_pct=100 * metrics.edge_energy(blurred) / original_edges,
        blurred_background=blurred[far].square().mean().sqrt().item(),
        pca_edge_pct=100 * metrics.edge_energy(pca_rebuilt) / original_edges,
        pca_background=pca_rebuilt.float()[far].square().mean().sqrt().item(),
        digits=digits,
        reconstructions={a: reconstruct(runs[a].model, x) for a in ARCHS},
    )


@dataclass
class PCAStudy:
    """A linear autoencoder trained long, next to PCA with as many components."""

    run: Run
    test: ImageData
    comparison: metrics.PCAComparison
    eigenvalue_ratio: float   # lambda_k / lambda_(k+1) of the training digits
    nearby_ratio: float       # the median lambda_j / lambda_(j+1) for j from k/2 to 2k, j != k
    nearby_max_ratio: float   # the largest of those ratios
    nearby_max_j: int         # the j where it is
    gap_over_top: float       # h_k / lambda_1, h_k = 2 lambda_(k+1) (lambda_k - lambda_(k+1)) /
                              # (lambda_k + lambda_(k+1)): about the smaller curvature of the
                              # decoder's and the encoder's tilt from u_k towards u_(k+1), on
                              # centred data (or biases at their best for the weights), at the
                              # balanced minimiser W_d = U_k, W_e = U_k^T. A scale-free measure
                              # proportional to plain gradient descent's best rate per step
                              # there (about twice it: the largest curvature in the weights is
                              # 4 lambda_1, the biases add at most 4, so while lambda_1 > 1 a
                              # stable step has eta < 1 / (2 lambda_1)); not the rate itself
    top_eigenvalue: float     # lambda_1 of the training digits (per-image loss units)
    nearby_max_gap_over_top: float  # the largest of those for j from k/2 to 2k, j != k
    nearby_max_gap_j: int     # the j where it is
    dead_pixels: int          # pixels black in every training image
    drop_uk_pct: float        # lambda_k / D as a % of PCA's test MSE: about what a rank-deficient
                              # critical point (u_k dropped) would add to the error per pixel
    data_rank: int            # dimension of the span of the centred training digits
    test_in_span: int         # test digits (minus the mean) in that span, to SPAN_TOLERANCE
    shown_in_span: int        # the same, among the digits of the figure (``digits``)
    random_min_angles: np.ndarray  # degrees: the smallest principal angle between the PCA
                                   # subspace and each of RANDOM_DRAWS random subspaces
    direction_angles: np.ndarray  # degrees between each principal direction u_1..u_k
                                  # and the decoder's column space
    angle_tolerance: float    # degrees: every principal angle must stay below
    mse_tolerance: float      # relative difference of the test MSEs allowed
    digits: list[int]

    @property
    def max_angle(self) -> float:
        return float(self.comparison.angles.max())

    @property
    def median_angle(self) -> float:
        return float(np.median(self.comparison.angles))

    @property
    def agrees(self) -> bool:
        """Both checks of the chapter pass: every principal angle below the
        tolerance and the test errors within the relative tolerance."""
        c = self.comparison
        return bool(self.max_angle < self.angle_tolerance
                    and abs(c.relative_mse_gap) < self.mse_tolerance)

    def numbers(self) -> dict[str, float]:
        """The scalars the chapter glues (``pca_<name>``)."""
        c, cfg = self.comparison, self.run.config
        worst = int(np.argmax(self.direction_angles))
        return {"k": c.k, "dead_pixels": self.dead_pixels, "eig_ratio": self.eigenvalue_ratio,
                "nearby_ratio": self.nearby_ratio, "nearby_max_ratio": self.nearby_max_ratio,
                "nearby_max_j": self.nearby_max_j, "gap_over_top": self.gap_over_top,
                "nearby_max_gap_over_top": self.nearby_max_gap_over_top,
                "nearby_max_gap_j": self.nearby_max_gap_j, "data_rank": self.data_rank,
                "drop_uk_pct": self.drop_uk_pct, "top_eig": self.top_eigenvalue,
                "other_dependencies": self.test.images[0].numel() - self.dead_pixels
                - self.data_rank,
                "test_in_span": self.test_in_span, "shown_in_span": self.shown_in_span,
                "shown_n": len(self.digits), "test_n": len(self.test), "epochs": cfg.epochs,
                "batch": cfg.batch_size, "lr": cfg.lr, "max_angle": self.max_angle,
                "median_angle": self.median_angle,
                "random_min_angle": float(c.random_angles.min()),
                "random_draws": len(self.random_min_angles),
                "random_min_angle_mean": float(np.mean(self.random_min_angles)),
                "random_min_angle_least": float(np.min(self.random_min_angles)),
                "ae_mse": c.ae_mse, "pca_mse": c.pca_mse, "gap_pct": 100 * c.relative_mse_gap,
                "angle_tol": self.angle_tolerance, "mse_tol_pct": 100 * self.mse_tolerance,
                # each principal direction's angle to the decoder's subspace
                "uk_angle": float(self.direction_angles[-1]), "worst_j": worst + 1,
                "worst_angle": float(self.direction_angles[worst])}


def linear_ae_vs_pca(angle_tolerance: float = 5.0, mse_tolerance: float = 0.01) -> PCAStudy:
    """Train (or fetch) the dedicated linear autoencoder ``ae-linear-pca`` and
    compare its decoder subspace and test error with PCA's."""
    run = get_or_train("ae-linear-pca")
    train, test = load_data(run.config)
    comparison = metrics.compare_with_pca(run.model, train.images, test.images)
    _, eig, directions = covariance_eigh(train.images)
    k = comparison.k
    # each u_j's angle to col(W_d): the arcsine of the length of its part
    # outside (more accurate near 0 than the arccosine of the part inside)
    basis, _ = np.linalg.qr(run.model.decoder.net.weight.detach().cpu().double().numpy())
    u = directions[:, :k]
    outside = np.linalg.norm(u - basis @ (basis.T @ u), axis=0)
    ratios = eig[:2 * k] / eig[1:2 * k + 1]  # ratios[j - 1] = lambda_j / lambda_(j+1)
    near_js = [j for j in range(max(1, k // 2), 2 * k + 1) if j != k]
    nearby = [ratios[j - 1] for j in near_js]
    max_j = near_js[int(np.argmax(nearby))]
    # gaps[j - 1] = h_j / lambda_1, h_j = 2 lambda_(j+1) (lambda_j - lambda_(j+1)) /
    # (lambda_j + lambda_(j+1)): about the smaller eigenvalue of the 2x2 block of the loss's
    # Hessian that tilts the decoder's column u_j and the encoder's row u_j^T towards
    # u_(j+1), 2 [[lambda_j, -lambda_(j+1)], [-lambda_(j+1), lambda_(j+1)]], which holds on
    # centred data (or with the biases at their best for the weights) at the balanced
    # minimiser of a j-number code, W_d = U_j, W_e = U_j^T (at W_d C, C^-1 W_e it depends
    # on C); over lambda_1, which caps a stable step for every code length
    upper, lower = eig[:2 * k], eig[1:2 * k + 1]
    gaps = 2 * lower * (upper - lower) / ((upper + lower) * eig[0])
    max_gap_j = near_js[int(np.argmax([gaps[j - 1] for j in near_js]))]
    # the span of the centred training digits (where every minimiser of the
    # theorem reconstructs like PCA), and which test digits lie in it
    x = _flat(train.images)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    rank = int((s > s[0] * max(x.shape) * np.finfo(float).eps).sum())
    span = vt[:rank].T
    t = _flat(test.images) - mean
    off_span = np.linalg.norm(t - (t @ span) @ span.T, axis=1) / np.linalg.norm(t, axis=1)
    in_span = off_span < SPAN_TOLERANCE
    digits = one_per_class(test.labels)
    # the smallest principal angle of random k-dimensional subspaces to the PCA one
    rng = np.random.default_rng(1)
    top = directions[:, :k]
    cosines = [np.linalg.svd(np.linalg.qr(rng.standard_normal(top.shape))[0].T @ top,
                             compute_uv=False).max() for _ in range(RANDOM_DRAWS)]
    return PCAStudy(
        run=run, test=test, comparison=comparison,
        eigenvalue_ratio=float(ratios[k - 1]), nearby_ratio=float(np.median(nearby)),
        nearby_max_ratio=float(ratios[max_j - 1]), nearby_max_j=max_j,
        gap_over_top=float(gaps[k - 1]), nearby_max_gap_over_top=float(gaps[max_gap_j - 1]),
        nearby_max_gap_j=max_gap_j, top_eigenvalue=float(eig[0]),
        drop_uk_pct=float(100 * eig[k - 1] / x.shape[1] / comparison.pca_mse),
        dead_pixels=int((train.images.flatten(1).amax(0) == 0).sum()),
        data_rank=rank, test_in_span=int(in_span.sum()),
        shown_in_span=int(in_span[digits].sum()),
        random_min_angles=np.degrees(np.arccos(np.clip(cosines, -1, 1))),
        direction_angles=np.degrees(np.arcsin(np.clip(outside, 0, 1))),
        angle_tolerance=angle_tolerance, mse_tolerance=mse_tolerance,
        digits=digits,
    )


def rate_words(numbers) -> str:
    """Whether plain gradient descent's scale-free measure of the gap,
    h_j / lambda_1 with h_j = 2 lambda_(j+1) (lambda_j - lambda_(j+1)) /
    (lambda_j + lambda_(j+1)) (proportional to its best rate per step, under
    the chapter's assumptions; see ``PCAStudy.gap_over_top``), also puts k
    first among the j from k/2 to 2k
    (``gap_over_top``, ``nearby_max_gap_over_top``); plain text, for
    ``{glue:text}``."""
    if numbers["nearby_max_gap_over_top"] > numbers["gap_over_top"]:
        return ("so by that measure the boundary at k is not the one that settles fastest, and "
                "the choice of k rests on the relative gap alone.")
    return "so by that measure, too, the boundary at k is the one that settles fastest there."


def residual_words(numbers) -> str:
    """Where the trained subspace is least settled, in words chosen by the
    angle of each principal direction u_i (i <= k) to it (``worst_j``, the
    worst i, and ``k``); plain text, for ``{glue:text}``."""
    if numbers["worst_j"] == numbers["k"]:
        return ("Here the direction next to the boundary (i = k) is the one furthest from the "
                "decoder's subspace. One run cannot tell why: slow mixing with the directions "
                "just past the boundary, the noise of the steps, or Adam's per-weight step "
                "sizes.")
    return ("Here the direction furthest from the decoder's subspace is not the one next to "
            "the boundary; one run cannot tell why (Adam's per-weight step sizes, its noise "
            "or the random start; by the picture above, slow mixing with directions of small "
            "variance would mainly tilt the encoder).")


# ================================================================== claims
# The conditions behind the chapter's judging sentences, each a function of
# the numbers the chapter glues (see autoencoders.claims; the chapter checks
# them with check_claims, tests/test_claim_breaks.py breaks each). What the
# architectures guarantee (the linear AE has the fewest parameters, the
# convolutional and transformer budgets are comparable) is a unit test in
# tests/test_autoencoders.py, not a claim. That the linear AE's training error
# is above PCA's is the theorem; how far above is glued. Whether the runs have
# nearly stopped learning (learning_verdict), how the convolutional and the
# transformer autoencoder compare (conv_vs_transformer; whether their training
# curves crossed: training_order_words, transformer_pace_words) and where the PCA
# study's residual sits (residual_words) may differ between profiles, so
# they are glued in words chosen by the numbers; so is whether plain gradient
# descent's measure of the gap also puts k first (rate_words). That the
# training digits' covariance is singular is a fact of MNIST (its digits sit
# in a frame with an empty margin, so every subset has always-black pixels):
# glued as a count, not a claim.
ARCH_CLAIMS = (
    Claim("ae-still-falling", "in the last epoch the training error of each autoencoder still "
          "fell", lambda n: all(n[f"{a}_drop"] > 0 for a in ARCHS)),
    Claim("ae-linear-blurred", "the linear autoencoder's reconstructions are blurred or faded "
          "(the edge energy, quadratic in contrast, does not tell the two apart): they keep "
          "less than half of the originals' edge energy, and less than the convolutional one's",
          lambda n: n["linear_edge_pct"] < 50 and n["linear_edge_pct"] < n["conv_edge_pct"]),
    Claim("ae-linear-grainy", "the linear autoencoder's reconstructions carry stray grey: on "
          "black pixels with no ink within BACKGROUND_MARGIN pixels, out of reach of a local "
          "blur, they stray further from black (root mean square) than either other "
          "autoencoder's",
          lambda n: n["linear_background"] > max(n["conv_background"],
                                                 n["transformer_background"])),
    Claim("ae-grain-not-blur", "a local blur does not explain that background: the originals "
          "blurred by a Gaussian of BLUR_SIGMA pixels keep less edge energy than the linear "
          "autoencoder's reconstructions, yet stray from black there by less than half as much",
          lambda n: n["blurred_edge_pct"] < n["linear_edge_pct"]
          and n["blurred_background"] < n["linear_background"] / 2),
    Claim("ae-grey-partly-training", "part of that grey is this short run's, part the linear "
          "map's: PCA with as many components, the best linear map on the training digits, "
          "strays from black there less than the trained linear autoencoder, but more than "
          "either the convolutional or the transformer autoencoder",
          lambda n: max(n["conv_background"], n["transformer_background"])
          < n["pca32_background"] < n["linear_background"]),
)
PCA_CLAIMS = (
    Claim("pca-spectrum-gap", "at k the spectrum has a clear gap: lambda_k / lambda_(k+1) - 1 is "
          "more than three times the median of lambda_j / lambda_(j+1) - 1 for the other j "
          "from k/2 to 2k",
          lambda n: n["eig_ratio"] - 1 > 3 * (n["nearby_ratio"] - 1)),
    Claim("pca-agrees", "both checks pass: every principal angle is below the tolerance and the "
          "test errors agree within theirs",
          lambda n: n["max_angle"] < n["angle_tol"] and abs(n["gap_pct"]) < n["mse_tol_pct"]),
    Claim("pca-rank-deficient-excluded", "dropping u_k would cost far more than the measured gap "
          "to PCA: lambda_k / D (from the training digits' covariance), as a share of PCA's "
          "test error, is more than ten times |the gap of the test errors| (test errors "
          "standing in for training errors)",
          lambda n: n["drop_uk_pct"] > 10 * abs(n["gap_pct"])),
    Claim("pca-bias-curvature-below", "the biases' curvature (at most 4, per-image loss) is "
          "below the weights' largest, 4 lambda_1: lambda_1 of the training digits exceeds 1",
          lambda n: n["top_eig"] > 1),
)
