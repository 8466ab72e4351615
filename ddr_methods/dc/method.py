"""DC: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021).

DC is :func:`ddr_methods._matching.gradient.gradient_matching` without augmentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddr_methods._matching.gradient import gradient_matching

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method import DistillContext, DistilledSet


class DC:
    """Gradient matching; parameters as documented on :func:`ddr_methods._matching.gradient.gradient_matching`."""

    name = "dc"

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return gradient_matching(ctx, method=self.name, augmentation=None)
