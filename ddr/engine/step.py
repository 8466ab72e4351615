"""THE training step: forward, loss, backward, optimizer update and LR schedule, written once.

Both loops that train students call a :class:`Step`:

* :func:`ddr.engine.training.train` trains one student: the model is its ``nn.Module`` (logits
  ``[B, K]``), the loss is the label strategy's (a scalar), the optimizer a
  :class:`~ddr.engine.optimizers.StudentOptimizer` (:meth:`Step.student` builds this step);
* the batched executor's :func:`ddr.execute.group_training.train_group` trains M students stacked
  as one model: logits ``[M, B, K]``, the stacked-loss group's per-member losses ``[M]`` (their
  sum is differentiated, and the gradient of a sum of independent losses is each member's own),
  an optimizer holding every member's state and learning rate.

The loops keep what differs between them: where batches come from (data order, augmentation,
targets), what happens between epochs (evaluation, progress, replayed epochs) and what a diverged
student does (the local loop raises, a group reports the member and goes on). How a batch trains
a student is changed here, for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.optimizers import StudentOptimizer
    from ddr.engine.training import Recipe


class StepOptimizer(Protocol):
    """What a step needs of an optimizer.

    ``set_lrs`` receives every student's learning rate for the coming steps (one per student: a
    single one for :func:`~ddr.engine.training.train`, M for a stacked group); ``step`` applies the
    update rule to the gradients that the step's backward left in the parameters' ``.grad``.
    """

    def set_lrs(self, lrs: Sequence[float]) -> None:
        ...

    def zero_grad(self, set_to_none: bool = True) -> None:
        ...

    def step(self) -> None:
        ...


class OneStudent:
    """A :class:`~ddr.engine.optimizers.StudentOptimizer` (or any optimizer with ``param_groups``)
    as a :class:`StepOptimizer` of one student."""

    def __init__(self, optimizer: "StudentOptimizer") -> None:
        self.optimizer = optimizer

    def set_lrs(self, lrs: Sequence[float]) -> None:
        (lr,) = lrs
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.optimizer.step()


@dataclass
class Step:
    """One training step of one student or of M stacked students.

    Attributes:
        model: images -> logits (``[B, K]``, or ``[M, B, K]`` for stacked members).
        loss: ``loss(float32 logits, targets)`` -> the loss: a scalar for one student, ``[M]`` (each
            member's own) for stacked members. For one student it is the label strategy's
            ``loss``; ``targets`` is whatever the caller's loss reads (a
            :class:`~ddr.engine.labels.Targets`, or one per stream for a group).
        optimizer: the update rule and its state (:class:`StepOptimizer`).
        recipe: the schedule (``lr_factor``) shared by every student.
        lrs: each student's base learning rate (the recipe's ``lr`` for one student).
        device: where the forward runs (its type names the autocast device).
        bf16: run the forward under bfloat16 autocast; the loss is computed on float32 logits.
    """

    model: Callable[..., Any]
    loss: Callable[..., Any]
    optimizer: StepOptimizer
    recipe: "Recipe"
    lrs: Sequence[float]
    device: "torch.device"
    bf16: bool = False

    @classmethod
    def student(cls, model: "torch.nn.Module", recipe: "Recipe", *, loss: Callable[..., Any],
                device: "torch.device", bf16: bool = False) -> "Step":
        """The step of one student: ``model``'s parameters optimised with the recipe's optimizer
        (:func:`ddr.engine.training.make_optimizer`) at the recipe's LR."""
        from ddr.engine.training import make_optimizer

        return cls(model=model, loss=loss, optimizer=OneStudent(make_optimizer(model.parameters(), recipe)),
                   recipe=recipe, lrs=[recipe.lr], device=device, bf16=bf16)

    def start_epoch(self, epoch: int) -> None:
        """Set every student's learning rate for ``epoch`` (0-based): its base LR times the
        recipe's schedule factor."""
        factor = self.recipe.lr_factor(epoch)
        self.optimizer.set_lrs([lr * factor for lr in self.lrs])

    def __call__(self, images: "torch.Tensor", targets: Any) -> "torch.Tensor":
        """Train on one batch: forward, loss, backward, update. Returns the loss(es), detached
        (no host read: the loops check them once per epoch)."""
        import torch

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(images)
        losses = self.loss(logits.float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        (losses if losses.dim() == 0 else losses.sum()).backward()
        self.optimizer.step()
        return losses.detach()

    def diverged(self, losses: "torch.Tensor", epoch: int) -> dict[int, str]:
        """Student -> the error message, for each student whose loss in ``losses`` (what a step
        returned) is not finite in ``epoch`` (0-based). One host read."""
        values = losses.reshape(-1).tolist()
        return {m: diverged_message(value, self.lrs[m], epoch)
                for m, value in enumerate(values) if not math.isfinite(value)}


def diverged_message(loss: float, lr: float, epoch: int) -> str:
    """What a student whose loss became ``loss`` in ``epoch`` (0-based) at base LR ``lr`` reports."""
    return (f"training diverged (loss {loss} in epoch {epoch + 1}) with lr {lr}; lower the learning "
            "rate (--lr) or check the distilled images for extreme values")
