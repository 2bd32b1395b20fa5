"""Build-time checks of the package's upkeep: the code around the
objectives that decides what a training run does, each on a tiny model
against an answer found another way.

* the KL warm-up (:meth:`VAE.kl_scale`, :meth:`Config.kl_warmup_steps`): the
  KL weight of every step of a real training run (:func:`train.fit`) against
  a ramp over the share of the steps the trainer was *seen* to take, and the
  objective recomputed from torch's distributions, in training and in
  evaluation;
* free bits (:meth:`VAE.kl_penalty`): the penalty and its gradient against
  torch's Gaussian KL per unit, floored by numpy, and the objective that uses it;
* the learning-rate schedules (:func:`train.learning_rate`) against torch's
  own schedulers, and the rate the trainer really applies at each step,
  read off a parameter that Adam moves by exactly the learning rate;
* batching: every image once per epoch, a new order each epoch, and epoch
  averages that are the average over images;
* the NaN guard: an infinite or NaN loss stops the run naming its step;
* resume: a run interrupted (Ctrl-C, or a crash after a checkpoint) and
  resumed ends with the very weights and history of an uninterrupted run;
* the claims' strict switch (:mod:`autoencoders.claims`): a false claim
  fails the build in ``quick`` and ``full`` and only warns in ``smoke``.
"""
from __future__ import annotations

import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

from .checks import _captured_io, _require, _require_close, _seeded

_SHAPE = (1, 4, 4)
_COLLAPSE = "sec-q-collapse"     # the questions chapter shows VAE.kl_scale and VAE.kl_penalty
_TRAINING = None                  # the training loop has no equation of its own
_SCHEDULE = "chap-vae-mnist"      # where the chapters name train.learning_rate


def _put(name: str, value: str | None) -> None:
    """Set (a string) or unset (None) one environment variable."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def _environment(**values):
    """Set (a string) or unset (None) environment variables for the block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            _put(k, v)
        yield
    finally:
        for k, v in old.items():
            _put(k, v)


def _images(n: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *_SHAPE), generator=g, dtype=torch.uint8)


def _fit(model, inputs, **kwargs):
    """:func:`train.fit` on the CPU, quietly, in full precision, leaving
    torch's global random state as it was (the trainer seeds it)."""
    import torch

    from ..train import fit

    options = dict(epochs=2, batch_size=8, lr=1e-3, seed=0, device="cpu", progress=False,
                   amp=False, log_every=1)
    options.update(kwargs)
    with torch.random.fork_rng(devices=[]):
        return fit(model, inputs, **options)


@contextmanager
def _captured_code(model):
    """Keep the encoder's (mu, logvar) and the decoder's input z of the next
    forward pass of a VAE."""
    with _captured_io(model, "code", "z") as seen:
        yield seen
    seen["mu"], seen["logvar"] = seen["code"].chunk(2, dim=1)


def _kl_per_unit(mu, logvar):
    """KL(N(mu, sigma^2) || N(0, 1)) per example and unit, by torch.distributions."""
    import torch
    from torch.distributions import Normal, kl_divergence

    return kl_divergence(Normal(mu, (0.5 * logvar).exp()),
                         Normal(torch.zeros_like(mu), torch.ones_like(mu)))


def _objective(model, x, seen, kl_charge, weight):
    """The VAE's Gaussian objective recomputed from the captured z: the mean
    squared error of the decoded z plus ``weight`` times ``kl_charge``."""
    import torch

    mse = (torch.sigmoid(model.decoder(seen["z"])) - x).pow(2).mean()
    return mse + weight * kl_charge


# ----------------------------------------------------------- the KL warm-up
def kl_warmup_check() -> dict:
    """A VAE with a KL warm-up over 40 % of its steps, trained by the real
    trainer: step s (1-based) uses the KL weight kl_weight * min(1, (s - 1) / W),
    where W = round(0.4 * the steps the trainer took); the objective in
    training is the reconstruction plus that weight times the KL (recomputed
    from torch's distributions at the same draw of z), evaluation uses the full
    weight at any point of the warm-up, and evaluation passes do not advance it."""
    import torch

    from ..config import Config
    from ..models import build_model

    n, batch, epochs, share, beta = 44, 8, 2, 0.4, 0.5
    config = Config("check-kl-warmup", "vae", arch="linear", latent_dim=2, kl_weight=beta,
                    kl_warmup=share, epochs=epochs, batch_size=batch)
    inputs = _images(n, seed=1)
    with _seeded(0):
        model = build_model(config, _SHAPE, n).double()
    history = _fit(model, inputs.double() / 255, epochs=epochs, batch_size=batch, sync_every=5)
    taken = len(history.steps)
    _require(taken == epochs * -(-n // batch), "the trainer takes ceil(N / batch) steps per epoch",
             _COLLAPSE, f"{taken} steps for {n} images, batches of {batch}, {epochs} epochs")
    ramp = round(share * taken)
    got = [row["kl_weight_now"] for row in history.steps]
    expected = [beta * min(1.0, (s - 1) / ramp) for s in range(1, taken + 1)]
    _require_close(got, expected, f"KL warm-up: step s has weight beta min(1, (s-1)/{ramp})",
                   _COLLAPSE, rtol=1e-6, atol=1e-9)

    # the objective at one point of the warm-up, in training and in evaluation
    x = inputs[:6].double() / 255
    with _seeded(2):
        model = build_model(config, _SHAPE, n).double()
    model.steps_taken.fill_(2)
    model.train()
    with _captured_code(model) as seen, _seeded(3):
        terms = model.loss_terms(x)
    kl = _kl_per_unit(seen["mu"], seen["logvar"]).sum(-1).mean()
    _require_close(terms["loss"], _objective(model, x, seen, kl, beta * 2 / ramp),
                   "KL warm-up: the training objective uses the warmed-up weight",
                   _COLLAPSE, rtol=1e-7)      # the ramp is a float32 tensor
    _require(int(model.steps_taken) == 3, "KL warm-up: a training pass is one step",
             _COLLAPSE, f"steps_taken went from 2 to {int(model.steps_taken)}")
    model.eval()
    with _captured_code(model) as seen, torch.no_grad(), _seeded(3):
        terms = model.loss_terms(x)
    kl = _kl_per_unit(seen["mu"], seen["logvar"]).sum(-1).mean()
    _require_close(terms["loss"], _objective(model, x, seen, kl, beta),
                   "KL warm-up: evaluation uses the full KL weight", _COLLAPSE, rtol=1e-10)
    _require(int(model.steps_taken) == 3, "KL warm-up: evaluation does not advance the warm-up",
             _COLLAPSE, f"steps_taken went from 3 to {int(model.steps_taken)}")
    return {"steps": taken, "warmup_steps": ramp, "weights": got}


# ---------------------------------------------------------------- free bits
def free_bits_check(floor: float = 0.3) -> dict:
    """The free-bits penalty sum_u max(floor, KL_u), with KL_u the unit's KL
    averaged over the batch (torch.distributions, floored with numpy); its
    gradient is zero for the units under the floor and the batch-averaged
    KL's gradient for the others; and the VAE's objective charges it."""
    import numpy as np
    import torch

    from ..models import VAE

    mu = torch.tensor([[0.05, 1.2, -0.3, 0.0], [-0.1, 0.8, 0.6, 0.02], [0.0, 1.5, -0.9, -0.03]],
                      dtype=torch.float64)
    logvar = torch.tensor([[-0.1, -1.0, 0.2, 0.05], [0.1, -1.5, -0.4, -0.02],
                           [0.05, -0.8, 0.1, 0.0]], dtype=torch.float64)
    per_unit = _kl_per_unit(mu, logvar).mean(dim=0)
    under = per_unit.numpy() < floor
    _require(under.any() and not under.all(), "free bits: the test has units on both sides",
             _COLLAPSE, f"batch-averaged KL per unit {per_unit.tolist()}")
    expected = float(np.maximum(per_unit.numpy(), floor).sum())
    with _seeded(4):
        model = VAE(_SHAPE, latent_dim=4, arch="linear", kl_weight=0.1, free_bits=floor).double()
    m, lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    penalty = model.kl_penalty(m, lv)
    _require_close(penalty, expected, "free bits: sum over units of max(floor, batch-mean KL)",
                   _COLLAPSE, rtol=1e-10)
    g_mu, g_lv = torch.autograd.grad(penalty, (m, lv))
    m2, lv2 = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    charged = _kl_per_unit(m2, lv2).mean(dim=0)[torch.from_numpy(~under)].sum()
    e_mu, e_lv = torch.autograd.grad(charged, (m2, lv2))
    _require_close(torch.cat([g_mu, g_lv]), torch.cat([e_mu, e_lv]),
                   "free bits: units under the floor get no gradient, the others the KL's",
                   _COLLAPSE, rtol=1e-10, atol=1e-14)

    x = _images(5, seed=3).double() / 255
    with _seeded(4):
        model = VAE(_SHAPE, latent_dim=4, arch="linear", kl_weight=0.1, free_bits=floor).double()
    model.train()
    with _captured_code(model) as seen, _seeded(5):
        terms = model.loss_terms(x)
    unit_kl = _kl_per_unit(seen["mu"], seen["logvar"])
    charge = float(np.maximum(unit_kl.mean(dim=0).detach().numpy(), floor).sum())
    _require_close(terms["loss"], _objective(model, x, seen, charge, 0.1),
                   "free bits: the objective is the reconstruction plus beta times the penalty",
                   _COLLAPSE, rtol=1e-10)
    _require_close(terms["kl"], unit_kl.sum(-1).mean(), "free bits: the reported KL is the whole KL",
                   _COLLAPSE, rtol=1e-10)
    return {"penalty": float(penalty.detach()), "units_under_floor": int(under.sum())}


# ------------------------------------------------------ learning-rate schedule
def _torch_schedule(schedule: str, lr: float, total: int) -> list[float]:
    """The learning rate of each of ``total`` steps by torch's own schedulers:
    cosine annealing to 0 over the run, or a linear warm-up over the first
    5 % of the steps (at least one) followed by cosine annealing."""
    import torch
    from torch.optim import lr_scheduler as S

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    if schedule == "cosine":
        sched = S.CosineAnnealingLR(opt, T_max=total)
    else:
        warm = max(1, total // 20)
        first = S.LinearLR(opt, start_factor=1 / warm, end_factor=1.0, total_iters=warm - 1)
        sched = S.SequentialLR(opt, [first, S.CosineAnnealingLR(opt, T_max=total - warm)],
                               milestones=[warm])
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # SequentialLR's own deprecation notices
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def _probe():
    """A model with one float64 parameter w and the loss w: Adam's gradient
    is 1 at every step, so every step moves w by exactly the learning rate
    (up to Adam's eps)."""
    import torch
    from torch import nn

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros((), dtype=torch.float64))

        def loss_terms(self, x, y=None):
            return {"loss": self.w + 0 * x.sum()}

    return Probe()


def learning_rate_check(lr: float = 0.01) -> dict:
    """:func:`train.learning_rate` against torch's schedulers (CosineAnnealingLR,
    and a linear warm-up then cosine through SequentialLR) for several run
    lengths; and the rate :func:`train.fit` applies at each step, read off a
    parameter that Adam moves by exactly the learning rate."""
    import torch

    from ..train import learning_rate

    worst = 0.0
    for schedule in ("cosine", "warmup-cosine"):
        for total in (7, 40, 101):
            ours = [learning_rate(schedule, lr, s, total) for s in range(total)]
            worst = max(worst, _require_close(ours, _torch_schedule(schedule, lr, total),
                                              f"the {schedule} learning-rate schedule",
                                              _SCHEDULE, rtol=1e-9, atol=1e-15))
    _require(all(learning_rate("constant", lr, s, 50) == lr for s in range(50)),
             "the constant learning-rate schedule", _SCHEDULE, "the rate varies")
    # what the trainer applies: w moves by -lr_t / (1 + 1e-8) at step t
    inputs = torch.zeros(30, 1, dtype=torch.float64)
    for schedule in ("constant", "warmup-cosine"):
        probe, path = _probe(), []
        _fit(probe, inputs, epochs=3, batch_size=7, lr=lr, lr_schedule=schedule,
             on_step=lambda s: path.append(float(probe.w.detach())))
        moves = -torch.diff(torch.tensor([0.0] + path, dtype=torch.float64)) * (1 + 1e-8)
        total = 3 * math.ceil(30 / 7)
        expected = [lr] * total if schedule == "constant" else _torch_schedule(schedule, lr, total)
        _require_close(moves, expected, f"the trainer applies the {schedule} schedule step by step",
                       _SCHEDULE, rtol=1e-6)
    return {"largest_difference": worst}


# --------------------------------------------------- batching and NaN guard
def _recorder(bad_step: int | None = None, bad: float = math.inf):
    """A model that records the inputs of every training step; its loss is
    the batch mean of its inputs (plus 0 x w, so there is a gradient), or
    ``bad`` at step ``bad_step``."""
    import torch
    from torch import nn

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros((), dtype=torch.float64))
            self.seen = []

        def loss_terms(self, x, y=None):
            self.seen.append(x.detach().clone().reshape(-1))
            value = x.mean()
            if len(self.seen) == bad_step:
                value = value * 0 + bad
            return {"loss": self.w * 0 + value, "mean": x.mean()}

    return Recorder()


def batching_check() -> dict:
    """Every epoch of :func:`train.fit` trains on every image exactly once,
    in an order that changes from epoch to epoch (:func:`train.batches`, the
    same for the same seed and epoch); an epoch's logged average of a term
    is its average over the images; and a loss that becomes infinite or NaN
    stops the run with :class:`train.TrainingDiverged` naming that step."""
    import torch

    from ..train import TrainingDiverged, batches

    n, batch, epochs = 23, 5, 3
    inputs = torch.arange(n, dtype=torch.float64).view(n, 1)
    rec = _recorder()
    history = _fit(rec, inputs, epochs=epochs, batch_size=batch, sync_every=50)
    per_epoch = math.ceil(n / batch)
    _require(len(rec.seen) == epochs * per_epoch, "the trainer's batches", _TRAINING,
             f"{len(rec.seen)} steps, expected {epochs} epochs of {per_epoch}")
    orders = []
    for e in range(epochs):
        order = torch.cat(rec.seen[e * per_epoch:(e + 1) * per_epoch]).long()
        _require(sorted(order.tolist()) == list(range(n)), "every image once per epoch",
                 _TRAINING, f"epoch {e + 1} trained on {sorted(order.tolist())}")
        orders.append(order.tolist())
        _require_close(history.epochs[e]["mean"], (n - 1) / 2,
                       "an epoch's average of a term is its average over the images",
                       _TRAINING, rtol=1e-6)      # the trainer logs float32 terms
    _require(len({tuple(o) for o in orders}) == epochs, "a new order every epoch",
             _TRAINING, f"orders {orders}")
    again = [b.tolist() for b in batches(n, batch, 1, 0, torch.device("cpu"))]
    _require(sum(again, []) == orders[1], "the same seed and epoch give the same batches",
             _TRAINING, "a resumed run would see other batches")
    other = sum((b.tolist() for b in batches(n, batch, 1, 1, torch.device("cpu"))), [])
    _require(other != orders[1], "another seed gives other batches", _TRAINING,
             "the seed does not reach the order")

    stopped = {}
    for bad, step in ((math.inf, 4), (-math.inf, 7), (math.nan, 9)):
        try:
            _fit(_recorder(bad_step=step, bad=bad), inputs, epochs=epochs, batch_size=batch)
        except TrainingDiverged as err:
            stopped[str(bad)] = str(err)
            _require(f"at step {step} " in str(err), "the NaN guard names the first bad step",
                     _TRAINING, f"loss {bad} at step {step}: {err}")
        else:
            raise_detail = f"a loss of {bad} at step {step} did not stop the run"
            _require(False, "the NaN guard stops a run whose loss is not finite",
                     _TRAINING, raise_detail)
    return {"orders": orders, "stopped": stopped}


# ------------------------------------------------------------------ resume

def raise_at_step(step: int, error: BaseException):
    """An ``on_step`` hook for :func:`train.fit` that raises ``error`` when the
    trainer reaches global step ``step``: an interruption at a known place."""
    def on_step(global_step):
        if global_step == step:
            raise error
    return on_step


def resume_check() -> dict:
    """A VAE (with a KL warm-up, so a buffer counts steps) trained for two
    epochs without a checkpoint, and the same run interrupted twice and
    resumed from its checkpoint each time: by Ctrl-C in the middle of an
    epoch, and by a crash just after a periodic checkpoint. All three end
    with the same weights, the same per-epoch averages and the same logged
    steps."""
    from ..models import VAE

    inputs = _images(30, seed=5)
    options = dict(epochs=2, batch_size=8, lr=1e-2, seed=3, checkpoint_every=3)

    def fresh():
        with _seeded(6):
            return VAE(_SHAPE, latent_dim=2, arch="linear", kl_weight=0.05, kl_warmup=5)

    reference = fresh()
    ref = _fit(reference, inputs, **options)

    class Crash(Exception):
        pass

    results = {}
    with tempfile.TemporaryDirectory(prefix="resume-check-") as tmp:
        for how, step, error in (("ctrl-c", 5, KeyboardInterrupt), ("crash", 3, Crash)):
            checkpoint = Path(tmp) / f"{how}.pt"
            try:
                _fit(fresh(), inputs, checkpoint=checkpoint, on_step=raise_at_step(step, error()),
                     **options)
            except (KeyboardInterrupt, Crash):
                pass
            _require(checkpoint.is_file(), f"an interrupted run ({how}) leaves a checkpoint",
                     _TRAINING, f"no checkpoint after step {step}")
            model = fresh()
            history = _fit(model, inputs, checkpoint=checkpoint, **options)
            name = f"a run interrupted ({how} at step {step}) and resumed = the uninterrupted run"
            for key, value in reference.state_dict().items():
                _require_close(model.state_dict()[key], value, name + f": {key}",
                               _TRAINING, rtol=0, atol=0)
            _require(history.epochs == ref.epochs, name + ": epoch averages", _TRAINING,
                     f"{history.epochs} vs {ref.epochs}")
            _require([r["step"] for r in history.steps] == [r["step"] for r in ref.steps]
                     and history.steps == ref.steps, name + ": logged steps",
                     _TRAINING, f"{len(history.steps)} vs {len(ref.steps)} rows")
            results[how] = step
    return {"interrupted_at": results, "epochs": ref.epochs}


# --------------------------------------------------------- the claim switch
def claims_switch_check() -> dict:
    """:func:`claims.claim` and :func:`claims.check_claims`: in the ``quick``
    and ``full`` profiles a false claim raises ClaimError (numpy's False
    included), in ``smoke`` it warns (ClaimWarning) and returns False; a true
    claim passes silently everywhere; ``strict_claims(profile)`` follows its
    argument over the environment."""
    import numpy as np

    from ..claims import Claim, ClaimError, ClaimWarning, check_claims, claim, strict_claims

    declared = (Claim("check-a", "a exceeds one", lambda n: n["a"] > 1),)
    seen = {}
    with _environment(AUTOENCODERS_CLAIMS_RECORD=None):
        for profile in ("smoke", "quick", "full"):
            strict = profile != "smoke"
            other = "quick" if profile == "smoke" else "smoke"
            with _environment(AUTOENCODERS_PROFILE=other):
                _require(strict_claims(profile) == strict, "strict_claims(profile)", None,
                         f"strict_claims({profile!r}) = {strict_claims(profile)} with the "
                         f"environment at {other!r}")
            with _environment(AUTOENCODERS_PROFILE=profile):
                _require(strict_claims() == strict, "strict_claims() reads the profile",
                         None, f"{profile}: {strict_claims()}")
                for false in (False, np.bool_(False), 0):
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        try:
                            returned = claim(false, "a false sentence", number=1)
                            raised = False
                        except ClaimError:
                            returned, raised = None, True
                    warned = any(issubclass(w.category, ClaimWarning) for w in caught)
                    _require(raised == strict and warned == (not strict)
                             and returned is (None if strict else False),
                             "a false claim fails the build outside smoke and warns in smoke",
                             None, f"{profile}, claim({false!r}): raised {raised}, "
                             f"warned {warned}, returned {returned!r}")
                    seen[profile] = "raises" if raised else "warns"
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    ok = claim(np.bool_(True), "a true sentence")
                    held = check_claims(declared, {"a": 2})
                _require(ok is True and held == {"check-a": True} and not caught,
                         "a true claim passes silently", None,
                         f"{profile}: {ok!r}, {held}, {len(caught)} warnings")
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        held, raised = check_claims(declared, {"a": 0}), False
                    except ClaimError:
                        held, raised = None, True
                _require(raised == strict and (strict or held == {"check-a": False}),
                         "check_claims: a false claim fails the build outside smoke",
                         None, f"{profile}: raised {raised}, returned {held}")
    return seen
