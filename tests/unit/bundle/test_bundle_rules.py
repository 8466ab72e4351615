"""What ``ddr verify`` calls reproduced (ddr.bundle.compare), on which kind of machine it expects
bit-identical numbers (ddr.bundle.machine), which students it samples, and the results database's
origin column (schema 2, migrated from 1)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ddr.bundle.compare import REFERENCE_TOLERANCE, STUDENT_FLOOR, compare
from ddr.bundle.machine import describe, differences, machine_kind
from ddr.bundle.verify import sample_indices
from ddr.protocol.metrics import score_table
from ddr.store.results import SCHEMA_VERSION, ResultsDB

ENV = {"packages": {"torch": "2.14.1"}, "cuda": {"device": "cpu", "gpus": []},
       "platform": {"machine": "x86_64", "cpu": "Some CPU"}, "determinism": {"torch_threads": 2}}


def record(real: float, syn: list[float], rdm: list[float]) -> dict[str, Any]:
    """A metrics.json-shaped record of hard-label students (syn_any = syn_hard)."""
    table = score_table([real], syn, syn, rdm)
    out: dict[str, Any] = {k: v.to_dict() for k, v in table.items()}
    out["reference"] = {"role": "real", "index": 0, "accuracy": real}
    out["students"] = [s for i in range(len(syn)) for s in (
        {"role": "syn_hard", "index": i, "accuracy": syn[i]}, {"role": "rdm_any", "index": i, "accuracy": rdm[i]})]
    return out


def sampled(full: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    """The record a re-run of the students at ``indices`` gives when every value is the recorded one."""
    syn = [s["accuracy"] for s in full["students"] if s["role"] == "syn_hard"]
    rdm = [s["accuracy"] for s in full["students"] if s["role"] == "rdm_any"]
    out = record(full["reference"]["accuracy"], [syn[i] for i in indices], [rdm[i] for i in indices])
    out["students"] = [s for s in full["students"] if s["index"] in indices]
    return out


SYN, RDM = [0.91, 0.90, 0.93, 0.92], [0.70, 0.74, 0.69, 0.72]


def test_bit_identical_means_every_value_exactly_even_for_a_sample() -> None:
    full = record(0.99, SYN, RDM)
    same = compare(full, full, range(4), exact=True)
    assert same.reproduced and all(c.rule == "bit-identical" for c in same.checks)
    quantities = [c.quantity for c in same.checks]
    assert quantities[:3] == ["reference (real) accuracy", "syn_hard #0 accuracy", "rdm_any #0 accuracy"]
    assert "hlr #3" in quantities and "ddrs (mean of 4)" in quantities
    part = compare(full, sampled(full, [1, 3]), [1, 3], exact=True)  # a sample: its mean is the recorded values' mean
    assert part.reproduced and "acc_syn_hard (mean of 2)" in [c.quantity for c in part.checks]
    nudged = record(0.99, [SYN[0] + 1e-12, *SYN[1:]], RDM)
    result = compare(full, nudged, range(4), exact=True)
    assert not result.reproduced
    assert {c.quantity for c in result.checks if c.reproduces is False} >= {"syn_hard #0 accuracy", "hlr #0"}


def test_the_statistical_rule_states_its_thresholds_and_applies_them() -> None:
    full = record(0.99, SYN, RDM)
    close = record(0.99 + REFERENCE_TOLERANCE / 2, [v + 0.004 for v in SYN], [v - 0.004 for v in RDM])
    result = compare(full, close, range(4), exact=False)
    assert result.reproduced, [c for c in result.checks if not c.reproduces]
    assert result.comparisons == 8 + 12 and result.z == pytest.approx(3.4806, abs=1e-3)  # Bonferroni over 20
    assert "z = 3.48" in result.rules() and "Welch" in result.rules() and f"reference |Δ| ≤ {REFERENCE_TOLERANCE:g}" \
        in result.rules()
    syn_rule = next(c for c in result.checks if c.quantity == "syn_hard #0 accuracy").rule
    sd = math.sqrt(sum((v - sum(SYN) / 4) ** 2 for v in SYN) / 3)
    assert syn_rule == f"|Δ| ≤ {max(result.z * math.sqrt(2) * sd, STUDENT_FLOOR):.4f}"
    assert next(c for c in result.checks if c.quantity == "ddrs (mean of 4)").rule.startswith("Welch t: p = ")
    far = record(0.90, [v - 0.3 for v in SYN], RDM)  # the reference off by 0.09, the students by 0.3
    bad = compare(full, far, range(4), exact=False)
    failed = {c.quantity for c in bad.checks if c.reproduces is False}
    assert {"reference (real) accuracy", "syn_hard #0 accuracy", "acc_syn_hard (mean of 4)"} <= failed


def test_bit_identity_is_expected_only_on_the_recorded_kind_of_machine() -> None:
    here = machine_kind(ENV)
    assert here == {"torch": "2.14.1", "device": "cpu", "arch": "x86_64", "cpu": "Some CPU", "threads": 2}
    assert differences(here, machine_kind(ENV)) == []
    assert describe(here) == "torch 2.14.1 · cpu · Some CPU · x86_64 · 2 threads"
    other = json.loads(json.dumps(ENV))
    other["determinism"]["torch_threads"] = 16
    assert differences(here, machine_kind(other)) == ["threads: 2 recorded, 16 here"]
    old = {k: v for k, v in ENV.items() if k != "determinism"}  # a record from before ddr wrote the thread count
    assert differences(machine_kind(old), here) == ["threads: not recorded by the bundle"]
    gpu = {"packages": {"torch": "2.14.1"}, "cuda": {"device": "cuda:1", "gpus": ["A", "NVIDIA H100"],
                                                     "cuda_version": "13.0"}}
    assert machine_kind(gpu)["gpu"] == "NVIDIA H100"
    assert differences(machine_kind(gpu), here)[0] == "device: 'cuda' recorded, 'cpu' here"


def test_a_student_sample_is_seeded_and_sorted() -> None:
    assert sample_indices(5, None) == [0, 1, 2, 3, 4] and sample_indices(5, 9) == [0, 1, 2, 3, 4]
    first = sample_indices(10, 3, seed=7)
    assert first == sample_indices(10, 3, seed=7) == sorted(first) and len(set(first)) == 3
    assert sample_indices(10, 3, seed=8) != first or sample_indices(10, 3, seed=9) != first


V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, suite TEXT, method TEXT NOT NULL, method_params TEXT NOT NULL,
    dataset TEXT NOT NULL, ipc INTEGER NOT NULL, arch TEXT, label_strategy TEXT, protocol TEXT, protocol_version TEXT,
    seed, distill_seed, distilled_sha256 TEXT, acc_real_hard REAL, acc_syn_hard REAL, acc_syn_any REAL,
    acc_rdm_any REAL, hlr REAL, ior REAL, ddrs REAL, metrics TEXT NOT NULL, env TEXT NOT NULL, run_spec TEXT NOT NULL,
    distill_seconds REAL, eval_seconds REAL, image_bytes INTEGER, soft_label_bytes INTEGER, record_dir TEXT,
    created TEXT, imported TEXT);
CREATE TABLE students (run_id TEXT NOT NULL, role TEXT NOT NULL, idx INTEGER NOT NULL, seed, accuracy REAL,
    lr REAL, epochs INTEGER, seconds REAL, PRIMARY KEY (run_id, role, idx));
INSERT INTO runs (run_id, method, method_params, dataset, ipc, metrics, env, run_spec, created)
    VALUES ('old', 'dm', '{}', 'digits', 1, '{}', '{}', '{}', '2026-01-01');
"""


def test_a_schema_1_database_is_migrated_and_every_run_in_it_is_local(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript(V1_SCHEMA)
    with ResultsDB(path) as db:
        assert db.schema_version == SCHEMA_VERSION == 2
        row = db.get("old")
        assert row["origin"] == "local" and row["provenance"] == {}
        row.update(run_id="new", origin="imported", provenance={"bundle": "b.zip"})
        db.add_row(row)
        assert db.get("new")["origin"] == "imported"
        db.add_row({**row, "origin": None, "provenance": None})  # re-added without an origin: it keeps its own
        assert db.get("new")["origin"] == "imported" and db.get("new")["provenance"] == {"bundle": "b.zip"}
        db.set_origin("new", "imported+verified", {"bundle": "b.zip", "verification": {"verified": True}})
        assert sorted(r["run_id"] for r in db.query(where={"origin": ["local", "imported+verified"]})) == ["new", "old"]
        assert db.query(where={"provenance.bundle": "b.zip"})[0]["run_id"] == "new"
        with pytest.raises(Exception, match="unknown run origin 'elsewhere'"):
            db.set_origin("new", "elsewhere")
    with ResultsDB(path) as again:  # opening a migrated database again changes nothing
        assert again.schema_version == 2 and len(again) == 2
