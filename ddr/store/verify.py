"""``ddr cache verify``: every entry of the cache checked against its checksums.

* ``jobs``: each result record against its own checksum, and its model against the record's
  ``model_sha256`` (:func:`ddr.store.jobs.read_entry`);
* ``distilled``: each set loaded and hashed as a run reads it (``content_sha256`` of its meta);
* every asset namespace (``experts``, ``experts-imported``, what plugins cache through
  ``ctx.asset``): each folder against its manifest (:func:`ddr.store.checksums.check_manifest`).

Folders of the cache that hold no entries (``quarantine``) are skipped. Nothing is changed unless
``quarantine=True``: then each corrupt entry is moved to ``<cache>/quarantine/``, so the next run
rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ddr.errors import DdrError
from ddr.store.checksums import QUARANTINE, UNVERIFIABLE, Corrupt, check_manifest, quarantine

SKIPPED = (QUARANTINE,)


@dataclass(frozen=True)
class EntryReport:
    """One entry: its namespace, folder, ``ok`` / ``corrupt`` / ``unverifiable`` (written by an
    older ddr, without checksums), the problem and, when moved, where to."""

    namespace: str
    entry: Path
    status: str
    problem: str = ""
    moved_to: Path | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"namespace": self.namespace, "entry": str(self.entry), "status": self.status,
                "problem": self.problem or None, "moved_to": str(self.moved_to) if self.moved_to else None}


def _job(folder: Path) -> Corrupt | None:
    from ddr.store.jobs import read_entry

    return read_entry(folder.name)[1]


def _distilled(folder: Path) -> Corrupt | None:
    from ddr.store.formats import load_distilled

    try:
        load_distilled(folder)
    except DdrError as exc:
        return Corrupt(folder, str(exc).splitlines()[0])
    return None


CHECKERS: dict[str, Callable[[Path], Corrupt | None]] = {"jobs": _job, "distilled": _distilled}
"""How each namespace's entries are checked; any other namespace holds assets (manifests)."""


def entries(root: Path) -> list[tuple[str, Path]]:
    """``(namespace, entry folder)`` for every entry under the cache ``root``, sorted."""
    out: list[tuple[str, Path]] = []
    for namespace in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIPPED
                            and not p.name.startswith(".")):
        out.extend((namespace.name, e) for e in sorted(namespace.glob("*/*"))
                   if e.is_dir() and not e.name.startswith("."))
    return out


def verify_cache(root: Path | None = None, *, move: bool = False,
                 progress: Callable[..., Iterable[tuple[str, Path]]] | None = None) -> list[EntryReport]:
    """Check every entry of the cache (``root``: ``DDR_CACHE_DIR`` by default); with ``move``,
    corrupt and unverifiable entries are moved to ``<cache>/quarantine/``."""
    from ddr.store.cache import cache_root

    root = root or cache_root()
    found = entries(root)
    reports = []
    walk: Iterable[tuple[str, Path]] = progress(found, total=len(found), desc="verify") if progress else found
    for namespace, folder in walk:
        problem = CHECKERS.get(namespace, check_manifest)(folder)
        if problem is None:
            reports.append(EntryReport(namespace, folder, "ok"))
            continue
        status = "unverifiable" if problem.what == UNVERIFIABLE else "corrupt"
        moved = quarantine(folder) if move else None
        reports.append(EntryReport(namespace, folder, status, problem.what, moved))
    return reports
