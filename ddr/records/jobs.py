"""Student jobs and their results: what an executor is handed and what it returns.

A :class:`StudentJob` names its data (:class:`DataRef`), recipe, LR candidates, selection rule,
label strategy, loss, augmentation, architecture, derived seed and a content key; running it
gives a :class:`JobResult`. Both serialise (``to_dict``/``from_dict``) so they cross process
boundaries and live in the job cache. :mod:`ddr.protocol.plan` builds them.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ddr.records.recipe import Recipe

JOB_FORMAT_VERSION = 1
"""Bump when the meaning of a job (and so of its cached result) changes."""

ROLES = ("real", "syn_hard", "syn_any", "rdm_any", "syn_noaug", "rdm_noaug")
"""``real``: the full training pool (acc_real_hard, and the teacher); ``syn_hard``/``syn_any``:
the distilled set with hard labels / its label strategy; ``rdm_any``: a random class-balanced
subset treated like ``syn_any``; ``syn_noaug``/``rdm_noaug``: ARS's runs without augmentation."""


@dataclass(frozen=True)
class DataRef:
    """What a job trains on.

    Attributes:
        kind: ``distilled`` (the set with content hash ``sha256``), ``random`` (the class-balanced
            random subset number ``index`` of the training pool, ``ipc`` per class) or ``pool``.
        soft: where soft labels come from: ``stored`` (the distilled set's own), ``teacher``
            (the teacher's logits of the un-augmented images, for a random subset evaluated like
            a stored-soft set), or ``None``.
    """

    kind: str
    sha256: str | None = None
    index: int | None = None
    ipc: int | None = None
    soft: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DataRef":
        return cls(**dict(data))


@dataclass(frozen=True)
class StudentJob:
    """One student to train and test.

    Attributes:
        role: one of :data:`ROLES`; index: the student index (0 for ``real``).
        data: its training data.
        recipe: how it is optimised (:class:`ddr.records.recipe.Recipe`; each LR candidate
            replaces its ``lr``).
        lr_candidates: learning rates to try (one: no search).
        selection: ``last`` (test after the last epoch), ``validation`` (the LR with the best
            validation accuracy) or ``ddranking`` (best test accuracy every ``test_interval``
            epochs; 0 for the other rules, which never test during training).
        label_strategy, loss: how targets are made and compared (loss: name, mapping or None).
        augmentation: the augmentation entries (names or ``{name: ..., **params}``).
        arch, arch_params: the network.
        seed: the derived seed (model init, data order, augmentation).
        needs_teacher: the job uses the teacher (strategy ``teacher`` or teacher soft labels).
        context: the identity of everything the data refs resolve against (dataset, pixel
            space, validation split, teacher, device type), shared by a run's jobs.
        metrics: the student metrics measured on the trained student inside the job, each
            ``{"name", "version", "params"}`` (part of the key only when there are some, so jobs
            without metrics keep their keys).
        key: the content key of the job (sha256 hex).
    """

    role: str
    index: int
    data: DataRef
    recipe: Recipe
    lr_candidates: tuple[float, ...]
    selection: str
    test_interval: int
    label_strategy: str
    loss: Any
    augmentation: tuple[Any, ...]
    arch: str
    arch_params: Mapping[str, Any]
    seed: int
    needs_teacher: bool
    context: Mapping[str, Any]
    metrics: tuple[Mapping[str, Any], ...] = ()
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            from ddr.store.hashing import sha256_json  # numpy: not at import (``ddr list`` stays light)

            object.__setattr__(self, "key", sha256_json({"format": JOB_FORMAT_VERSION, **self._content()}))

    def _content(self) -> dict[str, Any]:
        out = self.to_dict()
        out.pop("key")
        if not self.needs_teacher:  # a job that never looks at the teacher does not depend on it
            out["context"] = {k: v for k, v in self.context.items() if k != "teacher"}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "index": self.index, "data": self.data.to_dict(), "recipe": self.recipe.to_dict(),
                "lr_candidates": list(self.lr_candidates), "selection": self.selection,
                "test_interval": self.test_interval, "label_strategy": self.label_strategy, "loss": self.loss,
                "augmentation": list(self.augmentation), "arch": self.arch, "arch_params": dict(self.arch_params),
                "seed": self.seed, "needs_teacher": self.needs_teacher, "context": dict(self.context),
                **({"metrics": [dict(m) for m in self.metrics]} if self.metrics else {}), "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StudentJob":
        values = dict(data)
        values["data"] = DataRef.from_dict(values["data"])
        values["recipe"] = Recipe.from_mapping(values["recipe"])
        values["lr_candidates"] = tuple(values["lr_candidates"])
        values["augmentation"] = tuple(values["augmentation"])
        values["metrics"] = tuple(dict(m) for m in values.get("metrics") or ())
        return cls(**values)


@dataclass
class JobResult:
    """What running one job produced (accuracies are fractions).

    Attributes:
        accuracy: the reported test accuracy (after the last epoch, or DD-Ranking's best).
        lr: the learning rate the reported student was trained with.
        epochs_trained: epochs of that student.
        seconds: wall time of the whole job, every LR candidate included.
        peak_memory_bytes: peak device memory (CUDA allocator) or process peak RSS on CPU.
        selection: how the LR was chosen (``mode``, ``scores_by_lr``, ``chosen_lr``), if searched.
        cached: the result was read from the job cache instead of trained.
        metrics: the job's student metrics measured on the reported student: metric name ->
            {output name -> value} (e.g. ``{"robust_pgd": {"clean": 0.9, "robust": 0.1}}``).
    """

    key: str
    role: str
    index: int
    seed: int
    accuracy: float
    lr: float
    epochs_trained: int
    seconds: float
    peak_memory_bytes: int | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"role": self.role, "index": self.index, "seed": self.seed, "accuracy": self.accuracy,
               "lr": self.lr, "epochs_trained": self.epochs_trained, "seconds": round(self.seconds, 3),
               "peak_memory_bytes": self.peak_memory_bytes, "key": self.key, "cached": self.cached}
        if self.selection:
            out["selection"] = self.selection
        if self.metrics:
            out["metrics"] = {name: dict(values) for name, values in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JobResult":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})
