"""The training loop of a group of students trained as one stacked model.

It is :func:`ddr.engine.training.train` for M members at once, step for step:

* each *stream* (one job) draws its epoch order from its own generator with the very
  ``TrainData.batches`` the local loop uses, augments with its own pipeline and generator
  (:func:`ddr.execute.stream_augment.augment_streams`) and makes targets with its own label
  strategy; the LR candidates of a job are members that share its stream, exactly as the local
  loop's candidates start from the same seed and so draw the same batches;
* one forward/backward of the stacked model gives every member its own loss (the strategy's
  loss, under ``torch.vmap`` for the built-in losses) and gradient (the gradient of the sum of
  independent losses is each member's own);
* every member steps with its own LR times the recipe's schedule factor
  (:class:`ddr.execute.stacked_optim.StackedOptimizer`);
* the finite-loss check runs once per epoch for all members together (one host read), with the
  local loop's message; a diverged member is reported and the others go on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline
    from ddr.engine.training import Recipe, TrainData
    from ddr.execute.stacked import StackedModel


@dataclass
class Stream:
    """One job's source of batches: data, generator (seeded with the job's seed), augmentation,
    prepared label strategy."""

    data: "TrainData"
    generator: "torch.Generator"
    pipeline: "Pipeline | None"
    strategy: Any


@dataclass
class GroupTrainResult:
    """What training a group produced.

    Attributes:
        epochs_trained: epochs run (the recipe's, unless every member diverged earlier).
        final_losses: each member's loss on its last batch.
        diverged: member -> the error message the local loop raises for it.
        evaluations: per member, ``(epoch, accuracy)`` pairs of the periodic evaluation.
        seconds: wall time of the loop.
    """

    epochs_trained: int
    final_losses: list[float]
    diverged: dict[int, str] = field(default_factory=dict)
    evaluations: list[list[tuple[int, float]]] = field(default_factory=list)
    seconds: float = 0.0


def _builtin_loss(strategy: Any) -> bool:
    """The strategy's loss is one of ddr's built-in losses (known to work under ``torch.vmap``)."""
    from ddr.builtins.losses.functions import BUILTIN_LOSSES

    return type(getattr(strategy, "loss_fn", None)) in tuple(BUILTIN_LOSSES.values())


class _LossGroup:
    """Members whose streams compare with the same loss: one vmapped loss call per step."""

    def __init__(self, strategy: Any, members: list[int], device: "torch.device") -> None:
        import torch

        self.strategy = strategy
        self.members = members
        self.index = torch.tensor(members, dtype=torch.long, device=device)
        self.vmapped = _builtin_loss(strategy)

    def losses(self, logits: "torch.Tensor", hard: "torch.Tensor", soft: "torch.Tensor | None") -> "torch.Tensor":
        """Per-member losses ``[len(members)]`` of logits ``[M', B, K]`` against hard ``[M', B]``
        and soft ``[M', B, K]`` targets of these members."""
        import torch

        from ddr.engine.labels import Targets

        strategy = self.strategy
        if self.vmapped:
            if soft is None:
                return torch.vmap(lambda z, y: strategy.loss(z, Targets(hard=y)))(logits, hard)
            return torch.vmap(lambda z, y, t: strategy.loss(z, Targets(hard=y, soft=t)))(logits, hard, soft)
        return torch.stack([strategy.loss(logits[i], Targets(hard=hard[i], soft=None if soft is None else soft[i]))
                            for i in range(logits.shape[0])])


def _loss_key(strategy: Any) -> tuple[Any, ...]:
    loss = getattr(strategy, "loss_fn", None)
    return (type(strategy), type(loss), repr(loss) if _builtin_loss(strategy) else id(strategy))


def train_group(
    model: "StackedModel",
    streams: Sequence[Stream],
    member_stream: Sequence[int],
    recipes: "Sequence[Recipe]",
    *,
    device: "torch.device",
    evaluate_every: int | None = None,
    evaluate: "Callable[[], list[float]] | None" = None,
    progress: Callable[..., Any] | None = None,
    bf16: bool = False,
) -> GroupTrainResult:
    """Train the members of ``model`` in place.

    Args:
        model: the stacked model, member ``m`` trained on stream ``member_stream[m]``.
        streams: one per job; every stream's strategy already ``prepare``d for its data.
        recipes: member ``m``'s recipe; all equal but for ``lr``.
        evaluate_every, evaluate: ``evaluate() -> [accuracy per member]`` every that many epochs
            and after the last (DD-Ranking-compatible selection only).
        bf16: run the forward under bfloat16 autocast (losses stay float32).
    """
    import torch

    from ddr.engine.training import _check_finite
    from ddr.execute.stacked_optim import StackedOptimizer
    from ddr.execute.stream_augment import augment_streams

    members = len(member_stream)
    recipe = recipes[0]
    optimizer = StackedOptimizer(model.param_list, recipe)
    batch_size = min(recipe.batch_size, len(streams[0].data))
    by_member = torch.tensor(list(member_stream), dtype=torch.long, device=device)
    identity = list(member_stream) == list(range(len(streams)))
    keyed: dict[tuple[Any, ...], list[int]] = {}
    for m, s in enumerate(member_stream):
        keyed.setdefault(_loss_key(streams[s].strategy), []).append(m)
    loss_groups = [_LossGroup(streams[member_stream[ms[0]]].strategy, ms, device) for ms in keyed.values()]
    base_lrs = [r.lr for r in recipes]
    last = torch.zeros(members, device=device)
    diverged: dict[int, str] = {}
    evaluations: list[list[tuple[int, float]]] = [[] for _ in range(members)]
    start = time.perf_counter()
    epochs_trained = 0
    epochs: Any = range(recipe.epochs)
    if progress is not None:
        epochs = progress(epochs, total=recipe.epochs, desc=f"epochs ({members} students)", leave=False)
    for epoch in epochs:
        factor = recipe.lr_factor(epoch)
        lr = torch.tensor([base * factor for base in base_lrs], dtype=torch.float32, device=device)
        batches = [s.data.batches(batch_size, s.generator, device) for s in streams]
        for step in zip(*batches):
            images = augment_streams([s.pipeline for s in streams], [images for _, images in step],
                                     [s.generator for s in streams])
            targets = [s.strategy.targets(x, index, None) for s, x, (index, _) in zip(streams, images, step)]
            x = torch.stack(images, 1)  # [B, S, C, H, W]
            hard = torch.stack([t.hard for t in targets])  # [S, B]
            if not identity:
                x, hard = x.index_select(1, by_member), hard.index_select(0, by_member)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)  # [M, B, K]
            total = logits.new_zeros((), dtype=torch.float32)
            step_losses = torch.empty(members, device=device)
            for group in loss_groups:
                whole = len(group.members) == members
                z = logits if whole else logits.index_select(0, group.index)
                y = hard if whole else hard.index_select(0, group.index)
                soft = None
                if targets[member_stream[group.members[0]]].soft is not None:
                    soft = torch.stack([targets[member_stream[m]].soft for m in group.members])
                losses = group.losses(z, y, soft)
                total = total + losses.sum()
                step_losses[group.index] = losses.detach().float()
            grads = torch.autograd.grad(total, model.param_list)
            optimizer.step(grads, lr)
            last = step_losses
        epochs_trained = epoch + 1
        for m, value in enumerate(last.tolist()):  # one host read per epoch, as the local loop's check
            if m not in diverged and not math.isfinite(value):
                try:
                    _check_finite(torch.tensor(value), recipes[m], epoch)
                except DdrError as exc:
                    diverged[m] = str(exc)
        if len(diverged) == members:
            break
        if evaluate_every and evaluate is not None and (
                (epoch + 1) % evaluate_every == 0 or epoch + 1 == recipe.epochs):
            for m, accuracy in enumerate(evaluate()):
                evaluations[m].append((epoch + 1, accuracy))
    return GroupTrainResult(epochs_trained=epochs_trained, final_losses=[float(v) for v in last.tolist()],
                            diverged=diverged, evaluations=evaluations, seconds=time.perf_counter() - start)
