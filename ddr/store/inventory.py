"""What is in the cache (``ddr cache info / ls / prune / gc``), and removing parts of it safely.

The cache (``DDR_CACHE_DIR``) holds, by kind:

* ``jobs``: finished student jobs (``jobs/<k2>/<key>/result.json``);
* ``reference``: jobs that also keep their model (the real-data reference, served as teacher);
* ``distilled``: distilled sets (``distilled/<k2>/<key>/``, whose ``meta.json`` names the method
  and dataset);
* ``experts``: expert trajectories, trained or imported (``experts``, ``experts-imported``);
* ``zca``: ZCA whitening fits (``zca/<dataset>-<key>.safetensors``);
* ``assets``: every other asset namespace (what plugins cache through ``ctx.asset``);
* ``quarantine``: entries moved aside as corrupt (``quarantine/<namespace>/<entry>-<time>-<pid>``).

Besides entries the cache root holds the results database (``results.sqlite``, with its
``-wal``/``-shm`` files) and, unless ``DDR_DATA_DIR`` is set, the datasets (``data/``): neither is
ever an entry, so :func:`remove_entry` can never delete them; the results database goes only
through :func:`remove_results_db`, which the CLI calls only under ``--include-results-db``.

An entry another process holds the lock of (:mod:`ddr.store.locks`: it is being built or read
under its lock) is never removed: removal takes the entry's lock without blocking and skips the
entry when it cannot. Sizes are in bytes, ages and times in seconds (times: seconds since the
epoch). Never imports torch.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddr.errors import ConfigError
from ddr.store.cache import read_json
from ddr.store.locks import LOCK_SUFFIX, lock_path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

KINDS = ("jobs", "reference", "distilled", "experts", "zca", "assets", "quarantine")
"""Every kind of cache entry, in the order ``ddr cache info`` lists them."""

EXPERT_NAMESPACES = ("experts", "experts-imported")
QUARANTINE = "quarantine"
ZCA = "zca"
RESULTS_DB_FILES = ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm", "results.sqlite-journal")
"""The results database and SQLite's side files: never entries, never garbage."""
NOT_ENTRIES = frozenset({"data"})
"""Folders of the cache root that hold no cache entries (``data``: the datasets by default)."""

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_AGE_UNITS = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_age(text: str) -> float:
    """``"7d"`` -> seconds (``s``, ``m``, ``h``, ``d``, ``w``; a bare number is days).

    Raises:
        ConfigError: ``text`` is no such duration.
    """
    match = _AGE.match(str(text))
    if not match:
        raise ConfigError(f"--older-than {text!r}: give a duration such as 30m, 12h, 7d or 2w "
                          "(s, m, h, d, w; a bare number is days)")
    return float(match.group(1)) * _AGE_UNITS[match.group(2)]


def format_size(size: int) -> str:
    """``size`` bytes as ``12.3 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - unreachable


def format_age(seconds: float) -> str:
    """``seconds`` as ``45s``, ``12m``, ``5h``, ``3d``."""
    seconds = max(0.0, seconds)
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{int(seconds // span)}{unit}"
    return f"{int(seconds)}s"


@dataclass(frozen=True)
class Entry:
    """One cache entry.

    Attributes:
        kind: one of :data:`KINDS`.
        namespace: the cache folder it lives in (``jobs``, ``experts-imported``, ``zca`` ...).
        path: its folder (or file, for a ZCA fit).
        size: bytes on disk (every file under it).
        mtime: when it was last written (seconds since the epoch).
        describes: what its metadata says it is (``method``, ``dataset``, ``protocol``, ``role``,
            ``arch``, ``ipc``), where it says it.
    """

    kind: str
    namespace: str
    path: Path
    size: int
    mtime: float
    describes: dict[str, Any] = field(default_factory=dict)

    def age(self, now: float | None = None) -> float:
        """Seconds since it was last written."""
        return (time.time() if now is None else now) - self.mtime

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "path": str(self.path), "size": self.size,
                "age_seconds": round(self.age(now), 1), **{k: v for k, v in self.describes.items() if v is not None}}


def _size_and_mtime(path: Path) -> tuple[int, float]:
    try:
        if path.is_file() or path.is_symlink():
            st = path.lstat()
            return st.st_size, st.st_mtime
        size, mtime = 0, path.stat().st_mtime
        for base, _dirs, files in os.walk(path):
            for name in files:
                try:
                    st = os.lstat(os.path.join(base, name))
                except OSError:
                    continue
                size += st.st_size
                mtime = max(mtime, st.st_mtime)
        return size, mtime
    except OSError:
        return 0, 0.0


def _keyed(namespace_dir: Path) -> Iterator[Path]:
    """The entry folders ``<namespace>/<k2>/<key>`` (not temporaries, not lock files)."""
    for shard in sorted(p for p in namespace_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from sorted(e for e in shard.iterdir() if e.is_dir() and not e.name.startswith("."))


def _job(folder: Path) -> tuple[str, dict[str, Any]]:
    record = read_json(folder / "result.json")
    record = record if isinstance(record, dict) else {}
    role = record.get("role")
    kind = "reference" if role == "real" and (folder / "model.safetensors").exists() else "jobs"
    return kind, {"role": role}


def _distilled(folder: Path) -> dict[str, Any]:
    meta = read_json(folder / "meta.json")
    inner = meta.get("meta") if isinstance(meta, dict) else None
    inner = inner if isinstance(inner, dict) else {}
    return {"method": inner.get("method"), "dataset": inner.get("dataset"), "ipc": inner.get("ipc"),
            "protocol": inner.get("protocol")}


def _expert(folder: Path) -> dict[str, Any]:
    meta = read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    found = meta.get("settings")
    settings: dict[str, Any] = found if isinstance(found, dict) else {}
    return {"dataset": meta.get("dataset", settings.get("dataset")), "arch": meta.get("arch", settings.get("arch"))}


def _data_dir_inside(root: Path) -> Path | None:
    from ddr.store.paths import data_dir

    try:
        data = data_dir().resolve()
        return data if data.parent == root.resolve() else None
    except OSError:
        return None


def scan(root: Path | None = None) -> list[Entry]:
    """Every entry of the cache ``root`` (``DDR_CACHE_DIR`` by default), sorted by kind then path."""
    from ddr.store.paths import cache_dir

    root = Path(root) if root is not None else cache_dir()
    if not root.is_dir():
        return []
    data = _data_dir_inside(root)
    out: list[Entry] = []
    for namespace_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = namespace_dir.name
        if name in NOT_ENTRIES or (data is not None and namespace_dir.resolve() == data):
            continue
        if name == ZCA:
            for fit in sorted(namespace_dir.glob("*.safetensors")):
                if fit.name.startswith("."):
                    continue
                size, mtime = _size_and_mtime(fit)
                dataset = fit.stem.rsplit("-", 1)[0] if "-" in fit.stem else None
                out.append(Entry("zca", ZCA, fit, size, mtime, {"dataset": dataset}))
            continue
        if name == QUARANTINE:
            for ns in sorted(p for p in namespace_dir.iterdir() if p.is_dir()):
                for moved in sorted(ns.iterdir()):
                    size, mtime = _size_and_mtime(moved)
                    out.append(Entry("quarantine", f"{QUARANTINE}/{ns.name}", moved, size, mtime))
            continue
        for folder in _keyed(namespace_dir):
            size, mtime = _size_and_mtime(folder)
            if name == "jobs":
                kind, describes = _job(folder)
            elif name == "distilled":
                kind, describes = "distilled", _distilled(folder)
            elif name in EXPERT_NAMESPACES:
                kind, describes = "experts", _expert(folder)
            else:
                kind, describes = "assets", {}
            out.append(Entry(kind, name, folder, size, mtime, describes))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda e: (order[e.kind], str(e.path)))


def results_db_size(root: Path | None = None) -> int | None:
    """Bytes of the results database in the cache root (with its side files), ``None`` when absent."""
    from ddr.store.paths import cache_dir

    root = Path(root) if root is not None else cache_dir()
    files = [root / name for name in RESULTS_DB_FILES if (root / name).is_file()]
    return sum(f.stat().st_size for f in files) if files else None


def summary(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    """``{kind: {"entries": n, "bytes": size}}`` for every kind of :data:`KINDS` (zeros included)."""
    out = {kind: {"entries": 0, "bytes": 0} for kind in KINDS}
    for e in entries:
        out[e.kind]["entries"] += 1
        out[e.kind]["bytes"] += e.size
    return out


Usage = Mapping[str, Mapping[str, frozenset[str]]]
"""Entry key (its folder name) -> ``{"method"|"dataset"|"protocol": the values of the runs that used it}``."""


def record_usage(record_dirs: Iterable[str | Path]) -> dict[str, dict[str, frozenset[str]]]:
    """What the recorded runs say each cache entry served (:data:`Usage`).

    Jobs and distilled sets are content-keyed: one job may serve several protocols, and neither
    knows the protocol of the runs that used it. Each run record's ``metrics.json`` does: it lists
    its jobs' keys (``students[*].key``, ``reference.key``), its distilled set's key
    (``run_spec.distill_key``) and its ``protocol``, method and dataset. Unreadable records are
    skipped (``ddr cache ls`` is not the place to fail on them).
    """
    found: dict[str, dict[str, set[str]]] = {}
    for folder in record_dirs:
        record = read_json(Path(folder) / "metrics.json")
        if not isinstance(record, dict):
            continue
        found_spec = record.get("run_spec")
        spec: dict[str, Any] = found_spec if isinstance(found_spec, dict) else {}
        values = {"protocol": record.get("protocol"), "method": spec.get("method"), "dataset": spec.get("dataset")}
        keys = [spec.get("distill_key")]
        for job in [record.get("reference"), *(record.get("students") or [])]:
            if isinstance(job, dict):
                keys.append(job.get("key"))
        for key in keys:
            if not isinstance(key, str):
                continue
            slot = found.setdefault(key, {"protocol": set(), "method": set(), "dataset": set()})
            for name, value in values.items():
                if isinstance(value, str):
                    slot[name].add(value)
    return {key: {name: frozenset(v) for name, v in slot.items()} for key, slot in found.items()}


def select(entries: Iterable[Entry], *, kinds: Sequence[str] = (), method: str | None = None,
           dataset: str | None = None, protocol: str | None = None, older_than: float | None = None,
           now: float | None = None, usage: Usage | None = None) -> list[Entry]:
    """The entries that match every filter given: one of ``kinds``, whose metadata names
    ``method`` / ``dataset`` / ``protocol`` or, where the metadata does not say, that a recorded
    run of that method / dataset / protocol used (``usage``: :func:`record_usage`; an entry neither
    names never matches a filter on it), last written more than ``older_than`` seconds before ``now``.

    Raises:
        ConfigError: an unknown kind.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown cache kind {', '.join(map(repr, unknown))}; choose from {', '.join(KINDS)}")
    now = time.time() if now is None else now
    wanted = {"method": method, "dataset": dataset, "protocol": protocol}
    usage = usage or {}

    def matches(e: Entry, key: str, value: str) -> bool:
        if e.describes.get(key) is not None:
            return str(e.describes[key]) == value
        return value in usage.get(e.path.name, {}).get(key, frozenset())

    out = []
    for e in entries:
        if kinds and e.kind not in kinds:
            continue
        if any(value is not None and not matches(e, key, value) for key, value in wanted.items()):
            continue
        if older_than is not None and e.age(now) <= older_than:
            continue
        out.append(e)
    return out


# -- removing ------------------------------------------------------------------------------------

@contextmanager
def try_lock(entry: Path) -> Iterator[bool]:
    """Hold the lock of cache entry ``entry`` (:func:`ddr.store.locks.lock_path`) for the block
    when no one else holds it: yields ``True`` then, ``False`` (holding nothing) when another
    process, or this one through :func:`ddr.store.locks.entry_lock`, holds it. Creates no lock
    file where none exists (yields ``True``: no one can hold a lock that has no file)."""
    path = lock_path(entry)
    if fcntl is None or not path.exists():  # pragma: no cover - Windows
        yield True
        return
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_locked(entry: Path) -> bool:
    """Whether some process (this one included) holds the lock of ``entry`` now."""
    with try_lock(entry) as got:
        return not got


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _guard(path: Path, root: Path) -> None:
    """Refuse any path outside the cache, the cache root itself, the results database and the
    datasets (a bug elsewhere must never turn into deleting them)."""
    resolved, base = path.resolve(), root.resolve()
    if resolved == base or base not in resolved.parents:
        raise ConfigError(f"refusing to remove {path}: it is not inside the cache {root}")
    if resolved.parent == base and (resolved.name in RESULTS_DB_FILES or resolved.name in NOT_ENTRIES):
        raise ConfigError(f"refusing to remove {path}: the results database and the datasets are not cache entries")


def remove_entry(entry: Entry, root: Path | None = None) -> bool:
    """Delete ``entry`` under its lock; ``False`` (nothing removed) when another process holds
    the lock. Its lock file stays (see :mod:`ddr.store.locks`)."""
    from ddr.store.paths import cache_dir

    root = Path(root) if root is not None else cache_dir()
    _guard(entry.path, root)
    with try_lock(entry.path) as got:
        if not got:
            return False
        if entry.path.exists() or entry.path.is_symlink():
            _delete(entry.path)
        return True


def remove_results_db(root: Path | None = None) -> list[Path]:
    """Delete the results database (and its side files) of the cache ``root``; what was removed.
    Only for an explicit request (``--include-results-db``)."""
    from ddr.store.paths import cache_dir

    root = Path(root) if root is not None else cache_dir()
    removed = []
    for name in RESULTS_DB_FILES:
        path = root / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


@dataclass(frozen=True)
class Garbage:
    """Something :func:`garbage` found nothing refers to: ``what`` (``temporary``, ``quarantine``,
    ``orphaned lock``), its path and size (bytes)."""

    what: str
    path: Path
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "path": str(self.path), "size": self.size}


def garbage(root: Path | None = None, *, min_age: float = 60.0, now: float | None = None) -> list[Garbage]:
    """What nothing references: temporary files and folders (``.NAME.*``) left by killed writes
    and last written more than ``min_age`` seconds ago (younger ones may be a write in progress),
    everything in ``quarantine/``, and lock files whose entry does not exist."""
    from ddr.store.paths import cache_dir

    root = Path(root) if root is not None else cache_dir()
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    data = _data_dir_inside(root)
    found: list[Garbage] = []

    def temporaries(folder: Path) -> None:
        for tmp in sorted(folder.glob(".*")):
            if tmp.name.endswith(LOCK_SUFFIX):
                continue
            size, mtime = _size_and_mtime(tmp)
            if now - mtime > min_age:
                found.append(Garbage("temporary", tmp, size))

    temporaries(root)
    for namespace_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = namespace_dir.name
        if name in NOT_ENTRIES or (data is not None and namespace_dir.resolve() == data):
            continue
        if name == QUARANTINE:
            for ns in sorted(namespace_dir.iterdir()):
                for moved in sorted(ns.iterdir()) if ns.is_dir() else [ns]:
                    found.append(Garbage("quarantine", moved, _size_and_mtime(moved)[0]))
            continue
        if name == ZCA:
            temporaries(namespace_dir)
            continue
        for shard in sorted(p for p in namespace_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            temporaries(shard)
            for lock in sorted(shard.glob(f"*{LOCK_SUFFIX}")):
                entry = lock.with_name(lock.name[:-len(LOCK_SUFFIX)])
                if not entry.exists():
                    found.append(Garbage("orphaned lock", lock, _size_and_mtime(lock)[0]))
            for entry in sorted(e for e in shard.iterdir() if e.is_dir() and not e.name.startswith(".")):
                temporaries(entry)  # ``.result.json.XXXX`` of a killed atomic write
    return found


def remove_garbage(item: Garbage, root: Path | None = None) -> bool:
    """Delete ``item``; ``False`` when it is in use (the lock of an orphaned lock file, or of the
    entry a temporary belongs to, is held by a process)."""
    from ddr.store.paths import cache_dir

    root = Path(root) if root is not None else cache_dir()
    _guard(item.path, root)
    if item.what == "orphaned lock":
        entry = item.path.with_name(item.path.name[:-len(LOCK_SUFFIX)])
        with try_lock(entry) as got:
            if not got or entry.exists():
                return False
            item.path.unlink(missing_ok=True)
            return True
    if item.what == "temporary":
        owner = _owner_of_temporary(item.path)
        if owner is not None:
            with try_lock(owner) as got:
                if not got:
                    return False
                _delete(item.path)
                return True
    _delete(item.path)
    return True


def _owner_of_temporary(path: Path) -> Path | None:
    """The entry a temporary belongs to: ``.KEY.xxxx`` beside entry ``KEY``, or a file inside an
    entry folder (``.result.json.xxxx``); ``None`` for others."""
    parent = path.parent
    if (parent.parent / (parent.name + LOCK_SUFFIX)).exists():
        return parent
    stem = path.name[1:].split(".", 1)[0]
    return parent / stem if stem else None
