"""DD-Ranking 0.2.0 config files mapped onto ddr's evaluation options (docs/ddranking.md §3).

A DD-Ranking config is a flat YAML (or JSON) mapping whose keys are its evaluators' constructor
arguments (``dataset``, ``ipc``, ``model_name``, ``optimizer``, ``num_epochs``, ...).
:func:`map_config` turns one into a :class:`MappedConfig`: the ``ddranking-hard`` or
``ddranking-soft`` protocol, :class:`~ddr.runs.evaluate.EvalOptions` fields and dotted protocol
overrides, plus the notes that say where ddr's numbers can differ from 0.2.0's. Every key ddr
cannot honour is a :class:`~ddr.errors.ConfigError` naming the key and what to do; an unknown key
is one with a did-you-mean. Keys that are left out take the protocol's values.

Never imports torch.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError
from ddr.protocol.config import Problems, step_milestones  # re-exported: DD-Ranking's StepLR as ddr milestones
from ddr.protocol.yaml import lookup_dotted
from ddr.store.paths import path_kind

if TYPE_CHECKING:  # pragma: no cover
    from ddr.plugin.manager import PluginSystem
    from ddr.records.run import EvaluationResult
    from ddr.runs.evaluate import EvalOptions

EVALUATORS = ("hard", "soft", "ars")
"""``hard``: LabelRobustScoreHard; ``soft``: LabelRobustScoreSoft; ``ars``: AugmentationRobustScore."""

CLASS_NAMES = {"hard": "LabelRobustScoreHard", "soft": "LabelRobustScoreSoft", "ars": "AugmentationRobustScore"}
PROTOCOLS = {"hard": "ddranking-hard", "soft": "ddranking-soft", "ars": "ddranking-soft"}
"""The ddr protocol each DD-Ranking evaluator maps onto (ARS: the soft one with ``metrics.ars``)."""

REAL_STEP_SIZE = 100
"""DD-Ranking's real-data model: StepLR(step_size=100) taken from its 200-epoch CIFAR ConvNet-3
config, applied over the students' ``num_epochs``."""

HARD_STEP_SIZE = 500
"""The step size of DD-Ranking's DC/DSA/DM/MTT eval configs (``ddranking-hard``'s default)."""

REAL_RECIPES = {("CIFAR10", "ConvNet-3"), ("CIFAR10", "ConvNet-3-BN"), ("CIFAR100", "ConvNet-3"),
                ("CIFAR100", "ConvNet-3-BN"), ("TinyImageNet", "ConvNet-4-BN"), ("TinyImageNet", "ResNet-18-BN"),
                ("ImageNet1K", "ResNet-18-BN")}
"""(dataset, model_name) pairs of DD-Ranking's REAL_DATA_TRAINING_CONFIG."""

DEFAULT_TEMPERATURE = 1.2
"""DD-Ranking's KL / soft cross-entropy constructors' temperature when ``loss_fn_kwargs`` has none."""

_ALL = ("hard", "soft", "ars")
_HARD_SOFT = ("hard", "soft")
_SOFT_ARS = ("soft", "ars")

KEYS: dict[str, tuple[str, ...]] = {
    # every evaluator
    "dataset": _ALL, "real_data_path": _ALL, "ipc": _ALL, "im_size": _ALL, "model_name": _ALL,
    "data_aug_func": _ALL, "aug_params": _ALL, "use_zca": _ALL, "custom_train_trans": _ALL,
    "custom_val_trans": _ALL, "optimizer": _ALL, "lr_scheduler": _ALL, "step_size": _ALL,
    "weight_decay": _ALL, "momentum": _ALL, "num_eval": _ALL, "num_epochs": _ALL, "num_workers": _ALL,
    "device": _ALL, "dist": _ALL, "save_path": _ALL, "random_data_format": _ALL, "random_data_path": _ALL,
    "default_lr": _ALL,
    # LabelRobustScoreHard
    "use_torchvision": ("hard",),
    # LabelRobustScoreHard and LabelRobustScoreSoft
    "syn_batch_size": _HARD_SOFT, "real_batch_size": _HARD_SOFT, "eval_full_data": _HARD_SOFT,
    # LabelRobustScoreSoft and AugmentationRobustScore
    "stu_use_torchvision": _SOFT_ARS, "tea_use_torchvision": _SOFT_ARS, "teacher_dir": _SOFT_ARS,
    "teacher_model_names": _SOFT_ARS, "soft_label_mode": _SOFT_ARS, "soft_label_criterion": _SOFT_ARS,
    "loss_fn_kwargs": _SOFT_ARS,
    "use_aug_for_hard": ("soft",),
    # DD-Ranking's `eval` branch configs spell loss_fn_kwargs.temperature as a top-level key
    "temperature": _SOFT_ARS,
    "label_type": ("ars",), "batch_size": ("ars",),
    # GeneralEvaluator only (unusable in 0.2.0)
    "use_soft_label": (),
}
"""Every config key of DD-Ranking 0.2.0 and the evaluators that read it."""

_SOFT_MARKERS = ("soft_label_mode", "soft_label_criterion", "loss_fn_kwargs", "teacher_dir", "teacher_model_names",
                 "use_aug_for_hard", "stu_use_torchvision", "tea_use_torchvision")

DATASETS = {"CIFAR10": "cifar10", "CIFAR100": "cifar100", "TinyImageNet": "tinyimagenet",
            "ImageNette": "imagenette", "ImageWoof": "imagewoof", "ImageNet1K": "imagenet"}
"""DD-Ranking's dataset names -> ddr's (a ddr dataset name is accepted as it is, too)."""

_MISSING_DATASETS = ("ImageMeow", "ImageSquawk", "ImageFruit", "ImageYellow")

DSA_KEYS = ("flip", "rotate", "scale", "crop", "cutout", "brightness", "saturation", "contrast")
DSA_DEFAULTS = {"flip": 0.5, "rotate": 15.0, "scale": 1.2, "crop": 0.125, "cutout": 0.5, "brightness": 1.0,
                "saturation": 2.0, "contrast": 0.5}
"""DD-Ranking's (and VICO's, and ddr's) standard DSA parameters."""
_DSA_ALIASES = {"prob_flip": "flip", "ratio_rotate": "rotate", "ratio_scale": "scale",
                "ratio_crop_pad": "crop", "ratio_cutout": "cutout"}
AUGMENTATIONS = ("dsa", "mixup", "cutmix", "zca")
SCHEDULES = {"step": "step", "cosine": "half-cosine", "cosineannealing": "cosine"}
"""DD-Ranking's ``lr_scheduler`` -> ddr's schedule (its ``cosine`` is a quarter wave ending at 0.5·lr)."""
OPTIMIZERS = ("sgd", "adam", "adamw")
CRITERIA = {"kl": ("temperature", "scale_loss"), "sce": ("temperature", "scale_loss"),
            "mse_gt": ("mse_weight", "ce_weight")}
"""Soft-label criteria and the ``loss_fn_kwargs`` each takes."""


# ---------------------------------------------------------------------------------------------
# DD-Ranking's Config


class Config:
    """DD-Ranking's ``Config``: the keys of one config file (``Config.from_file(path)``).

    ``config.get(key, default)`` and ``config[key]`` read a key; the evaluator classes of
    :mod:`ddr.compat.ddranking` take it as ``config=``.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, source: str = "the DD-Ranking config") -> None:
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"{source}: a DD-Ranking config is a mapping of keys to values, got "
                              f"{type(config).__name__}")
        self.config: dict[str, Any] = dict(config or {})
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> "Config":
        """Read a YAML or JSON config file."""
        return cls(load_config(path), source=str(path))

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    def __contains__(self, key: object) -> bool:
        return key in self.config

    def to_dict(self) -> dict[str, Any]:
        return dict(self.config)

    def __repr__(self) -> str:
        return f"Config({self.config!r})"


def load_config(path: str | Path) -> dict[str, Any]:
    """The mapping a DD-Ranking YAML or JSON config file holds (a ConfigError when it holds none)."""
    from ddr.protocol.yaml import MAX_DEPTH, check_tree, parse_yaml_text

    file = Path(path)
    if path_kind(file, what="DD-Ranking config", error=ConfigError) != "file":
        raise ConfigError(f"DD-Ranking config {file} does not exist (or is not a file); give the path of its "
                          "YAML or JSON config file")
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read DD-Ranking config {file}: {exc}; fix its syntax") from exc
    except RecursionError:
        raise ConfigError(f"cannot read DD-Ranking config {file}: it nests more than {MAX_DEPTH} levels deep; "
                          "fix its syntax") from None
    if file.suffix == ".json":
        check_tree(data, f"DD-Ranking config {file}")
    else:  # YAML: errors (syntax, anchors that contain themselves, deep nesting) name the file
        data = parse_yaml_text(text, f"DD-Ranking config {file}")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"DD-Ranking config {file} holds a {type(data).__name__}, not a mapping of keys "
                          "(e.g. `dataset: CIFAR10`)")
    return {str(k): v for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# the mapping


@dataclass(frozen=True)
class MappedConfig:
    """What a DD-Ranking config means in ddr.

    Attributes:
        evaluator: ``hard``, ``soft`` or ``ars`` (:data:`EVALUATORS`).
        protocol: ``ddranking-hard`` or ``ddranking-soft``.
        options: :class:`~ddr.runs.evaluate.EvalOptions` fields (dataset, ipc, arch, ...).
        overrides: dotted protocol overrides (``{"train.epochs": 300}``).
        data_root: ``real_data_path``: the folder datasets are read from (``DDR_DATA_DIR``), or ``None``.
        save_path: where DD-Ranking's per-run CSV goes, or ``None``.
        notes: where ddr does what 0.2.0 does not (each one sentence, for the user).
        source: the config's keys as read.
    """

    evaluator: str
    protocol: str
    options: Mapping[str, Any]
    overrides: Mapping[str, Any]
    data_root: Path | None = None
    save_path: Path | None = None
    notes: tuple[str, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)

    def eval_options(self, base: "EvalOptions | None" = None) -> "EvalOptions":
        """``base`` (default: ``EvalOptions()``) with this config applied (:meth:`apply`)."""
        return self.apply(base)[0]

    def apply(self, base: "EvalOptions | None" = None) -> tuple["EvalOptions", list[str]]:
        """``base`` with this config applied, and a note for every user override that replaced a
        value of the config.

        A field the config sets that ``base`` already sets to something else (``--dataset``,
        ``--arch``, ``--device``, ...: what is evaluated) is a ConfigError. ``base.overrides``
        (``--set``) win over the config's mapped values, each with a note: a dotted key the
        mapping also sets, and ``num_eval``, ``student.arch``, ``label_strategy``, ``loss``,
        ``teacher.checkpoint``, which replace the option the config gave. ``--epochs`` and
        ``--num-eval`` are read as the config's ``num_epochs``/``num_eval`` by
        :func:`cli_eval_options`; here they are refused when they contradict it.
        """
        from ddr.runs.evaluate import EvalOptions

        defaults = EvalOptions()
        base = base or defaults
        user = dict(base.overrides)
        notes: list[str] = []
        changes: dict[str, Any] = {}
        for name, value in self.options.items():
            given = getattr(base, name)
            if given is not None and given != getattr(defaults, name) and given != value:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} {given!r} contradicts the DD-Ranking config ({_OPTION_KEYS.get(name, name)}"
                                  f" gives {value!r}); drop the flag or change the config")
            changes[name] = value
        if base.epochs is not None and "train.epochs" in self.overrides:
            raise ConfigError(f"--epochs {base.epochs} contradicts the DD-Ranking config's num_epochs "
                              f"({self.overrides['train.epochs']}); drop one of them")
        if base.num_eval is not None and "num_eval" in changes and changes["num_eval"] != base.num_eval:
            raise ConfigError(f"--num-eval {base.num_eval} contradicts the DD-Ranking config's num_eval "
                              f"({changes['num_eval']}); drop one of them")
        for key, value in user.items():
            if key in self.overrides and self.overrides[key] != value:
                extra = (" (the students only; --epochs N sets the real-data model's epochs too, as num_epochs does)"
                         if key == "train.epochs" else "")
                notes.append(f"--set {key}={value!r} replaces the config's {self.overrides[key]!r}{extra}")
        for key, fields in _SHADOWED.items():
            if key not in user or not any(f in changes for f in fields):
                continue
            if fields == ("num_eval",):
                if changes["num_eval"] != user[key]:
                    notes.append(f"--set num_eval={user[key]!r} replaces the config's num_eval {changes['num_eval']!r}")
                changes["num_eval"] = user[key]
                continue
            was = changes.get(fields[0])
            for f in fields:
                changes.pop(f, None)
            if was != user[key]:
                notes.append(f"--set {key}={user[key]!r} replaces the config's {was!r}")
        return replace(base, **changes, overrides={**dict(self.overrides), **user}), notes


_SHADOWED: dict[str, tuple[str, ...]] = {
    "num_eval": ("num_eval",), "student.arch": ("arch", "arch_params"), "label_strategy": ("label_strategy",),
    "loss": ("loss",), "teacher.checkpoint": ("teacher",)}
"""Protocol keys (``--set``) that an option of a mapped config would silently shadow, and those options."""


_OPTION_KEYS = {"dataset": "dataset", "ipc": "ipc", "arch": "model_name", "arch_params": "model_name",
                "label_strategy": "soft_label_mode / label_type", "loss": "soft_label_criterion",
                "num_eval": "num_eval", "device": "device", "zca": "use_zca", "teacher": "teacher_dir",
                "protocol": "its evaluator", "ars": "its evaluator"}


def evaluator_for(data: Mapping[str, Any], *, protocol: str | None = None, ars: bool | None = None) -> str:
    """Which DD-Ranking evaluator a config is for: ``ars`` when asked (``--ars``) or when it has
    ARS keys, ``soft`` for ``--protocol ddranking-soft`` or soft-label keys, else ``hard``."""
    if protocol is not None and protocol not in PROTOCOLS.values():
        raise ConfigError(f"--protocol {protocol!r} cannot be used with --ddranking-config, which evaluates under "
                          "ddranking-hard or ddranking-soft; drop --protocol (the config's keys choose) or name one "
                          "of those two")
    if ars or "label_type" in data or "batch_size" in data:
        if protocol == "ddranking-hard":
            raise ConfigError("DD-Ranking's AugmentationRobustScore evaluates under ddranking-soft (its test interval "
                              "is 20); drop --protocol ddranking-hard or --ars")
        return "ars"
    if protocol == "ddranking-hard":
        return "hard"
    if protocol == "ddranking-soft" or any(key in data for key in _SOFT_MARKERS):
        return "soft"
    return "hard"


def map_config(data: Mapping[str, Any] | Config, *, evaluator: str | None = None,
               where: str = "the DD-Ranking config", system: "PluginSystem | None" = None) -> MappedConfig:
    """Map a DD-Ranking config onto ddr (see the module docstring and docs/ddranking.md §3).

    Args:
        data: the config's keys (a mapping or a :class:`Config`).
        evaluator: ``hard``, ``soft`` or ``ars``; ``None``: :func:`evaluator_for` decides.
        where: how messages name the config (its path).
        system: the plugin system that resolves dataset names (``None``: a fresh one).
    """
    if isinstance(data, Config):
        data = data.to_dict()
    if evaluator is None:
        evaluator = evaluator_for(data)
    if evaluator not in EVALUATORS:
        raise ConfigError(f"unknown DD-Ranking evaluator {evaluator!r}; expected one of {EVALUATORS}")
    return _Mapper(dict(data), evaluator, where, system).run()


class _Mapper:
    """One mapping: reads keys, collects options, overrides and notes."""

    def __init__(self, data: dict[str, Any], evaluator: str, where: str, system: "PluginSystem | None") -> None:
        from ddr.protocol.config import resolve_protocol

        if system is None:
            from ddr.plugin.manager import PluginSystem

            system = PluginSystem()
        self.data, self.evaluator, self.where, self.system = data, evaluator, where, system
        self.protocol_name = PROTOCOLS[evaluator]
        self.protocol = resolve_protocol(self.protocol_name, system=system)
        self.options: dict[str, Any] = {"protocol": self.protocol_name}
        if evaluator == "ars":
            self.options["ars"] = True
        self.overrides: dict[str, Any] = {}
        self.notes: list[str] = []
        self.spec: Any = None  # the dataset's spec (image size, mean, std)
        self.student: tuple[str, dict[str, Any]] | None = None
        self.mixing: str | None = None  # mixup / cutmix, when data_aug_func mixes
        self.transforms_checked = False  # custom_train_trans was read by place()
        self.problems = Problems(where)  # every key's problem (raise_errors raises them together)

    # -- collecting problems ------------------------------------------------------------------------
    def guard(self) -> AbstractContextManager[None]:
        """Run a block; a ConfigError it raises is collected (the mapping goes on with the next
        key) and raised with every other one by :meth:`raise_errors`."""
        return self.problems.guard()

    def raise_errors(self) -> None:
        """One ConfigError listing every problem found (each says what to do)."""
        self.problems.raise_all(f"{self.where} (DD-Ranking config)")

    # -- reading values ---------------------------------------------------------------------------
    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key}: {message}")

    def value(self, key: str) -> Any:
        return self.data.get(key)

    def number(self, key: str, kind: type, *, minimum: float | None = None) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        if kind is int:
            ok = ok and float(value).is_integer()
        if not ok:
            raise self.fail(key, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum:g}, got {value!r}")
        return kind(value)

    def argument(self, kwargs: Mapping[str, Any], name: str, default: float) -> float:
        """The number ``loss_fn_kwargs[name]`` (``default`` when absent)."""
        value = kwargs.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise self.fail("loss_fn_kwargs", f"{name} must be a finite number, got {value!r}")
        return float(value)

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        return value

    def path(self, key: str) -> Path | None:
        """The path a key names, ``~`` expanded (``None`` when absent or empty)."""
        text = self.text(key)
        if not text:
            return None
        try:
            return Path(text).expanduser()
        except RuntimeError as exc:  # ~user of no such user
            raise self.fail(key, f"cannot expand {text!r} ({exc}); write the full path") from None

    def choice(self, key: str, value: str, choices: Sequence[str], advice: str = "") -> str:
        if value in choices:
            return value
        close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else f"; use one of {', '.join(choices)}"
        raise self.fail(key, f"unknown value {value!r}{hint}{advice}")

    # -- the mapping ------------------------------------------------------------------------------
    def run(self) -> MappedConfig:
        for stage in (self.check_keys, self.refuse_unsupported, self.dataset, self.sizes, self.architecture,
                      self.recipe, self.augmentation, self.labels, self.teacher, self.misc):
            with self.guard():  # every key's problem is collected, then all are raised at once
                stage()
        self.raise_errors()
        if self.mixing and (self.evaluator == "hard" or self.options.get("label_strategy") != "teacher"
                            or self.flag("use_aug_for_hard")):
            self.notes.append(f"{self.mixing}: ddr mixes the labels of mixed images in hard- and stored-soft-label "
                              "runs (DD-Ranking 0.2.0 mixes only the images)")
        model = self.text("model_name")
        dataset = self.data.get("dataset")
        if model is not None and dataset in DATASETS and (dataset, model) not in REAL_RECIPES:
            self.notes.append(f"DD-Ranking 0.2.0 has no real-data recipe for {self.data['dataset']}-{model} (it fails "
                              "with KeyError); ddr trains the real-data model with the protocol's real recipe")
        save = self.path("save_path")
        root = self.path("real_data_path")
        protocol = self.protocol.data  # only what differs from the protocol is an override (records list them)
        overrides = {k: v for k, v in self.overrides.items() if lookup_dotted(protocol, k) != v}
        return MappedConfig(evaluator=self.evaluator, protocol=self.protocol_name, options=dict(self.options),
                            overrides=overrides, data_root=root, save_path=save, notes=tuple(self.notes),
                            source=dict(self.data))

    def check_keys(self) -> None:
        name = CLASS_NAMES[self.evaluator]
        for key in self.data:
            with self.guard():
                self.check_key(key, name)

    def check_key(self, key: str, name: str) -> None:
        """One key: known to DD-Ranking 0.2.0, and read by this evaluator."""
        if key not in KEYS:
            close = difflib.get_close_matches(key, list(KEYS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "remove it (docs/ddranking.md lists every key)"
            raise self.fail(key, f"not a DD-Ranking 0.2.0 config key; {hint}")
        if key == "use_soft_label":
            raise self.fail(key, "a key of DD-Ranking's GeneralEvaluator, which fails at construction in 0.2.0 and "
                                 "has no ddr equivalent; use LabelRobustScoreHard or LabelRobustScoreSoft keys "
                                 "(acc_syn_any in ddr's result is the plain accuracy)")
        if self.evaluator not in KEYS[key]:
            owners = " and ".join(CLASS_NAMES[e] for e in KEYS[key])
            raise self.fail(key, f"{name} has no such argument (it belongs to {owners}); remove it or evaluate "
                                 "with that evaluator")

    def refuse_unsupported(self) -> None:
        with self.guard():
            if self.flag("dist"):
                raise self.fail("dist", "ddr does not train one student with DistributedDataParallel; set dist: false "
                                        "(students are small: parallelise over students with --executor batched or "
                                        "ray)")
        with self.guard():
            fmt = self.text("random_data_format")
            if fmt is not None and fmt != "tensor":
                if fmt == "image":
                    raise self.fail("random_data_format", "ddr keeps random subsets as tensors and never re-encodes "
                                                          "them as JPEG files; set random_data_format: tensor")
                self.choice("random_data_format", fmt, ("tensor",))
        with self.guard():
            if self.value("random_data_path") is not None:
                raise self.fail("random_data_path", "ddr draws each random subset from the run's seed and caches it "
                                                    "itself (it writes no random_data/ folder); remove the key or "
                                                    "set it to null")
        with self.guard():
            if self.flag("eval_full_data") is False:
                raise self.fail("eval_full_data", "ddr always trains the real-data model on the full training split "
                                                  "(once per seed, then cached); set eval_full_data: true")

    def dataset(self) -> None:
        name = self.text("dataset")
        if name is None:
            raise self.fail("dataset", "missing; name the dataset (CIFAR10, CIFAR100, TinyImageNet, ImageNette, "
                                       "ImageWoof, ImageNet1K, or a ddr dataset such as digits)")
        if name in _MISSING_DATASETS:
            raise self.fail("dataset", f"ddr has no built-in {name}; evaluate on `imagenet-subset:<wnid>,...` with "
                                       "`ddr eval --dataset` (its ten WordNet ids) instead")
        registry = self.system.datasets()
        ddr_name = DATASETS.get(name)
        if ddr_name is None:
            if name not in registry:
                known = [*DATASETS, *registry.names()]
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(DATASETS)}"
                raise self.fail("dataset", f"unknown dataset {name!r}; {hint}")
            ddr_name = name
        self.options["dataset"] = ddr_name
        self.spec = registry.get(ddr_name)
        if name == "CIFAR100":
            self.notes.append("CIFAR100: ddr normalises with CIFAR-100's own mean/std (DD-Ranking uses CIFAR-10's); "
                              "images.pt tensors are read in ddr's normalisation")
        ipc = self.number("ipc", int, minimum=1)
        if ipc is not None:
            self.options["ipc"] = ipc

    def sizes(self) -> None:
        size = self.value("im_size")
        if size is None:
            return
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)):
            raise self.fail("im_size", f"must be [height, width] in pixels, got {size!r}")
        expected = getattr(self.spec, "image_size", None)
        if expected is not None and tuple(size) != tuple(expected):
            raise self.fail("im_size", f"ddr evaluates {self.options['dataset']} at its own size "
                                       f"{list(expected)}; set im_size: {list(expected)} (and give `ddr eval "
                                       "--resize` to resize distilled images of another size)")

    def architecture(self) -> None:
        name = self.text("model_name")
        tv_key = "use_torchvision" if self.evaluator == "hard" else "stu_use_torchvision"
        torchvision = bool(self.flag(tv_key))
        if name is None:
            if torchvision:
                raise self.fail(tv_key, "give model_name too (the protocol's ConvNet has no torchvision variant)")
            return
        arch, params = self.model(name, torchvision, "model_name")
        self.student = (arch, params)
        self.options["arch"] = arch
        self.options["arch_params"] = params

    def model(self, name: str, torchvision: bool, key: str) -> tuple[str, dict[str, Any]]:
        """ddr's (architecture, params) for a DD-Ranking ``model_name``."""
        match = re.fullmatch(r"(ConvNet|ResNet|VGG|AlexNet|LeNet|MLP)(?:-(\d+))?(-BN)?", name)
        if match is None:
            family = name.split("-")[0]
            close = difflib.get_close_matches(family, ["ConvNet", "ResNet", "VGG", "AlexNet", "LeNet", "MLP"],
                                              n=1, cutoff=0.75)
            if close and close[0] != family:
                raise self.fail(key, f"unknown model {name!r}; did you mean {close[0]}-...? (DD-Ranking's names are "
                                     "ConvNet-3, ConvNet-4-BN, ResNet-18-BN, VGG-11, AlexNet, LeNet, MLP)")
            self.notes.append(f"{key} {name!r}: not a DD-Ranking network name, so it is built as torchvision's "
                              f"{name!r} (randomly initialised; ddr downloads no weights)")
            return f"torchvision:{name}", {}
        family, depth, bn = match.group(1), match.group(2), bool(match.group(3))
        if family == "ConvNet":
            if depth is None:
                raise self.fail(key, "DD-Ranking reads the depth after the dash and builds a ConvNet with no conv "
                                     "layer for a bare 'ConvNet'; write ConvNet-3 (ConvNet-4 at 64 px)")
            d = int(depth)
            if d < 1:
                raise self.fail(key, f"a ConvNet needs at least one conv block, got {name!r}")
            if torchvision:
                self.notes.append(f"{key}: torchvision has no ConvNet; DD-Ranking's own ConvNet-{d} is used")
            if bn:
                return ("convnet_bn", {}) if d == 3 else ("convnet", {"depth": d, "norm": "batch"})
            return ("convnet", {}) if d == 3 else (f"convnet_d{d}", {}) if d in (1, 2, 4, 5) else ("convnet", {"depth": d})
        if family in ("LeNet", "MLP"):
            if depth or bn:
                raise self.fail(key, f"DD-Ranking's {family} has no depth or BN variant; write {family}")
            return family.lower(), {}
        if family == "AlexNet":
            if depth:
                raise self.fail(key, "write AlexNet (or AlexNet-BN)")
            if torchvision:
                return "torchvision:alexnet", {}
            return ("alexnet_bn" if bn else "alexnet"), {}
        sizes = {"ResNet": ("18", "34", "50"), "VGG": ("11", "13", "16", "19")}[family]
        if depth not in sizes:
            raise self.fail(key, f"DD-Ranking has {family}-{'/'.join(sizes)}, not {name!r}")
        if torchvision:
            if family == "ResNet":
                if not bn:
                    self.notes.append(f"{key}: torchvision ResNets always use batch norm (as in DD-Ranking)")
                return f"torchvision:resnet{depth}", {}
            return f"torchvision:vgg{depth}{'_bn' if bn else ''}", {}
        if depth != sizes[0]:
            raise self.fail(key, f"ddr has DD-Ranking's own {family}-{sizes[0]} only; set "
                                 f"{'use_torchvision' if self.evaluator == 'hard' else 'stu_use_torchvision'}: true "
                                 f"for torchvision's {family.lower()}{depth} or use {family}-{sizes[0]}")
        base = "resnet18" if family == "ResNet" else "vgg11"
        return (f"{base}_bn" if bn else base), {}

    def recipe(self) -> None:
        p = self.protocol
        optimizer: str | None = None
        with self.guard():
            optimizer = self.text("optimizer")
            if optimizer is not None:
                optimizer = self.choice("optimizer", optimizer.lower(), OPTIMIZERS)
                self.overrides["train.optimizer"] = optimizer
        optimizer = optimizer or p.train.optimizer
        epochs: int | None = None
        with self.guard():
            epochs = self.number("num_epochs", int, minimum=1)
            if epochs is not None:
                from ddr.protocol.bounds import check_bound

                try:  # before one milestone per step_size
                    check_bound("epochs", epochs, what=f"{self.where}: num_epochs")
                except ConfigError:
                    epochs = None
                    raise
                self.overrides["train.epochs"] = epochs
                self.overrides["real.epochs"] = epochs  # DD-Ranking trains its real-data model num_epochs too
                self.overrides["real.milestones"] = step_milestones(REAL_STEP_SIZE, epochs)
                if epochs % p.test_interval:
                    tested = ("never (it reports 0)" if epochs < p.test_interval
                              else f"only every {p.test_interval} epochs")
                    self.notes.append(f"num_epochs {epochs} is not a multiple of the test interval {p.test_interval}: "
                                      f"DD-Ranking tests {tested}; ddr also tests after the last epoch")
        epochs = epochs or int(p.train.epochs or 1)
        scheduler: str | None = None
        schedule = p.train.schedule
        with self.guard():
            scheduler = self.text("lr_scheduler")
            if scheduler is not None:
                if scheduler == "lambda_step":
                    raise self.fail("lr_scheduler", "DD-Ranking 0.2.0 has no lambda_step (only its docs name it); use "
                                                    "step (with step_size), cosine or cosineannealing")
                schedule = SCHEDULES[self.choice("lr_scheduler", scheduler.lower(), tuple(SCHEDULES))]
                self.overrides["train.schedule"] = schedule
        with self.guard():
            step = self.number("step_size", int, minimum=1)
            if schedule == "step":
                if step is None and scheduler is not None:
                    raise self.fail("step_size", "lr_scheduler: step needs step_size (DD-Ranking asserts it; its "
                                                 f"DC/DSA/DM configs use {HARD_STEP_SIZE} with 1000 epochs)")
                if step is not None or epochs != p.train.epochs:
                    self.overrides["train.milestones"] = step_milestones(step or HARD_STEP_SIZE, epochs)
                if self.evaluator == "ars" and scheduler is not None:
                    self.notes.append("lr_scheduler step: DD-Ranking 0.2.0's AugmentationRobustScore fails on it (it "
                                      "passes no step_size); ddr honours it")
            elif step is not None:
                self.notes.append(f"step_size {step} is unused: lr_scheduler is not step (as in DD-Ranking)")
        with self.guard():
            decay = self.number("weight_decay", float, minimum=0.0)
            if decay is not None:
                self.overrides["train.weight_decay"] = decay
        with self.guard():
            self.momentum(optimizer)
        with self.guard():
            default_lr = self.number("default_lr", float)
            if default_lr is not None:
                if not default_lr > 0:
                    raise self.fail("default_lr", f"must be a positive learning rate, got {default_lr!r}")
                self.overrides["train.lr"] = default_lr
                self.notes.append("default_lr is unused, as in DD-Ranking: every student searches the LR grid unless "
                                  "the distilled set gives syn_lr (lr.pt)")
        for key, target in (("syn_batch_size", "train.batch_size"), ("batch_size", "train.batch_size"),
                            ("real_batch_size", "real.batch_size")):
            with self.guard():
                size = self.number(key, int, minimum=1)
                if size is not None:
                    self.overrides[target] = size
        with self.guard():
            num_eval = self.number("num_eval", int, minimum=1)
            if num_eval is not None:
                self.options["num_eval"] = num_eval

    def momentum(self, optimizer: str) -> None:
        value = self.value("momentum")
        if value is None:
            return
        if optimizer == "sgd":
            if isinstance(value, (list, tuple)):
                raise self.fail("momentum", f"SGD takes one momentum, got {value!r}")
            self.overrides["train.momentum"] = self.number("momentum", float, minimum=0.0)
            return
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and _finite(b)
                                          for b in value):
                raise self.fail("momentum", f"Adam betas are [beta1, beta2], got {value!r}")
            if float(value[1]) != 0.999:
                raise self.fail("momentum", f"ddr's Adam/AdamW use beta2 = 0.999, got {value[1]!r}; set momentum: "
                                            f"[{value[0]}, 0.999]")
            self.overrides["train.momentum"] = float(value[0])
            return
        number = self.number("momentum", float, minimum=0.0)
        if number != 0.9:
            self.notes.append(f"momentum {number:g} is ignored with {optimizer}, as in DD-Ranking: a scalar momentum "
                              "gives betas (0.9, 0.999)")
        self.overrides["train.momentum"] = 0.9

    def augmentation(self) -> None:
        func = self.value("data_aug_func")
        params = self.value("aug_params")
        if params is not None and not isinstance(params, Mapping):
            raise self.fail("aug_params", f"must be a mapping of parameters, got {params!r}")
        params = dict(params or {})
        entries: list[Any]
        if func is None or (isinstance(func, str) and func.lower() in ("none", "")):
            if params:
                raise self.fail("aug_params", "given without data_aug_func; name the augmentation (dsa, mixup, cutmix)")
            self.place([], explicit="data_aug_func" in self.data)  # absent: the protocol's augmentation
            return
        if not isinstance(func, str):
            raise self.fail("data_aug_func", f"must be a string or null, got {func!r}")
        func = self.choice("data_aug_func", func.lower(), AUGMENTATIONS)
        if func == "zca":
            raise self.fail("data_aug_func", "DD-Ranking's zca augmentation refits ZCA on every batch, which whitens "
                                             "nothing meaningful; set use_zca: true (ddr fits ZCA once on the training "
                                             "split) and data_aug_func: null")
        if func == "dsa":
            dsa: dict[str, Any] = {}
            for key, value in params.items():
                name = _DSA_ALIASES.get(key, key)
                if name not in DSA_KEYS:
                    close = difflib.get_close_matches(key, [*DSA_KEYS, *_DSA_ALIASES], n=1, cutoff=0.5)
                    hint = f"did you mean {close[0]!r}?" if close else f"DSA takes {', '.join(DSA_KEYS)}"
                    raise self.fail("aug_params", f"unknown DSA parameter {key!r}; {hint}")
                if key in _DSA_ALIASES:
                    self.notes.append(f"aug_params {key}: DD-Ranking 0.2.0 raises KeyError on the original DSA name; "
                                      f"ddr reads it as {name}")
                dsa[name] = value
            entries = [{"name": "dsa", **dsa}] if dsa and dsa != DSA_DEFAULTS else ["dsa"]
        else:
            wanted = "lambda" if func == "mixup" else "beta"
            extra = sorted(set(params) - {wanted})
            if extra or wanted not in params:
                raise self.fail("aug_params", f"{func} reads exactly aug_params {{{wanted}: ...}} in DD-Ranking, got "
                                              f"{params!r}; write e.g. aug_params: {{{wanted}: 1.0}}")
            value = params[wanted]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or not value > 0:
                raise self.fail("aug_params", f"{wanted} must be a finite number > 0, got {value!r}")
            entries = [{"name": func, ("alpha" if func == "mixup" else "beta"): float(value)}]
            self.mixing = func
        self.place(entries, explicit=True)

    def place(self, entries: list[Any], *, explicit: bool) -> None:
        """Put the augmentation where each evaluator applies it: ``custom_train_trans`` (the
        images' own transform, every run) first, then ``data_aug_func`` (the soft evaluator applies
        it to the hard-label run only with ``use_aug_for_hard``)."""
        self.transforms_checked = True
        transforms = self.train_transforms()
        entries = entries if explicit else list(self.protocol.augmentation)
        if explicit or transforms:
            self.overrides["augmentation"] = transforms + entries
        if self.evaluator == "hard":
            if explicit or transforms:
                self.overrides["hard_augmentation"] = transforms + entries  # the syn-hard run is augmented too
        elif self.evaluator == "soft":
            use = self.flag("use_aug_for_hard")
            if use is not None or transforms:
                self.overrides["hard_augmentation"] = transforms + (entries if use else [])

    def labels(self) -> None:
        if self.evaluator == "hard":
            return
        if self.evaluator == "ars":
            label_type = self.text("label_type")
            if label_type is not None:
                label_type = self.choice("label_type", label_type.lower(), ("hard", "soft"))
                if label_type == "hard":
                    for key in ("soft_label_mode", "soft_label_criterion", "loss_fn_kwargs"):
                        if key in self.data:
                            raise self.fail(key, "given with label_type: hard; remove it or set label_type: soft")
                    self.options["label_strategy"] = "hard"
                    self.options["loss"] = None
                    self.notes.append("label_type hard: DD-Ranking 0.2.0's AugmentationRobustScore fails on it "
                                      "(AttributeError); ddr computes ARS with hard labels")
                    return
        mode = self.text("soft_label_mode")
        if mode is not None:
            mode = self.choice("soft_label_mode", mode.upper(), ("M", "S"))
            self.options["label_strategy"] = "teacher" if mode == "M" else "stored_soft"
            if mode == "S":
                self.notes.append("soft_label_mode S fails in DD-Ranking 0.2.0; ddr trains on the stored soft labels "
                                  "and labels the random baseline with the teacher (un-augmented images), as "
                                  "DD-Ranking intends")
        criterion = self.text("soft_label_criterion")
        kwargs = self.value("loss_fn_kwargs")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise self.fail("loss_fn_kwargs", f"must be a mapping, got {kwargs!r}")
        temperature = self.number("temperature", float)
        if temperature is not None:
            if not temperature > 0:
                raise self.fail("temperature", f"must be a temperature > 0, got {temperature!r}")
            given = (kwargs or {}).get("temperature")
            if given is not None and given != temperature:
                raise self.fail("temperature", f"{temperature:g} disagrees with loss_fn_kwargs.temperature {given!r}; "
                                               "give it once")
            kwargs = {**(kwargs or {}), "temperature": temperature}
        if criterion is None and kwargs is None:
            return
        if criterion is None:
            loss = self.protocol.loss
            criterion = str(loss.get("name") if isinstance(loss, Mapping) else loss)
        criterion = self.choice("soft_label_criterion", criterion.lower(), tuple(CRITERIA))
        kwargs = dict(kwargs or {})
        allowed = CRITERIA[criterion]
        for key in kwargs:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"{criterion} takes {', '.join(allowed)}"
                raise self.fail("loss_fn_kwargs", f"unknown argument {key!r} of {criterion}; {hint}")
        if criterion == "mse_gt":
            loss_spec = {"name": "mse_gt", "mse_weight": self.argument(kwargs, "mse_weight", 1.0),
                         "ce_weight": self.argument(kwargs, "ce_weight", 0.0)}
        else:
            scale = kwargs.get("scale_loss", False)
            if not isinstance(scale, bool):
                raise self.fail("loss_fn_kwargs", f"scale_loss must be true or false, got {scale!r}")
            loss_spec = {"name": criterion, "temperature": self.argument(kwargs, "temperature", DEFAULT_TEMPERATURE),
                         "scale_by_t2": scale}
        self.options["loss"] = loss_spec

    def teacher(self) -> None:
        if self.evaluator == "hard":
            return
        if self.options.get("label_strategy") == "hard":
            for key in ("teacher_dir", "teacher_model_names"):
                if self.value(key) is not None:
                    self.notes.append(f"{key} is unused with hard labels")
            return
        names = self.value("teacher_model_names")
        if names is not None:
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
                raise self.fail("teacher_model_names", f"must list model names, got {names!r}")
            if len(names) > 1:
                raise self.fail("teacher_model_names", f"ddr relabels with one teacher, got {len(names)} ({names}); "
                                                       "list one (DD-Ranking averages the teachers' logits)")
        student_name = self.text("model_name")
        name = names[0] if names else student_name
        torchvision = bool(self.flag("tea_use_torchvision"))
        if name is not None and (name != student_name or torchvision != bool(self.flag("stu_use_torchvision"))):
            arch, params = self.model(name, torchvision, "teacher_model_names")
            if (arch, params) != self.student:
                self.overrides["teacher.arch"] = arch
                self.overrides["teacher.arch_params"] = params
                self.notes.append(f"teacher {name}: ddr's real-data model (acc_real_hard) is trained with the teacher "
                                  f"architecture; DD-Ranking trains it with model_name")
        directory = self.path("teacher_dir")
        if directory is None:
            self.notes.append("no teacher_dir: the teacher is ddr's real-data model (trained once under the "
                              "protocol's real-data recipe and cached), not a separately trained checkpoint")
            return
        if name is None:
            raise self.fail("teacher_dir", "give model_name or teacher_model_names: the checkpoint is "
                                           "teacher_dir/<dataset>/<model name>/ckpt_best.pt")
        dataset = self.data.get("dataset")
        if not isinstance(dataset, str):
            return  # the dataset key's own problem is reported; the checkpoint's folder cannot be named
        path = directory / dataset / name / "ckpt_best.pt"
        if path_kind(path, what="teacher checkpoint", error=ConfigError) != "file":
            raise self.fail("teacher_dir", f"{path} does not exist; put the teacher's state dict there (DD-Ranking's "
                                           "layout) or set teacher_dir: null to use ddr's real-data model as teacher")
        self.options["teacher"] = str(path)

    def misc(self) -> None:
        with self.guard():
            zca = self.flag("use_zca")
            if zca is not None:
                self.options["zca"] = zca
        for key in ("custom_train_trans", "custom_val_trans"):
            if key == "custom_train_trans" and self.transforms_checked:
                continue  # read (and any problem reported) with the augmentation
            with self.guard():
                self.transforms(key)
        with self.guard():
            device = self.text("device")
            if device is not None:
                self.options["device"] = device
        if self.value("num_workers") is not None:
            self.number("num_workers", int, minimum=0)
            self.notes.append("num_workers has no effect: ddr keeps in-memory data on the device (streamed datasets "
                              "use its own loader workers)")

    def transforms(self, key: str) -> None:
        """``custom_val_trans``: ToTensor, Normalize, and Resize/CenterCrop to the dataset's own
        size (what ddr's test split is anyway); ``custom_train_trans`` is read by
        :meth:`train_transforms`."""
        if key == "custom_train_trans":
            self.train_transforms()
            return
        for name, args, item in self.transform_items(key):
            if name in ("Resize", "CenterCrop") and self.side(key, args, item) is not None:
                continue
            raise self.fail(key, f"the transform {item!r} is not supported; ddr tests on the dataset's images at "
                                 "their own size with its own normalisation (ToTensor, Normalize, and Resize/"
                                 "CenterCrop to that size are accepted); remove the key")

    def transform_items(self, key: str) -> Iterator[tuple[str, Mapping[str, Any], Any]]:
        """``(name, args, item)`` of each transform of ``key`` but ToTensor and Normalize (a
        Normalize with other constants than the dataset's gets a note)."""
        value = self.value(key)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of {{name, args}} transforms, got {value!r}")
        for item in value:
            name = item.get("name") if isinstance(item, Mapping) else item if isinstance(item, str) else None
            args = item.get("args") if isinstance(item, Mapping) else None
            if not isinstance(name, str):
                raise self.fail(key, f"each transform is {{name, args}}, got {item!r}")
            if name == "ToTensor":
                continue
            if name == "Normalize":
                if not self.normalize_matches(args):
                    if not self.normalize_shaped(args):
                        raise self.fail(key, f"Normalize takes {{mean: [...], std: [...]}} with one positive value per "
                                             f"channel, got {args!r}")
                    note = (f"{key}: Normalize with other constants than {self.options.get('dataset')}'s; ddr "
                            "normalises every image with the dataset's own mean/std")
                    if note not in self.notes:
                        self.notes.append(note)
                continue
            if args is not None and not isinstance(args, Mapping):
                raise self.fail(key, f"the arguments of {name} are a mapping, got {args!r}")
            yield name, dict(args or {}), item

    def side(self, key: str, args: Mapping[str, Any], item: Any) -> int | None:
        """The image side a Resize/crop's ``size`` names, when it is the dataset's own size."""
        size = args.get("size")
        if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
            size = size[0]
        expected = getattr(self.spec, "image_size", None)
        side = expected[0] if isinstance(expected, (list, tuple)) and expected else None
        if isinstance(size, bool) or not isinstance(size, int) or (side is not None and size != side):
            raise self.fail(key, f"{item!r}: size must be the dataset's image side ({side} px), got {size!r}; ddr "
                                 "trains and tests at the dataset's size (`ddr eval --resize` resizes distilled "
                                 "images)")
        return size

    def probability(self, key: str, value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
            raise self.fail(key, f"{what} must be a probability in [0, 1], got {value!r}")
        return float(value)

    def train_transforms(self) -> list[Any]:
        """``custom_train_trans`` as ddr augmentations (per sample, in order): RandomCrop(size,
        padding) [+ RandomHorizontalFlip] -> ``crop_flip``; RandomResizedCrop(size, scale, ratio)
        -> ``random_resized_crop``; RandomHorizontalFlip(p) -> ``flip``."""
        key = "custom_train_trans"
        items = list(self.transform_items(key))
        out: list[Any] = []
        k = 0
        while k < len(items):
            name, args, item = items[k]
            k += 1
            if name == "RandomCrop":
                side = self.side(key, args, item)
                padding = args.get("padding", 0)
                if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
                    raise self.fail(key, f"{item!r}: padding must be a number of pixels >= 0, got {padding!r}")
                flip = 0.0
                if k < len(items) and items[k][0] == "RandomHorizontalFlip":
                    flip = self.probability(key, items[k][1].get("p", 0.5), "RandomHorizontalFlip p")
                    k += 1
                out.append({"name": "crop_flip", "padding": padding, "reference_size": side, "flip": flip})
            elif name == "RandomResizedCrop":
                self.side(key, args, item)
                entry: dict[str, Any] = {"name": "random_resized_crop"}
                for arg, default in (("scale", [0.08, 1.0]), ("ratio", [0.75, 4 / 3])):
                    value = args.get(arg, default)
                    if (not isinstance(value, (list, tuple)) or len(value) != 2
                            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v)
                                       and v > 0 for v in value) or value[0] > value[1]):
                        raise self.fail(key, f"{item!r}: {arg} must be [low, high] with 0 < low <= high, got "
                                             f"{value!r}")
                    if arg == "scale" or list(value) != default:
                        entry[arg] = [float(v) for v in value]
                out.append(entry)
            elif name == "RandomHorizontalFlip":
                out.append({"name": "flip", "p": self.probability(key, args.get("p", 0.5), "p")})
            else:
                raise self.fail(key, f"the transform {item!r} is not supported; ddr maps RandomCrop, "
                                     "RandomResizedCrop, RandomHorizontalFlip, ToTensor and Normalize (express other "
                                     "augmentation with data_aug_func, or ddr's `transforms` augmentation: --set "
                                     "'augmentation=[...]')")
        return out

    def normalize_matches(self, args: Any) -> bool:
        """Whether Normalize's arguments are the dataset's own mean and std."""
        mean, std = getattr(self.spec, "mean", None), getattr(self.spec, "std", None)
        given = _mean_std(args)
        if mean is None or std is None or given is None:
            return False
        got_mean, got_std = given
        try:
            return (len(got_mean) == len(mean) and len(got_std) == len(std)
                    and all(abs(float(a) - b) < 1e-4 for a, b in zip(got_mean, mean))
                    and all(abs(float(a) - b) < 1e-4 for a, b in zip(got_std, std)))
        except (TypeError, ValueError):
            return False

    def normalize_shaped(self, args: Any) -> bool:
        """Whether Normalize's arguments are a mean and a positive std per channel of the dataset."""
        channels = len(getattr(self.spec, "mean", None) or ()) or None
        given = _mean_std(args)
        if given is None:
            return False
        mean, std = given
        return (_finite_numbers(mean, channels) and _finite_numbers(std, channels)
                and all(v > 0 for v in std))


def _mean_std(args: Any) -> tuple[Any, Any] | None:
    """(mean, std) of a Normalize transform's arguments: ``{mean, std}`` or ``[mean, std]``."""
    if isinstance(args, Mapping):
        return args.get("mean"), args.get("std")
    if isinstance(args, (list, tuple)) and len(args) == 2:
        return args[0], args[1]
    return None


def _finite_numbers(values: Any, count: int | None) -> bool:
    """Whether ``values`` lists finite numbers (``count`` of them when given; the sign is the
    caller's to check)."""
    return (isinstance(values, (list, tuple)) and (count is None or len(values) == count)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in values))


def _finite(value: float) -> bool:
    """``math.isfinite``, False for an int too large for a float instead of an OverflowError."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# ---------------------------------------------------------------------------------------------
# applying a mapping


@contextmanager
def data_root(path: Path | None) -> Iterator[None]:
    """``DDR_DATA_DIR`` set to ``path`` (a config's ``real_data_path``) while the block runs."""
    from ddr.store.paths import DATA_DIR_ENV

    if path is None:
        yield
        return
    if path_kind(path, what="real_data_path", error=ConfigError) != "dir":
        raise ConfigError(f"real_data_path {path} is not a directory; give the folder that holds the dataset "
                          "(for CIFAR-10 the one containing cifar-10-batches-py/)")
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = before


def cli_eval_options(path: str | Path, options: "EvalOptions", *,
                     log: Callable[[str], None]) -> tuple["EvalOptions", Callable[["EvaluationResult"], None]]:
    """``ddr eval --ddranking-config FILE``: the options with the config applied, and what to do
    with the result (DD-Ranking's result keys added to it, ``save_path``'s CSV written).

    ``real_data_path`` becomes this process's ``DDR_DATA_DIR``.
    """
    from ddr.compat.ddranking.results import attach_result
    from ddr.store.paths import DATA_DIR_ENV

    data = load_config(path)
    data, options, user_notes = _flags_as_keys(data, options)
    evaluator = evaluator_for(data, protocol=options.protocol, ars=options.ars)
    mapped = map_config(data, evaluator=evaluator, where=str(path))
    if mapped.data_root is not None:
        if path_kind(mapped.data_root, what="real_data_path", error=ConfigError) != "dir":
            raise ConfigError(f"{path}: real_data_path: {mapped.data_root} is not a directory; give the folder that "
                              "holds the dataset (for CIFAR-10 the one containing cifar-10-batches-py/)")
        os.environ[DATA_DIR_ENV] = str(mapped.data_root)
    applied, set_notes = mapped.apply(options)
    log(f"DD-Ranking config {path}: {CLASS_NAMES[evaluator]} -> protocol {mapped.protocol}")
    for note in mapped.notes:
        log(f"  note: {note}")
    for note in [*user_notes, *set_notes]:
        log(f"  override: {note}")

    def finish(result: "EvaluationResult") -> None:
        attach_result(result, mapped, log=log)

    return applied, finish


def _flags_as_keys(data: Mapping[str, Any], options: "EvalOptions") -> tuple[dict[str, Any], "EvalOptions", list[str]]:
    """``--epochs N`` and ``--num-eval N`` given with a config: the config's ``num_epochs`` and
    ``num_eval`` (so ``--epochs`` sets the students' and the real-data model's epochs and the step
    milestones, as DD-Ranking's ``num_epochs`` does); ``--lr`` stays the students' LR. Returns the
    keys, the options without those flags, and a note for each value a flag replaced."""
    out = dict(data)
    notes: list[str] = []
    changes: dict[str, Any] = {}
    for flag, key, value in (("--epochs", "num_epochs", options.epochs), ("--num-eval", "num_eval", options.num_eval)):
        if value is None:
            continue
        was = out.get(key)
        out[key] = value
        changes[key if key == "num_eval" else "epochs"] = None
        what = ("the students' and the real-data model's epochs, step milestones recomputed" if key == "num_epochs"
                else "students per accuracy")
        notes.append(f"{flag} {value} replaces the config's {key} {was}" if was is not None and was != value
                     else f"{flag} {value} sets {key} ({what})")
    if options.lr is not None:
        if options.overrides.get("selection", "ddranking") == "ddranking":
            raise ConfigError(f"--lr {options.lr:g} would have no effect: under the DD-Ranking protocols every student "
                              "searches lr_grid (DD-Ranking ignores default_lr too); train at one LR with --set "
                              f"'lr_grid=[{options.lr:g}]', or give the set's learned LR as lr.pt")
        was = out.get("default_lr")
        notes.append(f"--lr {options.lr:g} is the students' LR"
                     + (f"; it replaces the config's default_lr {was}" if was is not None else ""))
    return out, replace(options, **changes) if changes else options, notes
