"""EL2N (Paul, Ganguli & Dziugaite, NeurIPS 2021, eq. 2): the L2 norm of the error vector.

``EL2N(x, y) = E_w ||softmax(f_w(x)) − onehot(y)||₂``, the expectation over ``repeat`` scoring
networks (fresh initialisations trained ``selection_epochs`` epochs: the paper's "early in
training"), each scoring the pool in eval mode (the data_diet code, ``data_diet/scores.py:
get_lord_error_fn(ord=2)``, averaged by ``scripts/get_mean_score.py``). Per class the largest are
kept (``scripts/run_keep_max_scores.py``); ties go to the lower pool index. The networks train as
GraNd's do (:func:`ddr_methods._coreset.scoring.scores_over_inits`, DeepCore's ``EarlyTrain``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr_methods._coreset import ScoringRecipe
from ddr_methods._coreset.scoring import (
    class_balanced_picks,
    class_pools_and_budgets,
    coreset_subset,
    el2n_scores,
    logits_over,
    scores_over_inits,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


class EL2N:
    """The ``el2n`` method: per class the ``ipc`` largest mean error norms."""

    def scores(self, ctx: "DistillContext") -> torch.Tensor:
        """Mean EL2N of every pool image over ``repeat`` networks, float32 ``[N]`` in ``[0, √2]``."""
        recipe = ScoringRecipe.from_params(ctx.params)
        batch = ctx.params.get("score_batch_size", 512)
        labels = ctx.train.labels

        def score(model: "nn.Module") -> torch.Tensor:
            logits = logits_over(model, ctx.train, batch_size=batch)
            return el2n_scores(logits, labels.to(logits.device))

        return scores_over_inits(ctx, recipe, repeat=ctx.params.get("repeat", 10), arch=ctx.params.get("arch"),
                                 score=score, method="el2n").cpu()

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, largest score first)."""
        pools, class_budgets = class_pools_and_budgets(ctx, ctx.params.get("fraction"))
        return class_balanced_picks(self.scores(ctx), pools, class_budgets, largest=True)

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return coreset_subset(ctx, self.select(ctx), method="el2n", meta={
            "scoring_arch": ctx.params.get("arch") or ctx.arch,
            "scoring_net": f"{ctx.params.get('repeat', 10)} networks trained here, "
                           f"{ctx.params.get('selection_epochs', 20)} epochs each"})
