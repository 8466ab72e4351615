"""Content hashes: canonical JSON of configs and run specs, files, and tensor contents.

All digests are SHA-256, returned as 64-character lower-case hex strings. They enter cache keys
and result records, so their inputs are canonical: the same value always gives the same bytes,
independent of dict order, process, platform or Python's hash randomisation.

torch is imported only inside :func:`tensor_sha256`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from os import PathLike
from pathlib import PurePath
from typing import Any

import numpy as np

from ddr.errors import ArtifactError, DdrError

_FILE_CHUNK_BYTES = 1 << 20


def _to_json_value(obj: Any, where: str) -> Any:
    """``obj`` as plain JSON data (dict with str keys, list, str, int, float, bool, None)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return _to_json_value(obj.value, where)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise DdrError(
                f"cannot hash {where} = {obj!r}: NaN and infinities have no canonical JSON form; "
                "replace them with null or a finite number"
            )
        return float(obj)
    if isinstance(obj, np.generic) and obj.ndim == 0 and not isinstance(obj, np.void):
        return _to_json_value(obj.item(), where)
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # Field by field rather than dataclasses.asdict: asdict cannot rebuild read-only
        # mappings (the specs hold MappingProxyType fields).
        return {
            f.name: _to_json_value(getattr(obj, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, Mapping):
        result = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise DdrError(
                    f"cannot hash {where}: mapping key {key!r} is {type(key).__name__}, "
                    "canonical JSON needs str keys; convert the keys to strings"
                )
            result[key] = _to_json_value(value, f"{where}[{key!r}]")
        return result
    if isinstance(obj, (list, tuple)):
        return [_to_json_value(item, f"{where}[{i}]") for i, item in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        items = [_to_json_value(item, f"{where}{{...}}") for item in obj]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    raise DdrError(
        f"cannot hash {where}: {type(obj).__name__} has no canonical JSON form; use numbers, "
        "strings, lists, dicts, paths or dataclasses (hash tensors with tensor_sha256)"
    )


def canonical_json(obj: Any) -> str:
    """The one JSON text of ``obj`` used for hashing.

    Keys sorted, no whitespace, ASCII only; floats in Python's shortest round-trip form (so
    ``1.0`` and ``1`` differ); tuples and sets become lists (sets sorted); ``Path`` becomes its
    POSIX string; a dataclass becomes the dict of its fields (its class name is not included);
    enums their value; numpy scalars the Python number. NaN, infinities, non-str mapping keys and
    other types raise :class:`DdrError`.
    """
    return json.dumps(
        _to_json_value(obj, "value"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 hex digest of raw bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """SHA-256 hex digest of :func:`canonical_json` of ``obj`` (UTF-8)."""
    return sha256_bytes(canonical_json(obj).encode("utf-8"))


def sha256_file(path: str | PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_FILE_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise ArtifactError(f"cannot hash file {str(path)!r}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def tensor_sha256(*tensors: Any) -> str:
    """SHA-256 hex digest of the dtype, shape and values of each tensor, in order.

    Used as ``distilled_sha256`` of ``(images, labels, soft_labels)``. Each argument is a torch
    tensor, a numpy array (hashed like the tensor ``torch.from_numpy`` makes of it) or ``None``
    (an absent optional tensor, hashed as a marker, so ``(x, None)`` differs from ``(x,)``).
    Values are the bytes of a contiguous CPU copy, so the device and memory layout (strides,
    channels_last) do not matter; byte order is the machine's (little-endian everywhere ddr runs).
    """
    import torch

    digest = hashlib.sha256()
    for position, item in enumerate(tensors):
        if item is None:
            digest.update(b"none\n")
            continue
        if isinstance(item, np.ndarray):
            try:
                item = torch.from_numpy(np.ascontiguousarray(item))
            except TypeError as exc:
                raise DdrError(
                    f"cannot hash array argument {position}: numpy dtype {item.dtype} has no "
                    "torch equivalent; convert it to a numeric dtype"
                ) from exc
        if not isinstance(item, torch.Tensor):
            raise DdrError(
                f"tensor_sha256 argument {position} is {type(item).__name__}; expected a torch "
                "tensor, a numpy array or None"
            )
        if item.layout != torch.strided or item.is_quantized:
            raise DdrError(
                f"cannot hash tensor argument {position}: layout {item.layout} is not supported; "
                "convert it with .to_dense() / .dequantize() first"
            )
        header = canonical_json({"dtype": str(item.dtype), "shape": list(item.shape)})
        digest.update(header.encode("ascii") + b"\n")
        values = item.detach().to("cpu").resolve_conj().resolve_neg().contiguous().reshape(-1)
        # A byte view works for every dtype, including those numpy lacks (bfloat16).
        digest.update(values.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
