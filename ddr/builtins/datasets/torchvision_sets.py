"""MNIST, Fashion-MNIST, SVHN, CIFAR-10 and CIFAR-100 in their official on-disk formats.

Every dataset lives where torchvision puts it under the data directory ``root``, and
torchvision downloads it when ``download=True`` (checking its md5); the CIFAR archives are then
extracted by :func:`ddr.store.archives.safe_extract`, and ``.gz`` idx files decompressed with a
size bound, so no archive member can land outside ``root`` or fill the disk:

- ``mnist``: ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (idx files; ``.gz``
  copies are decompressed in place), read by ``torchvision.datasets.MNIST``.
- ``fashion-mnist``: the same under ``root/FashionMNIST/raw/``.
- ``svhn``: ``root/svhn/{train,test}_32x32.mat`` (MATLAB files, ``X`` ``[32, 32, 3, N]`` uint8,
  ``y`` ``[N, 1]`` with digit 0 stored as 10).
- ``cifar10``: ``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.
- ``cifar100``: ``root/cifar-100-python/{train, test, meta}``.

SVHN and CIFAR are read here rather than through torchvision's classes, which re-hash every
file (md5) on each construction; the formats are the documented ones. CIFAR files are Python
pickles as the official archive ships them: only those named files inside the dataset folder are
unpickled, with an unpickler that can build nothing but numpy arrays, lists, dicts and strings.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddr.builtins.datasets import catalog
from ddr.builtins.datasets.loading import (
    download_failed,
    missing_data,
    reject_argument,
    reject_unknown_params,
)
from ddr.builtins.datasets.tensors import label_tensor, normalize
from ddr.engine.data import ImageDataset, Split
from ddr.errors import DataError


@dataclass(frozen=True)
class OnDisk:
    """Where a dataset's files live and how they are obtained.

    Attributes:
        name: registry name.
        folder: directory relative to the data root.
        files: file names inside ``folder`` that must all exist.
        fetch: downloads the files into the data root (called with ``root``).
    """

    name: str
    folder: str
    files: tuple[str, ...]
    fetch: Callable[[Path], None]

    def directory(self, root: Path) -> Path:
        return Path(root) / self.folder

    def present(self, root: Path) -> bool:
        return all((self.directory(root) / f).is_file() for f in self.files)

    def ensure(self, root: Path, download: bool) -> Path:
        """Return the dataset directory, downloading into ``root`` if allowed and needed."""
        directory = self.directory(root)
        if self.present(root):
            return directory
        layout = f"{directory}/{{{', '.join(self.files)}}}"
        if not download:
            raise missing_data(
                self.name, directory, layout,
                "run again with --download (download=True) while online, or place the official "
                "files there",
            )
        try:
            self.fetch(Path(root))
        except DataError:  # an archive refused by safe_extract: its message says why
            raise
        except Exception as error:  # network and checksum errors all mean the same here
            raise download_failed(self.name, directory, error, layout) from error
        if not self.present(root):
            raise missing_data(self.name, directory, layout, "the download finished but the files are missing")
        return directory


def _dataset(name: str, channels: int, size: int, mean: Sequence[float], std: Sequence[float],
             class_names: Sequence[str], train: tuple[torch.Tensor, np.ndarray],
             test: tuple[torch.Tensor, np.ndarray]) -> ImageDataset:
    """Assemble an in-memory dataset from uint8 ``[N, C, H, W]`` images and integer labels."""
    num_classes = len(class_names)
    splits = []
    for split_name, (images, labels) in (("train", train), ("test", test)):
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if images.shape[1:] != (channels, size, size) or len(labels) != images.shape[0]:
            raise DataError(
                f"dataset '{name}' {split_name} split: expected images [N, {channels}, {size}, {size}] "
                f"with N labels, found images {tuple(images.shape)} and {len(labels)} labels; "
                "the files are corrupt or not the official ones: delete them and download again"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(
                f"dataset '{name}' {split_name} split: labels must lie in [0, {num_classes}), "
                f"found [{labels.min()}, {labels.max()}]"
            )
        splits.append(Split(labels=label_tensor(labels), images=normalize(images, mean, std)))
    return ImageDataset(
        name=name, num_classes=num_classes, channels=channels, image_size=(size, size),
        mean=tuple(mean), std=tuple(std), train=splits[0], test=splits[1],
        class_names=tuple(class_names),
    )


# -- MNIST and Fashion-MNIST ---------------------------------------------------------------------

_IDX_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)


IDX_MAX_BYTES = 256 * 2**20
"""Bound on one decompressed idx file (bytes); the largest official one is 47 MB."""


def _gunzip_idx_files(raw: Path) -> None:
    """Decompress ``raw/*.gz`` idx files whose uncompressed copy is missing (what torchvision's
    own download step does)."""
    from ddr.store.archives import safe_gunzip

    for name in _IDX_FILES:
        packed = raw / f"{name}.gz"
        if packed.is_file() and not (raw / name).is_file():
            safe_gunzip(packed, raw / name, max_bytes=IDX_MAX_BYTES)


def _load_idx_dataset(name: str, tv_class_name: str, root: Path, download: bool,
                      mean: Sequence[float], std: Sequence[float],
                      class_names: Sequence[str]) -> ImageDataset:
    import torchvision.datasets as tvd

    tv_class = getattr(tvd, tv_class_name)
    _gunzip_idx_files(Path(root) / tv_class_name / "raw")
    OnDisk(name, f"{tv_class_name}/raw", _IDX_FILES,
           lambda r: tv_class(str(r), train=True, download=True)).ensure(root, download)
    splits = []
    for train in (True, False):
        try:
            data = tv_class(str(root), train=train, download=False)
        except Exception as error:  # torchvision raises AssertionError/ValueError on bad idx files
            raise DataError(
                f"dataset '{name}': cannot read the idx files in {Path(root) / tv_class_name / 'raw'}: "
                f"{type(error).__name__}: {error}; delete them and download again"
            ) from error
        splits.append((data.data.unsqueeze(1), data.targets.numpy()))
    return _dataset(name, 1, 28, mean, std, class_names, splits[0], splits[1])


def load_mnist(*, root: Path, argument: str | None = None, download: bool = False,
               **params: Any) -> ImageDataset:
    """MNIST: 60000/10000 grey 28x28 digits."""
    reject_argument("mnist", argument)
    reject_unknown_params("mnist", params, ())
    return _load_idx_dataset("mnist", "MNIST", root, download, catalog.MNIST_MEAN,
                             catalog.MNIST_STD, catalog.DIGIT_NAMES)


def load_fashion_mnist(*, root: Path, argument: str | None = None, download: bool = False,
                       **params: Any) -> ImageDataset:
    """Fashion-MNIST: 60000/10000 grey 28x28 clothing images."""
    reject_argument("fashion-mnist", argument)
    reject_unknown_params("fashion-mnist", params, ())
    return _load_idx_dataset("fashion-mnist", "FashionMNIST", root, download,
                             catalog.FASHION_MNIST_MEAN, catalog.FASHION_MNIST_STD,
                             catalog.FASHION_MNIST_NAMES)


# -- SVHN ----------------------------------------------------------------------------------------

def _fetch_svhn(root: Path) -> None:
    import torchvision.datasets as tvd

    for split in ("train", "test"):
        tvd.SVHN(str(Path(root) / "svhn"), split=split, download=True)


def _read_svhn_mat(path: Path) -> tuple[torch.Tensor, np.ndarray]:
    """``X`` ``[H, W, C, N]`` -> uint8 ``[N, C, H, W]``; label 10 (digit zero) -> 0."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), variable_names=("X", "y"))
        images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)))
        labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"cannot read {path} as an SVHN .mat file (needs X and y): {error}") from error
    if images.dtype != np.uint8:
        raise DataError(f"{path}: X must be uint8, found {images.dtype}")
    labels[labels == 10] = 0
    return torch.from_numpy(images), labels


def load_svhn(*, root: Path, argument: str | None = None, download: bool = False,
              **params: Any) -> ImageDataset:
    """SVHN (cropped digits): 73257/26032 RGB 32x32 images, ``extra`` not used."""
    reject_argument("svhn", argument)
    reject_unknown_params("svhn", params, ())
    directory = OnDisk("svhn", "svhn", ("train_32x32.mat", "test_32x32.mat"), _fetch_svhn).ensure(root, download)
    return _dataset("svhn", 3, 32, catalog.SVHN_MEAN, catalog.SVHN_STD, catalog.DIGIT_NAMES,
                    _read_svhn_mat(directory / "train_32x32.mat"),
                    _read_svhn_mat(directory / "test_32x32.mat"))


# -- CIFAR ---------------------------------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses every other global, so a tampered
    file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            content = _ArrayUnpickler(f, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DataError(f"cannot read {path} as a CIFAR python batch: {error}") from error
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a CIFAR batch dictionary, found {type(content).__name__}")
    return content


def _read_cifar_batches(directory: Path, names: Sequence[str],
                        label_key: str) -> tuple[torch.Tensor, np.ndarray]:
    """Concatenate batches whose ``data`` is uint8 ``[N, 3072]`` (CHW order) -> ``[N, 3, 32, 32]``."""
    images, labels = [], []
    for name in names:
        batch = _unpickle(directory / name)
        if "data" not in batch or label_key not in batch:
            raise DataError(f"{directory / name}: expected keys 'data' and '{label_key}', found {sorted(batch)}")
        data = np.asarray(batch["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{directory / name}: 'data' must be uint8 [N, 3072], found {data.dtype} {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), np.concatenate(labels)


def _class_names(meta_path: Path, key: str, expected: int) -> tuple[str, ...]:
    names = _unpickle(meta_path).get(key)
    if not isinstance(names, (list, tuple)) or len(names) != expected:
        raise DataError(f"{meta_path}: expected '{key}' with {expected} class names")
    return tuple(str(n) for n in names)


CIFAR_MAX_BYTES = 2**30
"""Bound on an extracted CIFAR archive (bytes); the official ones hold about 180 MB."""


def _fetch_cifar(tv_class_name: str) -> Callable[[Path], None]:
    """Download the official archive with torchvision (which checks its md5), then extract it with
    ddr's :func:`~ddr.store.archives.safe_extract` (no links, no paths outside ``root``, bounded size)."""
    def fetch(root: Path) -> None:
        import torchvision.datasets as tvd
        from torchvision.datasets.utils import download_url

        from ddr.store.archives import safe_extract

        source = getattr(tvd, tv_class_name)
        download_url(source.url, str(root), filename=source.filename, md5=source.tgz_md5)
        safe_extract(Path(root) / source.filename, Path(root), max_bytes=CIFAR_MAX_BYTES)

    return fetch


CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def load_cifar10(*, root: Path, argument: str | None = None, download: bool = False,
                 **params: Any) -> ImageDataset:
    """CIFAR-10: 50000/10000 RGB 32x32 images, 10 classes."""
    reject_argument("cifar10", argument)
    reject_unknown_params("cifar10", params, ())
    directory = OnDisk("cifar10", "cifar-10-batches-py", (*CIFAR10_TRAIN, "test_batch", "batches.meta"),
                       _fetch_cifar("CIFAR10")).ensure(root, download)
    names = _class_names(directory / "batches.meta", "label_names", 10)
    return _dataset("cifar10", 3, 32, catalog.CIFAR10_MEAN, catalog.CIFAR10_STD, names,
                    _read_cifar_batches(directory, CIFAR10_TRAIN, "labels"),
                    _read_cifar_batches(directory, ("test_batch",), "labels"))


def load_cifar100(*, root: Path, argument: str | None = None, download: bool = False,
                  **params: Any) -> ImageDataset:
    """CIFAR-100: 50000/10000 RGB 32x32 images, 100 fine classes."""
    reject_argument("cifar100", argument)
    reject_unknown_params("cifar100", params, ())
    directory = OnDisk("cifar100", "cifar-100-python", ("train", "test", "meta"),
                       _fetch_cifar("CIFAR100")).ensure(root, download)
    names = _class_names(directory / "meta", "fine_label_names", 100)
    return _dataset("cifar100", 3, 32, catalog.CIFAR100_MEAN, catalog.CIFAR100_STD, names,
                    _read_cifar_batches(directory, ("train",), "fine_labels"),
                    _read_cifar_batches(directory, ("test",), "fine_labels"))
