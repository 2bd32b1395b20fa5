"""The training loop: resume, NaN guard, evaluation."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from autoencoders.derivations.upkeep import raise_at_step
from autoencoders.models import VAE
from autoencoders.train import TrainingDiverged, evaluate, fit


def _data(n=96):
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)


def _model():
    torch.manual_seed(0)
    return VAE((1, 28, 28), latent_dim=4, arch="linear", kl_weight=0.1)  # samples noise


KW = dict(epochs=3, batch_size=16, lr=1e-2, seed=3, device="cpu", progress=False)


class Stop(Exception):
    pass


_interrupt_at = raise_at_step  # the build-time resume check uses the same hook


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _assert_same_epochs(got: list[dict], expected: list[dict]):
    """Every key of every epoch's metrics equal within pytest.approx's default
    tolerance. One approx per epoch: pytest.approx of a list of dicts raises
    TypeError (nested data) from pytest 9.2 on."""
    assert len(got) == len(expected), f"{len(got)} epochs, expected {len(expected)}"
    for epoch, (g, e) in enumerate(zip(got, expected)):
        assert g.keys() == e.keys(), f"epoch {epoch}: keys {sorted(g)} != {sorted(e)}"
        for key in e:
            assert g[key] == pytest.approx(e[key]), f"epoch {epoch}, {key!r}"


def test_a_run_interrupted_and_resumed_ends_with_the_same_weights(tmp_path):
    x = _data()
    reference = _model()
    ref_history = fit(reference, x, **KW)

    resumed, ckpt = _model(), tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(resumed, x, checkpoint=ckpt, on_step=_interrupt_at(8, KeyboardInterrupt()), **KW)
    assert ckpt.is_file()
    assert not _same_weights(resumed, reference)  # the interrupted run is not done
    fresh = _model()  # a new process: new model object, state from the checkpoint
    history = fit(fresh, x, checkpoint=ckpt, **KW)
    assert _same_weights(fresh, reference)
    _assert_same_epochs(history.epochs, ref_history.epochs)


def test_a_hard_crash_resumes_from_the_last_periodic_checkpoint(tmp_path):
    x = _data()
    reference = _model()
    fit(reference, x, **KW)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Stop):  # not a KeyboardInterrupt: nothing saved at the crash
        fit(_model(), x, checkpoint=ckpt, checkpoint_every=5, on_step=_interrupt_at(17, Stop()), **KW)
    state = torch.load(ckpt, weights_only=True)
    # 6 steps an epoch; the last save before step 17 was at step 15 = epoch 3, batch 3
    assert (state["epoch"], state["step"]) == (2, 3)
    fresh = _model()
    fit(fresh, x, checkpoint=ckpt, checkpoint_every=5, **KW)
    assert _same_weights(fresh, reference)


class _Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.calls = 0

    def loss_terms(self, x, y=None):
        self.calls += 1
        bad = torch.tensor(float("nan")) if self.calls == 3 else torch.tensor(1.0)
        recon = (self.w * x.mean()).sum()
        return {"loss": recon * bad, "recon": recon, "kl": bad}


def test_a_nan_loss_stops_training_with_the_step_and_terms():
    with pytest.raises(TrainingDiverged) as err:
        fit(_Exploding(), _data(64), epochs=1, batch_size=16, lr=0.1, device="cpu", progress=False)
    message = str(err.value)
    assert "step 3" in message and "recon=" in message and "kl=nan" in message


def test_training_lowers_the_loss_and_evaluation_is_repeatable():
    from autoencoders import data

    x = data.load("mnist", "test").subset(256).images
    model = _model()
    before = evaluate(model, x)
    history = fit(model, x, epochs=4, batch_size=32, lr=3e-3, device="cpu", progress=False)
    after = evaluate(model, x)
    assert after["loss"] < before["loss"]
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    assert evaluate(model, x) == after  # fixed seed: the same sampled noise
    assert history.examples == 4 * 256 and history.examples_per_second > 0


@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_mixed_precision_trains_like_float32_and_keeps_float32_weights(arch, monkeypatch):
    """The bfloat16 autocast path (AUTOENCODERS_AMP=1, meant for GPUs) runs on
    the CPU too: it must lower the loss about as much as the float32 path
    and leave the weights in float32."""
    from autoencoders import data

    x = data.load("mnist", "test").subset(256).images
    after = {}
    for amp in ("0", "1"):
        monkeypatch.setenv("AUTOENCODERS_AMP", amp)
        torch.manual_seed(0)
        model = VAE((1, 28, 28), latent_dim=4, arch=arch, kl_weight=0.1)
        before = evaluate(model, x)["loss"]
        fit(model, x, epochs=3, batch_size=32, lr=3e-3, device="cpu", progress=False)
        after[amp] = evaluate(model, x)["loss"]
        assert after[amp] < before
        assert all(v.dtype == torch.float32 for v in model.state_dict().values())
    assert after["1"] == pytest.approx(after["0"], rel=0.05)
    assert after["1"] != after["0"]  # the switch did change the arithmetic


def test_the_loop_reads_the_device_once_per_window_not_once_per_step(monkeypatch):
    """GPU-ready: the loss terms stay on the device and are read in one
    transfer every ``sync_every`` steps and at each epoch's end; no ``.item()``
    per step (on CUDA each would make the host wait for the device)."""
    calls = {"item": 0, "cpu": 0}
    for name in calls:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    model = VAE((1, 28, 28), latent_dim=4, arch="linear", kl_weight=0.1)
    history = fit(model, _data(96), epochs=2, batch_size=8, lr=1e-3, device="cpu",
                  progress=False, sync_every=5, log_every=3)
    # 12 steps an epoch: reads after steps 5 and 10 and at the epoch's end
    assert calls == {"item": 0, "cpu": 2 * 3}
    assert [s["step"] for s in history.steps] == list(range(3, 25, 3))
    assert len(history.epochs) == 2 and history.seconds > 0


def test_windowed_reads_give_the_same_history_as_reading_every_step():
    x = _data()
    per_step, windowed = _model(), _model()
    a = fit(per_step, x, sync_every=1, log_every=1, **KW)
    b = fit(windowed, x, sync_every=7, log_every=1, **KW)
    assert _same_weights(per_step, windowed)
    assert a.steps == b.steps
    _assert_same_epochs(b.epochs, a.epochs)


def test_a_checkpoint_that_cannot_be_written_warns_and_training_goes_on(tmp_path, monkeypatch):
    """A full disk (or a folder gone read-only) at a checkpoint: one warning,
    then the run trains on without checkpoints and ends as an uncheckpointed
    run would."""
    import autoencoders.train as train_mod
    from autoencoders.atomic import DiskFullError

    def full(state, path):
        raise DiskFullError(path)
    monkeypatch.setattr(train_mod, "atomic_save", full)
    x, reference = _data(), _model()
    fit(reference, x, **KW)
    model = _model()
    with pytest.warns(UserWarning, match="cannot write the checkpoint .*disk is full"):
        fit(model, x, checkpoint=tmp_path / "ckpt.pt", checkpoint_every=5, **KW)
    assert _same_weights(model, reference)
    assert not (tmp_path / "ckpt.pt").exists()
