"""THE training loop: one function trains every student of every protocol.

A student is trained on device-resident tensors (images ``[N,C,H,W]``, labels ``[N]``) with a
recipe (optimizer, LR schedule, epochs, batch size), an augmentation pipeline and a label
strategy. Streaming datasets (ImageNet) go through the same loop via a DataLoader batch source.
Each batch trains the student through THE training step (:class:`ddr.engine.step.Step`: forward,
loss, backward, update, LR schedule), which the batched executor's loop of stacked students
(:func:`ddr.execute.group_training.train_group`) calls too, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError
from ddr.records.recipe import Recipe

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline
    from ddr.engine.data import Split
    from ddr.engine.optimizers import StudentOptimizer


def make_optimizer(params: Any, recipe: Recipe) -> "StudentOptimizer":
    """The recipe's optimizer over ``params``: torch.optim's SGD/Adam/AdamW update rules
    (:mod:`ddr.engine.optimizers` says why not its classes)."""
    from ddr.engine.optimizers import StudentOptimizer

    return StudentOptimizer(params, recipe)


def loader_workers() -> int:
    """DataLoader worker processes for streaming splits: 4, or fewer on a machine with fewer cores."""
    return min(4, os.cpu_count() or 1)


@dataclass
class TrainData:
    """What a student trains on: a split (in memory or streaming) plus optional soft labels."""

    split: "Split"
    soft_labels: "torch.Tensor | None" = None

    def __len__(self) -> int:
        return len(self.split)

    def batches(self, batch_size: int, generator: "torch.Generator", device: "torch.device",
                num_workers: int | None = None) -> Iterator[tuple["torch.Tensor", "torch.Tensor"]]:
        """Yield ``(index[B], images[B,C,H,W])`` for one shuffled epoch."""
        import torch

        n = len(self.split)
        order = torch.randperm(n, generator=generator, device=generator.device).to(self.split.labels.device)
        images = self.split.images
        if images is not None:  # in memory
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                yield index, images[index]
            return
        from torch.utils.data import DataLoader

        num_workers = loader_workers() if num_workers is None else num_workers

        class _Indexed(torch.utils.data.Dataset):
            def __init__(self, source: Any, order: list[int]):
                self.source, self.order = source, order

            def __len__(self) -> int:
                return len(self.order)

            def __getitem__(self, i: int) -> tuple[int, Any]:
                j = self.order[i]
                return j, self.source[j][0]

        loader = DataLoader(_Indexed(self.split.source, order.tolist()), batch_size=batch_size,
                            num_workers=num_workers, pin_memory=device.type == "cuda")
        for index, images in loader:
            yield index.to(self.split.labels.device), images.to(device, non_blocking=True)


@dataclass
class TrainResult:
    """What training one student produced (accuracies are fractions)."""

    epochs_trained: int
    lr: float
    final_loss: float
    seconds: float
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    """``(epoch, test accuracy)`` pairs when periodic evaluation was requested."""


def train(
    model: "torch.nn.Module",
    data: TrainData,
    recipe: Recipe,
    *,
    generator: "torch.Generator",
    strategy: Any,
    augmentation: "Pipeline | None" = None,
    device: "torch.device | str" = "cpu",
    evaluate_every: int | None = None,
    evaluate: Callable[["torch.nn.Module"], float] | None = None,
    progress: Callable[..., Any] | None = None,
    bf16: bool = False,
) -> TrainResult:
    """Train ``model`` in place with ``recipe``; the label strategy makes every batch's targets.

    ``strategy`` must already be ``prepare``d for ``data``. With ``evaluate_every`` the callback
    ``evaluate(model) -> accuracy`` runs every that many epochs and after the last one (used by
    the DD-Ranking-compatible selection only). ``bf16`` runs the model's forward under bfloat16
    autocast (the loss and the weights stay float32), as the batched executor's ``bf16`` does.
    """
    import torch

    from ddr.engine.step import Step

    device = torch.device(device)
    model.to(device).train()
    step = Step.student(model, recipe, loss=strategy.loss, device=device, bf16=bf16)
    batch_size = min(recipe.batch_size, len(data))
    start = time.perf_counter()
    evaluations: list[tuple[int, float]] = []
    last_loss = torch.zeros((), device=device)
    epochs = range(recipe.total_epochs)
    if progress is not None:
        epochs = progress(epochs, total=recipe.epochs, desc="epochs", leave=False)
    # a label budget of K stored views (teacher_views:K): epoch e >= K replays epoch e mod K exactly
    # (data order, augmentation, mixing), so the strategy can hand back the labels it stored for them
    replay = getattr(strategy, "replay_epochs", None)
    epoch_states: list[Any] = []
    for epoch in epochs:
        if replay:
            if epoch < replay:
                epoch_states.append(generator.get_state())
            else:
                generator.set_state(epoch_states[epoch % replay])
            strategy.start_epoch(epoch)
        step.start_epoch(epoch)
        for index, images in data.batches(batch_size, generator, device):
            if augmentation:
                images, mix = augmentation(images, generator)
            else:
                mix = None
            last_loss = step(images, strategy.targets(images, index, mix))
        diverged = step.diverged(last_loss, epoch)  # one host sync per epoch: stop a diverged student early
        if diverged:
            raise DdrError(diverged[0])
        if evaluate_every and evaluate is not None and ((epoch + 1) % evaluate_every == 0 or epoch + 1 == recipe.epochs):
            evaluations.append((epoch + 1, evaluate(model)))
            if hasattr(epochs, "set_postfix"):  # a progress bar shows the accuracy as it is measured
                epochs.set_postfix(acc=evaluations[-1][1])
            model.train()
    return TrainResult(epochs_trained=recipe.total_epochs, lr=recipe.lr, final_loss=float(last_loss),
                       seconds=time.perf_counter() - start, evaluations=evaluations)


def test_accuracy(model: "torch.nn.Module", split: "Split", *, device: "torch.device | str" = "cpu",
                  batch_size: int = 1024) -> float:
    """Top-1 accuracy (fraction) of ``model`` on ``split``, in eval mode, no augmentation."""
    import torch

    device = torch.device(device)
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    with torch.no_grad():
        if split.images is not None:  # in memory
            for start in range(0, len(split), batch_size):
                images = split.images[start:start + batch_size].to(device)
                labels = split.labels[start:start + batch_size].to(device)
                correct += (model(images).argmax(1) == labels).sum()
        else:
            from torch.utils.data import DataLoader

            for images, labels in DataLoader(split.source, batch_size=batch_size, num_workers=loader_workers()):
                correct += (model(images.to(device)).argmax(1) == labels.to(device)).sum()
    return int(correct) / len(split)


test_accuracy.__test__ = False  # type: ignore[attr-defined]  # a library function, not a pytest test
