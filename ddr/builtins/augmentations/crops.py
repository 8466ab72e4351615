"""Standard geometric training augmentations, batched with per-sample parameters:
``flip``, ``random_resized_crop`` and ``crop_flip`` (zero-padded random crop + flip)."""

from __future__ import annotations

from typing import Any

import torch

from ddr.builtins.augmentations.checks import check_batch, integer, number, number_pair, reject_unknown
from ddr.engine.augment import Mix
from ddr.engine.geometry import mirror, resized_crop, translate


class Flip:
    """Mirror each image left-right with probability ``p`` (0..1)."""

    differentiable = True

    def __init__(self, p: float = 0.5, **unknown: Any) -> None:
        reject_unknown("flip", unknown, ("p",))
        self.p = number("flip", "p", p, low=0.0, high=1.0)

    def __repr__(self) -> str:
        return f"Flip(p={self.p})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("flip", images, generator)
        where = torch.rand(images.shape[0], generator=generator, device=images.device) < self.p
        return mirror(images, where), None


class RandomResizedCrop:
    """torchvision-style RandomResizedCrop with the output at the input size, per-sample boxes.

    Parameters:
        scale: ``[min, max]`` crop area as a fraction (0..1] of the image area.
        ratio: ``[min, max]`` aspect ratio (width / height) of the crop, drawn log-uniformly.
    """

    differentiable = True

    def __init__(self, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), **unknown: Any) -> None:
        reject_unknown("random_resized_crop", unknown, ("scale", "ratio"))
        self.scale = number_pair("random_resized_crop", "scale", scale)
        self.ratio = number_pair("random_resized_crop", "ratio", ratio)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(scale={self.scale}, ratio={self.ratio})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("random_resized_crop", images, generator)
        return resized_crop(images, generator, self.scale, self.ratio), None


class CropFlip:
    """The real-data recipe's augmentation: zero-padded random crop, then a left-right flip.

    Equivalent to ``RandomCrop(size, padding=pad)`` + ``RandomHorizontalFlip(flip)`` on each
    sample: the image moves by whole pixels in ``[-pad, pad]`` per axis, uncovered pixels are 0.

    Parameters:
        padding: pad in pixels for images of ``reference_size`` (4 at 32 px, the CIFAR recipe).
        reference_size: smaller images get a proportionally smaller pad, at least 1 pixel
            (e.g. 2 at 16 px); larger images keep ``padding``. ``None`` disables the scaling.
        flip: probability (0..1) of the flip.
    """

    differentiable = True

    def __init__(self, padding: int = 4, *, reference_size: int | None = 32, flip: float = 0.5,
                 **unknown: Any) -> None:
        reject_unknown("crop_flip", unknown, ("padding", "reference_size", "flip"))
        self.padding = integer("crop_flip", "padding", padding, low=0)
        self.reference_size = (None if reference_size is None
                               else integer("crop_flip", "reference_size", reference_size, low=1))
        self.flip = number("crop_flip", "flip", flip, low=0.0, high=1.0)

    def __repr__(self) -> str:
        return f"CropFlip(padding={self.padding}, reference_size={self.reference_size}, flip={self.flip})"

    def pad_for(self, image_size: tuple[int, int]) -> int:
        """The pad in pixels used for images of ``(H, W)``."""
        side = min(image_size)
        if self.padding == 0 or self.reference_size is None or side >= self.reference_size:
            return self.padding
        return max(1, round(self.padding * side / self.reference_size))

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("crop_flip", images, generator)
        batch = images.shape[0]
        pad = self.pad_for((images.shape[-2], images.shape[-1]))
        shift_y = torch.randint(-pad, pad + 1, (batch,), generator=generator, device=images.device)
        shift_x = torch.randint(-pad, pad + 1, (batch,), generator=generator, device=images.device)
        flipped = torch.rand(batch, generator=generator, device=images.device) < self.flip
        return mirror(translate(images, shift_y, shift_x), flipped), None
