"""Run records: ``run_spec.json``, ``metrics.json`` and ``env.json`` in one directory per run.

A record folder is written under a temporary name and renamed into place, so it is complete or
absent; an existing record of another run is never overwritten (the folder name holds the run
hash). :func:`check_writable` refuses an unusable ``--out`` before any work starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError
from ddr.store.cache import atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from ddr.plugin.manager import PluginSystem
    from ddr.records.run import EvaluationResult


RUN_ID_PREFIX = 10
"""How many hex digits of the run id end a record folder's name (and ``ddr results`` shows)."""


def run_id_of(identity: dict[str, Any]) -> str:
    """The run id of a record: a suite unit's id (``suite_unit``) when it is one, else the sha256
    of ``identity`` (the run spec, plus the evaluated set's ``distilled_sha256`` for ``ddr eval``).

    It is written into ``metrics.json`` as ``run_id``, the database keys the run by it, and the
    record folder's name ends with its first :data:`RUN_ID_PREFIX` digits, so the id ``ddr results``
    shows finds the run in ``ddr show`` and ``ddr compare``."""
    from ddr.store.hashing import sha256_json

    unit = identity.get("suite_unit")
    return str(unit) if isinstance(unit, str) and unit else sha256_json(identity)


def record_folder(out: Path, label: str, run_spec: dict[str, Any]) -> Path:
    """``out/<label>-<run id[:10]>`` (:func:`run_id_of` of ``run_spec``): one directory per
    distinct run, never reused."""
    return Path(out) / f"{label.replace('/', '_').replace(':', '_')}-{run_id_of(run_spec)[:RUN_ID_PREFIX]}"


def check_writable(directory: Path, what: str = "--out") -> None:
    """Fail before any work when ``directory`` cannot hold records: it is (below) a file, or
    cannot be created or written. The message names the path and the fix."""
    from ddr.store.writable import fix_for, probe, reason

    directory = Path(directory)
    try:
        probe(directory)  # writes (and fsyncs) a few KiB: a full disk is refused too
    except OSError as exc:
        raise ArtifactError(f"cannot write run records to {directory} ({what}): {reason(exc)}; "
                            f"{fix_for(exc, directory, f'choose a writable directory with {what} DIR')}") from None


def write_records(folder: Path, result: "EvaluationResult", system: "PluginSystem",
                  extra_metrics: dict[str, Any] | None = None, log_text: str | None = None) -> Path:
    """Write the three record files of ``result`` (and ``log.txt`` when ``log_text`` is given)
    into ``folder`` and return it.

    The files are written into a temporary sibling folder that is renamed into place, so a
    record folder is complete or absent; an earlier record of the same run is replaced.
    """
    from ddr.store.envinfo import environment_info

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        atomic_write_json(tmp / "run_spec.json", result.run_spec)
        metrics = result.metrics_record()
        metrics.update(extra_metrics or {})
        atomic_write_json(tmp / "metrics.json", metrics)
        env = environment_info(plugins=system.describe(), device=result.run_spec.get("device"))
        atomic_write_json(tmp / "env.json", env)
        if log_text is not None:  # what the run said while it ran (log.txt)
            (tmp / "log.txt").write_text(log_text, encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from ddr.store.writable import fix_for, reason, rescue_dir

        rescue = rescue_dir(folder.name)
        saved: Path | None = None
        if folder != rescue:  # keep the finished record somewhere safe and say where
            try:
                saved = write_records(rescue, result, system, extra_metrics, log_text)
            except ArtifactError:
                saved = None
        where = (f"the record was saved to {saved} instead (`ddr show {saved}`; move it once there is space)"
                 if saved is not None else "the finished jobs stay in the job cache, so rerunning with a writable "
                 "--out costs seconds")
        raise ArtifactError(f"cannot write the run record {folder}: {reason(exc)}; "
                            f"{fix_for(exc, folder.parent, 'choose a writable directory with --out DIR')}; "
                            f"{where}") from exc
    return folder
