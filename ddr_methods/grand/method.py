"""GraNd (Paul, Ganguli & Dziugaite, NeurIPS 2021) as DeepCore computes it.

DeepCore (github.com/PatrickZH/DeepCore @ 74ec709, ``deepcore/methods/grand.py``): ``repeat`` times,
a fresh network (seed + 5 per repeat there; ddr: the run's next model seed) trains ``epochs`` epochs
(``EarlyTrain``), then in eval mode every sample's gradient of the cross-entropy w.r.t. the last
linear layer, ``[p − y, (p − y) ⊗ h]`` (bias, then weight; ``h`` the penultimate embedding), is
normed (L2); the norms are averaged over the repeats and per class the largest are kept
(``np.argsort(norm_mean[c_indx])[::-1]``; ties here: the lower pool index).

Differences, both documented in docs/fidelity.md: DeepCore's loss is ``nn.CrossEntropyLoss()``
(mean over the scoring batch) summed, so its norms are divided by the batch size (the last, shorter
batch of the pool is scaled differently); ddr's are each sample's own. Paul et al.'s official code
(``data_diet/scores.py``) norms the gradient of *every* parameter; DeepCore and ddr the last layer's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr_methods._coreset import ScoringRecipe
from ddr_methods._coreset.scoring import (
    class_balanced_picks,
    class_pools_and_budgets,
    coreset_subset,
    grand_scores,
    scores_over_inits,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


class GraNd:
    """The ``grand`` method: per class the ``ipc`` largest mean last-layer gradient norms."""

    def scores(self, ctx: "DistillContext") -> torch.Tensor:
        """Mean GraNd score of every pool image over ``repeat`` networks, float32 ``[N]``."""
        recipe = ScoringRecipe.from_params(ctx.params)
        batch = ctx.params.get("score_batch_size", 512)
        return scores_over_inits(ctx, recipe, repeat=ctx.params.get("repeat", 10), arch=ctx.params.get("arch"),
                                 score=lambda model: grand_scores(model, ctx.train, batch_size=batch),
                                 method="grand").cpu()

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, largest score first)."""
        pools, class_budgets = class_pools_and_budgets(ctx, ctx.params.get("fraction"))
        return class_balanced_picks(self.scores(ctx), pools, class_budgets, largest=True)

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return coreset_subset(ctx, self.select(ctx), method="grand", meta={
            "scoring_arch": ctx.params.get("arch") or ctx.arch,
            "scoring_net": f"{ctx.params.get('repeat', 10)} networks trained here, "
                           f"{ctx.params.get('selection_epochs', 20)} epochs each"})
