"""Issue 26's small things: `ddr list` without a kind, `ddr eval MISSING` before torch, `ddr doctor`'s
torch line, the HTML board's width and provenance, an external set's label."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from helpers.results import make_row

from ddr.report.leaderboard import build_leaderboard, render
from ddr.store.results import external_label


def test_list_without_a_kind_counts_every_kind(ddr_cli: Any) -> None:
    proc = ddr_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert "methods" in proc.stdout and "`ddr list KIND`" in proc.stdout
    counts = json.loads(ddr_cli("list", "--json").stdout)
    assert counts["methods"] >= 5 and set(counts) >= {"datasets", "losses", "protocols"}
    bad = ddr_cli("list", "--exclude", "d*")
    assert bad.returncode == 2 and "needs a kind" in bad.stderr


def test_list_without_a_kind_imports_no_torch() -> None:
    script = textwrap.dedent("""
        import sys
        from ddr.cli.main import main
        assert main(["list"]) == 0
        assert "torch" not in sys.modules, "ddr list imported torch"
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_eval_of_a_missing_path_answers_before_importing_torch(tmp_path: Any) -> None:
    missing = tmp_path / "no-such-set"
    script = textwrap.dedent(f"""
        import sys
        from ddr.cli.main import main
        code = main(["eval", {str(missing)!r}])
        assert "torch" not in sys.modules, "ddr eval MISSING imported torch"
        sys.exit(code)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_reports_the_torch_build(ddr_cli: Any) -> None:
    import torch

    proc = ddr_cli("doctor")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("torch: "))
    assert torch.__version__ in line
    assert ("CPU-only" in line) == (torch.version.cuda is None and getattr(torch.version, "hip", None) is None)
    assert ("GPU usable" in line) == torch.cuda.is_available()


def test_html_board_scrolls_wide_tables_and_names_protocol_and_date() -> None:
    rows = [make_row(m, [0.1, 0.2], [0.2, 0.1]) for m in ("A", "B")]
    page = render(rows, "html", generated="2026-01-02")
    assert ".board-wrap{max-width:100%;overflow-x:auto}" in page and 'wrap.className = "board-wrap"' in page
    assert "generated 2026-01-02" in page and '"Protocol: "' in page
    assert build_leaderboard(rows)  # the board the page shows


def test_external_sets_are_labelled_by_what_they_are() -> None:
    assert external_label({"external_set": {"method": "dm"}}, {"source": "/x/set"}) == "dm (external set)"
    assert external_label({"external_set": {"method": None}}, {"source": "/x/my_set.pt"}) == "my_set (external set)"
    assert external_label({"distilled_sha256": "ab" * 32}, {}) == "abababab" + "ab" + " (external set)"
    assert external_label({}, {}) is None
