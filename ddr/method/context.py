"""The method contract: what a method's ``distill(ctx)`` receives.

A method plugin's target is a class; the core instantiates it with no arguments and calls
``distill(ctx)`` with a :class:`DistillContext`. It returns a :class:`ddr.method.DistilledSet`
with ``ipc * num_classes`` images in the dataset's pixel space, class-major order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import torch

    from ddr.engine.data import ImageDataset, Split
    from ddr.method.distilled import DistilledSet


def _no_progress(iterable: Any, total: int | None = None, desc: str = "") -> Any:
    return iterable


def _no_log(message: str) -> None:
    return None


def _default_assets() -> Any:
    from ddr.store.assets import Assets

    return Assets()


@dataclass
class DistillContext:
    """Everything a method may use.

    Attributes:
        dataset: the loaded dataset (metadata; its ``test`` split must not be used).
        train: the training pool (the train split minus the protocol's validation split). For
            in-memory datasets ``train.images`` is float32 ``[N,C,H,W]`` on ``device``; for
            streamed ones (ImageNet) ``train.images`` is ``None`` and ``train.take(index)``
            decodes the images at ``index`` (labels are always in memory).
        ipc: images per class to produce.
        num_classes: K.
        generator: a ``torch.Generator`` on ``device`` seeded from the run's derived seed; draw all
            randomness from it (or from ``seed``).
        seed: the method's derived integer seed.
        device: a ``torch.device``.
        params: the method's resolved, validated parameters (schema defaults < the dataset's
            budget preset < the named preset < ``--set method.KEY=VALUE``).
        arch: name of the protocol's student architecture (methods that match through a network
            build it with :meth:`make_model`).
        make_model: ``make_model(arch=None, **params) -> nn.Module`` builds a fresh, seeded network
            for this dataset on ``device`` (``arch=None`` means the protocol's architecture).
        train_model: ``train_model(model, images, labels, epochs=..., lr=0.01, batch_size=256,
            optimizer="sgd", momentum=0.9, weight_decay=5e-4, schedule="step", augmentation=None,
            generator=None)`` runs the core training loop (the same one the protocol uses) on hard
            labels and returns the trained model. ``augmentation``: a name, a list of names or
            mappings, or one augmentation built with :attr:`augmentation`; ``generator``: the
            batches' and augmentation's randomness (default: a fresh one derived from the run seed).
        augmentation: ``augmentation(name, **params)`` builds a registered augmentation.
        teacher: ``teacher() -> nn.Module``: the protocol's teacher (eval mode, frozen, on
            ``device``): the dataset's teacher architecture trained on the full training pool
            under the protocol's real-data recipe, trained once and cached for every method and
            the random baseline, or the user's ``--teacher FILE``. Calling it may train it.
        progress: ``progress(iterable, total=None, desc="")`` wraps a loop in a progress bar.
            Wrap the main loop in it with its ``total``: one iteration of the first such loop is
            counted to estimate the distillation's FLOPs (the run record's ``cost``).
        log: ``log(message)`` tells the user something (one line, on stderr).
        auto_assets: when False (``--no-auto-assets``) a method must not build an expensive asset
            (expert trajectories, a teacher) on demand; it raises a :class:`ddr.DdrError` giving
            the command that builds it instead.
        assets: the cache's assets (:class:`ddr.method.assets.Assets`): what :meth:`asset` builds.
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
    teacher: Callable[[], Any]
    progress: Callable[..., Any] = field(default=_no_progress)
    log: Callable[[str], None] = field(default=_no_log)
    auto_assets: bool = True
    assets: Any = field(default_factory=_default_assets)

    def asset(self, namespace: str, key: "Mapping[str, Any] | str", build: "Callable[[Path], None]", *,
              what: str) -> "Path":
        """A folder the method builds once and ddr caches: the entry of ``key`` (a JSON-able mapping
        of everything the asset depends on, or its :func:`ddr.method.assets.content_key`) in
        ``namespace`` (``"experts"``, ``"mymethod-features"``), filled by ``build(folder)`` when
        absent. Locked (two processes build it once), atomic (absent or complete, never half
        written), content-keyed (any changed input is a new entry). ``what`` names it in messages.

        Honour :attr:`auto_assets`: check ``ctx.assets.get(namespace, key)`` first and, when it is
        ``None`` and ``auto_assets`` is False, raise a :class:`ddr.DdrError` giving the command that
        builds it."""
        return self.assets.build(namespace, key, build, what=what)

    def class_indices(self) -> list["torch.Tensor"]:
        """Per-class indices into ``train``."""
        return self.train.class_indices(self.num_classes)


@runtime_checkable
class Method(Protocol):
    """What a :class:`ddr.plugin.specs.MethodSpec` target instantiates to."""

    def distill(self, ctx: DistillContext) -> "DistilledSet":
        ...
