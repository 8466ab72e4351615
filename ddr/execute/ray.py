"""The ``ray`` executor: each student job is a Ray task (``--executor ray [--address ADDR]``).

What runs where:

* the driver (this process) builds the plan, precomputes the random subsets, loads the teacher
  when a job needs one, puts the workspace's CPU tensors into the Ray object store once per
  :meth:`RayExecutor.run`, submits one task per job, and as each task finishes calls
  ``on_result`` (so the job cache is written only by the driver; the real-data reference model
  is rebuilt here from its state dict and cached exactly as ``local`` caches it);
* a worker rebuilds an equivalent :class:`~ddr.execute.workspace.Workspace` (the plugin system
  with the driver's block/load lists, the splits, distilled sets, random subsets and teachers)
  once per run and worker process, and trains the job with the shared per-job code
  (:func:`ddr.execute.student.run_job`).

The numbers are the ``local`` executor's, bit for bit, for the same seeds: a worker uses the
driver's torch thread count (Ray starts workers with ``OMP_NUM_THREADS=1``) and its determinism
settings. Jobs need in-memory datasets. Plugins registered in the driver by code rather than
through entry points (``pm.register``) are not seen by workers.

Importing this module imports neither torch nor Ray.
"""

from __future__ import annotations

import atexit
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DdrError, portable_error, rebuilt_error
from ddr.execute.portable import apply_torch_settings, frozen_models, plugin_settings, state_dict_cpu, torch_settings

if TYPE_CHECKING:  # pragma: no cover

    from ddr.engine.data import Split
    from ddr.execute.workspace import Workspace
    from ddr.records.jobs import JobResult, StudentJob

RAY_MISSING = 'the ray executor needs Ray: pip install "ddr-bench[ray]"'
"""The message of the :class:`~ddr.errors.ConfigError` raised when Ray is not installed."""

_WAIT_SECONDS = 0.5
"""How long one ``ray.wait`` blocks, so Ctrl-C and SIGTERM are handled promptly (seconds)."""

_started_here = False
"""This process started the local Ray it uses (and shuts it down at exit)."""

_remote: dict[Any, Any] = {}
"""Ray remote functions by the function they run, made on first use."""

_worker_cache: dict[str, Any] = {}
"""In a worker process: the workspace of the current run, by run token (one entry)."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`~ddr.errors.ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(RAY_MISSING) from exc
    return ray


def _shutdown_started_ray() -> None:
    global _started_here
    if _started_here:
        _started_here = False
        import ray

        if ray.is_initialized():
            ray.shutdown()


class RayExecutor:
    """Student jobs as Ray tasks, on a local Ray or a cluster.

    Args:
        address: a running cluster to connect to (``ray start --head`` prints it; ``auto`` finds
            a local one); ``None`` starts a local Ray in this process. A Ray already initialised
            in this process is reused as it is, whatever ``address`` says.
        num_cpus, num_gpus: the resources of a local Ray this executor starts (``None``: what
            Ray detects); ignored when connecting to ``address``.
        cpus_per_task: CPUs one task reserves (default 1).
        gpus_per_task: GPUs one task reserves when students train on CUDA (default 1).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
                 cpus_per_task: float | None = None, gpus_per_task: float | None = None) -> None:
        self.ray = import_ray()
        self.cpus_per_task = 1.0 if cpus_per_task is None else float(cpus_per_task)
        self.gpus_per_task = 1.0 if gpus_per_task is None else float(gpus_per_task)
        if self.cpus_per_task < 0 or self.gpus_per_task < 0:
            raise ConfigError("cpus_per_task and gpus_per_task must be non-negative numbers of CPUs / GPUs")
        self.started = False  # ddr started the local Ray in use: its resources are known and fixed
        self._connect(address, num_cpus, num_gpus)

    def _connect(self, address: str | None, num_cpus: int | None, num_gpus: int | None) -> None:
        """Reuse an initialised Ray, else connect to ``address`` or start a local Ray."""
        global _started_here
        ray = self.ray
        if ray.is_initialized():
            self.started = _started_here
            return
        quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
        if address is not None:
            try:
                ray.init(address=address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot connect to the Ray cluster at {address!r}: {exc}; start one with `ray start --head` "
                    "and pass the address it prints, or leave --address out to start a local Ray"
                ) from None
            return
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **quiet)
        if not _started_here:
            atexit.register(_shutdown_started_ray)
        _started_here = self.started = True

    def close(self) -> None:
        """Shut down the local Ray this process started (a Ray started elsewhere is left running)."""
        _shutdown_started_ray()

    def _task_options(self, device: str, env: "dict[str, str] | None" = None) -> dict[str, Any]:
        """Ray options of one task on ``device`` (``cpu``/``cuda``): its CPUs, GPUs, environment."""
        options: dict[str, Any] = {"num_cpus": self.cpus_per_task}
        env_vars = dict(env or {})
        if device == "cuda":
            options["num_gpus"] = self.gpus_per_task
            cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
            if cublas is not None:  # read when CUDA initialises: it must be in the worker's environment
                env_vars["CUBLAS_WORKSPACE_CONFIG"] = cublas
        if env_vars:
            options["runtime_env"] = {"env_vars": env_vars}
        if self.started:  # a cluster may autoscale: only a local Ray's resources are fixed
            _check_resources(self.ray, options)
        return options

    def slots(self, device: str = "cpu") -> int:
        """How many tasks on ``device`` the cluster runs at once now (at least 1)."""
        have = self.ray.cluster_resources()
        if device == "cuda":
            return max(1, int(float(have.get("GPU", 0)) // self.gpus_per_task)) if self.gpus_per_task else 1
        return max(1, int(float(have.get("CPU", 1)) // self.cpus_per_task)) if self.cpus_per_task else 1

    def submit(self, function: "Callable[[Any], Any]", argument: Any, *, what: str, device: str = "cpu",
               env: "dict[str, str] | None" = None) -> "RayPending":
        """Run ``function(argument)`` as one Ray task on ``device`` (``what`` names it in messages);
        ``function`` must be a module-level function the workers can import. A reply
        ``{"error": portable_error(...)}`` is raised again by :meth:`RayPending.result`."""
        task = _remote_task(self.ray, function).options(**self._task_options(device, env))
        return RayPending(self.ray, task.remote(argument), what)

    # -- the driver ---------------------------------------------------------------------------------
    def run(self, jobs: "Sequence[StudentJob]", workspace: "Workspace",
            on_result: "Callable[[StudentJob, JobResult, Any], None]") -> "list[JobResult]":
        """Run ``jobs`` as Ray tasks; ``on_result(job, result, model)`` is called in this process as
        each finishes (``model``: the rebuilt reference model for role ``real``, else ``None``)."""
        from ddr.records.jobs import JobResult

        jobs = list(jobs)
        if not jobs:
            return []
        ray = self.ray
        payload = ray.put(_payload(jobs, workspace))
        token = uuid.uuid4().hex
        task = _remote_task(ray, _run_in_worker).options(**self._task_options(workspace.device.type))
        pending = {task.remote(token, [payload], job.to_dict()): job for job in jobs}
        results: dict[str, JobResult] = {}
        try:
            finished = _completions(ray, pending)
            bar = workspace.progress(finished, total=len(jobs), desc="students") if len(jobs) > 1 else finished
            for job, reply in bar:
                result = JobResult(**reply["result"])
                model = None
                if reply.get("state") is not None:  # the reference: cached (as the teacher) from this model
                    model = workspace.make_model(job.arch, job.arch_params, job.seed)
                    model.load_state_dict(reply["state"])
                on_result(job, result, model)
                results[job.key] = result
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(last=f"{job.role}[{job.index}] {result.accuracy:.4f}")
        finally:
            for ref in pending:  # Ctrl-C, SIGTERM, a failed job: nothing keeps training
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or gone: nothing to cancel
                    pass
        return [results[job.key] for job in jobs]


def _check_resources(ray: Any, options: dict[str, Any]) -> None:
    """Refuse tasks the cluster can never schedule (they would wait forever)."""
    have = ray.cluster_resources()
    for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        want = float(options.get(key) or 0)
        if want > float(have.get(name, 0)):
            raise ConfigError(
                f"each student task asks for {want:g} {name}(s) but the Ray cluster has {float(have.get(name, 0)):g}; "
                + ("train on the CPU (--device cpu) or add GPU nodes to the cluster" if name == "GPU" else
                   "add CPUs to the cluster or lower cpus_per_task")
            )


def _remote_task(ray: Any, function: "Callable[..., Any]") -> Any:
    """The Ray remote function of ``function`` (made once per process and function)."""
    if function not in _remote:
        _remote[function] = ray.remote(function)
    return _remote[function]


class RayPending:
    """A submitted task (:meth:`RayExecutor.submit`): wait for its reply, or cancel it."""

    def __init__(self, ray: Any, ref: Any, what: str) -> None:
        self.ray, self.ref, self.what = ray, ref, what

    def wait(self) -> Iterator[None]:
        """Yield every ``_WAIT_SECONDS`` until the task has finished (so a caller can show a
        ticking bar, and Ctrl-C or SIGTERM is handled promptly)."""
        while True:
            done, _ = self.ray.wait([self.ref], num_returns=1, timeout=_WAIT_SECONDS)
            if done:
                return
            yield None

    def result(self) -> Any:
        """The task's return value (waiting for it); a DdrError the task returned is raised here."""
        for _ in self.wait():
            pass
        return _get(self.ray, self.ref, self.what)

    def cancel(self) -> None:
        """Stop the task if it still runs (nothing happens when it has finished)."""
        try:
            self.ray.cancel(self.ref, force=True)
        except Exception:  # already finished or gone: nothing to cancel
            pass


def _completions(ray: Any, pending: "dict[Any, StudentJob]") -> "Iterator[tuple[StudentJob, dict[str, Any]]]":
    """``(job, reply)`` as tasks finish, removing each from ``pending`` (what is left is unfinished)."""
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_SECONDS)
        for ref in done:
            job = pending.pop(ref)
            yield job, _get(ray, ref, job)


def _get(ray: Any, ref: Any, what: "StudentJob | str") -> dict[str, Any]:
    """A finished task's reply; a worker's DdrError is raised here as the same class and message."""
    try:
        reply = ray.get(ref)
    except ray.exceptions.RayTaskError:
        raise  # a bug in ddr's task code: keep the worker's traceback
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        name = what if isinstance(what, str) else f"job {what.role} {what.index}"
        raise DdrError(f"the Ray task of {name} failed ({type(exc).__name__}: {reason}); "
                       "check the Ray logs (`ray status`, /tmp/ray/session_latest/logs) or run with "
                       "--executor local") from None
    if isinstance(reply, dict) and "error" in reply:
        raise rebuilt_error(reply["error"]) from None
    return reply


def _cpu_split(split: "Split", what: str, dataset: str) -> "Split":
    if not split.in_memory:
        raise DdrError(f"the ray executor needs an in-memory dataset; the {what} of '{dataset}' streams its images "
                       "from disk: use --executor local")
    return split.to("cpu")


def _payload(jobs: "list[StudentJob]", ws: "Workspace") -> dict[str, Any]:
    """Everything a worker needs to rebuild ``ws`` for ``jobs``, as CPU tensors and plain data."""
    import torch

    from ddr.engine.build import label_strategy_spec
    from ddr.engine.data import Split

    ds = ws.dataset
    needs_pool = any(job.data.kind == "pool" for job in jobs)
    pool = _cpu_split(ws.pool, "training pool", ds.name) if needs_pool else None
    distilled = {}
    for sha in {job.data.sha256 for job in jobs if job.data.kind == "distilled"}:
        if sha in ws.distilled:  # a missing one fails in the worker with the workspace's own message
            split, soft = ws.distilled[sha]
            distilled[sha] = (split.to("cpu"), None if soft is None else soft.cpu())
    random = {index: ws.random_subset(index).to("cpu")
              for index in sorted({int(job.data.index) for job in jobs  # type: ignore[arg-type]
                                   if job.data.kind == "random"})}
    teachers = None
    if any(job.needs_teacher or label_strategy_spec(job.label_strategy, system=ws.system).needs_teacher
           for job in jobs):
        models = ws.teachers()
        if ws.teacher_arch is not None:
            teachers = {"arch": ws.teacher_arch,
                        "states": [state_dict_cpu(t) for t in models]}
        else:  # no architecture to rebuild them from: ship the frozen modules themselves
            import copy

            teachers = {"modules": [copy.deepcopy(t).cpu() for t in models]}
    system = ws.system
    return {
        "plugins": plugin_settings(system),
        "torch": torch_settings(),
        "device": ws.device.type,
        "dataset": {"name": ds.name, "num_classes": ds.num_classes, "channels": ds.channels,
                    "image_size": tuple(ds.image_size), "mean": tuple(ds.mean), "std": tuple(ds.std),
                    "class_names": tuple(ds.class_names), "pixel_space": ds.pixel_space,
                    "preprocess": dict(ds.preprocess)},
        "pool": pool if pool is not None else Split(labels=torch.zeros(0, dtype=torch.long),
                                                     images=torch.zeros(0, ds.channels, *ds.image_size)),
        "validation": _cpu_split(ws.validation, "validation split", ds.name),
        "test": _cpu_split(ws.test, "test split", ds.name),
        "ipc": ws.ipc, "seed": ws.seed, "distilled": distilled, "random": random, "teachers": teachers,
    }


# -- the worker -------------------------------------------------------------------------------------
def _rebuild_workspace(payload: dict[str, Any]) -> "Workspace":
    """The driver's workspace, rebuilt in a worker process on the worker's device."""
    import torch

    from ddr.engine.data import ImageDataset
    from ddr.execute.workspace import Workspace
    from ddr.plugin.manager import PluginSystem

    system = PluginSystem(**payload["plugins"])
    system.require_healthy()
    device = torch.device("cuda" if payload["device"] == "cuda" else "cpu")  # Ray makes the task's GPU cuda:0
    pool = payload["pool"].to(device)
    test = payload["test"].to(device)
    dataset = ImageDataset(train=pool, test=test, **payload["dataset"])
    holder: dict[str, list[Any]] = {}
    spec = payload["teachers"]

    def teachers() -> list[Any]:
        if "models" not in holder:
            if spec is None:
                raise DdrError("a job asked for a teacher the ray executor did not ship; this is a bug in ddr, "
                               "run with --executor local meanwhile")
            if "modules" in spec:
                holder["models"] = [m.to(device) for m in spec["modules"]]
            else:
                arch, params = spec["arch"]
                holder["models"] = frozen_models(spec["states"], lambda: ws.make_model(arch, params, 0))
        return holder["models"]

    ws = Workspace(system=system, device=device, dataset=dataset, pool=pool,
                   validation=payload["validation"].to(device), test=test, ipc=payload["ipc"], seed=payload["seed"],
                   teachers=teachers, progress=_no_progress,
                   teacher_arch=None if spec is None or "arch" not in spec else spec["arch"])
    for sha, (split, soft) in payload["distilled"].items():
        ws.add_distilled(sha, split.to(device), None if soft is None else soft.to(device))
    ws._random.update({index: split.to(device) for index, split in payload["random"].items()})
    return ws


def _no_progress(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


def _run_in_worker(token: str, payload_ref: list[Any], job_data: dict[str, Any]) -> dict[str, Any]:
    """One job in a Ray worker: ``{"result": JobResult fields, "state": reference state dict or None}``,
    or ``{"error": ...}`` for a DdrError (raised again in the driver).

    ``payload_ref`` is the payload's ObjectRef in a list, so Ray does not fetch it for every task:
    a worker fetches and rebuilds it once per run token.
    """
    import ray

    from ddr.execute.student import run_job
    from ddr.records.jobs import StudentJob

    try:
        if token not in _worker_cache:
            _worker_cache.clear()
            payload = ray.get(payload_ref[0])
            _worker_cache[token] = (payload["torch"], _rebuild_workspace(payload))
        settings, ws = _worker_cache[token]
        apply_torch_settings(settings)
        job = StudentJob.from_dict(job_data)
        result, model = run_job(job, ws)
    except DdrError as exc:
        return {"error": portable_error(exc)}
    return {"result": asdict(result), "state": state_dict_cpu(model) if job.role == "real" else None}
