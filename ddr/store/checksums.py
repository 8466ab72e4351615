"""Checksums of cache entries: what an entry must hash to, checked before the entry is used.

Every cache entry carries the digest of its content, written atomically with it:

* a job-cache record (``result.json``) carries ``checksum``, the sha256 of its own canonical JSON
  without that field, and, when the entry holds a model, ``model_sha256``, the sha256 of
  ``model.safetensors``;
* an asset folder (expert trajectories, imported buffers, anything ``ctx.asset`` builds) carries
  ``.ddr-manifest.json``: the sha256 and size of every file in it, written last;
* a distilled set's ``meta.json`` carries ``content_sha256`` (checked by its loader).

A mismatch is a :class:`Corrupt` problem: the caller reports it once (which entry, what was
expected, what was found), moves the entry aside (:func:`quarantine`) and rebuilds it; an entry
written by an older ddr, without a checksum, is :data:`UNVERIFIABLE` and rebuilt the same way.
Files verified once are not hashed again by the same process unless they change.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddr.store.hashing import sha256_file, sha256_json

MANIFEST = ".ddr-manifest.json"
MANIFEST_FORMAT = 1
QUARANTINE = "quarantine"
UNVERIFIABLE = "it carries no checksum (written by an older ddr)"

_verified: dict[tuple[str, int, int], str] = {}
"""Files hashed by this process: (path, size, mtime_ns) -> sha256, so a file is hashed once."""


@dataclass(frozen=True)
class Corrupt:
    """What is wrong with a cache entry (``entry``: its folder; ``what``: the sentence saying it)."""

    entry: Path
    what: str

    def message(self) -> str:
        return f"cache entry {self.entry} is corrupt: {self.what}"


def file_sha256(path: Path) -> str:
    """sha256 of ``path``'s bytes, from this process's memo when the file did not change."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _verified:
        _verified[memo] = sha256_file(path)
    return _verified[memo]


def record_checksum(record: dict[str, Any]) -> str:
    """The checksum of a record: sha256 of its canonical JSON without ``checksum``."""
    return sha256_json({k: v for k, v in record.items() if k != "checksum"})


def sealed(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its ``checksum``."""
    out = {k: v for k, v in record.items() if k != "checksum"}
    out["checksum"] = record_checksum(out)
    return out


def check_record(record: dict[str, Any], entry: Path) -> Corrupt | None:
    """The problem with a record's checksum, if any."""
    if "checksum" not in record:
        return Corrupt(entry, UNVERIFIABLE)
    if record["checksum"] != record_checksum(record):
        return Corrupt(entry, "its record does not match its checksum (it was edited or damaged after it was "
                              "written)")
    return None


def check_file(path: Path, expected: str, entry: Path) -> Corrupt | None:
    """The problem with ``path`` against its expected sha256, if any."""
    if not path.is_file():
        return Corrupt(entry, f"{path.name} is missing")
    found = file_sha256(path)
    if found != expected:
        return Corrupt(entry, f"{path.name} hashes to {found[:16]}..., not the {expected[:16]}... it was written with")
    return None


def write_manifest(folder: Path) -> None:
    """Record the sha256 and size of every file under ``folder`` (written last, atomically)."""
    from ddr.store.cache import atomic_write_json

    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[path.relative_to(folder).as_posix()] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    atomic_write_json(folder / MANIFEST, {"format": MANIFEST_FORMAT, "files": files})


def check_manifest(folder: Path) -> Corrupt | None:
    """The problem with an asset folder against its manifest, if any (a missing, added or changed
    file, or no manifest at all)."""
    from ddr.store.cache import read_json

    manifest = read_json(folder / MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return Corrupt(folder, UNVERIFIABLE if not (folder / MANIFEST).exists() else "its manifest is unreadable")
    expected: dict[str, Any] = manifest["files"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    if present - set(expected):
        return Corrupt(folder, f"it holds files it was not written with: {sorted(present - set(expected))[:3]}")
    for name, info in expected.items():
        problem = check_file(folder / name, str(info.get("sha256")), folder)
        if problem is not None:
            return problem
    return None


def quarantine(entry: Path) -> Path | None:
    """Move a corrupt entry out of the cache's way, into ``<cache>/quarantine/`` (kept for
    inspection); returns where it went, or ``None`` when it could not be moved (then it is
    removed, so it is rebuilt either way)."""
    from ddr.store.cache import cache_root

    try:
        namespace = entry.relative_to(cache_root()).parts[0]
    except ValueError:
        namespace = "other"
    target = cache_root() / QUARANTINE / namespace / f"{entry.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(entry, target)
        return target
    except OSError:
        shutil.rmtree(entry, ignore_errors=True)
        return None
