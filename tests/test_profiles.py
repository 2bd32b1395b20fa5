"""A profile fixes the training images, not only the epochs: `quick` costs
the same whether MNIST came from torchvision's download (60,000 digits) or
from the offline copy (5,000)."""
from __future__ import annotations

import gzip
import struct

import pytest
import torch

from autoencoders import cache, data
from autoencoders.config import PROFILES
from autoencoders.experiments import EXPERIMENTS, get_config


def _write_idx(path, tensor: torch.Tensor) -> None:
    """An uncompressed IDX file as torchvision's MNIST reads it."""
    magic = {3: 0x0803, 1: 0x0801}[tensor.dim()]
    header = struct.pack(">I" + "I" * tensor.dim(), magic, *tensor.shape)
    path.write_bytes(header + tensor.to(torch.uint8).contiguous().numpy().tobytes())


@pytest.fixture
def downloaded_mnist(tmp_path, monkeypatch):
    """A data root laid out like a finished torchvision download of MNIST:
    60,000 training digits (the 5,000 offline digits, each shifted by a
    different amount so the copies differ) and the 10,000 test digits."""
    offline_train = data.load("mnist", "train")
    offline_test = data.load("mnist", "test")
    repeats = 60_000 // len(offline_train)
    images = torch.cat([offline_train.images.roll(k, dims=-1) for k in range(repeats)])
    labels = offline_train.labels.repeat(repeats)
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", images[:, 0])
    _write_idx(raw / "train-labels-idx1-ubyte", labels)
    _write_idx(raw / "t10k-images-idx3-ubyte", offline_test.images[:, 0])
    _write_idx(raw / "t10k-labels-idx1-ubyte", offline_test.labels)
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "root"))
    data._LOADED.clear()
    return images


MNIST_EXPERIMENTS = [name for name in EXPERIMENTS
                     if get_config(name, "quick").dataset == "mnist"
                     and get_config(name, "quick").source is None]


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_every_mnist_experiment_has_a_fixed_training_size(profile):
    for name in MNIST_EXPERIMENTS:
        assert get_config(name, profile).train_size == PROFILES[profile].mnist_train_size


def test_quick_trains_on_5000_digits_from_the_download_too(downloaded_mnist, fresh_cache,
                                                           monkeypatch):
    train = data.load("mnist", "train")
    assert len(train) == 60_000 and train.source.startswith("torchvision")
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(model, inputs, labels=None, **kwargs):
        seen["n"] = len(inputs)
        raise Stop

    monkeypatch.setattr(cache, "fit", fake_fit)
    for name in ("ae-conv", "vae-mnist", "classifier-real", "abl-vae-z16-kl0.001"):
        with pytest.raises(Stop):
            cache.get_or_train(get_config(name, "quick"), progress=False)
        assert seen.pop("n") == 5_000, name
    # the same 5,000 every time: a fixed random pick of the 60,000
    a, _ = cache.load_data(get_config("ae-conv", "quick"))
    b, _ = cache.load_data(get_config("vae-mnist", "quick"))
    assert torch.equal(a.images, b.images) and len(set(a.labels.tolist())) == 10


def test_quick_on_the_offline_copy_uses_all_5000(fresh_cache):
    train, _ = cache.load_data(get_config("ae-conv", "quick"))
    assert len(train) == 5_000 and train.source.startswith("offline")


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_the_guides_5_and_25_epochs_in_quick_and_full(profile):
    from autoencoders.experiments import ablation_name

    for model in ("ae", "vae"):
        assert get_config(ablation_name(model), profile).epochs == 5
        assert get_config(ablation_name(model, long=True), profile).epochs == 25
