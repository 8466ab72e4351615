"""Spec records: the typed, frozen values that registration hooks return.

A spec describes a component cheaply (name, summary, defaults) and points at the heavy code
through a lazy ``"package.module:attr"`` target, so listing never imports torch. The core fills
``provider`` (the plugin that returned the record); plugins must leave it empty.

Names follow ``[a-z0-9][a-z0-9_-]*``. A component is referred to as ``[provider/]name[.preset]``;
a spec with ``accepts_argument=True`` is also reachable as ``name:ARGUMENT`` (``folder:/data/x``,
``timm:resnet50``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from ddr.errors import ConfigError, InvalidSpecError
from ddr.plugin.params import ParamSpec, check_params, infer_schema

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a valid component name, else raise :class:`InvalidSpecError`."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidSpecError(
            f"invalid {what} {name!r}: names are lower case letters, digits, '_' and '-', "
            "starting with a letter or digit (e.g. 'convnet_d3', 'fashion-mnist')"
        )
    return name


def _frozen_mapping(value: Mapping[str, Any] | None, what: str, owner: str) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise InvalidSpecError(f"{owner}: {what} must be a mapping, got {type(value).__name__}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """Fields shared by every kind of component.

    Attributes:
        name: the public name, e.g. ``"dm"``.
        target: ``"module:attr"`` (preferred: imported only when used) or the object itself.
        summary: one line shown by ``ddr list``.
        aliases: other names that resolve to this spec (they take part in collision checks).
        version: bump when the component's outputs change; it enters cache keys.
        defaults: parameters passed to the target unless overridden.
        presets: ``{"paper": {...}}`` parameter sets selected with ``name.preset``.
        accepts_argument: the spec is a family reached as ``name:ARGUMENT``.
        provider: set by the core to the plugin that returned the record.
    """

    kind: ClassVar[str] = "component"
    plural: ClassVar[str] = "components"

    name: str
    target: str | Callable[..., Any]
    summary: str = ""
    aliases: tuple[str, ...] = ()
    version: str = "1"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    accepts_argument: bool = False
    provider: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, f"{self.kind} name")
        owner = f"{self.kind} '{self.name}'"
        if isinstance(self.target, str):
            if not TARGET_RE.match(self.target):
                raise InvalidSpecError(
                    f"{owner}: target {self.target!r} must look like 'package.module:attribute'"
                )
        elif not callable(self.target):
            raise InvalidSpecError(f"{owner}: target must be a 'module:attr' string or a callable")
        if isinstance(self.aliases, str) or not isinstance(self.aliases, (tuple, list)):
            raise InvalidSpecError(f"{owner}: aliases must be a tuple of names")
        object.__setattr__(self, "aliases", tuple(check_name(a, f"{self.kind} alias") for a in self.aliases))
        object.__setattr__(self, "version", str(self.version))
        object.__setattr__(self, "defaults", _frozen_mapping(self.defaults, "defaults", owner))
        presets = _frozen_mapping(self.presets, "presets", owner)
        for preset, params in presets.items():
            check_name(preset, f"{owner} preset")
            if not isinstance(params, Mapping):
                raise InvalidSpecError(f"{owner}: preset {preset!r} must be a mapping of parameters")
        object.__setattr__(self, "presets", MappingProxyType({k: MappingProxyType(dict(v)) for k, v in presets.items()}))

    @property
    def target_path(self) -> str:
        """The target as a printable ``module:attr`` string."""
        if isinstance(self.target, str):
            return self.target
        return f"{getattr(self.target, '__module__', '?')}:{getattr(self.target, '__qualname__', repr(self.target))}"

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (used by ``ddr list --json``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "summary": self.summary,
            "provider": self.provider,
            "target": self.target_path,
            "version": self.version,
            "aliases": list(self.aliases),
            "defaults": _jsonable(dict(self.defaults)),
            "presets": sorted(self.presets),
            "accepts_argument": self.accepts_argument,
        }
        out.update(self._extra())
        return out

    def _extra(self) -> dict[str, Any]:
        return {}


def _check_flags(spec: ComponentSpec, *names: str) -> None:
    """Raise :class:`InvalidSpecError` unless each named field of ``spec`` is a bool."""
    for name in names:
        if not isinstance(getattr(spec, name), bool):
            raise InvalidSpecError(f"{spec.kind} '{spec.name}': {name} must be True or False, "
                                   f"got {getattr(spec, name)!r}")


def _defaults_from_schema(spec: Any, owner: str) -> None:
    """A spec's ``defaults`` derived from its ``params`` schema (:class:`ParamSpec` records), before
    the base class freezes them; a spec may give only ``defaults`` (its schema is then inferred)."""
    if not spec.params:
        return
    if isinstance(spec.params, ParamSpec) or not all(isinstance(p, ParamSpec) for p in spec.params):
        raise InvalidSpecError(f"{owner}: params must be a tuple of ParamSpec records")
    derived = {p.name: p.default for p in spec.params}
    if spec.defaults and dict(spec.defaults) != derived:  # equal when dataclasses.replace re-runs this
        raise InvalidSpecError(f"{owner}: give params (the schema, with defaults) or defaults, not both")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names):
        raise InvalidSpecError(f"{owner}: parameter names repeat: {names}")
    object.__setattr__(spec, "defaults", derived)


def _schema_with_presets(spec: Any, owner: str) -> None:
    """The spec's schema as a tuple (inferred from ``defaults`` when not given), every preset
    checked against it."""
    if not spec.params:
        object.__setattr__(spec, "params", infer_schema(spec.defaults))
    object.__setattr__(spec, "params", tuple(spec.params))
    for preset, values in spec.presets.items():
        try:
            check_params(spec.params, values, f"{owner}, preset '{preset}',")
        except ConfigError as exc:
            raise InvalidSpecError(str(exc)) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(ComponentSpec):
    """An image classification dataset.

    The target is called as ``target(root=Path, argument=str|None, **params)`` and returns a
    :class:`ddr.engine.data.ImageDataset`. ``num_classes``/``image_size``/``channels`` may be ``None`` for
    families whose shape is known only after scanning (``folder:<path>``).

    Attributes:
        num_classes: number of classes K.
        image_size: ``(H, W)`` in pixels of the images the dataset yields.
        channels: 1 (grey) or 3 (RGB).
        mean, std: per-channel normalisation constants (fractions of the 0..1 pixel range).
        class_names: human-readable class names, index-aligned.
        real_epochs: epochs of the real-data recipe (full-data accuracy and teachers).
        budget: the name of a reduced distillation budget this dataset asks for (``"reduced"`` on
            digits): a method's preset of that name, when it has one, is applied under the user's
            preset and overrides, and the run names it in its printout and record.
    """

    kind: ClassVar[str] = "dataset"
    plural: ClassVar[str] = "datasets"

    num_classes: int | None = None
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    class_names: tuple[str, ...] = ()
    real_epochs: int = 200
    budget: str | None = None

    def _extra(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "num_classes": self.num_classes,
            "image_size": list(self.image_size) if self.image_size else None,
            "channels": self.channels,
            "mean": list(self.mean) if self.mean else None,
            "std": list(self.std) if self.std else None,
            "real_epochs": self.real_epochs,
        }


@dataclass(frozen=True, kw_only=True)
class ArchitectureSpec(ComponentSpec):
    """A student/teacher network family.

    The target is called as ``target(channels=C, num_classes=K, image_size=(H, W), **params)`` and
    returns a ``torch.nn.Module`` whose ``forward(x[B,C,H,W])`` gives logits ``[B,K]`` and whose
    ``embed(x)`` gives the penultimate features ``[B,D]``.

    Attributes:
        family: the network family (``convnet``, ``resnet``, ...).
        stackable: capability: the ``batched`` executor may train several students of this network as
            members of one stacked model under ``torch.vmap``: the forward is a pure function of the
            parameters and the input (no BatchNorm statistics, dropout or other global random
            numbers, buffers, frozen parameters or data-dependent Python control flow). The executor
            still checks each built network and its stacked forward, and runs it job by job when a
            check fails or the flag is off.
        grouped: capability (implies ``stackable``): the network has ddr's ConvNet layout, so the
            batched executor may run its members as grouped convolutions instead of ``torch.vmap``:
            ``forward(x) = classifier(features(x).flatten(1))`` with ``features`` an ``nn.Sequential``
            of ``Conv2d``, ``GroupNorm``, ``LayerNorm([C, H, W])``, activations and pools, and
            ``classifier`` one ``nn.Linear``.
    """

    kind: ClassVar[str] = "architecture"
    plural: ClassVar[str] = "architectures"

    family: str = ""
    stackable: bool = False
    grouped: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_flags(self, "stackable", "grouped")
        if self.grouped and not self.stackable:
            raise InvalidSpecError(f"architecture '{self.name}': grouped=True needs stackable=True "
                                   "(the grouped program stacks the members)")

    def _extra(self) -> dict[str, Any]:
        return {"family": self.family, "stackable": self.stackable, "grouped": self.grouped}


@dataclass(frozen=True, kw_only=True)
class LabelStrategySpec(ComponentSpec):
    """A label strategy: how a student's targets are made for every (augmented) batch.

    ``target(loss=LOSS, **params)`` returns a :class:`ddr.engine.labels.LabelStrategy`; ``loss``
    is a built loss (a :class:`LossSpec` target) or ``None`` for the strategy's default loss.

    Attributes:
        soft: the targets are soft (logits), so soft losses (``kl``, ``sce``) apply.
        needs_teacher: the strategy is given the protocol's teacher(s) (``teacher``).
        needs_soft_labels: the distilled set must store soft labels (``stored_soft``).
        default_loss: the loss used when neither the protocol nor the user names one.
        stackable: capability: the ``batched`` executor may train students with this strategy as
            members of one stacked model: ``targets(images, index, None)`` is a lookup of what
            ``prepare`` received (no teacher, no random numbers, no per-epoch state such as
            ``replay_epochs``), and ``loss(logits, targets)`` applies the configured loss and
            nothing that depends on the student's data, so students with equal strategy and loss
            references may share one loss call. Off: its jobs run one by one.
    """

    kind: ClassVar[str] = "label strategy"
    plural: ClassVar[str] = "label-strategies"

    soft: bool = False
    needs_teacher: bool = False
    needs_soft_labels: bool = False
    default_loss: str = "ce"
    stackable: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_flags(self, "stackable")
        if self.stackable and self.needs_teacher:
            raise InvalidSpecError(f"label strategy '{self.name}': stackable=True and needs_teacher=True exclude "
                                   "each other (a teacher relabels every batch per student)")

    def _extra(self) -> dict[str, Any]:
        return {"soft": self.soft, "needs_teacher": self.needs_teacher,
                "needs_soft_labels": self.needs_soft_labels, "default_loss": self.default_loss,
                "stackable": self.stackable}


@dataclass(frozen=True, kw_only=True)
class LossSpec(ComponentSpec):
    """A loss comparing student logits with a batch's targets.

    ``target(**params)`` returns a :class:`ddr.engine.labels.Loss`:
    ``loss(logits[B,K], targets: Targets) -> scalar tensor``.

    Attributes:
        soft: the loss compares with soft targets (logits) and needs a soft label strategy.
        stackable: capability: the loss works under ``torch.vmap`` (tensor operations only: no
            host reads such as ``.item()``, no data-dependent Python control flow, no writes to
            state it keeps), so the ``batched`` executor computes the losses of all members of a
            stacked model in one vmapped call. Off: each member's loss is its own call (the
            students still train together when their label strategy is stackable).
    """

    kind: ClassVar[str] = "loss"
    plural: ClassVar[str] = "losses"

    soft: bool = False
    stackable: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_flags(self, "stackable")

    def _extra(self) -> dict[str, Any]:
        return {"soft": self.soft, "stackable": self.stackable}


@dataclass(frozen=True, kw_only=True)
class AugmentationSpec(ComponentSpec):
    """A batched, generator-driven augmentation.

    target(**params) returns an :class:`ddr.engine.augment.Augmentation`: ``aug(images[B,C,H,W],
    generator) -> (images, Mix | None)``. ``mixes=True`` for mixup/cutmix, whose labels must be
    mixed by the label strategy.

    Attributes:
        mixes: the augmentation mixes images (and returns a ``Mix``), so the labels are mixed too.
        stackable: capability: the ``batched`` executor may apply it to each member's batch of a
            stacked model: it acts on the given batch alone, draws every random number from the
            given generator and never mixes (``mixes=True`` excludes it). Off: its jobs run one by one.
    """

    kind: ClassVar[str] = "augmentation"
    plural: ClassVar[str] = "augmentations"

    mixes: bool = False
    stackable: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_flags(self, "stackable")
        if self.stackable and self.mixes:
            raise InvalidSpecError(f"augmentation '{self.name}': stackable=True and mixes=True exclude each other "
                                   "(mixed batches need mixed targets per student)")

    def _extra(self) -> dict[str, Any]:
        return {"mixes": self.mixes, "stackable": self.stackable}


@dataclass(frozen=True, kw_only=True)
class MethodRecipe:
    """What a method's authors ran on one dataset (at some IPCs, or all): its parameters and what it
    needs from the evaluation. ``ddr run`` picks the recipe matching the run's dataset and IPC,
    prints it, and applies it under the user's own choices (``--set method.KEY``, ``--zca`` /
    ``--no-zca``, ``--protocol``, ``--set KEY``), which always win.

    Attributes:
        dataset: the dataset name (``cifar10``), matched against the run's dataset without options.
        ipcs: the IPCs it covers; empty means every IPC.
        name: a short name for the printout and the record (``cifar10 IPC 10``).
        params: method parameters (above the dataset budget, below a named preset and ``--set``).
        zca: whether the authors whiten with ZCA (``None``: they say nothing).
        protocol: the protocol to evaluate under instead of the method's default (``None``: keep it).
        protocol_overrides: dotted protocol settings their evaluation uses (e.g. its student batch).
        source: the official file(s) and lines this is transcribed from.
    """

    dataset: str
    ipcs: tuple[int, ...] = ()
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    zca: bool | None = None
    protocol: str | None = None
    protocol_overrides: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        owner = f"recipe for {self.dataset!r}"
        if not isinstance(self.dataset, str) or not self.dataset:
            raise InvalidSpecError(f"a method recipe needs a dataset name, got {self.dataset!r}")
        ipcs = tuple(self.ipcs)
        if not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in ipcs):
            raise InvalidSpecError(f"{owner}: ipcs must be positive integers, got {self.ipcs!r}")
        object.__setattr__(self, "ipcs", ipcs)
        object.__setattr__(self, "params", _frozen_mapping(self.params, "params", owner))
        object.__setattr__(self, "protocol_overrides",
                           _frozen_mapping(self.protocol_overrides, "protocol_overrides", owner))
        if not self.name:
            object.__setattr__(self, "name", self.dataset + (" IPC " + "/".join(map(str, ipcs)) if ipcs else ""))
        if not self.source:
            raise InvalidSpecError(f"{owner}: say where the recipe comes from (source: the official file and lines)")

    def matches(self, dataset: str, ipc: int | None) -> bool:
        """Whether the recipe covers ``dataset`` (options after ``:`` ignored) at ``ipc``."""
        return dataset.split(":")[0] == self.dataset and (not self.ipcs or ipc in self.ipcs)

    def summary(self) -> str:
        """``ZCA on; factor=1; protocol soft; train.batch_size=128`` (what it sets, in words)."""
        parts = []
        if self.zca is not None:
            parts.append("ZCA on" if self.zca else "ZCA off")
        parts += [f"{k}={v}" for k, v in self.params.items()]
        if self.protocol:
            parts.append(f"protocol {self.protocol}")
        parts += [f"{k}={v}" for k, v in self.protocol_overrides.items()]
        return "; ".join(parts) or "the method's defaults"

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "ipcs": list(self.ipcs), "name": self.name, "params": dict(self.params),
                "zca": self.zca, "protocol": self.protocol,
                "protocol_overrides": _jsonable(dict(self.protocol_overrides)), "source": self.source}


REPORTED_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*/ipc[1-9][0-9]*$")
"""How a published number is keyed: ``"<dataset>/ipc<k>"`` (``"cifar10/ipc10"``)."""


@dataclass(frozen=True, kw_only=True)
class ReportedNumber:
    """One published test accuracy of a method, with where it is printed.

    Attributes:
        value: the accuracy as a fraction in [0, 1] (a paper's 48.9 % is ``0.489``).
        paper: the publication that prints it, e.g. ``"Guo et al., ICLR 2024 (DATM)"``; ``None``
            only for a number a plugin declared without a source (shown as "no source given").
        table: where in that publication, e.g. ``"Table 1"``.
        arch: the architecture its students were evaluated with, e.g. ``"ConvNet-3"``.
        label_type: ``"hard"`` or ``"soft"``: what its students trained on.
        note: anything a reader must know to compare it (a reprint, a protocol detail).
    """

    value: float
    paper: str | None = None
    table: str | None = None
    arch: str | None = None
    label_type: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            hint = " (a fraction: write 0.489 for 48.9 %)" if isinstance(value, (int, float)) \
                and not isinstance(value, bool) and 1.0 < float(value) <= 100.0 else ""
            raise InvalidSpecError(f"a reported accuracy must be a fraction in [0, 1], got {value!r}{hint}")
        object.__setattr__(self, "value", float(value))
        for name in ("paper", "table", "arch"):
            text = getattr(self, name)
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise InvalidSpecError(f"a reported accuracy's {name} must be a non-empty string or None, got {text!r}")
        if self.label_type is not None and self.label_type not in LABEL_TYPES:
            raise InvalidSpecError(f"a reported accuracy's label_type must be one of {', '.join(LABEL_TYPES)} or "
                                   f"None, got {self.label_type!r}")
        if not isinstance(self.note, str):
            raise InvalidSpecError(f"a reported accuracy's note must be a string, got {self.note!r}")

    def __float__(self) -> float:
        return self.value

    @property
    def sourced(self) -> bool:
        """Whether it names the publication and the table it is printed in."""
        return bool(self.paper and self.table)

    @property
    def source(self) -> str:
        """``Guo et al., ICLR 2024 (DATM), Table 1``; ``no source given`` for an unsourced number."""
        if not self.paper:
            return "no source given"
        return f"{self.paper}, {self.table}" if self.table else self.paper

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly record (``value`` a fraction)."""
        return {"value": self.value, "paper": self.paper, "table": self.table, "arch": self.arch,
                "label_type": self.label_type, "note": self.note}


REPORTED_FIELDS = frozenset({"value", "paper", "table", "arch", "label_type", "note"})


def reported_number(value: Any, where: str = "reported") -> ReportedNumber:
    """``value`` as a :class:`ReportedNumber`: one already, a mapping of its fields (``value``,
    ``paper``, ``table``, ``arch``, ``label_type``, ``note``) or a bare fraction (no source)."""
    if isinstance(value, ReportedNumber):
        return value
    try:
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - REPORTED_FIELDS)
            if unknown:
                raise InvalidSpecError(f"unknown field(s) {', '.join(map(str, unknown))}; a reported number has "
                                       f"{', '.join(sorted(REPORTED_FIELDS))}")
            if "value" not in value:
                raise InvalidSpecError("a reported number needs a 'value' (the accuracy as a fraction)")
            return ReportedNumber(**{str(k): v for k, v in value.items()})
        return ReportedNumber(value=value)
    except InvalidSpecError as exc:
        raise InvalidSpecError(f"{where}: {exc}") from None


def _reported(value: Any, owner: str) -> Mapping[str, ReportedNumber]:
    """The ``reported`` mapping of a method spec, keys checked and values made records."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise InvalidSpecError(f"{owner}: reported must be a mapping like {{'cifar10/ipc10': 0.489}}, "
                               f"got {type(value).__name__}")
    out: dict[str, ReportedNumber] = {}
    for key, number in value.items():
        if not isinstance(key, str) or not REPORTED_KEY_RE.match(key):
            raise InvalidSpecError(f"{owner}: reported key {key!r} must look like 'cifar10/ipc10' "
                                   f"(dataset name, '/ipc', images per class)")
        out[key] = reported_number(number, f"{owner}, reported {key!r}")
    return MappingProxyType(out)


@dataclass(frozen=True, kw_only=True)
class MethodSpec(ComponentSpec):
    """A dataset-distillation method.

    The target is a class; ``target().distill(ctx: ddr.method.context.DistillContext)`` returns a
    :class:`ddr.store.formats.DistilledSet`.

    Attributes:
        label_strategy: the label strategy its distilled sets are evaluated with (acc_syn_any).
        protocol: the shared protocol it is evaluated under by default.
        needs_teacher: the method uses the protocol's teacher (``ctx.teacher()``), trained on
            the full training pool under the real-data recipe and cached.
        reported: published accuracies keyed like ``"cifar10/ipc10"``: each a
            :class:`ReportedNumber` (a fraction in [0, 1] with the paper, table, evaluation
            architecture and label type it comes from), a mapping of those fields, or a bare
            fraction (kept, shown as "no source given"). Read back, every value is a
            :class:`ReportedNumber` (``float(number)`` is the fraction). Reports show them beside
            ddr's measurement (``ddr leaderboard --reported``) and never rank them.
        params: the parameter schema (:class:`ParamSpec` records); the spec's ``defaults`` are
            derived from it. A spec may instead give only ``defaults``, whose schema is inferred.
            Presets (``paper``, ``smoke``, a dataset's budget such as ``reduced``) may set only
            declared parameters; ``smoke`` is what ``ddr.testing.check_method`` runs.
        protocol_overrides: dotted protocol settings the method needs to be evaluated at all
            (SRe²L: ``{"teacher.arch": "convnet_bn"}``, a teacher with BatchNorm statistics). They
            apply under the user's own overrides, and every record names them like any override.
        recipes: :class:`MethodRecipe` records, the authors' own settings per (dataset, IPC); at
            most one may match a (dataset, IPC).
        paper: the title of the paper that introduced the method (optional).
        venue: where it was published, e.g. ``"ICLR 2021"`` (optional).
        year: the year of publication, e.g. ``2021`` (optional).
        code: the URL of the official repository (optional; ``http(s)://``).
        label_type: ``"hard"`` (one class per image) or ``"soft"`` (soft labels or a relabelling
            teacher) as the method's paper evaluates it (optional).
        family: ``"distillation"`` (it synthesises or edits images) or ``"selection"`` (it picks
            real training images, a coreset: random, herding, K-center, the coreset selectors);
            boards compare each distillation method with the best selection method of its cell
            (the ``ioc`` metric) and can show either family alone.
    """

    kind: ClassVar[str] = "method"
    plural: ClassVar[str] = "methods"

    label_strategy: str = "hard"
    protocol: str = "hard"
    needs_teacher: bool = False
    reported: Mapping[str, ReportedNumber] = field(default_factory=dict)
    params: tuple[ParamSpec, ...] = ()
    protocol_overrides: Mapping[str, Any] = field(default_factory=dict)
    recipes: tuple[MethodRecipe, ...] = ()
    paper: str | None = None
    venue: str | None = None
    year: int | None = None
    code: str | None = None
    label_type: str | None = None
    family: str = "distillation"

    def __post_init__(self) -> None:
        owner = f"method '{self.name}'"
        _check_metadata(self, owner)
        _defaults_from_schema(self, owner)
        super().__post_init__()
        object.__setattr__(self, "reported", _reported(self.reported, owner))
        object.__setattr__(self, "protocol_overrides",
                           _frozen_mapping(self.protocol_overrides, "protocol_overrides", owner))
        _schema_with_presets(self, owner)
        recipes = tuple(self.recipes)
        if not all(isinstance(r, MethodRecipe) for r in recipes):
            raise InvalidSpecError(f"{owner}: recipes must be MethodRecipe records")
        for k, recipe in enumerate(recipes):
            try:
                check_params(self.params, recipe.params, f"{owner}, recipe '{recipe.name}',")
            except ConfigError as exc:
                raise InvalidSpecError(str(exc)) from None
            for other in recipes[k + 1:]:
                shared = set(recipe.ipcs) & set(other.ipcs) if recipe.ipcs and other.ipcs else True
                if other.dataset == recipe.dataset and shared:
                    raise InvalidSpecError(f"{owner}: recipes '{recipe.name}' and '{other.name}' both cover "
                                           f"{recipe.dataset}; give each IPC one recipe")
        object.__setattr__(self, "recipes", recipes)

    def recipe_for(self, dataset: str, ipc: int | None) -> MethodRecipe | None:
        """The recipe covering ``dataset`` at ``ipc``, if the method declares one."""
        return next((r for r in self.recipes if r.matches(dataset, ipc)), None)

    def check_params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` validated against the schema (unknown keys, types, ranges): ConfigError."""
        return check_params(self.params, values, f"method '{self.name}'")

    def _extra(self) -> dict[str, Any]:
        return {"label_strategy": self.label_strategy, "protocol": self.protocol,
                "needs_teacher": self.needs_teacher,
                "reported": {k: float(v) for k, v in self.reported.items()},
                "reported_sources": {k: _reported_source(v) for k, v in self.reported.items()},
                "params": [p.describe() for p in self.params],
                "protocol_overrides": _jsonable(dict(self.protocol_overrides)),
                "recipes": [r.describe() for r in self.recipes],
                "paper": self.paper, "venue": self.venue, "year": self.year, "code": self.code,
                "label_type": self.label_type, "family": self.family}


LABEL_TYPES = ("hard", "soft")
"""The values of :attr:`MethodSpec.label_type`."""
METHOD_FAMILIES = ("distillation", "selection")
"""The values of :attr:`MethodSpec.family`."""


def _reported_source(number: Any) -> dict[str, Any]:
    """A reported number's source fields (paper, table, arch, label_type, note), for JSON."""
    out = reported_number(number).describe()
    out.pop("value")
    return out


def _check_metadata(spec: "MethodSpec", owner: str) -> None:
    """Raise :class:`InvalidSpecError` unless the bibliographic fields of ``spec`` are well typed."""
    for name in ("paper", "venue", "code"):
        value = getattr(spec, name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidSpecError(f"{owner}: {name} must be a non-empty string or None, got {value!r}")
    year = spec.year
    if year is not None and (isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2100):
        raise InvalidSpecError(f"{owner}: year must be an int such as 2021 or None, got {year!r}")
    if spec.code is not None and not spec.code.startswith(("https://", "http://")):
        raise InvalidSpecError(f"{owner}: code must be the URL of the official repository "
                               f"(http:// or https://), got {spec.code!r}")
    if spec.family not in METHOD_FAMILIES:
        raise InvalidSpecError(f"{owner}: family must be one of {', '.join(METHOD_FAMILIES)}, got {spec.family!r}")
    if spec.label_type is not None and spec.label_type not in LABEL_TYPES:
        raise InvalidSpecError(f"{owner}: label_type must be one of {', '.join(LABEL_TYPES)} or None, "
                               f"got {spec.label_type!r}")


@dataclass(frozen=True, kw_only=True)
class ProtocolSpec(ComponentSpec):
    """A versioned evaluation protocol, defined by a YAML file.

    ``target`` is ``"package.module:relative/file.yaml"``-free: use ``path`` for the YAML location
    (``"package:relative/path.yaml"`` for package data, or a filesystem path). ``target`` may be
    left as ``"ddr.protocol.config:load_protocol"``.
    """

    kind: ClassVar[str] = "protocol"
    plural: ClassVar[str] = "protocols"

    path: str = ""
    target: str | Callable[..., Any] = "ddr.protocol.config:load_protocol"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            raise InvalidSpecError(f"protocol '{self.name}': path to its YAML file is required")

    def _extra(self) -> dict[str, Any]:
        return {"path": self.path}


@dataclass(frozen=True, kw_only=True)
class ExecutorSpec(ComponentSpec):
    """A way to run student jobs: ``target(**params)`` returns a :class:`ddr.execute.Executor`
    whose ``run(jobs, workspace)`` yields one :class:`ddr.records.jobs.JobResult` per job.

    Attributes:
        devices: the device types it can drive (``("cpu", "cuda")``).
    """

    kind: ClassVar[str] = "executor"
    plural: ClassVar[str] = "executors"

    devices: tuple[str, ...] = ("cpu", "cuda")

    def _extra(self) -> dict[str, Any]:
        return {"devices": list(self.devices)}


METRIC_NEEDS = ("accuracies", "student", "board")
"""What a metric is computed from: ``accuracies`` (the accuracies and scores of one student index,
by the scorer, after every job finished), ``student`` (the trained student model and the test
split, inside the student's job on the executor that trained it) or ``board`` (the entries of one
leaderboard cell, by the report, after the runs: ``target(board, **params)`` returns a
:class:`~ddr.report.statistics.TestResult`-like value per entry label; no run computes it)."""
METRIC_UNITS = ("fraction", "difference", "score", "value")
"""``fraction``: an accuracy in [0, 1]; ``difference``: of two fractions, in [-1, 1]; ``score``:
a normalised score in [0, 1]; ``value``: anything else (the doc says what)."""
STUDENT_ROLES = ("syn_hard", "syn_any", "rdm_any")
"""The student roles a ``student`` metric may run on (the reference never: it is one model)."""


@dataclass(frozen=True, kw_only=True)
class MetricSpec(ComponentSpec):
    """A number ddr reports: the accuracies, HLR, IOR, DDRS, ARS (built in) or a plugin's own.

    The spec module of a metric imports no torch (``ddr list metrics`` stays light); the target
    is imported only when the metric is computed.

    Attributes:
        label: the column header (``DDRS (LRS)``); the name when empty.
        unit: one of :data:`METRIC_UNITS`.
        higher_is_better: the direction (boards print ↑/↓ from it and rank by it).
        formula: the formula in words and symbols, for the docs, ``ddr describe`` and the HTML board.
        needs: one of :data:`METRIC_NEEDS`.
        inputs: for ``accuracies``: the scores it is computed from, by name (``("hlr", "ior")``);
            ``target(*values, **params)`` returns the value of one student index.
        outputs: for ``student``: the names of the numbers ``target(model, test, params)``
            returns (e.g. ``("clean", "robust")``); the last is the metric's own value, reported
            per role as ``<name>_syn`` / ``<name>_rdm`` (``<name>_syn_hard``) and as
            ``<name>_gap`` (syn minus random, per student index); the others as
            ``<name>_<output>_<side>``.
        roles: for ``student``: the roles whose students it runs on (:data:`STUDENT_ROLES`).
        params: the parameter schema (:class:`ParamSpec`); presets select other values
            (``robust_pgd.strong``).
        builtin_score: computed for every run (the accuracies, HLR, IOR, DDRS); other metrics are
            chosen with ``--metric``, a suite's ``metrics:`` or a protocol's ``metrics.extra``.
    """

    kind: ClassVar[str] = "metric"
    plural: ClassVar[str] = "metrics"

    label: str = ""
    unit: str = "value"
    higher_is_better: bool = True
    formula: str = ""
    needs: str = "accuracies"
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    roles: tuple[str, ...] = ("syn_any", "rdm_any")
    params: tuple[ParamSpec, ...] = ()
    builtin_score: bool = False

    def __post_init__(self) -> None:
        owner = f"metric '{self.name}'"
        _defaults_from_schema(self, owner)
        super().__post_init__()
        _schema_with_presets(self, owner)
        _check_flags(self, "higher_is_better", "builtin_score")
        if self.unit not in METRIC_UNITS:
            raise InvalidSpecError(f"{owner}: unit must be one of {METRIC_UNITS}, got {self.unit!r}")
        if self.needs not in METRIC_NEEDS:
            raise InvalidSpecError(f"{owner}: needs must be one of {METRIC_NEEDS}, got {self.needs!r}")
        for what in ("inputs", "outputs", "roles"):
            value = getattr(self, what)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) or not all(
                    isinstance(v, str) and v for v in value):
                raise InvalidSpecError(f"{owner}: {what} must be a tuple of names, got {value!r}")
            object.__setattr__(self, what, tuple(value))
        if self.needs == "student":
            if not self.outputs:
                raise InvalidSpecError(f"{owner}: a student metric names its outputs (e.g. ('clean', 'robust'))")
            bad = [r for r in self.roles if r not in STUDENT_ROLES]
            if bad or not self.roles:
                raise InvalidSpecError(f"{owner}: roles must be some of {STUDENT_ROLES}, got {self.roles!r}")
            if self.builtin_score:
                raise InvalidSpecError(f"{owner}: a student metric costs student time; it is chosen with --metric, "
                                       "not computed for every run (builtin_score=False)")
        elif self.needs == "board" and self.builtin_score:
            raise InvalidSpecError(f"{owner}: a board metric is computed by the leaderboard from several runs, "
                                   "never by a run (builtin_score=False)")
        elif self.needs == "accuracies" and not self.inputs:
            raise InvalidSpecError(f"{owner}: an accuracies metric names its inputs (e.g. ('hlr', 'ior'))")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def arrow(self) -> str:
        """``↑`` (higher is better) or ``↓``."""
        return "↑" if self.higher_is_better else "↓"

    def check_params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` validated against the schema (unknown keys, types, ranges): ConfigError."""
        return check_params(self.params, values, f"metric '{self.name}'")

    def columns(self) -> tuple[str, ...]:
        """The score names a run reports for this metric (a student metric: per output and role)."""
        if self.needs != "student":
            return (self.name,)
        sides = [{"syn_any": "syn", "rdm_any": "rdm"}.get(r, r) for r in self.roles]
        own = [f"{self.name}_{side}" for side in sides]
        others = [f"{self.name}_{out}_{side}" for out in self.outputs[:-1] for side in sides]
        return (*own, *([f"{self.name}_gap"] if {"syn", "rdm"} <= set(sides) else []), *others)

    def _extra(self) -> dict[str, Any]:
        return {"label": self.label, "unit": self.unit, "higher_is_better": self.higher_is_better,
                "formula": self.formula, "needs": self.needs, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "roles": list(self.roles) if self.needs == "student" else [],
                "params": [p.describe() for p in self.params], "builtin_score": self.builtin_score,
                "columns": list(self.columns())}


SPEC_TYPES: dict[str, type[ComponentSpec]] = {
    "datasets": DatasetSpec,
    "architectures": ArchitectureSpec,
    "label-strategies": LabelStrategySpec,
    "losses": LossSpec,
    "augmentations": AugmentationSpec,
    "methods": MethodSpec,
    "protocols": ProtocolSpec,
    "executors": ExecutorSpec,
    "metrics": MetricSpec,
}
"""CLI name of each registry -> its spec type."""

HOOK_OF_KIND: dict[str, str] = {
    "datasets": "ddr_datasets",
    "architectures": "ddr_architectures",
    "label-strategies": "ddr_label_strategies",
    "losses": "ddr_losses",
    "augmentations": "ddr_augmentations",
    "methods": "ddr_methods",
    "protocols": "ddr_protocols",
    "executors": "ddr_executors",
    "metrics": "ddr_metrics",
}
