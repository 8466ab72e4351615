"""benchmarks/gpu_acceptance.sh in CPU mode, end to end: the same path as on a GPU, with the GPU tests
skipping, a tiny throughput grid, the DD-Ranking step skipped with its reason (no DD-Ranking
environment is given) and the smallest digits suite. It runs against this interpreter (``--python``:
no new environment). About 1.5 min on 2 idle cores; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_cpu_mode_writes_a_report_where_every_step_is_ok_or_skipped_with_its_reason(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = ["bash", str(ROOT / "benchmarks" / "gpu_acceptance.sh"), "--device", "cpu", "--budget", "420",
               "--python", sys.executable, "--out", str(out), "--work", str(tmp_path / "work"),
               "--ddranking-venv", str(tmp_path / "no-ddranking-here")]
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((out / "report.json").read_text())
    assert report["report_version"] == 1 and report["mode"] == "cpu" and report["device"] == "cpu"
    assert report["budget_s"] == 420 and report["exit_status"] == 0 and report["finished"]
    assert report["setup"]["status"] == "ok" and report["setup"]["python"] == sys.executable
    assert report["environment"]["cuda_available"] is False and report["environment"]["torch"]
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["pytest_gpu", "throughput", "ddranking", "suite"]
    for step in steps.values():
        assert step["status"] in ("ok", "skipped"), step
        assert step["status"] == "ok" or step["reason"], step  # a skip says why
        assert step["title"] and "budget_s" in step and "results" in step
    assert sum(report["summary"].values()) == 4 and report["summary"]["failed"] == report["summary"]["timeout"] == 0

    tests = steps["pytest_gpu"]["results"]
    assert steps["pytest_gpu"]["status"] == "ok" and tests["counts"]["skipped"] >= 1
    assert tests["counts"]["passed"] == tests["counts"]["failed"] == tests["counts"]["errors"] == 0  # no CUDA here
    assert all("needs a CUDA device" in t["message"] for t in tests["tests"])

    throughput = steps["throughput"]["results"]
    assert steps["throughput"]["status"] == "ok" and throughput["complete"]
    rows = throughput["rows"]
    assert len(rows) == throughput["expected_rows"] == 8
    assert {(r["executor"], r["precision"]) for r in rows} == {(e, p) for e in ("local", "batched") for p in ("fp32", "bf16")}
    assert all(r["students_epochs_per_s"] > 0 and r["flops_per_student_step"] > 0 for r in rows)
    assert all(r["fraction_of_peak"] is None for r in rows)  # a CPU has no BF16 dense peak in the table
    assert throughput["machine"]["flops_per_image_fwd_bwd"] > 0 and throughput["machine"]["bf16_dense_peak_flops"] is None

    assert steps["ddranking"]["status"] == "skipped" and "ddranking 0.2.0 is not importable" in steps["ddranking"]["reason"]

    suite = steps["suite"]["results"]
    assert steps["suite"]["status"] == "ok" and suite["expected"] == len(suite["records"]) == 1
    (record,) = suite["records"]
    assert record["device"] == "cpu" and record["method"] == "random" and 0 <= record["ddrs"]["mean"] <= 1

    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# ddr GPU acceptance (cpu mode, --device cpu)")
    for name in steps:
        assert f"## {name}:" in markdown
    assert "| batched |" in markdown or "batched |" in markdown
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "pytest_gpu.log", "throughput.log",
                                               "suite.log", "setup.log"}
