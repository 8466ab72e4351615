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

from ddr_methods._coreset.scoring import (
    averaged_subset,
    el2n_scores,
    logits_over,
    mean_score_over_inits,
    picks_per_class,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


class EL2N:
    """The ``el2n`` method: per class the ``ipc`` largest mean error norms."""

    name = "el2n"

    def scores(self, ctx: "DistillContext") -> torch.Tensor:
        """Mean EL2N of every pool image over ``repeat`` networks, float32 ``[N]`` in ``[0, √2]``."""
        labels = ctx.train.labels

        def score(model: "nn.Module", batch_size: int) -> torch.Tensor:
            logits = logits_over(model, ctx.train, batch_size=batch_size)
            return el2n_scores(logits, labels.to(logits.device))

        return mean_score_over_inits(ctx, score, method=self.name)

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, largest score first)."""
        return picks_per_class(ctx, lambda: self.scores(ctx), largest=True)

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return averaged_subset(ctx, self.select(ctx), method=self.name)
