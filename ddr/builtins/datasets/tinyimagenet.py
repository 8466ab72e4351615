"""``tinyimagenet``: Tiny-ImageNet-200 (100000 train / 10000 val images, 64x64 RGB, 200 classes).

Official layout under the data directory::

    tiny-imagenet-200/wnids.txt                 one wnid per line
    tiny-imagenet-200/words.txt                 "wnid<TAB>names" (optional: class names)
    tiny-imagenet-200/train/<wnid>/images/*.JPEG
    tiny-imagenet-200/val/images/*.JPEG + val/val_annotations.txt ("file<TAB>wnid<TAB>box...")

(``val/<wnid>/**`` folders, as some preprocessing scripts leave them, are accepted too.) The
labelled val split is the test split, as in the dataset-distillation literature; the official
test split has no labels. Class ``c`` is the ``c``-th wnid in sorted order. Labels are read from
folder names and the annotation file, without decoding. Images are decoded once into memory
(``in_memory=True``, about 1.2 GB as uint8 plus 4.9 GB as float32) and the uint8 decode is cached
in ``$DDR_CACHE_DIR/decoded``; ``in_memory=False`` streams from the files instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ddr.builtins.datasets.catalog import IMAGENET_MEAN, IMAGENET_STD
from ddr.builtins.datasets.images import Geometry, is_image_file
from ddr.builtins.datasets.labelled_files import LabelledFiles, assemble, scan_class_tree
from ddr.builtins.datasets.loading import download_failed, missing_data, reject_argument, reject_unknown_params
from ddr.engine.data import ImageDataset
from ddr.errors import DataError
from ddr.store.paths import cache_dir

NAME = "tinyimagenet"
FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
LAYOUT = ("wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt "
          "(the unzipped official tiny-imagenet-200.zip)")


MAX_BYTES = 4 * 2**30
"""Bound on the extracted archive (bytes); the official zip holds about 0.5 GB."""


def _fetch(root: Path) -> None:
    """Download the official zip with torchvision (which checks its md5), then extract it with
    ddr's :func:`~ddr.store.archives.safe_extract` (no links, no paths outside ``root``, bounded size)."""
    from torchvision.datasets.utils import download_url

    from ddr.store.archives import safe_extract

    download_url(URL, str(root), filename=Path(URL).name, md5=MD5)
    safe_extract(Path(root) / Path(URL).name, Path(root), max_bytes=MAX_BYTES)


def _locate(root: Path, download: bool) -> Path:
    directory = Path(root) / FOLDER
    needed = (directory / "wnids.txt", directory / "train", directory / "val")
    if all(p.exists() for p in needed):
        return directory
    if not download:
        raise missing_data(NAME, directory, LAYOUT, f"run again with --download (download=True), or unzip {URL} into {root}")
    try:
        _fetch(Path(root))
    except DataError:  # the archive was refused (ddr's own message says why)
        raise
    except Exception as error:  # network and checksum errors
        raise download_failed(NAME, directory, error, f"unzip {URL} into {root}") from error
    if not all(p.exists() for p in needed):
        raise missing_data(NAME, directory, LAYOUT, "the download finished but the layout is incomplete")
    return directory


def read_wnids(directory: Path) -> list[str]:
    """Sorted wnids listed in ``wnids.txt``."""
    wnids = sorted({line.strip() for line in (directory / "wnids.txt").read_text().splitlines() if line.strip()})
    if not wnids:
        raise DataError(f"{directory / 'wnids.txt'} lists no wnids")
    return wnids


def read_class_names(directory: Path, wnids: list[str]) -> tuple[str, ...]:
    """First name of each wnid from ``words.txt`` (the wnid itself where absent)."""
    words = directory / "words.txt"
    names: dict[str, str] = {}
    if words.is_file():
        for line in words.read_text(encoding="utf-8", errors="replace").splitlines():
            wnid, _, text = line.partition("\t")
            names[wnid.strip()] = text.split(",")[0].strip()
    return tuple(names.get(w) or w for w in wnids)


def read_val(directory: Path, wnids: list[str]) -> LabelledFiles:
    """The labelled val split, from ``val_annotations.txt`` or from ``val/<wnid>/`` folders."""
    val = directory / "val"
    annotations = val / "val_annotations.txt"
    if not annotations.is_file():
        return scan_class_tree(val, wnids)
    index = {w: i for i, w in enumerate(wnids)}
    paths, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataError(f"{annotations}:{number}: expected 'file<TAB>wnid...' with a wnid from wnids.txt, got {line!r}")
        path = val / "images" / fields[0]
        if not is_image_file(path) or not path.is_file():
            raise DataError(f"{annotations}:{number}: image {path} does not exist")
        paths.append(path)
        labels.append(index[fields[1]])
    order = np.argsort([str(p) for p in paths], kind="stable")
    return LabelledFiles([paths[i] for i in order], np.asarray(labels, dtype=np.int64)[order])


def load(*, root: Path, argument: str | None = None, download: bool = False, in_memory: bool = True,
         cache: bool = True, workers: int | None = None, **unknown: Any) -> ImageDataset:
    """Load Tiny-ImageNet.

    Args:
        in_memory: decode all images up front (True) or stream them from disk (False).
        cache: keep the uint8 decode in ``$DDR_CACHE_DIR/decoded`` (in-memory mode).
        workers: decoding threads.
    """
    reject_argument(NAME, argument)
    reject_unknown_params(NAME, unknown, ("in_memory", "cache", "workers"))
    directory = _locate(root, download)
    wnids = read_wnids(directory)
    train = scan_class_tree(directory / "train", wnids)
    test = read_val(directory, wnids)
    return assemble(NAME, train=train, test=test, class_names=read_class_names(directory, wnids),
                    geometry=Geometry(size=(64, 64), channels=3), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    in_memory=in_memory, cache_dir=cache_dir() if cache else None, workers=workers)
