"""Every cache entry is verified before use (:mod:`ddr.store.checksums`): job records and their
models, asset folders, and ``ddr cache verify`` over the whole cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ddr.method.assets import Assets
from ddr.store.checksums import UNVERIFIABLE, record_checksum
from ddr.store.jobs import MODEL_FILE, RESULT_FILE, cached_record, job_dir, read_entry, store_record
from ddr.store.verify import verify_cache

KEY = "ab" + "0" * 62
RECORD = {"key": KEY, "role": "syn_hard", "index": 0, "seed": 1, "accuracy": 0.25, "lr": 0.01, "epochs_trained": 2,
          "seconds": 1.0}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_a_job_record_carries_its_checksum_and_an_edit_is_caught(cache: Path) -> None:
    folder = store_record(dict(RECORD))
    stored = json.loads((folder / RESULT_FILE).read_text())
    assert stored["checksum"] == record_checksum(stored) and stored["accuracy"] == 0.25
    assert cached_record(KEY) == stored
    _edit(folder / RESULT_FILE, accuracy=0.99)  # what changed a run's DDRS without a word before
    record, problem = read_entry(KEY)
    assert record is None and problem is not None and "does not match its checksum" in problem.what
    assert cached_record(KEY) is None and folder.is_dir()  # a miss, left in place without a lock holder
    said: list[str] = []
    assert cached_record(KEY, on_corrupt=said.append) is None
    assert len(said) == 1 and str(folder) in said[0] and "moved to" in said[0] and "recomputing" in said[0]
    assert not folder.exists()
    quarantined = list((cache / "quarantine" / "jobs").iterdir())
    assert len(quarantined) == 1 and json.loads((quarantined[0] / RESULT_FILE).read_text())["accuracy"] == 0.99


def test_a_cached_model_is_checked_against_the_sha256_in_its_record(cache: Path) -> None:
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2)}
    folder = store_record({**RECORD, "role": "real"}, state)
    assert cached_record(KEY, needs_model=True) is not None
    raw = bytearray((folder / MODEL_FILE).read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit of a weight
    (folder / MODEL_FILE).write_bytes(bytes(raw))
    _, problem = read_entry(KEY, needs_model=True)
    assert problem is not None and "model.safetensors hashes to" in problem.what
    (folder / MODEL_FILE).unlink()
    _, problem = read_entry(KEY, needs_model=True)
    assert problem is not None and "model.safetensors is missing" in problem.what


def test_an_entry_without_a_checksum_is_unverifiable_and_recomputed(cache: Path) -> None:
    folder = job_dir(KEY)
    folder.mkdir(parents=True)
    (folder / RESULT_FILE).write_text(json.dumps(RECORD))  # what an older ddr wrote
    _, problem = read_entry(KEY)
    assert problem is not None and problem.what == UNVERIFIABLE
    (folder / RESULT_FILE).write_text("{not json")
    _, problem = read_entry(KEY)
    assert problem is not None and "unreadable" in problem.what
    assert read_entry("cd" + "0" * 62) == (None, None)  # absent: a plain miss


def test_a_tampered_asset_is_reported_moved_aside_and_rebuilt(cache: Path) -> None:
    said: list[str] = []
    assets = Assets(log=said.append)
    builds: list[int] = []

    def build(folder: Path) -> None:
        builds.append(1)
        (folder / "weights.bin").write_bytes(b"\x00" * 64)

    folder = assets.build("toy", {"k": 1}, build, what="a toy asset")
    assert (folder / ".ddr-manifest.json").is_file() and assets.get("toy", {"k": 1}) == folder
    (folder / "weights.bin").write_bytes(b"\x01" * 64)
    assert assets.get("toy", {"k": 1}) is None
    again = assets.build("toy", {"k": 1}, build, what="a toy asset")
    assert again == folder and len(builds) == 2 and (again / "weights.bin").read_bytes() == b"\x00" * 64
    assert len(said) == 1 and "weights.bin hashes to" in said[0] and "building it again" in said[0]
    (folder / "extra.txt").write_text("slipped in")
    assert assets.get("toy", {"k": 1}) is None  # a file it was not written with


def test_verify_reports_every_entry_and_quarantines_on_request(cache: Path) -> None:
    store_record(dict(RECORD))
    other = store_record({**RECORD, "key": "cd" + "0" * 62})
    Assets().build("toy", {"k": 1}, lambda f: (f / "a.txt").write_text("a"), what="toy")
    assert {(r.namespace, r.status) for r in verify_cache()} == {("jobs", "ok"), ("toy", "ok")}
    _edit(other / RESULT_FILE, lr=1.0)
    reports = verify_cache()
    assert sorted(r.status for r in reports) == ["corrupt", "ok", "ok"] and other.is_dir()
    moved = [r for r in verify_cache(move=True) if r.status != "ok"]
    assert len(moved) == 1 and moved[0].moved_to is not None and moved[0].moved_to.is_dir() and not other.exists()
    assert all(r.status == "ok" for r in verify_cache())
