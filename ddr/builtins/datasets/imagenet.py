"""ImageNet-1K and its class subsets (``imagenette``, ``imagewoof``, ``imagenet-subset:<wnids>``).

All read the ImageFolder layout ``<data dir>/imagenet/{train,val}/<wnid>/*.JPEG`` (the official
val images moved into wnid folders), or another tree of that shape given as ``path`` (e.g. an
unpacked fast.ai ``imagenette2-320``). They are large, so by default images stream from disk:
each split's ``source`` decodes, resizes the shorter side to ``image_size / crop_fraction``,
centre-crops ``image_size`` and normalises with the ImageNet mean/std; labels come from the
folder names without decoding.

Class order: full ImageNet uses the sorted wnids (the standard 0..999 indices). A subset uses
the order of its wnid list (for ``imagenette``/``imagewoof`` that is the order of MTT's
``Config``, so labels agree with distilled sets made by the MTT/DATM code).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddr.builtins.datasets import catalog
from ddr.builtins.datasets.images import Geometry
from ddr.builtins.datasets.labelled_files import as_size, assemble, scan_class_tree, tree_classes
from ddr.builtins.datasets.loading import missing_data, reject_argument, reject_unknown_params
from ddr.engine.data import ImageDataset
from ddr.errors import ConfigError

FOLDER = "imagenet"
LAYOUT = ("train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ImageFolder layout: the official val images "
          "moved into wnid folders, e.g. with the widely used valprep.sh)")
HOW_TO_GET = ("ImageNet cannot be downloaded automatically (its licence requires registration): get "
              "ILSVRC2012 from https://image-net.org, unpack it into that layout, or pass path=<tree>")
KNOWN_PARAMS = ("image_size", "crop_fraction", "path", "wnids", "in_memory", "workers")


def parse_wnids(value: str | Sequence[str]) -> list[str]:
    """``"n01440764,n02102040"`` or a list -> list of wnids (order kept, duplicates refused)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    wnids = [str(w).strip() for w in items if str(w).strip()]
    if not wnids:
        raise ConfigError("an ImageNet subset needs at least one wnid, e.g. imagenet-subset:n01440764,n02102040")
    duplicates = sorted({w for w in wnids if wnids.count(w) > 1})
    if duplicates:
        raise ConfigError(f"wnid(s) listed twice: {duplicates}")
    return wnids


def _load_tree(name: str, *, root: Path, path: str | Path | None, wnids: Sequence[str] | None,
               class_names: Sequence[str] | None, image_size: int | Sequence[int], crop_fraction: float,
               in_memory: bool, workers: int | None) -> ImageDataset:
    directory = Path(path).expanduser() if path is not None else Path(root) / FOLDER
    train_dir, val_dir = directory / "train", directory / "val"
    if not (train_dir.is_dir() and val_dir.is_dir()):
        raise missing_data(name, directory, LAYOUT, HOW_TO_GET)
    classes = list(wnids) if wnids is not None else tree_classes(train_dir)
    train = scan_class_tree(train_dir, classes)
    test = scan_class_tree(val_dir, classes)
    return assemble(name, train=train, test=test, class_names=tuple(class_names or classes),
                    geometry=Geometry(size=as_size(image_size), channels=3, crop_fraction=crop_fraction),
                    mean=catalog.IMAGENET_MEAN, std=catalog.IMAGENET_STD, in_memory=in_memory,
                    workers=workers)


def load_imagenet(*, root: Path, argument: str | None = None, download: bool = False,
                  image_size: int | Sequence[int] = 224, crop_fraction: float = 0.875,
                  path: str | None = None, wnids: str | Sequence[str] | None = None,
                  in_memory: bool = False, workers: int | None = None, **unknown: Any) -> ImageDataset:
    """ImageNet-1K (1000 classes), or the subset ``wnids`` of it.

    Args:
        image_size: output side (or ``[H, W]``), default 224.
        crop_fraction: centre-crop fraction (0.875: resize 256, crop 224).
        path: a ``{train,val}/<wnid>`` tree instead of ``<data dir>/imagenet``.
        wnids: restrict to these classes, in this order.
        in_memory: decode everything up front instead of streaming.
        workers: decoding threads (in-memory mode).
    """
    reject_argument("imagenet", argument)
    reject_unknown_params("imagenet", unknown, KNOWN_PARAMS)
    subset = parse_wnids(wnids) if wnids is not None else None
    return _load_tree("imagenet", root=root, path=path, wnids=subset, class_names=None,
                      image_size=image_size, crop_fraction=crop_fraction, in_memory=in_memory, workers=workers)


def load_subset(*, root: Path, argument: str | None = None, download: bool = False,
                image_size: int | Sequence[int] = 128, crop_fraction: float = 1.0,
                path: str | None = None, wnids: str | Sequence[str] | None = None,
                in_memory: bool = False, workers: int | None = None, **unknown: Any) -> ImageDataset:
    """``imagenet-subset:<wnid>,<wnid>,...`` (or ``wnids=[...]``): any ImageNet classes, in the
    given order, at ``image_size`` (default 128, resize shorter side + centre crop)."""
    reject_unknown_params("imagenet-subset", unknown, KNOWN_PARAMS)
    if (argument is None) == (wnids is None):
        raise ConfigError("imagenet-subset needs its wnids exactly once: imagenet-subset:n01440764,n02102040 "
                          "or wnids=[...]")
    given = argument if argument is not None else wnids
    assert given is not None  # exactly one of them, checked above
    listed = parse_wnids(given)
    return _load_tree(f"imagenet-subset:{','.join(listed)}", root=root, path=path, wnids=listed,
                      class_names=None, image_size=image_size, crop_fraction=crop_fraction,
                      in_memory=in_memory, workers=workers)


def _named_subset(name: str, classes: Sequence[tuple[str, str]]):
    def load(*, root: Path, argument: str | None = None, download: bool = False,
             image_size: int | Sequence[int] = 128, crop_fraction: float = 1.0, path: str | None = None,
             in_memory: bool = False, workers: int | None = None, **unknown: Any) -> ImageDataset:
        reject_argument(name, argument)
        reject_unknown_params(name, unknown, tuple(p for p in KNOWN_PARAMS if p != "wnids"))
        return _load_tree(name, root=root, path=path, wnids=[w for w, _ in classes],
                          class_names=[n for _, n in classes], image_size=image_size,
                          crop_fraction=crop_fraction, in_memory=in_memory, workers=workers)

    load.__name__ = load.__qualname__ = f"load_{name}"
    load.__doc__ = (f"``{name}``: the 10 ImageNet classes {', '.join(n for _, n in classes)}; parameters as "
                    "for :func:`load_subset` (image_size default 128).")
    return load


load_imagenette = _named_subset("imagenette", catalog.IMAGENETTE)
load_imagewoof = _named_subset("imagewoof", catalog.IMAGEWOOF)
