"""One-command acceptance of ddr's CUDA path: GPU tests, throughput, DD-Ranking side by side, a suite.

    bash benchmarks/gpu_acceptance.sh --out benchmarks/results/gpu-acceptance      # a bare GPU machine
    bash benchmarks/gpu_acceptance.sh --no-venv --ddranking skip --out DIR         # python3 has torch, no index
    bash benchmarks/gpu_acceptance.sh --device cpu --budget 300 --python "$(command -v python)" --out DIR

Setup (before the budget's clock starts; at most ``--setup-timeout`` seconds): the Python that runs
everything is ``--python PATH`` or, with ``--no-venv``, the one running this script (an existing
environment: nothing is created); otherwise a virtual environment at ``--venv`` (reused when it
already imports this checkout's ddr and torch), made with ``python3 -m venv`` and
``pip install -e ".[test]"`` (torch 2.14.1 / torchvision 0.29.1 as pyproject.toml pins them). When
that install fails (no package index) and the running Python has torch, it goes on with that one
and says so. An environment whose ddr is not this checkout gets ``pip install -e . --no-deps``.
Then a preflight records the interpreter, torch, its CUDA build, the device and which optional
packages are there.

Then four steps under one hard budget (``--budget``, seconds, default 480): each step gets its
share (:data:`SHARES`) of what is left, time a step does not use goes to the later ones, a step
whose share is under :data:`MIN_STEP_SECONDS` is skipped with the reason, and every step runs as
a subprocess killed at its share, so a report always comes back:

1. ``pytest_gpu``: ``pytest -m gpu tests/gpu`` (tests/gpu/test_cuda.py: local, batched and Ray
   executors on cuda, batched within noise of local, the bf16 and torch.compile presets,
   ``--deterministic`` reruns identical, a CUDA out-of-memory error in a group is a DdrError that
   suggests a smaller group). Without CUDA every test skips; under ``--device cuda`` a run where
   every test skipped fails the step.
2. ``throughput``: benchmarks/engine_throughput.py's measurement (its functions, in a child
   process that writes each row as it is measured): ConvNet-3 on CIFAR-10-shaped random data, local
   vs batched, fp32 and bf16 autocast, IPC 1/10/50 x 1/8/32/128 students (CPU: IPC 1 x 1/2
   students, 1 epoch). FLOPs: forward+backward of the network counted once with
   ``torch.utils.flop_counter.FlopCounterMode`` (conv and linear; augmentation and optimizer not
   counted), times the images an epoch trains. The fraction is of the GPU's BF16 dense peak from
   ``engine_throughput.GPU_PEAKS`` (NVIDIA's H100 and H200 datasheets; dense = half the
   "with sparsity" figure), for the fp32 rows too; an unknown device (the CPU) gets none.
3. ``ddranking``: benchmarks/speed_vs_ddranking.py on generated CIFAR-10-format data, one set, one
   cold evaluation per tool, reduced epochs: both tools' accuracies and scores and the wall-time
   ratio. DD-Ranking 0.2.0 runs from its own environment (``--ddranking-venv``) that reuses this
   environment's torch through a ``.pth`` file (``pip install ddranking==0.2.0`` adds only what
   torch's environment lacks, numpy < 2 among them). ``--ddranking auto`` installs it on CUDA and
   on the CPU only uses one already there; without it the step is skipped with the reason.
4. ``suite``: a digits suite (``--suite``, default a reduced benchmarks/suites/digits.yaml written
   into the work folder) end to end with ``ddr run SUITE --device``; every record's device checked.

Report: ``report.json`` and ``report.md`` under ``--out`` (rewritten after every step) and one log per
step (``<step>.log``); data, caches, venvs and run records go to ``--work``. Exit status: 0 when
every step is ok or skipped, 1 when one failed or ran out of its time, 2 for bad arguments.

Never asserts a timing; every number in the report comes from the run that wrote it.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()
REPORT_VERSION = 1
DEFAULT_BUDGET = 480.0
"""Seconds for the four steps: 8 minutes, so that setup, preflight and the report fit a 10-minute command."""
STEPS = ("pytest_gpu", "throughput", "ddranking", "suite")
TITLES = {"pytest_gpu": "GPU tests (pytest -m gpu)", "throughput": "engine throughput (ConvNet-3, CIFAR-shaped)",
          "ddranking": "side by side with DD-Ranking 0.2.0", "suite": "digits suite end to end"}
SHARES = {"pytest_gpu": 0.35, "throughput": 0.25, "ddranking": 0.22, "suite": 0.18}
"""Each step's share of the budget left when it starts, among the steps still to run."""
MIN_STEP_SECONDS = 10.0
"""A step with less than this is skipped (budget spent), not started."""
RESERVE_SECONDS = 5.0
"""Kept back from every allotment for writing the report."""
STATUSES = ("ok", "skipped", "failed", "timeout")
DDRANKING = "ddranking==0.2.0"
"""What pip installs for step 3 (benchmarks/speed_vs_ddranking.py's ``DDRANKING``)."""
DEFAULT_VENV = Path.home() / ".cache" / "ddr" / "gpu-acceptance" / "venv"
DEFAULT_DDRANKING_VENV = Path.home() / ".cache" / "ddr" / "gpu-acceptance" / "ddranking-0.2.0-venv"
SHARED_MARK = "ddr-gpu-acceptance-shares-torch"
"""File in a DD-Ranking venv this script made: its ``.pth`` may be rewritten to the current environment."""
TAIL_CHARS = 3000
PIP_FAST_FAIL = ["--retries", "1", "--timeout", "15"]
"""pip options that make an install fail in seconds, not minutes, where no package index answers."""

CPU_SUITE: dict[str, Any] = {
    "suite": "gpu-acceptance-cpu", "description": "CPU mode of benchmarks/gpu_acceptance.py: the smallest digits run",
    "methods": ["random"], "datasets": ["digits"], "ipcs": [1], "seeds": [0], "protocol": "digits", "num_eval": 2,
    "epochs": 5, "set": {"real.epochs": 2}}
GPU_SUITE: dict[str, Any] = {
    "suite": "gpu-acceptance",
    "description": "benchmarks/suites/digits.yaml reduced for benchmarks/gpu_acceptance.py: three methods, one seed",
    "methods": ["random", "herding", "dm"], "datasets": ["digits"], "ipcs": [1, 10], "seeds": [0], "protocol": "digits",
    "num_eval": 3, "epochs": 100}
"""Step 4's suites (written as JSON, which is YAML): CUDA runs benchmarks/suites/digits.yaml's settings
(the digits protocol, 100 epochs, 3 students) for random, herding and DM at IPC 1 and 10 with one seed."""

PREFLIGHT = r'''
import importlib.metadata as md, json, platform, sys
info = {"python": sys.executable, "python_version": platform.python_version()}
try:
    import torch
    info.update(torch=torch.__version__, torch_cuda_build=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if info["cuda_available"]:
        p = torch.cuda.get_device_properties(0)
        info.update(device_name=p.name, capability=f"{p.major}.{p.minor}", device_count=torch.cuda.device_count(),
                    device_memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
except Exception as exc:
    info["torch_error"] = f"{type(exc).__name__}: {exc}"
try:
    import ddr
    info.update(ddr=ddr.__version__, ddr_file=ddr.__file__)
except Exception as exc:
    info["ddr_error"] = f"{type(exc).__name__}: {exc}"
info["ddr_entry_points"] = sorted(ep.name for ep in md.entry_points(group="ddr"))
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
info["packages"] = {n: version(n) for n in ("ddr-bench", "torch", "torchvision", "numpy", "ray", "kornia", "timm",
                                             "pytest", "hypothesis", "ddranking")}
print("PREFLIGHT " + json.dumps(info))
'''


class Stop(Exception):
    """SIGTERM or SIGINT reached the orchestrator: write the report with what there is, then exit."""


# -- the budget ---------------------------------------------------------------------------------------------

@dataclass
class Budget:
    """The steps' hard budget: ``total`` seconds from the first :meth:`start` on ``clock`` (seconds)."""

    total: float
    clock: Callable[[], float] = time.monotonic
    started: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def elapsed(self) -> float:
        """Seconds since :meth:`start` (0 before it)."""
        return 0.0 if self.started is None else self.clock() - self.started

    def left(self) -> float:
        """Seconds of the budget left (negative once overrun)."""
        return self.total - self.elapsed()

    def allot(self, step: str, pending: Sequence[str]) -> float:
        """Seconds for ``step`` now: its share of what is left, less :data:`RESERVE_SECONDS`, among
        the ``pending`` steps (``step`` and those after it that will run); never negative."""
        left = self.left() - RESERVE_SECONDS
        shares = sum(SHARES[s] for s in pending)
        if left <= 0 or shares <= 0:
            return 0.0
        return left * SHARES[step] / shares


# -- the report ---------------------------------------------------------------------------------------------

@dataclass
class StepReport:
    """One step's outcome. ``status``: ok, skipped (``reason`` says why), failed (``reason``: rc and
    what failed) or timeout (killed at ``budget_s``; ``results`` holds what it had measured).
    Seconds are wall-clock seconds."""

    name: str
    title: str
    status: str = "skipped"
    reason: str = ""
    budget_s: float | None = None
    seconds: float | None = None
    rc: int | None = None
    command: str | None = None
    log: str | None = None
    output_tail: str = ""
    results: dict[str, Any] = field(default_factory=dict)


def summary_counts(steps: Sequence[StepReport]) -> dict[str, int]:
    """How many steps ended in each status."""
    return {status: sum(1 for s in steps if s.status == status) for status in STATUSES}


def exit_status(steps: Sequence[StepReport], setup_ok: bool = True) -> int:
    """0 when setup worked and every step is ok or skipped, else 1."""
    return 0 if setup_ok and all(s.status in ("ok", "skipped") for s in steps) else 1


def _mib(value: Any) -> str:
    return "-" if not value else f"{value / 2**20:.0f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _mean(summary: Any) -> str:
    if not isinstance(summary, Mapping) or summary.get("mean") is None:
        return "-"
    std = summary.get("std")
    return f"{summary['mean']:.3f}" + (f" ± {std:.3f}" if std else "")


def throughput_markdown(results: Mapping[str, Any]) -> list[str]:
    """The throughput step's table: one row per (IPC, students, precision, executor)."""
    rows = results.get("rows") or []
    machine = results.get("machine") or {}
    lines = []
    if machine:
        peak = machine.get("bf16_dense_peak_flops")
        counted = (f"Device {machine.get('device_name', '?')}; forward+backward "
                   f"{machine.get('flops_per_image_fwd_bwd', 0) / 1e6:.1f} MFLOP per image ({machine.get('flop_count')}; "
                   "augmentation and optimizer not counted)")
        lines.append(f"{counted}; BF16 dense peak {peak / 1e12:.0f} TFLOPS ({machine.get('peak_source')})." if peak
                     else f"{counted}; no BF16 dense peak: {machine.get('peak_source')}.")
        if "fp32_convolutions_may_use_tf32" in machine:
            lines.append(f"fp32 rows run torch's defaults: convolutions may use TF32 "
                         f"({machine['fp32_convolutions_may_use_tf32']}), matmuls may use TF32 "
                         f"({machine['fp32_matmuls_may_use_tf32']}); bf16 rows: bfloat16 autocast of the forward.")
    if not rows:
        return lines + ["", "no rows measured"]
    local = {(r["ipc"], r["students"], r["precision"]): r["students_epochs_per_s"] for r in rows if r["executor"] == "local"}
    lines += ["", "| IPC | students | precision | executor | epochs | students·epochs/s | vs local | GFLOP/step/student "
              "| TFLOP/s | of BF16 dense peak | peak device MiB | peak host MiB |",
              "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = local.get((r["ipc"], r["students"], r["precision"]))
        speed = f"{r['students_epochs_per_s'] / base:.2f}x" if base and r["executor"] != "local" else "-"
        name = r["executor"] + (f" ({r['measured_students']} timed)" if r["measured_students"] != r["students"] else "")
        lines.append(f"| {r['ipc']} | {r['students']} | {r['precision']} | {name} | {r['epochs']} | "
                     f"{r['students_epochs_per_s']:.2f} | {speed} | {r.get('flops_per_student_step', 0) / 1e9:.2f} | "
                     f"{r['flops_per_s'] / 1e12:.3f} | {_pct(r.get('fraction_of_peak'))} | "
                     f"{_mib(r.get('peak_device_bytes'))} | {_mib(r.get('peak_host_bytes'))} |")
    return lines


def ddranking_markdown(results: Mapping[str, Any]) -> list[str]:
    """The side-by-side step's table: per tool, wall seconds and the mean ± std of each quantity."""
    tools = results.get("tools") or {}
    if not tools:
        return []
    keys = ("acc_real_hard", "acc_syn_hard", "acc_rdm_any", "hlr", "ior", "ddrs")
    lines = [f"Set `{results.get('set')}`, IPC {results.get('ipc')}, {results.get('epochs')} epochs, "
             f"{results.get('num_eval')} evaluations, device {results.get('device')}; fractions, mean ± sample std.", "",
             "| tool | wall (s) | CPU (s) | " + " | ".join(keys) + " |", "|---|---:|---:|" + "---:|" * len(keys)]
    for tool, run in tools.items():
        lines.append(f"| {tool} | {run['wall']:.1f} | {run['cpu']:.1f} | "
                     + " | ".join(_mean(run["scores"].get(k)) for k in keys) + " |")
    if results.get("wall_ratio") is not None:
        lines += ["", f"Wall-time ratio DD-Ranking / ddr: {results['wall_ratio']:.2f}x (one cold evaluation each)."]
    return lines


def suite_markdown(results: Mapping[str, Any]) -> list[str]:
    """The suite step's table: one row per record written."""
    records = results.get("records") or []
    lines = [f"Suite `{results.get('suite')}`: {len(records)} of {results.get('expected', '?')} records."]
    if records:
        lines += ["", "| method | IPC | seed | device | acc real | acc syn-hard | acc random | DDRS | distill s | eval s |",
                  "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in records:
            lines.append(f"| {r['method']} | {r['ipc']} | {r['seed']} | {r['device']} | {_mean(r['acc_real_hard'])} | "
                         f"{_mean(r['acc_syn_hard'])} | {_mean(r['acc_rdm_any'])} | {_mean(r['ddrs'])} | "
                         f"{r.get('distill_seconds') or 0:.1f} | {r.get('eval_seconds') or 0:.1f} |")
    return lines


def pytest_markdown(results: Mapping[str, Any]) -> list[str]:
    """The GPU tests' counts and every test that did not pass, with its message."""
    counts = results.get("counts") or {}
    lines = [", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "errors", "skipped"))]
    others = [t for t in results.get("tests") or [] if t["outcome"] != "passed"]
    if others:
        lines += ["", "| test | outcome | message |", "|---|---|---|"]
        for t in others:
            message = " ".join((t.get("message") or "").split())[:200].replace("|", "\\|")
            lines.append(f"| `{t['name']}` | {t['outcome']} | {message} |")
    return lines


SECTIONS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "pytest_gpu": pytest_markdown, "throughput": throughput_markdown, "ddranking": ddranking_markdown,
    "suite": suite_markdown}


def render_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown report: environment, one table of the steps, then each step's results."""
    env = report.get("environment") or {}
    setup = report.get("setup") or {}
    lines = [f"# ddr GPU acceptance ({report.get('mode')} mode, --device {report.get('device')})", "",
             f"Started {report.get('started')}, finished {report.get('finished') or '(not finished)'}; steps' budget "
             f"{report.get('budget_s'):.0f} s, steps took {report.get('steps_wall_s') or 0:.1f} s; setup "
             f"{setup.get('status')} in {setup.get('seconds') or 0:.1f} s ({setup.get('how', '')}).", "",
             f"Command: `{report.get('command')}`", "",
             "| | |", "|---|---|"]
    for key in ("python", "python_version", "torch", "torch_cuda_build", "cuda_available", "device_name", "capability",
                "device_memory_gib", "ddr", "git_commit"):
        if key in env:
            lines.append(f"| {key} | {env[key]} |")
    packages = env.get("packages") or {}
    if packages:
        lines.append("| packages | " + ", ".join(f"{k} {v or 'absent'}" for k, v in packages.items()) + " |")
    lines += ["", "| step | status | seconds | budget (s) | note |", "|---|---|---:|---:|---|"]
    for step in report.get("steps") or []:
        note = " ".join(step.get("reason", "").split()).replace("|", "\\|")
        lines.append(f"| {step['name']} | {step['status']} | {step.get('seconds') or 0:.1f} | "
                     f"{step.get('budget_s') or 0:.0f} | {note} |")
    for step in report.get("steps") or []:
        lines += ["", f"## {step['name']}: {step['title']}", "", f"Status **{step['status']}**"
                  + (f": {step['reason']}" if step.get("reason") else "") + "."]
        if step.get("command"):
            lines += ["", f"`{step['command']}`"]
        results = step.get("results") or {}
        body = SECTIONS[step["name"]](results) if results and step["name"] in SECTIONS else []
        if body:
            lines += ["", *body]
        if step["status"] in ("failed", "timeout") and step.get("output_tail"):
            lines += ["", "Tail of its output:", "", "```", step["output_tail"][-1500:], "```"]
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: Mapping[str, Any]) -> None:
    """``report.json`` and ``report.md`` under ``out`` (each written whole, then renamed)."""
    for name, text in (("report.json", json.dumps(report, indent=2, default=str) + "\n"),
                       ("report.md", render_markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)


# -- running one command ----------------------------------------------------------------------------------

@dataclass
class Completed:
    """A command's end: ``rc`` (None when killed at its timeout), wall ``seconds``, its output's tail."""

    rc: int | None
    seconds: float
    tail: str

    @property
    def timed_out(self) -> bool:
        return self.rc is None


def run_logged(command: Sequence[str], *, timeout: float, log: Path, env: Mapping[str, str] | None = None,
               cwd: Path = ROOT, append: bool = False) -> Completed:
    """Run ``command`` (stdout and stderr to ``log``) for at most ``timeout`` seconds; at the timeout its
    whole process group gets SIGTERM, then SIGKILL 5 s later."""
    start = time.monotonic()
    with log.open("a" if append else "w", encoding="utf-8") as handle:
        handle.write(f"$ {shlex.join(str(c) for c in command)}\n")
        handle.flush()
        try:
            proc = subprocess.Popen([str(c) for c in command], stdout=handle, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=cwd, env=dict(env) if env is not None else None,
                                    start_new_session=True)
        except OSError as exc:
            handle.write(f"cannot start: {exc}\n")
            return Completed(127, time.monotonic() - start, f"cannot start {command[0]}: {exc}")
        rc: int | None
        try:
            rc = proc.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            rc = None
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
    return Completed(rc, time.monotonic() - start, tail(log))


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, chars: int = TAIL_CHARS) -> str:
    """The last ``chars`` characters of a text file ('' when it is missing)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chars * 4))
            return handle.read().decode("utf-8", "replace")[-chars:]
    except OSError:
        return ""


# -- setup ---------------------------------------------------------------------------------------------------

@dataclass
class Context:
    """What every step needs: the environment's interpreter, the device, the folders, the options."""

    python: str
    device: str
    """``cpu`` or ``cuda`` (``cuda:N`` is passed as CUDA_VISIBLE_DEVICES=N)."""
    out: Path
    work: Path
    args: argparse.Namespace
    env: dict[str, str]

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def step_env(self, step: str, **extra: str) -> dict[str, str]:
        """The environment of one step: its own empty ``DDR_CACHE_DIR`` under the work folder."""
        cache = self.work / f"cache-{step}"
        cache.mkdir(parents=True, exist_ok=True)
        return {**self.env, "DDR_CACHE_DIR": str(cache), **extra}


def preflight(python: str, env: Mapping[str, str], log: Path, timeout: float = 180.0) -> dict[str, Any]:
    """What ``python`` has: torch and its CUDA build, the device, ddr and optional packages (a dict;
    ``preflight_error`` when it could not run)."""
    offset = log.stat().st_size if log.exists() else 0
    done = run_logged([python, "-c", PREFLIGHT], timeout=timeout, log=log, env=env, append=True)
    with log.open("rb") as handle:  # this run's lines only: the log holds earlier commands too
        handle.seek(offset)
        lines = handle.read().decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        if line.startswith("PREFLIGHT "):
            return json.loads(line[len("PREFLIGHT "):])
    return {"preflight_error": f"exit {done.rc}: {done.tail[-500:]}"}


def _ours(info: Mapping[str, Any]) -> bool:
    """Whether the preflight saw this checkout's ddr with its method plugins registered."""
    file = info.get("ddr_file")
    return bool(file) and Path(str(file)).resolve().is_relative_to(ROOT) and "dm" in (info.get("ddr_entry_points") or [])


def setup(args: argparse.Namespace, out: Path, env: dict[str, str]) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The interpreter every step runs (None when there is none), what setup did, and the preflight."""
    log = out / "setup.log"
    log.write_text("")
    start = time.monotonic()
    deadline = start + args.setup_timeout
    info: dict[str, Any] = {"status": "ok", "notes": []}
    links = ["--find-links", str(args.find_links)] if args.find_links else []

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    python: str | None
    if args.python or args.no_venv:
        python = str(args.python or sys.executable)
        info["how"] = f"given interpreter {python}"
    else:
        venv = Path(args.venv).expanduser().resolve()
        python = str(venv / "bin" / "python")
        found = preflight(python, env, log) if Path(python).exists() else {}
        if found and _ours(found) and "torch" in found:
            info["how"] = f"reused the environment {venv}"
        else:
            info["how"] = f"created the environment {venv} (python3 -m venv; pip install -e \".[test]\")"
            steps = [[sys.executable, "-m", "venv", str(venv)],
                     [python, "-m", "pip", "install", "-q", *PIP_FAST_FAIL, *links, "-e", f"{ROOT}[test]"]]
            for command in steps:
                done = run_logged(command, timeout=left(), log=log, env=env, append=True)
                if done.rc != 0:
                    what = "timed out" if done.timed_out else f"exited {done.rc}"
                    info["notes"].append(f"`{' '.join(command[:4])} ...` {what}: {done.tail[-400:].strip()}")
                    fallback = preflight(sys.executable, env, log)
                    if "torch" in fallback:
                        python = sys.executable
                        info["how"] = (f"the environment {venv} could not be installed (no package index?); went on "
                                       f"with the running Python {python}, which has torch {fallback['torch']}")
                    else:
                        info.update(status="failed", how=f"the environment {venv} could not be installed and the "
                                                          f"running Python {sys.executable} has no torch")
                        python = None
                    break
    found = preflight(python, env, log) if python else {}
    if python and "torch" in found and not _ours(found):  # another checkout's ddr, or none
        command = [python, "-m", "pip", "install", "-q", *PIP_FAST_FAIL, *links, "--no-deps", "--no-build-isolation",
                   "-e", str(ROOT)]
        done = run_logged(command, timeout=left(), log=log, env=env, append=True)
        info["notes"].append(f"installed this checkout (pip install -e . --no-deps): exit {done.rc}")
        found = preflight(python, env, log)
    if python and not _ours(found):
        info["status"] = "failed"
        info["notes"].append(f"{python} does not import this checkout's ddr with its plugins: "
                             f"{found.get('ddr_error') or found.get('ddr_file') or found.get('preflight_error')}")
    if python and "torch" not in found:
        info["status"] = "failed"
        info["notes"].append(f"{python} has no torch: {found.get('torch_error') or found.get('preflight_error')}")
    info["seconds"] = round(time.monotonic() - start, 1)
    info["python"] = python
    return (python if info["status"] == "ok" else None), info, found


def git_state() -> dict[str, Any]:
    """This checkout's commit and whether files differ from it (None without git)."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=20, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}
    return {"git_commit": commit or None, "git_dirty": bool(dirty) if commit else None}


# -- step 1: the GPU tests ------------------------------------------------------------------------------

VERBOSE_LINE = re.compile(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")


def junit_results(path: Path) -> dict[str, Any] | None:
    """Counts and per-test outcomes from pytest's JUnit XML (None when it was not written)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    tests = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
                message = child.get("message") or (child.text or "")[:500]
                break
        tests.append({"name": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome, "message": message})
    counts = {k: sum(1 for t in tests if t["outcome"] == k) for k in ("passed", "failed", "errors", "skipped")}
    return {"counts": counts, "tests": tests}


def verbose_results(text: str) -> dict[str, Any]:
    """Counts and outcomes from ``pytest -v`` lines (for a run killed before it wrote its XML)."""
    names = {"PASSED": "passed", "FAILED": "failed", "ERROR": "errors", "SKIPPED": "skipped", "XFAIL": "skipped",
             "XPASS": "passed"}
    tests = [{"name": m.group(1), "outcome": names[m.group(2)], "message": ""}
             for m in map(VERBOSE_LINE.match, text.splitlines()) if m]
    counts = {k: sum(1 for t in tests if t["outcome"] == k) for k in ("passed", "failed", "errors", "skipped")}
    return {"counts": counts, "tests": tests}


def step_pytest(ctx: Context, step: StepReport) -> None:
    """``pytest -m gpu tests/gpu`` (the ``-m`` given here replaces pyproject's ``-m "not slow"``)."""
    xml = ctx.work / "pytest-gpu.xml"
    xml.unlink(missing_ok=True)
    command = [ctx.python, "-m", "pytest", "-m", "gpu", "tests/gpu", "-v", "-rs", f"--junitxml={xml}"]
    done = _run(ctx, step, command, ctx.step_env(step.name))
    results = junit_results(xml) or verbose_results(tail(ctx.out / f"{step.name}.log", 200000))
    step.results = results
    counts = results["counts"]
    if done.timed_out:
        return
    if done.rc != 0:
        _fail(step, f"pytest exited {done.rc}: {counts['failed']} failed, {counts['errors']} errors, "
                    f"{counts['passed']} passed, {counts['skipped']} skipped")
    elif ctx.cuda and counts["passed"] == 0:
        _fail(step, f"every GPU test skipped under --device cuda ({counts['skipped']} skipped): CUDA is not usable here")
    else:
        step.status = "ok"
        if not ctx.cuda:
            step.reason = f"no CUDA in CPU mode: the {counts['skipped']} GPU tests skipped, as they must"


# -- step 2: throughput -----------------------------------------------------------------------------------------

def throughput_config(device: str, jsonl: Path) -> dict[str, Any]:
    """The grid: on CUDA engine_throughput's full one (IPC 1/10/50 at 20/5/2 epochs x 1/8/32/128
    students), best of 2, local timed over at most 4 students; on the CPU IPC 1 x 1/2 students, 1 epoch,
    one run each. Both precisions, fp32 and bf16 autocast."""
    if device == "cuda":
        grid = {"1": [[1, 8, 32, 128], 20], "10": [[1, 8, 32, 128], 5], "50": [[1, 8, 32, 128], 2]}
        return {"device": "cuda", "grid": grid, "precisions": ["fp32", "bf16"], "repeats": 2, "local_students": 4,
                "jsonl": str(jsonl)}
    return {"device": "cpu", "grid": {"1": [[1, 2], 1]}, "precisions": ["fp32", "bf16"], "repeats": 1,
            "local_students": 1, "jsonl": str(jsonl)}


def expected_rows(config: Mapping[str, Any]) -> int:
    """Rows a complete throughput run writes: cells x precisions x (local, batched)."""
    cells = sum(len(counts) for counts, _ in config["grid"].values())
    return cells * len(config["precisions"]) * 2


def throughput_worker(config: Mapping[str, Any]) -> None:
    """Child process of step 2: engine_throughput's dataset, loops, timer and figures, one JSON line per
    measured row appended to ``config["jsonl"]`` (first a ``machine`` line) as soon as it is measured."""
    import torch

    sys.path.insert(0, str(HERE.parent))
    import engine_throughput as et

    from ddr.engine.training import Recipe

    et.SHAPE.update(et.SHAPES["cifar10"])
    device = torch.device(config["device"])
    out = Path(config["jsonl"])

    def emit(record: Mapping[str, Any]) -> None:
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    flops = et.flops_per_image(device)
    machine = et.machine()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        known = et.gpu_peak(name)
        peak, source = (known[0], known[2] + ", halved") if known else (None, f"{name} is not in engine_throughput.GPU_PEAKS")
    else:
        name, peak, source = machine["cpu"], None, "the CPU: no BF16 dense tensor-core peak"
    emit({"kind": "machine", **machine, "device": str(device), "device_name": name, "flops_per_image_fwd_bwd": flops,
          "bf16_dense_peak_flops": peak, "peak_source": source, "flop_count": "torch.utils.flop_counter.FlopCounterMode "
          "on one forward+backward of 4 images (conv and linear), divided by 4",
          "fp32_convolutions_may_use_tf32": bool(torch.backends.cudnn.allow_tf32),
          "fp32_matmuls_may_use_tf32": bool(torch.backends.cuda.matmul.allow_tf32)})
    for bf16 in (False, True):  # warm-up: kernels, allocator, autotuning, both precisions
        et.run_local(et.dataset(1, device), 1, 1, device, bf16=bf16)
        et.run_batched(et.dataset(1, device), 2, 1, device, bf16=bf16)
    batch = Recipe().batch_size
    for ipc_text, (counts, epochs) in config["grid"].items():
        ipc = int(ipc_text)
        data = et.dataset(ipc, device)
        images = min(batch, ipc * 10)
        for students in counts:
            measured = min(students, int(config["local_students"]))
            for precision in config["precisions"]:
                bf16 = precision == "bf16"
                work = {"local": functools.partial(et.run_local, data, measured, epochs, device, bf16=bf16),
                        "batched": functools.partial(et.run_batched, data, students, epochs, device, bf16=bf16)}
                best: dict[str, tuple[float, dict[str, int]]] = {}
                for _ in range(int(config["repeats"])):  # interleaved, best of N
                    for kind in ("local", "batched"):
                        seconds, memory = et.timed(device, work[kind])
                        if kind in best:
                            memory = {k: max(v, best[kind][1][k]) for k, v in memory.items()}
                            seconds = min(seconds, best[kind][0])
                        best[kind] = (seconds, memory)
                for kind, count in (("local", measured), ("batched", students)):
                    row = et.figure(kind, ipc, students, count, epochs, *best[kind], flops, peak)
                    emit({"kind": "row", **row, "precision": precision, "images_per_step": images,
                          "flops_per_student_step": images * flops})


def read_jsonl(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The worker's machine line and rows (a torn last line is ignored)."""
    machine: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return machine, rows
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = record.pop("kind", None)
        if kind == "machine":
            machine = record
        elif kind == "row":
            rows.append(record)
    return machine, rows


def step_throughput(ctx: Context, step: StepReport) -> None:
    """engine_throughput's grid in a child process (:func:`throughput_worker`)."""
    jsonl = ctx.work / "throughput.jsonl"
    jsonl.unlink(missing_ok=True)
    config = throughput_config(ctx.device, jsonl)
    done = _run(ctx, step, [ctx.python, str(HERE), "_throughput", json.dumps(config)], ctx.step_env(step.name))
    machine, rows = read_jsonl(jsonl)
    step.results = {"machine": machine, "rows": rows, "expected_rows": expected_rows(config), "grid": config["grid"],
                    "repeats": config["repeats"], "local_students": config["local_students"],
                    "complete": len(rows) == expected_rows(config)}
    if done.timed_out:
        step.reason += f"; {len(rows)} of {expected_rows(config)} rows measured"
    elif done.rc != 0:
        _fail(step, f"exited {done.rc} after {len(rows)} of {expected_rows(config)} rows")
    elif not step.results["complete"]:
        _fail(step, f"only {len(rows)} of {expected_rows(config)} rows")
    else:
        step.status = "ok"


# -- step 3: DD-Ranking --------------------------------------------------------------------------------------------

SITE_DIRS = ("import json, site, sysconfig; p = sysconfig.get_paths(); "
             "print(json.dumps(sorted({p['purelib'], p['platlib'], *site.getsitepackages()})))")


def _share_torch(ctx: Context, venv: Path, log: Path) -> None:
    """Point the DD-Ranking venv at this environment's site-packages (a ``.pth`` file): its torch,
    torchvision and the rest are used from there, after what the venv installs itself."""
    done = subprocess.run([ctx.python, "-c", SITE_DIRS], capture_output=True, text=True, timeout=60, check=False)
    dirs = json.loads(done.stdout) if done.returncode == 0 else []
    found = sorted(venv.glob("lib/python*/site-packages"))
    if found:
        (found[0] / "ddr-environment.pth").write_text("".join(f"{d}\n" for d in dirs if Path(d).is_dir()))
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"shared with the DD-Ranking environment: {dirs}\n")


def _probe_ddranking(venv: Path, env: Mapping[str, str], log: Path) -> bool:
    python = venv / "bin" / "python"
    if not python.exists():
        return False
    done = run_logged([str(python), "-c", "import ddranking, torch, importlib.metadata as m; "
                       "print('ddranking', m.version('ddranking'), 'torch', torch.__version__)"],
                      timeout=180, log=log, env=env, append=True)
    return done.rc == 0


def ensure_ddranking(ctx: Context, step: StepReport, deadline: float) -> Path | None:
    """DD-Ranking 0.2.0's environment, or None with ``step`` skipped and the reason set."""
    args = ctx.args
    venv = Path(args.ddranking_venv).expanduser().resolve()
    log = ctx.out / f"{step.name}.log"
    env = {k: v for k, v in ctx.env.items() if k != "PYTHONPATH"}
    if (venv / SHARED_MARK).exists():
        _share_torch(ctx, venv, log)
    if _probe_ddranking(venv, env, log):
        step.results["ddranking_venv"] = f"{venv} (reused)"
        return venv
    install = args.ddranking == "install" or (args.ddranking == "auto" and ctx.cuda)
    if not install:
        step.reason = (f"ddranking 0.2.0 is not importable from {venv}, and on the CPU --ddranking auto does not "
                       "install it: pass --ddranking install (pip, from the package index or --find-links) or "
                       "--ddranking-venv DIR of an environment that has it")
        return None
    links = ["--find-links", str(args.find_links)] if args.find_links else []
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PIP_FAST_FAIL, *links, DDRANKING, "pyyaml"]
    for what, command in (("python -m venv", [ctx.python, "-m", "venv", str(venv)]), (f"pip install {DDRANKING}", pip)):
        if command is pip:
            (venv / SHARED_MARK).write_text("this venv reads torch from the environment named in ddr-environment.pth\n")
            _share_torch(ctx, venv, log)
        done = run_logged(command, timeout=max(1.0, deadline - time.monotonic()), log=log, env=env, append=True)
        if done.rc != 0:
            said = " ".join(done.tail.split())[-300:]
            step.reason = (f"ddranking 0.2.0 is not importable and could not be installed ({what} "
                           f"{'timed out' if done.timed_out else f'exited {done.rc}'}: {said}); where no package index "
                           "answers, carry its wheels and pass --find-links DIR, or --ddranking skip")
            return None
    if not _probe_ddranking(venv, env, log):
        step.reason = f"ddranking 0.2.0 was installed into {venv} but does not import (see {step.name}.log)"
        return None
    step.results["ddranking_venv"] = f"{venv} (created; torch shared through ddr-environment.pth)"
    return venv


def ddranking_sizes(device: str) -> list[str]:
    """speed_vs_ddranking's size options: CUDA IPC 10, 50 epochs, 3 evaluations, 100/50 images per
    class; CPU its ``--quick`` (IPC 1, 10 epochs, 3 evaluations, 20/10 per class)."""
    if device == "cuda":
        return ["--ipc", "10", "--epochs", "50", "--num-eval", "3", "--per-class", "100", "50"]
    return ["--quick"]


def step_ddranking(ctx: Context, step: StepReport) -> None:
    """benchmarks/speed_vs_ddranking.py on one set, one cold evaluation per tool, its block 3 left out."""
    if ctx.args.ddranking == "skip":
        step.reason = "--ddranking skip"
        return
    deadline = time.monotonic() + (step.budget_s or 0.0)
    start = time.monotonic()
    step.log = f"{step.name}.log"
    venv = ensure_ddranking(ctx, step, start + 0.5 * (step.budget_s or 0.0))
    if venv is None:
        step.seconds = round(time.monotonic() - start, 1)
        return
    summary = ctx.work / "ddranking-summary.json"
    summary.unlink(missing_ok=True)
    first = "first"
    command = [ctx.python, str(HERE.parent / "speed_vs_ddranking.py"), "--device", ctx.device, *ddranking_sizes(ctx.device),
               "--sets", first, "--skip-hard", "--venv", str(venv), "--work", str(ctx.work / "ddranking-work"),
               "--summary", str(summary)]
    left = deadline - time.monotonic()
    if left < MIN_STEP_SECONDS:
        step.status, step.reason = "timeout", f"setting up DD-Ranking's environment used the step's {step.budget_s:.0f} s"
        return
    done = _run(ctx, step, command, ctx.step_env(step.name), timeout=left, append=True)
    step.seconds = round(time.monotonic() - start, 1)
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = None
    if data is not None:
        per_set = data["four_sets"][first]
        tools = {tool: {"wall": run["wall"], "cpu": run["cpu"], "scores": run["scores"]} for tool, run in per_set.items()}
        walls = [run["wall"] for run in per_set.values()]
        step.results.update(set=first, ipc=data["ipc"], epochs=data["epochs"], num_eval=data["num_eval"],
                            device=data["device"], versions=data["versions"], tools=tools,
                            wall_ratio=walls[0] / walls[1] if len(walls) == 2 and walls[1] else None)
    if done.timed_out:
        return
    if done.rc != 0 or data is None:
        _fail(step, f"speed_vs_ddranking.py exited {done.rc}" + ("" if data else " without its summary"))
    else:
        step.status, step.reason = "ok", ""


# -- step 4: a suite -----------------------------------------------------------------------------------------------

def write_suite(ctx: Context) -> tuple[Path, int | None]:
    """The suite to run (``--suite`` or the reduced digits one for the device) and how many records it
    asks for (None for a given file)."""
    if ctx.args.suite:
        return Path(ctx.args.suite).resolve(), None
    content = GPU_SUITE if ctx.cuda else CPU_SUITE
    path = ctx.work / "suite.yaml"
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")  # JSON is YAML: no yaml module here
    return path, len(content["methods"]) * len(content["ipcs"]) * len(content["seeds"])


def suite_records(folder: Path) -> list[dict[str, Any]]:
    """One summary per run record under ``folder`` (``*/metrics.json``, ``run_spec.json``, ``env.json``)."""
    records = []
    for record in sorted(folder.glob("*/metrics.json")):
        try:
            metrics = json.loads(record.read_text(encoding="utf-8"))
            spec = json.loads((record.parent / "run_spec.json").read_text(encoding="utf-8"))
            env = json.loads((record.parent / "env.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        records.append({"record": record.parent.name, "method": spec.get("method"), "ipc": spec.get("ipc"),
                        "seed": spec.get("seed"), "device": spec.get("device"), "executor": spec.get("executor"),
                        "cuda_available": (env.get("cuda") or {}).get("available"),
                        "gpus": (env.get("cuda") or {}).get("gpus"),
                        **{k: metrics.get(k) for k in ("acc_real_hard", "acc_syn_hard", "acc_rdm_any", "ddrs",
                                                       "distill_seconds", "eval_seconds")}})
    return records


def step_suite(ctx: Context, step: StepReport) -> None:
    """``ddr run SUITE --device D`` on a fresh cache; every record it wrote, its device checked."""
    suite, expected = write_suite(ctx)
    runs = ctx.work / "suite-runs"
    command = [ctx.python, "-m", "ddr", "run", str(suite), "--device", ctx.device, "--out", str(runs),
               "--db", str(ctx.work / "suite-results.sqlite"), "--no-progress"]
    done = _run(ctx, step, command, ctx.step_env(step.name))
    name = None
    try:
        text = suite.read_text(encoding="utf-8")
        match = re.search(r'^\s*"?suite"?\s*:\s*"?([^",#\n]+)"?', text, re.MULTILINE)
        name = match.group(1).strip() if match else None
    except OSError:
        pass
    records = suite_records(runs / name) if name else []
    step.results = {"suite": name, "file": str(suite), "expected": expected, "records": records}
    if done.timed_out:
        step.reason += f"; {len(records)} records written"
        return
    wrong = [r["record"] for r in records if r["device"] != ctx.device or (ctx.cuda and not r["cuda_available"])]
    if done.rc != 0:
        _fail(step, f"ddr run SUITE exited {done.rc}; {len(records)} of {expected or '?'} records written")
    elif not records:
        _fail(step, "no record was written")
    elif wrong:
        _fail(step, f"records not run on {ctx.device}: {', '.join(wrong)}")
    elif expected is not None and len(records) != expected:
        _fail(step, f"{len(records)} of {expected} records written")
    else:
        step.status = "ok"


# -- the run -------------------------------------------------------------------------------------------------------

def _run(ctx: Context, step: StepReport, command: Sequence[str], env: Mapping[str, str], *,
         timeout: float | None = None, append: bool = False) -> Completed:
    """Run a step's command at the step's budget; record the command, rc, seconds, log and tail."""
    log = ctx.out / f"{step.name}.log"
    step.command = shlex.join(str(c) for c in command)
    step.log = log.name
    done = run_logged(command, timeout=timeout if timeout is not None else (step.budget_s or 0.0), log=log, env=env,
                      append=append)
    step.rc, step.seconds, step.output_tail = done.rc, round(done.seconds, 1), done.tail
    if done.timed_out:
        step.status = "timeout"
        step.reason = f"killed at its budget of {step.budget_s:.0f} s"
    return done


def _fail(step: StepReport, reason: str) -> None:
    step.status, step.reason = "failed", reason


RUNNERS: dict[str, Callable[[Context, StepReport], None]] = {
    "pytest_gpu": step_pytest, "throughput": step_throughput, "ddranking": step_ddranking, "suite": step_suite}


def new_reports() -> list[StepReport]:
    """One not-yet-run report per step, in order."""
    return [StepReport(name, TITLES[name]) for name in STEPS]


def run_steps(ctx: Context | None, budget: Budget, selected: Sequence[str], on_step: Callable[[], None],
              reports: list[StepReport] | None = None,
              runners: Mapping[str, Callable[[Context, StepReport], None]] = RUNNERS,
              why_not: str = "") -> list[StepReport]:
    """Every step in order (filling ``reports``, new ones if not given), each at its allotment of
    ``budget``; ``on_step`` after each (the report is rewritten). Without a context (setup failed)
    every step is skipped with ``why_not``."""
    reports = new_reports() if reports is None else reports
    budget.start()
    for i, step in enumerate(reports):
        if step.name not in selected:
            step.reason = "not selected (--steps)"
            continue
        if ctx is None:
            step.reason = why_not
            continue
        pending = [s.name for s in reports[i:] if s.name in selected]
        seconds = budget.allot(step.name, pending)
        step.budget_s = round(seconds, 1)
        if seconds < MIN_STEP_SECONDS:
            step.reason = (f"budget spent: {max(0.0, budget.left()):.0f} s of the {budget.total:.0f} s left, "
                           f"its share {seconds:.0f} s is under {MIN_STEP_SECONDS:.0f} s")
            continue
        try:
            runners[step.name](ctx, step)
        except Stop:
            step.status, step.reason = "failed", "interrupted (SIGTERM or SIGINT)"
            on_step()
            raise
        except Exception as exc:  # a bug here must not lose the report
            step.status, step.reason = "failed", f"the acceptance script itself failed: {type(exc).__name__}: {exc}"
        on_step()
    return reports


def _stop(signum: int, frame: Any) -> None:
    raise Stop(signal.Signals(signum).name)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options; bad ones exit 2 with a message that says what to give instead."""
    parser = argparse.ArgumentParser(prog="gpu_acceptance", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (CPU mode)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                        help=f"seconds for the four steps together (default {DEFAULT_BUDGET:.0f})")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu-acceptance",
                        help="where report.json, report.md and the step logs go (default benchmarks/results/gpu-acceptance)")
    parser.add_argument("--work", type=Path, default=None,
                        help="data, caches, run records (default: a new folder under the system's temporary folder)")
    parser.add_argument("--python", type=Path, default=None, help="run everything with this interpreter (no venv)")
    parser.add_argument("--no-venv", action="store_true", help="run everything with the Python running this script")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"the environment to create or reuse ({DEFAULT_VENV})")
    parser.add_argument("--setup-timeout", type=float, default=900.0,
                        help="seconds for creating and installing the environment (default 900; not in --budget)")
    parser.add_argument("--find-links", type=Path, default=None, help="also install from the wheels in this folder (pip)")
    parser.add_argument("--ddranking", choices=("auto", "install", "skip"), default="auto",
                        help="step 3: auto (install on CUDA; on the CPU only use an environment already there), "
                             "install, or skip")
    parser.add_argument("--ddranking-venv", type=Path, default=DEFAULT_DDRANKING_VENV,
                        help=f"DD-Ranking 0.2.0's environment ({DEFAULT_DDRANKING_VENV})")
    parser.add_argument("--suite", type=Path, default=None,
                        help="step 4's suite file (default: benchmarks/suites/digits.yaml reduced, written to the work folder)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"which steps run (default all: {','.join(STEPS)})")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        parser.error(f"--device must be cpu, cuda or cuda:N (N a GPU's index), got {args.device!r}")
    if not args.budget > 0 or args.budget != args.budget or args.budget == float("inf"):
        parser.error(f"--budget must be a positive number of seconds, got {args.budget}")
    if not args.setup_timeout > 0:
        parser.error(f"--setup-timeout must be a positive number of seconds, got {args.setup_timeout}")
    chosen = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STEPS]
    if unknown or not chosen:
        parser.error(f"--steps takes a comma-separated list of {', '.join(STEPS)}; got {args.steps!r}")
    args.steps = chosen
    if args.python is not None:  # absolute, not resolved: a venv's python is a link that must stay one
        found = args.python if args.python.exists() else shutil.which(str(args.python))
        if not found:
            parser.error(f"--python {args.python}: no such interpreter")
        args.python = Path(os.path.abspath(found))
    if args.find_links is not None:
        args.find_links = args.find_links.resolve()
    if args.suite is not None and not args.suite.is_file():
        parser.error(f"--suite {args.suite}: no such file")
    return args


def writable_folder(path: Path) -> str | None:
    """None when ``path`` is (or can be made) a folder this process can write, else the problem."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"{exc.strerror or exc} ({path})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the acceptance (see the module docstring); 0 all ok or skipped, 1 a failure, 2 bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_throughput"]:
        throughput_worker(json.loads(argv[1]))
        return 0
    args = parse_args(argv)
    out = args.out.expanduser().resolve()
    problem = writable_folder(out)
    if problem is not None:
        print(f"gpu_acceptance: --out must be a folder it can write: {problem}; give another --out", file=sys.stderr)
        return 2
    work = (args.work.expanduser().resolve() if args.work is not None
            else Path(tempfile.mkdtemp(prefix="ddr-gpu-acceptance-")))
    problem = writable_folder(work)
    if problem is not None:
        print(f"gpu_acceptance: --work must be a folder it can write: {problem}; give another --work", file=sys.stderr)
        return 2
    for old in [*(out / f"{s}.log" for s in STEPS), out / "setup.log"]:
        old.unlink(missing_ok=True)
    device = "cpu" if args.device == "cpu" else "cuda"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.device.startswith("cuda:"):
        env["CUDA_VISIBLE_DEVICES"] = args.device.split(":", 1)[1]
    started = time.monotonic()
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION, "tool": "benchmarks/gpu_acceptance.py",
        "command": shlex.join(["benchmarks/gpu_acceptance.py", *argv]),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "finished": None,
        "device": args.device, "mode": "cpu" if device == "cpu" else "gpu", "budget_s": args.budget,
        "out": str(out), "work": str(work), "setup": {"status": "running"}, "environment": {}, "steps": [],
        "summary": {}, "steps_wall_s": None, "wall_s": None, "exit_status": None}
    write_report(out, report)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    steps = new_reports()
    budget = Budget(args.budget)

    def save() -> None:
        report["steps"] = [asdict(s) for s in steps]
        report["summary"] = summary_counts(steps)
        report["steps_wall_s"] = round(budget.elapsed(), 1)
        report["wall_s"] = round(time.monotonic() - started, 1)
        write_report(out, report)

    try:
        python, info, found = setup(args, out, env)
        report["setup"] = info
        report["environment"] = {**found, **git_state()}
        ctx = None
        why_not = "setup failed: " + "; ".join(info["notes"]) if python is None else ""
        if python is not None:
            if device == "cuda" and not found.get("cuda_available"):
                why_not = (f"--device {args.device} but {python} sees no usable GPU (torch {found.get('torch')}, CUDA build "
                           f"{found.get('torch_cuda_build')}, torch.cuda.is_available() False)")
                info["status"] = "failed"
                info["notes"].append(why_not)
            else:
                ctx = Context(python=python, device=device, out=out, work=work, args=args, env=env)
        write_report(out, report)

        def progress() -> None:
            save()
            done = [s for s in steps if s.status != "skipped" or s.reason]
            last = done[-1] if done else None
            if last is not None:
                print(f"gpu_acceptance: {last.name}: {last.status}" + (f" ({last.reason})" if last.reason else "")
                      + f"; {max(0.0, budget.left()):.0f} s of the budget left", flush=True)

        print(f"gpu_acceptance: setup {info['status']} ({info.get('how')}); steps get {args.budget:.0f} s; "
              f"report under {out}", flush=True)
        run_steps(ctx, budget, args.steps, progress, reports=steps, why_not=why_not)
        ok = info["status"] == "ok"
    except Stop:
        ok = False
        report["setup"].setdefault("notes", []).append("interrupted")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report["exit_status"] = exit_status(steps, ok)
    save()
    print(f"gpu_acceptance: {report['summary']}; wall {report['wall_s']:.0f} s; {out / 'report.md'}", flush=True)
    return int(report["exit_status"])


if __name__ == "__main__":
    raise SystemExit(main())
