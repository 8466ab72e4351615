"""``ddr run --distill-seeds N``: N distillations with seeds S..S+N-1, each evaluated under its own
seed (so another method run the same way shares student seeds and random subsets), then a summary
over distillations × students whose verdict is scipy's t test on the per-distillation IOR means."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ddr.cli.evaluation import distill_seeds
from ddr.store.results import load_record

FAST = ("--num-eval", "2", "--epochs", "3", "--set", "real.epochs=1", "--no-progress")


def test_seeds_are_consecutive_so_runs_line_up_with_a_suites() -> None:
    assert distill_seeds(0, 3) == [0, 1, 2] and distill_seeds(7, 1) == [7]


def test_distill_seeds_end_to_end(ddr_cli, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = ddr_cli("run", "--method", "random", "--distill-seeds", "3", "--seed", "4", *FAST, "--out", str(out),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["seed"] for r in report["runs"]] == [4, 5, 6]
    (summary,) = report["summary"]
    assert (summary["method"], summary["distillations"], summary["students"]) == ("random", 3, 6)
    records = sorted(out.iterdir())
    assert len(records) == 3
    rows = [load_record(r) for r in records]
    assert len({r["distilled_sha256"] for r in rows}) == 3  # three different subsets
    iors = [np.mean(r["metrics"]["ior"]["values"]) for r in rows]
    assert summary["verdict_p"] == pytest.approx(stats.ttest_1samp(iors, 0.0).pvalue, abs=1e-12)
    ddrs = [v for r in rows for v in r["metrics"]["ddrs"]["values"]]
    assert summary["ddrs"]["mean"] == pytest.approx(np.mean(ddrs), abs=1e-12)
    assert "hierarchical bootstrap over 3 distillations" in summary["ddrs"]["ci_method"]
    # the same seeds again: every distillation and student comes from the caches, same numbers
    again = ddr_cli("run", "--method", "random", "--distill-seeds", "3", "--seed", "4", *FAST, "--out",
                    str(tmp_path / "again"), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["summary"][0]["ddrs"] == summary["ddrs"]


@pytest.mark.parametrize(("extra", "message"), [
    (("--distill-seeds", "0"), "--distill-seeds must be at least 1"),
    (("--distill-seeds", "2", "--eval-arch", "mlp"), "cannot be combined with --eval-arch"),
])
def test_bad_distill_seeds(ddr_cli, extra: tuple[str, ...], message: str) -> None:
    proc = ddr_cli("run", "--method", "random", *extra, *FAST)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
