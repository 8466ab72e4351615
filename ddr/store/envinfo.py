"""The environment record (``env.json``) written next to every result.

It describes the software and hardware a result came from so that two results can be compared
honestly: interpreter, package versions, CUDA/cuDNN and GPUs, the ddr version and source commit,
the loaded plugins, determinism settings and ``DDR_*`` environment variables. It is a record
only: nothing here seeds or changes a computation.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "numpy", "timm", "pluggy", "safetensors", "pillow", "scikit-learn")
"""Distributions whose installed versions are recorded (``None`` when not installed)."""

GIT_TIMEOUT_S = 5.0


def environment_info(
    plugins: list[dict[str, Any]] | None = None,
    deterministic: bool | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Build the environment record; every value is JSON-serialisable.

    Args:
        plugins: the loaded plugins as ``{"name", "distribution", "version", ...}`` dicts, passed
            through unchanged.
        deterministic: whether the run asked for deterministic algorithms (``--deterministic``).
        device: the device the run uses (``"cuda:0"``, ``"cpu"``).

    Returns:
        A dict with ``timestamp`` (ISO 8601 UTC), ``python``, ``platform`` (with ``cpu``, the
        CPU's model name), ``machine_id`` (a hash of the host name, not the name), ``cpu_count``,
        ``packages`` (name -> version or None), ``ddr`` (version, git commit, dirty flag),
        ``cuda`` (availability, CUDA/cuDNN versions, GPU names, device), ``plugins``,
        ``determinism`` (with ``torch_threads``) and ``env`` (``DDR_*`` variables).
    """
    import ddr

    commit, dirty = git_revision(Path(ddr.__file__).resolve().parent)
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "cpu": cpu_name(),
        },
        "machine_id": hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:16],
        "cpu_count": os.cpu_count(),
        "packages": {name: _installed_version(name) for name in PACKAGES},
        "ddr": {"version": ddr.__version__, "git_commit": commit, "git_dirty": dirty},
        "cuda": _accelerator_info(device),
        "plugins": list(plugins) if plugins is not None else [],
        "determinism": _determinism_info(deterministic),
        "env": {key: value for key, value in sorted(os.environ.items()) if key.startswith("DDR_")},
    }


def cpu_name() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux, else
    ``platform.processor()``), or ``None`` when the system does not say. ``ddr verify`` compares it
    to decide whether bit-identical numbers are to be expected (:mod:`ddr.bundle.machine`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_revision(directory: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout ``directory`` lies in, or ``(None, None)``.

    ``commit`` is the 40-hex HEAD commit; ``dirty`` is True when tracked files of the checkout
    differ from it. Both are None when git is missing or times out, ``directory`` is not in a
    checkout or holds no file tracked by it, or the repository has no commit.
    """
    commit = _git(directory, "rev-parse", "--verify", "HEAD")
    if commit is None or len(commit) != 40 or any(ch not in "0123456789abcdef" for ch in commit):
        return None, None
    # An installed copy can sit inside an unrelated checkout (a venv in a user's project): only
    # report the commit when the directory's own files are tracked by it.
    if not _git(directory, "ls-files", "--", "."):
        return None, None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def _git(directory: Path, *args: str) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock of a checkout in use.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _accelerator_info(device: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "available": None,
        "cuda_version": None,
        "cudnn_version": None,
        "gpus": [],
        "device": device,
    }
    try:
        import torch
    except ImportError:
        return info
    info["cuda_version"] = torch.version.cuda
    try:
        info["available"] = bool(torch.cuda.is_available())
        if info["available"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["cudnn_version"] = torch.backends.cudnn.version()
    except RuntimeError:  # a broken driver must not stop a result from being recorded
        info["available"] = False
    return info


def _determinism_info(requested: bool | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "requested": requested,
        "deterministic_algorithms": None,
        "cudnn_deterministic": None,
        "cudnn_benchmark": None,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "torch_threads": None,
    }
    try:
        import torch
    except ImportError:
        return info
    info["deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
    info["torch_threads"] = int(torch.get_num_threads())  # CPU results can depend on it (reduction order)
    info["cudnn_deterministic"] = bool(torch.backends.cudnn.deterministic)
    info["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    return info
