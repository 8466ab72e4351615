"""Greedy K-center selection (Sener & Savarese, ICLR'18), as used for the DC coreset baseline.

Per class, in the feature space of a network trained briefly on the real training pool
(:func:`ddr_methods._selection.feature_network`): the distance is Euclidean between raw (not normalised)
penultimate embeddings. The first centre is the sample nearest the class mean (Bo Zhao's
pseudo-code for the DC paper, VICO-UoE/DatasetCondensation#21) rather than DeepCore's random
start: it needs no randomness, so the picks depend only on the features, and it is the variant
behind the DC paper's numbers. Each further centre is the sample whose distance to its nearest
chosen centre is largest. Ties go to the lowest index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr_methods._selection import check_features, select_in_feature_space

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def kcenter_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` greedy K-center picks among ``features`` ``[n, D]``.

    Returns:
        int64 ``[k]`` distinct row positions (0..n-1) in the order they are picked.
    """
    check_features(features, k)
    x = features.to(torch.float64)
    first = torch.argmin(torch.linalg.vector_norm(x - x.mean(dim=0), dim=1))
    nearest_centre = torch.linalg.vector_norm(x - x[first], dim=1)  # [n] distance to the closest centre
    taken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    taken[first] = True
    picks = [first]
    for _ in range(k - 1):
        # Chosen centres are masked so duplicates of a centre (distance 0) are still pickable.
        pick = torch.argmax(nearest_centre.masked_fill(taken, -1.0))  # first maximum on ties
        taken[pick] = True
        nearest_centre = torch.minimum(nearest_centre, torch.linalg.vector_norm(x - x[pick], dim=1))
        picks.append(pick)
    return torch.stack(picks).to(torch.int64)


class KCenter:
    """The ``kcenter`` method; parameters: :data:`ddr_methods._selection.FEATURE_NET_DEFAULTS`."""

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return select_in_feature_space(ctx, kcenter_order, method="kcenter")
