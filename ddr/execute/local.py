"""The ``local`` executor: jobs one after another in this process (the default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ddr.execute.student import run_job

if TYPE_CHECKING:  # pragma: no cover
    from ddr.execute.workspace import Workspace
    from ddr.protocol.plan import JobResult, StudentJob


class LocalExecutor:
    """Sequential, in-process; the reference job shows an epoch progress bar."""

    name = "local"

    def run(self, jobs: "Sequence[StudentJob]", workspace: "Workspace",
            on_result: "Callable[[StudentJob, JobResult, Any], None]") -> "list[JobResult]":
        results = []
        for job in workspace.progress(list(jobs), total=len(jobs), desc="students") if len(jobs) > 1 else jobs:
            progress = workspace.progress if job.role == "real" else None
            result, model = run_job(job, workspace, progress=progress)
            on_result(job, result, model)
            results.append(result)
        return results
