"""Suites: strict validation, stable unit ids, `ddr run SUITE.yaml` end to end (records, results
DB, leaderboard), failures collected, `--resume` after kills at random points, cross-arch runs,
and the run's log (log.txt, --log, -q)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddr.errors import DdrError
from ddr.plugin.manager import PluginSystem
from ddr.runs.suite import load_suite

TINY = """\
suite: {name}
methods: {methods}
ipcs: [1]
seeds: {seeds}
protocol: digits
num_eval: 2
epochs: 2
set: {{real.epochs: 2}}
"""

FAILING_METHOD = '''
from ddr import hookimpl
from ddr.plugin.specs import MethodSpec


class Broken:
    def distill(self, ctx):
        raise RuntimeError("the broken method always fails")


@hookimpl
def ddr_methods():
    return [MethodSpec(name="broken", target=Broken, summary="always raises")]
'''


def write_suite(folder: Path, name: str = "tiny", methods: str = "[random, dm.smoke]", seeds: str = "[0, 1]",
                extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(TINY.format(name=name, methods=methods, seeds=seeds) + extra)
    return path


def records(out: Path, suite: str) -> dict[str, dict]:
    """Every record folder of the suite -> its metrics (the numbers a rerun must reproduce)."""
    found = {}
    for folder in sorted((out / suite).iterdir()):
        if folder.is_dir():
            found[folder.name] = json.loads((folder / "metrics.json").read_text())
    return found


def numbers(metrics: dict) -> dict:
    keys = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")
    return {k: metrics[k]["values"] for k in keys} | {"sha": metrics["distilled_sha256"]}


def db_rows(db: Path, suite: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, method, seed, record_dir FROM runs WHERE suite = ?", (suite,)).fetchall()


# -- validation (no torch, no training) -----------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ("methods: [dm]\nipc: [1]\n", "unknown key 'ipc'; did you mean 'ipcs'?"),
    ("methods: [dm, hearding]\n", "unknown method 'hearding'; did you mean 'herding'?"),
    ("methods: [dm]\nper_method: {dm: {params: {iteration: 3}}}\n", "has no parameter 'iteration'; did you mean 'iterations'?"),
    ("methods: [dm]\nper_method: {dsa: {params: {iterations: 3}}}\n", "per_method names 'dsa', which the suite does not run"),
    ("methods: [dm]\nper_method: {dm: {param: {}}}\n", "unknown key 'per_method.dm.param'; did you mean 'per_method.dm.params'?"),
    ("methods: [dm]\nipcs: [1, 0]\n", "ipcs must be >= 1"),
    ("methods: [dm]\nseeds: [0, 0]\n", "lists a value twice"),
    ("methods: []\n", "'methods' is empty"),
    ("methods: [dm]\neval_archs: [convnett]\n", "unknown architecture 'convnett'; did you mean 'convnet'"),
    ("methods: [dm]\nset: {train.epoch: 3}\n", "unknown key 'train.epoch'; did you mean 'train.epochs'?"),
    ("methods: [dm]\nexclude: [{method: dm}]\n", "the exclude rules leave no run"),
    ("methods: [dm]\nexclude_methods: [dm]\n", "'exclude_methods' only applies to 'methods: all'"),
    ("methods: [dm]\nnum_eval: 0\n", "'num_eval' must be >= 1"),
    ("methods: [dm]\ndatasets: [cifar11]\n", "unknown dataset 'cifar11'"),
])
def test_a_bad_suite_is_refused_with_the_file_and_the_fix(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("suite: bad\n" + body)
    with pytest.raises(DdrError) as info:
        load_suite(path, PluginSystem())
    assert str(info.value).startswith(str(path)) and message in str(info.value), str(info.value)


def test_every_problem_of_a_suite_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("suite: bad\nmethods: [random, dmm]\ndatasets: [digits, digitz]\nipcs: [1, 0]\n"
                    "num_eval: x\nper_method: {random: {params: {nope: 1}}, kcentre: {}}\n"
                    "exclude: [{method: dc, ipcc: 1}]\n")
    with pytest.raises(DdrError) as info:
        load_suite(path, PluginSystem())
    message = str(info.value)
    assert message.startswith(f"{path} (suite): 7 problems (fix them all, then run again):"), message
    for expected in ("'num_eval' must be int, got 'x'", "ipcs must be >= 1, got 0",
                     "per_method names 'kcentre'", "unknown key 'exclude[0].ipcc'; did you mean 'exclude[0].ipc'?",
                     "unknown dataset 'digitz'", "method 'random' has no parameter 'nope'",
                     "unknown method 'dmm'; did you mean 'dm'"):
        assert message.count(expected) == 1, (expected, message)
    # continuation lines of a message stay under their bullet
    assert "\n      see `ddr list datasets`" in message


def test_methods_all_runs_every_installed_method_but_the_excluded(tmp_path: Path, local_module) -> None:
    local_module("broken_plugin", FAILING_METHOD)
    path = tmp_path / "all.yaml"
    path.write_text("suite: all\nmethods: all\nexclude_methods: [d4m]\n")
    system = PluginSystem(load=["broken_plugin"])
    suite = load_suite(path, system)
    installed = sorted(spec.name for spec in system.methods().list())
    assert "broken" in installed and suite.methods == [m for m in installed if m != "d4m"]


def test_unit_ids_are_stable_and_change_with_what_the_unit_asks(tmp_path: Path) -> None:
    system = PluginSystem()
    first = load_suite(write_suite(tmp_path, extra="eval_archs: [convnet, mlp]\n"), system).units()
    again = load_suite(write_suite(tmp_path, extra="eval_archs: [convnet, mlp]\n"), system).units()
    assert [u.uid for u in first] == [u.uid for u in again] and len({u.uid for u in first}) == len(first) == 8
    assert [u.label for u in first[:2]] == ["random-digits-ipc1-seed0-convnet", "random-digits-ipc1-seed0-mlp"]
    assert first[0].group == first[1].group != first[2].group  # two archs share one distillation
    longer = load_suite(write_suite(tmp_path, extra="eval_archs: [convnet, mlp]\nnum_eval: 3\n".replace(
        "num_eval: 3", "ars: true")), system).units()
    assert first[0].uid != longer[0].uid
    excluded = load_suite(write_suite(tmp_path, extra="exclude: [{method: dm, seed: 1}]\n"), system).units()
    assert [u.label for u in excluded] == ["random-digits-ipc1-seed0", "random-digits-ipc1-seed1",
                                           "dm.smoke-digits-ipc1-seed0"]


def test_the_shipped_suites_validate(ddr_cli) -> None:
    root = Path(__file__).resolve().parents[3] / "benchmarks" / "suites"
    proc = ddr_cli("validate", *map(str, sorted(root.glob("*.yaml"))), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "valid suite 'digits': 4 method(s) × 1 dataset(s) × 2 IPC(s) × 3 seed(s) = 24 distillation(s)" in proc.stdout
    assert "valid suite 'ddranking-table'" in proc.stdout


# -- running ------------------------------------------------------------------------------------

def test_a_suite_runs_writes_records_and_rows_and_resume_keeps_them(ddr_cli, tmp_path: Path, ddr_cache: Path) -> None:
    suite = write_suite(tmp_path)
    out = tmp_path / "runs"
    proc = ddr_cli("run", str(suite), "--out", str(out), "--no-progress", timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "suite 'tiny': 4 run, 0 kept, 0 failed, 0 not started, of 4" in proc.stdout
    first = records(out, "tiny")
    assert len(first) == 4 and all((out / "tiny" / name / "log.txt").is_file() for name in first)
    rows = db_rows(ddr_cache / "results.sqlite", "tiny")
    assert len(rows) == 4 and {r[1] for r in rows} == {"random", "dm.smoke"}
    manifest = json.loads((out / "tiny" / "suite.json").read_text())
    assert sorted(u["folder"] for u in manifest["units"]) == sorted(first)

    again = ddr_cli("run", str(suite), "--out", str(out), "--resume", "--no-progress", "--json", timeout=1800)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["done"], report["skipped"], report["failed"]) == (0, 4, 0)
    assert {k: numbers(v) for k, v in records(out, "tiny").items()} == {k: numbers(v) for k, v in first.items()}
    assert len(db_rows(ddr_cache / "results.sqlite", "tiny")) == 4  # re-added, never duplicated

    board = ddr_cli("leaderboard", "--suite", "tiny", timeout=300)
    assert board.returncode == 0 and "| dm.smoke |" in board.stdout and "| random |" in board.stdout, board.stdout

    # the file changes (dm.smoke dropped): its name still selects every run tagged 'tiny', the file
    # only the runs of the units it has now
    write_suite(tmp_path, methods="[random]")
    board = ddr_cli("leaderboard", "--suite", str(suite), timeout=300)
    assert board.returncode == 0 and "| dm.smoke |" not in board.stdout and "| random |" in board.stdout, board.stdout
    listed = ddr_cli("results", "--suite", str(suite), "--csv", timeout=300)
    assert listed.returncode == 0 and listed.stdout.count("\n") == 1 + 2, listed.stdout  # header + 2 random runs
    assert ddr_cli("results", "--suite", "tiny", "--csv", timeout=300).stdout.count("\n") == 1 + 4


def test_a_failing_method_fails_only_its_own_runs(ddr_cli, local_module, tmp_path: Path) -> None:
    module = local_module("broken_plugin", FAILING_METHOD)
    suite = write_suite(tmp_path, methods="[broken, random]", seeds="[0]")
    out = tmp_path / "runs"
    proc = ddr_cli("-p", "broken_plugin", "run", str(suite), "--out", str(out), "--no-progress",
                   pythonpath=module.parent, timeout=1800)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "suite 'tiny': 1 run, 0 kept, 1 failed, 0 not started, of 2" in proc.stdout
    failures = proc.stderr[proc.stderr.index("failures:"):]
    assert "broken-digits-ipc1-seed0" in failures and "broken_plugin" in failures
    assert "the broken method always fails" in failures
    assert list(records(out, "tiny")) and all(name.startswith("random-") for name in records(out, "tiny"))

    stop = ddr_cli("-p", "broken_plugin", "run", str(suite), "--out", str(tmp_path / "other"), "--exit-on-error",
                   "--no-progress", pythonpath=module.parent, timeout=1800)
    assert stop.returncode == 1 and "0 run, 0 kept, 1 failed, 1 not started, of 2" in stop.stdout


def test_a_suite_refuses_options_of_one_run(ddr_cli, tmp_path: Path) -> None:
    proc = ddr_cli("run", str(write_suite(tmp_path)), "--ipc", "10", "--epochs", "3", timeout=300)
    assert proc.returncode == 2 and "--ipc, --epochs set(s) one run; with a suite file put it in the file" in proc.stderr


def _kill_at_random_points(ddr_cli_args: list[str], env: dict[str, str], cwd: Path, rng: random.Random,
                           times: int) -> int:
    """Start the suite and SIGKILL it after a random delay, ``times`` times; returns how many kills
    landed before it finished on its own."""
    kills = 0
    for _ in range(times):
        proc = subprocess.Popen([sys.executable, "-m", "ddr", *ddr_cli_args], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 12.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=600)
    return kills


@pytest.mark.slow  # about 3 minutes on 2 cores
def test_kill_9_at_random_points_then_resume_loses_and_duplicates_nothing(ddr_cli, tmp_path: Path,
                                                                           ddr_cache: Path) -> None:
    suite = write_suite(tmp_path, methods="[random, dm.smoke]", seeds="[0, 1]")
    # the uninterrupted run, with its own cache, is the reference
    reference_cache = tmp_path / "reference-cache"
    ref = ddr_cli("run", str(suite), "--out", str(tmp_path / "reference"), "--no-progress",
                  env={"DDR_CACHE_DIR": str(reference_cache)}, timeout=1800)
    assert ref.returncode == 0, ref.stderr
    expected = {k: numbers(v) for k, v in records(tmp_path / "reference", "tiny").items()}

    out = tmp_path / "runs"
    args = ["run", str(suite), "--out", str(out), "--resume", "--no-progress"]
    env = {**os.environ, "DDR_CACHE_DIR": str(ddr_cache)}
    _kill_at_random_points(args, env, tmp_path, random.Random(7), times=3)
    final = ddr_cli(*args, "--json", timeout=1800)
    assert final.returncode == 0, final.stderr
    assert {k: numbers(v) for k, v in records(out, "tiny").items()} == expected
    assert not [p for p in (out / "tiny").iterdir() if p.name.startswith(".")]  # no half-written folder left
    rows = db_rows(ddr_cache / "results.sqlite", "tiny")
    assert len(rows) == len(expected) == 4 and len({r[0] for r in rows}) == 4


def test_ctrl_c_ends_a_suite_with_130_and_says_how_to_resume(ddr_cli, tmp_path: Path, ddr_cache: Path) -> None:
    suite = write_suite(tmp_path, methods="[random]", seeds="[0, 1]")
    env = {**os.environ, "DDR_CACHE_DIR": str(ddr_cache)}
    proc = subprocess.Popen([sys.executable, "-m", "ddr", "run", str(suite), "--out", str(tmp_path / "runs"),
                             "--no-progress"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # Ctrl-C while the first student trains
        seen.append(line)
        if "training the real-data reference" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=600)
    err = "".join(seen) + rest
    if proc.returncode == 0:
        pytest.skip("the suite finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err


# -- cross-architecture and the log -----------------------------------------------------------------

def test_eval_arch_distills_once_and_scores_each_architecture(ddr_cli, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    own = {"DDR_CACHE_DIR": str(tmp_path / "own-cache")}  # "distilled once" is counted from an empty cache
    proc = ddr_cli("run", "--method", "dm.smoke", "--eval-arch", "convnet,mlp", "--num-eval", "2", "--epochs", "2",
                   "--set", "real.epochs=2", "--out", str(out), "--no-progress", "--json", env=own, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    by_arch = {r["eval_arch"]: r for r in report["results"]}
    assert set(by_arch) == {"convnet", "mlp"} and report["failures"] == []
    assert by_arch["convnet"]["distilled_sha256"] == by_arch["mlp"]["distilled_sha256"]
    assert by_arch["mlp"]["run_spec"]["arch"] == "mlp" and by_arch["mlp"]["run_spec"]["distill_arch"] == "convnet"
    assert by_arch["mlp"]["acc_real_hard"]["mean"] != by_arch["convnet"]["acc_real_hard"]["mean"]
    assert proc.stderr.count("distilled set found in the cache") == 1
    table = ddr_cli("run", "--method", "dm.smoke", "--eval-arch", "convnet,mlp", "--num-eval", "2", "--epochs", "2",
                    "--set", "real.epochs=2", "--out", str(out), "--no-progress", env=own, timeout=1800)
    assert table.returncode == 0 and "student arch" in table.stdout and "distilled with convnet" in table.stdout
    lines = [line for line in table.stdout.splitlines() if line.startswith(("convnet ", "mlp "))]
    assert len(lines) == 2


def test_every_record_keeps_its_log_and_log_file_and_quiet_work(ddr_cli, tmp_path: Path) -> None:
    log = tmp_path / "all.log"
    proc = ddr_cli("run", "--method", "random", "--num-eval", "1", "--epochs", "2", "--set", "real.epochs=2",
                   "--out", str(tmp_path / "runs"), "--log", str(log), "-v", "--no-progress",
                   env={"DDR_CACHE_DIR": str(tmp_path / "own-cache")}, timeout=900)
    assert proc.returncode == 0, proc.stderr
    record = next((tmp_path / "runs").iterdir())
    text = (record / "log.txt").read_text()
    assert "training the real-data reference once" in text and " INFO " in text
    logged = log.read_text()
    assert "training the real-data reference once" in logged and "DEBUG" in logged and "stage: students" in logged
    quiet = ddr_cli("run", "--method", "random", "--num-eval", "1", "--epochs", "2", "--set", "real.epochs=2",
                    "--out", str(tmp_path / "runs"), "-q", timeout=900)
    assert quiet.returncode == 0 and "ddr: " not in quiet.stderr, quiet.stderr


@pytest.mark.slow  # starts a local Ray: about 2 minutes on 2 cores
def test_a_suite_under_the_ray_executor_gives_the_local_numbers(ddr_cli, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    suite = write_suite(tmp_path, methods="[random, dm.smoke]", seeds="[0]")
    results = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        proc = ddr_cli("run", str(suite), "--out", str(out), "--executor", executor, "--no-progress",
                       env={"DDR_CACHE_DIR": str(tmp_path / f"cache-{executor}")}, timeout=1800)
        assert proc.returncode == 0, proc.stderr
        results[executor] = {k: numbers(v) for k, v in records(out, "tiny").items()}
        assert {json.loads((out / "tiny" / k / "run_spec.json").read_text())["executor"]
                for k in results[executor]} == {executor}
    assert len(results["local"]) == 2 and results["ray"] == results["local"]
