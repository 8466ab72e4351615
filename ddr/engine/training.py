"""THE training loop: one function trains every student of every protocol.

A student is trained on device-resident tensors (images ``[N,C,H,W]``, labels ``[N]``) with a
recipe (optimizer, LR schedule, epochs, batch size), an augmentation pipeline and a label
strategy. Streaming datasets (ImageNet) go through the same loop via a DataLoader batch source.
Each student's state (model, optimizer, generator) is explicit, so a group of students can later
be trained together as one batched model on a GPU without a second copy of this loop.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DdrError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline
    from ddr.engine.data import Split
    from ddr.engine.optimizers import StudentOptimizer


@dataclass(frozen=True)
class Recipe:
    """How a student is optimised.

    Attributes:
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        lr: base learning rate.
        momentum: SGD momentum (Adam's beta1 when adam/adamw).
        weight_decay: L2 (sgd/adam) or decoupled (adamw) weight decay.
        epochs: passes over the training images.
        batch_size: images per step (capped at the training-set size).
        schedule: ``constant``; ``step``/``multistep`` (×gamma at each milestone); ``cosine``
            (full cosine to 0); ``half-cosine`` (RDED's quarter wave ending at 0.5·lr).
        milestones: fractions of ``epochs`` (0..1) where ``step``/``multistep`` decay.
        gamma: decay factor of step schedules.
    """

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 300
    batch_size: int = 256
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.5,)
    gamma: float = 0.1

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **changes: Any) -> "Recipe":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values.update({k: v for k, v in changes.items() if v is not None})
        if "milestones" in values:
            values["milestones"] = tuple(float(m) for m in values["milestones"])
        recipe = cls(**values)
        recipe.check()
        return recipe

    def check(self) -> None:
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ConfigError(f"optimizer must be sgd, adam or adamw, got {self.optimizer!r}")
        if self.schedule not in ("constant", "step", "multistep", "cosine", "half-cosine"):
            raise ConfigError(f"unknown LR schedule {self.schedule!r}; use constant, step, multistep, cosine or half-cosine")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a positive finite number, got {self.lr}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of ``lr`` during ``epoch`` (0-based)."""
        t = epoch / self.epochs
        if self.schedule in ("step", "multistep"):
            return self.gamma ** sum(epoch >= round(m * self.epochs) for m in self.milestones)
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if self.schedule == "half-cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t / 2.0))
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["milestones"] = list(self.milestones)
        return out


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

    device = torch.device(device)
    model.to(device).train()
    optimizer = make_optimizer(model.parameters(), recipe)
    batch_size = min(recipe.batch_size, len(data))
    start = time.perf_counter()
    evaluations: list[tuple[int, float]] = []
    last_loss = torch.zeros((), device=device)
    epochs = range(recipe.epochs)
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
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * recipe.lr_factor(epoch)
        for index, images in data.batches(batch_size, generator, device):
            if augmentation:
                images, mix = augmentation(images, generator)
            else:
                mix = None
            targets = strategy.targets(images, index, mix)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(images)
            loss = strategy.loss(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last_loss = loss.detach()
        _check_finite(last_loss, recipe, epoch)  # one host sync per epoch: stop a diverged student early
        if evaluate_every and evaluate is not None and ((epoch + 1) % evaluate_every == 0 or epoch + 1 == recipe.epochs):
            evaluations.append((epoch + 1, evaluate(model)))
            if hasattr(epochs, "set_postfix"):  # a progress bar shows the accuracy as it is measured
                epochs.set_postfix(acc=evaluations[-1][1])
            model.train()
    return TrainResult(epochs_trained=recipe.epochs, lr=recipe.lr, final_loss=float(last_loss),
                       seconds=time.perf_counter() - start, evaluations=evaluations)


def _check_finite(loss: "torch.Tensor", recipe: Recipe, epoch: int) -> None:
    value = float(loss)
    if not math.isfinite(value):
        raise DdrError(
            f"training diverged (loss {value} in epoch {epoch + 1}) with lr {recipe.lr}; lower the learning "
            "rate (--lr) or check the distilled images for extreme values"
        )


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


def with_lr(recipe: Recipe, lr: float | None) -> Recipe:
    """The recipe with another learning rate (``None`` keeps it)."""
    return recipe if lr is None else replace(recipe, lr=float(lr))
