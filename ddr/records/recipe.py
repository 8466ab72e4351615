"""The recipe record: how a network is optimised (optimizer, LR and its schedule, epochs, batch).

One type from the protocol (its ``train`` and ``real`` sections) through the plan (every
:class:`ddr.records.jobs.StudentJob`) to the training loop (:func:`ddr.engine.training.train`);
it becomes a mapping only to be hashed into a job's key or to cross a process boundary.

Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ddr.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """How a student (or the real-data reference) is optimised: the one recipe type from the
    protocol to the training loop, a mapping only when serialised (``to_dict``/``from_mapping``).

    Attributes:
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        lr: base learning rate.
        momentum: SGD momentum (Adam's beta1 when adam/adamw).
        weight_decay: L2 (sgd/adam) or decoupled (adamw) weight decay.
        epochs: passes over the training images; ``None`` only in a protocol's ``real`` recipe,
            meaning the dataset's ``real_epochs`` (:meth:`with_default_epochs` resolves it).
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
    epochs: int | None = 300
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
        if self.epochs is None:
            raise ConfigError("the recipe has epochs: null and no dataset default; set epochs")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of ``lr`` during ``epoch`` (0-based)."""
        epochs = self.total_epochs
        t = epoch / epochs
        if self.schedule in ("step", "multistep"):
            return self.gamma ** sum(epoch >= round(m * epochs) for m in self.milestones)
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if self.schedule == "half-cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t / 2.0))
        return 1.0

    @property
    def total_epochs(self) -> int:
        """``epochs`` of a resolved recipe (a ConfigError while it is still the dataset's default)."""
        if self.epochs is None:
            raise ConfigError("the recipe has epochs: null and no dataset default; set epochs")
        return self.epochs

    def with_default_epochs(self, epochs: int | None) -> "Recipe":
        """This recipe with ``epochs`` filling a null ``epochs`` (checked)."""
        recipe = self if self.epochs is not None else replace(self, epochs=epochs)
        recipe.check()
        return recipe

    def with_lr(self, lr: float | None) -> "Recipe":
        """This recipe with another learning rate (``None`` keeps it)."""
        return self if lr is None else replace(self, lr=float(lr))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["milestones"] = list(self.milestones)
        return out
