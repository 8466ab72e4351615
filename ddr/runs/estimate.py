"""What a run or a suite will cost, known before it is paid (``ddr run --dry-run``, the
``ddr: about N student jobs ≈ T`` line every run prints first).

The cost of an evaluation is its plan's jobs (:func:`ddr.protocol.plan.build_plan`) less the ones
the job cache already holds, each costing epochs × LR candidates × (steps per epoch × seconds per
step) plus a per-candidate overhead (building the network, testing it). The seconds come, in this
order, from the recorded times of similar jobs (:mod:`ddr.store.timings`: same architecture,
dataset, images per epoch, batch, augmentation, label strategy, device type) or, under
``--dry-run``, from a quick measurement on this machine: the job's own training code on one batch of the right size, for 1
and for 6 epochs (a second or two on digits), which gives the overhead and the time of a step.
A distillation costs 0 when its set is cached; otherwise it is estimated from earlier
distillations of the same method on the same dataset in the distilled-set cache (scaled by
``iterations`` when both have them), else said to be unknown.

Everything here is an estimate: the machine's speed changes under load, and tests only check a
factor of 3. No torch at import (torch is imported only when a step is measured).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ddr.protocol.plan import Plan
    from ddr.records.jobs import StudentJob
    from ddr.resources.service import Resources
    from ddr.resources.session import Session
    from ddr.runs.distill import MethodChoice
    from ddr.runs.evaluate import EvalOptions, Evaluator

PLACEHOLDER_SHA = "0" * 64
"""The distilled-set hash planned with before the set exists (its syn jobs cannot be cached)."""

_MEASURED: dict[tuple[Any, ...], tuple[float, float]] = {}
"""Measured (overhead seconds per candidate, seconds per step) by job shape, once per process."""


@dataclass
class RoleCost:
    """The jobs of one role: how many, how many are cached, epochs, images per epoch, LR
    candidates, and the estimated seconds of those still to train (``source``: ``recorded``,
    ``measured``, ``recorded+measured``, or ``-`` when all are cached)."""

    role: str
    jobs: int = 0
    cached: int = 0
    epochs: int = 0
    images: int = 0
    candidates: int = 1
    seconds: float = 0.0
    sources: set[str] = field(default_factory=set)
    unknown: int = 0

    @property
    def source(self) -> str:
        return "+".join(sorted(self.sources)) or "-"

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "jobs": self.jobs, "cached": self.cached, "epochs": self.epochs,
                "images": self.images, "lr_candidates": self.candidates, "seconds": round(self.seconds, 2),
                "source": self.source}


@dataclass
class Estimate:
    """The estimated cost of one evaluation (and its distillation). Seconds are wall time on
    this machine; ``distill_seconds`` is ``None`` when unknown (``distill_note`` says why)."""

    label: str
    roles: list[RoleCost]
    distill_seconds: float | None
    distill_note: str
    expected: dict[tuple[str, int], float] = field(default_factory=dict)

    @property
    def student_jobs(self) -> int:
        return sum(r.jobs for r in self.roles if r.role != "real")

    @property
    def reused(self) -> int:
        return sum(r.cached for r in self.roles if r.role != "real")

    @property
    def reference_to_train(self) -> bool:
        return any(r.role == "real" and r.cached < r.jobs for r in self.roles)

    @property
    def jobs_seconds(self) -> float:
        return sum(r.seconds for r in self.roles)

    @property
    def unknown_jobs(self) -> int:
        """Jobs to train whose time nothing recorded yet (a run that does not measure)."""
        return sum(r.unknown for r in self.roles)

    @property
    def seconds(self) -> float | None:
        """Jobs plus distillation (``None`` when the distillation's cost is unknown)."""
        return None if self.distill_seconds is None else self.jobs_seconds + self.distill_seconds

    def line(self) -> str:
        """``about 15 student jobs ≈ 12 min on this machine (5 reused from the cache); distillation cached``."""
        return describe(self.student_jobs, self.reused, self.jobs_seconds, self.reference_to_train,
                        self.distill_note, self.unknown_jobs)

    def table(self) -> str:
        """The plan: one row per role (jobs, cached, epochs, images per epoch, LR candidates, seconds)."""
        from ddr.report.tabular import text_table

        rows = [[r.role, str(r.jobs), str(r.cached), str(r.epochs), str(r.images), str(r.candidates),
                 f"{r.seconds:.1f}", r.source] for r in self.roles]
        return text_table(["role", "jobs", "cached", "epochs", "images/epoch", "LR candidates", "est. seconds",
                           "from"], rows, ["l", "r", "r", "r", "r", "r", "r", "l"])

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "roles": [r.to_json() for r in self.roles], "student_jobs": self.student_jobs,
                "reused": self.reused, "jobs_seconds": round(self.jobs_seconds, 2),
                "distill_seconds": None if self.distill_seconds is None else round(self.distill_seconds, 2),
                "distill": self.distill_note, "line": self.line()}


def format_seconds(seconds: float) -> str:
    """``8 s``, ``12 min``, ``3.5 h``."""
    if seconds < 90:
        return f"{max(seconds, 0.0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cost_words(seconds: float, unknown: int, to_train: int) -> str:
    """``≈ 12 min on this machine``; says which jobs no recorded time covers (``unknown`` of the
    ``to_train`` jobs), and never gives a time when it covers none of them."""
    if not unknown:
        return f"≈ {format_seconds(seconds)} on this machine"
    if unknown >= to_train:
        return "not yet timed on this machine (`--dry-run` measures them)"
    return f"≈ {format_seconds(seconds)} on this machine, {unknown} not yet timed"


def describe(jobs: int, reused: int, seconds: float, reference: bool, distill_note: str, unknown: int = 0) -> str:
    """The one-line estimate (``unknown``: jobs no recorded time covers yet)."""
    ref = " and the real-data reference" if reference else ""
    cost = cost_words(seconds, unknown, jobs - reused + int(reference))
    return f"about {jobs} student jobs{ref} {cost} ({reused} reused from the cache); distillation {distill_note}"


def combine(estimates: Sequence[Estimate], *, kept: int = 0) -> str:
    """One line for a suite: every unit's jobs and distillations together."""
    jobs = sum(e.student_jobs for e in estimates)
    reused = sum(e.reused for e in estimates)
    seconds = sum(e.jobs_seconds for e in estimates)
    known = [e.distill_seconds for e in estimates if e.distill_seconds is not None]
    unknown = len(estimates) - len(known)
    cached = sum(e.distill_note == "cached" for e in estimates)
    parts = [f"{cached} cached"] if cached else []
    if len(known) > cached:
        parts.append(f"{len(known) - cached} ≈ {format_seconds(sum(known))}")
    if unknown:
        parts.append(f"{unknown} unknown")
    note = ", ".join(parts) or "none"
    head = f"suite: {len(estimates)} runs to do" + (f" ({kept} kept)" if kept else "")
    references = sum(e.reference_to_train for e in estimates)
    cost = cost_words(seconds, sum(e.unknown_jobs for e in estimates), jobs - reused + references)
    return f"{head}; about {jobs} student jobs {cost} ({reused} reused from the cache); distillations: {note}"


# -- jobs ----------------------------------------------------------------------------------------

def estimate_jobs(resources: "Resources", plan: "Plan", ipc: int, *, measure: bool = False
                  ) -> tuple[list[RoleCost], dict[tuple[str, int], float]]:
    """Per role, the jobs of ``plan`` and the estimated seconds of those not in the job cache;
    and the estimate of each job to train by ``(role, index)``. Without ``measure`` a job with no
    recorded similar job is left unknown (``source`` ``unknown``) instead of measured here."""
    from ddr.store.timings import job_signature, read_timings

    cached, _ = resources.jobs.cached(list(plan.jobs), {})
    timings = read_timings()
    roles: dict[str, RoleCost] = {}
    expected: dict[tuple[str, int], float] = {}
    for job in plan.jobs:
        images = resources.job_images(job, ipc)
        epochs = int(job.recipe.epochs or 0)
        cost = roles.setdefault(job.role, RoleCost(job.role, epochs=epochs, images=images,
                                                   candidates=len(job.lr_candidates)))
        cost.jobs += 1
        if job.key in cached:
            cost.cached += 1
            continue
        seconds, source = _job_seconds(resources, job, images, timings.get(job_signature(job.to_dict(), images)),
                                       measure=measure)
        cost.sources.add(source)
        if seconds is None:
            cost.unknown += 1
            continue
        cost.seconds += seconds
        expected[(job.role, job.index)] = seconds
    return list(roles.values()), expected


def _job_seconds(resources: "Resources", job: "StudentJob", images: int,
                 recorded: list[tuple[int, float]] | None, *, measure: bool) -> tuple[float | None, str]:
    """(seconds, source) of one job: from recorded similar jobs, else measured here (``measure``),
    else ``(None, "unknown")``."""
    total_epochs = int(job.recipe.epochs or 0) * len(job.lr_candidates)
    if recorded:
        same = [s for e, s in recorded if e == total_epochs]
        if same:
            return statistics.median(same), "recorded"
        return statistics.median(s / e for e, s in recorded) * total_epochs, "recorded"
    if not measure:
        return None, "unknown"
    overhead, step = measure_step(resources, job, images)
    steps = math.ceil(images / max(1, job.recipe.batch_size))
    return len(job.lr_candidates) * overhead + total_epochs * steps * step, "measured"


def measure_step(resources: "Resources", job: "StudentJob", images: int) -> tuple[float, float]:
    """(overhead seconds per LR candidate, seconds per training step) of ``job`` on this machine.

    Trains the job's network with its recipe, augmentation and (hard) labels on one batch of
    ``min(images, batch_size)`` random pool images, through the job's own code
    (:func:`ddr.execute.student.run_job`), for 1 (twice, the faster kept) and for 6 epochs after a warm-up; nothing is
    stored and the global random state is restored."""
    from dataclasses import replace

    from ddr.records.jobs import DataRef, StudentJob

    batch = min(images, max(1, job.recipe.batch_size))
    classes = int(resources.dataset.num_classes)
    per_class = max(1, math.ceil(batch / classes))
    shape = (job.arch, json.dumps(dict(job.arch_params), sort_keys=True, default=str), per_class,
             json.dumps(list(job.augmentation), sort_keys=True, default=str), job.label_strategy, str(job.loss),
             resources.dataset.name, str(resources.device))
    if shape in _MEASURED:
        return _MEASURED[shape]
    from ddr.errors import DdrError

    try:
        resources.check_ipc(per_class)
    except DdrError:
        per_class = 1
    hard = job.label_strategy == "hard"
    probe = StudentJob(role="rdm_any", index=0, data=DataRef("random", index=0, ipc=per_class), recipe=job.recipe,
                       lr_candidates=(float(job.lr_candidates[0]),), selection="last", test_interval=0,
                       label_strategy=job.label_strategy if hard else "hard", loss=job.loss if hard else None,
                       augmentation=job.augmentation, arch=job.arch, arch_params=job.arch_params, seed=job.seed,
                       needs_teacher=False, context=job.context)
    import torch

    from ddr.execute.student import run_job

    workspace = resources.workspace(per_class)

    def timed(epochs: int) -> float:
        start = time.perf_counter()
        run_job(replace(probe, recipe=replace(job.recipe, epochs=epochs), key=""), workspace)
        return time.perf_counter() - start

    with torch.random.fork_rng(devices=[]):
        timed(1)  # warm-up: first calls, lazy set-up
        one = min(timed(1), timed(1))
        six = timed(6)
    step = max((six - one) / 5, 1e-4)
    overhead = max(one - step, 0.0)
    _MEASURED[shape] = (overhead, step)
    return overhead, step


# -- distillation --------------------------------------------------------------------------------

def distill_estimate(choice: "MethodChoice", resources: "Resources", ipc: int, *, use_cache: bool,
                     measure: bool = False) -> tuple[float | None, str, Path | None]:
    """(seconds or ``None``, what to say, the cached set's folder or ``None``) of a distillation;
    with ``measure`` an unknown one is timed by starting it (:func:`probe_distillation`)."""
    from ddr.runs.distill import distill_key
    from ddr.store.cache import cache_root, entry_dir

    folder = entry_dir("distilled", distill_key(choice, resources, ipc))
    if use_cache and (folder / "meta.json").is_file():
        return 0.0, "cached", folder
    name, dataset = choice.spec.name, resources.dataset.name
    iterations = choice.params.get("iterations")
    samples: list[tuple[float, bool]] = []
    for meta_path in _limited((cache_root() / "distilled").glob("*/*/meta.json"), 500):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8")).get("meta") or {}
            if meta.get("method") != name or meta.get("dataset") != dataset:
                continue
            seconds = float(meta["distill_seconds"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        theirs = meta.get("iterations") or (meta.get("params") or {}).get("iterations")
        if isinstance(iterations, (int, float)) and isinstance(theirs, (int, float)) and theirs > 0:
            seconds = seconds / theirs * iterations
        samples.append((seconds, meta.get("ipc") == ipc))
    if not samples:
        if not measure:
            return None, "unknown (no earlier run here; `--dry-run` times its first iterations)", None
        probed, note = probe_distillation(choice, resources, ipc)
        return probed, note, None
    same_ipc = [s for s, same in samples if same]
    median = statistics.median(same_ipc or [s for s, _ in samples])
    return median, (f"≈ {format_seconds(median)} (from {len(samples)} earlier {name} distillation"
                     f"{'s' if len(samples) != 1 else ''} on {dataset})"), None


PROBE_LIMIT_SECONDS = 20.0
"""A distillation probe that has not reached its main loop's second iteration by then stops."""

_PROBED: dict[str, tuple[float | None, str]] = {}


class _Sampled(BaseException):
    """Raised inside the method once its main loop has been timed (a BaseException, so a
    method's own ``except Exception`` does not swallow it)."""


def probe_distillation(choice: "MethodChoice", resources: "Resources", ipc: int) -> tuple[float | None, str]:
    """(seconds or ``None``, what to say) of a distillation, measured by starting it: the method
    runs, quietly and storing nothing, until its main loop (its first top-level
    ``ctx.progress(..., total=N)``) has run two iterations; the estimate is the time to reach the
    loop plus the first iteration plus N − 1 times the second. A method that finishes first (a
    selection method) is timed whole. Unknown when the method needs a teacher or an asset not yet
    built (nothing is built for an estimate), fails, or takes longer than
    :data:`PROBE_LIMIT_SECONDS` to get there. Once per method, dataset and IPC per process."""
    from dataclasses import replace

    from ddr.runs.distill import distill_key

    key = distill_key(choice, resources, ipc)
    if key in _PROBED:
        return _PROBED[key]
    if choice.spec.needs_teacher and resources.teacher_path is None:
        reference = resources.reference()
        if not resources.jobs.cached([reference], {})[0]:
            _PROBED[key] = (None, "unknown (the method needs the teacher, which trains first)")
            return _PROBED[key]
    import torch

    from ddr.errors import DdrError
    from ddr.runs.deadline import DeadlineExceeded, time_limit
    from ddr.runs.distill import build_context

    marks: list[float] = []
    loop: dict[str, Any] = {"total": None, "depth": 0}

    def progress(iterable: Any, total: int | None = None, desc: str = "", leave: bool = True) -> Any:
        if loop["total"] is not None or loop["depth"] or not total or int(total) < 2:
            return iterable
        return timed(iterable, int(total))

    def timed(iterable: Any, total: int) -> Any:
        loop["total"] = total
        marks.append(time.perf_counter())
        loop["depth"] += 1
        try:
            for item in iterable:
                yield item
                marks.append(time.perf_counter())
                if len(marks) >= 3:
                    raise _Sampled()
        finally:
            loop["depth"] -= 1

    ctx = build_context(resources, params=dict(choice.params), ipc=ipc, auto_assets=False)
    ctx = replace(ctx, progress=progress, log=lambda message: None)
    start = time.perf_counter()
    outcome: tuple[float | None, str]
    try:
        with torch.random.fork_rng(devices=[]), time_limit(PROBE_LIMIT_SECONDS, what="the distillation probe"):
            resources.system.methods().materialize(choice.spec)().distill(ctx)
        outcome = (time.perf_counter() - start, "the method ran to the end")
    except _Sampled:
        first, second = marks[1] - marks[0], marks[2] - marks[1]
        seconds = (marks[0] - start) + first + (int(loop["total"]) - 1) * second
        outcome = (seconds, f"{loop['total']} iterations at {second:.2f} s")
    except DeadlineExceeded:
        outcome = (None, f"unknown (its main loop did not start within {PROBE_LIMIT_SECONDS:.0f} s)")
    except DdrError as exc:
        outcome = (None, f"unknown ({str(exc).splitlines()[0][:80]})")
    except Exception as exc:  # noqa: BLE001 - the real distillation reports the failure
        outcome = (None, f"unknown (a trial start failed: {type(exc).__name__})")
    if outcome[0] is not None:
        outcome = (outcome[0], f"≈ {format_seconds(outcome[0])} (measured here: {outcome[1]})")
    _PROBED[key] = outcome
    return outcome


def _limited(paths: Iterable[Path], limit: int) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out.append(path)
        if len(out) >= limit:
            break
    return out


# -- runs ----------------------------------------------------------------------------------------

def estimate_run(choice: "MethodChoice", evaluator: "Evaluator", *, use_cache: bool = True,
                 distill_evaluator: "Evaluator | None" = None, measure: bool = False) -> Estimate:
    """The estimate of ``ddr run``: the distillation (``distill_evaluator``'s resources, the
    evaluator's by default) and the evaluation of its set. Before the set exists its syn jobs
    are planned with a placeholder hash (never cached) and the method's label strategy."""
    from ddr.store.formats import load_distilled

    source = distill_evaluator or evaluator
    seconds, note, folder = distill_estimate(choice, source.resources, source.ipc, use_cache=use_cache,
                                             measure=measure)
    distilled: Any = None
    if folder is not None:
        try:
            distilled = load_distilled(folder)
        except Exception:  # noqa: BLE001 - unreadable: the run distils again, plan as if absent
            distilled, seconds, note = None, None, "unknown (the cached set is unreadable)"
    if distilled is None:
        stored = choice.spec.label_strategy == "stored_soft"
        distilled = SimpleNamespace(soft_labels=object() if stored else None, lr=None, label_strategy=None)
        sha = PLACEHOLDER_SHA
    else:
        from ddr.method.distilled import distilled_sha256

        sha = distilled_sha256(distilled)
    strategy, loss = evaluator.resolve_label_strategy(distilled, choice.spec.label_strategy)
    plan = evaluator.plan(distilled, strategy, loss, sha)
    roles, expected = estimate_jobs(evaluator.resources, plan, evaluator.ipc, measure=measure)
    label = f"{choice.name} · {evaluator.resources.dataset.name} · IPC {evaluator.ipc} · seed {evaluator.seed}"
    return Estimate(label, roles, seconds, note, expected)


def estimate_distilled(distilled: Any, evaluator: "Evaluator", *, resize: bool = False, label: str = "eval",
                       measure: bool = False) -> Estimate:
    """The estimate of evaluating a loaded set (``ddr eval``, ``ddr.evaluate``): no distillation."""
    from ddr.method.distilled import distilled_sha256

    checked = evaluator._checked(distilled, resize)
    strategy, loss = evaluator.resolve_label_strategy(checked)
    plan = evaluator.plan(checked, strategy, loss, distilled_sha256(checked))
    roles, expected = estimate_jobs(evaluator.resources, plan, evaluator.ipc, measure=measure)
    return Estimate(label, roles, 0.0, "none (a given set)", expected)


def announce(session: "Session", estimate: Estimate) -> None:
    """Log the estimate's line and hand its per-job seconds to the progress state (the ETA)."""
    from ddr.resources import progress

    progress.expect(estimate.expected)
    session.log(estimate.line())
    progress.emit({"event": "estimate", **estimate.to_json()})


def plan_text(estimate: Estimate, options: "EvalOptions | None" = None) -> str:
    """What ``--dry-run`` prints for one run: its label, the plan table, the distillation, the line."""
    head = f"plan: {estimate.label}"
    if options is not None and options.protocol_overrides():
        head += "  (" + ", ".join(f"{k}={v}" for k, v in options.protocol_overrides().items()) + ")"
    return "\n".join([head, estimate.table(), f"distillation: {estimate.distill_note}",
                      f"estimate: {estimate.line()}"])


def dry_run_json(estimates: Sequence[Estimate], **extra: Any) -> str:
    """``--dry-run --json``: every estimate, nothing trained."""
    return json.dumps({"dry_run": True, **extra, "runs": [e.to_json() for e in estimates]}, indent=2)
