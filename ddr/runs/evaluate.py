"""Evaluation: a distilled set goes through plan → execute → score under one protocol.

For each student index ``i < num_eval`` (docs/protocol.md §1): ``acc_syn_hard`` (distilled
images, hard labels, the hard augmentation), ``acc_syn_any`` (the method's label strategy, loss
and augmentation), ``acc_rdm_any`` (a class-balanced random subset of the training pool treated
exactly like ``acc_syn_any``) and ``acc_real_hard`` (the full pool under the real-data recipe,
trained once per dataset/protocol recipe/seed). :class:`Evaluator` resolves the settings and the
data once; :meth:`Evaluator.evaluate` builds the plan (:mod:`ddr.protocol.plan`), runs the jobs
it does not find in the job cache with the chosen executor, and scores the results with pure
functions (:mod:`ddr.protocol.score`). Accuracies are fractions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError, ConfigError, DdrError, DistilledSetError
from ddr.protocol.config import Protocol, default_protocol, resolve_protocol
from ddr.records.run import EvaluationResult
from ddr.runs.session import Session, resolve_device

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.data import ImageDataset, Split
    from ddr.execute.workspace import Workspace
    from ddr.method.distilled import DistilledSet
    from ddr.protocol.plan import Plan
    from ddr.records.jobs import JobResult, StudentJob

__all__ = ["EvalOptions", "Evaluator", "evaluate", "resolve_protocol"]


@dataclass(frozen=True)
class EvalOptions:
    """What an evaluation is asked for; ``None`` means "the protocol's".

    Attributes:
        dataset, ipc, seed: what is evaluated and the run seed.
        protocol: a protocol name or YAML path (``None``: the method's, ``digits`` on digits).
        arch, arch_params: the student architecture instead of the protocol's.
        label_strategy, loss: acc_syn_any's label strategy (or a loss name) and loss.
        num_eval, epochs, lr: protocol overrides (students, student epochs, student LR).
        overrides: further protocol overrides, dotted or nested (``{"train.batch_size": 128}``).
        device: ``cpu``, ``cuda``, ``cuda:N`` (``None``: the GPU when present).
        teacher: a teacher checkpoint file instead of the trained reference.
        ars: also compute ARS; zca: ZCA-whiten the dataset (``None``: as the method's recipe says for
            ``ddr run``, else off); download: fetch a missing dataset.
        method_protocol: the protocol the method asks for (the default protocol).
        executor: how jobs run (``local``); executor_options: its keyword arguments
            (``{"address": ...}`` for ``ray``).
        job_cache: reuse finished jobs from the cache (new results are stored either way).
    """

    dataset: str = "digits"
    ipc: int | None = 1
    seed: int = 0
    protocol: str | None = None
    arch: str | None = None
    arch_params: Mapping[str, Any] = field(default_factory=dict)
    label_strategy: str | None = None
    loss: Any = None
    num_eval: int | None = None
    epochs: int | None = None
    lr: float | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    teacher: str | Path | None = None
    ars: bool | None = None
    zca: bool | None = None
    download: bool = False
    method_protocol: str = "hard"
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)
    job_cache: bool = True

    def protocol_overrides(self) -> dict[str, Any]:
        """Every protocol override, dotted (what the record lists)."""
        out = dict(self.overrides)
        if self.epochs is not None:
            out["train.epochs"] = self.epochs
        if self.num_eval is not None:
            out["num_eval"] = self.num_eval
        if self.lr is not None:
            out["train.lr"] = self.lr
        return out


class Evaluator:
    """Evaluates distilled sets of one (dataset, ipc, protocol, arch, label strategy, seed).

    Build it once and call :meth:`evaluate` for each distilled set; the dataset, the validation
    split, the reference model and the teacher are resolved once.
    """

    def __init__(self, options: EvalOptions | None = None, *, session: Session | None = None, **kwargs: Any) -> None:
        from ddr.engine.seeds import check_seed

        self.session = session or Session()
        self.options = replace(options or EvalOptions(), **kwargs) if kwargs else (options or EvalOptions())
        o = self.options
        self.seed = check_seed(o.seed)
        if not isinstance(o.ipc, int) or isinstance(o.ipc, bool) or o.ipc < 1:
            raise ConfigError(f"ipc must be a positive integer, got {o.ipc!r}")
        if o.lr is not None and not (isinstance(o.lr, (int, float)) and o.lr > 0):
            raise ConfigError(f"--lr must be a positive learning rate, got {o.lr!r}")
        overrides = dict(o.overrides)
        if o.epochs is not None:
            overrides["train.epochs"] = o.epochs
        if o.num_eval is not None:
            overrides["num_eval"] = o.num_eval
        self.protocol: Protocol = resolve_protocol(o.protocol or default_protocol(o.dataset, o.method_protocol),
                                                   overrides, self.system)
        self.device = resolve_device(o.device)
        self.system.executors().get(o.executor)  # an unknown executor fails here, not after the cached jobs
        from ddr.store.writable import check_cache

        check_cache()  # a read-only, full or misplaced DDR_CACHE_DIR fails here, before any work
        teacher = o.teacher or self.protocol.teacher.checkpoint
        self.teacher_path = Path(teacher) if teacher else None
        self._check_names()  # a misspelt name fails here, before any distillation or training
        self.want_ars = bool(self.protocol.metrics.ars if o.ars is None else o.ars)
        self._dataset: ImageDataset | None = None
        self._workspace: Workspace | None = None
        self._teachers: list[Any] | None = None
        self._unstored_models: dict[str, Any] = {}  # reference states the cache could not store (key -> state)
        self._warned_unstored = False

    def _check_names(self) -> None:
        """Resolve every component named by the options and the protocol, and find the teacher file."""
        from ddr.engine.build import loss_spec

        o, system = self.options, self.system
        for arch in {o.arch, self.protocol.teacher.arch} - {None}:
            system.architectures().resolve(arch)
        if o.label_strategy is not None and o.label_strategy not in system.losses():
            system.label_strategies().resolve(o.label_strategy)
        if o.loss is not None:
            loss_spec(o.loss, system=system)
        if self.teacher_path is not None and not self.teacher_path.is_file():
            raise ArtifactError(f"teacher checkpoint not found: {self.teacher_path} (or it is not a file); give a "
                                ".safetensors or state-dict .pt file, or leave --teacher out to use the real-data "
                                "reference")
        if self.teacher_path is not None:  # an unreadable or unsafe file fails now, not after the distillation
            from ddr.engine.teachers import read_state_dict

            read_state_dict(self.teacher_path)

    # -- settings ----------------------------------------------------------------------------------
    @property
    def system(self) -> Any:
        return self.session.system

    @property
    def ipc(self) -> int:
        assert self.options.ipc is not None  # checked in __init__
        return self.options.ipc

    @property
    def log(self) -> Any:
        return self.session.log

    def dataset_spec(self) -> Any:
        return self.system.datasets().get(self.options.dataset)

    def student_arch(self) -> tuple[str, dict[str, Any]]:
        if self.options.arch:
            return self.options.arch, dict(self.options.arch_params)
        arch = self.protocol.student.arch_for(max(self.dataset.image_size))
        return arch, {**dict(self.protocol.student.arch_params), **dict(self.options.arch_params)}

    def teacher_arch(self) -> tuple[str, dict[str, Any]]:
        if self.protocol.teacher.arch:
            return self.protocol.teacher.arch, dict(self.protocol.teacher.arch_params)
        return self.student_arch()

    def make_model(self, seed: int, arch: str | None = None, params: Mapping[str, Any] | None = None) -> "torch.nn.Module":
        """A fresh seeded network (``arch=None``: the student architecture with ``params`` merged in)."""
        from ddr.engine.build import build_model

        default_arch, default_params = self.student_arch()
        if arch is None:
            arch, merged = default_arch, {**default_params, **dict(params or {})}
        else:
            merged = dict(params or {})
        return build_model(arch, self.dataset, params=merged, seed=seed, device=self.device, system=self.system)

    # -- data ----------------------------------------------------------------------------------------
    @property
    def dataset(self) -> "ImageDataset":
        if self._dataset is None:
            self._dataset = self.session.load_dataset(self.options.dataset, download=self.options.download,
                                                      zca=bool(self.options.zca))
        return self._dataset

    @property
    def workspace(self) -> "Workspace":
        """The splits, random subsets and teachers jobs resolve against (built on first use)."""
        if self._workspace is None:
            from ddr.execute.workspace import Workspace

            pool, validation = self._split_validation()
            self._workspace = Workspace(system=self.system, device=self.device, dataset=self.dataset, pool=pool,
                                        validation=validation, test=self.dataset.test.to(self.device), ipc=self.ipc,
                                        seed=self.seed, teachers=self.teachers, progress=self.session.progress,
                                        teacher_arch=self.teacher_arch())
        return self._workspace

    @property
    def pool(self) -> "Split":
        """The training pool: the train split minus the validation split (on the device)."""
        return self.workspace.pool

    @property
    def validation(self) -> "Split":
        return self.workspace.validation

    @property
    def test(self) -> "Split":
        return self.workspace.test

    def _split_validation(self) -> tuple["Split", "Split"]:
        import torch

        from ddr.engine.seeds import derive_seed, torch_generator

        dataset = self.dataset
        per_class = self.protocol.validation_per_class
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
        validation = train.subset(val_index).to(self.device)
        if train.in_memory:
            return train.subset(pool_index).to(self.device), validation
        from torch.utils.data import Subset

        from ddr.engine.data import Split

        return Split(labels=train.labels[pool_index], source=Subset(train.source, pool_index.tolist())), validation

    # -- the plan ------------------------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        """What every job's data resolves against (part of each job's content key)."""
        ds = self.dataset
        return {"dataset": ds.name, "dataset_version": self.dataset_spec().version, "pixel_space": ds.pixel_space,
                "preprocess": ds.preprocess, "validation_per_class": self.protocol.validation_per_class,
                "seed": self.seed, "device": self.device.type}

    def plan(self, distilled: "DistilledSet", strategy: str, loss: Any, sha256: str) -> "Plan":
        from ddr.engine.build import label_strategy_spec
        from ddr.protocol.plan import PlanInputs, build_plan

        spec = label_strategy_spec(strategy, system=self.system)
        arch, arch_params = self.student_arch()
        teacher_arch, teacher_params = self.teacher_arch()
        real_epochs = self.dataset_spec().real_epochs
        inputs = PlanInputs(
            seed=self.seed, ipc=self.ipc, distilled_sha256=sha256, has_soft_labels=distilled.soft_labels is not None,
            learned_lr=distilled.lr, strategy=strategy, loss=loss, strategy_soft=spec.soft,
            strategy_teacher=spec.needs_teacher, arch=arch, arch_params=arch_params, teacher_arch=teacher_arch,
            teacher_arch_params=teacher_params, train=self.protocol.train.recipe().to_dict(),
            real=self.protocol.real.recipe(real_epochs).to_dict(), lr_override=self.options.lr, ars=self.want_ars,
            context=self.context(),
        )
        context = {**inputs.context, "teacher": self.teacher_identity(self.reference())}
        return build_plan(self.protocol, replace(inputs, context=context))

    def reference(self) -> "StudentJob":
        """The real-data reference job (its content key names the cached model)."""
        from ddr.protocol.plan import PlanInputs, reference_job

        teacher_arch, teacher_params = self.teacher_arch()
        inputs = PlanInputs(seed=self.seed, ipc=self.ipc, distilled_sha256="", has_soft_labels=False, learned_lr=None,
                            strategy="hard", loss=None, strategy_soft=False, strategy_teacher=False,
                            arch=teacher_arch, arch_params=teacher_params, teacher_arch=teacher_arch,
                            teacher_arch_params=teacher_params, train={},
                            real=self.protocol.real.recipe(self.dataset_spec().real_epochs).to_dict(),
                            lr_override=None, ars=False, context=self.context())
        return reference_job(self.protocol, inputs)

    def teacher_identity(self, real: "StudentJob") -> str:
        """The user's teacher file's sha256, or the reference job's key."""
        if self.teacher_path is not None:
            from ddr.store.hashing import sha256_file

            return "file:" + sha256_file(self.teacher_path)
        return "reference:" + real.key

    # -- executing -----------------------------------------------------------------------------------
    def run_jobs(self, jobs: "list[StudentJob]", reused: dict[str, int]) -> "dict[str, JobResult]":
        """Results of ``jobs``: from the job cache when finished before, else run by the executor.

        The jobs to run are locked first (:mod:`ddr.store.locks`) and looked up again, so a job
        that another ddr process is training on the same cache is trained once and read here.
        A result the cache cannot store (a full disk) is kept for this run with a warning.
        """
        from ddr.store.jobs import job_dir, store_record
        from ddr.store.locks import entry_locks

        results, todo = self._from_job_cache(jobs, reused)
        if not todo:
            return results
        locks = [(job_dir(job.key), "the real-data reference" if job.role == "real" else
                  f"student job {job.role} #{job.index}") for job in todo]
        with entry_locks(locks, log=self.log):
            found, todo = self._from_job_cache(todo, reused)
            results.update(found)
            if not todo:
                return results
            for job in todo:
                if job.role == "real":
                    self._announce_reference(job)
            def finished(job: "StudentJob", result: "JobResult", model: Any) -> None:
                # stored even under --no-job-cache (which only skips reading): the teacher is read from here
                state = model.state_dict() if job.role == "real" and model is not None else None
                try:
                    store_record(result.to_dict(), state)
                except DdrError as exc:  # the result is kept for this run; only the cache misses it
                    if state is not None:
                        self._unstored_models[job.key] = {k: v.detach().cpu().clone() for k, v in state.items()}
                    if not self._warned_unstored:  # once per evaluator: the cause is the same for every job
                        self._warned_unstored = True
                        self.log(f"warning: {exc}; continuing: this run keeps its results, a later run trains "
                                 "the jobs that could not be stored again")

            executor = self.session.executor(self.options.executor, self.options.executor_options)
            for result in executor.run(todo, self.workspace, finished):
                results[result.key] = result
        return results

    def _from_job_cache(self, jobs: "list[StudentJob]",
                        reused: dict[str, int]) -> "tuple[dict[str, JobResult], list[StudentJob]]":
        """(results of the cached ``jobs``, the jobs still to run); nothing is read under
        ``--no-job-cache``."""
        from ddr.records.jobs import JobResult
        from ddr.store.jobs import cached_record

        results: dict[str, JobResult] = {}
        todo = []
        for job in jobs:
            record = cached_record(job.key, needs_model=job.role == "real") if self.options.job_cache else None
            if record is not None:
                result = JobResult.from_dict(record)
                result.cached = True
                results[job.key] = result
                reused[job.role] = reused.get(job.role, 0) + 1
            else:
                todo.append(job)
        return results, todo

    def real_accuracy(self) -> tuple[float, bool]:
        """``(acc_real_hard, cached?)``: the reference, trained once under the real-data recipe."""
        job = self.reference()
        reused: dict[str, int] = {}
        result = self.run_jobs([job], reused)[job.key]
        return result.accuracy, bool(reused)

    def _announce_reference(self, job: "StudentJob") -> None:
        """Say that the reference trains now (once: it is cached; :meth:`run_jobs` calls this
        only when this process, holding the job's lock, is about to train it)."""
        self.log(f"training the real-data reference once ({self.dataset.name}, {job.recipe['epochs']} epochs, "
                 f"{len(self.pool)} images); it is cached for every later run")

    @staticmethod
    def _cached(job: "StudentJob") -> bool:
        """Whether the job cache holds ``job`` with its model."""
        from ddr.store.jobs import cached_record

        return cached_record(job.key, needs_model=True) is not None

    def teacher_checkpoint(self) -> Path:
        """The teacher's weights: the user's file, else the cached reference model (trained if needed)."""
        if self.teacher_path is not None:
            return self.teacher_path
        from ddr.store.jobs import model_path

        self.real_accuracy()
        key = self.reference().key
        if key in self._unstored_models and not model_path(key).is_file():
            return self._rescue_reference(key)
        return model_path(key)

    def _rescue_reference(self, key: str) -> Path:
        """The reference model the cache could not store, saved to a rescue folder (a warning
        says where); an ArtifactError when that fails too."""
        from safetensors.torch import save_file

        from ddr.store.jobs import MODEL_FILE
        from ddr.store.writable import reason, rescue_dir

        path = rescue_dir(f"reference-{key[:16]}") / MODEL_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file(self._unstored_models[key], str(path))
        except OSError as exc:
            raise ArtifactError(f"the real-data reference trained, but neither the cache nor {path.parent} could "
                                f"store its model ({reason(exc)}); free space under DDR_CACHE_DIR (or point it "
                                "elsewhere) and rerun") from None
        self.log(f"warning: the cache could not store the real-data reference; its model is saved at {path}")
        return path

    def use_teachers(self, models: list["torch.nn.Module"]) -> None:
        """Make ``models`` (eval mode, frozen) the teachers, as a worker does with the driver's."""
        self._teachers = list(models)

    def teachers(self) -> list["torch.nn.Module"]:
        """The teacher(s) in eval mode, frozen: a user checkpoint or the reference model."""
        if self._teachers is None:
            from ddr.engine.teachers import load_teacher

            arch, params = self.teacher_arch()
            key = self.reference().key if self.teacher_path is None else ""
            if key in self._unstored_models:  # trained by this run, but the cache could not store it
                model = self.make_model(0, arch, params)
                model.load_state_dict(self._unstored_models[key])
                model.eval().requires_grad_(False)
                self._teachers = [model]
            else:
                path = self.teacher_checkpoint()
                self._teachers = [load_teacher(self.make_model(0, arch, params), path)]
        return self._teachers

    # -- label strategy ------------------------------------------------------------------------------
    def resolve_label_strategy(self, distilled: "DistilledSet", method_strategy: str | None = None) -> tuple[str, Any]:
        """(strategy, loss) for acc_syn_any: user choice > the set's own > method's > protocol's.

        A set that stores soft labels but names no strategy (DATM's labels.pt) is evaluated with
        them (``stored_soft``), never silently with hard labels. A loss named as the strategy
        means the natural soft strategy with that loss.
        """
        from ddr.engine.build import label_strategy_spec

        chosen = self.options.label_strategy
        own = distilled.label_strategy or ("stored_soft" if distilled.soft_labels is not None else None)
        if chosen is not None and chosen not in self.system.label_strategies() and chosen in self.system.losses():
            return ("stored_soft" if distilled.soft_labels is not None else "teacher"), chosen
        ref = chosen or own or method_strategy or self.protocol.label_strategy
        spec = label_strategy_spec(ref, system=self.system)
        loss = self.options.loss if self.options.loss is not None else self.protocol.loss
        if not spec.soft and loss is not None and self.options.loss is None:
            loss = None  # the protocol's soft loss does not apply to hard labels
        if loss is not None:
            from ddr.engine.build import loss_spec

            loss_spec(loss, system=self.system)  # a misspelt loss fails here, before any training
        return ref, loss

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

    # -- the protocol --------------------------------------------------------------------------------
    def evaluate(self, distilled: "DistilledSet", *, method_strategy: str | None = None,
                 resize: bool = False, run_spec: Mapping[str, Any] | None = None) -> EvaluationResult:
        """Evaluate one distilled set (validated first) and return the scores."""
        from ddr.engine.data import Split
        from ddr.method.distilled import distilled_sha256, validate_distilled
        from ddr.protocol.score import ordered_results, score

        start = time.perf_counter()
        ds = self.dataset
        distilled = validate_distilled(distilled, num_classes=ds.num_classes, ipc=self.ipc, channels=ds.channels,
                                       image_size=(ds.image_size[0], ds.image_size[1]), mean=ds.mean, std=ds.std, resize=resize)
        if distilled.pixel_space != ds.pixel_space:
            raise DdrError(
                f"the distilled set is in '{distilled.pixel_space}' pixel space but the dataset is loaded in "
                f"'{ds.pixel_space}'; evaluate ZCA sets with --zca (or convert the images)"
            )
        sha = distilled_sha256(distilled)
        strategy, loss = self.resolve_label_strategy(distilled, method_strategy)
        self._check_strategy(strategy, distilled)
        plan = self.plan(distilled, strategy, loss, sha)
        syn = Split(labels=distilled.labels.to(self.device), images=distilled.images.to(self.device))
        soft = distilled.soft_labels.to(self.device) if distilled.soft_labels is not None else None
        self.workspace.add_distilled(sha, syn, soft)
        reused: dict[str, int] = {}
        self.session.stage(f"reference · {ds.name} · {plan.real.arch}")
        results = self.run_jobs([plan.real], reused)
        self.session.stage(f"students · {len(plan.students)} jobs · {plan.students[0].arch if plan.students else ''}")
        results.update(self.run_jobs(list(plan.students), reused))
        if reused:
            self.log("reused from the job cache: " + ", ".join(f"{n} {role}" for role, n in sorted(reused.items())))
        metrics = self.protocol.metrics
        scores, ars = score(plan, results, w=metrics.w, lam=metrics.lam, compat=metrics.ddranking_compat_percent)
        spec = dict(run_spec or {})
        spec.update(self.describe(strategy, loss))
        return EvaluationResult(
            scores=scores, ars=ars, protocol=self.protocol.name, protocol_version=self.protocol.version,
            seed=self.seed, distilled_sha256=sha, test_set_selection=self.protocol.test_set_selection,
            students=ordered_results(plan, results)[1:], reference=results[plan.real.key], run_spec=spec,
            eval_seconds=time.perf_counter() - start,
            reused=reused,
        )

    def describe(self, strategy_ref: str | None = None, loss: Any = None) -> dict[str, Any]:
        """The resolved settings, for ``run_spec.json``."""
        arch, params = self.student_arch()
        o = self.options
        return {
            "dataset": o.dataset, "ipc": self.ipc, "arch": arch, "arch_params": params,
            "protocol": self.protocol.name, "protocol_version": self.protocol.version,
            "protocol_overrides": o.protocol_overrides(), "protocol_config": self.protocol.to_dict(),
            "label_strategy": strategy_ref, "loss": loss, "seed": self.seed, "device": str(self.device),
            "lr_override": o.lr, "ars": self.want_ars, "executor": o.executor,
            "teacher": str(self.teacher_path) if self.teacher_path else None, "zca": bool(o.zca),
        }


def evaluate(
    distilled: "DistilledSet | str | Path",
    *,
    dataset: str = "digits",
    ipc: int | None = None,
    protocol: str | None = None,
    out: str | Path | None = None,
    resize: bool = False,
    pixel_space: str | None = None,
    session: Session | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate a distilled set (object or path) and return an :class:`EvaluationResult`.

    ``options`` are :class:`EvalOptions` fields (``arch``, ``label_strategy``, ``seed``,
    ``num_eval``, ``epochs``, ``lr``, ``overrides``, ``device``, ``teacher``, ``ars``, ...). With
    ``out``, a run record (``run_spec.json``, ``metrics.json``, ``env.json``) is written there.
    """
    from ddr.method.distilled import DistilledSet
    from ddr.store.formats import load_any

    session = session or Session()
    if not isinstance(distilled, DistilledSet):
        num_classes = session.load_dataset(dataset, download=options.get("download", False)).num_classes
        space = pixel_space or ("zca" if options.get("zca") else None)
        distilled = load_any(Path(distilled), session.system, num_classes=num_classes, ipc=ipc, pixel_space=space)
    if ipc is None:
        ipc = int(distilled.labels.bincount().max())
    evaluator = Evaluator(EvalOptions(dataset=dataset, ipc=ipc, protocol=protocol, **options), session=session)
    result = evaluator.evaluate(distilled, resize=resize)
    from ddr.runs.cost import evaluation_cost  # what `ddr eval` records: the evaluation's cost and storage

    result.extra["cost"] = evaluation_cost(result, distilled, evaluator, None)
    if out is not None:
        from ddr.store.records import record_folder, write_records

        folder = record_folder(Path(out), f"eval-{dataset}-ipc{ipc}-seed{evaluator.seed}",
                               {**result.run_spec, "distilled_sha256": result.distilled_sha256})
        result.record_dir = str(write_records(folder, result, session.system).resolve())
    return result
