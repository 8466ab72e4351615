"""Image files on disk: finding them in class-folder trees, decoding them to fixed-size uint8
tensors (optionally cached), and streaming them as normalised tensors.

Geometry: an image is converted to grey (``channels=1``) or RGB (``channels=3``), resized with
bilinear filtering so that it covers ``size / crop_fraction`` while keeping its aspect ratio
(for a square target: shorter side -> ``size / crop_fraction``, like torchvision's ``Resize``),
then centre-cropped to ``size``. ``crop_fraction=0.875`` at 224 px is the usual ImageNet
evaluation transform (resize 256, crop 224).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ddr.errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
CACHE_FORMAT = "decoded-uint8-v1"


@dataclass(frozen=True)
class Geometry:
    """How decoded images are shaped.

    Attributes:
        size: ``(H, W)`` in pixels of every output image.
        channels: 1 (grey, PIL mode ``L``) or 3 (RGB; alpha is dropped).
        crop_fraction: fraction of the resized image kept by the centre crop (0 < f <= 1).
    """

    size: tuple[int, int]
    channels: int
    crop_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise DataError(f"images must have 1 or 3 channels, got {self.channels}")
        if not (0.0 < self.crop_fraction <= 1.0):
            raise DataError(f"crop_fraction must lie in (0, 1], got {self.crop_fraction}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise DataError(f"image size must be (H, W) with positive sides, got {self.size}")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def class_folders(directory: Path) -> list[str]:
    """Sorted names of the visible sub-directories of ``directory``."""
    return sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))


def image_files(directory: Path) -> list[Path]:
    """Every image file below ``directory`` (recursively), in sorted path order."""
    found: list[Path] = []
    for current, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(current) / f for f in files if is_image_file(Path(f)))
    return sorted(found)


def channels_of(path: Path) -> int:
    """1 for grey-level images (PIL modes ``1``, ``L``, ``LA``, ``I``, ``F``...), else 3."""

    with _open(path) as image:
        return 1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def size_of(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, read from its header."""
    with _open(path) as image:
        width, height = image.size
    return height, width


def _open(path: Path):  # -> PIL.Image.Image
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image {path}: {error}; delete or replace the file") from error


def decode(path: Path | str, geometry: Geometry) -> np.ndarray:
    """Decode one image file to uint8 ``[C, H, W]`` shaped by ``geometry``."""
    from PIL import Image

    height, width = geometry.size
    with _open(Path(path)) as image:
        try:
            image = image.convert("L" if geometry.channels == 1 else "RGB")
        except Exception as error:  # noqa: BLE001 - damaged bytes: OSError, but also SyntaxError, struct.error, ...
            raise DataError(f"cannot decode image {path}: {error}; delete or replace the file") from error
    cover_h = round(height / geometry.crop_fraction)
    cover_w = round(width / geometry.crop_fraction)
    w, h = image.size
    scale = max(cover_h / h, cover_w / w)
    new_w, new_h = max(cover_w, int(w * scale)), max(cover_h, int(h * scale))
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = round((new_w - width) / 2), round((new_h - height) / 2)
    image = image.crop((left, top, left + width, top + height))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def cache_key(paths: Sequence[Path], geometry: Geometry) -> str:
    """sha256 over the file list (path, size, mtime) and the geometry."""
    digest = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, "geometry": asdict(geometry)}).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def decode_all(paths: Sequence[Path], geometry: Geometry, *, workers: int | None = None,
               cache_file: Path | None = None) -> torch.Tensor:
    """Decode ``paths`` to one uint8 tensor ``[N, C, H, W]`` (order preserved).

    Decoding runs on ``workers`` threads (PIL releases the GIL). With ``cache_file`` the result is
    read from that safetensors file if it exists with the right shape, else written there
    atomically after decoding; callers key the file name with :func:`cache_key`.
    """
    channels, (height, width) = geometry.channels, geometry.size
    shape = (len(paths), channels, height, width)
    if cache_file is not None and cache_file.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            cached = load_file(str(cache_file))["images"]
            if tuple(cached.shape) == shape and cached.dtype == torch.uint8:
                return cached
        except (SafetensorError, OSError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    out = np.empty(shape, dtype=np.uint8)

    def fill(i: int) -> None:
        out[i] = decode(paths[i], geometry)

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        for _ in pool.map(fill, range(len(paths))):
            pass
    images = torch.from_numpy(out)
    if cache_file is not None:
        _write_atomically(cache_file, images)
    return images


def _write_atomically(path: Path, images: torch.Tensor) -> None:
    from ddr.store.writable import save_tensors

    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors({"images": images.contiguous()}, partial)
        os.replace(partial, path)
    except OSError:  # a full or read-only cache: the decode is used now and repeated next time
        pass
    finally:
        partial.unlink(missing_ok=True)


class ImageFileSource(torch.utils.data.Dataset):
    """A map-style dataset over image files yielding ``(image float32 [C, H, W], label int)``.

    Images are decoded with ``geometry`` and normalised with ``mean``/``std``; labels are known
    up front (``labels``, int64 ``[N]``), so class indices never need a decode. Picklable, so it
    works with multi-process ``DataLoader`` workers.
    """

    def __init__(self, paths: Sequence[Path | str], labels: torch.Tensor, geometry: Geometry,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        if len(paths) != len(labels):
            raise DataError(f"{len(paths)} image files but {len(labels)} labels")
        self.paths = [str(p) for p in paths]
        self.labels = labels
        self.geometry = geometry
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = torch.from_numpy(decode(self.paths[index], self.geometry)).to(torch.float32).div_(255.0)
        return (pixels - self.mean) / self.std, int(self.labels[index])
