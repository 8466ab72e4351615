"""Datasets made of image files whose labels are known from their paths.

Labels come from folder names or annotation files, never from decoding, so a split's labels and
per-class index exist before (or without) any image being read. :func:`assemble` turns two
labelled file lists into an :class:`~ddr.engine.data.ImageDataset`, decoding into memory or streaming.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddr.builtins.datasets.images import Geometry, ImageFileSource, cache_key, class_folders, decode_all, image_files
from ddr.builtins.datasets.tensors import channel_stats, label_tensor, normalize
from ddr.engine.data import ImageDataset, Split
from ddr.errors import ConfigError, DataError

IN_MEMORY_BUDGET = 4 * 1024**3
"""Bytes of float32 images (both splits) up to which ``in_memory=None`` keeps a dataset in memory."""

STATS_SAMPLE = 2000
"""Train images decoded to estimate mean/std of a streaming dataset (evenly spaced, deterministic)."""


@dataclass
class LabelledFiles:
    """Image files and their class indices (``labels[i]`` is the class of ``paths[i]``)."""

    paths: list[Path]
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.paths) != len(self.labels):
            raise DataError(f"{len(self.paths)} image files but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: np.ndarray) -> "LabelledFiles":
        return LabelledFiles([self.paths[i] for i in index], self.labels[index])


def scan_class_tree(directory: Path, classes: Sequence[str], *, require_all: bool = True) -> LabelledFiles:
    """Files of ``directory/<class>/**`` for each folder name in ``classes`` (label = position).

    With ``require_all`` a missing class folder is a :class:`DataError` naming it; without, the
    class simply has no files here (a test split lacking some classes).
    """
    missing = [c for c in classes if not (directory / c).is_dir()]
    if missing and require_all:
        shown = ", ".join(missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        raise DataError(f"{directory} lacks the class folder(s) {shown}; expected {directory}/<class>/<image files>")
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        if name in missing:
            continue
        files = image_files(directory / name)
        paths.extend(files)
        labels.extend([index] * len(files))
    return LabelledFiles(paths, np.asarray(labels, dtype=np.int64))


def tree_classes(directory: Path) -> list[str]:
    """Sorted class folder names of ``directory``; :class:`DataError` if it has none."""
    if not directory.is_dir():
        raise DataError(f"{directory} is not a directory")
    classes = class_folders(directory)
    if not classes:
        raise DataError(
            f"{directory} has no class folders; expected {directory}/<class name>/<image files>"
        )
    return classes


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class random split: ``round(n_c * test_fraction)`` test items of each class (at least
    one when the class has two or more, never all). Deterministic in ``seed``; both index arrays
    are sorted ascending."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n = len(members)
        n_test = min(max(int(round(n * test_fraction)), 1 if n >= 2 else 0), n - 1)
        test.append(members[rng.permutation(n)[:n_test]])
    test_index = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    train_index = np.setdiff1d(np.arange(len(labels)), test_index)
    return train_index, test_index


def require_every_class(files: LabelledFiles, class_names: Sequence[str], where: str) -> None:
    """:class:`DataError` naming the classes that have no image in ``files``."""
    counts = np.bincount(files.labels, minlength=len(class_names))
    empty = [class_names[int(i)] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"{where}: no image files for class(es) {empty[:10]}")


def sample_stats(files: LabelledFiles, geometry: Geometry, *, workers: int | None = None,
                 limit: int = STATS_SAMPLE) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std (0..1 pixels) over at most ``limit`` evenly spaced images of ``files``."""
    index = np.unique(np.linspace(0, len(files) - 1, num=min(limit, len(files))).round().astype(np.int64))
    return channel_stats(decode_all([files.paths[i] for i in index], geometry, workers=workers))


def assemble(name: str, *, train: LabelledFiles, test: LabelledFiles, class_names: Sequence[str],
             geometry: Geometry, mean: Sequence[float] | None, std: Sequence[float] | None,
             in_memory: bool | None, cache_dir: Path | None = None,
             workers: int | None = None) -> ImageDataset:
    """Build an :class:`ImageDataset` from labelled files.

    Args:
        name: the dataset's name (also prefixes decode-cache files).
        train, test: the splits; every class must be present in ``train``.
        class_names: index-aligned class names (K = its length).
        geometry: output size, channels and crop.
        mean, std: normalisation constants; ``None`` computes them on train (all of it in memory,
            a sample of :data:`STATS_SAMPLE` images when streaming).
        in_memory: decode everything into one tensor per split; ``None`` decides by
            :data:`IN_MEMORY_BUDGET`; ``False`` streams through :class:`ImageFileSource`.
        cache_dir: directory for decoded uint8 caches (in-memory mode only); ``None`` disables it.
        workers: decoding threads.
    """
    require_every_class(train, class_names, f"dataset '{name}' train split")
    height, width = geometry.size
    if in_memory is None:
        in_memory = (len(train) + len(test)) * geometry.channels * height * width * 4 <= IN_MEMORY_BUDGET
    if in_memory:
        decoded = []
        for files in (train, test):
            cache_file = None
            if cache_dir is not None and len(files):
                key = cache_key(files.paths, geometry)
                cache_file = Path(cache_dir) / "decoded" / f"{_file_stem(name)}-{key[:24]}.safetensors"
            decoded.append(decode_all(files.paths, geometry, workers=workers, cache_file=cache_file))
        if mean is None or std is None:
            mean, std = channel_stats(decoded[0])
        _check_std(name, std)
        splits = [Split(labels=label_tensor(f.labels), images=normalize(images, mean, std))
                  for f, images in zip((train, test), decoded)]
    else:
        if mean is None or std is None:
            mean, std = sample_stats(train, geometry, workers=workers)
        _check_std(name, std)
        splits = [Split(labels=label_tensor(f.labels),
                        source=ImageFileSource(f.paths, label_tensor(f.labels), geometry, mean, std))
                  for f in (train, test)]
    return ImageDataset(
        name=name, num_classes=len(class_names), channels=geometry.channels, image_size=(height, width),
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std),
        train=splits[0], test=splits[1], class_names=tuple(class_names),
    )


def _check_std(name: str, std: Sequence[float]) -> None:
    """DataError unless every std is a positive number (normalising divides by it)."""
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 and s != float("inf") for s in std):
        raise DataError(f"dataset '{name}': std {list(std)} has a value that is not a positive number, so the images "
                        "cannot be normalised (computed on the train split when not given: its images do not vary "
                        "in that channel); give positive std values, or use images that vary")


def _file_stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:48]


def as_size(value: int | Sequence[int], what: str = "image_size") -> tuple[int, int]:
    """``64`` or ``[64, 48]`` -> ``(H, W)``, each side at most the ``image_size`` bound
    (:mod:`ddr.protocol.bounds`)."""
    from ddr.protocol.bounds import check_bound

    size: tuple[int, int] | None = None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        size = (value, value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                      and v > 0 for v in value):
        size = (int(value[0]), int(value[1]))
    if size is None:
        raise ConfigError(f"{what} must be a positive int or [H, W], got {value!r}")
    for side in size:
        check_bound("image_size", side, what=what)
    return size
