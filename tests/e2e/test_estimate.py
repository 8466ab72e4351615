"""Costs known before they are paid: the estimate, ``--dry-run``, the heartbeat and API progress.

Nothing here asserts a timing: the machine's speed swings 3x. The one comparison of an estimate
with a measured run allows a factor of 3 either way and is marked slow.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

SMALL = ("--method", "random", "--num-eval", "1", "--epochs", "3", "--set", "real.epochs=1")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DDR_CACHE_DIR": str(tmp_path / "cache"), **extra}


def _jobs_in_cache(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "jobs").glob("*/*/result.json"))


def test_dry_run_trains_nothing_and_prints_the_plan(ddr_cli, tmp_path: Path) -> None:
    proc = ddr_cli("run", *SMALL, "--dry-run", "--out", str(tmp_path / "runs"), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "plan: random · digits · IPC 1 · seed 0" in proc.stdout
    for role in ("real", "syn_hard", "rdm_any"):
        assert any(line.startswith(role) for line in proc.stdout.splitlines()), proc.stdout
    assert "about 2 student jobs and the real-data reference ≈" in proc.stdout
    assert "dry run: nothing was distilled, trained or written" in proc.stdout
    assert not (tmp_path / "runs").exists()
    assert _jobs_in_cache(tmp_path) == []
    assert not list((tmp_path / "cache").glob("distilled/*/*/meta.json"))


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_dry_run_json_and_eval_dry_run(ddr_cli, tmp_path: Path) -> None:
    proc = ddr_cli("run", *SMALL, "--dry-run", "--json", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["dry_run"] is True
    run = data["runs"][0]
    assert run["student_jobs"] == 2 and run["reused"] == 0
    assert {r["role"]: r["jobs"] for r in run["roles"]} == {"real": 1, "syn_hard": 1, "rdm_any": 1}
    assert {r["role"]: r["images"] for r in run["roles"]}["syn_hard"] == 10  # IPC 1 x 10 classes
    assert run["jobs_seconds"] > 0

    saved = tmp_path / "set"
    made = ddr_cli("run", *SMALL, "--save-distilled", str(saved), "-q", "--out", str(tmp_path / "runs"),
                   env=_env(tmp_path))
    assert made.returncode == 0, made.stderr
    records = sorted((tmp_path / "runs").iterdir())
    proc = ddr_cli("eval", str(saved), "--num-eval", "2", "--epochs", "3", "--set", "real.epochs=1", "--dry-run",
                   "--out", str(tmp_path / "eval-runs"), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "plan: eval" in proc.stdout and "dry run: nothing was trained or written" in proc.stdout
    assert not (tmp_path / "eval-runs").exists()
    assert sorted((tmp_path / "runs").iterdir()) == records


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_estimate_counts_cached_jobs_as_reused(ddr_cli, tmp_path: Path) -> None:
    first = ddr_cli("run", *SMALL, "--out", str(tmp_path / "runs"), env=_env(tmp_path))
    assert first.returncode == 0, first.stderr
    # printed before work; a first run on a fresh cache measures nothing (that would tax every run)
    assert ("ddr: about 2 student jobs and the real-data reference not yet timed on this machine (`--dry-run` "
            "measures them) (0 reused from the cache)") in first.stderr
    again = ddr_cli("run", *SMALL, "--no-job-cache", "--out", str(tmp_path / "runs"), env=_env(tmp_path))
    assert "ddr: about 2 student jobs and the real-data reference ≈" in again.stderr  # now from recorded times
    stored = _jobs_in_cache(tmp_path)
    assert len(stored) == 3
    proc = ddr_cli("run", *SMALL, "--dry-run", "--json", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)["runs"][0]
    assert run["reused"] == 2 and run["student_jobs"] == 2
    assert all(r["cached"] == r["jobs"] for r in run["roles"])
    assert run["jobs_seconds"] == 0 and run["distill"] == "cached"
    assert "(2 reused from the cache); distillation cached" in run["line"]
    assert _jobs_in_cache(tmp_path) == stored
    quiet = ddr_cli("run", *SMALL, "-q", "--out", str(tmp_path / "runs"), env=_env(tmp_path))
    assert quiet.returncode == 0 and "about 2 student jobs" not in quiet.stderr  # -q hides it


def test_heartbeat_lines_on_a_pipe(ddr_cli, tmp_path: Path) -> None:
    proc = ddr_cli("run", *SMALL, "--out", str(tmp_path / "runs"), env=_env(tmp_path, DDR_HEARTBEAT_SECONDS="1"))
    assert proc.returncode == 0, proc.stderr
    beats = [line for line in proc.stderr.splitlines() if line.startswith("ddr: … ")]
    assert beats, proc.stderr
    assert all("elapsed" in line for line in beats)


def test_bad_heartbeat_interval_is_a_clear_error(ddr_cli, tmp_path: Path) -> None:
    proc = ddr_cli("run", *SMALL, "--dry-run", env=_env(tmp_path, DDR_HEARTBEAT_SECONDS="soon"))
    assert proc.returncode != 0
    assert "DDR_HEARTBEAT_SECONDS must be a positive number" in proc.stderr


def test_api_progress_fires_for_each_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    import torch

    import ddr
    from ddr.method.distilled import DistilledSet

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    generator = torch.Generator().manual_seed(0)
    distilled = DistilledSet(images=torch.randn(10, 1, 16, 16, generator=generator), labels=torch.arange(10),
                             pixel_space="normalized")
    events: list[dict[str, Any]] = []
    caplog.set_level(logging.INFO, logger="ddr.progress")
    result = ddr.evaluate(distilled, dataset="digits", ipc=1, num_eval=2, epochs=2,
                          overrides={"real.epochs": 1}, progress=events.append)
    done = [e for e in events if e["event"] == "job_done"]
    assert len(done) == 1 + len(result.students)  # the reference and every student
    assert {(e["role"], e["index"]) for e in done} >= {("real", 0), ("syn_hard", 0), ("syn_hard", 1),
                                                       ("rdm_any", 0), ("rdm_any", 1)}
    assert [e["done"] for e in done if e["stage"] == "students"] == list(range(1, len(result.students) + 1))
    logged = [r for r in caplog.records if r.name == "ddr.progress" and "done" in r.getMessage()]
    assert len(logged) == len(done)

    events.clear()
    ddr.evaluate(distilled, dataset="digits", ipc=1, num_eval=2, epochs=2, overrides={"real.epochs": 1},
                 progress=events.append)  # now every job comes from the job cache, and is still reported
    again = [e for e in events if e["event"] == "job_done"]
    assert len(again) == len(done) and all(e["cached"] for e in again)


@pytest.mark.slow
def test_estimate_within_a_factor_of_three_of_the_run(ddr_cli, tmp_path: Path) -> None:
    """The estimate of a small digits run against the measured wall time of the same run."""
    args = ("run", "--method", "dm", "--num-eval", "1", "--epochs", "3", "--set", "real.epochs=1")
    dry = ddr_cli(*args, "--dry-run", "--json", env=_env(tmp_path))
    assert dry.returncode == 0, dry.stderr
    run = json.loads(dry.stdout)["runs"][0]
    assert run["distill_seconds"] is not None, run["distill"]
    estimate = run["jobs_seconds"] + run["distill_seconds"]
    start = time.perf_counter()
    proc = ddr_cli(*args, "--json", "--out", str(tmp_path / "runs"), env=_env(tmp_path))
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout)
    work = float(measured["eval_seconds"]) + float(measured["distill_seconds"])
    print(f"estimate {estimate:.1f} s, run wall {wall:.1f} s (distill + eval {work:.1f} s)")
    assert wall / 3 <= estimate <= wall * 3
