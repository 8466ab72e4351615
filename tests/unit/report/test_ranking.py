"""What a board pools and what it can claim (ddr.report.leaderboard + ddr.report.ranking): recipes
never pooled, distillations counted by hash, verdicts, paired/Welch comparisons, tie groups,
power and w-stability — each checked against scipy/numpy on the same numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from helpers.results import ddrs, make_row
from scipy import optimize, stats

from ddr.errors import DdrError
from ddr.report import statistics as st
from ddr.report.leaderboard import build_leaderboard, metric_name, render
from ddr.report.ranking import describe_power, describe_segments


def spec(**protocol_config: object) -> dict:
    config = {"name": "digits", "version": 1, "num_eval": 2, "train": {"epochs": 300}, "loss": None}
    config.update(protocol_config)
    return {"arch": "convnet", "protocol": "digits", "protocol_version": "1", "label_strategy": "hard",
            "loss": None, "protocol_config": config, "protocol_overrides": {}}


def row(method: str, hlr: list[float], ior: list[float], *, seed: int = 0, sha: str | None = None,
        run_spec: dict | None = None, **extra: object) -> dict:
    r = make_row(method, hlr, ior, seed=seed, run_id=f"{method}-{seed}-{sha}-{len(hlr)}", **extra)
    r["distilled_sha256"] = sha or f"{method}-set-{seed}"
    r["run_spec"] = run_spec if run_spec is not None else spec()
    return r


def entries(rows: list[dict], w: float = 0.5) -> dict:
    (board,) = build_leaderboard(rows, w)
    return {e.label: e for e in board.entries}


def test_runs_that_differ_in_recipe_are_never_pooled() -> None:
    long = row("dm", [0.1, 0.1], [0.2, 0.2])
    short_spec = spec(train={"epochs": 40})
    short_spec["protocol_overrides"] = {"train.epochs": 40, "num_eval": 3}
    short = row("dm", [0.2, 0.2, 0.2], [0.1, 0.1, 0.1], seed=1, run_spec=short_spec)
    loss_spec = spec()
    loss_spec["loss"] = "kl"
    lossy = row("dm", [0.15], [0.1], seed=2, run_spec=loss_spec)
    got = entries([long, short, lossy])
    assert set(got) == {'dm [loss=null, train.epochs=300]', 'dm [loss=null, train.epochs=40]',
                        'dm [loss="kl", train.epochs=300]'}
    short_entry = got['dm [loss=null, train.epochs=40]']
    assert short_entry.n_students == 3 and short_entry.protocol == "digits v1 + train.epochs=40"
    assert short_entry.budget_note == "train.epochs 40 < 300"  # the shipped digits protocol trains 300
    (board,) = build_leaderboard([long, short, lossy])
    assert board.mixed and "WARNING: mixed protocols" in board.note and "reduced budget" in board.note
    # the number of students, the seed and the device never split an entry
    more = row("dm", [0.12, 0.1, 0.14], [0.2, 0.2, 0.2], seed=5, run_spec=spec(num_eval=3))
    more["run_spec"]["device"] = "cuda:0"
    assert list(entries([long, more])) == ["dm"]


def test_a_distillation_is_counted_by_its_distilled_set() -> None:
    first = row("dm", [0.1, 0.12], [0.2, 0.22], sha="abc")
    rerun = copy.deepcopy(first)  # the same set recorded again (e.g. a suite and a single run)
    rerun["run_id"] = "another-record"
    more_students = row("dm", [0.1, 0.12, 0.3], [0.2, 0.22, 0.25], sha="abc")  # same seed, 3 students
    other_seed = row("dm", [0.4, 0.5], [0.1, 0.1], seed=1, sha="abc")  # same set, evaluated with seed 1
    e = entries([first, rerun, more_students])["dm"]
    assert e.n_distillations == 1 and e.n_students == 3 and len(e.run_ids) == 3
    assert e.hlr.mean == pytest.approx(np.mean([0.1, 0.12, 0.3]), abs=1e-15)
    e = entries([first, other_seed])["dm"]
    assert e.n_distillations == 1 and e.n_students == 4


def test_mixed_protocol_names_are_refused_unless_asked() -> None:
    a = row("A", [0.1, 0.2], [0.2, 0.1])
    b = row("B", [0.1, 0.2], [0.2, 0.1], protocol="hard", protocol_version="2")
    with pytest.raises(DdrError, match=r"mixes protocols .*--mixed"):
        render([a, b], "md")
    md = render([a, b], "md", mixed=True)
    assert "**Mixed protocols**: digits v1 (A); hard v2 (B)" in md


def test_verdicts_test_ior_against_zero_with_scipy() -> None:
    good = row("good", [0.1] * 4, [0.20, 0.22, 0.18, 0.21])
    bad = row("bad", [0.1] * 4, [-0.10, -0.12, -0.09, -0.11])
    noisy = row("noisy", [0.1] * 4, [0.2, -0.2, 0.1, -0.05])
    got = entries([good, bad, noisy])
    for label, text, values in (("good", "beats random", good), ("bad", "worse than random", bad),
                                ("noisy", "no evidence", noisy)):
        verdict = got[label].verdict
        iors = values["metrics"]["ior"]["values"]
        assert verdict.text == text
        assert verdict.test.p_value == pytest.approx(stats.ttest_1samp(iors, 0.0).pvalue, abs=1e-12)
    # several distillations: one value per distillation (its mean IOR)
    seeds = [row("m", [0.1, 0.1], iors, seed=s) for s, iors in enumerate(([0.1, 0.3], [0.05, 0.07], [0.2, 0.0]))]
    verdict = entries(seeds)["m"].verdict
    assert verdict.test.n == 3 and "distillation" in verdict.test.method
    assert verdict.test.p_value == pytest.approx(stats.ttest_1samp([0.2, 0.06, 0.1], 0.0).pvalue, abs=1e-12)
    assert entries([row("one", [0.1], [0.3])])["one"].verdict.text == "untested (n = 1 student)"


def test_students_at_shared_seeds_are_paired_and_others_use_welch() -> None:
    a = row("A", [0.10, 0.20, 0.15, 0.30], [0.30, 0.20, 0.25, 0.10])
    b = row("B", [0.11, 0.22, 0.16, 0.31], [0.29, 0.19, 0.24, 0.10])
    (board,) = build_leaderboard([a, b])
    (c,) = board.analysis.comparisons
    da = [ddrs(h, i, 0.5) for h, i in zip([0.10, 0.20, 0.15, 0.30], [0.30, 0.20, 0.25, 0.10])]
    db = [ddrs(h, i, 0.5) for h, i in zip([0.11, 0.22, 0.16, 0.31], [0.29, 0.19, 0.24, 0.10])]
    assert c.paired and c.test.p_value == pytest.approx(stats.ttest_rel(da, db).pvalue, abs=1e-12)
    assert c.significant and [e.group for e in board.entries] == ["a", "b"]  # Welch would miss it:
    assert stats.ttest_ind(da, db, equal_var=False).pvalue > 0.5
    b_other_seed = row("B", [0.11, 0.22, 0.16, 0.31], [0.29, 0.19, 0.24, 0.10], seed=7)
    (board,) = build_leaderboard([a, b_other_seed])
    (c,) = board.analysis.comparisons
    assert not c.paired and c.test.p_value == pytest.approx(stats.ttest_ind(da, db, equal_var=False).pvalue)
    assert [e.group for e in board.entries] == ["a", "a"] and [e.rank_range for e in board.entries] == [(1, 2)] * 2


def test_distillations_are_the_replicates_when_there_are_several() -> None:
    rows = []
    for s, (ha, hb) in enumerate(((0.10, 0.14), (0.20, 0.25), (0.15, 0.18))):
        rows += [row("A", [ha, ha + 0.01], [0.2, 0.2], seed=s), row("B", [hb, hb + 0.01], [0.2, 0.2], seed=s)]
    rows.append(row("C", [0.3, 0.3], [0.0, 0.0]))  # one distillation: not comparable with A and B
    (board,) = build_leaderboard(rows)
    a, b, c = board.entries
    comp = board.analysis.comparison(0, 1)
    mean_a = [np.mean([ddrs(h, 0.2, 0.5), ddrs(h + 0.01, 0.2, 0.5)]) for h in (0.10, 0.20, 0.15)]
    mean_b = [np.mean([ddrs(h, 0.2, 0.5), ddrs(h + 0.01, 0.2, 0.5)]) for h in (0.14, 0.25, 0.18)]
    assert comp.paired and comp.unit == "distillations" and comp.test.n == 3
    assert comp.test.p_value == pytest.approx(stats.ttest_rel(mean_a, mean_b).pvalue, abs=1e-12)
    not_tested = board.analysis.comparison(0, 2)
    assert not_tested.test is None and "3 distillation(s), C 1" in not_tested.reason and not not_tested.significant
    assert a.ddrs.groups == 3 and "hierarchical bootstrap" in a.ddrs.ci.method


def test_three_way_board_groups_rank_ranges_and_power() -> None:
    top = row("top", [0.0, 0.01, 0.0, 0.01], [0.4, 0.41, 0.42, 0.4])
    mid1 = row("mid1", [0.2, 0.25, 0.22, 0.21], [0.1, 0.12, 0.08, 0.11])
    mid2 = row("mid2", [0.21, 0.24, 0.23, 0.2], [0.1, 0.11, 0.09, 0.1])
    (board,) = build_leaderboard([mid2, top, mid1])
    assert [e.label for e in board.entries][0] == "top"
    assert [e.group for e in board.entries] == ["a", "b", "b"]
    assert [e.rank_range for e in board.entries] == [(1, 1), (2, 3), (2, 3)]
    power = board.analysis.power
    assert {board.entries[power.a].label, board.entries[power.b].label} == {"mid1", "mid2"}
    x, y = board.entries[power.a].values("ddrs"), board.entries[power.b].values("ddrs")
    diffs = np.array(x) - np.array(y)
    assert power.paired and power.sd == pytest.approx(np.std(diffs, ddof=1), abs=1e-15)
    assert power.needed == st.required_n(float(np.mean(diffs)), float(np.std(diffs, ddof=1)), paired=True)
    assert "Closest pair: " in describe_power(board) and "not told apart" in describe_power(board)


def test_w_segments_locate_the_crossing() -> None:
    a = row("A", [0.05, 0.07], [0.05, 0.07])
    b = row("B", [0.30, 0.32], [0.40, 0.42])
    (board,) = build_leaderboard([a, b])
    segments = board.analysis.segments

    def gap(w: float) -> float:
        return (np.mean([ddrs(0.30, 0.40, w), ddrs(0.32, 0.42, w)])
                - np.mean([ddrs(0.05, 0.05, w), ddrs(0.07, 0.07, w)]))

    crossing = optimize.brentq(gap, 0.0, 1.0)
    assert [s.order for s in segments] == [("A", "B"), ("B", "A")]
    assert segments[0].high == pytest.approx(crossing, abs=2e-4) and segments[1].low == segments[0].high
    assert describe_segments(board).startswith("Ranking by mean DDRS over w: w ∈ [0.00, ")
    (one,) = build_leaderboard([a])
    assert describe_segments(one) == "Ranking by mean DDRS is the same for every w ∈ [0, 1]."


def test_lrs_is_ddrs() -> None:
    assert metric_name("LRS") == "ddrs" and metric_name("hlr") == "hlr"
    e = entries([row("A", [0.1, 0.2], [0.2, 0.3])])["A"]
    assert e.estimate("lrs") == e.estimate("ddrs")
    assert "DDRS (LRS)" in render([row("A", [0.1, 0.2], [0.2, 0.3])], "md")


def test_row_order_never_changes_a_number_and_identical_entries_are_named() -> None:
    rows = [row(m, [0.1 + 0.01 * s, 0.12, 0.05 * s], [0.2, 0.1 + 0.02 * s, 0.15], seed=s, sha=f"set{s}")
            for m in ("herding", "kcenter") for s in range(3)]  # two methods that chose the same sets
    rows.append(row("dm", [0.05, 0.06, 0.02], [0.25, 0.2, 0.22], seed=0))
    forward, backward = build_leaderboard(rows), build_leaderboard(rows[::-1])
    for a, b in zip(forward[0].entries, backward[0].entries):
        assert a.label == b.label and a.ddrs == b.ddrs and a.ior == b.ior  # CIs included, bit for bit
    (board,) = forward
    text = describe_power(board)
    assert text.startswith("Identical scores at every student: herding = kcenter.")
    assert [e.rank for e in board.entries if e.label != "dm"] == [e.rank for e in board.entries if e.label != "dm"][:1] * 2


def test_an_order_held_at_a_single_w_is_not_a_range() -> None:
    """Three entries with the same HLR tie exactly at w = 0 (DDRS then depends on HLR only)."""
    rows = [row(m, [0.1, 0.12], iors) for m, iors in (("a", [0.0, 0.01]), ("b", [0.05, 0.06]), ("c", [0.02, 0.0]))]
    (board,) = build_leaderboard(rows)
    assert [(s.low, s.order) for s in board.analysis.segments] == [(0.0, ("b", "c", "a"))]
    assert describe_segments(board) == "Ranking by mean DDRS is the same for every w ∈ [0, 1]."


def test_a_tiny_p_value_reads_p_below() -> None:
    got = entries([row("good", [0.1] * 5, [0.30, 0.31, 0.30, 0.31, 0.30])])["good"].verdict.short
    assert got == "beats random (p < 0.001)"
