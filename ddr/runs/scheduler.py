"""Running a suite: every unit once, resumable, failures collected, records into the results DB.

Each unit's record folder is named before it runs (:meth:`ddr.runs.suite.SuiteUnit.folder`)
and written atomically, so after any interruption (Ctrl-C, SIGTERM, ``kill -9``) a folder is
either a complete record or absent. ``resume=True`` skips every unit whose record is complete
(and adds it to the results database again, which keeps one row per run), and runs the rest;
units of one distillation share the distilled set through the cache, finished students through
the job cache. A failing unit is recorded with the plugin and distribution of its method and
the suite goes on (``exit_on_error=True`` stops at the first).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError, DdrError
from ddr.resources.session import Session
from ddr.runs.suite import Suite, SuiteUnit

if TYPE_CHECKING:  # pragma: no cover
    from ddr.execute import RemoteExecutor
    from ddr.runs.evaluate import EvalOptions


@dataclass
class UnitOutcome:
    """What happened to one unit: ``done``, ``skipped`` (complete record found) or ``failed``."""

    unit: SuiteUnit
    status: str
    record_dir: str | None = None
    error: str | None = None
    plugin: str | None = None
    distribution: str | None = None
    seconds: float = 0.0
    ddrs: float | None = None


@dataclass
class SuiteReport:
    """Every unit's outcome; ``interrupted`` holds the Ctrl-C/SIGTERM that stopped the suite."""

    suite: Suite
    outcomes: list[UnitOutcome] = field(default_factory=list)
    interrupted: BaseException | None = None
    total: int = 0

    @property
    def failures(self) -> list[UnitOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_status(self) -> int:
        if self.interrupted is not None:
            return int(getattr(self.interrupted, "exit_code", 130))
        return 1 if self.failures else 0


def record_is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a complete, readable run record."""
    from ddr.store.results import load_record

    if not (folder / "env.json").is_file():
        return False
    try:
        load_record(folder)
    except ArtifactError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete half-written record folders (``.NAME.tmp-PID``) whose writer process is gone."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(".*.tmp-*"):
        pid_text = path.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def unit_options(unit: SuiteUnit, base: "EvalOptions") -> "EvalOptions":
    """The evaluation options of ``unit`` on top of the command's (device, executor, caches)."""
    from dataclasses import replace

    from ddr.runs.evaluate import metric_overrides

    overrides, metric_params = metric_overrides(dict(unit.overrides))
    return replace(base, dataset=unit.dataset, ipc=unit.ipc, seed=unit.seed, protocol=unit.protocol, arch=unit.arch,
                   label_strategy=unit.label_strategy, loss=unit.loss, ars=unit.ars, overrides=overrides,
                   num_eval=None, epochs=None, lr=None, metrics=tuple(unit.metrics), metric_params=metric_params)


def _provenance(session: Session, method: str) -> tuple[str | None, str | None]:
    try:
        spec = session.system.methods().resolve(method).spec
    except DdrError:
        return None, None
    dist, version = session.system.provenance().get(spec.provider or "", ("", ""))
    return spec.provider, f"{dist} {version}".strip() or None


def _write_manifest(suite: Suite, units: list[SuiteUnit], folder: Path) -> None:
    from ddr.store.cache import atomic_write_json
    from ddr.store.writable import fix_for, reason

    try:
        atomic_write_json(folder / "suite.json", {
            "suite": suite.name, "source": suite.path, "description": suite.description,
            "units": [{**u.identity(), "uid": u.uid, "folder": u.folder(folder.parent).name} for u in units],
        })
    except OSError as exc:
        raise ArtifactError(f"cannot write the suite's manifest {folder / 'suite.json'}: {reason(exc)}; "
                            f"{fix_for(exc, folder, 'choose a writable --out DIR')}; records already written "
                            "are kept (rerun with --resume)") from None


class DistillPrefetch:
    """Under an executor that runs work elsewhere (``ray``: it has ``submit``), the distillations
    of the next units are submitted while the current unit is evaluated, as many ahead as the
    cluster runs tasks at once; each unit then collects its own (:attr:`Session.prefetched`).
    Teacher-based methods are not sent ahead (their teacher is trained when their unit runs);
    a unit whose options do not resolve is left to fail with its own message when it runs.
    Under any other executor this does nothing."""

    def __init__(self, session: Session, units: list[SuiteUnit], base: "EvalOptions", out: Path, *,
                 resume: bool, use_cache: bool, timeout: float | None) -> None:
        self.session, self.units, self.base, self.out = session, units, base, out
        self.resume, self.use_cache, self.timeout = resume, use_cache, timeout
        self.executor: RemoteExecutor | None = None
        self.window = 1
        if base.executor != "local":
            from ddr.execute import RemoteExecutor

            executor = session.executor(base.executor, base.executor_options)
            if isinstance(executor, RemoteExecutor):
                from ddr.resources.devices import resolve_device

                self.executor = executor
                self.window = max(1, int(executor.slots(resolve_device(base.device).type)))
        self.considered: set[str] = set()

    def ahead(self, index: int) -> None:
        """Submit the distillations of units ``index``, ``index + 1``, ... (up to the window)."""
        if self.executor is None:
            return
        from ddr.runs.distill import distill_key, submit_distillation
        from ddr.runs.run import prepare_distillation
        from ddr.store.cache import entry_dir

        for unit in self.units[index:index + self.window]:
            if unit.uid in self.considered:
                continue
            self.considered.add(unit.uid)
            if self.resume and record_is_complete(unit.folder(self.out)):
                continue
            try:
                choice, _, evaluator = prepare_distillation(unit.method, unit_options(unit, self.base), self.session,
                                                            dict(unit.params))
                if choice.spec.needs_teacher:
                    continue
                key = distill_key(choice, evaluator.resources, evaluator.ipc)
                if key in self.session.prefetched or (self.use_cache and (entry_dir("distilled", key) /
                                                                           "meta.json").exists()):
                    continue
                self.session.prefetched[key] = submit_distillation(self.executor, choice, evaluator.resources,
                                                                   evaluator.ipc, auto_assets=True,
                                                                   timeout=self.timeout)
            except Exception:  # noqa: BLE001 - the unit fails with its own message when it runs
                continue

    def close(self) -> None:
        """Cancel what no unit collected (an interrupted suite, a unit found in the cache)."""
        for pending in self.session.prefetched.values():
            pending.cancel()
        self.session.prefetched.clear()


@dataclass
class SuiteEstimate:
    """The estimated cost of a suite's units (:mod:`ddr.runs.estimate`): one estimate per unit to
    run, the units kept (``--resume`` with a complete record) and those whose options do not
    resolve (unit label -> message; they fail with it when run)."""

    units: list[tuple[SuiteUnit, Any]] = field(default_factory=list)
    kept: int = 0
    unresolved: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        from ddr.runs.estimate import combine

        text = combine([e for _, e in self.units], kept=self.kept)
        return text + (f"; {len(self.unresolved)} cannot be planned" if self.unresolved else "")


def estimate_suite(suite: Suite, *, session: Session, out: str | Path, base: "EvalOptions", resume: bool = False,
                   use_cache: bool = True, measure: bool = False) -> SuiteEstimate:
    """What each unit of ``suite`` will cost before any runs (nothing is trained or written;
    ``measure``: time what nothing recorded yet, as ``--dry-run`` does)."""
    from ddr.runs.estimate import estimate_run
    from ddr.runs.evaluate import Evaluator
    from ddr.runs.run import prepare_distillation

    report = SuiteEstimate()
    for unit in suite.units():
        if resume and record_is_complete(unit.folder(Path(out))):
            report.kept += 1
            continue
        try:
            choice, options, evaluator = prepare_distillation(unit.method, unit_options(unit, base), session,
                                                              dict(unit.params))
            students = evaluator
            if unit.eval_arch is not None and unit.eval_arch != evaluator.resources.student_arch()[0]:
                from dataclasses import replace

                students = Evaluator(replace(options, arch=unit.eval_arch), session=session)
            estimate = estimate_run(choice, students, use_cache=use_cache, distill_evaluator=evaluator,
                                    measure=measure)
        except DdrError as exc:
            report.unresolved[unit.label] = str(exc).splitlines()[0]
            continue
        estimate.label = unit.label
        report.units.append((unit, estimate))
    return report


def run_suite(suite: Suite, *, session: Session, out: str | Path, base: "EvalOptions", resume: bool = False,
              exit_on_error: bool = False, use_cache: bool = True, timeout: float | None = None,
              announce: Any = None) -> SuiteReport:
    """Run every unit of ``suite`` (records under ``out/<suite>/``, rows in the results DB).

    Records go into ``session.results_db``; ``timeout`` bounds each distillation (seconds).
    ``announce(index, total, outcome)`` is called after each unit (the CLI prints a line).
    Never raises for a failing unit; a Ctrl-C/SIGTERM ends the loop and is returned in
    :attr:`SuiteReport.interrupted` after the finished units are safe on disk.
    """
    from ddr.runs.run import run
    from ddr.store.records import check_writable
    from ddr.store.results import ResultsDB

    units = suite.units()
    folder = Path(out) / suite.name
    check_writable(folder)
    remove_stale_temporaries(folder)
    _write_manifest(suite, units, folder)
    report = SuiteReport(suite=suite, total=len(units))
    prefetch = DistillPrefetch(session, units, base, Path(out), resume=resume, use_cache=use_cache, timeout=timeout)
    with ResultsDB(session.results_db) as db:
        try:
            for index, unit in enumerate(session.progress(units, total=len(units), desc=f"suite {suite.name}")):
                prefetch.ahead(index)
                target = unit.folder(Path(out))
                start = time.perf_counter()
                if resume and record_is_complete(target):
                    db.add_record(target, suite=suite.name, origin="local")
                    outcome = UnitOutcome(unit, "skipped", record_dir=str(target), ddrs=_ddrs(target))
                else:
                    session.stage(f"{index + 1}/{len(units)} {unit.label}")
                    try:
                        result, _ = run(unit.method, options=unit_options(unit, base), session=session,
                                        method_overrides=dict(unit.params), eval_arch=unit.eval_arch, record_dir=target,
                                        spec_extra={"suite": suite.name, "suite_unit": unit.uid}, use_cache=use_cache,
                                        timeout=timeout)
                        outcome = UnitOutcome(unit, "done", record_dir=result.record_dir,
                                              seconds=time.perf_counter() - start, ddrs=result.scores["ddrs"].mean)
                    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM: finished units are on disk and in the DB
                        report.interrupted = exc
                        break
                    except Exception as exc:  # noqa: BLE001 - one faulty plugin fails only its own unit
                        plugin, distribution = _provenance(session, unit.method)
                        message = str(exc) if isinstance(exc, DdrError) else f"{type(exc).__name__}: {exc}"
                        outcome = UnitOutcome(unit, "failed", error=message.splitlines()[0] if message else type(exc).__name__,
                                              plugin=plugin, distribution=distribution, seconds=time.perf_counter() - start)
                        session.log(f"{unit.label} failed: {outcome.error}")
                report.outcomes.append(outcome)
                if announce is not None:
                    announce(index, len(units), outcome)
                if outcome.status == "failed" and exit_on_error:
                    break
        finally:
            prefetch.close()
    return report


def _ddrs(folder: Path) -> float | None:
    import json

    try:
        metrics: Mapping[str, Any] = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        return float(metrics["ddrs"]["mean"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def failure_table(report: SuiteReport) -> str:
    """The failed units: run, plugin and distribution, message."""
    from ddr.report.tabular import text_table

    rows = [[o.unit.label, o.plugin or "?", o.distribution or "?", o.error or ""] for o in report.failures]
    return text_table(["run", "plugin", "distribution", "message"], rows, ["l", "l", "l", "l"])
