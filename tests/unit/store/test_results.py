"""The SQLite results database (ddr.store.results) and the ``ddr results``/``compare`` commands."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.results import FIXTURES, copy_runs, real_runs, write_run
from scipy import stats

from ddr.errors import ArtifactError, DdrError
from ddr.store.hashing import sha256_json
from ddr.store.results import SCHEMA_VERSION, ResultsDB, default_path, load_record

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ResultsDB]:
    with ResultsDB(tmp_path / "results.sqlite") as database:
        yield database


def test_fixtures_are_real_cli_records() -> None:
    runs = real_runs()
    assert len(runs) >= 6
    for run in runs:
        assert {p.name for p in run.iterdir()} >= {"run_spec.json", "metrics.json", "env.json"}


def test_add_record_stores_the_record_exactly(db: ResultsDB) -> None:
    folder = FIXTURES / "dm-digits-ipc1-seed0-6312b3c1eb"
    metrics = json.loads((folder / "metrics.json").read_text())
    spec = json.loads((folder / "run_spec.json").read_text())
    run_id = db.add_record(folder, suite="digits")
    assert run_id == sha256_json(spec) and run_id.startswith("6312b3c1eb")  # the folder's hash suffix
    row = db.get(run_id)
    assert row["method"] == "dm" and row["dataset"] == "digits" and row["ipc"] == 1 and row["arch"] == "convnet"
    assert row["suite"] == "digits" and row["protocol"] == "digits" and row["protocol_version"] == "1"
    assert row["seed"] == 0 and row["distill_seed"] == 0
    assert row["distilled_sha256"] == metrics["distilled_sha256"]
    for key in ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs"):
        assert row[key] == metrics[key]["mean"]
    assert row["hlr"] == pytest.approx(0.06260434056761266, abs=0)
    assert row["metrics"] == metrics and row["run_spec"] == spec
    assert row["env"] == json.loads((folder / "env.json").read_text())
    assert row["method_params"]["iterations"] == 50
    assert row["distill_seconds"] == 7.259 and row["eval_seconds"] == metrics["eval_seconds"]
    assert row["record_dir"] == str(folder.resolve())
    students = {(s["role"], s["index"]): s for s in row["students"]}
    assert len(students) == len(metrics["students"]) == 4
    for s in metrics["students"]:
        got = students[(s["role"], s["index"])]
        assert got["seed"] == s["seed"] and got["accuracy"] == s["accuracy"] and got["lr"] == s["lr"]
        assert got["epochs"] == s["epochs_trained"] and got["seconds"] == s["seconds"]


def test_same_run_twice_is_one_row(db: ResultsDB, tmp_path: Path) -> None:
    folder = FIXTURES / "herding-digits-ipc1-seed0-aaa96062d9"
    first = db.add_record(folder, suite="a")
    second = db.add_record(folder)  # suite kept
    copy = tmp_path / "copy" / folder.name
    copy.parent.mkdir()
    import shutil

    shutil.copytree(folder, copy)
    third = db.add_record(copy)  # same run from another folder: still one row
    assert first == second == third and len(db) == 1
    row = db.get(first)
    assert row["suite"] == "a" and row["record_dir"] == str(copy.resolve())
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT COUNT(*) FROM students WHERE run_id = ?", (first,)).fetchone()[0] == len(row["students"])
    con.close()
    db.add_record(folder, suite="b")
    assert db.get(first)["suite"] == "b" and len(db) == 1


def test_schema_version_wal_and_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    assert default_path() == tmp_path / "cache" / "results.sqlite"
    with ResultsDB() as database:
        assert database.path == tmp_path / "cache" / "results.sqlite"
        assert database.schema_version == SCHEMA_VERSION == 2
    con = sqlite3.connect(tmp_path / "cache" / "results.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= {"runs", "students", "schema_version"}
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(DdrError, match="schema version 99"):
        ResultsDB(tmp_path / "cache" / "results.sqlite")


def test_query_filters(db: ResultsDB) -> None:
    db.import_dirs([FIXTURES], suite="digits")
    everything = db.query()
    assert len(everything) == len(real_runs())
    assert len(db.query(suite="digits")) == len(everything) and db.query(suite="other") == []
    dm = db.query(where={"method": "dm"})
    assert dm and all(r["method"] == "dm" for r in dm)
    assert {r["method"] for r in db.query(where={"method": ["dm", "random"]})} == {"dm", "random"}
    ipc2 = db.query(where={"ipc": "2"})  # strings from the command line match integer columns
    assert ipc2 and all(r["ipc"] == 2 for r in ipc2) and ipc2 == db.query(where={"ipc": 2})
    assert db.query(where={"method_params.iterations": 50}) == db.query(where={"method_params.iterations": "50"})
    assert {r["method"] for r in db.query(where={"method_params.iterations": 50})} == {"dm"}
    assert db.query(where={"run_spec.protocol_config.train.epochs": 20}) == everything
    assert db.query(where={"method": []}) == []
    with pytest.raises(DdrError, match="unknown filter key 'bogus'"):
        db.query(where={"bogus": 1})
    with pytest.raises(DdrError, match="name a field"):
        db.query(where={"metrics": 1})


def test_get_by_prefix_folder_name_and_errors(db: ResultsDB, tmp_path: Path) -> None:
    run_id = db.add_record(FIXTURES / "dm-digits-ipc1-seed0-6312b3c1eb")
    assert db.get("6312b3")["run_id"] == run_id
    assert db.get("dm-digits-ipc1-seed0-6312b3c1eb")["run_id"] == run_id
    with pytest.raises(DdrError, match="no run 'ffff'"):
        db.get("ffff")
    for k in range(2):  # two ids sharing a prefix
        row = load_record(FIXTURES / "random-digits-ipc1-seed0-ef9d5845ee")
        row["run_id"] = f"abc{k}" + "0" * 60
        db.add_row(row)
    with pytest.raises(DdrError, match="ambiguous"):
        db.get("abc")
    assert db.get("abc1")["run_id"].startswith("abc1")


def test_missing_required_parts_are_clear_errors(tmp_path: Path, db: ResultsDB) -> None:
    folder = copy_runs(tmp_path / "runs")[0]
    metrics_path = folder / "metrics.json"
    original = json.loads(metrics_path.read_text())

    def broken(mutate) -> ArtifactError:
        data = json.loads(json.dumps(original))
        mutate(data)
        metrics_path.write_text(json.dumps(data))
        with pytest.raises(ArtifactError) as info:
            db.add_record(folder)
        return info.value

    err = broken(lambda d: d.pop("hlr"))
    assert str(metrics_path) in str(err) and "'hlr'" in str(err)
    err = broken(lambda d: d["ior"].pop("values"))
    assert str(metrics_path) in str(err) and "'ior.values'" in str(err)
    err = broken(lambda d: d.__setitem__("ddrs", 0.3))
    assert "'ddrs' must be a summary" in str(err)
    metrics_path.write_text("{not json")
    with pytest.raises(ArtifactError, match="cannot read .*metrics.json"):
        db.add_record(folder)
    metrics_path.write_text(json.dumps(original))
    spec_path = folder / "run_spec.json"
    spec = json.loads(spec_path.read_text())
    spec.pop("ipc")
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ArtifactError, match=r"run_spec.json has no 'ipc'"):
        db.add_record(folder)
    metrics_path.unlink()
    with pytest.raises(ArtifactError, match="metrics.json is missing"):
        db.add_record(folder)
    with pytest.raises(ArtifactError, match="not a directory"):
        db.add_record(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="holds no run records"):
        db.import_dirs([tmp_path / "empty"])
    assert len(db) == 0


def test_optional_fields_may_be_missing_and_new_fields_are_kept(tmp_path: Path, db: ResultsDB) -> None:
    folder = write_run(tmp_path / "syn", "mine", [0.1, 0.2], [0.3, 0.1],
                       extra_metrics={"a_future_field": {"x": 1}})
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("students", "distill_seconds", "eval_seconds", "protocol_version", "seed"):
        metrics.pop(key)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "env.json").unlink()
    row = db.get(db.add_record(folder))
    assert row["metrics"]["a_future_field"] == {"x": 1}
    assert row["students"] == [] and row["env"] == {} and row["distill_seconds"] is None
    assert row["hlr"] == pytest.approx(0.15, abs=1e-15) and row["seed"] == 0  # the seed from run_spec.json


def test_storage_bytes_from_the_distilled_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      db: ResultsDB) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("DDR_CACHE_DIR", str(cache))
    key = "ab" + "c" * 62
    entry = cache / "distilled" / key[:2] / key
    entry.mkdir(parents=True)
    header = json.dumps({"images": {"dtype": "F32", "shape": [10, 1, 16, 16], "data_offsets": [0, 10240]},
                         "labels": {"dtype": "I64", "shape": [10], "data_offsets": [10240, 10320]},
                         "soft_labels": {"dtype": "F32", "shape": [10, 10], "data_offsets": [10320, 10720]}}).encode()
    (entry / "images.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 10720)
    folder = write_run(tmp_path / "r", "mine", [0.1], [0.2])
    spec = json.loads((folder / "run_spec.json").read_text())
    spec["distill_key"] = key
    (folder / "run_spec.json").write_text(json.dumps(spec))
    row = db.get(db.add_record(folder))
    assert row["image_bytes"] == 10240 and row["soft_label_bytes"] == 400
    other = write_run(tmp_path / "r2", "mine", [0.1], [0.2], seed=1, extra_metrics={"image_bytes": 7, "soft_label_bytes": 3})
    row = db.get(db.add_record(other))
    assert row["image_bytes"] == 7 and row["soft_label_bytes"] == 3


def test_huge_seeds_round_trip(tmp_path: Path, db: ResultsDB) -> None:
    folder = write_run(tmp_path / "r", "mine", [0.1, 0.2], [0.2, 0.3], seed=2**64 + 5)
    row = db.get(db.add_record(folder))
    assert row["seed"] == 2**64 + 5
    assert sorted(s["seed"] for s in row["students"]) == [2**63 - 2, 2**63 - 1]
    assert db.query(where={"seed": 2**64 + 5})[0]["run_id"] == row["run_id"]


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from ddr.store.results import ResultsDB
    from helpers.results import write_run
    db = ResultsDB(sys.argv[1])
    base = Path(sys.argv[2])
    for k in range(25):
        folder = write_run(base / f"run{k}", "m" + base.name, [0.01 * k], [0.02 * k], seed=k)
        db.add_record(folder, suite=base.name)
    print("ok", len(db.query(suite=base.name)))
""")


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    ResultsDB(path).close()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(tmp_path / name),
                               str(REPO / "tests")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name in ("a", "b")]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert out.strip() == "ok 25"
    with ResultsDB(path) as database:
        assert len(database) == 50
        assert len(database.query(suite="a")) == len(database.query(suite="b")) == 25


def test_threads_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "threads.sqlite"
    folders = [write_run(tmp_path / f"t{k}", f"m{k % 3}", [0.01 * k], [0.0], seed=k) for k in range(30)]
    errors: list[BaseException] = []

    def work(part: list[Path]) -> None:
        try:
            with ResultsDB(path) as database:
                for folder in part:
                    database.add_record(folder)
                    database.add_record(folder)  # and again: still one row
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(folders[k::3],)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ResultsDB(path) as database:
        assert len(database) == 30


# -- the commands ------------------------------------------------------------------------------

def _cli(argv: list[str]) -> int:
    from ddr.cli.results import add_results_commands

    parser = argparse.ArgumentParser(prog="ddr")
    add_results_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_import_list_json_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = str(tmp_path / "cli.sqlite")
    assert _cli(["results", "import", str(FIXTURES), "--suite", "digits", "--db", db_path]) == 0
    n = len(real_runs())
    assert f"imported {n} run(s) ({n} new, 0 updated)" in capsys.readouterr().out
    assert _cli(["results", "--db", db_path, "import", str(FIXTURES)]) == 0
    assert f"(0 new, {n} updated)" in capsys.readouterr().out
    assert _cli(["results", "--db", db_path, "--where", "method=dm", "--where", "ipc=1"]) == 0
    out = capsys.readouterr().out
    assert "6312b3c1eb" in out and "herding" not in out and "digits v1" in out
    assert re.search(r"run\(s\) · ddr \d+\.\d+\.\d+ · generated \d{4}-\d\d-\d\d$", out.rstrip())
    from ddr.cli.results import parse_where

    assert parse_where(["lrs=0.25", "LRS=0.5", "method=dm"]) == {"ddrs": [0.25, 0.5], "method": "dm"}
    assert _cli(["results", "--db", db_path, "--suite", "digits", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == n and all(r["suite"] == "digits" for r in rows)
    assert _cli(["results", "--db", db_path, "--csv", "--where", "method=random"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("run_id,suite,method") and all(",random," in line for line in lines[1:])
    with pytest.raises(DdrError, match="KEY=VALUE"):
        _cli(["results", "--db", db_path, "--where", "method"])


def test_cli_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.results import compare_runs

    db_path = str(tmp_path / "cli.sqlite")
    with ResultsDB(db_path) as database:
        database.import_dirs([FIXTURES])
        a, b = database.get("6312b3c1eb"), database.get("a8159dccdf")
    result = compare_runs([a, b])
    ddrs = next(s for s in result["scores"] if s["quantity"] == "ddrs")
    assert ddrs["mean"] == [a["ddrs"], b["ddrs"]] and ddrs["diff"][1] == b["ddrs"] - a["ddrs"]
    keys = {d["key"]: d["values"] for d in result["spec_differences"]}
    assert keys["seed"] == [0, 1] and "distill_key" in keys and "dataset" not in keys
    herding = str(FIXTURES / "herding-digits-ipc1-seed0-aaa96062d9")
    assert _cli(["compare", "--db", db_path, "6312b3", "a8159d", herding]) == 0
    out = capsys.readouterr().out
    assert "Δ a8159dccdf − 6312b3c1eb" in out and "run spec differences:" in out
    assert f"{b['ddrs'] - a['ddrs']:+.4f}" in out
    assert "method_params.embed_batch_size" in out and "(absent)" in out
    # is the difference real? dm seed 1 vs dm seed 0: other seeds, Welch; herding seed 0 vs dm seed 0: paired
    assert "is the difference real?" in out and "DDRS (LRS) ↑" in out  # labels from the metric registry
    tests = {(t["run"], t["quantity"]): t for t in compare_runs([a, b, database_row(db_path, "aaa96062d9")])["tests"]}
    welch = tests[("a8159dccdf", "ddrs")]
    da, db_ = a["metrics"]["ddrs"]["values"], b["metrics"]["ddrs"]["values"]
    assert not welch["paired"] and welch["p"] == pytest.approx(stats.ttest_ind(db_, da, equal_var=False).pvalue)
    paired = tests[("aaa96062d9", "ddrs")]
    herding_values = database_row(db_path, "aaa96062d9")["metrics"]["ddrs"]["values"]
    assert paired["paired"] and paired["p"] == pytest.approx(stats.ttest_rel(herding_values, da).pvalue)
    assert paired["p_holm"] == pytest.approx(min(1.0, 2 * min(paired["p"], welch["p"])) if paired["p"] < welch["p"]
                                             else max(paired["p"], min(1.0, 2 * welch["p"])))
    with pytest.raises(DdrError, match="at least two runs"):
        _cli(["compare", "--db", db_path, "6312b3"])


def database_row(db_path: str, run_id: str) -> dict:
    with ResultsDB(db_path) as database:
        return database.get(run_id)


def test_cli_paths_never_import_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import argparse, sys
        from ddr.cli.results import add_results_commands
        p = argparse.ArgumentParser(); add_results_commands(p.add_subparsers())
        db = {str(tmp_path / 'x.sqlite')!r}
        for argv in (["results", "import", {str(FIXTURES)!r}, "--db", db], ["results", "--db", db],
                     ["compare", "--db", db, "6312b3", "a8159d"],
                     ["leaderboard", "--db", db, "--format", "html", "-o", {str(tmp_path / 'lb.html')!r}]):
            a = p.parse_args(argv); assert a.func(a) == 0
        assert "torch" not in sys.modules, "torch was imported"
        print("no torch")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("no torch")


def test_eval_records_are_named_by_their_distilled_set(db: ResultsDB) -> None:
    folder = FIXTURES.parent / "results_eval" / "eval-digits-ipc1-seed0-a2dff04d60"  # `ddr eval --arch mlp` of dm's set
    row = db.get(db.add_record(folder))
    dm = load_record(FIXTURES / "dm-digits-ipc1-seed0-6312b3c1eb")
    assert row["distilled_sha256"] == dm["distilled_sha256"]
    assert row["method"] == dm["distilled_sha256"][:10] + " (external set)" and row["arch"] == "mlp"
    assert row["distill_seconds"] is None and row["hlr"] == pytest.approx(0.2821, abs=5e-5)

