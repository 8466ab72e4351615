"""Published numbers as data (``ddr_methods/<method>/reported.yaml``, ``MethodSpec.reported``,
:class:`ddr.ReportedNumber`) and the leaderboard's "reported (published) vs measured" rows in every
format (``ddr leaderboard --reported``): exact numbers, never ranked."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import yaml
from helpers.results import make_row
from helpers.site_data import results_db

import ddr
from ddr.cli.main import main
from ddr.errors import DdrError, InvalidSpecError
from ddr.plugin.manager import PluginSystem
from ddr.plugin.reported import load_reported, parse_reported
from ddr.plugin.specs import MethodSpec, ReportedNumber
from ddr.report import reported as rep
from ddr.report.leaderboard import build_leaderboard, render

METHODS_DIR = Path(ddr.__file__).resolve().parents[1] / "ddr_methods"
FILES = sorted(METHODS_DIR.glob("*/reported.yaml"))


def cifar_rows() -> list[dict]:
    """CIFAR-10 IPC 10: dm measures acc_syn_any 0.51 (published 0.489), datm 0.66 with soft labels
    (published 0.668), random 0.50 (published 0.310); acc_syn_any = 0.5 + IOR."""
    return [make_row("dm", [0.30, 0.32], [0.01, 0.01], dataset="cifar10", ipc=10),
            make_row("datm", [0.20, 0.22], [0.15, 0.17], dataset="cifar10", ipc=10,
                     run_spec={"label_strategy": "stored_soft"}),
            make_row("random", [0.40, 0.42], [0.0, 0.0], dataset="cifar10", ipc=10)]


# -- the data ---------------------------------------------------------------------------------------

def test_every_shipped_number_has_a_source_and_is_a_fraction() -> None:
    assert {f.parent.name for f in FILES} >= {"random", "herding", "kcenter", "dc", "dsa", "dm", "mtt", "datm"}
    for file in FILES:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        numbers = parse_reported(data, str(file), file.parent.name)
        assert numbers, file
        for key, number in numbers.items():
            assert 0.0 <= number.value <= 1.0, (file, key)
            assert number.sourced and number.paper and number.table, (file, key)
            assert number.arch and number.label_type in ("hard", "soft"), (file, key)
            assert re.fullmatch(r"[a-z0-9-]+/ipc(1|10|50)", key), (file, key)
        # the installed spec carries exactly the file's numbers, sources included
        spec = PluginSystem().methods().resolve(file.parent.name).spec
        assert dict(spec.reported) == numbers


def test_numbers_and_sources_are_the_papers() -> None:
    spec = PluginSystem().methods().resolve("dm").spec
    cell = spec.reported["cifar10/ipc10"]
    assert (cell.value, cell.paper, cell.table, cell.arch, cell.label_type) == (
        0.489, "Guo et al., ICLR 2024 (DATM)", "Table 1", "ConvNet-3", "hard")
    datm = PluginSystem().methods().resolve("datm").spec.reported["tinyimagenet/ipc50"]
    assert (datm.value, datm.arch, datm.label_type) == (0.397, "ConvNet-4", "soft")
    dsa = PluginSystem().methods().resolve("dsa").spec.reported
    assert (dsa["cifar100/ipc50"].value, dsa["cifar100/ipc50"].paper) == (0.428, "Zhao & Bilen, WACV 2023 (DM)")
    assert dsa["cifar10/ipc1"].paper == "Zhao & Bilen, ICML 2021 (DSA)"
    dc = PluginSystem().methods().resolve("dc").spec.reported
    assert "cifar100/ipc50" not in dc  # DC's Table 1 has no such cell: absent, not invented
    rded = PluginSystem().methods().resolve("rded").spec.reported
    assert (rded["cifar10/ipc10"].value, rded["cifar10/ipc10"].arch, rded["cifar10/ipc10"].label_type) == (
        0.502, "ConvNet", "soft")
    assert rded["imagenette/ipc10"].arch == "ResNet-18"  # one number per cell: ResNet-18 only where no ConvNet
    d4m = PluginSystem().methods().resolve("d4m").spec.reported
    assert set(d4m) == {"imagenet/ipc10", "imagenet/ipc50", "tinyimagenet/ipc50"}  # unchecked CIFAR cells absent
    assert PluginSystem().methods().resolve("sre2l").spec.reported["imagenet/ipc50"].value == 0.468


def test_describe_method_prints_each_number_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "method", "mtt"]) == 0
    out = capsys.readouterr().out
    assert "  cifar100/ipc50      0.477  Cazenavette et al., CVPR 2022 (MTT), Table 1 (ConvNet-3, hard labels)" in out
    assert "tinyimagenet/ipc1   0.088  Cazenavette et al., CVPR 2022 (MTT), Table 1 (ConvNet-4, hard labels)" in out


# -- the spec field ---------------------------------------------------------------------------------

def test_a_plugin_declares_numbers_with_sources_in_its_spec() -> None:
    spec = MethodSpec(name="mine", target="x.y:Z", reported={
        "cifar10/ipc10": ReportedNumber(value=0.5, paper="Me et al., 2030", table="Table 2", arch="ResNet-18",
                                        label_type="soft"),
        "cifar10/ipc1": {"value": 0.25, "paper": "Me et al., 2030", "table": "Table 3"},
        "cifar10/ipc50": 0.75})  # a bare fraction: kept, without a source
    assert float(spec.reported["cifar10/ipc10"]) == 0.5 and spec.reported["cifar10/ipc10"].source == \
        "Me et al., 2030, Table 2"
    assert spec.reported["cifar10/ipc1"].arch is None and spec.reported["cifar10/ipc1"].sourced
    assert spec.reported["cifar10/ipc50"].source == "no source given" and not spec.reported["cifar10/ipc50"].sourced
    described = spec.describe()
    assert described["reported"] == {"cifar10/ipc10": 0.5, "cifar10/ipc1": 0.25, "cifar10/ipc50": 0.75}
    assert described["reported_sources"]["cifar10/ipc10"]["arch"] == "ResNet-18"


@pytest.mark.parametrize("reported, message", [
    ({"cifar10/ipc10": 48.9}, "fraction in [0, 1], got 48.9 (a fraction: write 0.489 for 48.9 %)"),
    ({"cifar10/ipc10": -0.1}, "fraction in [0, 1]"),
    ({"cifar10-ipc10": 0.5}, "must look like 'cifar10/ipc10'"),
    ({"cifar10/ipc10": {"value": 0.5, "page": 3}}, "unknown field(s) page"),
    ({"cifar10/ipc10": {"paper": "x"}}, "needs a 'value'"),
    ({"cifar10/ipc10": {"value": 0.5, "label_type": "mixed"}}, "label_type must be one of hard, soft"),
    ([0.5], "reported must be a mapping"),
])
def test_bad_reported_numbers_are_refused_with_what_to_do(reported: object, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=re.escape(message)):
        MethodSpec(name="mine", target="x.y:Z", reported=reported)  # type: ignore[arg-type]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["reported"][0].pop("table"), "give table (every number says where it is printed)"),
    (lambda d: d["reported"][0].update(pages=3), "unknown key(s) pages"),
    (lambda d: d["reported"].append(dict(d["reported"][0])), "cifar10/ipc1 is given twice"),
    (lambda d: d["reported"][0]["numbers"].update({"cifar10/ipc5": 5.0}), "fraction in [0, 1]"),
    (lambda d: d.update(method="other"), "the file is method 'other''s, not 'dm''s"),
])
def test_a_broken_file_names_the_file_and_the_fix(edit, message: str) -> None:
    data = {"method": "dm", "reported": [{"paper": "P", "table": "Table 1", "arch": "ConvNet-3", "label_type": "hard",
                                          "numbers": {"cifar10/ipc1": 0.26}}]}
    edit(data)
    with pytest.raises(InvalidSpecError, match=re.escape(message)) as info:
        parse_reported(data, "pkg/dm/reported.yaml", "dm")
    assert "pkg/dm/reported.yaml" in str(info.value)


def test_load_reported_reads_package_data_and_names_a_missing_file() -> None:
    assert load_reported("ddr_methods.dm")["cifar10/ipc1"].value == 0.26
    with pytest.raises(InvalidSpecError, match="ship the file as package data"):
        load_reported("ddr_methods.dm", "absent.yaml")


# -- on the leaderboard -------------------------------------------------------------------------------

def test_board_rows_exact_differences_in_points_and_never_ranked() -> None:
    (board,) = build_leaderboard(cifar_rows(), 0.5)
    rows = rep.reported_rows(board)
    measured = {r.label: r for r in rows if r.entry is not None}
    assert [r.label for r in rows][:3] == [e.label for e in board.entries]  # board order first
    assert measured["dm"].number.value == 0.489 and measured["dm"].delta_points == pytest.approx(2.1, abs=1e-9)
    assert measured["datm"].delta_points == pytest.approx(-0.8, abs=1e-9)
    assert measured["random"].delta_points == pytest.approx(19.0, abs=1e-9)
    assert measured["datm"].measured_labels == "soft" and not measured["datm"].caveats
    unmeasured = {r.method: r.number.value for r in rows if r.entry is None}
    assert unmeasured == {"dc": 0.449, "dsa": 0.521, "herding": 0.316, "kcenter": 0.147, "mtt": 0.653,
                          "rded": 0.502, "sre2l": 0.293}
    # the published numbers change nothing of the ranking, the groups or the intervals
    assert [e.label for e in board.entries] == [e.label for e in build_leaderboard(cifar_rows(), 0.5)[0].entries]
    assert len(board.entries) == 3


def test_labels_that_differ_are_said() -> None:
    rows = [make_row("datm", [0.2, 0.22], [0.15, 0.17], dataset="cifar10", ipc=10, run_spec={"label_strategy": "hard"})]
    (row,) = [r for r in rep.reported_rows(build_leaderboard(rows)[0]) if r.entry is not None]
    assert row.caveats == ["labels differ (hard measured, soft reported)"]


def test_markdown_section() -> None:
    md = render(cifar_rows(), "md", reported=True, generated="2026-01-02")
    section = md.split("### Reported (published) vs measured", 1)[1].split("\n### ", 1)[0]
    lines = {line.split(" | ")[0].lstrip("| "): line for line in section.splitlines() if line.startswith("| ")}
    assert lines["dm"].startswith("| dm | 0.5100 ± 0.0000 [0.5100, 0.5100] | hard | 0.489 | +2.1 | "
                                  "Guo et al., ICLR 2024 (DATM), Table 1 | ConvNet-3 | hard |")
    assert "| datm | 0.6600 ± 0.0141 [0.5329, 0.7871] | soft | 0.668 | -0.8 |" in lines["datm"]
    assert "| random | 0.5000 ± 0.0000 [0.5000, 0.5000] | hard | 0.310 | +19.0 |" in lines["random"]
    assert lines["mtt"].startswith("| mtt | not measured | - | 0.653 | - | Cazenavette et al., CVPR 2022 (MTT), Table 1")
    assert "never ranked" in section
    assert "Reported (published)" not in render(cifar_rows(), "md", generated="2026-01-02")  # opt-in


def test_csv_columns_and_reported_only_rows() -> None:
    text = render(cifar_rows(), "csv", reported=True, generated="2026-01-02")
    rows = list(csv.DictReader(io.StringIO(text)))
    by = {r["method"]: r for r in rows}
    assert by["dm"]["row_kind"] == "measured" and by["dm"]["rank"] == "2"
    assert float(by["dm"]["reported_acc"]) == 0.489
    assert float(by["dm"]["measured_minus_reported_points"]) == pytest.approx(2.1, abs=1e-9)
    assert (by["dm"]["reported_paper"], by["dm"]["reported_table"], by["dm"]["reported_arch"],
            by["dm"]["reported_label_type"]) == ("Guo et al., ICLR 2024 (DATM)", "Table 1", "ConvNet-3", "hard")
    assert by["mtt"]["row_kind"] == "reported only" and by["mtt"]["rank"] == "" and by["mtt"]["ddrs_mean"] == ""
    assert float(by["mtt"]["reported_acc"]) == 0.653 and by["mtt"]["venue"] == "CVPR 2022"
    assert "row_kind" not in render(cifar_rows(), "csv", generated="2026-01-02")


def test_latex_and_html_sections() -> None:
    tex = render(cifar_rows(), "latex", reported=True, generated="2026-01-02")
    assert "\\label{tab:ddr-cifar10-ipc10-reported}" in tex
    assert "dm & 0.5100 $\\pm$ 0.0000 & hard & 0.489 & +2.1 & Guo et al., ICLR 2024 (DATM), Table 1 & ConvNet-3 & " \
           "hard \\\\" in tex
    assert "mtt & not measured & - & 0.653 & - &" in tex
    page = render(cifar_rows(), "html", reported=True, generated="2026-01-02")
    section = page.split('<div id="reported">', 1)[1]
    assert 'data-method="dm"' in section and '<td class="delta" data-v=2.1' in section
    assert '<td class="reported" data-v="0.489">0.489</td>' in section
    assert 'class="reported-row unmeasured" data-method="mtt"' in section


def test_boards_without_published_numbers_and_pivot() -> None:
    digits = [make_row("dm", [0.1, 0.12], [0.2, 0.22])]
    assert "Reported (published)" not in render(digits, "md", reported=True)
    with pytest.raises(DdrError, match="use it with --layout board"):
        render(cifar_rows(), "md", reported=True, layout="pivot")


def test_cli_leaderboard_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = results_db(tmp_path)
    assert main(["leaderboard", "--db", str(db), "--reported", "--where", "dataset=cifar10"]) == 0
    out = capsys.readouterr().out
    assert "| dm | 0.5100 ± 0.0000 [0.5100, 0.5100] | hard | 0.489 | +2.1 |" in out
    assert main(["leaderboard", "--db", str(db), "--reported", "--layout", "pivot"]) == 2
    assert "use it with --layout board" in capsys.readouterr().err
