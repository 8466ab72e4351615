"""Paper-ready outputs: LaTeX leaderboards (ddr.report.leaderboard_latex), the pivot layout
(ddr.report.pivot), method metadata (MethodSpec paper/venue/year/code/label_type) and plot
formats/sizes (ddr.report.plots)."""

from __future__ import annotations

import argparse
import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers.results import FIXTURES, ddrs, make_row, real_runs, summary

from ddr.errors import DdrError, InvalidSpecError
from ddr.report.leaderboard import build_leaderboard, render
from ddr.report.leaderboard_latex import escape, to_latex
from ddr.report.pivot import build_pivot, render_pivot
from ddr.store.results import load_record

BUILTINS = ("random", "herding", "kcenter", "dc", "dsa", "dm", "mtt", "datm", "sre2l", "rded", "d4m")


def real_rows() -> list[dict]:
    return [load_record(run) for run in real_runs()]


def flip_rows() -> list[dict]:
    """A: the lowest HLR (0.06) but a small IOR; B: the highest IOR and DDRS at w = 0.5."""
    return [make_row("A", [0.05, 0.07], [0.05, 0.07]), make_row("B", [0.30, 0.32], [0.40, 0.42])]


def balanced(text: str) -> bool:
    depth = 0
    for k, ch in enumerate(text):
        if ch in "{}" and k and text[k - 1] == "\\":
            continue  # \{ and \} are literal braces
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def body_rows(tex: str) -> dict[str, list[str]]:
    """The rows between \\midrule and \\bottomrule of the first tabular, by their first cell."""
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    rows = [[c.strip() for c in line.rstrip("\\ ").split(" & ")] for line in body.strip().splitlines()]
    return {r[0]: r for r in rows}


# -- LaTeX ----------------------------------------------------------------------------------------

def test_latex_booktabs_bold_follows_each_metric_direction() -> None:
    tex = to_latex(build_leaderboard(flip_rows(), 0.5), generated="2026-01-02")
    assert balanced(tex)
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 1
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    heads = tex.split("\\toprule", 1)[1].split("\\midrule", 1)[0]
    columns = [h.strip() for h in heads.strip().rstrip("\\ ").split(" & ")]
    assert columns[:7] == ["Method", "Venue", "Labels", "Arch", "DDRS (LRS) $\\uparrow$", "HLR $\\downarrow$",
                           "IOR $\\uparrow$"]
    rows = body_rows(tex)
    a, b = rows["A"], rows["B"]
    # DDRS: B is higher, HLR: A is lower (↓, lowest bold), IOR: B is higher
    b_ddrs = float(np.mean([ddrs(0.30, 0.40, 0.5), ddrs(0.32, 0.42, 0.5)]))
    assert b[4].startswith(f"\\textbf{{{b_ddrs:.4f}}} $\\pm$ ") and not a[4].startswith("\\textbf")
    assert a[5] == f"\\textbf{{0.0600}} $\\pm$ {np.std([0.05, 0.07], ddof=1):.4f}" and b[5] == "0.3100 $\\pm$ 0.0141"
    assert b[6].startswith("\\textbf{0.4100}") and a[6] == "0.0600 $\\pm$ 0.0141"
    # accuracies: acc_syn_hard = 0.9 − HLR, so A's is the best (↑)
    assert a[7].startswith("\\textbf{0.8400}") and b[7] == "0.5900 $\\pm$ 0.0141"
    assert a[-1] == "1 $\\times$ 2"
    assert "Protocol: digits v1" in tex and "ddr 0.1.0 \\textperiodcentered{} generated 2026-01-02" in tex
    assert "A 1 distillation $\\times$ 2 students" in tex


def test_latex_uncertainty_ci_and_printed_ties_are_all_bold() -> None:
    rows = [make_row("A", [0.1, 0.2], [0.3, 0.1]), make_row("B", [0.1, 0.2], [0.3, 0.1], run_id="b")]
    board = build_leaderboard(rows)[0]
    tex = to_latex([board], "ci", generated="2026-01-02")
    ci = board.entries[0].ddrs.ci
    assert ci is not None
    a, b = body_rows(tex)["A"], body_rows(tex)["B"]
    assert a[4] == f"\\textbf{{{board.entries[0].ddrs.mean:.4f}}} [{ci.low:.4f}, {ci.high:.4f}]"
    assert a[4] == b[4]  # equal values: both bold
    with pytest.raises(DdrError, match="unknown uncertainty 'sd'"):
        to_latex([board], "sd")


def test_latex_escapes_method_labels() -> None:
    assert escape("a_b & 50% #1 {x} $y ~z ^w \\") == \
        "a\\_b \\& 50\\% \\#1 \\{x\\} \\$y \\textasciitilde{}z \\textasciicircum{}w \\textbackslash{}"
    rows = [make_row("m_x&y", [0.1, 0.2], [0.1, 0.2]), make_row("dm", [0.1, 0.1], [0.1, 0.1],
                                                                 params={"note": "50%_{x}"})]
    tex = render(rows, "latex", generated="2026-01-02")
    assert "m\\_x\\&y" in tex and "m_x&y" not in tex
    assert balanced(tex)


def test_latex_of_the_recorded_runs_compiles_with_pdflatex(tmp_path: Path) -> None:
    tex = render(real_rows(), "latex", uncertainty="ci", standalone=True, generated="2026-01-02")
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}") and balanced(tex)
    assert tex.count("\\begin{table}") == 2 and tex.count("\\toprule") == 2
    rows = body_rows(tex)
    dm = build_leaderboard(real_rows())[0].entries[0]
    assert rows["dm"][1:4] == ["WACV 2023", "hard", "convnet"] and rows["random"][1] == "-"
    assert rows["dm"][4].startswith(f"\\textbf{{{dm.ddrs.mean:.4f}}} [")
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed: the LaTeX was checked for structure only")
    (tmp_path / "board.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "board.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "board.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("options", [
    {"uncertainty": "pm", "reported": True},          # with the published numbers' section
    {"layout": "pivot", "metric": "lrs", "uncertainty": "ci"},
])
def test_every_latex_layout_compiles_with_pdflatex(tmp_path: Path, options: dict) -> None:
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    tex = render(real_rows(), "latex", standalone=True, generated="2026-01-02", **options)
    assert balanced(tex)
    (tmp_path / "t.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "t.pdf").read_bytes()[:5] == b"%PDF-"


# -- pivot ------------------------------------------------------------------------------------------

def pivot_rows() -> list[dict]:
    return [make_row("dm", [0.10, 0.12], [0.20, 0.22], ipc=1), make_row("dm", [0.05, 0.07], [0.10, 0.14], ipc=10),
            make_row("dc", [0.20, 0.24], [0.10, 0.12], ipc=1),
            make_row("dm", [0.30, 0.34], [0.02, 0.04], ipc=1, dataset="cifar10"),
            make_row("dc", [0.25, 0.29], [0.05, 0.07], ipc=1, dataset="cifar10")]


def test_pivot_cells_hold_each_boards_means() -> None:
    boards = build_leaderboard(pivot_rows())
    p = build_pivot(boards, "lrs")  # DD-Ranking's name for DDRS
    assert p.metric.key == "ddrs"
    assert p.columns == [("cifar10", 1), ("digits", 1), ("digits", 10)]
    assert p.rows == ["dc", "dm"]  # the first board's (cifar10's) ranking: dc has the higher DDRS there
    expect = {("dm", 0): [(0.30, 0.02), (0.34, 0.04)], ("dm", 1): [(0.10, 0.20), (0.12, 0.22)],
              ("dm", 2): [(0.05, 0.10), (0.07, 0.14)], ("dc", 0): [(0.25, 0.05), (0.29, 0.07)],
              ("dc", 1): [(0.20, 0.10), (0.24, 0.12)]}
    for (label, c), pairs in expect.items():
        est = p.cells[p.rows.index(label)][c]
        assert est is not None and est.mean == pytest.approx(np.mean([ddrs(h, i, 0.5) for h, i in pairs]), abs=1e-15)
    assert p.cells[0][2] is None  # dc did not run digits IPC 10
    hlr = build_pivot(boards, "hlr")
    assert [[None if e is None else round(e.mean, 10) for e in row] for row in hlr.cells] == \
        [[0.27, 0.22, None], [0.32, 0.11, 0.06]]
    assert hlr.best() == [{0}, {1}, set()]  # HLR: lowest is best; one value: nothing to compare

    md = render_pivot(boards, "md", "hlr", generated="2026-01-02")
    assert "| method | venue | labels | cifar10 IPC 1 | digits IPC 1 | digits IPC 10 |" in md
    assert "| dm | WACV 2023 | hard | 0.3200 ± 0.0283 | **0.1100 ± 0.0141** | 0.0600 ± 0.0141 |" in md
    assert "| dc | ICLR 2021 | hard | **0.2700 ± 0.0283** | 0.2200 ± 0.0283 | - |" in md
    parsed = {r["method"]: r for r in csv.DictReader(io.StringIO(render_pivot(boards, "csv", "hlr",
                                                                             generated="2026-01-02")))}
    assert list(parsed) == ["dc", "dm"]
    assert float(parsed["dm"]["digits_ipc1_mean"]) == pytest.approx(0.11, abs=1e-15)
    assert parsed["dm"]["digits_ipc1_best"] == "yes" and parsed["dc"]["digits_ipc10_mean"] == ""
    assert (parsed["dm"]["venue"], parsed["dm"]["year"], parsed["dm"]["label_type"]) == ("WACV 2023", "2023", "hard")
    tex = render_pivot(boards, "latex", "hlr", "ci", generated="2026-01-02")
    assert balanced(tex) and "\\multicolumn{1}{c}{cifar10} & \\multicolumn{2}{c}{digits}" in tex
    assert "\\cmidrule(lr){4-4} \\cmidrule(lr){5-6}" in tex
    assert body_rows(tex)["dm"][4].startswith("\\textbf{0.1100} [")
    page = render_pivot(boards, "html", "hlr", generated="2026-01-02")
    assert "<td><b>0.1100 ± 0.0141</b></td>" in page and not re.search(r"https?://|<script|<link", page)


def test_pivot_student_metric_columns_and_unknown_metrics() -> None:
    rows = pivot_rows()
    for k, row in enumerate(rows):
        row["metrics"]["robust_pgd_syn"] = summary([0.1 * (k + 1), 0.1 * (k + 1) + 0.02])
    p = build_pivot(build_leaderboard(rows), "robust_pgd_syn")
    assert p.metric.label == "robust acc (PGD) syn" and p.metric.higher_is_better
    dm = p.cells[p.rows.index("dm")]
    assert dm[1] is not None and dm[1].mean == pytest.approx(0.11, abs=1e-12)  # digits IPC 1: the first row's
    assert dm[0] is not None and dm[0].mean == pytest.approx(0.41, abs=1e-12)  # cifar10: the fourth row's
    assert p.best() == [{p.rows.index("dc")}, {p.rows.index("dc")}, set()]  # higher is better
    with pytest.raises(DdrError, match="unknown metric 'nope'.*hlr"):
        render(pivot_rows(), "md", layout="pivot", metric="nope")
    with pytest.raises(DdrError, match="unknown leaderboard layout"):
        render(pivot_rows(), "md", layout="wide")


def test_cli_leaderboard_latex_and_pivot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.results import add_results_commands
    from ddr.store.results import ResultsDB

    db_path = tmp_path / "r.sqlite"
    with ResultsDB(db_path) as db:
        db.import_dirs([FIXTURES], suite="digits")
    parser = argparse.ArgumentParser()
    add_results_commands(parser.add_subparsers())
    args = parser.parse_args(["leaderboard", "--db", str(db_path), "--format", "latex", "--uncertainty", "ci"])
    assert args.func(args) == 0
    tex = capsys.readouterr().out
    assert tex.count("\\toprule") == 2 and "[95~\\% interval" in tex
    args = parser.parse_args(["leaderboard", "--db", str(db_path), "--layout", "pivot", "--metric", "lrs"])
    assert args.func(args) == 0
    md = capsys.readouterr().out
    dm = build_leaderboard(real_rows())
    assert f"| dm | WACV 2023 | hard | **{dm[0].entries[0].ddrs.mean:.4f} ± " in md


# -- method metadata --------------------------------------------------------------------------------

def test_every_builtin_method_declares_valid_metadata() -> None:
    from ddr.plugin.manager import PluginSystem

    specs = {s.name: s for s in PluginSystem().methods().list() if s.name in BUILTINS}
    assert set(specs) == set(BUILTINS)
    for name, spec in specs.items():
        described = spec.describe()
        assert {"paper", "venue", "year", "code", "label_type"} <= set(described), name
        assert spec.label_type in ("hard", "soft"), name
        if spec.venue is not None:
            assert isinstance(spec.year, int) and str(spec.year) in spec.venue, name
        if spec.code is not None:
            assert spec.code.startswith("https://"), name
    soft = {n for n, s in specs.items() if s.label_type == "soft"}
    assert soft == {"datm", "sre2l", "rded", "d4m"}
    assert all(specs[n].paper and specs[n].code for n in BUILTINS if n not in ("random", "herding", "kcenter"))
    assert specs["dc"].describe()["venue"] == "ICLR 2021" and specs["random"].venue is None


@pytest.mark.parametrize("field, value, message", [
    ("year", "2021", "year must be an int"), ("year", True, "year must be an int"),
    ("venue", 2021, "venue must be a non-empty string"), ("paper", "", "paper must be a non-empty string"),
    ("code", "VICO-UoE/DatasetCondensation", "code must be the URL"),
    ("label_type", "mixed", "label_type must be one of hard, soft"),
])
def test_method_metadata_is_validated(field: str, value: object, message: str) -> None:
    from ddr import MethodSpec

    with pytest.raises(InvalidSpecError, match=message):
        MethodSpec(name="x", target="a.b:C", **{field: value})  # type: ignore[arg-type]


def test_describe_method_shows_the_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.main import main

    assert main(["describe", "method", "mtt"]) == 0
    out = capsys.readouterr().out
    assert "  paper: Dataset Distillation by Matching Training Trajectories" in out
    assert "  venue: CVPR 2022" in out and "  year: 2022" in out and "  label_type: hard" in out
    assert "  code: https://github.com/GeorgeCazenavette/mtt-distillation" in out


# -- plots ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_plots_in_each_format_dpi_and_size(tmp_path: Path, fmt: str) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    from ddr.report.plots import plot_all

    paths = plot_all(real_rows(), tmp_path, fmt=fmt, dpi=50, size=(6.0, 4.0))
    assert [p.name for p in paths] == [f"{n}.{fmt}" for n in ("accuracy_vs_ipc_digits", "hlr_vs_ior_digits",
                                                              "ddrs_vs_w_digits_ipc1", "ddrs_vs_w_digits_ipc2",
                                                              "pareto_digits_ipc1", "pareto_digits_ipc2")]
    for path in paths:
        data = path.read_bytes()
        if fmt == "png":
            with Image.open(path) as image:
                assert image.size == (300, 200)  # 6 x 4 inches at 50 dpi
                assert image.info["dpi"] == pytest.approx((50, 50), abs=0.05)  # PNG stores dots per metre
        elif fmt == "pdf":
            assert data[:5] == b"%PDF-" and b"/MediaBox [ 0 0 432 288 ]" in data  # 6 x 4 inches in points
        else:
            assert data.lstrip().startswith(b"<?xml") and b"<svg" in data
            assert b'width="432pt"' in data and b'height="288pt"' in data


def test_plot_titles_name_the_protocol_and_explain_the_random_point(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ddr.report import plots

    boards = build_leaderboard(real_rows())
    (svg,) = plots.plot_hlr_ior(boards, tmp_path, style=plots.PlotStyle("svg"))
    text = svg.read_text(encoding="utf-8")
    # matplotlib writes text as paths unless svg.fonttype is none; the titles are in <!-- --> comments
    assert "digits v1" in text and "random subset (IOR = 0, by definition)" in text
    random_ior = next(e for e in boards[0].entries if e.method == "random").ior.mean
    assert abs(random_ior) >= 5e-4
    assert f"IPC 1: IOR {random_ior:+.4f}" in text and "drawn with the distillation seed" in text
    (acc,) = plots.plot_accuracy_vs_ipc(boards, tmp_path, style=plots.PlotStyle("svg"))
    assert "digits v1" in acc.read_text(encoding="utf-8")
    with pytest.raises(DdrError, match="unknown plot format 'gif'"):
        plots.PlotStyle("gif")
    with pytest.raises(DdrError, match="WIDTHxHEIGHT"):
        plots.parse_size("7by4")
    assert plots.parse_size("7x4.5") == (7.0, 4.5)


def test_cli_plot_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    from ddr.cli.results import add_results_commands
    from ddr.store.results import ResultsDB

    db_path = tmp_path / "r.sqlite"
    with ResultsDB(db_path) as db:
        db.import_dirs([FIXTURES], suite="digits")
    parser = argparse.ArgumentParser()
    add_results_commands(parser.add_subparsers())
    args = parser.parse_args(["plot", "--db", str(db_path), "-o", str(tmp_path / "out"), "--format", "png",
                              "--dpi", "40", "--size", "5x3", "--where", "ipc=1"])
    assert args.func(args) == 0
    printed = [Path(p) for p in capsys.readouterr().out.split()]
    assert printed and all(p.suffix == ".png" for p in printed)
    with Image.open(printed[0]) as image:
        assert image.size == (200, 120)
    with pytest.raises(SystemExit):
        parser.parse_args(["plot", "-o", "x", "--size", "0x3"])
