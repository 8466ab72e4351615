"""The method contract: what a method's ``distill(ctx)`` receives.

A method plugin's target is a class; the core instantiates it with no arguments and calls
``distill(ctx)`` with a :class:`DistillContext`. It returns a :class:`ddr.artifacts.DistilledSet`
with ``ipc * num_classes`` images in the dataset's pixel space, class-major order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.artifacts import DistilledSet
    from ddr.data import ImageDataset, Split

T = TypeVar("T")


@dataclass
class DistillContext:
    """Everything a method may use.

    Attributes:
        dataset: the loaded dataset (metadata; its ``test`` split must not be used).
        train: the training pool (the train split minus the protocol's validation split), with
            ``train.images`` float32 ``[N,C,H,W]`` on ``device`` for in-memory datasets.
        ipc: images per class to produce.
        num_classes: K.
        generator: a ``torch.Generator`` on ``device`` seeded from the run's derived seed; draw all
            randomness from it (or from ``seed``).
        seed: the method's derived integer seed.
        device: a ``torch.device``.
        params: the method's resolved parameters (spec defaults < preset < user overrides).
        arch: name of the protocol's student architecture (methods that match through a network
            build it with :meth:`make_model`).
        make_model: ``make_model(arch=None, **params) -> nn.Module`` builds a fresh, seeded network
            for this dataset on ``device`` (``arch=None`` means the protocol's architecture).
        teacher: ``teacher() -> nn.Module`` (eval mode, on ``device``) when the method's spec sets
            ``needs_teacher``; ``None`` otherwise.
        train_model: ``train_model(model, images, labels, epochs=..., lr=..., ...)`` runs the core
            training loop (the same one the protocol uses) and returns the trained model.
        augmentation: ``augmentation(name, **params)`` builds a registered augmentation.
        progress: ``progress(iterable, total=None, desc="")`` wraps a loop in a progress bar.
    """

    dataset: "ImageDataset"
    train: "Split"
    ipc: int
    num_classes: int
    generator: "torch.Generator"
    seed: int
    device: "torch.device"
    params: dict[str, Any]
    arch: str
    make_model: Callable[..., Any]
    train_model: Callable[..., Any]
    augmentation: Callable[..., Any]
    teacher: Callable[[], Any] | None = None
    progress: Callable[..., Any] = field(default=lambda it, total=None, desc="": it)

    def class_indices(self) -> list["torch.Tensor"]:
        """Per-class indices into ``train``."""
        return self.train.class_indices(self.num_classes)


@runtime_checkable
class Method(Protocol):
    def distill(self, ctx: DistillContext) -> "DistilledSet":
        ...
