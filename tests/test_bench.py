"""The benchmark's arithmetic (the measurements themselves are not tests)."""
from __future__ import annotations

import pytest

from autoencoders import bench


def test_full_estimate_divides_counted_flops_by_the_measured_family_rate():
    throughput = {"conv AE": {"images_per_second": 100.0}, "VAE": {"error": "failed"}}
    flops = {
        "ae-conv": {"chapter": "autoencoders", "kind": "ae", "flops_per_image": 1e6,
                    "full_images": 1000, "full_steps": 10},
        "ae-other": {"chapter": "autoencoders", "kind": "ae", "flops_per_image": 2e6,
                     "full_images": 500, "full_steps": 4},
        "vae-mnist": {"chapter": "vae_mnist", "kind": "vae", "flops_per_image": 1e6,
                      "full_images": 10, "full_steps": 1},
    }
    est = bench.full_estimate(throughput, flops)
    assert est["flop_rate"] == {"conv AE": pytest.approx(1e8)}  # 100 img/s x 1 MFLOP
    ae = est["chapters"]["autoencoders"]
    assert ae["runs"] == 2 and ae["flops"] == pytest.approx(2e9)
    assert ae["cpu_seconds"] == pytest.approx(20.0)              # 2e9 FLOP / 1e8 FLOP/s
    step_bound = 14 * bench.ASSUMED_GPU_MS_PER_STEP / 1e3         # tiny FLOPs: steps dominate
    assert ae["gpu_seconds_assumed"] == pytest.approx(step_bound)
    assert est["chapters"]["vae_mnist"]["cpu_seconds"] != est["chapters"]["vae_mnist"]["cpu_seconds"]  # no rate: NaN

    text = bench.markdown({"machine": {"cpus": 2, "torch_threads": 2, "device": "cpu", "torch": "x"},
                           "throughput": throughput, "quick_experiment": {}, "full_estimate": est,
                           "book": {"smoke": {"error": "boom"}}})
    assert "| autoencoders | 2 | 0 | 0.0 |" in text and "failed: boom" in text
