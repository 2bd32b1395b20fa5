"""parallel.train_missing: the chapter's missing models trained side by side."""
from __future__ import annotations

import pytest

from autoencoders import parallel
from autoencoders.cache import find_cached
from autoencoders.experiments import get_config


def _small(name, **fields):
    return get_config(name, "smoke", train_size=256, test_size=64, **fields)


def test_trains_missing_models_in_worker_processes(fresh_cache, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    configs = [_small("ae-conv"), _small("ae-linear")]
    assert parallel.train_missing(configs, workers=2) == ["ae-conv", "ae-linear"]
    runs = [find_cached(c) for c in configs]
    assert all(r is not None for r in runs)             # trained by the workers, saved
    assert all(r.metrics["train_images"] == 256 for r in runs)
    assert parallel.train_missing(configs, workers=2) == []  # nothing left to do


def test_models_on_a_missing_upstream_wait_for_a_second_round(fresh_cache, monkeypatch):
    rounds = []
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    monkeypatch.setattr(parallel, "_run_pool", lambda cs, w: rounds.append([c.name for c in cs]))
    vq, prior, ae = (get_config(n, "smoke") for n in ("vqvae", "pixelcnn", "cifar-ae"))
    parallel.train_missing([prior, vq, ae], workers=2)
    assert [sorted(r) for r in rounds] == [["cifar-ae", "vqvae"], ["pixelcnn"]]


def test_longest_first(fresh_cache, monkeypatch):
    rounds = []
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    monkeypatch.setattr(parallel, "_run_pool", lambda cs, w: rounds.append([c.name for c in cs]))
    short, long = _small("ae-conv", epochs=1), _small("ae-linear", epochs=5)
    parallel.train_missing([short, long], workers=2)
    assert rounds[0] == ["ae-linear", "ae-conv"]


def test_one_worker_or_little_work_trains_in_this_process(fresh_cache, monkeypatch):
    def no_pool(*_):
        raise AssertionError("no pool expected")
    monkeypatch.setattr(parallel, "_run_pool", no_pool)
    configs = [_small("ae-conv"), _small("ae-linear")]
    assert parallel.train_missing(configs, workers=1) == ["ae-conv", "ae-linear"]
    assert all(find_cached(c) is not None for c in configs)
    more = [_small("ae-conv", seed=1), _small("ae-linear", seed=1)]  # 2 x 256 images: little
    assert parallel.train_missing(more, workers=2) == ["ae-conv", "ae-linear"]


def test_a_worker_error_reaches_the_caller(fresh_cache, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    bad = _small("classifier-vae-recon", train_on="bogus")  # fails in its worker
    with pytest.raises(ValueError, match="train_on must be one of"):
        parallel.train_missing([bad, _small("ae-linear")], workers=2)


def test_bad_worker_counts(fresh_cache, monkeypatch):
    with pytest.raises(ValueError, match="at least 1"):
        parallel.train_missing([_small("ae-conv")], workers=0)
    monkeypatch.setenv("AUTOENCODERS_WORKERS", "two")
    with pytest.raises(ValueError, match="AUTOENCODERS_WORKERS"):
        parallel.train_missing([_small("ae-conv")])
    with pytest.raises(ValueError, match="no experiments belong"):
        parallel.chapter_configs("nope")
