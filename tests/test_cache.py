"""get_or_train and the artifact cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from autoencoders import cache
from autoencoders.cache import get_or_train
from autoencoders.experiments import get_config


def _tiny(**overrides):
    base = dict(train_size=64, test_size=64, epochs=1, batch_size=32)
    base.update(overrides)
    return get_config("ae-linear", "smoke", **base)


def test_an_unchanged_rerun_trains_nothing(fresh_cache):
    first = get_or_train(_tiny(), progress=False)
    assert first.trained
    again = get_or_train(_tiny(), progress=False)
    assert not again.trained
    assert again.metrics == first.metrics
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())
    assert not (first.path / "checkpoint.pt").exists()  # a finished run leaves no checkpoint


def test_a_changed_config_retrains(fresh_cache):
    assert get_or_train(_tiny(), progress=False).trained
    assert get_or_train(_tiny(latent_dim=8), progress=False).trained
    assert not get_or_train(_tiny(), progress=False).trained


def test_changed_training_code_retrains(fresh_cache, monkeypatch):
    assert get_or_train(_tiny(), progress=False).trained
    monkeypatch.setattr(cache, "source_hash", lambda root=None: "edited")
    assert get_or_train(_tiny(), progress=False).trained


def _hash(package):
    cache.source_hash.cache_clear()  # it is cached per process: read the files again
    return cache.source_hash(package)


def _package_copy(tmp_path):
    package = tmp_path / "pkg"
    shutil.copytree(Path(cache.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return package


OUTSIDE_TRAINING = ["plots.py", "bench.py", "report.py", "metrics/scores.py",
                    "derivations/vae.py", "estimators.py", "experiments.py",
                    "analysis/ablations.py", "book.py"]
TRAINING = ["models/autoencoder.py", "losses.py", "train.py", "data.py", "config.py",
            "transforms.py", "inference.py", "noise.py"]


@pytest.mark.parametrize("edited", OUTSIDE_TRAINING + TRAINING)
def test_only_editing_training_code_changes_the_key(tmp_path, edited):
    """A code change (not a comment: those never count) to a module outside
    the allow-list keeps every key; one to a training module changes them."""
    package = _package_copy(tmp_path)
    before = _hash(package)
    with open(package / edited, "a") as f:
        f.write("\n_A_CODE_CHANGE = 1\n")
    assert (_hash(package) != before) == (edited in TRAINING)


@pytest.mark.parametrize("edit, retrains", [
    ("    torch.manual_seed(config.seed)\n", True),  # _train: the seed before the model is built
    ('    train = data_mod.load(config.dataset, "train").subset(config.train_size)\n', True),
    ("                      log_every=max(1, config.steps(len(train)) // 100),\n", True),
    ("def find_cached(", False),  # cache.py outside RUN_CODE
])
def test_the_code_that_starts_a_run_is_in_the_key(tmp_path, edit, retrains):
    """cache.py's run-starting functions (``cache.RUN_CODE``) count as
    training code; the rest of cache.py does not."""
    package = _package_copy(tmp_path)
    before = _hash(package)
    source = (package / "cache.py").read_text()
    assert edit in source
    changed = edit.replace("config.seed", "config.seed + 1").replace(
        "config.train_size", "config.test_size").replace("// 100", "// 50")
    if changed == edit:  # outside RUN_CODE: a new function before find_cached
        changed = "def _an_unrelated_helper():\n    return 1\n\n\n" + edit
    (package / "cache.py").write_text(source.replace(edit, changed, 1))
    assert (_hash(package) != before) == retrains


def test_a_docstring_or_comment_in_the_run_code_keeps_the_key(tmp_path):
    package = _package_copy(tmp_path)
    before = _hash(package)
    source = (package / "cache.py").read_text()
    edit = "    torch.manual_seed(config.seed)\n"
    (package / "cache.py").write_text(source.replace(edit, "    # a comment\n" + edit, 1))
    assert _hash(package) == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_entry_is_reported_and_retrained(fresh_cache, damage):
    first = get_or_train(_tiny(), progress=False)
    model_file = first.path / "model.pt"
    blob = model_file.read_bytes()
    if damage == "truncate":
        model_file.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        model_file.write_bytes(blob[:-10] + bytes([blob[-10] ^ 0xFF]) + blob[-9:])
    else:
        model_file.unlink()
    with pytest.warns(UserWarning, match="damaged"):
        again = get_or_train(_tiny(), progress=False)
    assert again.trained
    assert not get_or_train(_tiny(), progress=False).trained


def test_metrics_say_where_the_data_came_from(fresh_cache):
    run = get_or_train(_tiny(), progress=False)
    assert run.metrics["data"].startswith("MNIST (")
    assert run.metrics["device"] in {"cpu", "cuda", "mps"}
    assert run.metrics["test"]["mse"] > 0 and run.metrics["parameters"] > 0


@pytest.mark.parametrize("edit", ["docstring", "comment"])
def test_a_docstring_or_comment_in_training_code_changes_no_key(tmp_path, edit):
    package = _package_copy(tmp_path)
    before = _hash(package)
    path = package / "models" / "vae.py"
    source = path.read_text()
    if edit == "docstring":
        old = '"""Encoder -> (mu, log sigma^2)'
        assert old in source
        path.write_text(source.replace(old, '"""Shown somewhere new. Encoder -> (mu, log sigma^2)', 1))
    else:
        path.write_text(source.replace("import math\n", "import math  # a remark\n", 1))
    assert _hash(package) == before
    path.write_text(source.replace("torch.exp(0.5 * logvar)", "torch.exp(0.49 * logvar)", 1))
    assert _hash(package) != before


def test_a_model_trained_on_another_retrains_when_that_model_is_replaced(fresh_cache):
    """A derived model's key holds its upstream's weights checksum: if the
    upstream is trained again under the same key with other weights (after
    damage, on another device or torch), the derived model retrains instead
    of being served as if trained on the new upstream's outputs."""
    import json

    from autoencoders.atomic import atomic_save

    derived = get_config("classifier-vae-recon", "smoke", train_size=64, test_size=64)
    first = get_or_train(derived, progress=False)
    assert first.trained and not get_or_train(derived, progress=False).trained
    up = get_or_train(get_config(derived.source, "smoke"), progress=False)
    assert not up.trained  # trained first, for the derived model's key
    # the upstream "trained again" under its key, to other weights
    state = {k: v.clone() for k, v in up.model.state_dict().items()}
    first_param = next(k for k, v in state.items() if v.is_floating_point())
    state[first_param] += 0.01
    atomic_save(state, up.path / "model.pt")
    metrics = json.loads((up.path / "metrics.json").read_text())
    metrics["model_sha256"] = cache._sha256(up.path / "model.pt")
    (up.path / "metrics.json").write_text(json.dumps(metrics))
    assert not cache.is_cached(derived)
    again = get_or_train(derived, progress=False)
    assert again.trained and again.path != first.path
