"""The ``ray`` executor: what needs no Ray in this process (the payload it ships, the missing-Ray
message, lazy imports, the CLI's ``--executor ray`` in a subprocess), and the in-process Ray
cases of tests/unit/execute/ray_driver_cases.py, run in a child pytest so that a Ray core failure, which ends
its driver process outright, is reported as a failing test instead of ending this run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from ray_driver_cases import distilled_set, distilled_split

from ddr.errors import ConfigError, DdrError
from ddr.execute.ray import RAY_MISSING, RayExecutor
from ddr.resources.session import Session
from ddr.runs.evaluate import EvalOptions, Evaluator


def test_the_payload_ships_a_teacher_only_when_a_job_needs_one_and_needs_in_memory_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ddr.engine.data import Split
    from ddr.execute.ray import _payload
    from ddr.method.distilled import distilled_sha256

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, num_eval=1, epochs=1, device="cpu"),
                          session=Session(progress_bars=False))
    distilled = distilled_set(False)
    sha = distilled_sha256(distilled)
    ws = evaluator.workspace
    ws.add_distilled(sha, distilled_split(distilled), None)
    asked: list[int] = []
    teacher = evaluator.resources.make_model(0, *evaluator.resources.teacher_arch())
    ws.teachers = lambda: asked.append(1) or [teacher]
    hard = _payload(list(evaluator.plan(distilled, "hard", None, sha).students), ws)
    assert hard["teachers"] is None and asked == [] and set(hard["distilled"]) == {sha} and set(hard["random"]) == {0}
    assert len(hard["pool"]) == 0  # no job trains on the pool: it stays in the driver
    soft = _payload(list(evaluator.plan(distilled, "teacher", None, sha).students), ws)
    assert asked and soft["teachers"]["arch"] == evaluator.resources.teacher_arch()
    (state,) = soft["teachers"]["states"]
    assert all(torch.equal(state[k], v) for k, v in teacher.state_dict().items())
    assert soft["torch"]["threads"] == torch.get_num_threads()
    # a streamed training pool cannot be shipped: a clear error before any task starts
    ws.pool = Split(labels=ws.pool.labels, source=[(image, 0) for image in ws.pool.images])
    with pytest.raises(DdrError, match="the ray executor needs an in-memory dataset"):
        _payload([evaluator.resources.reference()], ws)


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=re.escape(RAY_MISSING)):
        RayExecutor()
    with pytest.raises(ConfigError, match=re.escape('pip install "ddr-bench[ray]"')):
        Session(progress_bars=False).executor("ray", {"address": "127.0.0.1:6379"})


def test_listing_the_ray_executor_imports_neither_ray_nor_torch() -> None:
    code = ("import sys; from ddr.plugin.manager import PluginSystem; s = PluginSystem(); "
            "spec = s.executors().get('ray'); import ddr.execute.ray; "
            "assert spec.target_path == 'ddr.execute.ray:RayExecutor', spec.target_path; "
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_the_cli_gives_the_same_numbers_on_ray_and_locally(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = {**os.environ, "DDR_CACHE_DIR": str(tmp_path / "cache")}
    args = ["run", "--method", "random", "--num-eval", "2", "--epochs", "5", "--set", "real.epochs=2", "--json",
            "--no-progress", "--no-job-cache", "--out", str(tmp_path / "runs"), "--metric", "robust_fgsm",
            "--set", "metric.robust_fgsm.max_images=100"]  # a student metric is measured on the Ray worker

    def ddr(executor: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "ddr", *args, "--executor", executor], capture_output=True,
                              text=True, env=env, timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    remote = ddr("ray")  # its own local Ray, shut down at exit
    local = ddr("local")
    assert remote["run_spec"]["executor"] == "ray" and local["run_spec"]["executor"] == "local"
    for name in ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "ddrs", "robust_fgsm_syn",
                 "robust_fgsm_rdm", "robust_fgsm_gap"):
        assert remote[name] == local[name], name


CASES = Path(__file__).with_name("ray_driver_cases.py")


def _run_cases(report: Path) -> tuple[subprocess.CompletedProcess[str], ElementTree.Element | None]:
    proc = subprocess.run([sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider",
                           f"--junitxml={report}"], capture_output=True, text=True, timeout=1800,
                          cwd=Path(__file__).resolve().parents[3])
    suite = ElementTree.parse(report).getroot().find("testsuite") if report.exists() else None
    return proc, suite


def ray_logs() -> str:
    """The tails of the last local Ray session's raylet and GCS logs, which say why a driver died."""
    logs = Path("/tmp/ray/session_latest/logs")
    tails = []
    for name in ("raylet.out", "raylet.err", "gcs_server.out", "gcs_server.err"):
        if (logs / name).exists():
            tails.append(f"--- {logs / name} ---\n" + "\n".join((logs / name).read_text(errors="replace").splitlines()[-40:]))
    return "\n".join(tails) or f"(no Ray logs under {logs})"


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_the_in_process_ray_cases_pass_in_a_driver_of_their_own(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    proc, suite = _run_cases(tmp_path / "first.xml")
    runs = [proc]
    if suite is None:
        # the child died before pytest could report (a Ray core failure ends its driver): once more,
        # so one crash of Ray's own processes on a loaded machine is told from a reproducible one
        proc, suite = _run_cases(tmp_path / "second.xml")
        runs.append(proc)
    told = "\n".join(f"--- child pytest, exit {p.returncode} ---\n{p.stdout[-6000:]}\n{p.stderr[-6000:]}" for p in runs)
    assert suite is not None, f"the Ray driver process died without a report, twice:\n{told}\n{ray_logs()}"
    assert proc.returncode == 0, told
    # the report counts every collected case (a collection error counts as an error); 8 exist today
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 8 and counts == {**counts, "failures": 0, "errors": 0, "skipped": 0}, (counts, told)
