"""Cached evaluations beside their model, and cache look-ups that never train."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autoencoders import cache, report
from autoencoders.experiments import get_config


def _tiny(**fields):
    return get_config("ae-linear", "smoke", train_size=64, test_size=64, epochs=1, batch_size=32,
                      **fields)


def test_find_cached_never_trains(fresh_cache):
    assert cache.find_cached(_tiny()) is None
    assert not any((fresh_cache / "runs").glob("*/model.pt")) if (fresh_cache / "runs").exists() else True
    trained = cache.get_or_train(_tiny(), progress=False)
    found = cache.find_cached(_tiny())
    assert found is not None and not found.trained and found.path == trained.path


def test_the_results_page_lists_only_what_was_trained(fresh_cache):
    assert report.overview_rows(profile="smoke") == []
    cache.get_or_train(get_config("ae-linear", "smoke"), progress=False)
    rows = report.overview_rows(profile="smoke")
    assert [r["experiment"] for r in rows] == ["ae-linear"]


def test_an_evaluation_is_computed_once_per_model(fresh_cache):
    run = cache.get_or_train(_tiny(), progress=False)
    calls = []

    def compute():
        calls.append(1)
        return {"codes": np.arange(6.0).reshape(2, 3), "mse": np.float64(0.5),
                "rows": [torch.ones(2)], "label": "x"}

    first = cache.cached_evaluation(run, "codes", compute)
    again = cache.cached_evaluation(run, "codes", compute)
    assert len(calls) == 1
    assert torch.equal(again["codes"], torch.arange(6.0, dtype=torch.float64).reshape(2, 3))
    assert again["mse"] == 0.5 and again["label"] == "x" and torch.equal(again["rows"][0], torch.ones(2))
    assert first.keys() == again.keys()


def test_other_evaluation_code_is_computed_again(fresh_cache):
    run = cache.get_or_train(_tiny(), progress=False)

    def compute():
        return {"v": 1}

    def compute_changed():
        return {"v": 2}

    assert cache.cached_evaluation(run, "v", compute)["v"] == 1
    assert cache.cached_evaluation(run, "v", compute_changed)["v"] == 2


def test_a_damaged_evaluation_is_computed_again(fresh_cache):
    run = cache.get_or_train(_tiny(), progress=False)

    def compute():
        return {"v": torch.arange(3)}

    cache.cached_evaluation(run, "v", compute)
    (stored,) = (run.path / "evals").glob("v-*.pt")
    stored.write_bytes(stored.read_bytes()[:20])
    with pytest.warns(UserWarning, match="unreadable"):
        assert torch.equal(cache.cached_evaluation(run, "v", compute)["v"], torch.arange(3))


def test_evaluation_names_are_plain(fresh_cache):
    run = cache.get_or_train(_tiny(), progress=False)
    with pytest.raises(ValueError, match="plain"):
        cache.cached_evaluation(run, "../x", lambda: {})


def test_other_inputs_or_models_are_computed_again(fresh_cache):
    """An evaluation that depends on test images or on a second model is
    computed again when either changes, and read back when neither does."""
    run = cache.get_or_train(_tiny(), progress=False)
    other = cache.get_or_train(_tiny(seed=1), progress=False)
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    x = torch.zeros(4, 1, 28, 28)
    cache.cached_evaluation(run, "scores", compute, inputs=[x])
    cache.cached_evaluation(run, "scores", compute, inputs=[x.clone()])  # same values
    assert len(calls) == 1
    cache.cached_evaluation(run, "scores", compute, inputs=[x + 1])
    assert len(calls) == 2
    cache.cached_evaluation(run, "scores", compute, inputs=[x], also=[other])
    assert len(calls) == 3
    assert cache.cached_evaluation(run, "scores", compute, inputs=[x], also=[other])["n"] == 3


def test_glue_numbers_glues_each_number_under_its_prefix(monkeypatch):
    from autoencoders import book

    glued = {}
    monkeypatch.setattr(book, "glue", lambda name, value, **_: glued.setdefault(name, value))
    book.glue_numbers("q1", {"kl": 2.5, "active": 3})
    assert glued == {"q1_kl": 2.5, "q1_active": 3}


def _fake_analysis_module(tmp_path, helper_body: str, other_body: str = "return 0"):
    """A module of the package (loaded from a file, so its source is there)
    with a helper, an unrelated function, a class, and an evaluation that
    calls the helper from a nested function and uses an instance."""
    import importlib.util
    import sys

    path = tmp_path / f"fake_eval_{abs(hash((helper_body, other_body)))}.py"
    path.write_text(
        "class Scorer:\n"
        "    def __call__(self, x):\n"
        "        return x + 1\n\n\n"
        f"def helper(x):\n    {helper_body}\n\n\n"
        f"def unrelated():\n    {other_body}\n\n\n"
        "def make(scorer):\n"
        "    def compute():\n"
        "        return {'v': helper(scorer(1))}\n"
        "    return compute\n")
    name = f"autoencoders.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_an_evaluations_key_covers_the_helpers_it_calls(tmp_path):
    """code_closure: an edit to a helper the evaluation calls (or to the class
    of an object it captured) changes the key; an edit elsewhere does not."""
    from autoencoders.cache import code_closure

    base = _fake_analysis_module(tmp_path, "return x * 2")
    closure = code_closure(base.make(base.Scorer()))
    assert "def helper" in closure and "class Scorer" in closure and "unrelated" not in closure
    edited = _fake_analysis_module(tmp_path, "return x * 3")
    assert code_closure(edited.make(edited.Scorer())) != closure
    elsewhere = _fake_analysis_module(tmp_path, "return x * 2", other_body="return 1")
    assert code_closure(elsewhere.make(elsewhere.Scorer())) == closure


def test_an_evaluations_key_reads_each_source_once(tmp_path, monkeypatch):
    """code_closure remembers what it read: a second key of the same
    evaluation reads no file (inspect.getsource tokenizes the whole file on
    every call), and gives the same text."""
    import inspect

    from autoencoders.cache import code_closure

    module = _fake_analysis_module(tmp_path, "return x * 5")
    first = code_closure(module.make(module.Scorer()))
    reads = []
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: reads.append(obj) or real(obj))
    assert code_closure(module.make(module.Scorer())) == first
    assert reads == []


def test_the_results_data_line_names_each_source_once_and_the_derived_inputs_apart():
    from autoencoders import report
    cifar = ("CIFAR-10 (train: 10 images, offline: a copy / test: 10 images, offline: a copy)")
    grids = cifar.replace("offline:", "code grids of vqvae on offline:")
    mnist = "MNIST (train: 5 images, offline: digits / test: 10 images, offline: test split)"
    recon = mnist.replace("train: 5 images, offline", "train: 5 images, reconstructions by vae-mnist of offline")
    rows = [{"experiment": name, "data": d, "damaged": None}
            for name, d in [("vqvae", cifar), ("pixelcnn", grids), ("vae-mnist", mnist),
                            ("classifier-vae-recon", recon)]]
    rows.append({"experiment": "broken", "damaged": "a reason"})
    line = report.data_line(rows)
    assert line.count("CIFAR-10 (") == 1 and line.count("MNIST (") == 1
    assert line.startswith(f"{cifar}; {mnist}. ")
    assert "pixelcnn on code grids of vqvae" in line
    assert "classifier-vae-recon on reconstructions by vae-mnist" in line
    assert "broken" not in line
