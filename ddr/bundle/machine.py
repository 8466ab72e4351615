"""The kind of machine a result came from, and whether another machine is of the same kind.

Bit-identical numbers are only to be expected on the same kind of machine: the same torch version,
the same device type, and the same processor doing the arithmetic (the GPU model on CUDA; on the
CPU its model name, architecture and torch's thread count, which can change the order of
reductions). :func:`machine_kind` reads that from an ``env.json`` record
(:mod:`ddr.store.envinfo`); :func:`differences` compares two kinds. A field either side does
not record (a record written before ddr recorded it) counts as a difference: unknown is not equal.
Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CPU_FIELDS = ("torch", "device", "arch", "cpu", "threads")
CUDA_FIELDS = ("torch", "device", "gpu", "cuda")


def device_type(device: Any) -> str:
    """``cpu``, ``cuda``, ``mps`` ... of a device name (``cuda:1`` -> ``cuda``); ``cpu`` for none."""
    text = str(device or "cpu")
    return text.split(":", 1)[0] or "cpu"


def _section(env: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = env.get(key)
    return value if isinstance(value, Mapping) else {}


def machine_kind(env: Mapping[str, Any], device: Any = None) -> dict[str, Any]:
    """What decides bit-identity, from an ``env.json`` record: ``torch`` (version), ``device``
    (type), and on CUDA ``gpu`` (the model of the device used) and ``cuda`` (the CUDA version), else
    ``arch`` (``x86_64``, ``arm64``), ``cpu`` (model name) and ``threads`` (torch's intra-op
    threads). ``device`` (``cuda:0``) is the run's device when the record does not say; a value the
    record lacks is ``None``."""
    packages, cuda = _section(env, "packages"), _section(env, "cuda")
    system, determinism = _section(env, "platform"), _section(env, "determinism")
    used = cuda.get("device") or device
    kind: dict[str, Any] = {"torch": packages.get("torch"), "device": device_type(used)}
    if kind["device"] == "cuda":
        found = cuda.get("gpus")
        gpus: list[Any] = found if isinstance(found, list) else []
        index = str(used).partition(":")[2]
        position = int(index) if index.isdigit() else 0
        kind["gpu"] = gpus[position] if position < len(gpus) else None
        kind["cuda"] = cuda.get("cuda_version")
    else:
        kind["arch"] = system.get("machine")
        kind["cpu"] = system.get("cpu")
        kind["threads"] = determinism.get("torch_threads")
    return kind


def differences(recorded: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    """How ``here`` differs from ``recorded`` (two :func:`machine_kind` results), one phrase per
    field (``cpu: 'A' recorded, 'B' here``; ``cpu: not recorded``); empty when they are the same kind."""
    fields = CUDA_FIELDS if recorded.get("device") == "cuda" or here.get("device") == "cuda" else CPU_FIELDS
    out = []
    for key in fields:
        a, b = recorded.get(key), here.get(key)
        if a is None:
            out.append(f"{key}: not recorded by the bundle")
        elif a != b:
            out.append(f"{key}: {a!r} recorded, {b!r} here")
    return out


def describe(kind: Mapping[str, Any]) -> str:
    """A kind in one line: ``torch 2.14.1 · cpu · Intel(R) Xeon(R) … · x86_64 · 2 threads``."""
    parts = [f"torch {kind.get('torch')}", str(kind.get("device"))]
    if kind.get("device") == "cuda":
        parts += [str(kind.get("gpu")), f"CUDA {kind.get('cuda')}"]
    else:
        parts += [str(kind.get("cpu")), str(kind.get("arch")), f"{kind.get('threads')} threads"]
    return " · ".join(parts)
