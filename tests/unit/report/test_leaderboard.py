"""Leaderboards (ddr.report.leaderboard): ranking, DDRS for any w, pooling, Markdown/CSV/HTML."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.results import FIXTURES, ddrs, make_row, real_runs

from ddr.errors import ArtifactError, DdrError
from ddr.protocol import metrics as ddr_metrics
from ddr.report.leaderboard import build_leaderboard, render
from ddr.report.leaderboard_html import to_html
from ddr.report.leaderboard_text import CSV_HEADERS, to_csv, to_markdown
from ddr.store.results import load_record

REPO = Path(__file__).resolve().parents[3]


def real_rows() -> list[dict]:
    return [load_record(run) for run in real_runs()]


def flip_rows() -> list[dict]:
    """A: small HLR and small IOR; B: large both. B wins at w=0.5 and 0.9, A at w=0.2."""
    return [make_row("A", [0.05, 0.07], [0.05, 0.07]), make_row("B", [0.30, 0.32], [0.40, 0.42])]


def board_of(boards, dataset="digits", ipc=1):
    return next(b for b in boards if (b.dataset, b.ipc) == (dataset, ipc))


@pytest.mark.parametrize("w", [0.0, 0.2, 0.5, 0.75, 1.0])
def test_the_board_recomputes_ddrs_with_the_protocol_formula(w: float) -> None:
    """The board has no DDRS formula of its own: per student it calls ddr.protocol.metrics.ddrs
    (the metric spec's target), which equals the closed form on known values."""
    hlrs, iors = [-1.0, -0.3, 0.0, 0.0626, 0.5, 1.0], [-1.0, -0.2, 0.0, 0.2179, 1.0, 0.3]
    entry = board_of(build_leaderboard([make_row("A", hlrs, iors)], w=w)).entries[0]
    assert entry.values("ddrs", w) == [ddr_metrics.ddrs(h, i, w) for h, i in zip(hlrs, iors)]
    assert entry.values("ddrs", w) == pytest.approx([ddrs(h, i, w) for h, i in zip(hlrs, iors)], abs=1e-15)
    assert ddr_metrics.ddrs(0.0, 0.0, w) == pytest.approx((1 - math.exp(-1)) / (math.e - math.exp(-1)), abs=1e-15)
    assert ddr_metrics.ddrs(-1.0, 1.0, w) == 1.0 and ddr_metrics.ddrs(1.0, -1.0, w) == 0.0


def test_real_records_default_w_reproduces_the_recorded_ddrs() -> None:
    rows = real_rows()
    boards = build_leaderboard(rows)
    assert [(b.dataset, b.ipc) for b in boards] == [("digits", 1), ("digits", 2)]
    ipc1 = board_of(boards)
    by_method = {e.method: e for e in ipc1.entries}
    assert set(by_method) == {"dm", "herding", "random"}
    for method, entry in by_method.items():
        mine = [r for r in rows if r["method"] == method and r["ipc"] == 1]
        assert entry.n_distillations == len(mine) == 2
        pooled = [v for r in mine for v in r["metrics"]["ddrs"]["values"]]
        assert entry.n_students == len(pooled) == 4
        assert entry.ddrs.mean == pytest.approx(float(np.mean(pooled)), abs=1e-15)
        assert entry.ddrs.std == pytest.approx(float(np.std(pooled, ddof=1)), abs=1e-15)
        hlr = [v for r in mine for v in r["metrics"]["hlr"]["values"]]
        assert entry.hlr.mean == pytest.approx(float(np.mean(hlr)), abs=1e-15)
        syn = [v for r in mine for v in r["metrics"]["acc_syn_hard"]["values"]]
        assert entry.acc("acc_syn_hard").std == pytest.approx(float(np.std(syn, ddof=1)), abs=1e-15)
    # ranks follow pooled DDRS, and on these records dm > herding > random
    assert [e.method for e in ipc1.entries] == ["dm", "herding", "random"]
    assert [e.rank for e in ipc1.entries] == [1, 2, 3]
    assert ipc1.entries[0].ddrs.mean == pytest.approx((0.3033047319015866 + 0.2896961539360927) / 2, abs=1e-15)
    assert "cover distillation seeds × students (hierarchical bootstrap)" in ipc1.note
    assert "covers students only" not in ipc1.note


def test_one_distillation_note_and_single_run_scores_match_the_record() -> None:
    row = load_record(FIXTURES / "dm-digits-ipc1-seed0-6312b3c1eb")
    (board,) = build_leaderboard([row])
    (entry,) = board.entries
    assert entry.ddrs.mean == pytest.approx(row["metrics"]["ddrs"]["mean"], abs=1e-15)
    assert entry.ddrs.std == pytest.approx(row["metrics"]["ddrs"]["std"], abs=1e-15)
    assert entry.n_students == 2 and entry.n_distillations == 1
    assert board.note == ("± and intervals cover students only (one distillation; distillation-seed variance not "
                          "included) for every method.")


def test_recomputing_for_w_reranks_exactly() -> None:
    students = {"A": ([0.05, 0.07], [0.05, 0.07]), "B": ([0.30, 0.32], [0.40, 0.42])}
    for w, order in ((0.5, ["B", "A"]), (0.9, ["B", "A"]), (0.2, ["A", "B"]), (0.0, ["A", "B"])):
        (board,) = build_leaderboard(flip_rows(), w)
        assert [e.label for e in board.entries] == order, w
        assert [e.rank for e in board.entries] == [1, 2]
        for entry in board.entries:
            hlrs, iors = students[entry.label]
            per = [ddrs(h, i, w) for h, i in zip(hlrs, iors)]
            assert entry.ddrs.mean == pytest.approx(sum(per) / 2, abs=1e-15)
            assert entry.ddrs.std == pytest.approx(abs(per[0] - per[1]) / math.sqrt(2), abs=1e-15)
    (board,) = build_leaderboard(flip_rows(), 0.2)
    assert board.entries[0].ddrs.mean == pytest.approx(ddrs(0.06, 0.06, 0.2), abs=1e-4)


def test_ties_share_a_rank_and_break_on_hlr_then_name() -> None:
    rows = [make_row("zeta", [0.1], [0.1]), make_row("alpha", [0.1], [0.1]), make_row("best", [0.0], [0.3]),
            make_row("last", [0.5], [0.0])]
    (board,) = build_leaderboard(rows)
    assert [(e.rank, e.label) for e in board.entries] == [(1, "best"), (2, "alpha"), (2, "zeta"), (4, "last")]
    # equal DDRS from different HLR/IOR: lower HLR first
    a = make_row("a", [0.2], [0.2 + 0.2])  # α = 0.5·0.4 − 0.5·0.2 = 0.1
    b = make_row("b", [0.0], [0.2])  # α = 0.1
    (board,) = build_leaderboard([a, b])
    assert [e.label for e in board.entries] == ["b", "a"]


def test_params_and_arch_variants_get_distinct_labels_and_boards_split_by_dataset_ipc() -> None:
    rows = [make_row("dm", [0.1], [0.2], params={"iterations": 50, "lr_img": 1.0}),
            make_row("dm", [0.05], [0.25], params={"iterations": 200, "lr_img": 1.0}),
            make_row("dc", [0.1], [0.1], arch="convnet"), make_row("dc", [0.2], [0.1], arch="mlp"),
            make_row("dm", [0.1], [0.2], ipc=10, params={"iterations": 50, "lr_img": 1.0}),
            make_row("dm", [0.1], [0.2], dataset="cifar10", params={"iterations": 50, "lr_img": 1.0}),
            make_row("mtt", [0.1], [0.2], ipc=10)]
    boards = build_leaderboard(rows)
    assert [(b.dataset, b.ipc) for b in boards] == [("cifar10", 1), ("digits", 1), ("digits", 10)]
    labels = [e.label for e in board_of(boards).entries]
    assert labels == ["dm [iterations=200]", "dm [iterations=50]", "dc @convnet", "dc @mlp"]
    # labels are the same on every board: dm at IPC 10 is still named by its iterations
    assert [e.label for e in board_of(boards, ipc=10).entries] == ["dm [iterations=50]", "mtt"]
    assert [e.label for e in board_of(boards, "cifar10").entries] == ["dm [iterations=50]"]
    assert {e.base_label for e in board_of(boards).entries} == {"dm [iterations=200]", "dm [iterations=50]", "dc"}
    assert "several student architectures (convnet, mlp)" in board_of(boards).note
    assert "architectures" not in board_of(boards, ipc=10).note


def test_mixed_seeds_note_names_both_kinds() -> None:
    rows = [make_row("A", [0.1, 0.2], [0.2, 0.1], seed=0), make_row("A", [0.15], [0.1], seed=1, run_id="A1"),
            make_row("B", [0.3], [0.1])]
    (board,) = build_leaderboard(rows)
    a = next(e for e in board.entries if e.label == "A")
    assert a.n_distillations == 2 and a.n_students == 3
    assert a.hlr.mean == pytest.approx(0.15, abs=1e-15) and a.hlr.std == pytest.approx(0.05, abs=1e-15)
    assert board.note == ("± and intervals cover distillation seeds × students (hierarchical bootstrap) for A "
                          "(2 distillations); ± and intervals cover students only (one distillation; "
                          "distillation-seed variance not included) for B.")


def _md_rows(md: str, label: str) -> list[list[str]]:
    """``label``'s row of the score table (method in the 3rd column) and of the cost table (10 columns,
    method first)."""
    cells = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in md.splitlines()
             if line.startswith("| ")]
    return [c for c in cells if len(c) > 10 and c[2] == label] + [c for c in cells if len(c) == 10 and c[0] == label]


def test_markdown_and_csv_content() -> None:
    from scipy import stats

    rows = [make_row("A", [0.1, 0.2], [0.3, 0.1], image_bytes=10240, soft_label_bytes=0, distill_seconds=7.25),
            make_row("B", [0.4], [0.0])]
    boards = build_leaderboard(rows)
    md = to_markdown(boards, generated="2026-01-02")
    a_ddrs = [ddrs(0.1, 0.3, 0.5), ddrs(0.2, 0.1, 0.5)]
    mean, std = sum(a_ddrs) / 2, abs(a_ddrs[0] - a_ddrs[1]) / math.sqrt(2)
    half = stats.t.ppf(0.975, 1) * std / math.sqrt(2)
    score, cost = _md_rows(md, "A")
    # B has one student: nothing can be tested, so A and B share group a and ranks 1–2
    assert score[:5] == ["1–2", "a", "A", "convnet", f"{mean:.4f} ± {std:.4f} [{mean - half:.4f}, {mean + half:.4f}]"]
    p = stats.ttest_1samp([0.3, 0.1], 0.0).pvalue
    assert score[7] == f"no evidence (p = {p:.3f})"
    assert score[8] == "0.9000 (n = 1)"  # one real-data reference model
    assert score[-1] == "1 × 2"
    assert cost[:2] == ["A", "7.2 s"] and cost[8] == "10.0 KiB"
    b_score = _md_rows(md, "B")[0]
    assert b_score[:5] == ["1–2", "a", "B", "convnet", f"{ddrs(0.4, 0.0, 0.5):.4f} (n = 1)"]
    assert b_score[7] == "untested (n = 1 student)"
    assert "## digits, IPC 1" in md and "α = w·IOR − (1−w)·HLR" in md and "cover students only" in md
    assert "ddr 0.1.0 · generated 2026-01-02" in md and "Protocol: digits v1" in md
    assert "| A | B | - | not tested: fewer than 2 students on a side |" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(boards, generated="2026-01-02"))))
    assert list(parsed[0]) == CSV_HEADERS
    assert [r["method"] for r in parsed] == ["A", "B"] and parsed[1]["rank"] == "2"
    assert float(parsed[0]["ddrs_mean"]) == boards[0].entries[0].ddrs.mean  # full precision, exact
    assert float(parsed[0]["ddrs_ci_low"]) == pytest.approx(mean - half, abs=1e-12)
    assert parsed[0]["storage_bytes"] == "10240" and parsed[1]["storage_bytes"] == ""
    assert parsed[1]["ddrs_ci_low"] == "" and parsed[0]["protocol"] == "digits v1"
    assert parsed[0]["ddr"] == "ddr 0.1.0 · generated 2026-01-02"
    assert float(parsed[1]["ddrs_mean"]) == pytest.approx(ddrs(0.4, 0.0, 0.5), abs=1e-15)


def test_html_is_offline_and_embeds_per_student_values() -> None:
    rows = flip_rows() + [make_row("</script><b>x</b>", [0.1], [0.1])]
    page = to_html(build_leaderboard(rows, 0.5))
    assert not re.search(r"https?://|<link|src=", page), "the page must not load anything"
    assert '<input type="range" id="w" min="0" max="1" step="0.05" value="0.5">' in page
    assert "α = w·IOR − (1−w)·HLR;  DDRS = (e^α − e^−1) / (e − e^−1)" in page  # the ddrs metric spec's formula
    assert page.count("</script>") == 2  # the label cannot close the data block
    match = re.search(r'<script type="application/json" id="ddr-data">(.*?)</script>', page, re.S)
    assert match is not None
    data = json.loads(match.group(1))
    entries = {e["label"]: e for e in data["boards"][0]["entries"]}
    assert entries["A"]["hlr"] == [0.05, 0.07] and entries["B"]["ior"] == [0.40, 0.42]
    assert "</script><b>x</b>" in entries and data["w"] == 0.5


def test_errors() -> None:
    with pytest.raises(DdrError, match=r"w must be in \[0, 1\]"):
        build_leaderboard(flip_rows(), 1.5)
    with pytest.raises(DdrError, match="unknown leaderboard format"):
        render(flip_rows(), "pdf")
    row = make_row("A", [0.1], [0.1], run_id="abc")
    del row["metrics"]["ior"]["values"]
    with pytest.raises(ArtifactError, match="run abc: metrics has no 'ior.values'"):
        build_leaderboard([row])
    row = make_row("A", [0.1, 0.2], [0.1], run_id="abc")
    with pytest.raises(ArtifactError, match="2 HLR values but 1 IOR values"):
        build_leaderboard([row])
    assert "_no runs_" in render([], "md")


def test_leaderboard_imports_no_torch() -> None:
    code = ("import sys; import ddr.report.leaderboard, ddr.report.tabular, ddr.store.results; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'matplotlib')); "
            "print(bad)")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_cli_leaderboard_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.results import add_results_commands
    from ddr.store.results import ResultsDB

    db_path = tmp_path / "r.sqlite"
    with ResultsDB(db_path) as db:
        db.import_dirs([FIXTURES], suite="digits")
    parser = argparse.ArgumentParser()
    add_results_commands(parser.add_subparsers())

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return args.func(args)

    for fmt in ("md", "csv", "html"):
        out = tmp_path / f"lb.{fmt}"
        assert run("leaderboard", "--db", str(db_path), "--suite", "digits", "--format", fmt, "-o", str(out)) == 0
        assert out.stat().st_size > 500
    assert run("leaderboard", "--db", str(db_path), "--w", "0.2", "--format", "csv", "--where", "ipc=1") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["ipc"] for r in rows} == {"1"} and {r["w"] for r in rows} == {"0.2"}
    expected = board_of(build_leaderboard(real_rows(), 0.2))
    assert [r["method"] for r in rows] == [e.label for e in expected.entries]
    # the database returns rows in another order: the pooled means may differ in the last bit
    assert [float(r["ddrs_mean"]) for r in rows] == pytest.approx([e.ddrs.mean for e in expected.entries], abs=1e-15)
    with pytest.raises(DdrError, match="no runs match in suite 'nope'"):
        run("leaderboard", "--db", str(db_path), "--suite", "nope")
    with pytest.raises(SystemExit):
        run("leaderboard", "--db", str(db_path), "--w", "2")
