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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DdrError, DistilledSetError
from ddr.protocol.bounds import check_bound
from ddr.protocol.config import Protocol, default_protocol, resolve_protocol
from ddr.records.run import EvaluationResult
from ddr.records.summary import Summary
from ddr.resources.service import Resources
from ddr.resources.session import Session

if TYPE_CHECKING:  # pragma: no cover

    from ddr.execute.workspace import Workspace
    from ddr.method.distilled import DistilledSet
    from ddr.plugin.specs import MetricSpec
    from ddr.protocol.plan import Plan

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
        metrics: metrics to report beyond the built-in scores, by name with an optional preset
            (``robust_pgd``, ``robust_pgd.strong``), added to the protocol's ``metrics.extra``.
        metric_params: per metric name, parameter overrides (``--set metric.robust_pgd.epsilon=0.1``).
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
    metrics: tuple[str, ...] = ()
    metric_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def protocol_overrides(self, *, include_lr: bool = True, protocol: Protocol | None = None) -> dict[str, Any]:
        """Every protocol override, dotted (what the record lists). ``--lr`` is listed as
        ``train.lr`` but not applied to the protocol (``include_lr=False``): the plan applies it
        to every student except one with a learned LR.

        With ``protocol`` (resolved under ``overrides`` alone), ``--epochs``, ``--num-eval`` and
        ``--lr`` set every key its ``follows:`` names (``ddranking-hard``: ``--epochs`` sets
        ``train.epochs`` and ``real.epochs`` and recomputes their step milestones); a key given with
        ``--set`` keeps the ``--set`` value. Without it they set the students' keys only."""
        out = dict(self.overrides)
        explicit = dict(self.overrides)
        for flag, value in (("epochs", self.epochs), ("num_eval", self.num_eval), ("lr", self.lr)):
            if value is None:
                continue
            if protocol is not None:
                followed = protocol.flag_overrides(flag, value, explicit)
            else:
                followed = {{"epochs": "train.epochs", "num_eval": "num_eval", "lr": "train.lr"}[flag]: value}
            if flag == "lr" and not include_lr:
                followed.pop("train.lr", None)
            out.update(followed)
        return out


def override_changes(before: Protocol, after: Protocol) -> list[str]:
    """``key old -> new`` for every protocol setting that differs between two resolutions of a
    protocol (without and with the run's overrides), dotted, in the protocol's key order."""
    def flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, Mapping) and value and key not in ("loss", "arch_params"):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    old, new = flat(before.data), flat(after.data)
    return [f"{key} {_short(old.get(key))} -> {_short(value)}" for key, value in new.items() if old.get(key) != value]


def _short(value: Any) -> str:
    """A value in a log line (floats to 4 significant digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


class Evaluator:
    """Evaluates distilled sets at one (dataset, ipc, protocol, arch, label strategy, seed).

    It holds the options, the resolved protocol and the :class:`ddr.resources.Resources` the
    jobs run against (dataset, splits, reference, teachers: built once, on use); call
    :meth:`evaluate` for each distilled set.
    """

    def __init__(self, options: EvalOptions | None = None, *, session: Session | None = None,
                 resources: Resources | None = None, **kwargs: Any) -> None:
        self.session = session or (resources.session if resources is not None else Session())
        self.options = replace(options or EvalOptions(), **kwargs) if kwargs else (options or EvalOptions())
        o = self.options
        if not isinstance(o.ipc, int) or isinstance(o.ipc, bool) or o.ipc < 1:
            raise ConfigError(f"ipc must be a positive integer, got {o.ipc!r}")
        check_bound("ipc", o.ipc, what="ipc")
        if o.lr is not None and not (isinstance(o.lr, (int, float)) and o.lr > 0):
            raise ConfigError(f"--lr must be a positive learning rate, got {o.lr!r}")
        self.ipc: int = o.ipc
        ref = o.protocol or default_protocol(o.dataset, o.method_protocol)
        plain = resolve_protocol(ref, None, self.session.system, dataset=o.dataset, ipc=o.ipc)
        given = resolve_protocol(ref, o.overrides, self.session.system, dataset=o.dataset, ipc=o.ipc) \
            if any(str(k).startswith("follows") for k in o.overrides) else plain  # --set follows.*: its mapping
        self.protocol: Protocol = resolve_protocol(ref, o.protocol_overrides(include_lr=False, protocol=given),
                                                   self.session.system, dataset=o.dataset, ipc=o.ipc)
        self._protocol_notes: list[str] = []  # said once, before the first work (announce_protocol)
        changed = override_changes(plain, self.protocol)
        if changed:  # every setting an override changed, the followed ones included (one line)
            self._protocol_notes.append(f"protocol {self.protocol.name}: overrides set {'; '.join(changed)}")
        if self.protocol.cell is not None:
            self._protocol_notes.append(f"protocol {self.protocol.name}: its cell {self.protocol.cell} applies; "
                                        "--set KEY overrides it")
        elif self.protocol.cells:
            self._protocol_notes.append(
                f"warning: protocol {self.protocol.name} has no cell for {o.dataset} IPC {o.ipc}, so its own values "
                f"apply; it has cells for {', '.join(c.split(':')[0] for c in self.protocol.cells)}")
        self.resources = resources or Resources(
            self.session, self.protocol, dataset=o.dataset, seed=o.seed, device=o.device, zca=bool(o.zca),
            download=o.download, teacher=o.teacher, arch=o.arch, arch_params=o.arch_params, executor=o.executor,
            executor_options=o.executor_options, job_cache=o.job_cache)
        self.seed = self.resources.seed
        self._check_names()  # a misspelt name fails here, before any distillation or training
        self.want_ars = bool(self.protocol.metrics.ars if o.ars is None else o.ars)
        self.metrics: list[ChosenMetric] = choose_metrics(
            self.session.system, [*self.protocol.metrics.extra, *o.metrics], o.metric_params)

    def announce_protocol(self) -> None:
        """Log, once, what the overrides changed in the protocol and which cell applies: before a
        distillation starts (``ddr run``) or once the set to evaluate passed its checks, so a bad
        input's error is the first thing a command prints."""
        for note in self._protocol_notes:
            self.session.log(note)
        self._protocol_notes = []

    def _check_names(self) -> None:
        """Resolve the label strategy and loss the options name."""
        from ddr.engine.build import loss_spec

        o, system = self.options, self.session.system
        if o.label_strategy is not None and o.label_strategy not in system.losses():
            system.label_strategies().resolve(o.label_strategy)
        if o.loss is not None:
            loss_spec(o.loss, system=system)

    @property
    def workspace(self) -> "Workspace":
        """What this evaluation's jobs resolve against (the resources' workspace at this IPC)."""
        return self.resources.workspace(self.ipc)

    # -- plan ------------------------------------------------------------------------------------
    def plan(self, distilled: "DistilledSet", strategy: str, loss: Any, sha256: str) -> "Plan":
        from ddr.engine.build import label_strategy_spec
        from ddr.protocol.plan import PlanInputs, build_plan

        r = self.resources
        spec = label_strategy_spec(strategy, system=r.system)
        arch, arch_params = r.student_arch()
        teacher_arch, teacher_params = r.teacher_arch()
        inputs = PlanInputs(
            seed=self.seed, ipc=self.ipc, distilled_sha256=sha256, has_soft_labels=distilled.soft_labels is not None,
            learned_lr=distilled.lr, strategy=strategy, loss=loss, strategy_soft=spec.soft,
            strategy_teacher=spec.needs_teacher, arch=arch, arch_params=arch_params, teacher_arch=teacher_arch,
            teacher_arch_params=teacher_params, train=self.protocol.train,
            real=r.real_recipe(), lr_override=self.options.lr, ars=self.want_ars,
            context={**r.job_context(), "teacher": r.teacher_identity()},
            metrics=tuple({**m.ref(), "roles": list(m.spec.roles)} for m in self.metrics if m.spec.needs == "student"),
        )
        return build_plan(self.protocol, inputs)

    # -- label strategy --------------------------------------------------------------------------
    def resolve_label_strategy(self, distilled: "DistilledSet", method_strategy: str | None = None) -> tuple[str, Any]:
        """(strategy, loss) for acc_syn_any: user choice > the set's own > method's > protocol's.

        A set that stores soft labels but names no strategy (DATM's labels.pt) is evaluated with
        them (``stored_soft``), never silently with hard labels. A loss named as the strategy
        means the natural soft strategy with that loss.
        """
        from ddr.engine.build import label_strategy_spec, loss_spec

        system = self.session.system
        chosen = self.options.label_strategy
        own = distilled.label_strategy or ("stored_soft" if distilled.soft_labels is not None else None)
        if chosen is not None and chosen not in system.label_strategies() and chosen in system.losses():
            return ("stored_soft" if distilled.soft_labels is not None else "teacher"), chosen
        ref = chosen or own or method_strategy or self.protocol.label_strategy
        spec = label_strategy_spec(ref, system=system)
        loss = self.options.loss if self.options.loss is not None else self.protocol.loss
        if not spec.soft and loss is not None and self.options.loss is None:
            loss = None  # the protocol's soft loss does not apply to hard labels
        if loss is not None:
            loss_spec(loss, system=system)  # a misspelt loss fails here, before any training
        if spec.needs_soft_labels and distilled.soft_labels is None:  # would fail at the first syn_any batch
            raise DistilledSetError(
                f"label strategy '{ref}' needs soft labels stored with the distilled set, but this set "
                "has none; evaluate it with --label-strategy hard, or --label-strategy teacher to have a teacher "
                "label every batch"
            )
        return ref, loss

    def _checked(self, distilled: "DistilledSet", resize: bool) -> "DistilledSet":
        """``distilled`` validated against the dataset (shape, classes, IPC, pixel space)."""
        from ddr.method.distilled import validate_distilled

        ds = self.resources.dataset
        distilled = validate_distilled(distilled, num_classes=ds.num_classes, ipc=self.ipc, channels=ds.channels,
                                       image_size=(ds.image_size[0], ds.image_size[1]), mean=ds.mean, std=ds.std,
                                       resize=resize)
        if distilled.pixel_space != ds.pixel_space:
            raise DdrError(
                f"the distilled set is in '{distilled.pixel_space}' pixel space but the dataset is loaded in "
                f"'{ds.pixel_space}'; evaluate ZCA sets with --zca (or convert the images)"
            )
        return distilled

    # -- plan → execute → score ------------------------------------------------------------------
    def evaluate(self, distilled: "DistilledSet", *, method_strategy: str | None = None,
                 resize: bool = False, run_spec: Mapping[str, Any] | None = None,
                 students: Sequence[int] | None = None) -> EvaluationResult:
        """Evaluate one distilled set (validated first) and return the scores. ``students``: train
        and score only the students at these indices (the reference always), each with its own seed
        and key, as ``ddr verify --students K`` does; ``None``: all ``num_eval``."""
        from ddr.engine.data import Split
        from ddr.method.distilled import distilled_sha256
        from ddr.protocol.score import metric_scores, ordered_results, score

        start = time.perf_counter()
        r, session = self.resources, self.session
        distilled = self._checked(distilled, resize)
        self.announce_protocol()
        sha = distilled_sha256(distilled)
        strategy, loss = self.resolve_label_strategy(distilled, method_strategy)
        plan = self.plan(distilled, strategy, loss, sha)
        if students is not None:
            plan = plan.restricted(students)

        soft = distilled.soft_labels.to(r.device) if distilled.soft_labels is not None else None
        self.workspace.add_distilled(sha, Split(labels=distilled.labels.to(r.device),
                                                images=distilled.images.to(r.device)), soft)
        reused: dict[str, int] = {}
        session.stage(f"reference · {r.dataset.name} · {plan.real.arch}")
        results = r.run_jobs([plan.real], self.ipc, reused)
        session.stage(f"students · {len(plan.students)} jobs · {plan.students[0].arch if plan.students else ''}")
        results.update(r.run_jobs(list(plan.students), self.ipc, reused))
        if reused:
            r.log("reused from the job cache: " + ", ".join(f"{n} {role}" for role, n in sorted(reused.items())))

        metrics = self.protocol.metrics
        scores, ars = score(plan, results, w=metrics.w, lam=metrics.lam, compat=metrics.ddranking_compat_percent)
        scores.update(metric_scores(plan, results, {m.spec.name: (m.spec.roles, m.spec.outputs)
                                                    for m in self.metrics if m.spec.needs == "student"}))
        scores.update(accuracy_metric_scores([m for m in self.metrics if m.spec.needs == "accuracies"], scores,
                                             self.session.system))
        return EvaluationResult(
            scores=scores, ars=ars, protocol=self.protocol.name, protocol_version=self.protocol.version,
            seed=self.seed, distilled_sha256=sha, test_set_selection=self.protocol.test_set_selection,
            students=ordered_results(plan, results)[1:], reference=results[plan.real.key],
            run_spec={**dict(run_spec or {}), **self.describe(strategy, loss)},
            eval_seconds=time.perf_counter() - start, reused=reused,
        )

    def describe(self, strategy_ref: str | None = None, loss: Any = None) -> dict[str, Any]:
        """The resolved settings, for ``run_spec.json``."""
        r, o = self.resources, self.options
        arch, params = r.student_arch()
        return {
            "dataset": o.dataset, "ipc": self.ipc, "arch": arch, "arch_params": params,
            "protocol": self.protocol.name, "protocol_version": self.protocol.version,
            "protocol_overrides": o.protocol_overrides(protocol=self.protocol), "protocol_config": self.protocol.to_dict(),
            "label_strategy": strategy_ref, "loss": loss, "seed": self.seed, "device": str(r.device),
            "lr_override": o.lr, "ars": self.want_ars, "executor": o.executor,
            "teacher": str(r.teacher_path) if r.teacher_path else None, "zca": bool(o.zca),
            # the file's content, which the jobs' keys hold: a bundle carries it, `ddr verify` checks it
            **({"teacher_sha256": r.teacher_sha256} if r.teacher_sha256 else {}),
            **({"metrics": [m.ref() for m in self.metrics]} if self.metrics else {}),
        }


@dataclass(frozen=True)
class ChosenMetric:
    """A metric a run reports beyond the built-in scores, with its resolved parameters."""

    spec: "MetricSpec"
    params: Mapping[str, Any]

    def ref(self) -> dict[str, Any]:
        """``{"name", "version", "params"}``: what a job and a record name it by."""
        return {"name": self.spec.name, "version": self.spec.version, "params": dict(self.params)}


def metric_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Dotted overrides -> (the rest, ``{metric: {KEY: value}}`` from ``metric.NAME.KEY``)."""
    rest: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if not key.startswith("metric."):
            rest[key] = value
            continue
        parts = key.split(".", 2)
        if len(parts) < 3 or not parts[1] or not parts[2]:
            raise ConfigError(f"--set {key}: a metric parameter is metric.NAME.KEY=VALUE (e.g. "
                              "metric.robust_pgd.epsilon=0.1)")
        metrics.setdefault(parts[1], {})[parts[2]] = value
    return rest, metrics


def choose_metrics(system: Any, refs: Sequence[str], overrides: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> list[ChosenMetric]:
    """The metrics named by ``refs`` (``name[.preset]``; unknown names get a did-you-mean), their
    parameters checked, each once; the built-in scores (computed for every run) are skipped."""
    chosen: dict[str, ChosenMetric] = {}
    overrides = dict(overrides or {})
    for ref in refs:
        resolved = system.metrics().resolve(str(ref))
        spec = resolved.spec
        if spec.builtin_score:
            continue
        if spec.needs == "board":
            raise ConfigError(f"metric '{spec.name}' compares the runs of one leaderboard cell, so no single run "
                              f"computes it; `ddr leaderboard` shows it (see `ddr describe metric {spec.name}`)")
        params = spec.check_params({**resolved.params, **dict(overrides.get(spec.name) or {})})
        if spec.name in chosen and dict(chosen[spec.name].params) != params:
            raise ConfigError(f"metric '{spec.name}' is asked for twice with different parameters "
                              f"({dict(chosen[spec.name].params)} and {params}); name it once")
        chosen[spec.name] = ChosenMetric(spec, params)
    unknown = sorted(set(overrides) - set(chosen))
    if unknown:
        raise ConfigError(f"--set metric.{unknown[0]}.KEY given, but metric '{unknown[0]}' is not reported; add "
                          f"--metric {unknown[0]}")
    return list(chosen.values())


def accuracy_metric_scores(metrics: Sequence[ChosenMetric], scores: Mapping[str, "Summary"], system: Any
                           ) -> dict[str, "Summary"]:
    """Metrics computed from other scores per student index (``needs="accuracies"``):
    ``target(*inputs of student i, **params)``, then summarised."""
    from ddr.protocol.metrics import summarize

    out: dict[str, Summary] = {}
    for m in metrics:
        missing = [name for name in m.spec.inputs if name not in scores and name not in out]
        if missing:
            raise ConfigError(f"metric '{m.spec.name}' needs {missing}, which this run does not compute "
                              "(ARS's inputs need --ars)")
        columns = [(out.get(name) or scores[name]).values for name in m.spec.inputs]
        if len({len(c) for c in columns}) != 1:
            raise DdrError(f"metric '{m.spec.name}': its inputs {list(m.spec.inputs)} have different numbers of "
                           "values (one per student)")
        target = system.metrics().materialize(m.spec)
        out[m.spec.name] = summarize([float(target(*row, **dict(m.params))) for row in zip(*columns)],
                                     m.spec.name)
    return out


def external_set(distilled: Any) -> dict[str, Any]:
    """What ``metrics.json`` says of a set evaluated from outside (``ddr eval``): the method its
    ``meta.json`` names (``None`` when it names none; the run spec's ``source`` says where it was
    read from). Boards label the run by it, marked as external
    (:func:`ddr.store.results.external_label`)."""
    meta = getattr(distilled, "meta", None) or {}
    method = meta.get("method") if isinstance(meta, dict) else None
    return {"method": str(method) if method else None}


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
    progress: "Callable[[dict[str, Any]], None] | None" = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate a distilled set (object or path) and return an :class:`EvaluationResult`.

    ``options`` are :class:`EvalOptions` fields (``arch``, ``label_strategy``, ``seed``,
    ``num_eval``, ``epochs``, ``lr``, ``overrides``, ``device``, ``teacher``, ``ars``, ...). With
    ``out``, a run record (``run_spec.json``, ``metrics.json``, ``env.json``) is written there.
    Progress (each job as it finishes, cached or trained) goes to the ``ddr.progress`` logger and,
    when given, to ``progress(event)`` (:mod:`ddr.resources.progress`).
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
    from ddr.resources.progress import listening

    with listening(progress):
        result = evaluator.evaluate(distilled, resize=resize)
    from ddr.runs.cost import evaluation_cost  # what `ddr eval` records: the evaluation's cost and storage

    result.extra["cost"] = evaluation_cost(result, distilled, evaluator.resources, None)
    result.extra["external_set"] = external_set(distilled)
    if out is not None:
        from ddr.store.records import record_folder, run_id_of, write_records

        identity = {**result.run_spec, "distilled_sha256": result.distilled_sha256}
        folder = record_folder(Path(out), f"eval-{dataset}-ipc{ipc}-seed{evaluator.seed}", identity)
        result.record_dir = str(write_records(folder, result, session.system,
                                              extra_metrics={"run_id": run_id_of(identity)}).resolve())
    return result
