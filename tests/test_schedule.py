"""The learning-rate schedules of the trainer."""
from __future__ import annotations

import math

import pytest
import torch

from autoencoders.models import VAE
from autoencoders.train import fit, learning_rate


def test_the_schedules_start_peak_and_end_where_they_should():
    total = 200
    assert all(learning_rate("constant", 1e-3, s, total) == 1e-3 for s in range(total))
    warm = [learning_rate("warmup-cosine", 4e-3, s, total) for s in range(total)]
    assert warm[0] == pytest.approx(4e-3 / 10)           # 5% of 200 = 10 warm-up steps
    assert max(warm) == pytest.approx(4e-3) and warm.index(max(warm)) == 9
    assert all(a >= b for a, b in zip(warm[9:], warm[10:]))  # then it only decays
    assert warm[-1] < 1e-5
    cos = [learning_rate("cosine", 1.0, s, total) for s in range(total)]
    assert cos[0] == 1.0 and cos[total // 2] == pytest.approx(0.5) and cos[-1] < 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate("linear", 1e-3, 0, 10)


def test_a_scheduled_run_resumes_on_the_same_schedule(tmp_path):
    x = torch.rand(64, 1, 28, 28)

    def run(stop_at=None, checkpoint=None):
        torch.manual_seed(0)
        model = VAE((1, 28, 28), 4, "conv", kl_weight=1.0, likelihood="bernoulli")

        def interrupt(step):
            if step == stop_at:
                raise KeyboardInterrupt
        fit(model, x, epochs=3, batch_size=16, lr=4e-3, device="cpu", progress=False,
            checkpoint=checkpoint, on_step=interrupt if stop_at else None,
            lr_schedule="warmup-cosine")
        return model

    reference = run()
    with pytest.raises(KeyboardInterrupt):
        run(stop_at=5, checkpoint=tmp_path / "ck.pt")
    resumed = run(checkpoint=tmp_path / "ck.pt")
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert not math.isnan(float(next(iter(resumed.state_dict().values())).sum()))
