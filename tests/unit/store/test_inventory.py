"""``ddr cache info / ls / prune / gc`` (ddr.store.inventory, ddr.cli.cache) on a hand-made cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from ddr.errors import ConfigError
from ddr.store.inventory import garbage, parse_age, remove_entry, scan, select, summary
from ddr.store.locks import entry_lock, lock_path

OLD = time.time() - 10 * 86400  # ten days ago (seconds since the epoch)


def _age(path: Path, when: float) -> None:
    for base, _dirs, files in os.walk(path):
        for name in files:
            os.utime(os.path.join(base, name), (when, when))
    os.utime(path, (when, when))


def _entry(root: Path, namespace: str, key: str, files: dict[str, Any], when: float | None = None) -> Path:
    folder = root / namespace / key[:2] / key
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    lock_path(folder).touch()
    if when is not None:
        _age(folder, when)
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("DDR_CACHE_DIR", str(root))
    monkeypatch.setenv("DDR_DATA_DIR", str(root / "data"))
    _entry(root, "jobs", "aa" + "1" * 62, {"result.json": {"role": "syn_hard"}}, OLD)
    _entry(root, "jobs", "bb" + "2" * 62, {"result.json": {"role": "real"}, "model.safetensors": "x" * 100})
    _entry(root, "distilled", "cc" + "3" * 62,
           {"meta.json": {"meta": {"method": "dm", "dataset": "digits", "ipc": 1}}, "images.safetensors": "y" * 50}, OLD)
    _entry(root, "distilled", "dd" + "4" * 62,
           {"meta.json": {"meta": {"method": "mtt", "dataset": "cifar10", "ipc": 10}}})
    _entry(root, "experts", "ee" + "5" * 62, {"meta.json": {"settings": {"dataset": "digits", "arch": "convnet"}}})
    _entry(root, "mymethod-features", "ff" + "6" * 62, {"MANIFEST": "z"})
    (root / "zca").mkdir()
    (root / "zca" / "cifar10-0123456789abcdef01234567.safetensors").write_text("w" * 30)
    (root / "quarantine" / "jobs" / "dead-20250101-1").mkdir(parents=True)
    (root / "quarantine" / "jobs" / "dead-20250101-1" / "result.json").write_text("{}")
    (root / "results.sqlite").write_text("db" * 10)
    (root / "data" / "digits").mkdir(parents=True)  # the datasets: never an entry
    (root / "data" / "digits" / "train.npz").write_text("d" * 10)
    stale = root / "jobs" / "aa" / (".tmp-killed")  # a killed write
    stale.mkdir()
    _age(stale, OLD)
    (root / "distilled" / "99").mkdir()
    (root / "distilled" / "99" / ("99" + "9" * 62 + ".lock")).touch()  # a lock whose entry is gone
    return root


def test_scan_sorts_entries_by_kind_and_reads_their_metadata(cache: Path) -> None:
    entries = scan()
    counts = summary(entries)
    assert {k: v["entries"] for k, v in counts.items()} == {
        "jobs": 1, "reference": 1, "distilled": 2, "experts": 1, "zca": 1, "assets": 1, "quarantine": 1}
    assert counts["reference"]["bytes"] == 100 + len(json.dumps({"role": "real"}))
    dm = next(e for e in entries if e.describes.get("method") == "dm")
    assert dm.describes["dataset"] == "digits" and dm.kind == "distilled" and dm.age() > 9 * 86400
    assert not any("data" in e.path.parts[-3:] for e in entries)  # datasets and the results DB are no entries


def test_select_filters_and_parse_age(cache: Path) -> None:
    entries = scan()
    assert parse_age("7d") == 7 * 86400 and parse_age("12h") == 12 * 3600 and parse_age("2") == 2 * 86400
    with pytest.raises(ConfigError, match="30m, 12h, 7d"):
        parse_age("soon")
    old = select(entries, older_than=parse_age("7d"))
    assert sorted(e.kind for e in old) == ["distilled", "jobs"]
    assert [e.describes["method"] for e in select(entries, kinds=("distilled",), dataset="cifar10")] == ["mtt"]
    assert select(entries, method="dm", kinds=("jobs",)) == []  # jobs do not name a method
    with pytest.raises(ConfigError, match="unknown cache kind"):
        select(entries, kinds=("models",))


def test_an_entry_whose_lock_is_held_is_never_removed(cache: Path) -> None:
    (dm,) = [e for e in scan() if e.describes.get("method") == "dm"]
    with entry_lock(dm.path, "the distilled set"):  # as a run reading it holds it
        assert remove_entry(dm) is False
        assert dm.path.is_dir()
    assert remove_entry(dm) is True and not dm.path.exists()
    assert lock_path(dm.path).exists()  # lock files stay (ddr.store.locks)


def test_garbage_finds_temporaries_quarantine_and_orphaned_locks(cache: Path) -> None:
    found = {(g.what, g.path.name) for g in garbage()}
    assert found == {("temporary", ".tmp-killed"), ("quarantine", "dead-20250101-1"),
                     ("orphaned lock", "99" + "9" * 62 + ".lock")}


def test_cli_info_ls_prune_gc(cache: Path, ddr_cli: Any) -> None:
    env = {"DDR_CACHE_DIR": str(cache), "DDR_DATA_DIR": str(cache / "data")}
    info = ddr_cli("cache", "info", "--json", env=env)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["kinds"]["distilled"]["entries"] == 2 and data["results_db_bytes"] == 20
    text = ddr_cli("cache", "info", env=env).stdout
    assert "reference" in text and "results database: 20 B" in text

    ls = ddr_cli("cache", "ls", "--kind", "distilled", "--older-than", "7d", env=env)
    assert ls.returncode == 0, ls.stderr
    assert "dm digits ipc1" in ls.stdout and "mtt" not in ls.stdout and "1 entries" in ls.stdout

    bad = ddr_cli("cache", "prune", env=env)
    assert bad.returncode == 2 and "needs a filter" in bad.stderr
    dry = ddr_cli("cache", "prune", "--older-than", "7d", "--dry-run", env=env)
    assert dry.returncode == 0 and "would remove 2 entries" in dry.stdout
    assert len(scan()) == 8
    pruned = ddr_cli("cache", "prune", "--method", "dm", env=env)
    assert pruned.returncode == 0 and "removed 1 entries" in pruned.stdout
    assert "results database is kept" in pruned.stdout and (cache / "results.sqlite").is_file()
    assert not any(e.describes.get("method") == "dm" for e in scan())

    gc = ddr_cli("cache", "gc", env=env)
    assert gc.returncode == 0, gc.stderr
    # the temporary, the quarantined entry, the orphaned lock, and the lock of the pruned dm entry
    assert "removed 4 items" in gc.stdout and gc.stdout.count("orphaned lock") == 2
    assert not (cache / "quarantine" / "jobs" / "dead-20250101-1").exists()
    assert (cache / "results.sqlite").is_file() and (cache / "data" / "digits" / "train.npz").is_file()
    assert ddr_cli("cache", "gc", env=env).stdout.startswith("nothing to collect")

    everything = ddr_cli("cache", "prune", "--all", env=env)
    assert everything.returncode == 0 and (cache / "results.sqlite").is_file()
    assert scan() == []
    db = ddr_cli("cache", "prune", "--include-results-db", env=env)
    assert db.returncode == 0 and not (cache / "results.sqlite").exists()
    assert (cache / "data" / "digits" / "train.npz").is_file()


def test_protocol_method_and_dataset_filters_follow_the_recorded_runs(cache: Path, ddr_cli: Any) -> None:
    """Jobs and distilled sets are shared across protocols and record none: a filter on the protocol
    matches the entries that recorded runs of that protocol used (their metrics.json lists the keys)."""
    from ddr.store.inventory import record_usage
    from ddr.store.results import ResultsDB

    job_key, ref_key, set_key = "aa" + "1" * 62, "bb" + "2" * 62, "cc" + "3" * 62
    record = cache.parent / "runs" / "dm-digits-ipc1-abc"
    record.mkdir(parents=True)
    (record / "metrics.json").write_text(json.dumps({
        "protocol": "digits-hard", "run_spec": {"method": "dm", "dataset": "digits", "distill_key": set_key},
        "reference": {"key": ref_key}, "students": [{"key": job_key}, {"key": None}, "junk"]}))
    (cache.parent / "runs" / "broken").mkdir()
    (cache.parent / "runs" / "broken" / "metrics.json").write_text("{not json")
    usage = record_usage([record, cache.parent / "runs" / "broken", cache.parent / "missing"])
    assert usage[job_key] == {"protocol": frozenset({"digits-hard"}), "method": frozenset({"dm"}),
                              "dataset": frozenset({"digits"})}
    entries = scan()
    used = select(entries, protocol="digits-hard", usage=usage)
    assert sorted(e.path.name for e in used) == sorted([job_key, ref_key, set_key])
    assert select(entries, protocol="cifar10-hard", usage=usage) == []
    assert [e.path.name for e in select(entries, kinds=("jobs",), method="dm", usage=usage)] == [job_key]
    assert select(entries, protocol="digits-hard") == []  # without the records nothing says so

    env = {"DDR_CACHE_DIR": str(cache), "DDR_DATA_DIR": str(cache / "data")}
    broken_db = ddr_cli("cache", "ls", "--protocol", "digits-hard", env=env)  # the fixture's DB is not SQLite
    assert broken_db.returncode == 0 and "cannot read the results database" in broken_db.stderr
    (cache / "results.sqlite").unlink()
    with ResultsDB(cache / "results.sqlite") as db:
        db.add_row({"run_id": "abc", "method": "dm", "dataset": "digits", "ipc": 1, "protocol": "digits-hard",
                    "record_dir": str(record)})
    ls = ddr_cli("cache", "ls", "--protocol", "digits-hard", env=env)
    assert ls.returncode == 0 and "3 entries" in ls.stdout, ls.stdout + ls.stderr
    pruned = ddr_cli("cache", "prune", "--protocol", "digits-hard", "--kind", "jobs", env=env)
    assert pruned.returncode == 0 and "removed 1 entries" in pruned.stdout, pruned.stdout
    assert not (cache / "jobs" / "aa" / job_key).exists() and (cache / "jobs" / "bb" / ref_key).exists()
