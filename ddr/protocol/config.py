"""The typed protocol: a YAML file parsed into frozen dataclasses.

The YAML files under ``ddr/builtins/protocols/`` are the only place protocol defaults live:
``_base.yaml`` holds every key, each shipped protocol includes it and changes what it must. A
protocol must define every key of :data:`PROTOCOL_SCHEMA` (directly or through ``include:``);
a missing key is an error that names it, an unknown key an error with a did-you-mean, a value of
the wrong type an error naming the key. There are no defaults in this module.

Metric definitions and the shipped protocols: docs/protocol.md.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DdrError
from ddr.plugin.params import is_finite_number as _finite
from ddr.protocol.bounds import check_bound
from ddr.protocol.yaml import check_schema, deep_merge, dotted_to_nested, load_yaml_with_includes, lookup_dotted
from ddr.records.recipe import Recipe

if TYPE_CHECKING:  # pragma: no cover
    from ddr.plugin.manager import PluginSystem

_RECIPE: dict[str, Any] = {
    "optimizer": str, "lr": float, "momentum": float, "weight_decay": float, "epochs": (int, type(None)),
    "batch_size": int, "schedule": str, "milestones": list, "gamma": float,
}
PROTOCOL_SCHEMA: dict[str, Any] = {
    "name": str,
    "version": (int, str),
    "summary": str,
    "include": (str, list),
    "student": {"arch": str, "arch_params": dict, "arch_by_size": dict},
    "train": dict(_RECIPE),
    "hard_augmentation": list,
    "syn_hard_learned_lr": bool,
    "augmentation": list,
    "label_strategy": str,
    "loss": (str, dict, type(None)),
    "real": {**_RECIPE, "augmentation": list, "selection": str},
    "teacher": {"arch": (str, type(None)), "arch_params": dict, "checkpoint": (str, type(None))},
    "selection": str,
    "lr_grid": list,
    "validation_per_class": int,
    "test_interval": int,
    "num_eval": int,
    "metrics": {"w": float, "lambda": float, "ddranking_compat_percent": bool, "ars": bool, "extra": list},
    "cells": list,
    "follows": {"epochs": list, "lr": list, "num_eval": list, "step_size": dict},
}
"""Every key a protocol has, with its type(s); nested dicts are sections."""

OPTIONAL_KEYS = ("summary", "include", "cells")
"""Keys a protocol may leave out (metadata and per-cell settings, not required behaviour)."""

CELL_KEYS = ("dataset", "ipcs", "set", "source")
"""The keys of one entry of a protocol's ``cells:`` list (see :func:`select_cell`)."""

FOLLOWS_DEFAULT: dict[str, Any] = {"epochs": ["train.epochs"], "lr": ["train.lr"], "num_eval": ["num_eval"],
                                   "step_size": {}}
"""What ``--epochs``, ``--lr`` and ``--num-eval`` set when a protocol does not say (the students only)."""

FOLLOWS_FLAGS = ("epochs", "lr", "num_eval")
"""The command-line overrides a protocol's ``follows:`` maps onto dotted protocol keys."""

LATER_KEYS: dict[str, Any] = {"real.selection": "last", "syn_hard_learned_lr": True, "metrics.extra": [],
                              "follows": FOLLOWS_DEFAULT, **{f"follows.{k}": v for k, v in FOLLOWS_DEFAULT.items()}}
"""Keys added after the first protocol schema, with the behaviour every protocol had before them:
a file written then (listing every key it had, without ``include``) keeps meaning what it meant."""

SELECTIONS = ("last", "validation", "ddranking")
REAL_SELECTIONS = ("last", "ddranking")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "multistep", "cosine", "half-cosine")
BASE_INCLUDE = "ddr.builtins.protocols:_base.yaml"


@dataclass(frozen=True)
class StudentConfig:
    """The student architecture: ``arch`` with ``arch_params``; ``arch_by_size`` maps an image
    size threshold in pixels to the architecture used from that size on (ConvNet-4 at 64 px)."""

    arch: str
    arch_params: Mapping[str, Any]
    arch_by_size: Mapping[int, str]

    def arch_for(self, image_size: int) -> str:
        arch = self.arch
        for threshold, name in sorted(self.arch_by_size.items()):
            if image_size >= threshold:
                arch = name
        return arch


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher: ``arch`` (``None``: the student architecture) trained on the full pool under
    the real-data recipe, or a ``checkpoint`` file."""

    arch: str | None
    arch_params: Mapping[str, Any]
    checkpoint: str | None


@dataclass(frozen=True)
class MetricsConfig:
    """``w`` weighs IOR against HLR in DDRS; ``lam`` weighs the two ARS terms (both fractions);
    ``extra`` names metrics every run under the protocol reports beyond the built-in scores
    (``[robust_pgd]``)."""

    w: float
    lam: float
    ddranking_compat_percent: bool
    ars: bool
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Protocol:
    """A fully resolved, validated protocol (docs/protocol.md describes every field)."""

    name: str
    version: str
    summary: str
    student: StudentConfig
    train: Recipe
    hard_augmentation: tuple[Any, ...]
    augmentation: tuple[Any, ...]
    label_strategy: str
    loss: Any
    real: Recipe
    real_augmentation: tuple[Any, ...]
    teacher: TeacherConfig
    selection: str
    lr_grid: tuple[float, ...]
    validation_per_class: int
    test_interval: int
    num_eval: int
    metrics: MetricsConfig
    data: Mapping[str, Any]
    """The merged YAML data the fields were read from (for records), with the applied cell's
    settings and without the ``cells`` list."""
    real_selection: str = "last"
    """How the reference's accuracy is read: ``last`` epoch, or ``ddranking`` (best test accuracy
    every ``test_interval`` epochs, keeping that epoch's weights as DD-Ranking's real-data model)."""
    syn_hard_learned_lr: bool = True
    """acc_syn_hard trains with the distilled set's learned LR; ``False``: like the random baseline,
    with the protocol LR or its LR search (DD-Ranking's soft-label evaluator)."""
    cell: str | None = None
    """The ``cells:`` entry applied for the run's dataset and IPC, in words (``cifar10 IPC 10:
    settings (source)``); ``None``: the protocol has no cell for them (or none were given)."""
    cells: tuple[str, ...] = ()
    """Every cell the protocol file declares, in words (what ``ddr describe protocol`` lists)."""
    follows: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {
        flag: tuple(FOLLOWS_DEFAULT[flag]) for flag in FOLLOWS_FLAGS})
    """``follows:``: the dotted keys ``--epochs``, ``--lr`` and ``--num-eval`` set (default: the
    students' ``train.epochs``, ``train.lr`` and ``num_eval``)."""
    step_sizes: Mapping[str, int] = field(default_factory=dict)
    """``follows.step_size``: per section (``train``, ``real``), a StepLR step size in epochs; when
    an override changes that section's epochs, its milestones become every ``step_size`` epochs."""

    def flag_overrides(self, flag: str, value: Any, explicit: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The dotted settings a command-line override (``epochs``, ``lr``, ``num_eval``) sets
        under this protocol: every key ``follows[flag]`` names, and for ``epochs`` the milestones of
        each followed section with a ``step_size`` (DD-Ranking's absolute StepLR steps). A key in
        ``explicit`` (``--set``) is left to it."""
        if flag not in FOLLOWS_FLAGS:
            raise ConfigError(f"no override --{flag.replace('_', '-')}; protocols follow {FOLLOWS_FLAGS}")
        explicit = explicit or {}
        out = {key: value for key in self.follows.get(flag, ()) if key not in explicit}
        if flag == "epochs":
            for section, step in self.step_sizes.items():
                key = f"{section}.milestones"
                if f"{section}.epochs" in self.follows.get("epochs", ()) and key not in explicit:
                    out[key] = step_milestones(step, int(value))
        return out

    @property
    def test_set_selection(self) -> bool:
        """Whether a reported accuracy is chosen on the test set (``selection`` or
        ``real.selection`` is ``ddranking``)."""
        return self.selection == "ddranking" or self.real_selection == "ddranking"

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.data))


def _missing(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, expected in schema.items():
        if not prefix and key in OPTIONAL_KEYS:
            continue
        if key not in data:
            out.append(prefix + key)
        elif isinstance(expected, dict) and isinstance(data[key], Mapping):
            out.extend(_missing(data[key], expected, f"{prefix}{key}."))
    return out


def _recipe(section: Mapping[str, Any]) -> Recipe:
    """The section's recipe (``epochs`` may stay null in ``real``: the dataset's ``real_epochs``)."""
    return Recipe(optimizer=section["optimizer"], lr=section["lr"], momentum=section["momentum"],
                  weight_decay=section["weight_decay"], epochs=section["epochs"],
                  batch_size=section["batch_size"], schedule=section["schedule"],
                  milestones=tuple(float(m) for m in section["milestones"]), gamma=section["gamma"])


def _check_values(p: Mapping[str, Any], where: str) -> None:
    """Every value problem of a schema-valid protocol, raised at once (:func:`raise_problems`)."""
    problems: list[str] = []
    try:
        _value_problems(p, where, problems)
    except (TypeError, KeyError, AttributeError) as exc:  # a shape the schema lets through
        problems.append(f"{where}: a value has the wrong shape ({exc!r}); fix the protocol's values")
    raise_problems(problems)


def raise_problems(problems: list[str], what: str = "") -> None:
    """Raise one :class:`ConfigError` for every message in ``problems`` (nothing when empty).

    One problem is raised as it is; several are listed one a line under a heading that counts
    them, so a file with many mistakes is fixed in one edit, not one run per mistake."""
    unique = list(dict.fromkeys(problems))
    if not unique:
        return
    if len(unique) == 1:
        raise ConfigError(unique[0])
    head = f"{what}: " if what else ""
    raise ConfigError(f"{head}{len(unique)} problems (fix them all, then run again):\n"
                      + "\n".join("  - " + m.replace("\n", "\n    ") for m in unique))


class Problems:
    """Collects the problems of one file so all of them are reported in one error.

    ``with problems.guard(): ...`` runs one independent check; a :class:`~ddr.errors.DdrError` it
    raises is kept (the caller goes on with the next check) and :meth:`raise_all` raises every
    kept message at once through :func:`raise_problems`. A single problem is re-raised as the
    error it was (an unknown name stays an ``UnknownComponentError``).
    """

    def __init__(self, where: str = "") -> None:
        self.where = where
        self.messages: list[str] = []
        self._first: DdrError | None = None

    def __bool__(self) -> bool:
        return bool(self.messages)

    def add(self, message: str) -> None:
        self.messages.append(message)

    @contextmanager
    def guard(self, context: str = "") -> Iterator[None]:
        """Keep a DdrError raised in the block; ``context`` goes before its message (after the
        file name when the message starts with it)."""
        try:
            yield
        except DdrError as exc:
            message = str(exc)
            if context:
                prefix = f"{self.where}: "
                body = message[len(prefix):] if self.where and message.startswith(prefix) else message
                message = f"{prefix if self.where else ''}{context}{body}"
            if not self.messages:
                self._first = ConfigError(message) if context else exc
            self.messages.append(message)

    def raise_all(self, what: str = "") -> None:
        """Raise them (several: under a heading naming ``what``, each without the repeated
        ``where:`` prefix); nothing when there are none."""
        unique = list(dict.fromkeys(self.messages))
        if len(unique) == 1 and self._first is not None and str(self._first) == unique[0]:
            raise self._first
        if len(unique) > 1 and self.where:
            prefix = f"{self.where}: "
            raise_problems([m[len(prefix):] if m.startswith(prefix) else m for m in unique], what or self.where)
        raise_problems(unique, what)


def _bound(problems: list[str], name: str, value: Any, what: str) -> None:
    """:func:`check_bound`, its error appended to ``problems`` instead of raised."""
    try:
        check_bound(name, value, what=what)
    except ConfigError as exc:
        problems.append(str(exc))


def schema_problems(data: Mapping[str, Any], schema: Mapping[str, Any], where: str, prefix: str = "") -> list[str]:
    """Every unknown key and wrong type of ``data`` (:func:`check_schema`'s messages, all of them)."""
    problems: list[str] = []
    for key, value in data.items():
        expected = schema.get(key) if isinstance(key, str) else None
        if isinstance(expected, dict) and isinstance(value, Mapping):
            problems.extend(schema_problems(value, expected, where, f"{prefix}{key}."))
            continue
        try:
            check_schema({key: value}, schema, where, prefix)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _follows_problems(follows: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """``follows``: each flag lists dotted protocol keys; ``step_size`` maps train/real to epochs."""
    for flag in FOLLOWS_FLAGS:
        keys = follows[flag]
        for key in keys:
            if not isinstance(key, str) or lookup_dotted(PROTOCOL_SCHEMA, key) is None:
                problems.append(f"{where}: follows.{flag} lists dotted protocol keys (train.epochs, real.epochs), "
                                f"got {key!r}")
    for section, step in follows["step_size"].items():
        if section not in ("train", "real") or isinstance(step, bool) or not isinstance(step, int) or step < 1:
            problems.append(f"{where}: follows.step_size maps train/real to a StepLR step size in epochs >= 1, got "
                            f"{section!r}: {step!r}")


def step_milestones(step_size: int, epochs: int) -> list[float]:
    """``StepLR(step_size)`` stepped once per epoch, as ddr's milestones: fractions of ``epochs``
    at which the LR is multiplied by gamma (``k·step_size`` for every ``k·step_size < epochs``)."""
    return [k * step_size / epochs for k in range(1, (epochs - 1) // step_size + 1)]


def _value_problems(p: Mapping[str, Any], where: str, problems: list[str]) -> None:
    if p["selection"] not in SELECTIONS:
        problems.append(f"{where}: selection must be one of {SELECTIONS}, got {p['selection']!r}")
    for section in ("train", "real"):
        recipe = p[section]
        if recipe["optimizer"] not in OPTIMIZERS:
            problems.append(f"{where}: {section}.optimizer must be one of {OPTIMIZERS}")
        if recipe["schedule"] not in SCHEDULES:
            problems.append(f"{where}: {section}.schedule must be one of {SCHEDULES}")
        epochs = recipe["epochs"]
        if section == "train" and epochs is None:
            problems.append(f"{where}: train.epochs must be a number of epochs >= 1, got null")
        if epochs is not None and epochs < 1:
            problems.append(f"{where}: {section}.epochs must be >= 1, got {epochs}")
        _bound(problems, "epochs", epochs, f"{where}: {section}.epochs")
        if not _finite(recipe["lr"]) or not recipe["lr"] > 0 or recipe["batch_size"] < 1:
            problems.append(f"{where}: {section}.lr must be a finite number > 0 and {section}.batch_size >= 1 "
                              f"(got {recipe['lr']}, {recipe['batch_size']})")
        for key in ("momentum", "weight_decay", "gamma"):
            if not _finite(recipe[key]) or recipe[key] < 0:
                problems.append(f"{where}: {section}.{key} must be a finite number >= 0, got {recipe[key]!r}")
        if not all(isinstance(m, (int, float)) and not isinstance(m, bool) and 0 <= m <= 1
                   for m in recipe["milestones"]):
            problems.append(f"{where}: {section}.milestones are fractions of the epochs in [0, 1], "
                              f"got {recipe['milestones']!r}")
    if p["real"]["selection"] not in REAL_SELECTIONS:
        problems.append(f"{where}: real.selection must be one of {REAL_SELECTIONS}, got {p['real']['selection']!r}")
    if p["num_eval"] < 1:
        problems.append(f"{where}: num_eval must be >= 1")
    _bound(problems, "num_eval", p["num_eval"], f"{where}: num_eval")
    grid = p["lr_grid"]
    if p["selection"] != "last" and not grid:
        problems.append(f"{where}: selection '{p['selection']}' searches lr_grid, which is empty; list learning rates")
    if not all(_finite(lr) and lr > 0 for lr in grid):
        problems.append(f"{where}: lr_grid must list positive learning rates (finite numbers), got {grid!r}")
    if p["selection"] == "validation" and p["validation_per_class"] < 1:
        problems.append(f"{where}: selection 'validation' needs validation_per_class >= 1")
    if p["validation_per_class"] < 0 or p["test_interval"] < 1:
        problems.append(f"{where}: validation_per_class must be >= 0 and test_interval >= 1")
    for key in ("w", "lambda"):
        value = p["metrics"][key]
        if not 0.0 <= value <= 1.0:  # compared exactly: an int too large for a float is out of range too
            problems.append(f"{where}: metrics.{key} must be within [0, 1], got {value}")
    for size in p["student"]["arch_by_size"]:
        if not str(size).isdecimal():  # '²' is a digit that int() refuses
            problems.append(f"{where}: student.arch_by_size keys are image sizes in pixels, got {size!r}")
    _follows_problems(p["follows"], where, problems)


def _cells(value: Any, where: str) -> list[dict[str, Any]]:
    """The protocol's ``cells:`` entries, validated: each names a dataset, optionally the IPCs it
    covers, the dotted settings it applies and the source they are transcribed from."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: cells must be a list of {{dataset, ipcs, set, source}} entries, got {value!r}")
    out: list[dict[str, Any]] = []
    for k, cell in enumerate(value):
        at = f"{where}: cells[{k}]"
        if not isinstance(cell, Mapping):
            raise ConfigError(f"{at} must be a mapping with dataset, ipcs, set and source, got {cell!r}")
        unknown = [key for key in cell if key not in CELL_KEYS]
        if unknown:
            raise ConfigError(f"{at}: unknown key {unknown[0]!r}; a cell has {', '.join(CELL_KEYS)}")
        dataset, ipcs, settings, source = (cell.get("dataset"), cell.get("ipcs", []), cell.get("set", {}),
                                           cell.get("source"))
        if not isinstance(dataset, str) or not dataset:
            raise ConfigError(f"{at}: dataset must be a dataset name, got {dataset!r}")
        if not isinstance(ipcs, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0
                                                 for i in ipcs):
            raise ConfigError(f"{at}: ipcs must list positive integers (leave it out for every IPC), got {ipcs!r}")
        if not isinstance(settings, Mapping) or not all(isinstance(key, str) and key for key in settings):
            raise ConfigError(f"{at}: set must map dotted protocol keys (train.batch_size) to values, got "
                              f"{settings!r}")
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{at}: say where the cell's settings come from (source: the file they are "
                              "transcribed from)")
        for other in out:
            # a cell naming IPCs refines one for every IPC of its dataset; two of a kind must not overlap
            shared = set(ipcs) & set(other["ipcs"])
            if other["dataset"] == dataset and (shared or (not ipcs and not other["ipcs"])):
                raise ConfigError(f"{at}: covers {dataset} at IPC {sorted(shared) or 'any'} like an earlier cell; "
                                  "give each (dataset, IPC) one cell")
        out.append({"dataset": dataset, "ipcs": list(ipcs), "set": dict(settings), "source": source.strip()})
    return out


def _cell_words(cell: Mapping[str, Any]) -> str:
    """``cifar10 IPC 10: train.batch_size=100 (RDED/CIFAR10/IPC10.yaml)``."""
    ipcs = f" IPC {'/'.join(map(str, cell['ipcs']))}" if cell["ipcs"] else ""
    settings = "; ".join(f"{k}={v}" for k, v in cell["set"].items()) or "the protocol's values"
    return f"{cell['dataset']}{ipcs}: {settings} ({cell['source']})"


def select_cell(cells: list[dict[str, Any]], dataset: str | None, ipc: int | None) -> dict[str, Any] | None:
    """The cell for ``dataset`` (options after ``:`` ignored) at ``ipc``: one naming the IPC wins
    over one for every IPC of the dataset; ``None`` when no cell covers them."""
    if dataset is None:
        return None
    name = dataset.split(":")[0]
    mine = [c for c in cells if c["dataset"] == name and (not c["ipcs"] or ipc in c["ipcs"])]
    return next((c for c in mine if c["ipcs"]), mine[0] if mine else None)


def build_protocol(data: Mapping[str, Any], where: str, overrides: Mapping[str, Any] | None = None, *,
                   dataset: str | None = None, ipc: int | None = None) -> Protocol:
    """Validate protocol data, apply the ``cells:`` entry for ``dataset`` at ``ipc`` (when the
    protocol has one), then nested ``overrides`` (which win), and return a typed :class:`Protocol`.

    Cells hold what a protocol transcribed from per-(dataset, IPC) files sets differently per cell
    (DD-Ranking's per-method evaluation configs: a student batch by IPC, a temperature on one
    dataset); without ``dataset`` the protocol's own values apply."""
    data = dict(data)
    problems: list[str] = []  # every problem of the file, raised together
    try:
        cells = _cells(data.pop("cells", None), where)
    except ConfigError as exc:
        problems.append(str(exc))
        cells = []
    base = {k: v for k, v in data.items() if k != "include"}
    for k, c in enumerate(cells):  # a misspelt key in any cell fails at load, not on the dataset it is for
        problems.extend(schema_problems(deep_merge(base, dotted_to_nested(c["set"])), PROTOCOL_SCHEMA,
                                        f"{where}: cells[{k}].set"))
    cell = select_cell(cells, dataset, ipc)
    merged = deep_merge(deep_merge(data, dotted_to_nested(cell["set"])) if cell else data, overrides or {})
    merged.pop("include", None)
    merged.pop("cells", None)
    problems.extend(schema_problems(merged, PROTOCOL_SCHEMA, where))
    for dotted, default in LATER_KEYS.items():
        *sections, key = dotted.split(".")
        holder: Any = merged
        for section in sections:
            holder = holder.get(section) if isinstance(holder, Mapping) else None
        if isinstance(holder, dict) and key not in holder:
            holder[key] = copy.deepcopy(default)
    # a key reported as misspelt is not reported again as missing (one mistake, one message)
    suggested = set(re.findall(r"did you mean '([^']+)'", "\n".join(problems)))
    missing = [m for m in _missing(merged, PROTOCOL_SCHEMA)
               if not any(m == s or m.startswith(s + ".") for s in suggested)]
    if missing:
        problems.append(
            f"{where}: the protocol does not set {', '.join(missing)}; every key must be given, directly "
            f"or through include (start the file with `include: {BASE_INCLUDE}` or a shipped protocol "
            "such as `include: ddr.builtins.protocols:hard.yaml`)"
        )
    raise_problems(problems, where)
    _check_values(merged, where)
    follows = merged.pop("follows")  # how flags map onto keys; not a training setting (records omit it)
    student, real, teacher, metrics = merged["student"], merged["real"], merged["teacher"], merged["metrics"]
    return Protocol(
        name=str(merged["name"]), version=str(merged["version"]), summary=str(merged.get("summary", "")),
        student=StudentConfig(arch=student["arch"], arch_params=dict(student["arch_params"]),
                              arch_by_size={int(k): str(v) for k, v in student["arch_by_size"].items()}),
        train=_recipe(merged["train"]),
        hard_augmentation=tuple(merged["hard_augmentation"]), augmentation=tuple(merged["augmentation"]),
        label_strategy=merged["label_strategy"], loss=copy.deepcopy(merged["loss"]),
        real=_recipe(real), real_augmentation=tuple(real["augmentation"]),
        teacher=TeacherConfig(arch=teacher["arch"], arch_params=dict(teacher["arch_params"]),
                              checkpoint=teacher["checkpoint"]),
        selection=merged["selection"], lr_grid=tuple(float(x) for x in merged["lr_grid"]),
        validation_per_class=merged["validation_per_class"], test_interval=merged["test_interval"],
        num_eval=merged["num_eval"],
        metrics=MetricsConfig(w=float(metrics["w"]), lam=float(metrics["lambda"]),
                              ddranking_compat_percent=metrics["ddranking_compat_percent"], ars=metrics["ars"],
                              extra=tuple(str(m) for m in metrics["extra"])),
        data=merged, real_selection=real["selection"], syn_hard_learned_lr=merged["syn_hard_learned_lr"],
        cell=_cell_words(cell) if cell else None, cells=tuple(_cell_words(c) for c in cells),
        follows={flag: tuple(follows[flag]) for flag in FOLLOWS_FLAGS},
        step_sizes={str(k): int(v) for k, v in follows["step_size"].items()},
    )


def load_protocol(location: str, overrides: Mapping[str, Any] | None = None, *, dataset: str | None = None,
                  ipc: int | None = None) -> Protocol:
    """Load a protocol YAML (``package:file.yaml`` or a path) with includes, the cell for
    ``dataset``/``ipc`` and overrides."""
    return build_protocol(load_yaml_with_includes(location), location, overrides, dataset=dataset, ipc=ipc)


def resolve_protocol(ref: str, overrides: Mapping[str, Any] | None = None,
                     system: "PluginSystem | None" = None, *, dataset: str | None = None,
                     ipc: int | None = None) -> Protocol:
    """A protocol by registry name (``hard``, ``soft.paper``) or YAML path, with overrides.

    ``overrides`` may be nested or dotted (``{"train.epochs": 50}``); ``dataset`` and ``ipc``
    pick the protocol's ``cells:`` entry for the run (its settings sit under the overrides).
    """
    nested = dotted_to_nested(dict(overrides or {}))
    if ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        return load_protocol(ref, nested, dataset=dataset, ipc=ipc)
    if system is None:
        from ddr.plugin.manager import PluginSystem

        system = PluginSystem()
    resolved = system.protocols().resolve(ref)
    preset = dotted_to_nested(dict(resolved.params))
    return load_protocol(resolved.spec.path, deep_merge(preset, nested), dataset=dataset, ipc=ipc)


def default_protocol(dataset: str, method_protocol: str = "hard") -> str:
    """The protocol a run uses when none is given: ``digits`` on the digits dataset."""
    return "digits" if dataset.split(":")[0] == "digits" and method_protocol in ("hard", "digits") else method_protocol
