"""DSA: gradient matching with Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021).

DC's loop (:class:`ddr_matching.gradient.GradientMatching`) with the registered ``dsa`` augmentation
applied with identical parameters to each class's real and synthetic batch, and applied
(non-Siamese) while the sampled network trains on the synthetic set.
"""

from __future__ import annotations

from ddr_matching.gradient import GradientMatching


class DSA(GradientMatching):
    """Gradient matching with Siamese DSA; ``augmentation_params`` go to the ``dsa`` augmentation."""

    name = "dsa"
    augmentation = "dsa"
