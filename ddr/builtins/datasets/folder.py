"""``folder:<path>``: any class-folder image tree.

Layouts accepted:

- ``<path>/train/<class>/*`` with ``<path>/test/<class>/*`` (or ``<path>/val/<class>/*``): the
  given split is used;
- ``<path>/<class>/*``: split per class, deterministically (``test_fraction``, ``seed``).

Classes are the sorted train folder names. Images are resized to ``image_size`` (default: the
size of the first train image), with the channel count of the first train image unless given;
mean/std are computed on the train split unless given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddr.builtins.datasets.images import Geometry, channels_of, size_of
from ddr.builtins.datasets.labelled_files import (
    as_size,
    assemble,
    scan_class_tree,
    stratified_split,
    tree_classes,
)
from ddr.builtins.datasets.loading import missing_data, reject_unknown_params
from ddr.engine.data import ImageDataset
from ddr.errors import ConfigError, DataError
from ddr.store.paths import cache_dir

LAYOUT = "<path>/<class>/<images> or <path>/{train,test}/<class>/<images> (test may be named val)"


def resolve(argument: str | None, root: Path) -> Path:
    """The tree named by ``folder:<argument>``: an absolute or working-directory-relative path,
    or else a path relative to the data directory ``root``."""
    if not argument:
        raise ConfigError("dataset 'folder' needs a path: use folder:/path/to/tree")
    try:
        path = Path(argument).expanduser()
    except RuntimeError as exc:  # ~user of no such user
        raise ConfigError(f"dataset 'folder:{argument}': cannot expand the path ({exc}); write it in full") from None
    if not path.is_absolute() and not path.exists() and (Path(root) / path).exists():
        path = Path(root) / path
    if not path.is_dir():
        raise missing_data(f"folder:{argument}", path, LAYOUT, "point folder:<path> at an existing image tree")
    return path


def split_dirs(path: Path) -> tuple[Path, Path | None]:
    """``(train_dir, test_dir)``, ``test_dir`` None when the tree must be split."""
    train = path / "train"
    for name in ("test", "val"):
        if train.is_dir() and (path / name).is_dir():
            return train, path / name
    return path, None


def load(*, root: Path, argument: str | None = None, download: bool = False,
         image_size: int | Sequence[int] | None = None, channels: int | None = None,
         mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
         test_fraction: float = 0.2, seed: int = 0, crop_fraction: float = 1.0,
         in_memory: bool | None = None, cache: bool = True, workers: int | None = None,
         **unknown: Any) -> ImageDataset:
    """Load ``folder:<path>``.

    Args:
        image_size: output ``H`` (square) or ``[H, W]``; default: the first train image's size.
        channels: 1 or 3; default: from the first train image's mode.
        mean, std: normalisation constants; default: computed on train.
        test_fraction, seed: the per-class split of a tree without train/test folders.
        crop_fraction: centre-crop fraction after the aspect-preserving resize.
        in_memory: decode everything up front (default: when it fits 4 GiB as float32).
        cache: keep decoded uint8 images in ``$DDR_CACHE_DIR/decoded`` (in-memory mode).
        workers: decoding threads.
    """
    reject_unknown_params("folder", unknown, (
        "image_size", "channels", "mean", "std", "test_fraction", "seed", "crop_fraction",
        "in_memory", "cache", "workers"))
    path = resolve(argument, root)
    name = f"folder:{argument}"
    train_dir, test_dir = split_dirs(path)
    classes = tree_classes(train_dir)
    train = scan_class_tree(train_dir, classes)
    if len(train) == 0:
        raise DataError(f"{train_dir} has class folders but no image files; layout: {LAYOUT}")
    if test_dir is None:
        train_index, test_index = stratified_split(train.labels, test_fraction, seed)
        train, test = train.take(train_index), train.take(test_index)
    else:
        extra = sorted(set(tree_classes(test_dir)) - set(classes))
        if extra:
            raise DataError(f"{test_dir} has class folders {extra[:10]} that {train_dir} lacks")
        test = scan_class_tree(test_dir, classes, require_all=False)
    first = train.paths[0]
    geometry = Geometry(
        size=as_size(image_size) if image_size is not None else
        as_size(size_of(first), f"the size of {first.name}, the first train image (give image_size to resize)"),
        channels=channels if channels is not None else channels_of(first),
        crop_fraction=crop_fraction,
    )
    if (mean is None) != (std is None):
        raise ConfigError("dataset 'folder': give both mean and std, or neither")
    for what, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != geometry.channels:
            raise ConfigError(f"dataset 'folder': {what} needs {geometry.channels} value(s), got {list(value)}")
    return assemble(name, train=train, test=test, class_names=classes, geometry=geometry,
                    mean=mean, std=std, in_memory=in_memory,
                    cache_dir=cache_dir() if cache else None, workers=workers)
