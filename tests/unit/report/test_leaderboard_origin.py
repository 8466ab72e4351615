"""The leaderboard's origin marks (docs/leaderboard.md §13): an entry of imported runs reads
``label ✓`` when every imported run was reproduced here, ``label (unverified)`` otherwise, and the
board's note says what the marks mean, in every format; local entries are unmarked."""

from __future__ import annotations

from helpers.results import make_row

from ddr.report.leaderboard import build_leaderboard, render

HLR, IOR = [0.05, 0.06, 0.04], [0.20, 0.25, 0.22]


def rows() -> list[dict]:
    return [make_row("dm", HLR, IOR, run_id="a"),
            make_row("dc", HLR, [0.1, 0.12, 0.11], run_id="b", origin="imported+verified"),
            make_row("herding", [0.1, 0.1, 0.1], [0.1, 0.12, 0.11], run_id="c", origin="imported")]


def test_imported_entries_are_marked_in_every_format_and_local_ones_are_not() -> None:
    (board,) = build_leaderboard(rows())
    labels = {e.method: e.label for e in board.entries}
    assert labels == {"dm": "dm", "dc": "dc ✓", "herding": "herding (unverified)"}
    assert {e.method: e.verification for e in board.entries} == {"dm": "local", "dc": "verified",
                                                                 "herding": "unverified"}
    assert "✓: imported from a result bundle and reproduced here by `ddr verify`" in board.note
    assert "(unverified): imported from a result bundle, not reproduced here" in board.note
    generated = "2026-12-07"
    assert "| dc ✓ |" in render(rows(), "md", generated=generated)
    assert "dc $\\surd$" in render(rows(), "latex", generated=generated)
    assert '"dc \\u2713"' in render(rows(), "html", generated=generated)  # the page's data, shown as ✓
    assert ",herding (unverified)," in render(rows(), "csv", generated=generated)


def test_an_entry_pooling_a_local_and_an_unverified_run_is_unverified() -> None:
    pooled = [make_row("dm", HLR, IOR, run_id="a", seed=0), make_row("dm", HLR, IOR, run_id="b", seed=1,
                                                                     origin="imported")]
    (board,) = build_leaderboard(pooled)
    (entry,) = board.entries
    assert entry.origins == {"local", "imported"} and entry.label == "dm (unverified)"
    only_local = [make_row("dm", HLR, IOR, run_id="a")]
    assert build_leaderboard(only_local)[0].entries[0].label == "dm" and "✓" not in build_leaderboard(
        only_local)[0].note
