"""Facility location and graph cut selection on last-layer loss gradients, as DeepCore runs them.

Per class (DeepCore ``submodular.py`` with ``balance=True``): gradients ``g`` ``[n_c, K·(D+1)]``
(:func:`ddr_methods._coreset.gradients.last_layer_gradients`), the kernel
:func:`ddr_methods._coreset.submodular.cosine_similarity` (``0.5 + 0.5·cos``), then
:func:`ddr_methods._coreset.submodular.greedy_maximize` of :class:`~ddr_methods._coreset.submodular.FacilityLocation`
or :class:`~ddr_methods._coreset.submodular.GraphCut` (``λ = lam``) for ``ipc`` picks, or DeepCore's
``round(fraction · n_c)`` with ``fraction`` set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ddr import ConfigError
from ddr_methods._coreset.gradient_selection import GradientChoice, gradient_picks, select_by_gradients
from ddr_methods._coreset.submodular import (
    FacilityLocation,
    GraphCut,
    check_greedy,
    cosine_similarity,
    greedy_maximize,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def facility_location_order(gradients: torch.Tensor, k: int, *, greedy: str = "lazy") -> torch.Tensor:
    """``k`` greedy facility-location picks (int64 ``[k]``, pick order) on ``gradients`` ``[n, D']``."""
    return greedy_maximize(FacilityLocation(cosine_similarity(gradients)), k, greedy=greedy)


def graph_cut_order(gradients: torch.Tensor, k: int, *, lam: float = 1.0, greedy: str = "lazy") -> torch.Tensor:
    """``k`` greedy graph-cut picks (int64 ``[k]``, pick order) on ``gradients`` ``[n, D']``."""
    return greedy_maximize(GraphCut(cosine_similarity(gradients), lam=lam), k, greedy=greedy)


class FacilityLocationSelection:
    """The ``facility-location`` method."""

    name = "facility-location"

    def _choose(self, ctx: "DistillContext") -> GradientChoice:
        greedy = ctx.params["greedy"]
        check_greedy(greedy)

        def choose(gradients: torch.Tensor, k: int) -> tuple[torch.Tensor, Mapping[str, Any]]:
            return facility_location_order(gradients, k, greedy=greedy), {}

        return choose

    def _meta(self, ctx: "DistillContext") -> dict[str, Any]:
        return {"similarity": "cosine", "function": "facility_location"}

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, in pick order)."""
        return gradient_picks(ctx, self._choose(ctx), method=self.name).picks

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return select_by_gradients(ctx, self._choose(ctx), method=self.name, meta=self._meta(ctx))


class GraphCutSelection(FacilityLocationSelection):
    """The ``graph-cut`` method."""

    name = "graph-cut"

    def _choose(self, ctx: "DistillContext") -> GradientChoice:
        greedy, lam = ctx.params["greedy"], _lam(ctx.params["lam"])
        check_greedy(greedy)

        def choose(gradients: torch.Tensor, k: int) -> tuple[torch.Tensor, Mapping[str, Any]]:
            return graph_cut_order(gradients, k, lam=lam, greedy=greedy), {}

        return choose

    def _meta(self, ctx: "DistillContext") -> dict[str, Any]:
        return {"similarity": "cosine", "function": "graph_cut", "lam": _lam(ctx.params["lam"])}


def _lam(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ConfigError(f"lam must be a finite number >= 0, got {value!r}")
    return float(value)
