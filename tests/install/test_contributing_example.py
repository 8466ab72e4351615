"""CONTRIBUTING.md's example plugin, typed into a new package exactly as written, installs, shows
up in ``ddr plugins`` / ``ddr list``, and its method and loss run through a real evaluation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.plugin_venv import install_in_fresh_venv, run

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"
FILE_BLOCK = re.compile(r"^`ddr-fancy/(?P<path>[^`]+)`[^\n]*:\n\n```[a-z]*\n(?P<body>.*?)```", re.M | re.S)


def example_files() -> dict[str, str]:
    files = {m["path"]: m["body"] for m in FILE_BLOCK.finditer(CONTRIBUTING.read_text())}
    assert {"pyproject.toml", "ddr_fancy/__init__.py", "ddr_fancy/plugin.py", "ddr_fancy/method.py",
            "ddr_fancy/loss.py", "ddr_fancy/metric.py", "tests/test_fancy.py"} <= set(files), (
        f"CONTRIBUTING.md example is incomplete: {sorted(files)}")
    return files


@pytest.fixture(scope="module")
def fancy_venv(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("contributing")
    package = root / "ddr-fancy"
    for rel, body in example_files().items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(body)
    return install_in_fresh_venv(package, root)


def _ddr(venv, *args: str, timeout: int = 300):
    python, env = venv
    return run([str(python), "-m", "ddr", *args], env, python.parents[2], timeout=timeout)


def test_example_plugin_is_discovered(fancy_venv) -> None:
    proc = _ddr(fancy_venv, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    fancy = {row["name"]: row for row in json.loads(proc.stdout)}["fancy"]
    assert (fancy["distribution"], fancy["version"], fancy["status"]) == ("ddr-fancy", "0.1.0", "active")
    assert fancy["hooks"] == ["ddr_losses", "ddr_methods", "ddr_metrics"]
    methods = {r["name"]: r for r in json.loads(_ddr(fancy_venv, "list", "methods", "--json").stdout)}
    assert methods["class-mean"]["provider"] == "fancy"
    assert [p["name"] for p in methods["class-mean"]["params"]] == ["group_size"]
    losses = {r["name"]: r for r in json.loads(_ddr(fancy_venv, "list", "losses", "--json").stdout)}
    assert losses["fancy_kl"]["soft"] is True and losses["fancy_kl"]["provider"] == "fancy"
    metrics = {r["name"]: r for r in json.loads(_ddr(fancy_venv, "list", "metrics", "--json").stdout)}
    assert metrics["fancy_ece"]["provider"] == "fancy" and metrics["fancy_ece"]["higher_is_better"] is False
    assert {"ddrs", "hlr", "robust_pgd"} <= set(metrics)  # the built-ins come through the same hook
    typo = _ddr(fancy_venv, "run", "--method", "class-mean", "--set", "method.group_sise=4", "--no-progress")
    assert typo.returncode == 2 and "has no parameter 'group_sise'; did you mean 'group_size'?" in typo.stderr


def test_example_method_and_loss_run_under_the_protocol(fancy_venv) -> None:
    common = ["--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1", "--no-progress", "--json"]
    proc = _ddr(fancy_venv, "run", "--method", "class-mean", *common)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["method"] == "class-mean" and result["method_params"] == {"group_size": 8}
    assert 0.0 <= result["acc_syn_hard"]["mean"] <= 1.0
    # the third-party loss with the teacher strategy: the teacher relabels, fancy_kl compares
    proc = _ddr(fancy_venv, "run", "--method", "class-mean", "--label-strategy", "teacher", "--loss", "fancy_kl",
                "--protocol", "soft", "--set", "student.arch_params={width: 16}", *common)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["run_spec"]["label_strategy"] == "teacher" and result["run_spec"]["loss"] == "fancy_kl"
    assert 0.0 <= result["acc_syn_any"]["mean"] <= 1.0


def test_example_metric_is_measured_recorded_and_ranked(fancy_venv, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The installed plugin's student metric: measured inside the student jobs, in the run's record
    (per student and summarised) and a leaderboard column with its direction."""
    db = tmp_path_factory.mktemp("fancy-db") / "results.sqlite"
    proc = _ddr(fancy_venv, "run", "--method", "class-mean", "--metric", "fancy_ece", "--set",
                "metric.fancy_ece.bins=5", "--num-eval", "2", "--epochs", "3", "--set", "real.epochs=1",
                "--no-progress", "--json", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["run_spec"]["metrics"] == [{"name": "fancy_ece", "version": "1", "params": {"bins": 5}}]
    for key in ("fancy_ece_syn", "fancy_ece_rdm"):
        assert result[key]["n"] == 2 and all(0.0 <= v <= 1.0 for v in result[key]["values"])
    assert result["fancy_ece_gap"]["values"] == pytest.approx(
        [a - b for a, b in zip(result["fancy_ece_syn"]["values"], result["fancy_ece_rdm"]["values"])])
    record = json.loads((Path(result["record_dir"]) / "metrics.json").read_text())
    assert any("fancy_ece" in s.get("metrics", {}) for s in record["students"])
    board = _ddr(fancy_venv, "leaderboard", "--db", str(db))
    assert board.returncode == 0, board.stderr
    assert "ECE syn ↓" in board.stdout and "ECE gap syn − random ↓" in board.stdout


def test_example_tests_pass_with_ddrs_pytest_plugin(fancy_venv, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The example's own tests (check_loss, check_method with its smoke preset) pass, and ddr's
    pytest plugin gives them a temporary cache."""
    python, env = fancy_venv
    tests = python.parents[2] / "ddr-fancy" / "tests"
    proc = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], env, tests.parent,
               timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
