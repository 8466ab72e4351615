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

from ddr_methods._coreset.scoring import averaged_subset, grand_scores, mean_score_over_inits, picks_per_class

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


class GraNd:
    """The ``grand`` method: per class the ``ipc`` largest mean last-layer gradient norms."""

    name = "grand"

    def scores(self, ctx: "DistillContext") -> torch.Tensor:
        """Mean GraNd score of every pool image over ``repeat`` networks, float32 ``[N]``."""
        return mean_score_over_inits(ctx, lambda model, batch_size: grand_scores(model, ctx.train,
                                                                                 batch_size=batch_size),
                                     method=self.name)

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, largest score first)."""
        return picks_per_class(ctx, lambda: self.scores(ctx), largest=True)

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return averaged_subset(ctx, self.select(ctx), method=self.name)
