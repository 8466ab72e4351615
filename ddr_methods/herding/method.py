"""Herding selection (Welling, ICML'09), as used for the DC/IDC coreset baselines.

Per class, in the feature space of a network trained briefly on the real training pool
(:func:`ddr_methods._selection.feature_network`; raw penultimate embeddings, not normalised, as in IDC's
``coreset.py``), with class mean ``mu`` and ``S_k`` the sum of the ``k`` features picked so far,
the next pick is the not-yet-picked ``x`` minimising ``||(k+1)·mu − S_k − x||``: the sample that
brings the running mean of the picks closest to the class mean. This is the *argmin* of IDC;
DeepCore's ``herding.py`` takes the argmax of the same distance, which picks the farthest sample
and is not herding. Ties go to the lowest index, so the order is deterministic given the features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr_methods._selection import check_features, select_in_feature_space

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def herding_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` herding picks among ``features`` ``[n, D]``.

    Returns:
        int64 ``[k]`` distinct row positions (0..n-1) in the order they are picked.
    """
    check_features(features, k)
    x = features.to(torch.float64)  # (k+1)·mu − S_k subtracts nearly equal sums
    mean = x.mean(dim=0)
    running = torch.zeros_like(mean)
    taken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    picks = []
    for step in range(k):
        distance = torch.linalg.vector_norm((step + 1) * mean - running - x, dim=1)
        pick = torch.argmin(distance.masked_fill(taken, float("inf")))  # first minimum on ties
        taken[pick] = True
        running += x[pick]
        picks.append(pick)
    return torch.stack(picks).to(torch.int64)


class Herding:
    """The ``herding`` method; parameters: :data:`ddr_methods._selection.FEATURE_NET_DEFAULTS`."""

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return select_in_feature_space(ctx, herding_order, method="herding")
