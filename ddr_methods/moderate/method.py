"""Moderate-DS (Xia et al., ICLR 2023) as the official ``selection.py`` computes it, per class.

tmllab/Moderate-DS @ b6f4de2, ``selection.py``:

* ``get_median``: per class the coordinate-wise median of the features (``np.median``: the mean of
  the two middle values for an even count), in the features' dtype;
* ``get_distance``: each sample's Euclidean distance to its class's median (float64);
* ``get_prune_idx``: the samples kept are ``argsort(distance)[low:high]`` with
  ``low = round(n·(0.5 − rate/2))``, ``high = round(n·(0.5 + rate/2))``: the middle of the
  distance ranking.

The official code ranks all samples together; ddr ranks each class (class-balanced ``ipc``) and
keeps ``k`` = the budget exactly: positions ``[low, low + k)`` of the class's ascending distances
with ``low = round((n − k) / 2)`` (half to even, as Python's ``round`` in ``get_prune_idx``; with
``rate = k/n`` the official bounds are the same whenever they keep ``k`` samples, while for odd
``n − k`` they may keep ``k ± 1``). Ties in distance keep the lower pool index first (stable sort).
Features are the penultimate embeddings of the feature network (:mod:`ddr_methods._selection`:
by default the protocol's cached real-data reference; Moderate-DS trains a ResNet-50 for 200 epochs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr import DataError
from ddr_methods._coreset.scoring import class_pools_and_budgets, coreset_subset
from ddr_methods._selection import FeatureNetParams, embed_all, feature_network

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def median_distances(features: torch.Tensor) -> torch.Tensor:
    """Distances ``[n]`` (float64) of one class's ``features`` ``[n, D]`` to their coordinate-wise median.

    The median is ``np.median``'s: sorted per coordinate, the middle value, or for even ``n`` the
    mean of the two middle ones, computed in the features' dtype; the distance is taken in float64
    (``get_distance`` subtracts a float32 median from float32 features inside a float64 array).
    """
    if features.ndim != 2 or len(features) == 0:
        raise DataError(f"Moderate-DS needs non-empty features [n, D], got shape {tuple(features.shape)}")
    if not bool(torch.isfinite(features).all()):
        raise DataError("the feature network produced non-finite features (NaN/inf)")
    ordered = torch.sort(features, dim=0).values
    n = len(features)
    if n % 2:
        median = ordered[n // 2]
    else:
        median = (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return torch.linalg.vector_norm(features.double() - median.double(), dim=1)


def moderate_window(distances: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the ``k`` samples whose distance ranks around the median: ``argsort[low:low+k]``,
    ``low = round((n − k) / 2)`` (half to even). Returns int64 ``[k]`` in ascending distance."""
    n = len(distances)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise DataError(f"cannot keep k={k!r} of {n} samples; k must be 1..{n}")
    low = round((n - k) / 2)
    order = torch.sort(distances, stable=True).indices
    return order[low:low + k].to(torch.int64)


class Moderate:
    """The ``moderate`` method (Moderate-DS): per class the ``ipc`` samples of median distance rank."""

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, in ascending distance)."""
        cfg = FeatureNetParams.from_params(ctx.params)
        pools, class_budgets = class_pools_and_budgets(ctx, ctx.params.get("fraction"))
        model = feature_network(ctx, arch=cfg.arch, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                                augmentation=cfg.augmentation)
        picks = []
        for pool, k in ctx.progress(list(zip(pools, class_budgets)), total=len(pools), desc="moderate: selecting"):
            features = embed_all(model, ctx.train.take(pool), batch_size=cfg.embed_batch_size)
            picks.append(pool[moderate_window(median_distances(features), k).to(pool.device)])
        return picks

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        cfg = FeatureNetParams.from_params(ctx.params)
        return coreset_subset(ctx, self.select(ctx), method="moderate", meta={
            "feature_arch": cfg.arch or ctx.arch,
            "feature_net": "reference" if cfg.epochs is None else f"trained here, {cfg.epochs} epochs"})
