"""Coverage-centric coreset selection (Zheng et al., ICLR 2023), per class.

The official code (haizhongzheng/Coverage-centric-coreset-selection @ b37f166):

1. ``train.py`` trains a network on the full training set and logs, per batch, each sample's
   ``log_softmax`` (``core/training/Trainer.py``, before the update); ``generate_importance_score.py``
   turns the log into importance scores (:class:`ddr_methods._coreset.scoring.TrainingDynamics`:
   ``accumulated_margin``, ``forgetting``, ``el2n``);
2. ``CoresetSelection.mislabel_mask`` (``core/data/Coreset.py``) prunes the ``int(beta · n)`` samples
   with the lowest ``accumulated_margin`` (``train.py`` always masks by AUM, ascending) and keeps the
   rest in that ascending order;
3. ``CoresetSelection.stratified_sampling`` splits the remaining importance scores into ``strata``
   (50) ranges ``[min + i·step, min + (i+1)·step)``, ``step = (1.0001·max − min) / strata``,
   allocates the budget over the strata from the least populated up (``bin_allocate``: each gets
   ``min(count, remaining // strata left)``) and fills each stratum with a random permutation of its
   members (``torch.randperm``), in stratum order.

ddr runs steps 2–3 within each class with its budget (``ipc``, or ``fraction``'s) in place of
``int(coreset_ratio · n)``, drawing the permutations from the run's generator. One guard where the
official bins fail: with a maximum score ``<= 0`` (``1.0001·max`` is then not above it: the
official code drops the maximum, or every sample when all scores are 0, as forgetting counts often
are), ddr's top edge is ``max + 1e-4·|max|`` or, for equal scores, ``min + 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr import ConfigError, DataError
from ddr_methods._coreset import ScoringRecipe
from ddr_methods._coreset.scoring import (
    TrainingDynamics,
    class_pools_and_budgets,
    coreset_subset,
    scoring_augmentation,
    scoring_generator,
    train_scoring_model,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet

IMPORTANCE = ("accumulated_margin", "forgetting", "el2n")


def strata_edges(score: torch.Tensor, strata: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CCS's strata: ``(min_score, step)`` with stratum ``i`` = ``[min + i·step, min + (i+1)·step)``.

    ``step = (max·1.0001 − min) / strata`` in ``score``'s dtype, as ``Coreset.py``; when ``max <= 0``
    the top edge is ``max + 1e-4·|max|`` (``min + 1`` when all scores are equal) so that every score
    falls in a stratum.
    """
    low = torch.min(score)
    high = torch.max(score)
    top = high * 1.0001
    if not bool(top > high):
        top = high + 1e-4 * high.abs()
        if not bool(top > high):
            top = high + 1
    return low, (top - low) / strata


def bin_allocate(num: int, counts: torch.Tensor) -> torch.Tensor:
    """CCS's ``bin_allocate``: spread ``num`` over bins holding ``counts`` ``[B]``, from the least populated up.

    Bins are visited in ascending ``counts`` (``torch.argsort``); each takes ``min(count, rest // bins
    left)``. Returns int32 ``[B]`` budgets in the bins' order; they sum to ``num`` when ``counts`` do.

    Equally populated bins are visited in the order of torch's default (not stable) CPU sort on the
    int64 counts, as the official code sorts them: which of them get one image more depends on it.
    That order is deterministic for a given torch build (the differential check compares it).
    """
    sorted_index = torch.argsort(counts.cpu().to(torch.int64))
    sorted_counts = counts.cpu()[sorted_index]
    rest = int(num)
    out = []
    for i in range(len(counts)):
        take = min(int(sorted_counts[i]), rest // (len(counts) - i))
        out.append(take)
        rest -= take
    budgets = torch.zeros(len(counts), dtype=torch.int32)
    budgets[sorted_index] = torch.tensor(out, dtype=torch.int32)
    return budgets


def stratified_sampling(score: torch.Tensor, k: int, *, strata: int, generator: torch.Generator) -> torch.Tensor:
    """CCS's ``stratified_sampling``: ``k`` positions of ``score`` ``[n]``, spread over ``strata`` ranges.

    Returns:
        int64 ``[k]`` positions ``0..n-1``, stratum by stratum (lowest scores first), each stratum's
        a prefix of a ``torch.randperm`` drawn from ``generator`` (one draw per stratum, empty ones too).

    Raises:
        DataError: fewer than ``k`` scores.
    """
    if k > len(score):
        raise DataError(f"cannot sample {k} of {len(score)} samples")
    low, step = strata_edges(score, strata)
    masks = []
    for i in range(strata):
        start, end = low + i * step, low + (i + 1) * step
        masks.append(torch.logical_and(score >= start, score < end))
    counts = torch.stack([m.sum() for m in masks])
    allocation = bin_allocate(k, counts)
    positions = torch.arange(len(score))
    chosen = []
    for i, mask in enumerate(masks):
        pool = positions[mask.cpu()]
        permutation = torch.randperm(len(pool), generator=generator, device=generator.device).cpu()
        chosen.append(pool[permutation][:int(allocation[i])])
    out = torch.cat(chosen).to(torch.int64)
    if len(out) != k:  # bin_allocate fills every budget that the counts allow; a guard, not a path
        raise DataError(f"stratified sampling found {len(out)} of {k} samples; the scores may hold NaN")
    return out


def ccs_select(importance: torch.Tensor, aum: torch.Tensor, k: int, *, beta: float, strata: int,
               generator: torch.Generator) -> torch.Tensor:
    """One class's CCS choice: prune the ``int(beta·n)`` lowest-AUM samples, stratify the rest.

    Args:
        importance: ``[n]`` the score stratified over.
        aum: ``[n]`` accumulated margin, the hardness the pruning sorts by (ascending, stable).
        k: how many to keep.

    Returns:
        int64 ``[k]`` positions ``0..n-1``.

    Raises:
        DataError: fewer than ``k`` samples are left after the pruning (lower ``beta``).
    """
    if not 0 <= beta < 1:
        raise ConfigError(f"beta must lie in [0, 1) (the share pruned as hardest), got {beta!r}")
    n = len(importance)
    pruned = int(beta * n)
    easy = torch.argsort(aum, stable=True)[pruned:]
    if len(easy) < k:
        raise DataError(f"after pruning the hardest beta={beta} ({pruned} of {n} images) a class keeps "
                        f"{len(easy)} images, fewer than the {k} to select; lower beta or ipc")
    picks = stratified_sampling(importance[easy], k, strata=strata, generator=generator)
    return easy[picks]


class CCS:
    """The ``ccs`` method (Zheng et al., ICLR 2023), class-balanced."""

    def dynamics(self, ctx: "DistillContext") -> TrainingDynamics:
        """Train the scoring network on the pool, recording CCS's training dynamics."""
        recipe = ScoringRecipe.from_params(ctx.params)
        if recipe.epochs < 1:
            raise ConfigError("CCS scores samples by their training dynamics: selection_epochs must be >= 1")
        dynamics = TrainingDynamics(len(ctx.train), el2n_epochs=int(ctx.params.get("el2n_epochs", 10)),
                                    device=ctx.device)
        model = ctx.make_model(arch=ctx.params.get("arch"))
        train_scoring_model(model, ctx.train, recipe, generator=scoring_generator(ctx, "ccs"),
                            augmentation=scoring_augmentation(ctx, recipe), on_batch=dynamics,
                            progress=lambda it, total, desc: ctx.progress(it, total=total, desc=f"ccs: {desc}"))
        return dynamics

    def select(self, ctx: "DistillContext") -> list[torch.Tensor]:
        """Per class, the kept pool indices (int64, stratum by stratum)."""
        importance_key = ctx.params.get("importance", "accumulated_margin")
        if importance_key not in IMPORTANCE:
            raise ConfigError(f"importance must be one of {', '.join(IMPORTANCE)}, got {importance_key!r}")
        beta = ctx.params.get("beta", 0.3)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise ConfigError(f"beta must lie in [0, 1) (the share of a class pruned as hardest), got {beta!r}")
        strata = ctx.params.get("strata", 50)
        if isinstance(strata, bool) or not isinstance(strata, int) or strata < 1:
            raise ConfigError(f"strata must be a positive integer, got {strata!r}")
        pools, class_budgets = class_pools_and_budgets(ctx, ctx.params.get("fraction"))
        for label, (pool, k) in enumerate(zip(pools, class_budgets)):
            if len(pool) - int(beta * len(pool)) < k:
                raise DataError(f"class {label} has {len(pool)} training images; after pruning the hardest "
                                f"beta={beta} it keeps {len(pool) - int(beta * len(pool))}, fewer than the {k} to "
                                "select; lower beta or ipc")
        dynamics = self.dynamics(ctx)
        aum = dynamics.scores("accumulated_margin").cpu()
        importance = dynamics.scores(importance_key).cpu()
        generator = scoring_generator(ctx, "ccs", 1)
        picks = []
        for pool, k in zip(pools, class_budgets):
            pool = pool.cpu()
            picks.append(pool[ccs_select(importance[pool], aum[pool], k, beta=float(beta), strata=strata,
                                         generator=generator)])
        return picks

    def distill(self, ctx: "DistillContext") -> "DistilledSet":
        return coreset_subset(ctx, self.select(ctx), method="ccs", meta={
            "importance": ctx.params.get("importance", "accumulated_margin"),
            "scoring_arch": ctx.params.get("arch") or ctx.arch,
            "scoring_net": f"trained here, {ctx.params.get('selection_epochs', 200)} epochs"})
