"""The job cache: a finished student job's result, stored under its content key.

``<cache>/jobs/<key[:2]>/<key>/result.json`` (plus ``model.safetensors`` for jobs whose model is
an asset, the real-data reference that serves as teacher). ``result.json`` is written last and
atomically, so an entry is either complete or absent. It carries its own checksum and the
model's sha256 (:mod:`ddr.store.checksums`), both checked before the entry is used: an entry
edited or damaged after it was written is reported, moved aside and recomputed, never read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError
from ddr.store.cache import atomic_write_json, entry_dir, read_json
from ddr.store.checksums import Corrupt, check_file, check_record, quarantine, sealed

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    import torch

NAMESPACE = "jobs"
RESULT_FILE = "result.json"
MODEL_FILE = "model.safetensors"


def job_dir(key: str) -> Path:
    return entry_dir(NAMESPACE, key)


def read_entry(key: str, *, needs_model: bool = False) -> tuple[dict[str, Any] | None, Corrupt | None]:
    """``(record, None)`` for a sound entry of job ``key``; ``(None, None)`` when it is absent (or
    has no model when ``needs_model``); ``(None, problem)`` when it is corrupt: unreadable, its
    record not matching its checksum, its model not matching its sha256, or written without
    checksums by an older ddr."""
    folder = job_dir(key)
    path = folder / RESULT_FILE
    if not path.exists():
        return None, None
    record = read_json(path)
    if not isinstance(record, dict) or record.get("key") != key:
        return None, Corrupt(folder, f"its {RESULT_FILE} is unreadable or names another job")
    problem = check_record(record, folder)
    if problem is not None:
        return None, problem
    has_model = "model_sha256" in record
    if needs_model and not has_model:
        return None, None
    if has_model:
        problem = check_file(folder / MODEL_FILE, str(record["model_sha256"]), folder)
        if problem is not None:
            return None, problem
    return record, None


def cached_record(key: str, *, needs_model: bool = False,
                  on_corrupt: "Callable[[str], None] | None" = None) -> dict[str, Any] | None:
    """The cached result record (a dict with at least ``key``) of job ``key``, or ``None``.

    A corrupt entry is a miss. With ``on_corrupt`` (called holding the entry's lock), it is also
    reported through ``on_corrupt(message)`` and moved aside (``<cache>/quarantine/``), so the job
    is recomputed and stored again."""
    record, problem = read_entry(key, needs_model=needs_model)
    if problem is not None and on_corrupt is not None:
        moved = quarantine(problem.entry)
        where = f"moved to {moved}" if moved is not None else "removed"
        on_corrupt(f"warning: {problem.message()}; {where}; recomputing it")
    return record


def store_record(record: dict[str, Any], model_state: "dict[str, torch.Tensor] | None" = None) -> Path:
    """Write a job's result record (and its model's state dict) into the cache.

    The model goes to a temporary file renamed into place, then ``result.json`` is written the
    same way: an entry whose write failed or was killed half-way is a miss, never read as valid.

    Raises:
        ArtifactError: the entry cannot be written (no space left, read-only); the message says
            which entry and what to do.
    """
    import tempfile

    from ddr.store.hashing import sha256_file
    from ddr.store.writable import fix_for, reason, save_tensors

    folder = job_dir(str(record["key"]))
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if model_state is not None:
            fd, name = tempfile.mkstemp(prefix=f".{MODEL_FILE}.", dir=folder)
            os.close(fd)
            tmp = Path(name)
            save_tensors({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, tmp)
            record = {**record, "model_sha256": sha256_file(tmp)}
            os.replace(tmp, folder / MODEL_FILE)
            tmp = None
        atomic_write_json(folder / RESULT_FILE, sealed(record))
    except OSError as exc:
        where = folder.parent.parent
        raise ArtifactError(f"cannot store job {record['key'][:12]} ({record.get('role', 'job')}) in the job cache "
                            f"{where}: {reason(exc)}; "
                            f"{fix_for(exc, where, 'set DDR_CACHE_DIR to a writable directory')}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return folder


def model_path(key: str) -> Path:
    """Where the model of job ``key`` is stored (it may not exist)."""
    return job_dir(key) / MODEL_FILE
