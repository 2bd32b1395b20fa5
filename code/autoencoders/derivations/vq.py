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

from contextlib import contextmanager

from .checks import _require, _require_close

_LABEL = "eq-vq-loss"
_SHAPE = (1, 8, 8)


@contextmanager
def _seeded(seed: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


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


@contextmanager
def _captured(model):
    """Keep the encoder's output z_e and the decoder's input z_q of the next
    forward pass, with their gradients."""
    seen = {}

    def keep_out(module, args, out):
        out.retain_grad()
        seen["z_e"] = out

    def keep_in(module, args):
        args[0].retain_grad()
        seen["z_q"] = args[0]

    hooks = [model.encoder.register_forward_hook(keep_out),
             model.decoder.register_forward_pre_hook(keep_in)]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


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
    value = terms["mse"] + terms["codebook"] + beta * terms["commitment"]
    _require_close(terms["loss"], value, "VQ-VAE objective = mse + codebook + beta commitment",
                   _LABEL, rtol=1e-12)
    return {"beta": beta, "codebook_grad_norm": float(vq.codebook.grad.norm())}


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
    _require_close(terms["loss"], terms["mse"] + model.commitment * terms["commitment"],
                   "EMA objective = mse + beta commitment (no codebook term)", "eq-vq-ema",
                   rtol=1e-12)
    # the moving averages of the paper, from the state before the step
    z_e = seen["z_e"].detach()
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
