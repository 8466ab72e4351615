"""RDED's student-training augmentation (Sun et al., CVPR 2024; LINs-lab/RDED ``validation/``):
``ShufflePatches(factor)`` -> ``RandomResizedCrop(scale=(1/factor, 1))`` -> horizontal flip.

RDED stitches ``factor x factor`` real patches into one image; shuffling the patch grid and
cropping at least one patch's area keeps the student from relying on the stitching layout.
"""

from __future__ import annotations

from typing import Any

import torch

from ddr.builtins.augmentations.checks import check_batch, integer, number, number_pair, reject_unknown
from ddr.engine.augment import Mix
from ddr.engine.geometry import resized_crop
from ddr.errors import ConfigError


def _strip_index(batch: int, length: int, factor: int, generator: torch.Generator,
                 device: torch.device) -> torch.Tensor:
    """int64 ``[batch, length]``: for each output position along one axis, the input position
    after permuting the ``factor`` equal strips with an independent permutation per sample.
    Positions past ``factor * (length // factor)`` (the remainder) stay in place."""
    strip = length // factor
    order = torch.argsort(torch.rand(batch, factor, generator=generator, device=device), dim=1)
    position = torch.arange(length, device=device)
    within, slot = position % strip, (position // strip).clamp(max=factor - 1)
    source = order[:, slot] * strip + within  # [batch, length]
    remainder = position >= factor * strip
    return torch.where(remainder, position, source)


def shuffle_patches(images: torch.Tensor, factor: int, generator: torch.Generator) -> torch.Tensor:
    """RDED's ``ShufflePatches``: permute the ``factor`` column strips, then the ``factor`` row
    strips, each with its own random permutation per sample.

    As in RDED this moves patch ``(r, c)`` of the ``factor x factor`` grid to
    ``(row_perm[r], col_perm[c])`` (not an arbitrary permutation of all patches). Unlike RDED,
    which drops the last ``side % factor`` pixels, those stay in place so the size is kept.
    """
    if factor == 1:
        return images
    batch, channels, h, w = images.shape
    cols = _strip_index(batch, w, factor, generator, images.device)
    images = images.gather(3, cols[:, None, None, :].expand(batch, channels, h, w))
    rows = _strip_index(batch, h, factor, generator, images.device)
    return images.gather(2, rows[:, None, :, None].expand(batch, channels, h, w))


class RDEDAugmentation:
    """``ShufflePatches(factor)`` + ``RandomResizedCrop(scale, ratio)`` + flip, per sample.

    Parameters (RDED's defaults):
        factor: patches per side of the stitched images (RDED: 2 for ImageNet, 1 for CIFAR);
            1 disables the shuffle.
        scale: ``[min, max]`` crop area fraction; ``None`` means ``[1 / factor, 1]`` as in RDED
            (with factor 1 the crop is then the whole image).
        ratio: ``[min, max]`` crop aspect ratio (width / height).
        flip: probability (0..1) of a left-right flip.
    """

    differentiable = True

    def __init__(self, factor: int = 2, *, scale: tuple[float, float] | None = None,
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: float = 0.5, **unknown: Any) -> None:
        reject_unknown("rded", unknown, ("factor", "scale", "ratio", "flip"))
        self.factor = integer("rded", "factor", factor, low=1)
        self.scale = (1.0 / self.factor, 1.0) if scale is None else number_pair("rded", "scale", scale)
        self.ratio = number_pair("rded", "ratio", ratio)
        self.flip = number("rded", "flip", flip, low=0.0, high=1.0)

    def __repr__(self) -> str:
        return f"RDEDAugmentation(factor={self.factor}, scale={self.scale}, ratio={self.ratio}, flip={self.flip})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("rded", images, generator)
        if min(images.shape[-2:]) < self.factor:
            raise ConfigError(f"augmentation 'rded': factor {self.factor} is larger than the image side "
                              f"{min(images.shape[-2:])}")
        images = shuffle_patches(images, self.factor, generator)
        return resized_crop(images, generator, self.scale, self.ratio, self.flip), None
