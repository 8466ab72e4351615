"""Executors: how a plan's student jobs are run (a registry kind, ``--executor NAME``).

An executor takes jobs and a :class:`~ddr.execute.workspace.Workspace` and returns one
:class:`~ddr.records.jobs.JobResult` per job; it never decides what is trained (the plan does)
nor how it is scored (pure functions do). ``local`` runs jobs one after another in this process;
batched-GPU and Ray executors register the same way (``ddr_executors``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from ddr.execute.workspace import Workspace
    from ddr.records.jobs import JobResult, StudentJob


@runtime_checkable
class Executor(Protocol):
    """Runs student jobs.

    ``run(jobs, workspace, on_result)`` returns the jobs' results (any order, one per job);
    ``on_result(job, result, model)`` is called as each finishes, so the caller can cache it
    (``model`` is the trained ``nn.Module``, or ``None`` when it stayed in another process).
    """

    name: str

    def run(self, jobs: "Sequence[StudentJob]", workspace: "Workspace",
            on_result: "Callable[[StudentJob, JobResult, object], None]") -> "list[JobResult]":
        ...


@runtime_checkable
class Pending(Protocol):
    """Work submitted to a :class:`RemoteExecutor`: ``wait()`` yields while it runs (a progress
    bar's ticks), ``result()`` returns its reply (raising its error), ``cancel()`` stops it (a
    no-op once finished)."""

    def wait(self) -> Any: ...

    def result(self) -> Any: ...

    def cancel(self) -> None: ...


@runtime_checkable
class TaskRunner(Protocol):
    """Runs whole tasks elsewhere: ``submit(function, argument, what=..., device=...)`` runs
    ``function(argument)`` (a module-level function the other process can import) and returns
    its :class:`Pending`. The ``ray`` executor is one; :class:`ddr.execute.child.ChildProcess`
    (``--isolate``) another."""

    def submit(self, function: "Callable[[Any], Any]", argument: Any, *, what: str, device: str = "cpu") -> Pending:
        ...


@runtime_checkable
class RemoteExecutor(Executor, TaskRunner, Protocol):
    """An executor that also runs whole tasks elsewhere (``ray``): distillations are submitted to
    it, as many ahead as it has :meth:`slots` (a suite prefetches the next units' sets).

    ``submit(function, argument, what=..., device=...)`` runs ``function(argument)`` (a
    module-level function the workers can import) on ``device`` (``cpu``/``cuda``); ``what``
    names it in messages. ``slots(device)`` is how many such tasks run at once now (>= 1).
    """

    def submit(self, function: "Callable[[Any], Any]", argument: Any, *, what: str, device: str = "cpu") -> Pending:
        ...

    def slots(self, device: str = "cpu") -> int:
        ...
