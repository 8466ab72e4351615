"""Recorded training times of finished student jobs, for cost estimates (:mod:`ddr.runs.estimate`).

Each job the job cache stores also appends one line to ``<cache>/jobs/timings.jsonl``:
``{"sig": SIGNATURE, "epochs": E, "seconds": S}``, where the signature names what the job's
time depends on (architecture and its parameters, dataset, pixel space, device type, images per
epoch, batch size, augmentation, label strategy, loss, selection) but not its seed, index,
distilled set, learning rate or epochs, so jobs "like" a planned one are found without reading
every cache entry. ``epochs`` counts epochs times LR candidates; ``seconds`` is wall time.
The file is a hint: a missing, unreadable or partly written line is skipped.

Never imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TIMINGS_FILE = "timings.jsonl"
_MAX_BYTES = 4 << 20
"""Only the last 4 MiB of the file are read (tens of thousands of jobs)."""


def timings_path() -> Path:
    """``<cache>/jobs/timings.jsonl`` (not created)."""
    from ddr.store.cache import cache_root

    return cache_root() / "jobs" / TIMINGS_FILE


def job_signature(job: Mapping[str, Any], images: int) -> str:
    """The similarity signature of a job (a :meth:`StudentJob.to_dict` mapping) training on
    ``images`` images per epoch."""
    from ddr.store.hashing import sha256_json

    recipe = job.get("recipe") or {}
    context = job.get("context") or {}
    return sha256_json({
        "arch": job.get("arch"), "arch_params": job.get("arch_params"), "images": int(images),
        "batch_size": recipe.get("batch_size"), "augmentation": job.get("augmentation"),
        "label_strategy": job.get("label_strategy"), "loss": job.get("loss"), "selection": job.get("selection"),
        "test_interval": job.get("test_interval"), "metrics": job.get("metrics") or [],
        "dataset": context.get("dataset"), "pixel_space": context.get("pixel_space"),
        "device": context.get("device"),
    })[:32]


def record_timing(signature: str, epochs: int, seconds: float) -> None:
    """Append one timing (``epochs``: epochs × LR candidates; ``seconds``: wall time); never raises."""
    line = json.dumps({"sig": signature, "epochs": int(epochs), "seconds": round(float(seconds), 4)}) + "\n"
    try:
        path = timings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001 - a hint file must never fail a run
        return


def read_timings() -> dict[str, list[tuple[int, float]]]:
    """Every recorded ``(epochs, seconds)`` by signature (the file's last 4 MiB); ``{}`` when none."""
    out: dict[str, list[tuple[int, float]]] = {}
    try:
        path = timings_path()
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _MAX_BYTES))
            data = handle.read()
    except Exception:  # noqa: BLE001 - no file, no hints
        return out
    for raw in data.decode("utf-8", "replace").splitlines():
        try:
            item = json.loads(raw)
            epochs, seconds = int(item["epochs"]), float(item["seconds"])
        except (ValueError, KeyError, TypeError):
            continue
        if epochs > 0 and seconds >= 0:
            out.setdefault(str(item["sig"]), []).append((epochs, seconds))
    return out
