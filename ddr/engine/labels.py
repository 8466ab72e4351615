"""The label-strategy and loss contracts.

A label strategy decides what a student is trained towards on each (augmented) batch:

* ``hard``: the class labels (cross-entropy, optional label smoothing);
* ``stored_soft``: one stored logit vector per image;
* ``teacher``: a teacher (or several, logits averaged) relabels every augmented batch.

It produces :class:`Targets`; a loss compares student logits to them. Soft labels are always
*logits* (softmax is applied inside the loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Mix


@dataclass
class Targets:
    """What a batch is trained towards.

    Attributes:
        hard: int64 ``[B]`` class labels of the samples (before mixing).
        soft: float ``[B, K]`` target logits (already for the mixed images when a mix happened),
            or ``None`` for hard-label training.
        mix: the batch's :class:`~ddr.engine.augment.Mix` when hard labels must be mixed, else ``None``.
    """

    hard: "torch.Tensor"
    soft: "torch.Tensor | None" = None
    mix: "Mix | None" = None


@runtime_checkable
class Loss(Protocol):
    def __call__(self, logits: "torch.Tensor", targets: Targets) -> "torch.Tensor":
        ...


@runtime_checkable
class LabelStrategy(Protocol):
    """Built once per student by the protocol.

    ``prepare`` receives the training set's hard labels ``[N]``, optional stored soft labels
    ``[N, K]`` (logits), the teacher models (already in eval mode, on the device) and K.
    ``targets`` is called for every batch with the augmented images, the batch's indices into the
    training set and the batch's mix (or None). ``loss`` is the configured loss.
    """

    soft: bool

    def prepare(self, *, hard_labels: "torch.Tensor", soft_labels: "torch.Tensor | None",
                teachers: "list[Any]", num_classes: int) -> None:
        ...

    def targets(self, images: "torch.Tensor", index: "torch.Tensor", mix: "Mix | None") -> Targets:
        ...

    def loss(self, logits: "torch.Tensor", targets: Targets) -> "torch.Tensor":
        ...
