"""Improvement over the best coreset (IOC): the best selection method of a cell, the difference and
its test checked against scipy, the comparable-candidates rule, the family filter, the CLI."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pytest
from helpers.results import make_row
from scipy import stats

from ddr.errors import ConfigError, DdrError
from ddr.plugin.manager import PluginSystem
from ddr.report.coresets import coreset_gaps, ioc
from ddr.report.leaderboard import build_leaderboard, render

# per-student IOR values (acc_syn_any = 0.5 + IOR in make_metrics); HLR is irrelevant to IOC
DM = [0.30, 0.34, 0.31, 0.36]
HERDING = [0.28, 0.29, 0.33, 0.30]
KCENTER = [0.20, 0.22, 0.21, 0.19]
RANDOM = [0.00, 0.01, -0.02, 0.03]
HLR = [0.1, 0.1, 0.1, 0.1]


def rows(**extra: Any) -> list[dict[str, Any]]:
    return [make_row(m, HLR, ior, **extra) for m, ior in
            (("dm", DM), ("herding", HERDING), ("kcenter", KCENTER), ("random", RANDOM))]


def test_ioc_is_the_difference_to_the_best_selector_with_scipys_paired_test() -> None:
    (board,) = build_leaderboard(rows())
    gaps = ioc(board)
    assert list(gaps) == ["dm"]  # only distillation entries get an IOC
    gap = gaps["dm"]
    assert gap.best == "herding" and gap.candidates == 3  # random and kcenter are selectors too, but worse
    dm, herding = np.array(DM) + 0.5, np.array(HERDING) + 0.5
    assert gap.mean == pytest.approx(dm.mean() - herding.mean())
    assert gap.entry_acc == pytest.approx(dm.mean()) and gap.best_acc == pytest.approx(herding.mean())
    # the students share (seed, index) keys, so the test is paired
    expected = stats.ttest_rel(dm, herding)
    assert gap.test is not None and "paired" in gap.test.method
    assert gap.test.p_value == pytest.approx(expected.pvalue)
    diffs = dm - herding
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert (gap.test.ci.low, gap.test.ci.high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))


def test_unpaired_entries_are_compared_with_welch() -> None:
    data = [make_row("dm", HLR, DM, seed=1, run_id="dm-1"), make_row("herding", HLR, HERDING, seed=2, run_id="h-2")]
    (board,) = build_leaderboard(data)
    gap = ioc(board)["dm"]
    expected = stats.ttest_ind(np.array(DM), np.array(HERDING), equal_var=False)
    assert gap.test is not None and "Welch" in gap.test.method
    assert gap.test.p_value == pytest.approx(expected.pvalue)


def test_only_selectors_of_the_same_protocol_and_labels_are_candidates() -> None:
    data = rows()
    for r in data:
        if r["method"] == "herding":
            r["protocol"] = "hard"  # herding under another protocol: not comparable
    (board,) = build_leaderboard(data, analyse=True)
    # the board is mixed now, but IOC still picks among comparable selectors only
    assert ioc(board)["dm"].best == "kcenter"
    soft = [make_row("dm", HLR, DM, run_spec={"label_strategy": "teacher"}), make_row("herding", HLR, HERDING)]
    (board,) = build_leaderboard(soft)
    gap = ioc(board)["dm"]
    assert gap.best is None and gap.mean is None and "same protocol and labels" in gap.reason


def test_no_ioc_without_both_families() -> None:
    assert coreset_gaps(build_leaderboard([make_row("dm", HLR, DM)])[0].entries) == {}
    assert coreset_gaps(build_leaderboard([make_row("herding", HLR, HERDING)])[0].entries) == {}


def test_family_filter_ranks_each_family_alone_and_keeps_ioc() -> None:
    (distillers,) = build_leaderboard(rows(), family="distillation")
    assert [e.label for e in distillers.entries] == ["dm"] and distillers.entries[0].rank == 1
    assert ioc(distillers)["dm"].best == "herding"  # computed over the whole cell
    (selectors,) = build_leaderboard(rows(), family="selection")
    assert [e.label for e in selectors.entries] == ["herding", "kcenter", "random"]
    with pytest.raises(DdrError, match="unknown method family 'coreset'"):
        build_leaderboard(rows(), family="coreset")
    text = render(rows(), "md", family="distillation")
    assert "### Against the best coreset (IOC)" in text and "| dm | herding |" in text
    page = render(rows(), "html")
    gap = float(np.mean(DM) - np.mean(HERDING))
    assert '<table class="ioc-table">' in page and '<tr data-label="dm"><td>dm</td><td>herding</td>' in page
    assert f'<td class="ioc" data-v="{ioc(build_leaderboard(rows())[0])["dm"].mean!r}">{gap:+.4f} [' in page
    table = list(csv.DictReader(io.StringIO(render(rows(), "csv"))))
    by_method = {r["method"]: r for r in table}
    assert by_method["dm"]["family"] == "distillation" and by_method["dm"]["best_coreset"] == "herding"
    assert float(by_method["dm"]["ioc_mean"]) == pytest.approx(np.mean(DM) - np.mean(HERDING))
    assert by_method["herding"]["family"] == "selection" and by_method["herding"]["ioc_mean"] == ""


def test_ioc_is_a_board_metric_that_no_run_computes() -> None:
    from ddr.runs.evaluate import choose_metrics

    system = PluginSystem()
    spec = system.metrics().get("ioc")
    assert spec.needs == "board" and spec.unit == "difference" and spec.higher_is_better
    with pytest.raises(ConfigError, match="compares the runs of one leaderboard cell"):
        choose_metrics(system, ["ioc"])
    families = {s.name: s.family for s in system.methods().list()}
    selectors = ("random", "herding", "kcenter", "uncertainty", "forgetting", "grand", "el2n", "ccs", "moderate",
                 "facility-location", "graph-cut", "craig", "gradmatch")
    assert {families[name] for name in selectors} == {"selection"}
    assert {name for name, family in families.items() if family == "distillation"} >= {
        "dc", "dsa", "dm", "mtt", "datm", "rded", "sre2l", "d4m"}


def test_cli_leaderboard_family(tmp_path, ddr_cli) -> None:
    from ddr.store.results import ResultsDB

    with ResultsDB(tmp_path / "r.sqlite") as db:
        for r in rows():
            db.add_row(r)
    proc = ddr_cli("leaderboard", "--db", str(tmp_path / "r.sqlite"), "--family", "selection")
    assert proc.returncode == 0, proc.stderr
    assert "| herding |" in proc.stdout and "| dm |" not in proc.stdout.split("### Against")[0]
    bad = ddr_cli("leaderboard", "--db", str(tmp_path / "r.sqlite"), "--family", "coresets")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
