"""The augmentation contract and the pipeline that chains augmentations.

An augmentation is a callable ``aug(images[B,C,H,W], generator) -> (images, Mix | None)``. It
must be batched (no per-sample Python loop), run on the images' device, and draw every random
number from the explicit ``torch.Generator`` it is given, so the same generator state gives the
same output. Mixing augmentations (mixup, cutmix) return a :class:`Mix` telling the label
strategy how to mix targets: ``target_i = lam_i * t_i + (1 - lam_i) * t_perm[i]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class Mix:
    """How a batch was mixed: ``perm`` int64 ``[B]`` partner indices, ``lam`` float ``[B]`` the
    fraction (0..1) of each output image that comes from its own sample."""

    perm: "torch.Tensor"
    lam: "torch.Tensor"


@runtime_checkable
class Augmentation(Protocol):
    def __call__(self, images: "torch.Tensor", generator: "torch.Generator") -> "tuple[torch.Tensor, Mix | None]":
        ...


class Pipeline:
    """Apply augmentations in order; at most one of them may mix."""

    def __init__(self, augmentations: Sequence[Augmentation] = (), names: Sequence[str] = ()):
        self.augmentations = list(augmentations)
        self.names = list(names)

    def __bool__(self) -> bool:
        return bool(self.augmentations)

    def __call__(self, images: "torch.Tensor", generator: "torch.Generator") -> "tuple[torch.Tensor, Mix | None]":
        mix = None
        for aug in self.augmentations:
            images, new_mix = aug(images, generator)
            if new_mix is not None:
                if mix is not None:
                    raise ConfigError(
                        f"augmentations {self.names} mix labels twice in one batch; keep one of mixup/cutmix"
                    )
                mix = new_mix
        return images, mix
