"""The workspace a job runs against: dataset splits, distilled sets, random subsets, teachers.

A :class:`Workspace` resolves a job's :class:`~ddr.records.jobs.DataRef` to training data and
builds its model, label strategy and augmentation from registry names. Executors receive one;
an executor in another process rebuilds it from the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline
    from ddr.engine.data import ImageDataset, Split
    from ddr.engine.labels import LabelStrategy
    from ddr.engine.training import TrainData
    from ddr.plugin.manager import PluginSystem
    from ddr.records.jobs import DataRef


@dataclass
class Workspace:
    """Everything jobs of one evaluation resolve against.

    Attributes:
        system: the plugin system names are resolved in.
        device: where students train.
        dataset: the loaded dataset (metadata; ``pool``/``validation``/``test`` are its splits).
        pool: the training pool (train split minus validation), on ``device`` when in memory.
        validation: the held-out validation split (LR selection only).
        test: the test split (reported accuracies; best-epoch selection under ``ddranking``).
        ipc: images per class of random subsets.
        seed: the run seed (random subsets derive from it).
        teachers: ``teachers() -> [nn.Module]``: the teacher(s), eval mode, frozen.
        progress: wraps a loop in a progress bar.
        teacher_arch: ``(arch, arch_params)`` the teachers are built with (``None``: unknown), so an
            executor in another process can rebuild them from their state dicts.
        distilled: distilled sets by content hash: ``(Split on device, soft labels or None)``.
    """

    system: "PluginSystem"
    device: "torch.device"
    dataset: "ImageDataset"
    pool: "Split"
    validation: "Split"
    test: "Split"
    ipc: int
    seed: int
    teachers: Callable[[], list[Any]]
    progress: Callable[..., Any]
    teacher_arch: "tuple[str, dict[str, Any]] | None" = None
    distilled: dict[str, tuple["Split", "torch.Tensor | None"]] = field(default_factory=dict)
    _random: dict[int, "Split"] = field(default_factory=dict)
    _teacher_logits: dict[int, "torch.Tensor"] = field(default_factory=dict)

    # -- data --------------------------------------------------------------------------------------
    def add_distilled(self, sha256: str, split: "Split", soft: "torch.Tensor | None") -> None:
        self.distilled[sha256] = (split, soft)

    def random_subset(self, index: int) -> "Split":
        """Class-balanced random subset number ``index`` of the pool (``ipc`` per class)."""
        if index not in self._random:
            from ddr.protocol.baseline import random_subset

            self._random[index] = random_subset(self.pool, self.dataset.num_classes, self.ipc, self.seed,
                                                index).to(self.device)
        return self._random[index]

    def train_data(self, ref: "DataRef") -> "TrainData":
        """The images, labels and soft labels a job trains on."""
        from ddr.engine.training import TrainData

        if ref.kind == "pool":
            return TrainData(self.pool)
        if ref.kind == "distilled":
            if ref.sha256 not in self.distilled:
                raise DdrError(f"distilled set {str(ref.sha256)[:12]} is not loaded in this workspace")
            split, soft = self.distilled[ref.sha256]
            return TrainData(split, soft if ref.soft == "stored" else None)
        if ref.kind == "random":
            assert ref.index is not None
            split = self.random_subset(ref.index)
            soft = self._random_teacher_logits(ref.index) if ref.soft == "teacher" else None
            return TrainData(split, soft)
        raise DdrError(f"unknown data reference kind {ref.kind!r}")

    def _random_teacher_logits(self, index: int) -> "torch.Tensor":
        """Soft labels for a random subset evaluated like a stored-soft set: the teacher's logits."""
        import torch

        if index not in self._teacher_logits:
            split = self.random_subset(index)
            teachers = self.teachers()  # outside no_grad: the first call may train the reference
            with torch.no_grad():
                self._teacher_logits[index] = torch.stack([t(split.images) for t in teachers]).mean(0)
        return self._teacher_logits[index]

    # -- components --------------------------------------------------------------------------------
    def make_model(self, arch: str, params: Mapping[str, Any], seed: int) -> "torch.nn.Module":
        from ddr.engine.build import build_model

        return build_model(arch, self.dataset, params=dict(params), seed=seed, device=self.device, system=self.system)

    def label_strategy(self, ref: str, loss: Any, *, hard_labels: "torch.Tensor", soft_labels: "torch.Tensor | None",
                       teachers: list[Any]) -> "LabelStrategy":
        from ddr.engine.build import build_label_strategy

        strategy = build_label_strategy(ref, loss=loss, system=self.system)
        strategy.prepare(hard_labels=hard_labels, soft_labels=soft_labels, teachers=teachers,
                         num_classes=self.dataset.num_classes)
        return strategy

    def augmentation(self, items: Any) -> "Pipeline":
        from ddr.engine.build import build_augmentations

        return build_augmentations(list(items or []), system=self.system)
