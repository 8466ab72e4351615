"""DSA: gradient matching with Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021).

DC's loop (:func:`ddr_methods._matching.gradient.gradient_matching`) with the registered ``dsa``
augmentation applied with identical parameters to each class's real and synthetic batch, and
applied (non-Siamese) while the sampled network trains on the synthetic set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddr_methods._matching.gradient import gradient_matching

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method import DistillContext, DistilledSet


class DSA:
    """Gradient matching with Siamese DSA; ``augmentation_params`` go to the ``dsa`` augmentation."""

    name = "dsa"

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return gradient_matching(ctx, method=self.name, augmentation="dsa")
