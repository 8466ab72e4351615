"""Fuzzing the run-record readers: ``ddr show RECORD`` (:func:`ddr.cli.evaluation.read_record` and
its table), and ``ddr results import`` (:func:`ddr.store.results.load_record` and the row it adds to
a results database). Each property: a row / a printed record, or a DdrError with a message; the
record folder is never changed, and only the database file is written."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.fuzzing import (
    HUGE_NUMBERS,
    environ,
    json_values,
    mutated,
    mutated_bytes,
    parse_outcome,
    scratch_dir,
    snapshot,
    weighted,
    yaml_soup,
)
from helpers.results import real_runs
from hypothesis import strategies as st

from ddr.cli.evaluation import cmd_show, read_record
from ddr.store.results import ResultsDB, load_record

FILES = ("run_spec.json", "metrics.json", "env.json")
RECORD = {name: json.loads((real_runs()[0] / name).read_text()) for name in FILES}
"""A real run record (digits, dm): the documents the structured inputs start from."""
KEYS = sorted({key for doc in RECORD.values() for key in doc} | {"students", "storage_bytes", "image_bytes", "created",
                                                                 "run_id", "suite", "source", "index", "role"})
VALUES = weighted((json_values(), 3), (st.sampled_from(HUGE_NUMBERS), 2), (st.integers(-2, 3), 1),
                  (st.sampled_from(("", "dm", "digits", "../x", "1", "ab", "2024-01-01")), 1),
                  (st.fixed_dictionaries({"mean": st.sampled_from(HUGE_NUMBERS), "values": json_values()}), 1),
                  (st.lists(st.fixed_dictionaries({}, optional={"role": json_values(), "accuracy": json_values(),
                                                                "index": json_values(), "seed": json_values(),
                                                                "epochs": json_values(), "lr": json_values()}),
                            max_size=3), 1))


def _document(name: str) -> st.SearchStrategy[bytes]:
    structured = mutated(RECORD[name], KEYS, VALUES, cycles=False).map(lambda d: json.dumps(d).encode())
    soup = yaml_soup(("{", "}", "[", "]", '"', ":", ",", "NaN", "Infinity", "1e999", "true", "null", '"ddrs"',
                      '"mean"', "1" + "0" * 5000)).map(str.encode)
    return weighted((st.just(json.dumps(RECORD[name]).encode()), 2), (structured, 6), (soup, 1),
                    (st.sampled_from((10, 100_000)).map(lambda n: ("[" * n + "]" * n).encode()), 1),
                    (st.binary(max_size=64), 1))


RECORDS = st.fixed_dictionaries({name: weighted((_document(name), 9), (st.none(), 1)) for name in FILES})
"""A record folder: each of the three files valid, damaged or (``None``) absent."""


def _cache_entry(tmp: Path, run_spec: bytes, header: bytes) -> None:
    """The distilled-set cache entry ``load_record`` reads a record's storage bytes from, when the
    (fuzzed) run spec names one."""
    try:
        key = json.loads(run_spec).get("distill_key")
    except (ValueError, AttributeError, RecursionError):
        return
    if isinstance(key, str) and len(key) >= 3 and key.isalnum():
        entry = tmp / "cache" / "distilled" / key[:2] / key
        entry.mkdir(parents=True)
        (entry / "images.safetensors").write_bytes(header)


HEADERS = weighted(
    (st.builds(lambda h: struct.pack("<Q", len(h)) + h, json_values().map(lambda v: json.dumps(v).encode())), 2),
    (st.builds(lambda h: struct.pack("<Q", len(h)) + h, st.dictionaries(
        st.sampled_from(("images", "soft_labels", "x")),
        st.fixed_dictionaries({"data_offsets": json_values()})).map(lambda v: json.dumps(v).encode())), 2),
    (mutated_bytes(struct.pack("<Q", 2) + b"{}"), 1))


def test_run_records(run_property: Callable[..., None]) -> None:
    """A run folder whose run_spec.json, metrics.json and env.json are missing, valid, the real
    ones with wrong types, unknown keys, huge/NaN numbers, deep nesting, or not JSON at all."""
    with scratch_dir() as base, ResultsDB(base / "results.sqlite") as db:

        def prop(files: dict[str, bytes | None], header: bytes) -> None:
            with scratch_dir() as tmp:
                folder = tmp / "runs" / "run"
                folder.mkdir(parents=True)
                for name, content in files.items():
                    if content is not None:
                        (folder / name).write_bytes(content)
                _cache_entry(tmp, files["run_spec.json"] or b"", header)
                before = snapshot(tmp)
                with environ(DDR_CACHE_DIR=str(tmp / "cache")):
                    shown, _ = parse_outcome(lambda: _show(folder))
                    assert shown is None or shown.strip()
                    row, _ = parse_outcome(lambda: load_record(folder))
                    if row is not None:
                        assert isinstance(row["ipc"], int) and isinstance(row["method"], str)
                    imported, _ = parse_outcome(lambda: _import(db, folder))
                    if row is not None:  # a record load_record reads is one the database takes
                        assert imported is not None and imported["run_id"] == str(row["run_id"])
                assert snapshot(tmp) == before

        run_property(prop, RECORDS, HEADERS)
        assert sorted(p.name for p in base.iterdir() if not p.name.startswith("results.sqlite")) == []


def _show(folder: Path) -> str:
    """``ddr show FOLDER`` and ``ddr show FOLDER --json`` (and of the folder above it): what they print."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        read_record(folder)
        cmd_show(argparse.Namespace(run=str(folder), json=False))
        cmd_show(argparse.Namespace(run=str(folder.parent), json=True))
    return out.getvalue()


def _import(db: ResultsDB, folder: Path) -> dict[str, Any]:
    """``ddr results import FOLDER``, then the row read back."""
    run_id = db.add_record(folder)
    (row,) = [r for r in db.query() if r["run_id"] == run_id]
    db.delete(run_id)
    return row
