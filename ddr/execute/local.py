"""The ``local`` executor: jobs one after another in this process (the default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError
from ddr.execute.student import run_job

if TYPE_CHECKING:  # pragma: no cover
    from ddr.execute.workspace import Workspace
    from ddr.records.jobs import JobResult, StudentJob


class LocalExecutor:
    """Sequential, in-process; every job shows an epoch bar, the students bar the last accuracy.

    Args:
        compile: train each student through ``torch.compile`` (preset ``local.compiled``). The
            fused kernels change results in the last bits only (benchmarks/RESULTS.md measures
            speed and accuracy); each new batch shape costs a compilation first, so it pays for
            long trainings (hundreds of epochs), not for short ones.
        bf16: each student's forward under bfloat16 autocast (preset ``local.bf16``); bfloat16
            rounding moves results further than last bits, within noise as measured in
            benchmarks/RESULTS.md; whether it is faster depends on the CPU.
    """

    name = "local"

    def __init__(self, *, compile: bool = False, bf16: bool = False) -> None:
        for flag, value in (("compile", compile), ("bf16", bf16)):
            if not isinstance(value, bool):
                raise ConfigError(f"executor 'local': {flag} must be true or false, got {value!r}")
        self.compile, self.bf16 = compile, bf16

    def run(self, jobs: "Sequence[StudentJob]", workspace: "Workspace",
            on_result: "Callable[[StudentJob, JobResult, Any], None]") -> "list[JobResult]":
        results = []
        bar = workspace.progress(list(jobs), total=len(jobs), desc="students") if len(jobs) > 1 else jobs
        for job in bar:
            result, model = run_job(job, workspace, progress=_epoch_bar(workspace, job),
                                    compile=self.compile, bf16=self.bf16)
            on_result(job, result, model)
            results.append(result)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(last=f"{job.role}[{job.index}] {result.accuracy:.4f}")
        return results


def _epoch_bar(workspace: "Workspace", job: "StudentJob") -> Any:
    """An epoch bar named after the job (``syn_hard[2] epochs``)."""
    def progress(iterable: Any, total: int | None = None, desc: str = "", leave: bool = False) -> Any:
        return workspace.progress(iterable, total=total, desc=f"{job.role}[{job.index}] {desc}".strip(), leave=False)

    return progress
