"""``ddr import FILE [--verify]``: a bundle's runs into the results database, marked by origin.

Each run's record (``run_spec.json``, ``metrics.json``, ``env.json``, byte for byte as bundled) is
written under ``OUT/imported/<bundle name>-<manifest sha256[:10]>/<run id>/`` (so ``ddr show`` and
``ddr compare`` read it like any record) and added to the database with

* ``origin`` ``imported``, or ``imported+verified`` when a verification of this bundle reproduced
  the run (``ddr import --verify``, or ``ddr verify`` afterwards: :func:`mark_verified`);
* ``provenance``: the bundle's file name, sha256 and manifest sha256, when it was imported, and the
  verification's summary (mode, students re-run, quantities reproduced, machine).

A run the database already holds as ``local`` (computed here) is never replaced by an imported copy
(the import says so); a run imported before is updated, and keeps ``imported+verified`` when its
numbers are the ones that were verified. Never imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.bundle.contents import BundledRun, open_bundle
from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    from ddr.bundle.verify import BundleVerification

IMPORTED, VERIFIED, LOCAL = "imported", "imported+verified", "local"


@dataclass
class ImportReport:
    """What ``ddr import`` did: per run, its id and what happened (``imported``, ``imported+verified``,
    ``kept local``); ``folder``: where the records were written; ``db``: the database."""

    bundle: Path
    folder: Path
    db: Path
    runs: list[tuple[str, str, str]] = field(default_factory=list)
    """(run id, label, outcome)"""


def _same_numbers(row: Mapping[str, Any], metrics: Mapping[str, Any]) -> bool:
    def canon(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    return canon(row.get("metrics") or {}) == canon(metrics)


def _write_record(run: BundledRun, folder: Path) -> Path:
    from ddr.store.cache import atomic_write_json

    target = folder / run.folder.split("/", 1)[1]
    target.mkdir(parents=True, exist_ok=True)
    for name, data in (("run_spec.json", run.run_spec), ("metrics.json", run.metrics), ("env.json", run.env)):
        atomic_write_json(target / name, data)
    return target


def import_bundle(path: str | Path, *, db: str | Path | None = None, out: str | Path = "ddr-runs",
                  verification: "BundleVerification | None" = None) -> ImportReport:
    """Add the runs of the bundle at ``path`` to the results database ``db`` (default
    ``$DDR_CACHE_DIR/results.sqlite``), their records under ``out/imported/``; with
    ``verification`` (of this same bundle), the runs it reproduced are ``imported+verified``.

    Raises :class:`~ddr.bundle.container.BundleError` when the bundle is refused (nothing is
    imported then), :class:`~ddr.errors.ArtifactError` when ``out`` cannot be written."""
    from ddr.store.records import check_writable
    from ddr.store.results import ResultsDB, load_record

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open_bundle(path) as bundle:
        if verification is not None and verification.manifest_sha256 != bundle.manifest_sha256:
            raise DdrError(f"the verification given is of another bundle than {path}")
        verified = {r.run_id: r for r in (verification.runs if verification else []) if r.verified}
        stem = Path(path).name.split(".")[0] or "bundle"
        folder = Path(out) / "imported" / f"{stem}-{bundle.manifest_sha256[:10]}"
        check_writable(folder.parent, what="the imported records (--out)")
        base = {"bundle": Path(path).name, "bundle_sha256": bundle.sha256,
                "manifest_sha256": bundle.manifest_sha256, "kind": bundle.info.get("kind"),
                "name": bundle.info.get("name"), "imported": now}
        with ResultsDB(db) as database:
            report = ImportReport(bundle=Path(path), folder=folder, db=database.path)
            for run in bundle.runs:
                existing = database.query(where={"run_id": run.run_id})
                if existing and existing[0].get("origin") == LOCAL:
                    report.runs.append((run.run_id, run.label, "kept local (computed here; not replaced)"))
                    continue
                row = load_record(_write_record(run, folder))
                row["run_id"] = run.run_id
                provenance = dict(base)
                origin = IMPORTED
                if run.run_id in verified:
                    origin = VERIFIED
                    provenance["verification"] = {**verified[run.run_id].summary(), "verified_at": now}
                elif existing and existing[0].get("origin") == VERIFIED and _same_numbers(existing[0], run.metrics):
                    origin = VERIFIED  # the numbers that were verified: the mark stays
                    provenance["verification"] = (existing[0].get("provenance") or {}).get("verification")
                row["origin"], row["provenance"] = origin, provenance
                database.add_row(row)
                report.runs.append((run.run_id, run.label, origin))
    return report


def mark_verified(verification: "BundleVerification", *, db: str | Path | None = None) -> list[str]:
    """Mark ``imported+verified`` every run of the verified bundle that the database ``db`` holds
    as imported with exactly the bundle's numbers; returns their ids. Runs not imported (or
    ``local``) are left as they are."""
    from ddr.store.results import ResultsDB, default_path

    target = Path(db) if db is not None else default_path()
    if not target.is_file():
        return []
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    marked = []
    with ResultsDB(target) as database:
        for report in verification.runs:
            if not report.verified:
                continue
            rows = database.query(where={"run_id": report.run_id})
            if not rows or rows[0].get("origin") not in (IMPORTED, VERIFIED) or \
                    not _same_numbers(rows[0], report.recorded):
                continue
            provenance = {**(rows[0].get("provenance") or {}),
                          "verification": {**report.summary(), "verified_at": now,
                                           "bundle_sha256": verification.sha256}}
            database.set_origin(report.run_id, VERIFIED, provenance)
            marked.append(report.run_id)
    return marked
