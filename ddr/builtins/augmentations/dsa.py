"""Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021), batched and generator-driven.

Follows ``ParamDiffAug``/``DiffAugment`` of VICO-UoE/DatasetCondensation (``utils.py``):
the same six op families, formulas and defaults. Differences: parameters are drawn from the
explicit generator instead of the global torch RNG, affine maps are built as tensors (no
per-sample Python lists), and siamese sharing is a call option instead of a seed counter.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

import torch

from ddr.builtins.augmentations.checks import (
    check_batch,
    number,
    reject_unknown,
    resolve_aliases,
    signature_defaults,
)
from ddr.engine.augment import Mix
from ddr.engine.geometry import box_mask, mirror, translate, warp_affine
from ddr.errors import ConfigError

FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")
"""The op families a strategy string is made of (``color`` = brightness, saturation, contrast)."""

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"

ALIASES = {
    "prob_flip": "flip",
    "ratio_scale": "scale",
    "ratio_rotate": "rotate",
    "ratio_crop_pad": "crop",
    "ratio_cutout": "cutout",
    "aug_mode": "mode",
}
"""VICO's ``ParamDiffAug`` attribute names (used in DD-Ranking's docs) -> our parameter names."""

MODES = ("S", "M")


def parse_strategy(strategy: str | Sequence[str]) -> tuple[str, ...]:
    """``"color_crop_flip"`` (or a list of names) -> ``("color", "crop", "flip")``; ``"none"`` -> ``()``."""
    if isinstance(strategy, str):
        names = [] if strategy.lower() in ("", "none") else strategy.split("_")
    elif isinstance(strategy, Sequence) and all(isinstance(name, str) for name in strategy):
        names = list(strategy)
    else:
        raise ConfigError(f"augmentation 'dsa': strategy must be a string like {DEFAULT_STRATEGY!r}, got {strategy!r}")
    for name in names:
        if name not in FAMILIES:
            close = difflib.get_close_matches(name, FAMILIES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"augmentation 'dsa': unknown op {name!r} in strategy {strategy!r}{hint}; "
                f"ops are {', '.join(FAMILIES)}, joined with '_'"
            )
    return tuple(names)


class DSA:
    """Differentiable Siamese Augmentation.

    ``DSA(strategy, mode, flip, scale, rotate, crop, cutout, brightness, saturation, contrast)``;
    called as ``dsa(images[B,C,H,W], generator, *, siamese=False) -> (images, None)``.

    Parameters (defaults of ``ParamDiffAug``):
        strategy: op families joined with ``_`` (see :data:`FAMILIES`), or ``"none"``.
        mode: ``"S"`` draws ONE family per batch, uniformly over the strategy's families, with
            per-sample parameters; ``"M"`` applies every family in strategy order.
        flip: probability of a left-right mirror.
        scale: ratio ``r``; x and y scale factors are drawn from ``U(1/r, r)``.
        rotate: maximum rotation in degrees; the angle is drawn from ``U(-rotate, rotate)``.
        crop: maximum shift as a fraction of the side; the image moves by a whole number of
            pixels in ``[-round(crop*H), round(crop*H)]`` (per axis), uncovered pixels are zero.
        cutout: side of the zeroed square as a fraction of the image side, at a random centre.
        brightness: adds ``(u - 0.5) * brightness``, ``u ~ U(0, 1)``.
        saturation: scales each pixel's deviation from its channel mean by ``u * saturation``.
        contrast: scales each image's deviation from its mean by ``u + contrast``.

    VICO's long names (``prob_flip``, ``ratio_scale``, ``ratio_rotate``, ``ratio_crop_pad``,
    ``ratio_cutout``, ``aug_mode``) are accepted as aliases.

    Siamese use (DC/DSA gradient matching): with ``siamese=True`` one parameter set is drawn and
    shared by every sample, and the number of draws does not depend on the batch size. To give
    a real batch and a synthetic batch the *same* transformation, call the augmentation on both
    with generators in the same state::

        state = generator.get_state()
        real_aug, _ = dsa(real, generator, siamese=True)
        twin = torch.Generator(device=generator.device)
        twin.set_state(state)
        syn_aug, _ = dsa(syn, twin, siamese=True)   # same op family, same parameters

    Every op is a batched tensor op, differentiable with respect to the images, so gradients
    reach synthetic images through the augmentation.
    """

    differentiable = True

    def __init__(
        self,
        strategy: str | Sequence[str] = DEFAULT_STRATEGY,
        *,
        mode: str = "S",
        flip: float = 0.5,
        scale: float = 1.2,
        rotate: float = 15.0,
        crop: float = 0.125,
        cutout: float = 0.5,
        brightness: float = 1.0,
        saturation: float = 2.0,
        contrast: float = 0.5,
        **aliases: Any,
    ) -> None:
        params: dict[str, Any] = {
            "strategy": strategy, "mode": mode, "flip": flip, "scale": scale, "rotate": rotate,
            "crop": crop, "cutout": cutout, "brightness": brightness, "saturation": saturation,
            "contrast": contrast}
        resolve_aliases("dsa", params, aliases, ALIASES, signature_defaults(DSA))
        reject_unknown("dsa", aliases, list(params) + list(ALIASES))
        self.families = parse_strategy(params["strategy"])
        self.strategy = "_".join(self.families) or "none"
        if params["mode"] not in MODES:
            raise ConfigError(f"augmentation 'dsa': mode must be 'S' (one op per batch) or 'M' (all ops), "
                              f"got {params['mode']!r}")
        self.mode = params["mode"]
        self.flip = number("dsa", "flip", params["flip"], low=0.0, high=1.0)
        self.scale = number("dsa", "scale", params["scale"], low=0.0, low_open=True)
        self.rotate = number("dsa", "rotate", params["rotate"], low=0.0, high=180.0)
        self.crop = number("dsa", "crop", params["crop"], low=0.0, high=1.0)
        self.cutout = number("dsa", "cutout", params["cutout"], low=0.0, high=1.0)
        self.brightness = number("dsa", "brightness", params["brightness"], low=0.0)
        self.saturation = number("dsa", "saturation", params["saturation"], low=0.0)
        self.contrast = number("dsa", "contrast", params["contrast"], low=0.0)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in signature_defaults(DSA))
        return f"DSA({fields})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator, *,
                 siamese: bool = False) -> tuple[torch.Tensor, Mix | None]:
        check_batch("dsa", images, generator)
        if not self.families:
            return images, None
        families = self.families
        if self.mode == "S":
            pick = torch.randint(len(families), (1,), generator=generator, device=images.device)
            families = (families[int(pick)],)
        for family in families:
            images = getattr(self, f"_{family}")(images, generator, siamese)
        return images.contiguous(), None

    # -- random draws: one per sample, or one shared by the batch when siamese ------------------

    @staticmethod
    def _uniform(images: torch.Tensor, generator: torch.Generator, siamese: bool,
                 low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        count = 1 if siamese else images.shape[0]
        u = torch.rand(count, generator=generator, device=images.device, dtype=images.dtype)
        return (low + (high - low) * u).expand(images.shape[0])

    @staticmethod
    def _randint(images: torch.Tensor, generator: torch.Generator, siamese: bool,
                 low: int, high: int) -> torch.Tensor:
        count = 1 if siamese else images.shape[0]
        value = torch.randint(low, high, (count,), generator=generator, device=images.device)
        return value.expand(images.shape[0])

    # -- the op families -----------------------------------------------------------------------

    def _scale(self, images: torch.Tensor, generator: torch.Generator, siamese: bool) -> torch.Tensor:
        sx = self._uniform(images, generator, siamese, 1.0 / self.scale, self.scale)
        sy = self._uniform(images, generator, siamese, 1.0 / self.scale, self.scale)
        zero = torch.zeros_like(sx)
        theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
        return warp_affine(images, theta)

    def _rotate(self, images: torch.Tensor, generator: torch.Generator, siamese: bool) -> torch.Tensor:
        limit = self.rotate * math.pi / 180.0
        angle = self._uniform(images, generator, siamese, -limit, limit)
        cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        return warp_affine(images, theta)

    def _flip(self, images: torch.Tensor, generator: torch.Generator, siamese: bool) -> torch.Tensor:
        return mirror(images, self._uniform(images, generator, siamese) < self.flip)

    def _color(self, images: torch.Tensor, generator: torch.Generator, siamese: bool) -> torch.Tensor:
        """brightness, then saturation, then contrast, each with its own per-sample factor."""
        def factor(low: float, high: float) -> torch.Tensor:
            return self._uniform(images, generator, siamese, low, high)[:, None, None, None]

        out = images + (factor(0.0, 1.0) - 0.5) * self.brightness
        channel_mean = out.mean(dim=1, keepdim=True)
        out = (out - channel_mean) * factor(0.0, self.saturation) + channel_mean
        image_mean = out.mean(dim=(1, 2, 3), keepdim=True)
        return (out - image_mean) * factor(self.contrast, self.contrast + 1.0) + image_mean

    def _crop(self, images: torch.Tensor, generator: torch.Generator, siamese: bool) -> torch.Tensor:
        h, w = images.shape[-2:]
        max_dy, max_dx = int(h * self.crop + 0.5), int(w * self.crop + 0.5)
        dy = self._randint(images, generator, siamese, -max_dy, max_dy + 1)
        dx = self._randint(images, generator, siamese, -max_dx, max_dx + 1)
        return translate(images, dy, dx)

    def _cutout(self, images: torch.Tensor, generator: torch.Generator, siamese: bool) -> torch.Tensor:
        h, w = images.shape[-2:]
        size_h, size_w = int(h * self.cutout + 0.5), int(w * self.cutout + 0.5)
        # VICO's centre ranges: one row/column past the edge for even sizes, so that boxes
        # hanging over either edge are equally likely
        centre_y = self._randint(images, generator, siamese, 0, h + 1 - size_h % 2)
        centre_x = self._randint(images, generator, siamese, 0, w + 1 - size_w % 2)
        top, left = centre_y - size_h // 2, centre_x - size_w // 2
        hole = box_mask((h, w), top, left, top + size_h, left + size_w)
        return images * (~hole).unsqueeze(1).to(images.dtype)
