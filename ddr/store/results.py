"""The results database: every run record (``run_spec.json``, ``metrics.json``, ``env.json``) in
one SQLite file, default ``$DDR_CACHE_DIR/results.sqlite``.

- ``runs``: one row per run, keyed by the run id (SHA-256 of the canonical ``run_spec``; the run
  folder's name ends with its first 10 hex digits). The three JSON documents are kept whole, so
  fields added to the record schema later are never lost.
- ``students``: one row per trained student (role, index, seed, accuracy, lr, epochs, seconds).
- ``schema_version``: the version of this layout (:data:`SCHEMA_VERSION`).

Each run has an ``origin`` (:data:`ORIGINS`): ``local`` for a record written or imported from a run
folder here (``ddr run``, ``ddr eval``, ``ddr results import``), ``imported`` for a run added from a
result bundle (``ddr import``), ``imported+verified`` once ``ddr verify`` reproduced it here; its
``provenance`` (JSON) says which bundle and which verification. Version 1 databases are migrated
in place on open (every existing run is ``local``).

Writers use WAL journaling, a busy timeout and ``BEGIN IMMEDIATE`` transactions retried on
``database is locked``, so several processes can import records at once. Adding the same record
twice updates its row in place: never a duplicate. This module never imports torch.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import struct
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, overload

from ddr.errors import ArtifactError, DdrError

SCHEMA_VERSION = 2
"""2: ``runs.origin`` and ``runs.provenance`` (1: without them; migrated on open)."""
ORIGINS = ("local", "imported", "imported+verified")
"""Where a run's numbers come from: computed here, imported from a bundle, or imported and
reproduced here by ``ddr verify`` (docs/leaderboard.md, "Where a row comes from")."""
VERIFIED_ORIGINS = ("local", "imported+verified")
"""The origins ``ddr leaderboard --verified-only`` keeps: runs computed here, and imported runs
reproduced here."""
DB_FILENAME = "results.sqlite"
BUSY_TIMEOUT_MS = 30_000
WRITE_ATTEMPTS = 20

#: metrics.json keys a record must have; each score is a summary {mean, values, ...}.
REQUIRED_SCORES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")
REQUIRED_SUMMARY_KEYS = ("mean", "values")
REQUIRED_SPEC = ("dataset", "ipc")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id            TEXT PRIMARY KEY,
    suite             TEXT,
    method            TEXT NOT NULL,
    method_params     TEXT NOT NULL,
    dataset           TEXT NOT NULL,
    ipc               INTEGER NOT NULL,
    arch              TEXT,
    label_strategy    TEXT,
    protocol          TEXT,
    protocol_version  TEXT,
    seed,                   -- no type: 64-bit ints stay INTEGER, larger ones stay exact TEXT
    distill_seed,
    distilled_sha256  TEXT,
    acc_real_hard     REAL,
    acc_syn_hard      REAL,
    acc_syn_any       REAL,
    acc_rdm_any       REAL,
    hlr               REAL,
    ior               REAL,
    ddrs              REAL,
    metrics           TEXT NOT NULL,
    env               TEXT NOT NULL,
    run_spec          TEXT NOT NULL,
    distill_seconds   REAL,
    eval_seconds      REAL,
    image_bytes       INTEGER,
    soft_label_bytes  INTEGER,
    record_dir        TEXT,
    created           TEXT,
    imported          TEXT,
    origin            TEXT NOT NULL DEFAULT 'local',
    provenance        TEXT
);
CREATE INDEX IF NOT EXISTS runs_suite ON runs (suite);
CREATE INDEX IF NOT EXISTS runs_group ON runs (dataset, ipc, method);
CREATE TABLE IF NOT EXISTS students (
    run_id    TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    seed,
    accuracy  REAL,
    lr        REAL,
    epochs    INTEGER,
    seconds   REAL,
    PRIMARY KEY (run_id, role, idx)
);
"""

#: columns of ``runs`` a ``where`` filter may name directly; other keys are JSON paths.
RUN_COLUMNS = (
    "run_id", "suite", "method", "dataset", "ipc", "arch", "label_strategy", "protocol",
    "protocol_version", "seed", "distill_seed", "distilled_sha256", "acc_real_hard", "acc_syn_hard",
    "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "distill_seconds", "eval_seconds",
    "image_bytes", "soft_label_bytes", "record_dir", "created", "imported", "origin",
)
_JSON_COLUMNS = ("method_params", "metrics", "env", "run_spec", "provenance")
_MIGRATIONS = (("origin", "TEXT NOT NULL DEFAULT 'local'"), ("provenance", "TEXT"))
"""Columns of ``runs`` added after schema version 1, added to an older database on open."""


def default_path() -> Path:
    """``$DDR_CACHE_DIR/results.sqlite`` (``~/.cache/ddr/results.sqlite`` without the variable)."""
    from ddr.store.paths import cache_dir

    return cache_dir() / DB_FILENAME


# ---------------------------------------------------------------------------------------------
# reading a run folder


@overload
def _read_json_file(path: Path, required: Literal[True]) -> dict[str, Any]: ...
@overload
def _read_json_file(path: Path, required: bool) -> dict[str, Any] | None: ...
def _read_json_file(path: Path, required: bool) -> dict[str, Any] | None:
    if not path.exists():
        if required:
            raise ArtifactError(f"{path} is missing: not a ddr run record (expected run_spec.json, "
                                f"metrics.json and env.json written by `ddr run --out` / `ddr eval --out`)")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}\n  the record is corrupt; re-run it") from exc
    except RecursionError:
        raise ArtifactError(f"cannot read {path}: its JSON nests too deeply to read\n  the record is corrupt; "
                            "re-run it") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def _require(mapping: Mapping[str, Any], key: str, path: Path, what: str = "") -> Any:
    if key not in mapping or mapping[key] is None:
        raise ArtifactError(f"{path} has no '{what}{key}': the record is incomplete or from an "
                            f"incompatible ddr version; re-run it")
    return mapping[key]


def _safetensors_bytes(file: Path) -> dict[str, int]:
    """Bytes per tensor in a safetensors file, read from its JSON header (no torch)."""
    try:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error, RecursionError):  # no readable header: sizes unknown
        return {}
    out = {}
    for name, info in header.items() if isinstance(header, dict) else ():
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets):
            out[name] = offsets[1] - offsets[0]
    return out


def _storage(metrics: Mapping[str, Any], run_spec: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(image bytes, soft-label bytes) of the distilled set: from the record when it says, else
    from the distilled-set cache entry named by ``run_spec['distill_key']`` when it exists."""
    raw_storage = metrics.get("storage_bytes")  # {"images": bytes, "soft_labels": bytes}, written by ddr run/eval
    storage: Mapping[str, Any] = raw_storage if isinstance(raw_storage, dict) else {}
    images = metrics.get("image_bytes", storage.get("images"))
    soft = metrics.get("soft_label_bytes", storage.get("soft_labels"))
    if images is not None:
        return _count(images), _count(soft)
    key = run_spec.get("distill_key")
    if not isinstance(key, str) or len(key) < 3:
        return None, None
    from ddr.store.paths import cache_dir

    tensors = _safetensors_bytes(cache_dir() / "distilled" / key[:2] / key / "images.safetensors")
    if "images" not in tensors:
        return None, None
    return tensors["images"], tensors.get("soft_labels", 0)


def _sql_int(value: Any) -> Any:
    """An int SQLite can store (64-bit signed), else its decimal string; None stays None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    return value


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    """A byte or epoch count a column can hold (a whole number in 64 bits), else None (unknown)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        return None
    return value


def _scalar(value: Any, key: str, path: Path) -> Any:
    """``value`` when it fits a plain column (a string, number, bool or null; :func:`_sql_int`
    stores an int beyond 64 bits as text), else an ArtifactError naming the file and key."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ArtifactError(f"{path}: '{key}' must be a string or a number, got {value!r:.80}; the record is corrupt or "
                        "from an incompatible ddr version; re-run it")


EXTERNAL_MARK = " (external set)"
"""What follows an externally evaluated set's name on boards (``dm (external set)``)."""


def external_label(metrics: Mapping[str, Any], run_spec: Mapping[str, Any]) -> str | None:
    """The board label of a ``ddr eval`` record: what the evaluated set is (the method its
    ``meta.json`` names, recorded as ``external_set.method``; else its file or folder name; else the
    first digits of its content hash), marked as external: ``dm (external set)``. ``None`` when the
    record says nothing of its set."""
    external = metrics.get("external_set")
    name = external.get("method") if isinstance(external, Mapping) else None
    if not name and run_spec.get("source"):
        source = Path(str(run_spec["source"]))
        name = source.stem if source.suffix in (".safetensors", ".pt", ".pth", ".npz", ".zip") else source.name
    if not name and metrics.get("distilled_sha256"):
        name = str(metrics["distilled_sha256"])[:10]
    return f"{name}{EXTERNAL_MARK}" if name else None


def load_record(folder: str | Path) -> dict[str, Any]:
    """One run folder as a row dict (the shape :meth:`ResultsDB.query` returns).

    Raises :class:`ArtifactError` naming the file and key when a required part is missing.
    """
    from ddr.store.hashing import sha256_json

    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder} is not a directory; pass a run folder written by `ddr run --out DIR`")
    metrics_path = folder / "metrics.json"
    metrics = _read_json_file(metrics_path, required=True)
    spec_path = folder / "run_spec.json"
    spec_file = _read_json_file(spec_path, required=False)
    run_spec: dict[str, Any]
    if spec_file is None:
        if not isinstance(metrics.get("run_spec"), dict):
            raise ArtifactError(f"{spec_path} is missing and {metrics_path} has no 'run_spec'")
        run_spec, spec_path = metrics["run_spec"], metrics_path
    else:
        run_spec = spec_file
    env = _read_json_file(folder / "env.json", required=False) or {}
    for key in REQUIRED_SPEC:
        _require(run_spec, key, spec_path)
    for key in REQUIRED_SCORES:
        summary = _require(metrics, key, metrics_path)
        if not isinstance(summary, dict):
            raise ArtifactError(f"{metrics_path}: '{key}' must be a summary object {{mean, std, n, values}}")
        for sub in REQUIRED_SUMMARY_KEYS:
            _require(summary, sub, metrics_path, f"{key}.")
    method = metrics.get("method") or run_spec.get("method")
    if not method:  # a `ddr eval` record: an external set, named by what it is (external_label)
        method = external_label(metrics, run_spec)
        if method is None:
            raise ArtifactError(f"{metrics_path} has no 'method' (nor has {spec_path}), and no "
                                f"'distilled_sha256' to name the evaluated set by")
    try:
        ipc = int(run_spec["ipc"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise ArtifactError(f"{spec_path}: 'ipc' must be an integer, got {run_spec['ipc']!r}") from exc
    if _count(ipc) is None:
        raise ArtifactError(f"{spec_path}: 'ipc' is {ipc}, beyond any real set; the record is corrupt; re-run it")
    method_params = metrics.get("method_params", run_spec.get("method_params")) or {}
    seed = metrics.get("seed", run_spec.get("seed"))
    image_bytes, soft_bytes = _storage(metrics, run_spec)
    students = []
    if not isinstance(metrics.get("students") or [], list):
        raise ArtifactError(f"{metrics_path}: 'students' must be a list of student results, got "
                            f"{metrics['students']!r:.80}; the record is corrupt; re-run it")
    for i, student in enumerate(metrics.get("students") or []):
        if not isinstance(student, dict) or "role" not in student or "accuracy" not in student:
            raise ArtifactError(f"{metrics_path}: students[{i}] needs 'role' and 'accuracy'")
        index = student.get("index", i)
        if _count(index) is None:
            raise ArtifactError(f"{metrics_path}: students[{i}].index must be an integer, got {index!r:.80}")
        students.append({
            "role": str(student["role"]), "index": _count(index),
            "seed": _scalar(student.get("seed"), f"students[{i}].seed", metrics_path),
            "accuracy": _finite(student["accuracy"]), "lr": _finite(student.get("lr")),
            "epochs": _count(student.get("epochs_trained", student.get("epochs"))),
            "seconds": _finite(student.get("seconds")),
        })
    created = _scalar(metrics.get("created"), "created", metrics_path)
    if not created:
        created = datetime.fromtimestamp(metrics_path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    run_id = _scalar(metrics.get("run_id"), "run_id", metrics_path)
    if not run_id:
        try:
            run_id = sha256_json(run_spec)
        except DdrError as exc:
            raise ArtifactError(f"{spec_path}: {exc}; the record is corrupt; re-run it") from None
    row = {
        "run_id": run_id,
        "suite": _scalar(metrics.get("suite", run_spec.get("suite")), "suite", metrics_path),
        "method": str(method),
        "method_params": method_params,
        "dataset": str(run_spec["dataset"]),
        "ipc": ipc,
        "arch": _scalar(run_spec.get("eval_arch", run_spec.get("arch")), "arch", spec_path),
        "label_strategy": _scalar(run_spec.get("label_strategy"), "label_strategy", spec_path),
        "protocol": _scalar(metrics.get("protocol", run_spec.get("protocol")), "protocol", metrics_path),
        "protocol_version": None if metrics.get("protocol_version", run_spec.get("protocol_version")) is None
        else str(metrics.get("protocol_version", run_spec.get("protocol_version"))),
        "seed": _scalar(seed, "seed", metrics_path),
        "distill_seed": _scalar(metrics.get("distill_seed", run_spec.get("distill_seed", seed)), "distill_seed",
                                metrics_path),
        "distilled_sha256": _scalar(metrics.get("distilled_sha256"), "distilled_sha256", metrics_path),
        "metrics": metrics,
        "env": env,
        "run_spec": run_spec,
        "distill_seconds": _finite(metrics.get("distill_seconds")),
        "eval_seconds": _finite(metrics.get("eval_seconds")),
        "image_bytes": image_bytes,
        "soft_label_bytes": soft_bytes,
        "record_dir": str(folder.resolve()),
        "created": created,
        "students": students,
    }
    for key in REQUIRED_SCORES:
        row[key] = _finite(metrics[key]["mean"])
    return row


# ---------------------------------------------------------------------------------------------
# the database


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class ResultsDB:
    """The SQLite results store. ``ResultsDB()`` opens ``$DDR_CACHE_DIR/results.sqlite``."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ArtifactError(f"cannot open the results database {self.path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._retry(self._create_schema)
        except sqlite3.DatabaseError as exc:  # not an SQLite file, or a damaged one
            self._conn.close()
            raise ArtifactError(f"the results database {self.path} is corrupt or not a database ({exc}); move it "
                                "aside (a new one is created on the next use) or restore a copy; the run records "
                                "it was built from can be imported again with `ddr results import`") from None

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsDB":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _retry(self, action: Any) -> Any:
        """Run ``action`` (a transaction), retrying with jittered backoff while the file is locked."""
        delay = 0.01
        for attempt in range(WRITE_ATTEMPTS):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or attempt == WRITE_ATTEMPTS - 1:
                    raise ArtifactError(f"results database {self.path}: {exc}") from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, body: Any) -> Any:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _create_schema(self) -> None:
        def body(conn: sqlite3.Connection) -> None:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise DdrError(f"results database {self.path} has schema version {row[0]}; this ddr reads up "
                               f"to {SCHEMA_VERSION}. Upgrade ddr or use another --db")
            elif row[0] < SCHEMA_VERSION:  # an older layout: add what it lacks, in this transaction
                columns = {info[1] for info in conn.execute("PRAGMA table_info(runs)")}
                for name, declaration in _MIGRATIONS:
                    if name not in columns:
                        conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {declaration}")
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        self._transaction(body)

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0])

    # -- writing ----------------------------------------------------------------------------

    def add_record(self, folder: str | Path, suite: str | None = None, origin: str | None = None) -> str:
        """Add (or update) the run in ``folder``; returns its run id. One transaction per run; the
        same run added twice keeps one row (its suite is kept unless ``suite`` is given, its origin
        unless ``origin`` is: a new row is ``local``)."""
        row = load_record(folder)
        if suite is not None:
            row["suite"] = suite
        if origin is not None:
            row["origin"] = origin
        return self.add_row(row)

    def add_row(self, row: Mapping[str, Any]) -> str:
        """Insert or update a row shaped like :func:`load_record`'s result. ``row["origin"]`` (one
        of :data:`ORIGINS`) and ``row["provenance"]`` set both; without an origin a new row is
        ``local`` and an existing row keeps its origin and provenance."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        origin = row.get("origin")
        if origin is not None and origin not in ORIGINS:
            raise DdrError(f"unknown run origin {origin!r}; expected one of {', '.join(ORIGINS)}")
        values = {col: row.get(col) for col in RUN_COLUMNS}
        values["imported"] = now
        values["origin"] = origin or "local"
        for col in RUN_COLUMNS:  # seeds (and any number a record holds) beyond 64 bits stay exact as text
            values[col] = _sql_int(values[col])
        for col in _JSON_COLUMNS:
            values[col] = json.dumps(row.get(col) or {}, sort_keys=True)
        names = list(values)
        kept = ("run_id", "imported") + (() if origin else ("origin", "provenance"))
        updates = ", ".join(
            f"{n} = COALESCE(excluded.{n}, runs.{n})" if n == "suite" else f"{n} = excluded.{n}"
            for n in names if n not in kept
        )
        sql = (f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "
               f"ON CONFLICT (run_id) DO UPDATE SET {updates}")
        students = [
            (values["run_id"], s["role"], int(s["index"]), _sql_int(s.get("seed")), s.get("accuracy"),
             s.get("lr"), s.get("epochs"), s.get("seconds"))
            for s in row.get("students") or []
        ]

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(sql, [values[n] for n in names])
            conn.execute("DELETE FROM students WHERE run_id = ?", (values["run_id"],))
            conn.executemany(
                "INSERT OR REPLACE INTO students (run_id, role, idx, seed, accuracy, lr, epochs, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", students)

        self._retry(lambda: self._transaction(body))
        return str(values["run_id"])

    def import_dirs(self, paths: Iterable[str | Path], suite: str | None = None) -> list[str]:
        """Add every run folder in ``paths`` (a run folder itself, or a folder of run folders found
        recursively by their ``metrics.json``). Returns the run ids, in order."""
        ids: list[str] = []
        for path in paths:
            path = Path(path)
            if (path / "metrics.json").exists():
                folders = [path]
            elif path.is_dir():
                folders = sorted(p.parent for p in path.rglob("metrics.json"))
                if not folders:
                    raise ArtifactError(f"{path} holds no run records (no metrics.json below it)")
            else:
                raise ArtifactError(f"{path} does not exist or is not a directory")
            ids.extend(self.add_record(folder, suite=suite) for folder in folders)
        return ids

    def set_origin(self, run_id: str, origin: str, provenance: Mapping[str, Any] | None = None) -> None:
        """Set the origin (one of :data:`ORIGINS`) and provenance of the run ``run_id`` (exact id)."""
        if origin not in ORIGINS:
            raise DdrError(f"unknown run origin {origin!r}; expected one of {', '.join(ORIGINS)}")
        text = json.dumps(dict(provenance or {}), sort_keys=True)
        self._retry(lambda: self._transaction(lambda c: c.execute(
            "UPDATE runs SET origin = ?, provenance = ? WHERE run_id = ?", (origin, text, run_id))))

    def delete(self, run_id: str) -> None:
        self._retry(lambda: self._transaction(lambda c: c.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))))

    # -- reading ----------------------------------------------------------------------------

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self._conn.execute(sql, params).fetchall()]
        if not rows:
            return rows
        ids = [r["run_id"] for r in rows]
        students: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for s in self._conn.execute(
                f"SELECT * FROM students WHERE run_id IN ({', '.join('?' for _ in part)}) ORDER BY role, idx", part
            ):
                seed = s["seed"]
                if isinstance(seed, str) and seed.lstrip("-").isdigit():
                    seed = int(seed)
                students[s["run_id"]].append({"role": s["role"], "index": s["idx"], "seed": seed,
                                              "accuracy": s["accuracy"], "lr": s["lr"], "epochs": s["epochs"],
                                              "seconds": s["seconds"]})
        for row in rows:
            for col in _JSON_COLUMNS:
                row[col] = json.loads(row[col]) if row[col] else {}
            for col in ("seed", "distill_seed"):
                if isinstance(row[col], str) and row[col].lstrip("-").isdigit():
                    row[col] = int(row[col])
            row["students"] = students[row["run_id"]]
        return rows

    def query(self, suite: str | None = None, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows (dicts, JSON columns decoded, ``students`` attached), oldest first.

        ``where`` maps a column (``method``, ``ipc``, ``arch`` ...) or a dotted JSON path
        (``method_params.iterations``, ``run_spec.protocol_config.train.epochs``,
        ``env.cuda.device``) to a value, or to a list/tuple of allowed values.
        """
        clauses, params = [], []
        if suite is not None:
            clauses.append("suite = ?")
            params.append(suite)
        for key, value in (where or {}).items():
            expr = self._where_expr(key)
            if expr.startswith("json_extract"):
                # JSON values carry no column affinity: compare as text so 1 matches "1" and 0.5 "0.5"
                expr = f"CAST({expr} AS TEXT)"
                if isinstance(value, (list, tuple, set)):
                    value = [self._text(v) for v in value]
                elif value is not None:
                    value = self._text(value)
            if isinstance(value, (list, tuple, set)):
                value = list(value)
                if not value:
                    clauses.append("0")
                    continue
                clauses.append(f"{expr} IN ({', '.join('?' for _ in value)})")
                params.extend(self._param(v) for v in value)
            elif value is None:
                clauses.append(f"{expr} IS NULL")
            else:
                clauses.append(f"{expr} = ?")
                params.append(self._param(value))
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        return self._rows(sql + " ORDER BY created, run_id", params)

    @staticmethod
    def _text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        return str(value)

    @staticmethod
    def _param(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        return _sql_int(value) if isinstance(value, int) else value

    @staticmethod
    def _where_expr(key: str) -> str:
        if key in RUN_COLUMNS:
            return key
        head, _, rest = key.partition(".")
        if head in _JSON_COLUMNS and rest:
            parts = rest.split(".")
            if all(p.replace("_", "").replace("-", "").isalnum() for p in parts):
                return f"json_extract({head}, '$.{'.'.join(parts)}')"
        if key in _JSON_COLUMNS:
            raise DdrError(f"cannot filter on the whole '{key}' document; name a field, e.g. {key}.NAME")
        raise DdrError(f"unknown filter key '{key}': use a column ({', '.join(RUN_COLUMNS)}) or a JSON path "
                       f"starting with {', '.join(_JSON_COLUMNS)} (e.g. method_params.iterations)")

    def get(self, run_id: str) -> dict[str, Any]:
        """The run whose id is ``run_id`` or starts with it (or whose record folder is named so).
        A :class:`DdrError` when none or several match."""
        if not run_id:
            raise DdrError("empty run id")
        rows = self._rows("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if not rows:
            like = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._rows("SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY run_id", [like + "%"])
        if not rows:
            rows = [r for r in self._rows("SELECT * FROM runs ORDER BY run_id", [])
                    if r["record_dir"] and os.path.basename(r["record_dir"]) == run_id]
        if not rows and len(run_id) >= 6:  # an older record, whose folder suffix is not its run id
            rows = [r for r in self._rows("SELECT * FROM runs ORDER BY run_id", [])
                    if r["record_dir"] and os.path.basename(r["record_dir"]).rsplit("-", 1)[-1].startswith(run_id)]
        if not rows:
            raise DdrError(f"no run '{run_id}' in {self.path}; `ddr results` lists the run ids")
        if len(rows) > 1:
            listing = ", ".join(r["run_id"][:12] for r in rows[:10])
            raise DdrError(f"run id prefix '{run_id}' is ambiguous in {self.path}: {listing}; give more digits")
        return rows[0]

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
