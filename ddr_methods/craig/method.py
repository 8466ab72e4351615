"""CRAIG selection (Mirzasoleiman, Bilmes & Leskovec, "Coresets for Data-efficient Training of
Machine Learning Models", ICML 2020), as DeepCore implements it.

DeepCore @ 74ec709 ``deepcore/methods/craig.py`` with ``balance=True`` (main.py's default), per
class: last-layer gradients ``g`` ``[n_c, K·(D+1)]``
(:func:`ddr_methods._coreset.gradients.last_layer_gradients`), the similarity
:func:`ddr_methods._coreset.submodular.craig_similarity` (``max d − d + 1e-3`` on Euclidean
distances), greedy facility location for ``ipc`` picks (or DeepCore's ``round(fraction · n_c)`` with
``fraction`` set), and
CRAIG's weights :func:`ddr_methods._coreset.submodular.craig_weights` (how many samples each pick
stands for, plus one).

ddr trains students on unweighted images (a :class:`~ddr.method.distilled.DistilledSet` carries no
per-sample weights), so the weights, which DeepCore's ``main.py`` feeds to a ``WeightedSubset``,
are not used in training; they are recorded in the set's meta (``craig_weights``, per class,
aligned with ``selected_indices``).

One difference from DeepCore: its gradients are those of ``nn.CrossEntropyLoss()`` (the batch
mean) and so are scaled by ``1 / batch size`` (the last, smaller batch of a class differently);
here each is the gradient of the sample's own loss. Within one batch the scale does not change
the picks (facility location on a uniformly scaled, shifted similarity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ddr_methods._coreset.gradient_selection import GradientChoice, gradient_picks, select_by_gradients
from ddr_methods._coreset.submodular import (
    FacilityLocation,
    check_greedy,
    craig_similarity,
    craig_weights,
    greedy_maximize,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def craig_order(gradients: torch.Tensor, k: int, *, greedy: str = "lazy") -> tuple[torch.Tensor, torch.Tensor]:
    """CRAIG's ``k`` picks (int64 ``[k]``, pick order) on ``gradients`` ``[n, D']`` and their weights (float64 ``[k]``)."""
    similarity = craig_similarity(gradients)
    picks = greedy_maximize(FacilityLocation(similarity), k, greedy=greedy)
    return picks, craig_weights(similarity, picks)


class Craig:
    """The ``craig`` method."""

    def _choose(self, ctx: "DistillContext") -> GradientChoice:
        greedy = ctx.params["greedy"]
        check_greedy(greedy)

        def choose(gradients: torch.Tensor, k: int) -> tuple[torch.Tensor, Mapping[str, Any]]:
            picks, weights = craig_order(gradients, k, greedy=greedy)
            return picks, {"craig_weights": weights.tolist()}

        return choose

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, in pick order); the weights are in :meth:`distill`'s meta."""
        return gradient_picks(ctx, self._choose(ctx), method="craig").picks

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return select_by_gradients(ctx, self._choose(ctx), method="craig", meta={"similarity": "negative_euclidean"})
