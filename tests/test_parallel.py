"""parallel.train_missing: the chapter's missing models trained side by side."""
from __future__ import annotations

import pytest
import torch

from autoencoders import parallel
from autoencoders.cache import find_cached
from autoencoders.experiments import get_config


def _small(name, **fields):
    return get_config(name, "smoke", train_size=256, test_size=64, **fields)


def test_trains_missing_models_in_worker_processes(fresh_cache, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    configs = [_small("ae-conv", batch_size=32), _small("ae-linear", batch_size=32)]
    in_process = []
    monkeypatch.setattr(parallel, "get_or_train", lambda c, **_: in_process.append(c.name))
    assert parallel.train_missing(configs, workers=2) == ["ae-conv", "ae-linear"]
    assert in_process == []                              # both trained by the workers
    runs = [find_cached(c) for c in configs]
    assert all(r is not None for r in runs)             # trained by the workers, saved
    assert all(r.metrics["train_images"] == 256 for r in runs)
    assert all(r.metrics["threads"] == max(1, torch.get_num_threads() // 2) for r in runs)
    assert parallel.train_missing(configs, workers=2) == []  # nothing left to do


def _record(monkeypatch):
    """Record the pool's configs and the in-process training order."""
    pool, in_process = [], []
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    monkeypatch.setattr(parallel, "_run_pool", lambda cs, w: pool.extend(c.name for c in cs))
    monkeypatch.setattr(parallel, "get_or_train", lambda c, **_: in_process.append(c.name))
    monkeypatch.setattr(parallel, "is_cached", lambda c: c.name in pool)  # the pool trained them
    return pool, in_process


def test_only_small_steps_go_to_the_pool_and_upstream_models_train_first(
        fresh_cache, monkeypatch):
    pool, in_process = _record(monkeypatch)
    names = ["abl-vae-z16-kl0.01", "abl-ae-z2", "classifier-vae-recon", "vae-mnist",
             "ae-conv", "vqvae", "pixelcnn", "dvae-score"]
    parallel.train_missing([get_config(n, "quick") for n in names], workers=2)
    # batches of 32 on MNIST (the VAE whose classifier waits for it, too)
    assert sorted(pool) == ["abl-ae-z2", "abl-vae-z16-kl0.01", "vae-mnist"]
    # larger steps (batches of 128, CIFAR-10, 4 samples x 64) in this process,
    # each after the upstream model it is trained on
    assert in_process == ["ae-conv", "vqvae", "dvae-score", "classifier-vae-recon", "pixelcnn"]


def test_longest_first(fresh_cache, monkeypatch):
    pool, _ = _record(monkeypatch)
    parallel.train_missing([get_config(n, "quick") for n in
                            ("abl-vae-z16-kl0.01", "abl-vae-z128-kl0.001-long")], workers=2)
    assert pool == ["abl-vae-z128-kl0.001-long", "abl-vae-z16-kl0.01"]


def test_one_worker_or_little_work_trains_in_this_process(fresh_cache, monkeypatch):
    def no_pool(*_):
        raise AssertionError("no pool expected")
    monkeypatch.setattr(parallel, "_run_pool", no_pool)
    configs = [_small("ae-conv"), _small("ae-linear")]
    assert parallel.train_missing(configs, workers=1) == ["ae-conv", "ae-linear"]
    assert all(find_cached(c) is not None for c in configs)
    more = [_small("ae-conv", seed=1, batch_size=32),  # small steps, but 2 x 256 images: little
            _small("ae-linear", seed=1, batch_size=32)]
    assert parallel.train_missing(more, workers=2) == ["ae-conv", "ae-linear"]


def test_a_worker_error_reaches_the_caller(fresh_cache, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_POOL_WORK", 0)
    # a config is checked when it is made, so the error a worker meets is a
    # failed run: the largest learning rate makes this VAE's losses non-finite
    bad = _small("q-vae-averaged", lr=10.0, batch_size=32)
    with pytest.raises(RuntimeError, match="training failed|loss became"):
        parallel.train_missing([bad, _small("ae-linear", batch_size=32)], workers=2)


def test_bad_worker_counts(fresh_cache, monkeypatch):
    with pytest.raises(ValueError, match="at least 1"):
        parallel.train_missing([_small("ae-conv")], workers=0)
    monkeypatch.setenv("AUTOENCODERS_WORKERS", "two")
    with pytest.raises(ValueError, match="AUTOENCODERS_WORKERS"):
        parallel.train_missing([_small("ae-conv")])
    with pytest.raises(ValueError, match="no experiments belong"):
        parallel.chapter_configs("nope")


def test_cli_trains_a_chapter(fresh_cache, capsys):
    from autoencoders.__main__ import main
    assert main(["train", "--chapter", "score_function", "--profile", "smoke",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "dvae-score (smoke, trained)" in out and "dvae-gumbel (smoke, trained)" in out
    assert main(["train", "--chapter", "score_function", "--profile", "smoke"]) == 0
    assert "dvae-score (smoke, from cache)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [([], "name at least one experiment"),
                                           (["--chapter", "nope"], "no experiments belong")])
def test_cli_usage_errors(args, message, fresh_cache, capsys):
    from autoencoders.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(["train", *args, "--profile", "smoke"])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_is_cached_looks_at_the_entry_files_only(fresh_cache):
    from autoencoders.cache import get_or_train, is_cached, run_dir
    config = _small("ae-linear")
    assert not is_cached(config)
    get_or_train(config)
    assert is_cached(config)
    (run_dir(config) / "model.pt").unlink()
    assert not is_cached(config)


def test_small_steps_count_every_sample_of_an_image():
    assert parallel.small_steps(get_config("dvae-score", "quick", batch_size=8))  # 8 x 4
    assert not parallel.small_steps(get_config("dvae-score", "quick", batch_size=16))  # 16 x 4
    assert parallel.small_steps(get_config("ae-conv", "quick", batch_size=32))
    assert not parallel.small_steps(get_config("vqvae", "quick", batch_size=32))  # CIFAR-10
