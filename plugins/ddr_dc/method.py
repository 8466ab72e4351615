"""DC: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021).

The loop lives in :class:`ddr_matching.gradient.GradientMatching`; DC is that loop without augmentation.
"""

from __future__ import annotations

from ddr_matching.gradient import GradientMatching


class DC(GradientMatching):
    """Gradient matching; parameters as documented on :class:`ddr_matching.gradient.GradientMatching`."""

    name = "dc"
    augmentation = None
