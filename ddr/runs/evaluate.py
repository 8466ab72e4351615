"""THE protocol: train fresh students on a distilled set, test them on real data, score them.

For each student index ``i < num_eval`` (PROTOCOL.md §1):

* ``acc_syn_hard``: distilled images, their hard labels, CE, the protocol's hard augmentation;
* ``acc_syn_any``: distilled images, the method's label strategy, loss and augmentation;
* ``acc_rdm_any``: a fresh class-balanced random subset of the training pool (the train split
  minus the validation split), same IPC, treated exactly like ``acc_syn_any`` (soft labels from
  the same teacher);
* ``acc_real_hard``: full training pool under the protocol's real-data recipe, trained once per
  (dataset, arch, protocol version, seed) and cached.

Then HLR, IOR, DDRS (and ARS when asked) per student, aggregated. Accuracies are fractions.
The reported accuracy is the test accuracy after the last epoch unless the protocol's
``selection`` says ``validation`` (LR chosen on the validation split) or ``ddranking``
(DD-Ranking 0.2.0's best-on-test, marked ``test_set_selection: true``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.protocol.config import Protocol, dotted_to_nested, load_protocol
from ddr.errors import ConfigError, DdrError, DistilledSetError
from ddr.plugin.manager import PluginSystem, get_plugin_system
from ddr.engine.training import Recipe, TrainData, test_accuracy, train, with_lr

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.method.distilled import DistilledSet
    from ddr.engine.data import ImageDataset, Split


def resolve_protocol(ref: str, overrides: Mapping[str, Any] | None = None,
                     system: PluginSystem | None = None) -> Protocol:
    """A protocol by registry name (``hard``, ``soft.paper``) or YAML path, with overrides.

    ``overrides`` may be nested or dotted (``{"train.epochs": 50}``).
    """
    nested = dotted_to_nested({k: v for k, v in (overrides or {}).items()})
    if ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        return load_protocol(ref, nested)
    system = system or get_plugin_system()
    resolved = system.protocols().resolve(ref)
    from ddr.protocol.config import deep_merge

    preset = dotted_to_nested(dict(resolved.params))
    return load_protocol(resolved.spec.path, deep_merge(preset, nested))


def default_protocol(dataset: str, method_protocol: str = "hard") -> str:
    """The protocol a run uses when none is given: ``digits`` on the digits dataset."""
    return "digits" if dataset.split(":")[0] == "digits" and method_protocol in ("hard", "digits") else method_protocol


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> "torch.device":
    """``device`` (default: the GPU when one is present) as a usable ``torch.device``."""
    import torch

    try:
        resolved = torch.device(device or default_device())
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r}: use cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise ConfigError(f"device {device!r} is not available here ({count} CUDA device(s)); "
                              "use --device cpu or leave --device out")
    return resolved


@dataclass
class StudentRecord:
    """One trained student (accuracy is a fraction)."""

    role: str
    index: int
    seed: int
    accuracy: float
    lr: float
    epochs_trained: int
    seconds: float
    selection: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "index": self.index, "seed": self.seed, "accuracy": self.accuracy,
                "lr": self.lr, "epochs_trained": self.epochs_trained, "seconds": round(self.seconds, 3),
                **({"selection": self.selection} if self.selection else {})}


@dataclass
class EvaluationResult:
    """The typed result of one evaluation (``to_json`` gives the ``--json`` schema)."""

    scores: dict[str, Any]
    ars: dict[str, Any] | None
    protocol: str
    protocol_version: str
    seed: int
    distilled_sha256: str
    test_set_selection: bool
    students: list[StudentRecord]
    run_spec: dict[str, Any]
    eval_seconds: float
    real_cached: bool = False
    record_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Additions by the caller (``ddr run`` puts method, method_params, distill_seconds here)."""

    def __getattr__(self, name: str) -> Any:
        scores = self.__dict__.get("scores", {})
        if name in scores:
            return scores[name]
        raise AttributeError(name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: self.scores[k].to_dict() for k in
                               ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")}
        if "ddranking_lrs" in self.scores:
            out["ddranking_lrs"] = self.scores["ddranking_lrs"].to_dict()
        if self.ars is not None:
            out["ars"] = self.ars["ars"].to_dict()
            out["ars_details"] = {k: v.to_dict() for k, v in self.ars.items() if k != "ars"}
        out.update({
            "protocol": self.protocol,
            "protocol_version": self.protocol_version,
            "seed": self.seed,
            "distilled_sha256": self.distilled_sha256,
            "test_set_selection": self.test_set_selection,
            "eval_seconds": round(self.eval_seconds, 3),
            "real_cached": self.real_cached,
            "run_spec": self.run_spec,
        })
        out.update(self.extra)
        if self.record_dir:
            out["record_dir"] = self.record_dir
        return out

    def metrics_record(self) -> dict[str, Any]:
        """What ``metrics.json`` holds: every score plus each student's details."""
        out = self.to_json()
        out["students"] = [s.to_dict() for s in self.students]
        return out


class Evaluator:
    """Evaluates distilled sets of one (dataset, ipc, protocol, arch, label strategy, seed).

    Build it once and call :meth:`evaluate` for each distilled set; the dataset, the validation
    split, the real-data accuracy and the teacher are computed once.
    """

    def __init__(
        self,
        *,
        dataset: str = "digits",
        ipc: int = 1,
        protocol: str | None = None,
        arch: str | None = None,
        arch_params: Mapping[str, Any] | None = None,
        label_strategy: str | None = None,
        loss: Any = None,
        seed: int = 0,
        num_eval: int | None = None,
        epochs: int | None = None,
        lr: float | None = None,
        overrides: Mapping[str, Any] | None = None,
        device: str | None = None,
        teacher: str | Path | None = None,
        ars: bool | None = None,
        zca: bool = False,
        download: bool = False,
        method_protocol: str = "hard",
        system: PluginSystem | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        import torch

        from ddr.engine.seeds import check_seed

        self.system = system or get_plugin_system()
        self.seed = check_seed(seed)
        if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
            raise ConfigError(f"ipc must be a positive integer, got {ipc!r}")
        self.ipc = ipc
        self.dataset_ref = dataset
        overrides = dict(overrides or {})
        if epochs is not None:
            overrides["train.epochs"] = epochs
        if num_eval is not None:
            overrides["num_eval"] = num_eval
        self.protocol = resolve_protocol(protocol or default_protocol(dataset, method_protocol), overrides, self.system)
        self.device = resolve_device(device)
        self.log = log or (lambda message: None)
        self.progress_enabled = progress
        self.lr_override = lr
        self.loss = loss if loss is not None else self.protocol.get("loss")
        self.label_strategy = label_strategy
        self.teacher_path = Path(teacher) if teacher else None
        self.want_ars = bool(self.protocol.get("metrics.ars", False) if ars is None else ars)
        self.zca = zca
        self.download = download
        self._dataset: ImageDataset | None = None
        self.arch_ref = arch
        self.arch_params = dict(arch_params or {})
        self._teachers: list[Any] | None = None
        self._real: tuple[list[float], bool] | None = None

    # -- data ------------------------------------------------------------------------------------
    @property
    def dataset(self) -> "ImageDataset":
        if self._dataset is None:
            from ddr.engine.build import load_dataset

            self._dataset = load_dataset(self.dataset_ref, download=self.download, zca=self.zca, system=self.system)
            self._split_validation()
        return self._dataset

    def _split_validation(self) -> None:
        import torch

        from ddr.engine.seeds import derive_seed, torch_generator

        dataset = self._dataset
        assert dataset is not None
        per_class = int(self.protocol.get("validation_per_class", 0))
        generator = torch_generator(derive_seed(self.seed, "validation"))
        val_parts, pool_parts = [], []
        for c, idx in enumerate(dataset.train.class_indices(dataset.num_classes)):
            if len(idx) < per_class + self.ipc:
                raise DdrError(
                    f"class {c} of '{dataset.name}' has {len(idx)} training images; the protocol holds out "
                    f"{per_class} per class for validation and ipc is {self.ipc}; lower ipc or "
                    "--set validation_per_class=N"
                )
            perm = idx[torch.randperm(len(idx), generator=generator)]
            val_parts.append(perm[:per_class])
            pool_parts.append(perm[per_class:])
        val_index = torch.sort(torch.cat(val_parts)).values
        pool_index = torch.sort(torch.cat(pool_parts)).values
        train = dataset.train
        if train.in_memory:
            self._pool = train.subset(pool_index).to(self.device)
            self._validation = train.subset(val_index).to(self.device)
        else:
            from ddr.engine.data import Split
            from torch.utils.data import Subset

            self._pool = Split(labels=train.labels[pool_index], source=Subset(train.source, pool_index.tolist()))
            self._validation = train.subset(val_index).to(self.device)
        self._test = dataset.test.to(self.device)

    @property
    def pool(self) -> "Split":
        """The training pool: the train split minus the validation split (on the device)."""
        self.dataset  # noqa: B018 - loads the dataset and splits it on first use
        return self._pool

    @property
    def validation(self) -> "Split":
        """The held-out validation split (``validation_per_class`` images per class)."""
        self.dataset  # noqa: B018
        return self._validation

    @property
    def test(self) -> "Split":
        """The test split: only ever used to report accuracies (or by ``selection: ddranking``)."""
        self.dataset  # noqa: B018
        return self._test

    # -- architecture and recipes ----------------------------------------------------------------
    def student_arch(self) -> tuple[str, dict[str, Any]]:
        if self.arch_ref:
            return self.arch_ref, dict(self.arch_params)
        arch = str(self.protocol.get("student.arch", "convnet"))
        size = max(self.dataset.image_size)
        for threshold, name in sorted((int(k), v) for k, v in (self.protocol.get("student.arch_by_size") or {}).items()):
            if size >= threshold:
                arch = name
        params = dict(self.protocol.get("student.arch_params") or {})
        params.update(self.arch_params)
        return arch, params

    def make_model(self, seed: int, arch: str | None = None, params: Mapping[str, Any] | None = None) -> "torch.nn.Module":
        from ddr.engine.build import build_model

        default_arch, default_params = self.student_arch()
        if arch is None:
            arch, merged = default_arch, {**default_params, **dict(params or {})}
        else:
            merged = dict(params or {})
        return build_model(arch, self.dataset, params=merged, seed=seed, device=self.device, system=self.system)

    def recipe(self, section: str = "train") -> Recipe:
        data = dict(self.protocol.get(section) or {})
        if section == "real" and data.get("epochs") is None:
            data["epochs"] = self.dataset_spec().real_epochs
        return Recipe.from_mapping(data)

    def dataset_spec(self) -> Any:
        return self.system.datasets().get(self.dataset_ref)

    # -- real data and teachers ------------------------------------------------------------------
    def _real_key(self) -> str:
        from ddr.store.hashing import sha256_json

        arch, params = self.teacher_arch()
        return sha256_json({
            "dataset": self.dataset.name, "dataset_version": self.dataset_spec().version,
            "preprocess": self.dataset.pixel_space, "arch": arch, "arch_params": params,
            "protocol": self.protocol.name, "protocol_version": self.protocol.version,
            "recipe": self.recipe("real").to_dict(), "augmentation": self.protocol.get("real.augmentation"),
            "validation_per_class": self.protocol.get("validation_per_class"), "seed": self.seed,
        })

    def teacher_arch(self) -> tuple[str, dict[str, Any]]:
        arch = self.protocol.get("teacher.arch")
        if arch:
            return str(arch), dict(self.protocol.get("teacher.arch_params") or {})
        return self.student_arch()

    def real_accuracy(self) -> tuple[list[float], bool]:
        """``([acc_real_hard], cached?)``: trained once under the real-data recipe, then cached."""
        if self._real is None:
            self._real = self._train_real()
        return self._real

    def _train_real(self) -> tuple[list[float], bool]:
        from ddr.store.cache import atomic_write_json, entry_dir, read_json

        key = self._real_key()
        folder = entry_dir("real", key)
        record = read_json(folder / "real.json")
        if record and (folder / "model.safetensors").exists():
            return [float(record["accuracy"])], True
        from safetensors.torch import save_file

        from ddr.engine.seeds import derive_seed, torch_generator

        recipe = self.recipe("real")
        self.log(f"training the real-data reference once ({self.dataset.name}, {recipe.epochs} epochs, "
                 f"{len(self.pool)} images); it is cached for every later run")
        seed = derive_seed(self.seed, "real")
        model = self.make_model(seed, *self.teacher_arch())
        strategy = self.make_label_strategy("hard", None, hard_labels=self.pool.labels, soft_labels=None, teachers=[])
        augmentation = self._augmentations(self.protocol.get("real.augmentation"))
        result = train(model, TrainData(self.pool), recipe, generator=torch_generator(seed, self.device),
                       strategy=strategy, augmentation=augmentation, device=self.device, progress=self.progress)
        accuracy = test_accuracy(model, self.test, device=self.device)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(folder / "model.safetensors.tmp"))
        (folder / "model.safetensors.tmp").replace(folder / "model.safetensors")
        atomic_write_json(folder / "real.json", {"accuracy": accuracy, "epochs": result.epochs_trained,
                                                 "seconds": result.seconds, "arch": self.teacher_arch()[0],
                                                 "dataset": self.dataset.name, "seed": self.seed})
        return [accuracy], False

    def teachers(self) -> list["torch.nn.Module"]:
        """The teacher(s): a user checkpoint (``teacher=``) or the cached real-data model."""
        if self._teachers is None:
            from ddr.engine.teachers import load_teacher

            arch, params = self.teacher_arch()
            if self.teacher_path is not None:
                path = self.teacher_path
            else:
                self.real_accuracy()
                from ddr.store.cache import entry_dir

                path = entry_dir("real", self._real_key()) / "model.safetensors"
            model = self.make_model(0, arch, params)
            self._teachers = [load_teacher(model, path)]
        return self._teachers

    # -- building blocks -------------------------------------------------------------------------
    def progress(self, iterable: Any, total: int | None = None, desc: str = "", leave: bool = True) -> Any:
        if not self.progress_enabled:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=leave, disable=None, dynamic_ncols=True)

    def _augmentations(self, items: Any) -> Any:
        from ddr.engine.build import build_augmentations

        return build_augmentations(items or [], system=self.system)

    def make_label_strategy(self, ref: str, loss: Any, *, hard_labels: "torch.Tensor", soft_labels: "torch.Tensor | None",
                  teachers: list[Any]) -> Any:
        from ddr.engine.build import build_label_strategy

        strategy = build_label_strategy(ref, loss=loss, system=self.system)
        strategy.prepare(hard_labels=hard_labels, soft_labels=soft_labels, teachers=teachers,
                         num_classes=self.dataset.num_classes)
        return strategy

    def resolve_label_strategy(self, distilled: "DistilledSet", method_strategy: str | None = None) -> tuple[str, Any]:
        """(strategy, loss) for acc_syn_any: user choice > the set's own > method's > protocol's.

        A set that stores soft labels but names no strategy (DATM's labels.pt) is evaluated with
        them (``stored_soft``), never silently with hard labels.
        """
        from ddr.engine.build import label_strategy_spec

        own = distilled.label_strategy or ("stored_soft" if distilled.soft_labels is not None else None)
        if self.label_strategy is not None and self.label_strategy not in self.system.label_strategies() \
                and self.label_strategy in self.system.losses():
            # a loss named as strategy: the natural soft strategy with it
            return ("stored_soft" if distilled.soft_labels is not None else "teacher"), self.label_strategy
        ref = self.label_strategy or own or method_strategy or self.protocol.get("label_strategy", "hard")
        spec = label_strategy_spec(ref, system=self.system)
        loss = self.loss
        if not spec.soft and loss is not None and self.label_strategy is None:
            loss = None  # the protocol's soft loss does not apply to hard labels
        return ref, loss

    def _random_subset(self, index: int) -> "Split":
        import torch

        from ddr.engine.seeds import derive_seed, torch_generator

        from ddr_selection import random_picks

        generator = torch_generator(derive_seed(self.seed, "random_subset", index))
        picks = random_picks(self.pool.class_indices(self.dataset.num_classes), self.ipc, generator)
        return self.pool.subset(torch.cat(picks).to(self.pool.labels.device)).to(self.device)

    # -- one student -----------------------------------------------------------------------------
    def _student(self, *, role: str, index: int, split: "Split", soft_labels: "torch.Tensor | None",
                 strategy_ref: str, loss: Any, augmentation: Any, lr: float | None, search: bool) -> StudentRecord:
        from ddr.engine.seeds import derive_seed, torch_generator

        seed = derive_seed(self.seed, role, index)
        selection = self.protocol.get("selection", "last")
        recipe = with_lr(self.recipe("train"), self.lr_override)
        grid = [float(x) for x in self.protocol.get("lr_grid") or []]
        if lr is not None or selection == "last" or not search:
            candidates = [lr if lr is not None else recipe.lr]
        else:
            candidates = grid
        teachers = self.teachers() if self._needs_teacher(strategy_ref) else []
        data = TrainData(split, soft_labels)
        best: tuple[float, float, Any, dict[str, Any]] | None = None
        tried: dict[str, float] = {}
        for candidate in candidates:
            model = self.make_model(seed)
            strategy = self.make_label_strategy(strategy_ref, loss, hard_labels=split.labels, soft_labels=soft_labels, teachers=teachers)
            pipeline = self._augmentations(augmentation)
            kwargs: dict[str, Any] = {}
            if selection == "ddranking":
                kwargs = {"evaluate_every": int(self.protocol.get("test_interval", 10)),
                          "evaluate": lambda m: test_accuracy(m, self.test, device=self.device)}
            result = train(model, data, with_lr(recipe, candidate), generator=torch_generator(seed, self.device),
                           strategy=strategy, augmentation=pipeline, device=self.device, **kwargs)
            if selection == "ddranking":
                score = max(acc for _, acc in result.evaluations)
                test_acc = score
            elif selection == "validation" and len(candidates) > 1:
                score = test_accuracy(model, self.validation, device=self.device)
                test_acc = None
            else:
                score = test_acc = test_accuracy(model, self.test, device=self.device)
            tried[repr(candidate)] = score
            if best is None or score > best[0]:
                if test_acc is None:
                    test_acc = test_accuracy(model, self.test, device=self.device)
                best = (score, candidate, result, {"test": test_acc})
        assert best is not None
        score, chosen, result, extra = best
        info: dict[str, Any] = {}
        if len(candidates) > 1:
            info = {"mode": selection, "scores_by_lr": tried, "chosen_lr": chosen}
        if selection == "ddranking":
            info["best_on_test"] = True
        return StudentRecord(role=role, index=index, seed=seed, accuracy=float(extra["test"]), lr=float(chosen),
                             epochs_trained=result.epochs_trained, seconds=result.seconds, selection=info)

    def _needs_teacher(self, strategy_ref: str) -> bool:
        from ddr.engine.build import label_strategy_spec

        return bool(label_strategy_spec(strategy_ref, system=self.system).needs_teacher)

    # -- the protocol ----------------------------------------------------------------------------
    def evaluate(self, distilled: "DistilledSet", *, method_strategy: str | None = None,
                 resize: bool = False, run_spec: Mapping[str, Any] | None = None) -> EvaluationResult:
        """Evaluate one distilled set (validated first) and return the scores."""
        from ddr.method.distilled import distilled_sha256, validate_distilled
        from ddr.engine.data import Split
        from ddr.protocol.metrics import ars_table, score_table

        start = time.perf_counter()
        ds = self.dataset
        distilled = validate_distilled(distilled, num_classes=ds.num_classes, ipc=self.ipc, channels=ds.channels,
                                       image_size=tuple(ds.image_size), mean=ds.mean, std=ds.std, resize=resize)
        if distilled.pixel_space != ds.pixel_space:
            raise DdrError(
                f"the distilled set is in '{distilled.pixel_space}' pixel space but the dataset is loaded in "
                f"'{ds.pixel_space}'; evaluate ZCA sets with --zca (or convert the images)"
            )
        sha = distilled_sha256(distilled)
        syn = Split(labels=distilled.labels.to(self.device), images=distilled.images.to(self.device))
        soft = distilled.soft_labels.to(self.device) if distilled.soft_labels is not None else None
        strategy_ref, loss = self.resolve_label_strategy(distilled, method_strategy)
        self._check_strategy(strategy_ref, distilled)
        hard_aug = self.protocol.get("hard_augmentation") or []
        any_aug = self.protocol.get("augmentation") or []
        num_eval = int(self.protocol.get("num_eval", 5))
        learned_lr = distilled.lr
        real_values, real_cached = self.real_accuracy()
        same_run = strategy_ref == "hard" and loss is None and list(hard_aug) == list(any_aug)
        students: list[StudentRecord] = []
        per_role: dict[str, list[float]] = {"syn_hard": [], "syn_any": [], "rdm_any": []}
        ars_roles: dict[str, list[float]] = {"syn_noaug": [], "rdm_noaug": []}
        for i in self.progress(range(num_eval), total=num_eval, desc="students"):
            syn_hard = self._student(role="syn_hard", index=i, split=syn, soft_labels=None, strategy_ref="hard",
                                     loss=None, augmentation=hard_aug, lr=learned_lr, search=True)
            students.append(syn_hard)
            if same_run:
                syn_any = syn_hard
            else:
                syn_any = self._student(role="syn_any", index=i, split=syn, soft_labels=soft, strategy_ref=strategy_ref,
                                        loss=loss, augmentation=any_aug, lr=learned_lr, search=True)
                students.append(syn_any)
            random_split = self._random_subset(i)
            rdm_soft = None
            if soft is not None and strategy_ref == "stored_soft":
                rdm_soft = self._teacher_logits(random_split)
            rdm = self._student(role="rdm_any", index=i, split=random_split, soft_labels=rdm_soft,
                                strategy_ref=strategy_ref, loss=loss, augmentation=any_aug, lr=None, search=True)
            students.append(rdm)
            per_role["syn_hard"].append(syn_hard.accuracy)
            per_role["syn_any"].append(syn_any.accuracy)
            per_role["rdm_any"].append(rdm.accuracy)
            if self.want_ars:
                no_aug: list[Any] = []  # ARS "without": no augmentation at all (mixing included)
                for role, split_, soft_, lr_ in (("syn_noaug", syn, soft, learned_lr), ("rdm_noaug", random_split, rdm_soft, None)):
                    rec = self._student(role=role, index=i, split=split_, soft_labels=soft_, strategy_ref=strategy_ref,
                                        loss=loss, augmentation=no_aug, lr=lr_, search=True)
                    students.append(rec)
                    ars_roles[role].append(rec.accuracy)
        metrics = self.protocol.get("metrics") or {}
        compat = bool(metrics.get("ddranking_compat_percent", False))
        scores = score_table(real_values, per_role["syn_hard"], per_role["syn_any"], per_role["rdm_any"],
                             w=float(metrics.get("w", 0.5)), compat=compat)
        ars = None
        if self.want_ars:
            ars = ars_table(per_role["syn_any"], per_role["rdm_any"], ars_roles["syn_noaug"], ars_roles["rdm_noaug"],
                            lam=float(metrics.get("lambda", 0.5)), compat=compat)
        spec = dict(run_spec or {})
        spec.update(self.describe(strategy_ref, loss))
        return EvaluationResult(
            scores=scores, ars=ars, protocol=self.protocol.name, protocol_version=self.protocol.version,
            seed=self.seed, distilled_sha256=sha,
            test_set_selection=self.protocol.get("selection") == "ddranking", students=students,
            run_spec=spec, eval_seconds=time.perf_counter() - start, real_cached=real_cached,
        )

    def _check_strategy(self, strategy_ref: str, distilled: "DistilledSet") -> None:
        """Refuse before any training what would fail at the first syn_any batch."""
        from ddr.engine.build import label_strategy_spec

        spec = label_strategy_spec(strategy_ref, system=self.system)
        if spec.needs_soft_labels and distilled.soft_labels is None:
            raise DistilledSetError(
                f"label strategy '{strategy_ref}' needs soft labels stored with the distilled set, but this set "
                "has none; evaluate it with --label-strategy hard, or --label-strategy teacher to have a teacher "
                "label every batch"
            )

    def _teacher_logits(self, split: "Split") -> "torch.Tensor":
        """Soft labels for the random baseline of a stored-soft-label set: the teacher's logits."""
        import torch

        teachers = self.teachers()
        with torch.no_grad():
            return torch.stack([t(split.images) for t in teachers]).mean(0)

    def describe(self, strategy_ref: str | None = None, loss: Any = None) -> dict[str, Any]:
        """The resolved settings, for ``run_spec.json``."""
        arch, params = self.student_arch()
        return {
            "dataset": self.dataset_ref, "ipc": self.ipc, "arch": arch, "arch_params": params,
            "protocol": self.protocol.name, "protocol_version": self.protocol.version,
            "protocol_config": self.protocol.to_dict(), "label_strategy": strategy_ref, "loss": loss,
            "seed": self.seed, "device": str(self.device), "lr_override": self.lr_override, "ars": self.want_ars,
            "teacher": str(self.teacher_path) if self.teacher_path else None, "zca": self.zca,
        }


def evaluate(
    distilled: "DistilledSet | str | Path",
    *,
    dataset: str = "digits",
    ipc: int | None = None,
    protocol: str | None = None,
    out: str | Path | None = None,
    resize: bool = False,
    **options: Any,
) -> EvaluationResult:
    """Evaluate a distilled set (object or path) and return an :class:`EvaluationResult`.

    ``options`` are :class:`Evaluator`'s keyword arguments (``arch``, ``label_strategy``, ``seed``,
    ``num_eval``, ``epochs``, ``lr``, ``overrides``, ``device``, ``teacher``, ``ars``, ...). With
    ``out``, ``run_spec.json``, ``metrics.json`` and ``env.json`` are written there.
    """
    from ddr.method.distilled import DistilledSet
    from ddr.store.formats import load_distilled

    if not isinstance(distilled, DistilledSet):
        path = Path(distilled)
        system = options.get("system") or get_plugin_system()
        loaded = system.pm.hook.ddr_load_distilled(path=path)  # plugins' formats first
        if loaded is None:
            from ddr.engine.build import load_dataset

            num_classes = load_dataset(dataset, download=options.get("download", False), system=system).num_classes
            space = options.get("pixel_space") or ("zca" if options.get("zca") else None)
            loaded = load_distilled(path, num_classes=num_classes, ipc=ipc, pixel_space=space)
        distilled = loaded
    options.pop("pixel_space", None)
    if ipc is None:
        counts = distilled.labels.bincount()
        ipc = int(counts.max())
    evaluator = Evaluator(dataset=dataset, ipc=ipc, protocol=protocol, **options)
    result = evaluator.evaluate(distilled, resize=resize)
    if out is not None:
        from ddr.store.records import record_folder, write_records

        folder = record_folder(Path(out), f"eval-{dataset}-ipc{ipc}-seed{evaluator.seed}",
                               {**result.run_spec, "distilled_sha256": result.distilled_sha256})
        result.record_dir = str(write_records(folder, result, evaluator.system).resolve())
    return result
