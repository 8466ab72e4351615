"""Running student jobs once: from the job cache when finished before, else by an executor.

A job's content key names its cache entry (:mod:`ddr.store.jobs`). The jobs still to run are
locked first (:mod:`ddr.store.locks`) and looked up again, so a job that another ddr process is
training on the same cache is trained once and read here. A result the cache cannot store (a
full disk) is kept for this run with one warning; a reference model it cannot store is kept in
memory (:attr:`JobRunner.unstored_models`) so the run can still use it as its teacher. A cached
entry that fails its checksum is reported (once, holding its lock), moved aside and recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    from ddr.execute.workspace import Workspace
    from ddr.records.jobs import JobResult, StudentJob
    from ddr.resources.progress import JobWatch
    from ddr.resources.session import Session


@dataclass
class JobRunner:
    """Runs jobs through the job cache and the executor ``executor`` (``executor_options``: its
    keyword arguments); ``use_cache=False`` (``--no-job-cache``) reads nothing from the cache
    (new results are stored either way)."""

    session: "Session"
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)
    use_cache: bool = True
    unstored_models: dict[str, Any] = field(default_factory=dict)
    """Reference states the cache could not store (job key -> CPU state dict)."""
    _warned_unstored: bool = False

    def run(self, jobs: "list[StudentJob]", workspace: "Workspace", reused: dict[str, int], *,
            announce: "Callable[[StudentJob], None] | None" = None,
            watch: "JobWatch | None" = None) -> "dict[str, JobResult]":
        """Results of ``jobs`` by key; ``reused`` counts the cached ones by role. ``announce(job)``
        is called for each job this process is about to train, holding its lock; ``watch`` hears
        of the cached jobs (``start``) and of each job as it finishes (``done``)."""
        from ddr.store.jobs import job_dir, store_record
        from ddr.store.locks import entry_locks

        results, todo = self.cached(jobs, reused)
        if watch is not None:
            watch.start(results)
        if not todo:
            return results
        locks = [(job_dir(job.key), "the real-data reference" if job.role == "real" else
                  f"student job {job.role} #{job.index}") for job in todo]
        with entry_locks(locks, log=self.session.log):
            found, todo = self.cached(todo, reused, on_corrupt=self.session.log)
            results.update(found)
            if watch is not None:
                for result in found.values():
                    watch.done(result)
            if not todo:
                return results
            if announce is not None:
                for job in todo:
                    announce(job)

            def finished(job: "StudentJob", result: "JobResult", model: Any) -> None:
                # stored even under --no-job-cache (which only skips reading): the teacher is read from here
                state = model.state_dict() if job.role == "real" and model is not None else None
                try:
                    store_record(result.to_dict(), state)
                except DdrError as exc:  # the result is kept for this run; only the cache misses it
                    if state is not None:
                        self.unstored_models[job.key] = {k: v.detach().cpu().clone() for k, v in state.items()}
                    if not self._warned_unstored:  # once: the cause is the same for every job
                        self._warned_unstored = True
                        self.session.log(f"warning: {exc}; continuing: this run keeps its results, a later run "
                                         "trains the jobs that could not be stored again")
                if watch is not None:
                    watch.done(result)

            executor = self.session.executor(self.executor, self.executor_options)
            for result in executor.run(todo, workspace, finished):
                results[result.key] = result
        return results

    def cached(self, jobs: "list[StudentJob]", reused: dict[str, int], *,
               on_corrupt: "Callable[[str], None] | None" = None) -> "tuple[dict[str, JobResult], list[StudentJob]]":
        """(results of the cached ``jobs``, the jobs still to run); nothing is read when the cache
        is off. A corrupt entry is a job to run; with ``on_corrupt`` (only while holding the
        entries' locks) it is also reported and moved aside (:func:`ddr.store.jobs.cached_record`)."""
        from ddr.records.jobs import JobResult
        from ddr.store.jobs import cached_record

        results: dict[str, JobResult] = {}
        todo = []
        for job in jobs:
            record = (cached_record(job.key, needs_model=job.role == "real", on_corrupt=on_corrupt)
                      if self.use_cache else None)
            if record is not None:
                result = JobResult.from_dict(record)
                result.cached = True
                results[job.key] = result
                reused[job.role] = reused.get(job.role, 0) + 1
            else:
                todo.append(job)
        return results, todo
