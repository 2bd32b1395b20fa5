"""The benchmark's arithmetic (the measurements themselves are not tests)."""
from __future__ import annotations

from pathlib import Path

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


def test_run_writes_json_and_markdown_with_every_book_build(tmp_path, monkeypatch):
    calls = []

    def fake_child(task, arg="", steps=30):
        calls.append((task, arg))
        if task == "throughput":
            return {"images_per_second": 1000.0, "batch_size": 8, "parameters": 1, "peak_mb": 1.0}
        if task == "flops":
            return {"experiments": {}}
        if task == "book":
            return {"wall_seconds": 1.0, "ok": True, "peak_mb_largest_process": 2.0,
                    "chapter_seconds": {"intro": 0.5}}
        return {"images_per_second": {"a": 1.0, "b": 2.0}, "ratio": 2.0}

    monkeypatch.setattr(bench, "_run_child", fake_child)
    out = tmp_path / "results"
    results = bench.run(out, book=True, experiments_too=False, work=tmp_path / "work")
    assert (out / "bench.json").is_file() and "| intro |" in (out / "bench.md").read_text()
    assert len(results["book"]) == 4
    books = [arg.split("|") for task, arg in calls if task == "book"]
    assert [b[0] for b in books] == ["smoke", "quick", "quick", "quick"]
    assert books[1][1] == books[2][1] == books[3][1]   # the quick builds share one model cache
    assert books[1][2] == books[2][2] != books[3][2]   # the last one builds into a new folder


@pytest.mark.parametrize("name", ["ae-conv", "pixelcnn", "q-vae-kl0.01-warmup"])
def test_training_flops_counts_image_and_code_grid_models(name, fresh_cache):
    """The full estimate's FLOP count runs for a model of images, for the
    prior over integer code grids (whose inputs must stay integers) and for
    a VAE whose KL warm-up needs the run's number of training images."""
    flops = bench.training_flops(name)
    assert flops["flops_per_image"] > 0 and flops["full_steps"] > 0


def test_book_builds_use_this_environments_jupyter_book(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert Path(bench._jupyter_book()).is_file()
