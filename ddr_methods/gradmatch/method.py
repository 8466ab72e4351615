"""GradMatch selection (Killamsetty et al., "GRAD-MATCH: Gradient Matching based Data Subset
Selection for Efficient Deep Model Training", ICML 2021), as DeepCore implements it.

DeepCore @ 74ec709 ``deepcore/methods/gradmatch.py`` with ``balance=True`` and no validation set
(main.py passes none), per class: last-layer gradients ``g`` ``[n_c, K·(D+1)]``
(:func:`ddr_methods._coreset.gradients.last_layer_gradients`), the target ``b = mean_i g_i``, and
:func:`ddr_methods._coreset.gradmatch.orthogonal_matching_pursuit` of ``A = gᵀ`` for ``ipc`` picks
(or DeepCore's ``round(fraction · n_c)`` with ``fraction`` set) with ridge ``lam``.

Differences from DeepCore, both recorded: DeepCore keeps only the picks whose final NNLS weight is
non-zero, so a class may end up with fewer than its budget; ddr keeps every OMP pick (a
distilled set has ``ipc`` images per class) and records the weights in the set's meta
(``gradmatch_weights``, aligned with ``selected_indices``), which students do not train with (a
:class:`~ddr.method.distilled.DistilledSet` carries no per-sample weights). DeepCore's gradients
are those of the batch-mean cross-entropy (scaled by ``1 / batch size``); OMP's ridge term is not
scale-free, so ddr uses each sample's own loss gradient, the per-sample gradients ``∇L_i`` of
the paper's objective.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ddr import ConfigError
from ddr_methods._coreset.gradient_selection import GradientChoice, gradient_picks, select_by_gradients
from ddr_methods._coreset.gradmatch import orthogonal_matching_pursuit

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def gradmatch_order(gradients: torch.Tensor, k: int, *, lam: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """GradMatch's ``k`` OMP picks on ``gradients`` ``[n, D']`` matching their mean, and the NNLS weights."""
    A = gradients.to(torch.float64).T
    return orthogonal_matching_pursuit(A, A.mean(dim=1), k, lam=lam)


class GradMatch:
    """The ``gradmatch`` method."""

    def _choose(self, ctx: "DistillContext") -> GradientChoice:
        lam = ctx.params["lam"]
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam < float("inf"):
            raise ConfigError(f"lam must be a finite number >= 0, got {lam!r}")

        def choose(gradients: torch.Tensor, k: int) -> tuple[torch.Tensor, Mapping[str, Any]]:
            picks, weights = gradmatch_order(gradients, k, lam=float(lam))
            return picks, {"gradmatch_weights": weights.tolist()}

        return choose

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, in OMP's pick order); the weights are in :meth:`distill`'s meta."""
        return gradient_picks(ctx, self._choose(ctx), method="gradmatch").picks

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return select_by_gradients(ctx, self._choose(ctx), method="gradmatch", meta={"lam": float(ctx.params["lam"])})
