"""Forgetting events (Toneva et al., ICLR 2019) as DeepCore counts them.

DeepCore (github.com/PatrickZH/DeepCore @ 74ec709, ``deepcore/methods/forgetting.py``): during the
scoring network's training (``EarlyTrain``, :func:`ddr_methods._coreset.scoring.train_scoring_model`),
``after_loss`` compares each sample's correctness in the batch just forwarded (before the update)
with the last time it was trained; a 1 -> 0 flip is a forgetting event
(:class:`ddr_methods._coreset.scoring.ForgettingTracker`; previous correctness starts at 0). Per
class (``balance=True``) the samples with the most events are kept (``np.argsort(...)[::-1]``).

Never-learned samples: DeepCore gives them 0 events (``never_learned: zero``); Toneva et al. and the
data_diet code (``data_diet/forgetting.py``: ``np.inf``) treat them as the most forgettable
(``never_learned: most``, the default). Ties (most samples share a small count) go to the lower
pool index; DeepCore's reversed quicksort order among ties is not specified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr import ConfigError
from ddr_methods._coreset import ScoringRecipe
from ddr_methods._coreset.scoring import (
    ForgettingTracker,
    coreset_subset,
    picks_per_class,
    scoring_augmentation,
    scoring_generator,
    train_scoring_model,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet


def forgetting_scores(ctx: "DistillContext") -> torch.Tensor:
    """Forgetting events of every pool image, float64 ``[N]`` (``+inf``: never learned, under ``most``)."""
    never_learned = ctx.params.get("never_learned", "most")
    if never_learned not in ("most", "zero"):
        raise ConfigError(f"never_learned must be 'most' or 'zero', got {never_learned!r}")
    recipe = ScoringRecipe.from_params(ctx.params)
    if recipe.epochs < 1:
        raise ConfigError("forgetting counts events during training: selection_epochs must be >= 1")
    tracker = ForgettingTracker(len(ctx.train), ctx.device)
    model = ctx.make_model(arch=ctx.params.get("arch"))
    train_scoring_model(model, ctx.train, recipe, generator=scoring_generator(ctx, "forgetting"),
                        augmentation=scoring_augmentation(ctx, recipe), on_batch=tracker,
                        progress=lambda it, total, desc: ctx.progress(it, total=total, desc=f"forgetting: {desc}"))
    return tracker.scores(never_learned).cpu()


class Forgetting:
    """The ``forgetting`` method: per class the ``ipc`` most often forgotten images."""

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, most events first)."""
        return picks_per_class(ctx, lambda: forgetting_scores(ctx), largest=True)

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return coreset_subset(ctx, self.select(ctx), method="forgetting", meta={
            "never_learned": ctx.params.get("never_learned", "most"),
            "scoring_arch": ctx.params.get("arch") or ctx.arch,
            "scoring_net": f"trained here, {ctx.params.get('selection_epochs', 200)} epochs"})
