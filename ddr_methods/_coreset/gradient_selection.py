"""What the gradient-based coreset selectors share: their parameters, presets and class loop.

Facility location, graph cut (:mod:`ddr_methods.submodular`), CRAIG (:mod:`ddr_methods.craig`) and
GradMatch (:mod:`ddr_methods.gradmatch`) all follow DeepCore's ``EarlyTrain`` (github.com/PatrickZH/DeepCore
@ 74ec709, ``deepcore/methods/earlytrain.py``): train a fresh network on the whole training pool for
``selection_epochs`` epochs (:func:`ddr_methods._coreset.scoring.train_scoring_model`: SGD with
Nesterov momentum, constant LR, no augmentation, as DeepCore's selection), then class by class
(``balance=True``) embed every sample by its last-layer loss gradient
(:func:`ddr_methods._coreset.gradients.last_layer_gradients`) and keep the method's picks: ``ipc``
per class, or ``round(fraction · class size)`` with ``fraction`` set (:data:`ddr_methods._coreset.FRACTION_PARAM`).
The scoring network is the protocol's student architecture unless ``arch`` names another
(DeepCore: ``--model``, ResNet-18 by default); it never sees the test split.

Importing this module does not import torch (registration modules read :data:`GRADIENT_PARAMS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddr_methods._coreset import FRACTION_PARAM, ScoringRecipe, scoring_params

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet

__all__ = ["GRADIENT_PARAMS", "GRADIENT_PRESETS", "GradientChoice", "GradientPicks", "gradient_picks",
           "gradient_scoring_network", "select_by_gradients"]

GRADIENT_PARAMS = (*scoring_params(epochs=200, batch_size=256), FRACTION_PARAM)
"""The scoring network's training (DeepCore ``EarlyTrain``'s ``epochs=200``, ``main.py``'s ``--batch
256``, ``--selection_lr 0.1``, momentum 0.9, Nesterov, weight decay 5e-4) and ``fraction``."""

GRADIENT_PRESETS: Mapping[str, Mapping[str, Any]] = {
    # DeepCore's class default (EarlyTrain epochs=200); main.py's --selection_epochs defaults to 40.
    "paper": {"selection_epochs": 200},
    # DeepCore's README runs its pre-trained selectors with -se 10; digits on 2 CPU cores: seconds.
    "reduced": {"selection_epochs": 10},
    "smoke": {"selection_epochs": 1, "selection_batch_size": 128},
}
"""``paper``, ``reduced`` (the budget digits asks for) and ``smoke`` presets of the gradient selectors."""

GradientChoice = Callable[["torch.Tensor", int], "tuple[torch.Tensor, Mapping[str, Any]]"]
"""``choose(gradients[n, D'], k) -> (picks int64 [k] positions 0..n-1, extra JSON-able per-class meta)``."""


def gradient_scoring_network(ctx: "DistillContext", method: str) -> "nn.Module":
    """A fresh ``ctx.make_model(arch)`` trained as ``ctx.params``' ``selection_*`` keys say, in eval mode.

    Trained with :func:`ddr_methods._coreset.scoring.train_scoring_model` on all of ``ctx.train``
    (hard labels, mean cross-entropy), its data order drawn from a generator derived from the run's
    seed and ``method``; ``selection_epochs=0`` keeps the seeded initialisation.

    Raises:
        ConfigError: a parameter that cannot train a network (:meth:`ScoringRecipe.check`).
    """
    from ddr_methods._coreset.scoring import scoring_augmentation, scoring_generator, train_scoring_model

    recipe = ScoringRecipe.from_params(ctx.params)
    model = ctx.make_model(arch=ctx.params.get("arch"))
    if recipe.epochs > 0:
        train_scoring_model(model, ctx.train, recipe, generator=scoring_generator(ctx, method),
                            augmentation=scoring_augmentation(ctx, recipe), progress=ctx.progress)
    model.eval()
    return model


@dataclass(frozen=True)
class GradientPicks:
    """What :func:`gradient_picks` returns.

    Attributes:
        picks: per class (class order), int64 pool indices in the order the rule picked them.
        extras: per-class values ``choose`` reported, ``{key: [class 0's, class 1's, ...]}``.
        gradient_dim: the width ``K·(D+1)`` of the gradient embeddings.
    """

    picks: list["torch.Tensor"]
    extras: dict[str, list[Any]]
    gradient_dim: int


def gradient_picks(ctx: "DistillContext", choose: GradientChoice, *, method: str) -> GradientPicks:
    """Train the scoring network, then per class compute last-layer gradients and apply ``choose``.

    Args:
        ctx: the distillation context; its params hold :data:`GRADIENT_PARAMS`' keys.
        choose: the method's rule on one class's gradients ``[n_c, K·(D+1)]`` and its budget
            (``ipc``, or ``round(fraction · n_c)`` with ``fraction`` set).
        method: the method's name (progress text, the scoring network's seed).
    """
    from ddr import ConfigError
    from ddr_methods._coreset.gradients import last_layer_gradients
    from ddr_methods._coreset.scoring import class_pools_and_budgets

    batch_size = ctx.params.get("score_batch_size", 512)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"score_batch_size must be a positive integer, got {batch_size!r}")
    pools, class_budgets = class_pools_and_budgets(ctx, ctx.params.get("fraction"))
    model = gradient_scoring_network(ctx, method)
    picks = []
    extras: dict[str, list[Any]] = {}
    gradient_dim = 0
    labels = ctx.train.labels
    for pool, k in ctx.progress(list(zip(pools, class_budgets)), total=len(pools), desc=f"{method}: selecting"):
        gradients = last_layer_gradients(model, ctx.train.take(pool), labels[pool.to(labels.device)],
                                         batch_size=batch_size)
        gradient_dim = int(gradients.shape[1])
        positions, extra = choose(gradients, int(k))
        picks.append(pool[positions.to(pool.device)].cpu())
        for key, value in extra.items():
            extras.setdefault(key, []).append(value)
    return GradientPicks(picks=picks, extras=extras, gradient_dim=gradient_dim)


def select_by_gradients(
    ctx: "DistillContext",
    choose: GradientChoice,
    *,
    method: str,
    meta: Mapping[str, Any] | None = None,
) -> "DistilledSet":
    """:func:`gradient_picks` as a class-major distilled set (:func:`ddr_methods._coreset.scoring.coreset_subset`).

    Meta: ``selected_indices`` per class in pick order, ``scoring_arch``, ``scoring_epochs``,
    ``gradient_dim``, every per-class ``extra`` of ``choose`` (``meta[key] = [class 0's, ...]``) and
    ``meta``.
    """
    from ddr_methods._coreset.scoring import coreset_subset

    chosen = gradient_picks(ctx, choose, method=method)
    return coreset_subset(ctx, chosen.picks, method=method, meta={
        "scoring_arch": ctx.params.get("arch") or ctx.arch, "scoring_epochs": ctx.params["selection_epochs"],
        "gradient_dim": chosen.gradient_dim, **chosen.extras, **dict(meta or {})})
