"""Uncertainty selection (Coleman et al., ICLR 2020) as DeepCore implements it.

DeepCore (github.com/PatrickZH/DeepCore @ 74ec709, ``deepcore/methods/uncertainty.py``,
``Uncertainty.rank_uncertainty`` and ``finish_run`` with ``balance=True``) scores every image of a
class with the trained scoring network in eval mode and keeps the ``round(fraction · n_c)``
*smallest* scores (``np.argsort(scores)[:budget]``):

* ``least_confidence``: the largest entry of the network's raw output ``max_k z_k`` (DeepCore takes
  the logits, not the softmax probability of the textbook definition ``1 − max_k p_k``; the order
  within a class differs between the two);
* ``entropy``: ``Σ_k p_k · log(p_k + 1e-6)`` (minus the entropy, so the smallest is the most uncertain;
  the ``1e-6`` is DeepCore's);
* ``margin``: ``p_(1) − p_(2)``, the top-1 minus the top-2 softmax probability.

ddr keeps ``ipc`` per class (or ``fraction``'s budget) and breaks ties by the lower pool index
(DeepCore's ``np.argsort`` uses an unstable quicksort).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr import ConfigError
from ddr_methods._coreset import ScoringRecipe
from ddr_methods._coreset.scoring import (
    coreset_subset,
    logits_over,
    picks_per_class,
    scoring_augmentation,
    scoring_generator,
    train_scoring_model,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet

SCORES = ("least_confidence", "entropy", "margin")


def uncertainty_scores(logits: torch.Tensor, score: str) -> torch.Tensor:
    """DeepCore's uncertainty score of each row of ``logits`` ``[n, K]`` -> float32 ``[n]``; smaller = more uncertain.

    ``least_confidence``: ``max_k logits_k``; ``entropy``: ``Σ p log(p + 1e-6)`` with ``p = softmax``;
    ``margin``: ``p_(1) − p_(2)`` (``K >= 2``).
    """
    if logits.ndim != 2:
        raise ConfigError(f"logits must be [n, K], got shape {tuple(logits.shape)}")
    logits = logits.float()
    if score == "least_confidence":
        return logits.max(dim=1).values
    probs = torch.softmax(logits, dim=1)
    if score == "entropy":
        return (torch.log(probs + 1e-6) * probs).sum(dim=1)
    if score == "margin":
        if logits.shape[1] < 2:
            raise ConfigError("the margin score needs at least 2 classes")
        top = probs.topk(2, dim=1).values
        return top[:, 0] - top[:, 1]
    raise ConfigError(f"unknown uncertainty score {score!r}; expected one of {', '.join(SCORES)}")


def scoring_network(ctx: "DistillContext", method: str = "uncertainty") -> "nn.Module":
    """The network that scores: the cached reference (``selection_epochs`` null) or one trained here."""
    epochs = ctx.params.get("selection_epochs", 200)
    if epochs is None:
        if ctx.params.get("arch") is not None:
            raise ConfigError("selection_epochs null scores with the protocol's reference model, whose architecture "
                              "is the protocol's teacher; set selection_epochs=N to train an 'arch' network here")
        model = ctx.teacher()
        model.eval()
        return model
    recipe = ScoringRecipe.from_params(ctx.params)
    model = ctx.make_model(arch=ctx.params.get("arch"))
    return train_scoring_model(model, ctx.train, recipe, generator=scoring_generator(ctx, method),
                               augmentation=scoring_augmentation(ctx, recipe),
                               progress=lambda it, total, desc: ctx.progress(it, total=total, desc=f"{method}: {desc}"))


class Uncertainty:
    """The ``uncertainty`` method: per class the ``ipc`` lowest uncertainty scores."""

    def scores(self, ctx: "DistillContext") -> torch.Tensor:
        """The score of every pool image, float32 ``[N]`` (smaller = kept first)."""
        score = ctx.params.get("score", "entropy")
        if score not in SCORES:
            raise ConfigError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
        model = scoring_network(ctx)
        return uncertainty_scores(logits_over(model, ctx.train, batch_size=ctx.params.get("score_batch_size", 512)),
                                  score)

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, most uncertain first)."""
        return picks_per_class(ctx, lambda: self.scores(ctx), largest=False)

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        picks = self.select(ctx)
        epochs = ctx.params.get("selection_epochs", 200)
        return coreset_subset(ctx, picks, method="uncertainty", meta={
            "score": ctx.params.get("score", "entropy"),
            "scoring_net": "reference" if epochs is None else f"trained here, {epochs} epochs",
            "scoring_arch": ctx.params.get("arch") or ctx.arch})
