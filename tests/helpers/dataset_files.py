"""Tiny datasets in the real on-disk formats the dataset plugins read, written by tests.

Shared by tests/unit/engine/test_datasets.py (which checks the readers against them) and the method tests
that run a method end to end on a CIFAR- or ImageNet-shaped dataset without the real files.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def pickle_file(path: Path, obj: object) -> None:
    """Write ``obj`` as the CIFAR python batches are written (pickle protocol 2)."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar_pixels(n: int, seed: int) -> np.ndarray:
    """``n`` random CIFAR rows: uint8 ``[n, 3072]`` (R, G, B planes of 32x32)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(root: Path, train: Sequence[tuple[np.ndarray, list[int]]], test: tuple[np.ndarray, list[int]]) -> Path:
    """``root/cifar-10-batches-py`` with ``data_batch_1..5`` (one ``(data, labels)`` each),
    ``test_batch`` and ``batches.meta``, as the official archive unpacks."""
    if len(train) != 5:
        raise ValueError("CIFAR-10 has five training batches")
    directory = Path(root) / "cifar-10-batches-py"
    directory.mkdir(parents=True, exist_ok=True)
    for i, (data, labels) in enumerate(train, start=1):
        pickle_file(directory / f"data_batch_{i}", {"batch_label": f"training batch {i} of 5", "labels": list(labels),
                                                    "data": data, "filenames": [f"f{j}.png" for j in range(len(data))]})
    pickle_file(directory / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": list(test[1]),
                                           "data": test[0], "filenames": []})
    pickle_file(directory / "batches.meta", {"label_names": list(CIFAR10_NAMES), "num_vis": 3072})
    return directory


def class_cifar10(root: Path, *, train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """A CIFAR-10 of ``train_per_class`` / ``test_per_class`` images per class whose classes
    differ in colour and brightness (learnable in a few epochs), spread over the five batches."""
    rng = np.random.default_rng(seed)

    def rows(per_class: int) -> tuple[np.ndarray, list[int]]:
        labels = [c for c in range(10) for _ in range(per_class)]
        base = np.array([[(37 * c) % 256, (91 * c + 40) % 256, (160 - 13 * c) % 256] for c in labels], dtype=np.float64)
        planes = np.repeat(base[:, :, None], 1024, axis=2) + rng.normal(0, 40, size=(len(labels), 3, 1024))
        data = np.clip(planes, 0, 255).astype(np.uint8).reshape(len(labels), 3072)
        order = rng.permutation(len(labels))
        return data[order], [labels[i] for i in order]

    data, labels = rows(train_per_class)
    parts = np.array_split(np.arange(len(labels)), 5)
    batches = [(data[p], [labels[i] for i in p]) for p in parts]
    return write_cifar10(root, batches, rows(test_per_class))


def jpeg(path: Path, size: tuple[int, int], value: int, mode: str = "RGB") -> None:
    """A flat JPEG of ``size`` (W, H) whose colour is derived from ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, color).save(path, quality=95)


def write_imagenet(root: Path, wnids: list[str], per_class: int = 1, val_per_class: int | None = None) -> Path:
    """``root/imagenet/{train,val}/<wnid>/*.JPEG`` (the ImageFolder layout the ImageNet datasets read):
    landscape 40x30 images, one flat colour per class and image index."""
    counts = {"train": per_class, "val": per_class if val_per_class is None else val_per_class}
    for split, count in counts.items():
        for k, wnid in enumerate(wnids):
            for i in range(count):
                jpeg(root / "imagenet" / split / wnid / f"{wnid}_{i}.JPEG", (40, 30), (20 * k + i) % 256)
    return root / "imagenet"
