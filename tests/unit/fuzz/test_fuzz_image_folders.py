"""Fuzzing the class-folder image readers: the ``folder:<path>`` dataset
(:mod:`ddr.builtins.datasets.folder`, decoded in memory or streamed) and a distilled set given as an
image tree (``ddr eval my_images/``, :func:`ddr.store.formats.load_distilled`). Trees hold images of
every mode and format PIL writes, at odd sizes, damaged or truncated files, random bytes behind an
image extension, empty, hidden and nested folders, train/test splits that disagree, and links.
Each property: a dataset or set, or a DdrError with a message; the tree is never changed, and
nothing is written outside the cache folder."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers.fuzzing import environ, mutated_bytes, parse_outcome, scratch_dir, snapshot, weighted
from hypothesis import strategies as st
from PIL import Image

from ddr.builtins.datasets.folder import load as load_folder
from ddr.engine.data import ImageDataset
from ddr.method.distilled import DistilledSet, validate_distilled
from ddr.store.formats import load_distilled

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::PIL.Image.DecompressionBombWarning")
FORMATS = {  # format -> (extension, modes it writes)
    "PNG": (".png", ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16")),
    "JPEG": (".jpg", ("L", "RGB", "CMYK")),
    "BMP": (".bmp", ("1", "L", "P", "RGB")),
    "GIF": (".gif", ("L", "P")),
    "TIFF": (".tiff", ("1", "L", "RGB", "RGBA", "CMYK", "I", "F", "I;16")),
    "WEBP": (".webp", ("RGB", "RGBA")),
    "PPM": (".ppm", ("L", "RGB")),
}


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, bytes): a small image of any mode and format, often damaged or fake."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    extension, modes = FORMATS[fmt]
    mode = draw(st.sampled_from(modes))
    width, height = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold
        image.convert("RGB").save(buffer, format="PNG")
        extension = ".png"
    content = draw(weighted((st.just(buffer.getvalue()), 12), (mutated_bytes(buffer.getvalue()), 2),
                            (st.just(buffer.getvalue()[:draw(st.integers(0, 40))]), 1), (st.binary(max_size=40), 1),
                            (BOMBS.map(lambda size: _png_declaring(*size)), 1)))
    name = draw(weighted((st.just(f"img{seed}"), 12), (st.sampled_from((".hidden", "é", "a b", "x.tar")), 1)))
    extension = draw(weighted((st.just(extension), 12), (st.sampled_from((".PNG", ".JpEg", ".txt", "")), 1)))
    return name + extension, content


def _png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb when large)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    return bytes(data)


BOMBS = st.sampled_from(((30000, 30000), (12000, 12000), (1, 10**6), (2**31 - 1, 1), (0, 5)))
"""Declared sizes: above PIL's bomb limit, above its warning limit, one long row, the format's
largest, zero."""


CLASSES = ("a", "b", "c", "0", "1", "10", "2", ".hidden", "é", "a b")
NESTED = ("", "", "", "sub/", "sub/deeper/", ".git/")


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    """{relative path: bytes, or ``("link", target)``}: a class-folder tree, maybe with splits."""
    layout = draw(st.sampled_from(("flat", "flat", "flat", "split", "split-val", "train-only")))
    splits = {"flat": [""], "split": ["train/", "test/"], "split-val": ["train/", "val/"], "train-only": ["train/"]}[layout]
    tree: dict[str, Any] = {}
    for split in splits:
        for cls in draw(st.lists(weighted((st.sampled_from(CLASSES[:3]), 4), (st.sampled_from(CLASSES), 1)),
                                 min_size=draw(st.sampled_from((1, 1, 1, 0))), max_size=3, unique=True)):
            tree[f"{split}{cls}/"] = b""  # the folder, even when it holds nothing
            for _ in range(draw(weighted((st.integers(1, 4), 7), (st.just(0), 1)))):
                name, content = draw(image_files())
                tree[f"{split}{cls}/{draw(st.sampled_from(NESTED))}{name}"] = content
    extra = draw(st.sampled_from(("", "", "", "loose", "link-out", "link-loop", "link-file")))
    if extra == "loose":
        tree["loose.png"] = draw(image_files())[1]
    elif extra.startswith("link") and tree:
        folder = draw(st.sampled_from(sorted(k for k in tree if k.endswith("/"))))
        target = {"link-out": "../../outside", "link-loop": "..", "link-file": "../../outside/secret.png"}[extra]
        tree[f"{folder}link"] = ("link", target)
    return tree


def _write(root: Path, tree: dict[str, Any]) -> None:
    root.mkdir(parents=True)
    for rel, content in sorted(tree.items()):
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            path.symlink_to(content[1])
        else:
            path.write_bytes(content)


def _outside(tmp: Path) -> None:
    (tmp / "outside").mkdir()
    Image.new("RGB", (3, 3)).save(tmp / "outside" / "secret.png")


def _read_all(dataset: ImageDataset) -> None:
    """Every image of both splits, decoded (a streamed split decodes when read)."""
    for split in (dataset.train, dataset.test):
        if split.images is not None:
            assert split.images.dtype == torch.float32 and bool(torch.isfinite(split.images).all())
            continue
        for index in range(len(split)):
            image, label = split.source[index]
            assert image.shape == (dataset.channels, *dataset.image_size)


ARGUMENTS = ("", "~nosuchuser-ddr/tree", "tree/a", "tree/../tree", "./tree", "tree\x00", "/nonexistent", "é")
"""``folder:<argument>`` besides the tree itself: empty, ~user, a class folder, odd spellings, missing."""


def test_folder_datasets(run_property: Callable[..., None]) -> None:
    """``folder:<tree>`` in memory (with the decode cache) and streamed, with and without an
    image size, channels, crop and mean/std given; sometimes a path that is no tree."""
    given = st.fixed_dictionaries({}, optional={
        "image_size": st.sampled_from((4, [3, 5], 4, 0, [2**40, 2], -1)), "channels": st.sampled_from((1, 3, 3, 2)),
        "test_fraction": st.sampled_from((0.5, 0.5, 0.0, 1.0)), "crop_fraction": st.sampled_from((0.5, 1.0, 0.0)),
        "mean": st.sampled_from(((0.5,), (0.5, 0.5, 0.5))), "std": st.sampled_from(((0.25,), (0.2, 0.2, 0.2)))})
    params = st.builds(lambda memory, cache, extra: {"in_memory": memory, "cache": cache, **extra}, st.booleans(),
                       st.booleans(), weighted((st.just({}), 2), (given, 1)))

    def prop(tree: dict[str, Any], kwargs: dict[str, Any], argument: str) -> None:
        with scratch_dir() as tmp:
            _outside(tmp)
            _write(tmp / "data" / "tree", tree)
            before = snapshot(tmp)
            with environ(DDR_CACHE_DIR=str(tmp / "cache")):
                dataset, _ = parse_outcome(lambda: load_folder(root=tmp / "data", argument=argument, workers=1,
                                                               **kwargs))
                if dataset is not None:
                    assert isinstance(dataset, ImageDataset) and dataset.num_classes >= 1
                    parse_outcome(lambda: _read_all(dataset))
            after = {k: v for k, v in snapshot(tmp).items() if k != "cache" and not k.startswith("cache/")}
            assert after == before

    arguments = weighted((st.just("tree"), 12), (st.sampled_from(ARGUMENTS), 1))
    run_property(prop, trees(), params, arguments, examples=0.8)


def test_distilled_image_trees(run_property: Callable[..., None]) -> None:
    """``ddr eval TREE``: a distilled set given as class folders of images, then checked against
    a 2-class, 1-channel, 4x4 dataset (resizing allowed or not)."""

    def prop(tree: dict[str, Any], num_classes: int | None, resize: bool) -> None:
        with scratch_dir() as tmp:
            _outside(tmp)
            _write(tmp / "tree", tree)
            before = snapshot(tmp)
            ds, _ = parse_outcome(lambda: load_distilled(tmp / "tree", num_classes=num_classes))
            if ds is not None:
                assert isinstance(ds, DistilledSet)
                parse_outcome(lambda: validate_distilled(ds, num_classes=2, ipc=2, channels=1, image_size=4,
                                                         mean=(0.5,), std=(0.25,), resize=resize,
                                                         expect_ipc_exact=False))
            assert snapshot(tmp) == before

    run_property(prop, trees(), st.sampled_from((None, 2, 3)), st.booleans(), examples=0.8)
