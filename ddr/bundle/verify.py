"""``ddr verify FILE``: re-run a bundle's evaluations here and say, per quantity, whether they reproduce.

For each run of the bundle (every run, or ``run=``):

1. The bundled distilled set is loaded (safetensors only, checked against its hash) and evaluated
   through ddr's normal evaluation path (:class:`ddr.runs.evaluate.Evaluator`, as ``ddr eval``
   does) under the protocol **recorded in the bundle** (its resolved ``protocol_config``, written
   to a YAML file, not the version installed here), with the recorded dataset, IPC, run seed,
   student architecture, label strategy, loss, ZCA, LR override and metrics.
2. Before anything trains, the plan is rebuilt and its jobs' keys compared with the recorded ones
   (on another device type, as they would be on the recorded one): the same seeds, data, recipes
   and label strategy, or the run **could not be verified** (:class:`CannotVerify`, exit 3).
3. What is re-run: the real-data reference (the full-data baseline, always) and, for each chosen
   student index (all of them, or a seeded sample of ``students``), every job of that index:
   ``syn_hard``, ``syn_any``, the random-subset baseline ``rdm_any`` (the same class-balanced subset,
   redrawn from the same seed) and ARS's jobs when the run had them. Every job trains from scratch
   in a fresh temporary cache (nothing is read from this machine's cache), so a job shared by
   several runs of a suite bundle (the reference, the random subsets) trains once per verification.
4. The re-run is compared with the record (:mod:`ddr.bundle.compare`): bit-identical when this
   machine is of the recorded kind (:mod:`ddr.bundle.machine`), the executor is the recorded one
   (or ``local`` for ``ray``) and, on a GPU, the run asked for deterministic algorithms; else within
   the stated statistical tolerance.
5. ``distill=True`` also re-runs the method's distillation (its plugin must be installed here) with
   the recorded parameters and seed, and compares the new set's content hash with the bundled one
   (counted only on a machine of the recorded kind).

Exit statuses of the command: 0 verified, 1 not verified (a quantity did not reproduce), 3 could
not verify (a plugin, dataset or teacher file missing here, a plan this ddr rebuilds differently),
2 a refused bundle or bad arguments.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.bundle.compare import EXACT, Check, Comparison, compare
from ddr.bundle.container import refuse
from ddr.bundle.contents import Bundle, BundledRun, open_bundle
from ddr.bundle.machine import describe, device_type, differences, machine_kind
from ddr.bundle.manifest import teacher_sha256
from ddr.errors import ConfigError, DataError, DdrError, PluginLoadError, UnknownComponentError

if TYPE_CHECKING:  # pragma: no cover
    from ddr.protocol.plan import Plan
    from ddr.resources.session import Session
    from ddr.runs.evaluate import EvalOptions, Evaluator

BIT_IDENTICAL_EXECUTORS = ("local", "ray")
"""Executors whose numbers are the local executor's bit for bit (README: "Running on Ray")."""
EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_CANNOT_VERIFY = 0, 1, 3


class CannotVerify(DdrError):
    """The bundle is fine but cannot be re-run here (a missing plugin, dataset or teacher file, a
    plan this ddr rebuilds differently); ``ddr verify`` exits 3."""

    exit_code = EXIT_CANNOT_VERIFY


@dataclass
class RunVerification:
    """What re-running one run of a bundle showed.

    Attributes:
        run_id, label: the run; indices: the student indices re-run (of ``num_eval``).
        mode: ``bit-identical`` or ``statistical``; why: the reason for the mode.
        recorded_machine, machine: the two machine kinds (:func:`ddr.bundle.machine.machine_kind`).
        comparison: the checks; distill: the re-distillation's check (``None`` without ``--distill``).
        notes: what else the reader should know; seconds: wall time of the re-run.
    """

    run_id: str
    label: str
    indices: list[int]
    num_eval: int
    mode: str
    why: str
    recorded_machine: dict[str, Any]
    machine: dict[str, Any]
    comparison: Comparison
    distill: Check | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    recorded: dict[str, Any] = field(default_factory=dict, repr=False)
    """The run's recorded ``metrics.json`` (what a verified mark vouches for)."""

    @property
    def verified(self) -> bool:
        return self.comparison.reproduced and (self.distill is None or self.distill.reproduces is not False)

    @property
    def checks(self) -> list[Check]:
        return [*self.comparison.checks, *([self.distill] if self.distill is not None else [])]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "label": self.label, "students": self.indices, "num_eval": self.num_eval,
                "mode": self.mode, "why": self.why, "rules": self.comparison.rules(),
                "recorded_machine": self.recorded_machine, "machine": self.machine,
                "checks": [c.to_dict() for c in self.checks], "verified": self.verified, "notes": self.notes,
                "seconds": round(self.seconds, 3)}

    def summary(self) -> dict[str, Any]:
        """What the results database keeps of a verification (``provenance.verification``)."""
        counted = [c for c in self.checks if c.reproduces is not None]
        return {"verified": self.verified, "mode": self.mode, "students": self.indices, "num_eval": self.num_eval,
                "quantities": len(counted), "reproduced": sum(bool(c.reproduces) for c in counted),
                "distill": None if self.distill is None else self.distill.reproduces,
                "machine": describe(self.machine)}


@dataclass
class BundleVerification:
    """Every run's :class:`RunVerification`, with the bundle's ``path``, ``sha256`` and
    ``manifest_sha256`` and the ``options`` it was verified with."""

    path: Path
    sha256: str
    manifest_sha256: str
    runs: list[RunVerification]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.runs) and all(r.verified for r in self.runs)

    @property
    def exit_status(self) -> int:
        return EXIT_VERIFIED if self.verified else EXIT_NOT_VERIFIED

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": str(self.path), "sha256": self.sha256, "manifest_sha256": self.manifest_sha256,
                "verified": self.verified, "options": self.options, "runs": [r.to_dict() for r in self.runs]}


def sample_indices(num_eval: int, students: int | None, seed: int = 0) -> list[int]:
    """The student indices to re-run: all ``num_eval`` (``students`` None or ≥ ``num_eval``), else a
    sample of ``students`` drawn with ``random.Random(seed)``, sorted."""
    if students is None or students >= num_eval:
        return list(range(num_eval))
    if students < 1:
        raise ConfigError(f"--students must be at least 1, got {students}")
    return sorted(random.Random(seed).sample(range(num_eval), students))


@contextmanager
def fresh_cache() -> Iterator[Path]:
    """Point ``DDR_CACHE_DIR`` at a new temporary folder (datasets stay where they are read from),
    so every job trains again; restored and removed on exit."""
    from ddr.store.paths import CACHE_DIR_ENV, DATA_DIR_ENV, data_dir

    previous = {name: os.environ.get(name) for name in (CACHE_DIR_ENV, DATA_DIR_ENV)}
    folder = Path(tempfile.mkdtemp(prefix="ddr-verify-"))
    os.environ[DATA_DIR_ENV] = str(data_dir())
    os.environ[CACHE_DIR_ENV] = str(folder / "cache")
    try:
        yield folder
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)


def _chosen_device(recorded: str, asked: str | None) -> str | None:
    if asked is not None:
        return asked
    if recorded == "cuda":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return recorded if recorded == "cpu" else None


def _teacher_file(bundle: Bundle, run: BundledRun) -> str | None:
    """The teacher checkpoint file the run was given: the bundle's copy, else the recorded path when a
    file there still has the recorded sha256; ``None`` when the run had none. :class:`CannotVerify`
    when neither is there."""
    spec = run.run_spec
    recorded = spec.get("teacher")
    if not recorded:
        return None
    if run.teacher is not None:
        from ddr.engine.teachers import read_state_dict

        path = bundle.teachers[teacher_sha256(run.teacher)]
        try:  # read as --teacher reads a file (tensors only); its refusal names the member, not a temporary path
            read_state_dict(path)
        except DdrError as exc:
            raise refuse(bundle.path, f"member {run.teacher!r} is not a usable teacher checkpoint: "
                                      f"{str(exc).splitlines()[0].replace(str(path), 'it')}") from None
        return str(path)
    from ddr.store.hashing import sha256_file
    from ddr.store.paths import path_kind

    wanted = spec.get("teacher_sha256")
    if path_kind(str(recorded), what="teacher checkpoint", error=CannotVerify) == "file" and (
            not wanted or sha256_file(Path(str(recorded))) == wanted):
        return str(recorded)
    raise CannotVerify(f"could not verify run {run.run_id[:10]} ({run.label}): it used the teacher checkpoint "
                       f"{recorded}{f' (sha256 {str(wanted)[:16]}…)' if wanted else ''}, which this bundle does not "
                       "carry (it was gone or changed when the bundle was exported); place that file there and verify "
                       "again")


def _options(run: BundledRun, protocol_file: Path, *, executor: str, executor_options: Mapping[str, Any],
             device: str | None, download: bool, teacher: str | None) -> "EvalOptions":
    from ddr.runs.evaluate import EvalOptions

    spec = run.run_spec
    metric_refs = [m for m in spec.get("metrics") or [] if isinstance(m, Mapping) and m.get("name")]
    return EvalOptions(
        dataset=str(spec["dataset"]), ipc=int(spec["ipc"]), seed=int(spec.get("seed") or 0),
        protocol=str(protocol_file), arch=spec.get("arch"), arch_params=dict(spec.get("arch_params") or {}),
        label_strategy=spec.get("label_strategy"), loss=spec.get("loss"), lr=spec.get("lr_override"),
        device=device, teacher=teacher, ars=bool(spec.get("ars")), zca=bool(spec.get("zca")),
        download=download, executor=executor, executor_options=dict(executor_options),
        metrics=tuple(str(m["name"]) for m in metric_refs),
        metric_params={str(m["name"]): dict(m.get("params") or {}) for m in metric_refs})


def keys_on(plan: "Plan", device: str) -> dict[tuple[str, int], str]:
    """The keys ``plan``'s jobs would have on device type ``device`` (the device type is part of a
    job's context, and the reference's key part of a teacher-based job's)."""
    real = replace(plan.real, context={**plan.real.context, "device": device}, key="")
    out = {("real", 0): real.key}
    for job in plan.students:
        context = {**job.context, "device": device}
        if str(context.get("teacher", "")).startswith("reference:"):
            context["teacher"] = "reference:" + real.key
        out[(job.role, job.index)] = replace(job, context=context, key="").key
    return out


def _check_plan(run: BundledRun, plan: "Plan", device: str) -> None:
    """:class:`CannotVerify` unless the rebuilt plan has the recorded jobs (keys and seeds)."""
    recorded = {("real", 0): run.metrics.get("reference") or {}}
    recorded.update({(str(s.get("role")), int(s.get("index") or 0)): s for s in run.metrics.get("students") or []
                     if isinstance(s, Mapping)})
    rebuilt = keys_on(plan, device)
    seeds = {("real", 0): plan.real.seed, **{(j.role, j.index): j.seed for j in plan.students}}
    if set(recorded) != set(rebuilt):
        extra = sorted(set(rebuilt) ^ set(recorded))
        raise CannotVerify(f"could not verify run {run.run_id[:10]} ({run.label}): this ddr plans other jobs than the "
                           f"record lists ({', '.join(f'{r} #{i}' for r, i in extra[:4])} differ); verify with the ddr "
                           f"version that ran it ({(run.env.get('ddr') or {}).get('version')})")
    for job, record in sorted(recorded.items()):
        if record.get("seed") != seeds[job] or record.get("key") != rebuilt[job]:
            what = "seed" if record.get("seed") != seeds[job] else "key (its recipe, data or context)"
            raise CannotVerify(f"could not verify run {run.run_id[:10]} ({run.label}): job {job[0]} #{job[1]} rebuilt "
                               f"from the bundle has another {what} than the recorded one; this ddr "
                               f"({_version()}) plans it differently from the one that ran it "
                               f"({(run.env.get('ddr') or {}).get('version')}): verify with that version")


def _version() -> str:
    import ddr

    return ddr.__version__


def _method_choice(run: BundledRun, options: "EvalOptions", session: "Session") -> Any:
    """The run's method resolved here with its recorded parameters (before anything trains), or
    :class:`CannotVerify` naming the plugin the bundle says it came from."""
    from ddr.runs.distill import resolve_method

    spec = run.run_spec
    method = str(spec["method"])
    plugin = (run.resolved.get("method") or {}).get("plugin") or {}
    try:
        return resolve_method(session.system, method, options.dataset, dict(spec.get("method_params") or {}),
                              ipc=options.ipc)
    except (UnknownComponentError, PluginLoadError, ConfigError) as exc:
        where = (f" (the bundle names plugin '{plugin.get('name')}', distribution {plugin.get('distribution')} "
                 f"{plugin.get('version')})" if plugin.get("name") else "")
        raise CannotVerify(f"could not verify run {run.run_id[:10]} ({run.label}) with --distill: method '{method}' "
                           f"cannot be used here{where}: {str(exc).splitlines()[0]}; install the method's plugin, or "
                           "verify without --distill") from None


def _distill_check(run: BundledRun, choice: Any, evaluator: "Evaluator", options: "EvalOptions",
                   session: "Session", exact: bool) -> Check:
    """Re-run the method's distillation and compare the set's content hash with the bundled one."""
    from ddr.method.distilled import distilled_sha256
    from ddr.runs.distill import distill
    from ddr.runs.evaluate import Evaluator

    spec = run.run_spec
    distiller = evaluator
    distill_arch = spec.get("distill_arch")
    if distill_arch and distill_arch != spec.get("arch"):
        distiller = Evaluator(replace(options, arch=None, arch_params={}), session=session)
        if distiller.resources.student_arch()[0] != distill_arch:
            distiller = Evaluator(replace(options, arch=str(distill_arch), arch_params={}), session=session)
    session.stage(f"distill · {choice.name} · {options.dataset} · IPC {options.ipc} · seed {options.seed}")
    outcome = distill(choice, distiller.resources, distiller.ipc, use_cache=False)
    found, wanted = distilled_sha256(outcome.distilled), run.distilled_sha256
    rule = "same content sha256" + ("" if outcome.key == spec.get("distill_key") else
                                     " (note: its inputs' key differs from the recorded one)")
    if not exact:
        return Check("distilled set (re-distilled), content sha256", wanted[:16], found[:16],
                     "not counted: a set distilled on another kind of machine is not expected to be bit-identical",
                     None)
    return Check("distilled set (re-distilled), content sha256", wanted[:16], found[:16], rule, found == wanted)


def _verify_run(bundle: Bundle, run: BundledRun, workdir: Path, session: "Session", *, students: int | None,
                sample_seed: int, executor: str, executor_options: Mapping[str, Any], device: str | None,
                distill: bool, download: bool) -> RunVerification:
    import yaml

    from ddr.method.distilled import distilled_sha256
    from ddr.runs.evaluate import Evaluator
    from ddr.store.envinfo import environment_info

    start = time.perf_counter()
    spec = run.run_spec
    config = spec.get("protocol_config")
    if not isinstance(config, Mapping) or spec.get("dataset") is None or spec.get("ipc") is None:
        raise CannotVerify(f"could not verify run {run.run_id[:10]}: its run_spec.json lacks the resolved protocol, "
                           "the dataset or the IPC (written by an older ddr)")
    teacher = _teacher_file(bundle, run)
    recorded_device = device_type(spec.get("device") or (run.env.get("cuda") or {}).get("device"))
    protocol_file = workdir / f"protocol-{run.run_id[:16]}.yaml"
    protocol_file.write_text(yaml.safe_dump(dict(config), sort_keys=True), encoding="utf-8")
    options = _options(run, protocol_file, executor=executor, executor_options=executor_options,
                       device=_chosen_device(recorded_device, device), download=download, teacher=teacher)
    evaluator = Evaluator(options, session=session)
    if evaluator.protocol.to_dict() != dict(config):
        raise CannotVerify(f"could not verify run {run.run_id[:10]} ({run.label}): the protocol recorded in the bundle "
                           f"does not load back to itself in this ddr ({_version()}); verify with the ddr version "
                           f"that ran it ({(run.env.get('ddr') or {}).get('version')})")
    distilled = bundle.load_set(run.distilled_sha256)
    strategy, loss = evaluator.resolve_label_strategy(distilled)
    plan = evaluator.plan(distilled, strategy, loss, distilled_sha256(distilled))
    _check_plan(run, plan, recorded_device)
    num_eval = plan.num_eval
    indices = sample_indices(num_eval, students, sample_seed)
    choice = _method_choice(run, options, session) if distill and run.is_distillation else None

    here_device = str(evaluator.resources.device)
    recorded_machine = machine_kind(run.env, spec.get("device"))
    machine = machine_kind(environment_info(device=here_device), here_device)
    differ = differences(recorded_machine, machine)
    recorded_executor = str(spec.get("executor") or "local")
    same_executor = executor == recorded_executor or (executor in BIT_IDENTICAL_EXECUTORS
                                                      and recorded_executor in BIT_IDENTICAL_EXECUTORS)
    deterministic = bool((run.env.get("determinism") or {}).get("deterministic_algorithms"))
    # on a GPU, kernels such as cuDNN's convolution gradients may sum in any order: only a run that
    # asked for deterministic algorithms (--deterministic) is bit-identical there, even on one machine
    gpu_nondeterministic = recorded_machine.get("device") == "cuda" and not deterministic
    exact = not differ and same_executor and not gpu_nondeterministic
    if exact:
        why = f"this machine is of the recorded kind ({describe(machine)})"
    elif differ:
        why = "this machine differs from the recorded one: " + "; ".join(differ)
    elif not same_executor:
        why = f"executor '{executor}' is not bit-identical to the recorded '{recorded_executor}'"
    else:
        why = ("the run trained on a GPU without --deterministic, so even this machine of its kind need not give "
               "the same bits")
    notes = []
    if students is not None and len(indices) < num_eval:
        notes.append(f"students {', '.join(map(str, indices))} of 0..{num_eval - 1} re-run (a sample of {students}, "
                     f"seed {sample_seed}); the reference always")
    restore = _determinism(deterministic)
    try:
        session.stage(f"verify · {run.label}")
        result = evaluator.evaluate(distilled, students=indices)
        comparison = compare(run.metrics, result.metrics_record(), indices, exact=exact)
        check = None
        if distill:
            if choice is not None:
                check = _distill_check(run, choice, evaluator, options, session, exact)
            else:
                notes.append("--distill: nothing to distil (the run evaluated a set made elsewhere, `ddr eval`)")
    finally:
        restore()
    if result.reused:
        notes.append("jobs shared with an earlier run of this verification (trained once here): "
                     + ", ".join(f"{n} {role}" for role, n in sorted(result.reused.items())))
    return RunVerification(run_id=run.run_id, label=run.label, indices=indices, num_eval=num_eval,
                           mode=EXACT if exact else "statistical", why=why, recorded_machine=recorded_machine,
                           machine=machine, comparison=comparison, distill=check, notes=notes,
                           seconds=time.perf_counter() - start, recorded=dict(run.metrics))


def _determinism(flag: bool) -> Callable[[], None]:
    """Turn torch's deterministic mode on when the run had it; returns what restores the previous mode."""
    if not flag:
        return lambda: None
    import torch

    from ddr.engine.seeds import set_deterministic

    before = bool(torch.are_deterministic_algorithms_enabled())
    set_deterministic(True)

    def restore() -> None:
        if not before:
            set_deterministic(False)

    return restore


def verify_bundle(path: str | Path, *, students: int | None = None, sample_seed: int = 0, executor: str = "local",
                  executor_options: Mapping[str, Any] | None = None, device: str | None = None,
                  distill: bool = False, run: str | None = None, download: bool = False,
                  session: "Session | None" = None,
                  on_run: Callable[[RunVerification], None] | None = None) -> BundleVerification:
    """Re-run the evaluations of the bundle at ``path`` here and compare (see the module doc).

    Args:
        students: re-run this many students per run (a sample drawn with ``sample_seed``); ``None``: all.
        executor, executor_options: how the student jobs run (``local`` by default).
        device: ``cpu`` / ``cuda`` (default: the recorded device type when usable here).
        distill: also re-run each run's distillation and compare the content hash.
        run: only the run with this id (or prefix).
        download: let a torchvision dataset be downloaded when it is not on disk.
        on_run: called with each run's verification as it finishes.

    Raises:
        BundleError: the bundle is refused (a member does not match its manifest, ...).
        CannotVerify: a run cannot be re-run here (exit status 3).
    """
    from ddr.resources.session import Session

    session = session or Session()
    session.system.require_healthy()
    session.system.executors().get(executor)  # a misspelt executor fails before the bundle is read
    reports: list[RunVerification] = []
    with open_bundle(path) as bundle:
        chosen = [bundle.run(run)] if run else list(bundle.runs)
        with fresh_cache() as workdir:
            session.log(f"verify: {len(chosen)} run(s) of {Path(path).name}; every job trains again, in a fresh "
                        "temporary cache (nothing is read from this machine's cache)")
            for item in chosen:
                try:
                    report = _verify_run(bundle, item, workdir, session, students=students, sample_seed=sample_seed,
                                         executor=executor, executor_options=dict(executor_options or {}),
                                         device=device, distill=distill, download=download)
                except (UnknownComponentError, PluginLoadError, DataError) as exc:
                    raise CannotVerify(f"could not verify run {item.run_id[:10]} ({item.label}): "
                                       f"{str(exc).splitlines()[0]}") from None
                reports.append(report)
                if on_run is not None:
                    on_run(report)
        return BundleVerification(path=Path(path), sha256=bundle.sha256, manifest_sha256=bundle.manifest_sha256,
                                  runs=reports, options={"students": students, "sample_seed": sample_seed,
                                                         "executor": executor, "device": device, "distill": distill})
