"""benchmarks/gpu_acceptance.py's own logic, without training anything: the budget's shares, steps
skipped when it is spent, the report (JSON statuses, Markdown tables), bad input (exit 2), the
BF16 peak table and the parsers of what the steps leave behind. No timing is asserted."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def ga() -> ModuleType:
    return load_benchmark("gpu_acceptance")


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the budget -------------------------------------------------------------------------------------------

def test_each_step_gets_its_share_of_what_is_left_and_unused_time_flows_on(ga: ModuleType) -> None:
    clock = Clock()
    budget = ga.Budget(100.0, clock=clock)
    budget.start()
    steps = list(ga.STEPS)
    assert sum(ga.SHARES.values()) == pytest.approx(1.0)
    first = budget.allot("pytest_gpu", steps)
    assert first == pytest.approx((100 - ga.RESERVE_SECONDS) * ga.SHARES["pytest_gpu"])
    clock.now += 10.0  # the first step used 10 s of its share
    second = budget.allot("throughput", steps[1:])
    rest = sum(ga.SHARES[s] for s in steps[1:])
    assert second == pytest.approx((90 - ga.RESERVE_SECONDS) * ga.SHARES["throughput"] / rest)
    assert budget.allot("suite", ["suite"]) == pytest.approx(90 - ga.RESERVE_SECONDS)  # the last one gets all
    clock.now += 200.0
    assert budget.left() < 0 and budget.allot("suite", ["suite"]) == 0.0


def fake_runner(clock: Clock, spend: float, status: str = "ok", reason: str = "",
                overrun: float = 0.0) -> Callable[[Any, Any], None]:
    """A step that takes ``spend`` seconds, at most its budget plus ``overrun`` (a killed process's grace)."""
    def run(ctx: Any, step: Any) -> None:
        seconds = min(spend, step.budget_s + overrun)
        clock.now += seconds
        step.status, step.reason, step.seconds = status, reason, seconds

    return run


def test_a_step_whose_share_is_gone_is_skipped_with_the_reason_and_a_crash_is_recorded(ga: ModuleType) -> None:
    clock = Clock()
    budget = ga.Budget(60.0, clock=clock)
    saves: list[list[str]] = []
    reports = ga.new_reports()

    def crash(ctx: Any, step: Any) -> None:
        raise ValueError("a bug in a step")

    runners = {"pytest_gpu": fake_runner(clock, 1e9, "timeout", "killed at its budget"),  # takes all of its share
               "throughput": crash, "ddranking": fake_runner(clock, 1e9, overrun=20.0), "suite": fake_runner(clock, 1.0)}
    ga.run_steps(object(), budget, list(ga.STEPS), lambda: saves.append([s.status for s in reports]),
                 reports=reports, runners=runners)
    by_name = {s.name: s for s in reports}
    assert by_name["pytest_gpu"].status == "timeout"
    assert by_name["throughput"].status == "failed" and "ValueError: a bug in a step" in by_name["throughput"].reason
    assert by_name["ddranking"].status == "ok"  # it overran its share: nothing is left for the suite
    assert by_name["suite"].status == "skipped" and by_name["suite"].reason.startswith("budget spent")
    assert all(s.budget_s is not None for s in reports)
    assert len(saves) == 3  # the report is rewritten after every step that ran
    assert ga.summary_counts(reports) == {"ok": 1, "skipped": 1, "failed": 1, "timeout": 1}
    assert ga.exit_status(reports) == 1


def test_unselected_steps_and_a_failed_setup_skip_with_reasons(ga: ModuleType) -> None:
    clock = Clock()
    ran: list[str] = []
    runners = {name: (lambda ctx, step, name=name: (ran.append(name), setattr(step, "status", "ok")))
               for name in ga.STEPS}
    reports = ga.run_steps(object(), ga.Budget(100.0, clock=clock), ["throughput", "suite"], lambda: None,
                           runners=runners)
    assert ran == ["throughput", "suite"]
    assert [s.status for s in reports] == ["skipped", "ok", "skipped", "ok"]
    assert reports[0].reason == reports[2].reason == "not selected (--steps)"
    assert ga.exit_status(reports) == 0 and ga.exit_status(reports, setup_ok=False) == 1
    skipped = ga.run_steps(None, ga.Budget(100.0, clock=clock), list(ga.STEPS), lambda: None, runners=runners,
                           why_not="setup failed: no torch")
    assert {s.status for s in skipped} == {"skipped"} and {s.reason for s in skipped} == {"setup failed: no torch"}


# -- the report -------------------------------------------------------------------------------------------

def sample_report(ga: ModuleType) -> dict[str, Any]:
    steps = ga.new_reports()
    steps[0].status, steps[0].reason = "failed", "pytest exited 1: 1 failed"
    steps[0].output_tail = "E   AssertionError: numbers differ"
    steps[0].results = {"counts": {"passed": 7, "failed": 1, "errors": 0, "skipped": 0},
                        "tests": [{"name": "tests.gpu.test_cuda::test_x", "outcome": "failed", "message": "a | b"}]}
    row = {"executor": "batched", "ipc": 10, "students": 8, "measured_students": 8, "epochs": 5, "seconds": 1.0,
           "students_epochs_per_s": 40.0, "flops_per_s": 98.9e12, "fraction_of_peak": 0.1, "peak_host_bytes": 2**30,
           "peak_device_bytes": 2**31, "precision": "bf16", "images_per_step": 100, "flops_per_student_step": 3e10}
    local = {**row, "executor": "local", "measured_students": 4, "students_epochs_per_s": 10.0}
    steps[1].status = "ok"
    steps[1].results = {"machine": {"device_name": "NVIDIA H100 80GB HBM3", "flops_per_image_fwd_bwd": 3e8,
                                    "bf16_dense_peak_flops": 989e12, "peak_source": "datasheet"},
                        "rows": [local, row]}
    summary = {"mean": 0.5, "std": 0.01, "n": 3, "values": [0.49, 0.5, 0.51]}
    scores = {k: summary for k in ("acc_real_hard", "acc_syn_hard", "acc_rdm_any", "hlr", "ior", "ddrs")}
    steps[2].status = "ok"
    steps[2].results = {"set": "first", "ipc": 10, "epochs": 50, "num_eval": 3, "device": "cuda", "wall_ratio": 3.5,
                        "tools": {"DD-Ranking 0.2.0": {"wall": 70.0, "cpu": 60.0, "scores": scores},
                                  "ddr ddranking-hard": {"wall": 20.0, "cpu": 15.0, "scores": scores}}}
    steps[3].reason = "budget spent"
    return {"mode": "gpu", "device": "cuda", "started": "t0", "finished": "t1", "budget_s": 480.0, "steps_wall_s": 100.0,
            "setup": {"status": "ok", "seconds": 3.0, "how": "given interpreter"}, "command": "x",
            "environment": {"torch": "2.14.1", "device_name": "NVIDIA H100 80GB HBM3", "packages": {"ray": None}},
            "steps": [ga.asdict(s) for s in steps]}


def test_the_markdown_has_the_step_table_and_each_steps_results(ga: ModuleType) -> None:
    text = ga.render_markdown(sample_report(ga))
    assert "| pytest_gpu | failed |" in text and "| suite | skipped |" in text and "budget spent" in text
    assert "7 passed, 1 failed, 0 errors, 0 skipped" in text and "a \\| b" in text
    assert "AssertionError: numbers differ" in text  # a failed step shows its output's tail
    assert "| 10 | 8 | bf16 | batched | 5 | 40.00 | 4.00x | 30.00 | 98.900 | 10.00% | 2048 | 1024 |" in text
    assert "BF16 dense peak 989 TFLOPS" in text
    assert "Wall-time ratio DD-Ranking / ddr: 3.50x" in text and "| DD-Ranking 0.2.0 | 70.0 | 60.0 | 0.500 ± 0.010" in text
    assert "ray absent" in text


def test_the_report_files_are_written_whole(ga: ModuleType, tmp_path: Path) -> None:
    report = sample_report(ga)
    ga.write_report(tmp_path, report)
    assert json.loads((tmp_path / "report.json").read_text())["steps"][0]["status"] == "failed"
    assert (tmp_path / "report.md").read_text().startswith("# ddr GPU acceptance (gpu mode, --device cuda)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


# -- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "said"), [
    (["--device", "tpu"], "--device must be cpu, cuda or cuda:N"),
    (["--device", "cuda:x"], "--device must be cpu, cuda or cuda:N"),
    (["--budget", "0"], "--budget must be a positive number of seconds"),
    (["--budget", "-3"], "--budget must be a positive number of seconds"),
    (["--budget", "nan"], "--budget must be a positive number of seconds"),
    (["--steps", "throughput,gpu"], "--steps takes a comma-separated list"),
])
def test_bad_arguments_exit_2_with_a_message(ga: ModuleType, argv: list[str], said: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ga.main(argv)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_an_unwritable_out_folder_exits_2_with_a_message(ga: ModuleType, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert ga.main(["--device", "cpu", "--out", str(blocker / "report")]) == 2
    assert "--out must be a folder it can write" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert ga.main(["--device", "cpu", "--out", str(locked)]) == 2


# -- the peak table and the parsers ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "bf16"), [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H200", 989e12),
    ("NVIDIA H100 NVL", None), ("NVIDIA H200 NVL", None), ("NVIDIA GH200 480GB", None), ("NVIDIA A100-SXM4-80GB", None),
])
def test_the_bf16_dense_peak_is_looked_up_by_device_name(name: str, bf16: float | None) -> None:
    known = load_benchmark("engine_throughput").gpu_peak(name)
    assert (known[0] if known else None) == bf16
    if known:
        assert "datasheet" in known[2] and "with sparsity" in known[2]


def test_it_installs_the_ddranking_the_side_by_side_script_names(ga: ModuleType) -> None:
    assert ga.DDRANKING == load_benchmark("speed_vs_ddranking").DDRANKING


def test_the_throughput_grid(ga: ModuleType, tmp_path: Path) -> None:
    cuda = ga.throughput_config("cuda", tmp_path / "x.jsonl")
    assert {int(k): v[0] for k, v in cuda["grid"].items()} == {1: [1, 8, 32, 128], 10: [1, 8, 32, 128], 50: [1, 8, 32, 128]}
    assert cuda["precisions"] == ["fp32", "bf16"] and ga.expected_rows(cuda) == 3 * 4 * 2 * 2
    assert ga.expected_rows(ga.throughput_config("cpu", tmp_path / "x.jsonl")) == 1 * 2 * 2 * 2


def test_the_worker_lines_are_read_and_a_torn_last_line_ignored(ga: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"kind": "machine", "device": "cuda"}) + "\n" + json.dumps({"kind": "row", "ipc": 1})
                    + "\n" + '{"kind": "row", "ip')
    machine, rows = ga.read_jsonl(path)
    assert machine == {"device": "cuda"} and rows == [{"ipc": 1}]
    assert ga.read_jsonl(tmp_path / "absent.jsonl") == ({}, [])


def test_pytest_outcomes_from_junit_or_from_verbose_lines(ga: ModuleType, tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite><testcase classname="tests.gpu.test_cuda" name="test_a"/>'
                   '<testcase classname="tests.gpu.test_cuda" name="test_b"><skipped message="needs a CUDA device"/>'
                   '</testcase><testcase classname="t" name="test_c"><failure message="boom">tb</failure></testcase>'
                   '</testsuite></testsuites>')
    parsed = ga.junit_results(xml)
    assert parsed["counts"] == {"passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    assert parsed["tests"][1] == {"name": "tests.gpu.test_cuda::test_b", "outcome": "skipped",
                                  "message": "needs a CUDA device"}
    assert ga.junit_results(tmp_path / "absent.xml") is None
    text = ("tests/gpu/test_cuda.py::test_a PASSED [ 10%]\ntests/gpu/test_cuda.py::test_b[local] FAILED [ 20%]\n"
            "noise\n")
    assert ga.verbose_results(text)["counts"] == {"passed": 1, "failed": 1, "errors": 0, "skipped": 0}


def test_a_command_past_its_timeout_is_killed_with_its_children(ga: ModuleType, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    done = ga.run_logged(["sh", "-c", f"sleep 300 & echo $! > {pid_file}; echo started; wait"], timeout=2.0,
                         log=tmp_path / "log", cwd=tmp_path)
    assert done.timed_out and done.rc is None and "started" in done.tail
    child = int(pid_file.read_text())
    for _ in range(50):  # the grandchild got SIGTERM with its group; wait until it is gone or a zombie
        stat = Path(f"/proc/{child}/stat")
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the child {child} of the timed-out command still runs")
    ok = ga.run_logged(["sh", "-c", "echo fine"], timeout=30, log=tmp_path / "log2", cwd=tmp_path)
    assert ok.rc == 0 and not ok.timed_out and "fine" in ok.tail
