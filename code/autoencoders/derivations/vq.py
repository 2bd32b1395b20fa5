"""Build-time checks of the VQ-VAE's gradients, on the package's real
:class:`~autoencoders.models.VQVAE` and
:class:`~autoencoders.models.quantizer.VectorQuantizer` (a tiny instance, in
double precision).

What the VQ-VAE chapter states about its loss,

    mean squared error + ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2,

is a statement about where each term's gradient goes; the checks compare the
gradients autograd produces with the ones that sentence implies, computed
here by hand:

* the nearest code is the argmin of the distances (``torch.cdist``) and the
  decoder's input has the value of that code vector;
* straight-through: the encoder's gradient from the reconstruction term is
  the decoder's gradient at z_q, and the codebook gets none of it;
* the codebook loss moves only the codebook, by 2 (e_k - z_e) / (d H W N);
  the commitment loss moves only the encoder, by beta 2 (z_e - e_k) / (d H W N);
* with ``codebook_update="ema"`` the codebook gets no gradient at all, the
  objective has no codebook term, and one training step moves the codebook to
  the moving averages N <- g N + (1-g) n, m <- g m + (1-g) sum z_e, e = m / N
  (van den Oord et al., 2017, appendix A.1; N Laplace-smoothed).
"""
from __future__ import annotations

from .checks import _captured_io, _require, _require_close, _seeded

_LABEL = "eq-vq-loss"
_SHAPE = (1, 8, 8)


def _tiny_vqvae(update: str = "loss", commitment: float = 0.3, seed: int = 0):
    """A tiny double-precision VQ-VAE and a batch, with the codebook spread
    over the encoder's outputs so that several codes are in use."""
    import torch

    from ..models import VQVAE

    with _seeded(seed):
        model = VQVAE(_SHAPE, latent_dim=3, num_codes=6, width=8, depth=1,
                      commitment=commitment, codebook_update=update).double()
        x = torch.rand(4, *_SHAPE, dtype=torch.float64)
        with torch.no_grad():
            flat = model.encode(x).permute(0, 2, 3, 1).reshape(-1, 3)
            pick = torch.randperm(len(flat))[:model.num_codes]
            model.quantizer.codebook.copy_(flat[pick] + 1e-3 * flat.std() * torch.randn(model.num_codes, 3,
                                                                           dtype=torch.float64))
            model.quantizer.ema_sum.copy_(model.quantizer.codebook)
    return model, x


def _captured(model):
    """Keep the encoder's output z_e and the decoder's input z_q of the next
    forward pass, with their gradients."""
    return _captured_io(model, "z_e", "z_q", retain_grad=True)


def _grid_gradients(z_e, codebook, codes):
    """d/de_j and d/dz_e of sum_n mean_{grid, dims} ||z_e - e_k||^2 / N, by hand."""
    import torch

    n, d, h, w = z_e.shape
    scale = 2.0 / (d * h * w * n)
    e_k = codebook[codes].permute(0, 3, 1, 2)                       # (N, d, H, W)
    g_ze = scale * (z_e - e_k)
    flat = (e_k - z_e).permute(0, 2, 3, 1).reshape(-1, d)
    g_cb = torch.zeros_like(codebook).index_add_(0, codes.reshape(-1), scale * flat)
    return g_cb, g_ze


def vq_nearest_code_check() -> dict:
    """Each grid position gets the code vector nearest to its encoder output
    (argmin of ``torch.cdist``), and the decoder's input has that value."""
    import torch

    model, x = _tiny_vqvae()
    z_e = model.encode(x).detach()
    q = model.quantizer(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    expected = torch.cdist(flat, model.quantizer.codebook.detach()).argmin(dim=1)
    name = "k = argmin_j ||z_e - e_j||"
    _require(torch.equal(q.codes.reshape(-1), expected), name, "eq-vq-nearest",
             f"{int((q.codes.reshape(-1) != expected).sum())} of {len(expected)} positions "
             "got another code than the nearest one")
    value = model.quantizer.codebook.detach()[q.codes].permute(0, 3, 1, 2)
    _require_close(q.z_q, value, "the decoder's input z_q = e_k", "eq-vq-nearest", rtol=0, atol=1e-12)
    return {"codes_used": int(q.codes.unique().numel()), "positions": len(expected)}


def vq_straight_through_check() -> dict:
    """The reconstruction term alone: the encoder's gradient equals the
    decoder's gradient at z_q, and the codebook gets no gradient from it."""
    import torch

    from .. import losses

    model, x = _tiny_vqvae()
    with _captured(model) as seen:
        q = model.quantizer(model.encode(x))
        x_hat = model.decode(q.z_q)
    losses.mean_squared_error(x_hat, x).mean().backward()
    z_e, z_q = seen["z_e"], seen["z_q"]
    name = "straight-through: the encoder's gradient = the decoder's gradient at z_q"
    _require(z_q.grad is not None and z_e.grad is not None, name, "eq-vq-straight-through",
             "no gradient reached the decoder input or the encoder output")
    _require(float(z_q.grad.abs().max()) > 0, name, "eq-vq-straight-through",
             "the decoder's gradient at z_q is zero")
    _require_close(z_e.grad, z_q.grad, name, "eq-vq-straight-through", rtol=1e-12, atol=1e-15)
    cb = model.quantizer.codebook.grad
    worst = 0.0 if cb is None else float(cb.abs().max())
    _require(worst == 0.0, "the reconstruction term sends no gradient to the codebook",
             "eq-vq-straight-through", f"the codebook's gradient is {worst:.3g}, not 0")
    return {"grad_norm": float(z_q.grad.norm())}


def vq_loss_gradients_check() -> dict:
    """The codebook loss moves only the codebook, the commitment loss only
    the encoder (weighted by beta), each term alone and in the model's
    objective (``VQVAE.loss_terms``)."""
    import torch

    model, x = _tiny_vqvae(commitment=0.3)
    vq = model.quantizer
    beta = model.commitment
    # each term alone
    z_e = model.encode(x).detach().requires_grad_(True)
    q = vq(z_e)
    g_cb, g_ze = _grid_gradients(z_e.detach(), vq.codebook.detach(), q.codes)
    q.codebook_loss.mean().backward(retain_graph=True)
    name = "the codebook loss ||sg(z_e) - e||^2 moves only the codebook"
    _require(z_e.grad is None or float(z_e.grad.abs().max()) == 0, name, "eq-vq-codebook-loss",
             "the codebook loss sends a gradient to the encoder")
    _require(vq.codebook.grad is not None, name, "eq-vq-codebook-loss", "the codebook gets no gradient")
    _require_close(vq.codebook.grad, g_cb, name, "eq-vq-codebook-loss", rtol=1e-10, atol=1e-15)
    vq.codebook.grad = None
    q.commitment_loss.mean().backward()
    name = "the commitment loss ||z_e - sg(e)||^2 moves only the encoder"
    _require(vq.codebook.grad is None or float(vq.codebook.grad.abs().max()) == 0, name, "eq-vq-commitment-loss",
             "the commitment loss sends a gradient to the codebook")
    _require(z_e.grad is not None, name, "eq-vq-commitment-loss", "the encoder gets no gradient")
    _require_close(z_e.grad, g_ze, name, "eq-vq-commitment-loss", rtol=1e-10, atol=1e-15)

    # the model's objective: mse + codebook + beta * commitment
    model.zero_grad(set_to_none=True)
    with _captured(model) as seen:
        terms = model.loss_terms(x)
    terms["loss"].backward()
    z_e, z_q = seen["z_e"], seen["z_q"]
    codes = vq.nearest(z_e.detach().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])).view(
        z_e.shape[0], *z_e.shape[2:])
    g_cb, g_ze = _grid_gradients(z_e.detach(), vq.codebook.detach(), codes)
    name = "VQ-VAE objective: the codebook's gradient is the codebook loss's"
    _require_close(vq.codebook.grad, g_cb, name, _LABEL, rtol=1e-10, atol=1e-15)
    name = "VQ-VAE objective: the encoder's gradient = decoder's gradient at z_q + beta x commitment's"
    _require_close(z_e.grad, z_q.grad + beta * g_ze, name, _LABEL, rtol=1e-10, atol=1e-15)
    mse, dist = _objective_by_hand(model, x, z_e.detach(), vq.codebook.detach())
    _require_close(torch.stack([terms["mse"], terms["codebook"], terms["commitment"]]).detach(),
                   torch.stack([mse, dist, dist]), "the VQ-VAE's reported loss terms", _LABEL,
                   rtol=1e-10)
    _require_close(terms["loss"].detach(), mse + (1 + beta) * dist,
                   "VQ-VAE objective = mse + codebook + beta commitment", _LABEL, rtol=1e-10)
    return {"beta": beta, "codebook_grad_norm": float(vq.codebook.grad.norm())}


def _objective_by_hand(model, x, z_e, codebook):
    """For the encoder outputs ``z_e`` and the ``codebook``: the mean squared
    error of decoding each position's nearest code vector (``torch.cdist``),
    and the mean squared distance from z_e to it (both loss terms' value)."""
    import torch

    d = z_e.shape[1]
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
    e_k = codebook[torch.cdist(flat, codebook).argmin(dim=1)]
    grid = e_k.view(z_e.shape[0], *z_e.shape[2:], d).permute(0, 3, 1, 2)
    with torch.no_grad():
        x_hat = torch.sigmoid(model.decoder(grid))
    return (x_hat - x).pow(2).mean(), (flat - e_k).pow(2).mean()


def vq_ema_check() -> dict:
    """With ``codebook_update="ema"``: no optimiser gradient reaches the
    codebook and the objective has no codebook term; a training step moves
    the codebook to the moving averages with decay g; an evaluation pass
    leaves it alone."""
    import torch

    model, x = _tiny_vqvae(update="ema", commitment=0.3)
    vq = model.quantizer
    g, k, eps = vq.decay, vq.num_codes, vq.eps
    count0, sum0 = vq.ema_count.clone(), vq.ema_sum.clone()
    codebook0 = vq.codebook.detach().clone()
    model.train()
    with _captured(model) as seen:
        terms = model.loss_terms(x)
    terms["loss"].backward()
    name = "EMA codebook: no gradient reaches the codebook"
    _require(vq.codebook.grad is None or float(vq.codebook.grad.abs().max()) == 0, name,
             "eq-vq-ema", "the optimiser would move the codebook")
    # the moving averages of the paper, from the state before the step
    z_e = seen["z_e"].detach()
    mse, dist = _objective_by_hand(model, x, z_e, codebook0)
    _require_close(terms["loss"].detach(), mse + model.commitment * dist,
                   "EMA objective = mse + beta commitment (no codebook term)", "eq-vq-ema",
                   rtol=1e-10)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    codes = torch.cdist(flat, codebook0).argmin(dim=1)
    n_j = torch.bincount(codes, minlength=k).to(flat.dtype)
    sums = torch.zeros_like(sum0).index_add_(0, codes, flat)
    count1 = g * count0 + (1 - g) * n_j
    sum1 = g * sum0 + (1 - g) * sums
    smoothed = (count1 + eps) / (count1.sum() + k * eps) * count1.sum()
    name = f"EMA codebook update with decay g = {g}"
    _require_close(vq.ema_count, count1, name, "eq-vq-ema", rtol=1e-12, atol=1e-15)
    _require_close(vq.codebook.detach(), sum1 / smoothed[:, None], name, "eq-vq-ema",
                   rtol=1e-10, atol=1e-15)
    after_train = vq.codebook.detach().clone()
    model.eval()
    with torch.no_grad():
        model.loss_terms(x)
    _require_close(vq.codebook.detach(), after_train, "evaluation leaves the EMA codebook alone",
                   "eq-vq-ema", rtol=0, atol=0)
    return {"decay": g, "moved": float((after_train - codebook0).abs().max())}


VQ_CHECKS = (vq_nearest_code_check, vq_straight_through_check, vq_loss_gradients_check,
             vq_ema_check)


# ------------------------------------------------------------- codebook usage
def codebook_usage_check() -> dict:
    """The perplexity of a set of codes (``eq-vq-perplexity``) is exp of
    scipy's entropy of their counts (counted in Python), K for codes used
    equally often and 1 for a single code; the dead codes are the codes that
    never occur; :func:`metrics.codebook_usage` and what
    :meth:`VQVAE.loss_terms` reports on a batch agree."""
    import math
    from collections import Counter

    import torch
    from scipy.stats import entropy

    from ..metrics.codebook import code_counts, codebook_perplexity, codebook_usage, dead_codes

    k = 9
    g = torch.Generator().manual_seed(11)
    codes = torch.multinomial(torch.tensor([5.0, 1, 3, 0.5, 2, 1, 4, 0, 0]), 3 * 4 * 5,
                              replacement=True, generator=g).view(3, 4, 5)
    counter = Counter(codes.flatten().tolist())
    counts = [counter.get(j, 0) for j in range(k)]
    _require(code_counts(codes, k).tolist() == counts, "code counts", "eq-vq-perplexity",
             f"{code_counts(codes, k).tolist()} vs {counts}")
    _require_close(codebook_perplexity(codes, k), math.exp(entropy(counts)),
                   "perplexity = exp(entropy of the code frequencies)", "eq-vq-perplexity",
                   rtol=1e-6)
    _require(int(dead_codes(codes, k)) == k - len(counter), "dead codes = codes never chosen",
             "eq-vq-perplexity", f"{int(dead_codes(codes, k))} vs {k - len(counter)}")
    usage = codebook_usage(codes, k)
    _require(usage["counts"].tolist() == counts and usage["dead_codes"] == k - len(counter),
             "codebook_usage's counts and dead codes", "eq-vq-perplexity", str(usage))
    _require_close(usage["perplexity"], math.exp(entropy(counts)), "codebook_usage's perplexity",
                   "eq-vq-perplexity", rtol=1e-6)
    even = torch.arange(k).repeat(4).view(2, 3, 6)
    _require_close(codebook_perplexity(even, k), k, "perplexity of evenly used codes = K",
                   "eq-vq-perplexity", rtol=1e-6)
    _require_close(codebook_perplexity(torch.full((2, 3, 3), 4), k), 1.0,
                   "perplexity of a single code = 1", "eq-vq-perplexity", rtol=1e-6)

    model, x = _tiny_vqvae()
    model.eval()
    with torch.no_grad():
        terms = model.loss_terms(x)
        batch_codes = model.codes(x)
    counter = Counter(batch_codes.flatten().tolist())
    batch_counts = [counter.get(j, 0) for j in range(model.num_codes)]
    _require_close(terms["perplexity"], math.exp(entropy(batch_counts)),
                   "the VQ-VAE reports its batch's perplexity", "eq-vq-perplexity", rtol=1e-6)
    _require_close(terms["dead_codes"], model.num_codes - len(counter),
                   "the VQ-VAE reports its batch's dead codes", "eq-vq-perplexity", rtol=0)
    return {"perplexity": float(codebook_perplexity(codes, k)), "dead": k - len(counter)}


def pair_bits_check() -> dict:
    """:func:`metrics.codebook.pair_bits` against a count by hand on tiny
    grids: every horizontally and vertically adjacent ordered pair of the
    training grids counted in Python, one added to each of the K x K pairs,
    and the mean of -log2 of the probabilities of the pairs of other grids
    (one of them never seen in training)."""
    import math
    from collections import Counter

    import torch

    from ..metrics.codebook import pair_bits

    k = 4                         # code 3 never occurs in the training grids
    train = torch.tensor([[[0, 1, 1, 2], [0, 0, 1, 2], [2, 1, 0, 0]],
                          [[1, 1, 1, 1], [2, 2, 0, 1], [0, 2, 2, 2]]])
    grids = torch.tensor([[[0, 1, 2], [1, 1, 0], [2, 0, 0]],
                          [[2, 2, 3], [2, 2, 2], [1, 0, 2]]])

    def pairs(grid):
        rows, cols = len(grid), len(grid[0])
        return ([(grid[i][j], grid[i][j + 1]) for i in range(rows) for j in range(cols - 1)]
                + [(grid[i][j], grid[i + 1][j]) for i in range(rows - 1) for j in range(cols)])

    seen = Counter(p for grid in train.tolist() for p in pairs(grid))
    total = sum(seen.values()) + k * k
    asked = [p for grid in grids.tolist() for p in pairs(grid)]
    _require(any(p not in seen for p in asked), "pair bits: a pair never seen in training",
             "fig-vq-samples", "the test grids only hold seen pairs")
    by_hand = sum(-math.log2((seen[p] + 1) / total) for p in asked) / len(asked)
    got = pair_bits(grids, train, k)
    _require_close(got, by_hand, "pair bits = mean -log2 of add-one smoothed pair frequencies",
                   "fig-vq-samples", rtol=1e-12)
    return {"bits": got, "pairs": len(asked)}


# ------------------------------------------- the k-means start and restarts
def _blobs(n_per: int = 12, seed: int = 12):
    """Points (M, 2) around four centres far apart."""
    import torch

    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]], dtype=torch.float64)
    return (centres.repeat_interleave(n_per, 0)
            + 0.3 * torch.randn(4 * n_per, 2, generator=g, dtype=torch.float64))


def _as_grid(points):
    """Rows (M, d) as a batch of encoder outputs (M / 4, d, 2, 2)."""
    return points.view(-1, 2, 2, points.shape[1]).permute(0, 3, 1, 2).contiguous()


def _lloyd_fixed_point(points, centroids, identity: str) -> None:
    """Each centroid that some point is nearest to is the mean of those
    points (scipy's distances): one more step of Lloyd's algorithm leaves
    the centroids where they are."""
    import numpy as np
    from scipy.spatial.distance import cdist

    p, c = np.asarray(points, dtype=float), np.asarray(centroids, dtype=float)
    nearest = cdist(p, c).argmin(axis=1)
    for j in np.unique(nearest):
        _require_close(c[j], p[nearest == j].mean(axis=0), identity, "sec-q-codebook",
                       rtol=1e-6, atol=1e-9)


def kmeans_start_check() -> dict:
    """k-means (:func:`models.quantizer.kmeans`) ends at a fixed point of
    Lloyd's algorithm on four clusters, starts from K distinct rows, and with
    as many codes as distinct points puts one code on each point; a quantizer with the k-means start
    leaves its codebook alone in an evaluation pass, puts it on the k-means
    centroids of the first training batch, does not redo it on the next, and
    under the EMA update the first step keeps the codes on those centroids
    (each is the mean of the vectors that choose it)."""
    import torch

    from ..models.quantizer import VectorQuantizer, kmeans

    points = _blobs()
    with _seeded(13):
        centroids = kmeans(points, 4)
    _lloyd_fixed_point(points, centroids, "k-means: each centroid is the mean of its points")
    few = points[::8][:6]
    for seed in (14, 15, 16):
        with _seeded(seed):
            start = kmeans(few, len(few), iterations=0)
            one_each = kmeans(few, len(few))
        for got, what in ((start, "starts from K distinct rows"),
                          (one_each, "with as many codes as points puts one code on each")):
            _require(sorted(map(tuple, got.tolist())) == sorted(map(tuple, few.tolist())),
                     f"k-means {what}", "sec-q-codebook",
                     f"codes {got.tolist()} for the points {few.tolist()}")

    out = {}
    for update in ("loss", "ema"):
        with _seeded(15):
            vq = VectorQuantizer(4, 2, update=update, init="kmeans").double()
        start = vq.codebook.detach().clone()
        first, second = _as_grid(points), _as_grid(_blobs(seed=16))
        vq.eval()
        with torch.no_grad():
            vq(first)
        _require(torch.equal(vq.codebook.detach(), start) and not bool(vq.initialised),
                 "the k-means start waits for the first training batch", "sec-q-codebook",
                 "an evaluation pass changed the codebook")
        vq.train()
        with torch.no_grad(), _seeded(17):
            vq(first)
        with _seeded(17):
            expected = kmeans(points, 4)
        name = f"the k-means start ({update} update): the codes are the first batch's centroids"
        _require_close(vq.codebook.detach(), expected, name, "sec-q-codebook",
                       rtol=1e-4 if update == "ema" else 0, atol=1e-6 if update == "ema" else 0)
        _lloyd_fixed_point(points, vq.codebook.detach(), name)
        after_first = vq.codebook.detach().clone()
        if update == "loss":
            with torch.no_grad(), _seeded(18):
                vq(second)
            _require(torch.equal(vq.codebook.detach(), after_first), "the k-means start happens once",
                     "sec-q-codebook", "the second training batch moved the codebook")
        out[update] = vq.codebook.detach().tolist()
    return out


def dead_code_restart_check(patience: int = 3, seed: int = 21) -> dict:
    """A quantizer with restarts and one code far from every encoder output:
    the code's idle counter counts the training steps it went unchosen;
    evaluation passes restart nothing; the training step after ``patience``
    idle steps moves it (and only it) onto an encoder output of that batch,
    where it is chosen at once and its idle counter is 0. Under the EMA
    update the restarted code's moving averages are reset with it, so that
    step's EMA update leaves it between that output and the mean of the
    vectors that chose it, and the next steps on that batch keep choosing it.
    (Restarts draw from torch's generator: seeded here.)"""
    import torch

    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0], [40.0, -40.0]],
                           dtype=torch.float64)
    batches = [_as_grid(_blobs(n_per=6, seed=20 + i)) for i in range(patience + 1)]
    out = {}
    for update in ("loss", "ema"):
        with _seeded(seed):
            out[update] = _restart_scenario(update, patience, centres, batches)
    return out


def _restart_scenario(update: str, patience: int, centres, batches) -> list:
    """:func:`dead_code_restart_check` for one codebook update; returns
    where the restarted code (the last one) ends."""
    import torch

    from ..models.quantizer import VectorQuantizer

    vq = VectorQuantizer(len(centres), 2, update=update, restart_dead=True,
                         patience=patience).double()
    with torch.no_grad():
        vq.codebook.copy_(centres)
        vq.ema_sum.copy_(centres)
    far = len(centres) - 1
    vq.train()
    for step in range(patience):
        with torch.no_grad():
            q = vq(batches[step])
        _require(int(vq.idle_steps[far]) == step + 1 and int(vq.idle_steps[:far].max()) == 0,
                 "the idle counters count the steps a code went unchosen", "sec-vq-usage",
                 f"after step {step + 1}: {vq.idle_steps.tolist()} "
                 f"(codes {q.codes.unique().tolist()})")
    before = vq.codebook.detach().clone()
    vq.eval()
    with torch.no_grad():
        vq(batches[patience])
    _require(torch.equal(vq.codebook.detach(), before) and int(vq.idle_steps[far]) == patience,
             "an evaluation pass restarts nothing", "sec-vq-usage",
             f"idle {vq.idle_steps.tolist()}, code {far} at {vq.codebook[far].tolist()}")
    vq.train()
    with torch.no_grad():
        q = vq(batches[patience])
    flat = batches[patience].permute(0, 2, 3, 1).reshape(-1, 2)
    name = f"a dead code is restarted after {patience} idle steps ({update} update)"
    _require(int(vq.last_restarts) == 1 and int(vq.restarts_total) == 1, name, "sec-vq-usage",
             f"{int(vq.last_restarts)} restarted now, {int(vq.restarts_total)} in all")
    _require(bool((q.codes == far).any()) and int(vq.idle_steps.max()) == 0, name,
             "sec-vq-usage", f"codes chosen {q.codes.unique().tolist()}, "
             f"idle {vq.idle_steps.tolist()}")
    moved = vq.codebook.detach()[far]
    if update == "loss":
        on_output = bool((flat == moved).all(dim=1).any())
        _require(on_output and torch.equal(vq.codebook.detach()[:far], before[:far]), name,
                 "sec-vq-usage", f"code {far} moved from {before[far].tolist()} to "
                 f"{moved.tolist()}, not onto an encoder output (or another code moved)")
        return moved.tolist()
    chose = flat[q.codes.reshape(-1) == far]
    mean = chose.mean(0)
    gap = min(_segment_residual(moved, x, mean) for x in chose)
    _require(gap < 1e-4, name + ": its EMA state was reset with it", "sec-vq-usage",
             f"code {far} at {moved.tolist()} is {gap:.3g} away from every segment between "
             f"an output that chose it and their mean {mean.tolist()}")
    for _ in range(2):                      # the same batch again
        with torch.no_grad():
            q = vq(batches[patience])
        _require(bool((q.codes == far).any()) and int(vq.last_restarts) == 0,
                 "the next EMA steps keep the restarted code in use", "sec-vq-usage",
                 f"codes chosen {q.codes.unique().tolist()}, code {far} at "
                 f"{vq.codebook[far].tolist()}, {int(vq.last_restarts)} restarts")
    return vq.codebook.detach()[far].tolist()


def _segment_residual(point, a, b) -> float:
    """Distance from ``point`` to the segment between ``a`` and ``b``."""
    import torch

    d = b - a
    t = 0.0 if float(d @ d) == 0 else float(((point - a) @ d) / (d @ d))
    return float(torch.linalg.norm(point - (a + min(1.0, max(0.0, t)) * d)))

