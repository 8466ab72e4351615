"""Run records: ``run_spec.json``, ``metrics.json`` and ``env.json`` in one directory per run.

Files are written atomically, so an interrupted run never leaves a truncated record, and an
existing record of another run is never overwritten (the directory name holds the run hash).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.store.cache import atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from ddr.plugin.manager import PluginSystem
    from ddr.runs.evaluate import EvaluationResult


def record_folder(out: Path, label: str, run_spec: dict[str, Any]) -> Path:
    """``out/<label>-<hash of the run spec>``: one directory per distinct run, never reused."""
    from ddr.store.hashing import sha256_json

    return Path(out) / f"{label.replace('/', '_').replace(':', '_')}-{sha256_json(run_spec)[:10]}"


def write_records(folder: Path, result: "EvaluationResult", system: "PluginSystem",
                  extra_metrics: dict[str, Any] | None = None) -> Path:
    """Write the three record files of ``result`` into ``folder`` (created) and return it."""
    from ddr.store.envinfo import environment_info

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "run_spec.json", result.run_spec)
    metrics = result.metrics_record()
    metrics.update(extra_metrics or {})
    atomic_write_json(folder / "metrics.json", metrics)
    env = environment_info(plugins=system.describe(), device=result.run_spec.get("device"))
    atomic_write_json(folder / "env.json", env)
    return folder
