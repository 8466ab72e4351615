"""Progress events: what a run is doing now, for bars, heartbeats, logs and callbacks.

:func:`emit` sends one event (a dict with ``"event"``: ``estimate``, ``stage``, ``jobs_start``,
``job_done``) to the ``ddr.progress`` logger (INFO, one line each), to every callback installed
with :func:`listening` (``ddr.evaluate(..., progress=callable)``) and into :data:`STATE`, which
the CLI's heartbeat and students bar read for "jobs done/total" and the ETA. Times are seconds.

Never imports torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ddr.records.jobs import JobResult, StudentJob

PROGRESS_LOGGER = logging.getLogger("ddr.progress")
"""One INFO line per progress event (``ddr.progress``; a child of the ``ddr`` logger)."""

Listener = Callable[[dict[str, Any]], None]
_LISTENERS: ContextVar[tuple[Listener, ...]] = ContextVar("ddr_progress_listeners", default=())
_GLOBAL: list[Listener] = []
_LOCK = threading.Lock()


@dataclass
class ProgressState:
    """What runs now: the stage, its jobs (done / total, reused), when it started, and the
    expected seconds of each job to train by ``(role, index)`` (from the estimate)."""

    stage: str = ""
    stage_started: float = field(default_factory=time.perf_counter)
    started: float = field(default_factory=time.perf_counter)
    total: int = 0
    done: int = 0
    reused: int = 0
    expected: dict[tuple[str, int], float] = field(default_factory=dict)
    pending: dict[tuple[str, int], float] = field(default_factory=dict)
    spent: float = 0.0
    spent_expected: float = 0.0
    last_done: float = field(default_factory=time.perf_counter)

    def eta(self) -> float | None:
        """Seconds left in this stage's jobs: the estimate of the jobs still to train, scaled by
        how the finished ones compared with theirs; else the mean time of the finished ones;
        ``None`` before anything is known."""
        left = self.total - self.done
        if left <= 0:
            return 0.0 if self.total else None
        if self.pending and len(self.pending) >= left:
            expected = sum(self.pending.values())
            scale = self.spent / self.spent_expected if self.spent_expected > 0 and self.spent > 0 else 1.0
            running = time.perf_counter() - self.last_done  # the job training now has been at it this long
            return max(expected * scale - running, 0.0)
        trained = self.done - self.reused
        if trained > 0 and self.spent > 0:
            return self.spent / trained * left
        return None


STATE = ProgressState()


def add_listener(listener: Listener) -> None:
    """Send every later event of this process to ``listener`` (the CLI's display)."""
    with _LOCK:
        _GLOBAL.append(listener)


def remove_listener(listener: Listener) -> None:
    with _LOCK:
        if listener in _GLOBAL:
            _GLOBAL.remove(listener)


@contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send the events emitted inside the block (this thread/context) to ``listener``."""
    if listener is None:
        yield
        return
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


def _describe(event: Mapping[str, Any]) -> str:
    kind = event.get("event")
    if kind == "job_done":
        how = "reused" if event.get("cached") else f"{event.get('seconds', 0.0):.1f} s"
        eta = event.get("eta")
        return (f"{event.get('stage')}: {event.get('role')}[{event.get('index')}] done ({how}); "
                f"{event.get('done')}/{event.get('total')} jobs" + (f", eta {eta:.0f} s" if eta is not None else ""))
    if kind == "jobs_start":
        return f"{event.get('stage')}: {event.get('total')} jobs, {event.get('cached')} reused from the job cache"
    if kind == "stage":
        return f"stage: {event.get('stage')}"
    if kind == "estimate":
        return str(event.get("line", "estimate"))
    return str(dict(event))


def emit(event: dict[str, Any]) -> None:
    """Send ``event`` to the ``ddr.progress`` logger and every listener; a failing listener is
    logged at DEBUG and never stops the run."""
    if PROGRESS_LOGGER.isEnabledFor(logging.INFO):
        PROGRESS_LOGGER.info(_describe(event))
    with _LOCK:
        listeners = (*_GLOBAL, *_LISTENERS.get())
    for listener in listeners:
        try:
            listener(dict(event))
        except Exception as exc:  # noqa: BLE001 - a progress display must never end a run
            PROGRESS_LOGGER.debug("progress listener %r failed: %s", listener, exc)


def stage(name: str) -> None:
    """A new stage starts (``distill · dm · digits · IPC 1 · seed 0``); its job counts reset."""
    STATE.stage, STATE.stage_started = name, time.perf_counter()
    STATE.total = STATE.done = STATE.reused = 0
    emit({"event": "stage", "stage": name})


def expect(seconds: Mapping[tuple[str, int], float]) -> None:
    """The estimated seconds of the jobs about to train, by ``(role, index)``."""
    STATE.expected = dict(seconds)


class JobWatch:
    """Reports one batch of jobs (:meth:`ddr.resources.service.Resources.run_jobs`): ``start``
    once the cached ones are known, ``done`` for each finished job (cached or trained)."""

    def __init__(self, jobs: "list[StudentJob]", on_trained: "Callable[[StudentJob, JobResult], None] | None" = None
                 ) -> None:
        self.jobs = {job.key: job for job in jobs}
        self.stage = "reference" if jobs and all(j.role == "real" for j in jobs) else "students"
        self.on_trained = on_trained
        self.started = time.perf_counter()

    def start(self, cached: "Mapping[str, JobResult]") -> None:
        s = STATE
        s.total, s.done, s.reused, s.spent, s.spent_expected = len(self.jobs), 0, 0, 0.0, 0.0
        s.last_done = time.perf_counter()
        s.pending = {(j.role, j.index): s.expected[(j.role, j.index)] for k, j in self.jobs.items()
                     if k not in cached and (j.role, j.index) in s.expected}
        emit({"event": "jobs_start", "stage": self.stage, "total": len(self.jobs), "cached": len(cached),
              "eta": s.eta()})
        for result in cached.values():
            self.done(result)

    def done(self, result: "JobResult") -> None:
        s = STATE
        job = self.jobs.get(result.key)
        s.done += 1
        s.last_done = time.perf_counter()
        if result.cached:
            s.reused += 1
        elif job is not None:
            expected = s.pending.pop((job.role, job.index), None)
            s.spent += float(result.seconds)
            if expected is not None:
                s.spent_expected += expected
            if self.on_trained is not None:
                self.on_trained(job, result)
        emit({"event": "job_done", "stage": self.stage, "role": result.role, "index": result.index,
              "cached": bool(result.cached), "seconds": float(result.seconds), "accuracy": float(result.accuracy),
              "done": s.done, "total": s.total, "elapsed": time.perf_counter() - self.started, "eta": s.eta()})
