"""Random selection: per class, ``ipc`` real images drawn uniformly without replacement.

The draw is one ``torch.randperm(n_c, generator=ctx.generator)`` per class, in class order, so a
seed fixes the subset. Every class must hold at least ``ipc`` images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddr.method.helpers import random_picks
from ddr_methods._selection import class_pools, selected_subset

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


class RandomSelection:
    """The ``random`` method (no parameters)."""

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        picks = random_picks(class_pools(ctx), ctx.ipc, ctx.generator)
        return selected_subset(ctx, picks, method="random")
