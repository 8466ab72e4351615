"""The job cache: a finished student job's result, stored under its content key.

``<cache>/jobs/<key[:2]>/<key>/result.json`` (plus ``model.safetensors`` for jobs whose model is
an asset, the real-data reference that serves as teacher). ``result.json`` is written last and
atomically, so an entry is either complete or absent; an unreadable entry is a miss.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError
from ddr.store.cache import atomic_write_json, entry_dir, read_json

if TYPE_CHECKING:  # pragma: no cover
    import torch

NAMESPACE = "jobs"
RESULT_FILE = "result.json"
MODEL_FILE = "model.safetensors"


def job_dir(key: str) -> Path:
    return entry_dir(NAMESPACE, key)


def cached_record(key: str, *, needs_model: bool = False) -> dict[str, Any] | None:
    """The cached result record (a dict with at least ``key``) of job ``key``, or ``None``."""
    folder = job_dir(key)
    record = read_json(folder / RESULT_FILE)
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    if needs_model and not (folder / MODEL_FILE).is_file():
        return None
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

    from ddr.store.writable import fix_for, reason

    folder = job_dir(str(record["key"]))
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if model_state is not None:
            from safetensors.torch import save_file

            fd, name = tempfile.mkstemp(prefix=f".{MODEL_FILE}.", dir=folder)
            os.close(fd)
            tmp = Path(name)
            save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(tmp))
            os.replace(tmp, folder / MODEL_FILE)
            tmp = None
        atomic_write_json(folder / RESULT_FILE, record)
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
