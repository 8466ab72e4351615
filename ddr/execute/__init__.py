"""Executors: how a plan's student jobs are run (a registry kind, ``--executor NAME``).

An executor takes jobs and a :class:`~ddr.execute.workspace.Workspace` and returns one
:class:`~ddr.records.jobs.JobResult` per job; it never decides what is trained (the plan does)
nor how it is scored (pure functions do). ``local`` runs jobs one after another in this process;
batched-GPU and Ray executors register the same way (``ddr_executors``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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
