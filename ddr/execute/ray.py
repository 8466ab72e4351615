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

Connecting to ``--address`` gives up after ``connect_timeout`` seconds (default 30) with a
:class:`~ddr.errors.ConfigError` (:func:`_connect_cluster`); a local Ray that ddr starts ends with
ddr, killed outright included (:func:`_start_local`, :func:`_start_watchdog`).

Importing this module imports neither torch nor Ray.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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

DEFAULT_CONNECT_TIMEOUT = 30.0
"""How long connecting to a cluster (``--address``) may take before ddr gives up (seconds);
``--executor-option connect_timeout=SECONDS`` changes it."""

OWNER_VARIABLE = "DDR_RAY_OWNER"
"""The environment variable that marks every process of a local Ray that ddr starts (the GCS,
the raylet, their agents and the workers inherit it); its value is one token per start."""

_started_here = False
"""This process started the local Ray it uses (and shuts it down at exit)."""

_watchdog: "subprocess.Popen[bytes] | None" = None
"""The process that ends the local Ray this process started once this process has ended, however
it ended (kill -9 included); see :func:`_start_watchdog`."""

_LOG = logging.getLogger("ddr")

_signalled: list[BaseException] = []
"""The exception this process's SIGTERM handler raised last (see :func:`_remember_sigterm`)."""

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
    """Shut down the local Ray this process started, then let the watchdog end what is left of it."""
    global _started_here
    if _started_here:
        _started_here = False
        import ray

        clean = False
        try:
            if ray.is_initialized():
                ray.shutdown()
                clean = True
        finally:
            _stop_watchdog(clean)


class RayExecutor:
    """Student jobs as Ray tasks, on a local Ray or a cluster.

    Args:
        address: a running cluster to connect to (``ray start --head`` prints it; ``auto`` finds
            a local one; ``None``: the ``RAY_ADDRESS`` environment variable when set); ``None``
            (and no ``RAY_ADDRESS``) or ``local`` starts a local Ray in this process. A Ray
            already initialised in this process is reused as it is, whatever the options say.
        num_cpus, num_gpus: the resources of a local Ray this executor starts (``None``: what
            Ray detects); refused with ``address`` (a cluster has its own).
        cpus_per_task: CPUs one task reserves (default 1).
        gpus_per_task: GPUs one task reserves when students train on CUDA (default 1).
        connect_timeout: how long connecting to ``address`` may take (seconds, default
            :data:`DEFAULT_CONNECT_TIMEOUT`); a cluster that has not answered by then is a
            :class:`~ddr.errors.ConfigError`. Refused without ``address``.

    A local Ray that ddr starts ends with this process: :meth:`close` or the exit of the
    interpreter (a normal end, an exception, SIGTERM through the CLI) shuts it down, and a
    watchdog process ends what is left of it when this process was killed outright (kill -9).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
                 cpus_per_task: float | None = None, gpus_per_task: float | None = None,
                 connect_timeout: float | None = None) -> None:
        self.ray = import_ray()
        self.cpus_per_task = 1.0 if cpus_per_task is None else float(cpus_per_task)
        self.gpus_per_task = 1.0 if gpus_per_task is None else float(gpus_per_task)
        if self.cpus_per_task < 0 or self.gpus_per_task < 0:
            raise ConfigError("cpus_per_task and gpus_per_task must be non-negative numbers of CPUs / GPUs")
        self.connect_timeout = _check_timeout(connect_timeout)
        self.started = False  # ddr started the local Ray in use: its resources are known and fixed
        self._connect(address, num_cpus, num_gpus, connect_timeout is not None)

    def _connect(self, address: str | None, num_cpus: int | None, num_gpus: int | None,
                 timeout_given: bool = False) -> None:
        """Reuse an initialised Ray, else connect to ``address`` or start a local Ray."""
        self._connect_ray(address, num_cpus, num_gpus, timeout_given)
        _remember_sigterm()

    def _connect_ray(self, address: str | None, num_cpus: int | None, num_gpus: int | None,
                     timeout_given: bool) -> None:
        global _started_here
        ray = self.ray
        if ray.is_initialized():
            self.started = _started_here
            return
        if address is None and os.environ.get("RAY_ADDRESS"):  # ray.init would connect there too
            address = os.environ["RAY_ADDRESS"]
        if address == "local":
            address = None
        if address is not None:
            given = [name for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)) if value is not None]
            if given:
                raise ConfigError(f"executor 'ray': {' and '.join(given)} {'size' if len(given) > 1 else 'sizes'} "
                                  "a local Ray that ddr starts; a "
                                  f"cluster (--address {address}) has its own resources: leave them out")
            _connect_cluster(ray, address, self.connect_timeout)
            return
        if timeout_given:
            raise ConfigError("executor 'ray': connect_timeout applies to connecting to a running cluster "
                              "(--address ADDR); without --address ddr starts a local Ray: leave the option out")
        _start_local(ray, num_cpus, num_gpus)
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


_QUIET = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
"""What ``ray.init`` is always given."""


def _check_timeout(value: float | None) -> float:
    """The connect timeout in seconds: ``value``, or :data:`DEFAULT_CONNECT_TIMEOUT` for ``None``."""
    if value is None:
        return DEFAULT_CONNECT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"executor 'ray': connect_timeout must be a positive number of seconds, got {value!r} "
                          "(e.g. --executor-option connect_timeout=60)")
    return float(value)


def _not_answering(address: str, timeout: float, reason: str) -> ConfigError:
    return ConfigError(
        f"the Ray cluster at {address!r} did not answer within {timeout:g} s ({reason}); start it with "
        "`ray start --head` and pass the address it prints, check the address (host:port of the head node's "
        "GCS, 6379 unless `ray start` was told otherwise), raise the limit with --executor-option "
        "connect_timeout=SECONDS for a slow cluster, or leave --address out to start a local Ray"
    )


def _host_port(address: str) -> "tuple[str, int] | None":
    """``(host, port)`` of a ``host:port`` or ``ray://host:port`` address, ``None`` for other forms
    (``auto``: Ray finds the address itself)."""
    rest = address.strip()
    if rest.startswith("ray://"):
        rest = rest[len("ray://"):]
    if "://" in rest or ":" not in rest:
        return None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _probe(address: str, timeout: float) -> None:
    """Raise :func:`_not_answering` unless a TCP connection to ``address`` opens within ``timeout``
    seconds (nothing listening, an unknown host or an unreachable network fail at once)."""
    where = _host_port(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout):
            pass
    except socket.gaierror as exc:
        raise _not_answering(address, timeout, f"unknown host {where[0]!r}: {exc.strerror or exc}") from None
    except ConnectionRefusedError:
        raise _not_answering(address, timeout, "connection refused: nothing listens at that port") from None
    except TimeoutError:
        raise _not_answering(address, timeout, "no TCP connection") from None
    except OSError as exc:
        raise _not_answering(address, timeout, exc.strerror or type(exc).__name__) from None


class _SigtermWarning(logging.Filter):
    """Hides Ray's warning that ``ray.init`` off the main thread sets no SIGTERM handler (ddr has its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _connect_cluster(ray: Any, address: str, timeout: float) -> None:
    """``ray.init(address=...)``, or a :class:`~ddr.errors.ConfigError` within about ``timeout``
    seconds when the cluster does not answer.

    A TCP probe fails at once when nothing listens at ``host:port``; past it, ``ray.init`` runs in
    a daemon thread that the caller waits for at most the rest of ``timeout``. Ray retries a GCS
    that does not answer for minutes: an attempt given up on goes on in its thread (its warnings
    may still be printed) and, should it ever connect, shuts that connection down itself, so no
    Ray state is left half-initialised in this process.
    """
    deadline = time.monotonic() + timeout
    _probe(address, timeout)
    lock = threading.Lock()
    state: dict[str, Any] = {"abandoned": False, "error": None, "done": False}

    def attempt() -> None:
        quiet = logging.getLogger("ray._private.worker")
        hide = _SigtermWarning()
        quiet.addFilter(hide)
        try:
            ray.init(address=address, **_QUIET)
        except BaseException as exc:  # reported to the waiting thread (or dropped once it gave up)
            _quiet_shutdown(ray)
            with lock:
                state["error"] = exc
        else:
            with lock:
                abandoned = state["abandoned"]
                state["done"] = not abandoned
            if abandoned:  # connected after the caller gave up: leave nothing initialised behind
                _quiet_shutdown(ray)
        finally:
            quiet.removeFilter(hide)

    thread = threading.Thread(target=attempt, name="ddr-ray-connect", daemon=True)
    thread.start()
    try:
        thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        with lock:
            connected, error = state["done"], state["error"]
            if not connected:
                state["abandoned"] = True
    if connected:
        return
    if error is None:
        raise _not_answering(address, timeout, "no reply from its GCS")
    if isinstance(error, Exception):  # Ray's own refusal (no cluster found, version mismatch, ...)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address!r}: {reason}; start one with `ray start --head` "
            "and pass the address it prints, or leave --address out to start a local Ray"
        ) from None
    raise error


def _quiet_shutdown(ray: Any) -> None:
    """``ray.shutdown()`` after a failed or abandoned ``ray.init``; a failure of it changes nothing."""
    try:
        ray.shutdown()
    except Exception:  # nothing was initialised: nothing to undo
        pass


def _start_local(ray: Any, num_cpus: int | None, num_gpus: int | None) -> None:
    """Start a local Ray in this process whose processes end with it.

    ``ray.init(address="local")`` (a new instance, never a ``ray start`` cluster running on this
    machine) runs in this thread (Ray binds its processes' lives to the thread that starts them,
    with ``PR_SET_PDEATHSIG`` on Linux), with :data:`OWNER_VARIABLE` set in the environment they
    inherit, after :func:`_start_watchdog`. A SIGTERM handler this process had (the CLI's,
    which raises :class:`~ddr.errors.Terminated`) or an ignored SIGTERM is kept: ``ray.init``
    would replace it with its own ``sys.exit``.
    """
    token = uuid.uuid4().hex
    _start_watchdog(token)
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    before = os.environ.get(OWNER_VARIABLE)
    os.environ[OWNER_VARIABLE] = token
    keep = main and handler is not None and handler is not signal.SIG_DFL
    try:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **_QUIET)  # its own, not one running here
    except BaseException as exc:
        _quiet_shutdown(ray)
        _stop_watchdog()
        if keep and callable(handler) and isinstance(exc, SystemExit) and exc.code == signal.SIGTERM:
            handler(signal.SIGTERM, None)  # SIGTERM met Ray's handler (sys.exit) while it started: ddr's instead
        raise
    finally:
        if before is None:
            os.environ.pop(OWNER_VARIABLE, None)
        else:
            os.environ[OWNER_VARIABLE] = before
        if keep:
            signal.signal(signal.SIGTERM, handler)


_WATCHDOG = r"""
import os, select, signal, sys, time
for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # it outlives the driver by moments, whatever the driver got
    signal.signal(getattr(signal, name), signal.SIG_IGN)
tag = (sys.argv[1] + "=" + sys.argv[2]).encode()
me, driver, began = os.getpid(), os.getppid(), time.monotonic()

def table():  # pid -> (parent pid, start time, state) of every process
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/" + name + "/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                out[int(name)] = (int(fields[1]), fields[19], fields[0])
            except (OSError, IndexError, ValueError):
                pass
    return out

def marked(pid):  # Ray's setproctitle wipes the environment of its agents: they are found as children
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return tag in f.read().split(b"\0")
    except OSError:
        return False

def below(tab, roots):  # the descendants of roots
    children = {}
    for pid, (ppid, _, _) in tab.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen and child != me:
                seen.add(child)
                todo.append(child)
    return seen

def ours(tab, known):  # the Ray processes: marked ones, those seen before, and their descendants
    found = {pid for pid in tab if pid != me and pid != driver and marked(pid)}
    found |= {pid for pid, start in known.items() if pid in tab and tab[pid][1] == start}
    found |= below(tab, found)
    return {pid for pid in found if tab[pid][2] not in (b"Z", b"X")}

def kill(pid, start):
    try:
        fd = os.pidfd_open(pid)  # race-free: the process checked is the process killed
    except (AttributeError, OSError):
        fd = None
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[19] != start:
                return
        if fd is None:
            os.kill(pid, signal.SIGKILL)
        else:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except (OSError, IndexError):
        pass
    finally:
        if fd is not None:
            os.close(fd)

known, said = {}, b""
while True:  # until the end of the pipe: the driver ended, or shut its Ray down and says "clean"
    ready, _, _ = select.select([0], [], [], 0.2 if time.monotonic() - began < 60 else 2.0)
    if ready:
        data = os.read(0, 4096)
        if not data:
            break
        said += data
    tab = table()
    if driver not in tab or tab[driver][2] in (b"Z", b"X"):  # ended, though something still holds the pipe
        break
    roots = {pid for pid in below(tab, [driver]) if marked(pid)}  # while it lives, its Ray is below it
    for pid in roots | below(tab, roots):
        known[pid] = tab[pid][1]
# clean: Ray's processes are ending; give them 2 s, then kill what is left. Killed driver: kill at once,
# and look again for 2 s (a process forked as the driver died shows up a moment later)
grace = time.monotonic() + 2.0
while time.monotonic() < grace + 30:
    tab = table()
    left = ours(tab, known)
    if not left and (said == b"clean" or time.monotonic() > grace):
        break
    if said != b"clean" or time.monotonic() > grace:
        for pid in left:
            kill(pid, tab[pid][1])
    time.sleep(0.1)
"""
"""The watchdog's program (stdlib only). While the driver lives it notes, every 0.2 s (every 2 s
after the first minute), the processes of the driver's Ray: those whose environment carries
``DDR_RAY_OWNER=<token>`` (the GCS, the raylet, the workers) and their descendants (the raylet's
agents, whose environment Ray's ``setproctitle`` wipes). At the end of its stdin it SIGKILLs every
one still running (Linux: ``/proc``)."""


def _start_watchdog(token: str) -> None:
    """Start the watchdog of the local Ray marked ``token``: a small process that reads a pipe
    only this process writes, so it sees the end of file when this process ends, however it
    ends, and then kills every process of that Ray still running. Ray ties its GCS and raylet to
    this process (``PR_SET_PDEATHSIG``), but the raylet's agents (dashboard and runtime-env
    agents) would otherwise stay about a minute after a kill -9 (they wait for the dead GCS).
    Linux only (it reads ``/proc``); elsewhere nothing is started.
    """
    global _watchdog
    if _watchdog is not None or not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        return
    try:
        _watchdog = subprocess.Popen([sys.executable, "-S", "-c", _WATCHDOG, OWNER_VARIABLE, token],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        _LOG.warning(f"ddr could not start the watchdog of its local Ray ({exc}); if ddr is killed "
                     "outright, end the Ray processes it leaves (ps: ray::, raylet, gcs_server) by hand")


def _stop_watchdog(clean: bool = False, wait: float = 10.0) -> None:
    """Tell the watchdog that this process is done with its Ray (``clean``: ``ray.shutdown()`` ran,
    so it gives Ray's processes 2 s to end by themselves) and wait for it at most ``wait``
    seconds, so nothing of that Ray is left when this process ends."""
    global _watchdog
    watchdog, _watchdog = _watchdog, None
    if watchdog is None:
        return
    try:
        if watchdog.stdin is not None:
            if clean:
                watchdog.stdin.write(b"clean")
            watchdog.stdin.close()
        watchdog.wait(timeout=wait)
    except (OSError, subprocess.TimeoutExpired):  # it goes on by itself: nothing to wait for
        pass


def _remember_sigterm() -> None:
    """Make this process's SIGTERM handler remember the exception it raises (main thread only).

    Ray turns an exception that a signal handler raises while ``ray.wait``/``ray.get`` block into
    a bare ``KeyboardInterrupt``; :func:`_blocking` raises the remembered one instead, so the CLI's
    :class:`~ddr.errors.Terminated` still ends ddr with status 143. (SIGINT is left alone: its
    handler is recognised by identity, and Ctrl-C ends with 130 either way.)
    """
    if threading.current_thread() is not threading.main_thread():
        return
    handler = signal.getsignal(signal.SIGTERM)
    if not callable(handler) or getattr(handler, "_ddr_remembers", False):
        return

    def remembering(signum: int, frame: Any) -> Any:
        try:
            return handler(signum, frame)
        except BaseException as exc:
            _signalled[:] = [exc]
            raise

    remembering._ddr_remembers = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, remembering)


def _blocking(call: "Callable[..., Any]", *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` (``ray.wait``, ``ray.get``); the bare ``KeyboardInterrupt`` Ray makes
    of a SIGTERM handler's exception is raised as that exception (:func:`_remember_sigterm`)."""
    _signalled.clear()
    try:
        return call(*args, **kwargs)
    except KeyboardInterrupt as exc:
        if type(exc) is KeyboardInterrupt and _signalled:
            raise _signalled.pop() from None
        raise


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
            done, _ = _blocking(self.ray.wait, [self.ref], num_returns=1, timeout=_WAIT_SECONDS)
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
        done, _ = _blocking(ray.wait, list(pending), num_returns=1, timeout=_WAIT_SECONDS)
        for ref in done:
            job = pending.pop(ref)
            yield job, _get(ray, ref, job)


def _get(ray: Any, ref: Any, what: "StudentJob | str") -> dict[str, Any]:
    """A finished task's reply; a worker's DdrError is raised here as the same class and message."""
    try:
        reply = _blocking(ray.get, ref)
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
