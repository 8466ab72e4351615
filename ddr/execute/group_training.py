"""The training loop of a group of students trained as one stacked model.

It is :func:`ddr.engine.training.train` for M members at once, and every batch trains them through
the same step (:class:`ddr.engine.step.Step`: forward, loss, backward, update, LR schedule):

* each *stream* (one job) draws its epoch order from its own generator with the very
  ``TrainData.batches`` the local loop uses, augments with its own pipeline and generator
  (:func:`ddr.execute.stream_augment.augment_streams`) and makes targets with its own label
  strategy; the LR candidates of a job are members that share its stream, exactly as the local
  loop's candidates start from the same seed and so draw the same batches;
* one forward/backward of the stacked model gives every member its own loss (the strategy's
  loss: members whose streams share a ``loss_key`` in one ``torch.vmap`` call, which the batched
  executor sets when the label strategy's and the loss's specs declare ``stackable``; the others
  one call each) and gradient (the gradient of the sum of independent losses is each member's own);
* every member steps with its own LR times the recipe's schedule factor
  (:class:`ddr.execute.stacked_optim.StackedOptimizer`);
* the finite-loss check runs once per epoch for all members together (one host read), with the
  local loop's message; a diverged member is reported and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    loss_key: Hashable | None = None
    """Streams with the same key compute their members' losses in one ``torch.vmap`` call of the
    first one's strategy: equal label strategy and loss (with parameters), both declared
    ``stackable`` in their specs. ``None``: each member's loss is its own call."""


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


class _LossGroup:
    """Members whose losses are computed together: one vmapped call of the strategy's loss, or
    (not ``vmapped``) one call per member."""

    def __init__(self, strategy: Any, members: list[int], device: "torch.device", *, vmapped: bool) -> None:
        import torch

        self.strategy = strategy
        self.members = members
        self.index = torch.tensor(members, dtype=torch.long, device=device)
        self.vmapped = vmapped

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


class _StackedLoss:
    """The step's loss for stacked members: ``loss(logits[M, B, K], targets per stream)`` -> each
    member's loss ``[M]``, one call per loss group."""

    def __init__(self, streams: Sequence[Stream], member_stream: Sequence[int], device: "torch.device") -> None:
        import torch

        self.member_stream = list(member_stream)
        self.members = len(self.member_stream)
        self.by_member = torch.tensor(self.member_stream, dtype=torch.long, device=device)
        self.identity = self.member_stream == list(range(len(streams)))
        keyed: dict[tuple[Any, ...], list[int]] = {}
        for m, s in enumerate(self.member_stream):
            key = streams[s].loss_key
            keyed.setdefault(("own", s) if key is None else ("shared", key), []).append(m)
        self.groups = [_LossGroup(streams[self.member_stream[ms[0]]].strategy, ms, device, vmapped=kind == "shared")
                       for (kind, _), ms in keyed.items()]
        order = [m for group in self.groups for m in group.members]
        self.order = None if order == list(range(self.members)) else torch.tensor(
            sorted(range(self.members), key=order.__getitem__), dtype=torch.long, device=device)

    def __call__(self, logits: "torch.Tensor", targets: Sequence[Any]) -> "torch.Tensor":
        """``targets``: per stream, what its strategy's ``targets`` gave (a ``Targets``)."""
        import torch

        hard = torch.stack([t.hard for t in targets])  # [S, B]
        if not self.identity:
            hard = hard.index_select(0, self.by_member)
        parts = []
        for group in self.groups:
            whole = len(group.members) == self.members
            z = logits if whole else logits.index_select(0, group.index)
            y = hard if whole else hard.index_select(0, group.index)
            soft = None
            if targets[self.member_stream[group.members[0]]].soft is not None:
                soft = torch.stack([targets[self.member_stream[m]].soft for m in group.members])
            parts.append(group.losses(z, y, soft))
        losses = parts[0] if len(parts) == 1 else torch.cat(parts)
        return losses if self.order is None else losses.index_select(0, self.order)


class _MemberOptimizer:
    """The stacked optimizer as the step's optimizer: every member's LR, gradients read from the
    stacked parameters' ``.grad`` (released after the update, as the grouped loop always did)."""

    def __init__(self, params: "list[torch.Tensor]", recipe: "Recipe", device: "torch.device") -> None:
        from ddr.execute.stacked_optim import StackedOptimizer

        self.params = params
        self.optimizer = StackedOptimizer(params, recipe)
        self.device = device
        self.lr: torch.Tensor | None = None

    def set_lrs(self, lrs: Sequence[float]) -> None:
        import torch

        self.lr = torch.tensor(list(lrs), dtype=torch.float32, device=self.device)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        assert self.lr is not None, "set_lrs before the first step"
        grads = []
        for p in self.params:
            if p.grad is None:
                raise RuntimeError("a stacked parameter got no gradient (the stacked forward does not use it)")
            grads.append(p.grad)
        self.optimizer.step(grads, self.lr)
        self.zero_grad()


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

    from ddr.engine.step import Step
    from ddr.execute.stream_augment import augment_streams

    members = len(member_stream)
    recipe = recipes[0]
    step = Step(model=model, loss=_StackedLoss(streams, member_stream, device),
                optimizer=_MemberOptimizer(model.param_list, recipe, device), recipe=recipe,
                lrs=[r.lr for r in recipes], device=device, bf16=bf16)
    batch_size = min(recipe.batch_size, len(streams[0].data))
    by_member = torch.tensor(list(member_stream), dtype=torch.long, device=device)
    identity = list(member_stream) == list(range(len(streams)))
    last = torch.zeros(members, device=device)
    diverged: dict[int, str] = {}
    evaluations: list[list[tuple[int, float]]] = [[] for _ in range(members)]
    start = time.perf_counter()
    epochs_trained = 0
    epochs: Any = range(recipe.total_epochs)
    if progress is not None:
        epochs = progress(epochs, total=recipe.epochs, desc=f"epochs ({members} students)", leave=False)
    for epoch in epochs:
        step.start_epoch(epoch)
        batches = [s.data.batches(batch_size, s.generator, device) for s in streams]
        for batch in zip(*batches):
            images = augment_streams([s.pipeline for s in streams], [images for _, images in batch],
                                     [s.generator for s in streams])
            targets = [s.strategy.targets(x, index, None) for s, x, (index, _) in zip(streams, images, batch)]
            x = torch.stack(images, 1)  # [B, S, C, H, W]
            if not identity:
                x = x.index_select(1, by_member)
            last = step(x, targets)  # [M]
        epochs_trained = epoch + 1
        for m, message in step.diverged(last, epoch).items():  # one host read per epoch, as the local loop's check
            diverged.setdefault(m, message)
        if len(diverged) == members:
            break
        if evaluate_every and evaluate is not None and (
                (epoch + 1) % evaluate_every == 0 or epoch + 1 == recipe.epochs):
            for m, accuracy in enumerate(evaluate()):
                evaluations[m].append((epoch + 1, accuracy))
    return GroupTrainResult(epochs_trained=epochs_trained, final_losses=[float(v) for v in last.tolist()],
                            diverged=diverged, evaluations=evaluations, seconds=time.perf_counter() - start)
