"""Helpers most methods need: real images by class, class-major labels, synthetic-set
initialisation, packaging the result, and a loss curve that costs no host sync per iteration.

Synthetic sets are class-major: rows ``c*ipc .. (c+1)*ipc - 1`` hold class ``c``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ddr.errors import ConfigError, DataError
from ddr.method.distilled import DistilledSet

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext

INITS = ("noise", "real")
"""``noise``: standard normal pixels (in the dataset's pixel space); ``real``: random real images
of each class."""

CURVE_POINTS = 20
"""How many points a method's recorded loss curve has (each the mean over its window)."""


class RealSampler:
    """Random real images of one class, drawn with the context's generator.

    Like VICO's ``get_images(c, n)``: a fresh random permutation of the class per call, its
    first ``min(n, class size)`` images.
    """

    def __init__(self, ctx: "DistillContext"):
        self.train = ctx.train
        self.device = ctx.device
        self.generator = ctx.generator
        self.indices = ctx.class_indices()
        empty = [c for c, idx in enumerate(self.indices) if len(idx) == 0]
        if empty:
            raise DataError(f"classes {empty} have no training images; matching methods need real images "
                            "of every class (check the dataset and its validation split)")

    def class_size(self, c: int) -> int:
        return len(self.indices[c])

    def sample(self, c: int, n: int) -> torch.Tensor:
        """``[min(n, class size), C, H, W]`` float images of class ``c`` on the context's device."""
        idx = self.indices[c]
        perm = torch.randperm(len(idx), generator=self.generator, device=self.generator.device)[:n]
        return self.train.take(idx[perm.to(idx.device)]).to(self.device, torch.float32)


def class_major_labels(num_classes: int, ipc: int, device: torch.device | str) -> torch.Tensor:
    """int64 ``[num_classes * ipc]``: ``[0]*ipc + [1]*ipc + ...``."""
    return torch.arange(num_classes, device=device).repeat_interleave(ipc)


def init_synthetic(ctx: "DistillContext", sampler: RealSampler, init: str) -> torch.Tensor:
    """A leaf tensor ``[K*ipc, C, H, W]`` (requires grad) on ``ctx.device``, class-major.

    ``noise`` draws standard normal pixels; ``real`` copies ``ipc`` distinct random real images of
    each class (a class with fewer than ``ipc`` images is an error: use ``init=noise``).
    """
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; expected one of {INITS}")
    ipc, num_classes = ctx.ipc, ctx.num_classes
    if init == "real":
        small = {c: sampler.class_size(c) for c in range(num_classes) if sampler.class_size(c) < ipc}
        if small:
            raise DataError(f"init=real needs {ipc} real images per class but classes {small} have fewer; "
                            "use init=noise or a smaller ipc")
        images = torch.cat([sampler.sample(c, ipc) for c in range(num_classes)])
    else:
        channels, (height, width) = ctx.dataset.channels, ctx.dataset.image_size
        gen = ctx.generator
        images = torch.randn(num_classes * ipc, channels, height, width, generator=gen, device=gen.device)
    return images.to(ctx.device, torch.float32).detach().clone().requires_grad_(True)


def distilled_set(ctx: "DistillContext", images: torch.Tensor, meta: dict[str, Any]) -> DistilledSet:
    """Package the learnt class-major images (moved to the CPU) as a hard-label distilled set."""
    return DistilledSet(
        images=images.detach().to("cpu", torch.float32).contiguous(),
        labels=class_major_labels(ctx.num_classes, ctx.ipc, "cpu"),
        pixel_space=ctx.dataset.pixel_space,
        label_strategy="hard",
        meta=meta,
    )


class LossCurve:
    """Records a method's loss without a host sync per iteration.

    ``add`` takes a scalar tensor per iteration; every ``ceil(iterations / CURVE_POINTS)``
    iterations the window's mean becomes one ``[iteration, mean loss]`` point.
    """

    def __init__(self, iterations: int, points: int = CURVE_POINTS):
        self.iterations = iterations
        self.every = max(1, math.ceil(iterations / points))
        self.points: list[list[float]] = []
        self._done = 0
        self._window_sum: torch.Tensor | float = 0.0
        self._window_len = 0

    def add(self, loss: torch.Tensor) -> None:
        self._done += 1
        self._window_sum = self._window_sum + loss.detach()
        self._window_len += 1
        if self._done % self.every == 0 or self._done == self.iterations:
            self.points.append([self._done, float(self._window_sum) / self._window_len])
            self._window_sum, self._window_len = 0.0, 0

    def meta(self) -> dict[str, Any]:
        """``iterations`` run, ``final_loss`` (mean over the last window, None if none ran) and
        ``loss_curve``."""
        return {
            "iterations": self._done,
            "final_loss": self.points[-1][1] if self.points else None,
            "loss_curve": self.points,
        }


def random_picks(pools: Sequence["torch.Tensor"], ipc: int, generator: "torch.Generator") -> list["torch.Tensor"]:
    """Draw ``ipc`` indices per class uniformly without replacement.

    Args:
        pools: per-class candidate indices (each at least ``ipc`` long).
        ipc: picks per class.
        generator: the only source of randomness; one ``randperm`` per class, in class order.

    Returns:
        per class, an int64 ``[ipc]`` tensor of entries of its pool, in draw order.
    """
    picks = []
    for pool in pools:
        perm = torch.randperm(len(pool), generator=generator, device=generator.device)
        picks.append(pool[perm[:ipc].to(pool.device)])
    return picks
