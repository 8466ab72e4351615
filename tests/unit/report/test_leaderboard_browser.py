"""The HTML leaderboard in a real browser (headless Chromium): the slider for w recomputes DDRS per
student and re-ranks exactly as the formula says; headers sort.

Skipped when Chromium is not installed (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.results import ddrs, make_row, real_runs

from ddr.report.leaderboard import build_leaderboard
from ddr.report.leaderboard_html import to_html
from ddr.store.results import load_record

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome",
                                                         "google-chrome-stable")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def rows() -> list[dict]:
    synthetic = [make_row("A", [0.05, 0.07], [0.05, 0.07], dataset="synthetic"),
                 make_row("B", [0.30, 0.32], [0.40, 0.42], dataset="synthetic"),
                 make_row("C", [0.10, 0.12, 0.14], [0.20, 0.10, 0.15], dataset="synthetic")]
    return [load_record(r) for r in real_runs()] + synthetic


def _group(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match.group(1)


def dump_dom(page: Path, tmp_path: Path, query: str = "") -> str:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=3000", "--dump-dom", page.resolve().as_uri() + query]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<tbody>" in proc.stdout, proc.stdout[:2000]
    return proc.stdout


def tables(dom: str) -> list[list[dict]]:
    """Per board table: rows with label, rank, DDRS mean/std (full precision) and HLR mean."""
    out = []
    for body in re.findall(r'<table id="board-\d+" class="board">(.*?)</table>', dom, re.S):
        parsed = []
        for tr in re.findall(r"<tr data-label=\"(.*?)\">(.*?)</tr>", body, re.S):
            label, cells = html.unescape(tr[0]), tr[1]
            parsed.append({
                "label": label,
                "rank": int(_group(r'class="rank" data-v="(\d+)"', cells)),
                "ddrs": float(_group(r'class="ddrs" data-v="([^"]+)"', cells)),
                "ddrs_std": float(_group(r'class="ddrs"[^>]*data-std="([^"]+)"', cells)),
                "ddrs_text": _group(r'class="ddrs"[^>]*>([^<]+)<', cells),
                "hlr": float(_group(r'class="hlr" data-v="([^"]+)"', cells)),
            })
        out.append(parsed)
    return out


def expected(w: float) -> list[list[dict]]:
    return [[{"label": e.label, "rank": e.rank, "ddrs": e.ddrs.mean, "ddrs_std": e.ddrs.std} for e in b.entries]
            for b in build_leaderboard(rows(), w)]


def assert_matches(got: list[list[dict]], want: list[list[dict]]) -> None:
    assert [[r["label"] for r in t] for t in got] == [[r["label"] for r in t] for t in want]
    for t_got, t_want in zip(got, want):
        for g, e in zip(t_got, t_want):
            assert g["rank"] == e["rank"]
            assert g["ddrs"] == pytest.approx(e["ddrs"], abs=1e-12)
            assert g["ddrs_std"] == pytest.approx(e["ddrs_std"], abs=1e-12)
            assert g["ddrs_text"] == f"{e['ddrs']:.4f} ± {e['ddrs_std']:.4f}"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "leaderboard.html"
    path.write_text(to_html(build_leaderboard(rows(), 0.5)), encoding="utf-8")
    return path


def with_script(page: Path, tmp_path: Path, script: str) -> Path:
    """A copy of the page with ``script`` run after the page's own (as a user would act)."""
    text = page.read_text(encoding="utf-8").replace("</body>", f"<script>{script}</script></body>")
    out = tmp_path / "acted.html"
    out.write_text(text, encoding="utf-8")
    return out


def test_page_renders_the_python_ranking_at_the_default_w(page: Path, tmp_path: Path) -> None:
    dom = dump_dom(page, tmp_path)
    got = tables(dom)
    assert_matches(got, expected(0.5))
    synthetic = got[-1]
    assert [r["label"] for r in synthetic] == ["B", "C", "A"]
    assert synthetic[0]["ddrs"] == pytest.approx((ddrs(0.30, 0.40, 0.5) + ddrs(0.32, 0.42, 0.5)) / 2, abs=1e-12)
    assert '<b id="w-value">0.50</b>' in dom


def test_query_parameter_w_applies_like_the_slider(page: Path, tmp_path: Path) -> None:
    dom = dump_dom(page, tmp_path, "?w=0.2")
    got = tables(dom)
    assert_matches(got, expected(0.2))
    assert [r["label"] for r in got[-1]] == ["A", "C", "B"]  # the order flips at w = 0.2
    assert got[-1][0]["ddrs"] == pytest.approx((ddrs(0.05, 0.05, 0.2) + ddrs(0.07, 0.07, 0.2)) / 2, abs=1e-12)
    assert '<b id="w-value">0.20</b>' in dom and "α = 0.20·IOR − 0.80·HLR" in dom


def test_moving_the_slider_recomputes_and_reranks(page: Path, tmp_path: Path) -> None:
    acted = with_script(page, tmp_path, "var s = document.getElementById('w'); s.value = '0.9';"
                                        "s.dispatchEvent(new Event('input'));")
    got = tables(dump_dom(acted, tmp_path))
    assert_matches(got, expected(0.9))
    assert got[-1][0]["label"] == "B"
    acted = with_script(page, tmp_path, "var s = document.getElementById('w'); s.value = '0';"
                                        "s.dispatchEvent(new Event('input'));")
    got = tables(dump_dom(acted, tmp_path))
    assert_matches(got, expected(0.0))
    # w = 0: DDRS depends on HLR only
    assert got[-1][0]["ddrs"] == pytest.approx((ddrs(0.05, 0, 0) + ddrs(0.07, 0, 0)) / 2, abs=1e-12)


def test_clicking_a_header_sorts_and_keeps_ranks(page: Path, tmp_path: Path) -> None:
    acted = with_script(page, tmp_path, "document.querySelector('#board-2 th[data-col=hlr]').click();")
    got = tables(dump_dom(acted, tmp_path))
    synthetic = got[-1]
    assert [r["label"] for r in synthetic] == ["A", "C", "B"]  # HLR ascending
    assert [r["rank"] for r in synthetic] == [3, 2, 1]  # ranks still by DDRS at w = 0.5
    assert [r["label"] for r in got[0]] == [r["label"] for r in expected(0.5)[0]]  # other board untouched
    acted = with_script(page, tmp_path, "var th = document.querySelector('#board-2 th[data-col=hlr]');"
                                        "th.click(); th.click();")
    assert [r["label"] for r in tables(dump_dom(acted, tmp_path))[-1]] == ["B", "C", "A"]


def test_screenshot_renders(page: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    shot = tmp_path / "leaderboard.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}",
           "--window-size=1400,1000", f"--screenshot={shot}", page.resolve().as_uri() + "?w=0.3"]
    subprocess.run(cmd, capture_output=True, timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def stat_rows() -> list[dict]:
    """One board whose order changes three times as w moves, where paired students tell A from B and C ties."""
    return [make_row("A", [0.05, 0.07, 0.06, 0.05], [0.05, 0.07, 0.06, 0.06], dataset="stats"),
            make_row("B", [0.30, 0.32, 0.31, 0.30], [0.40, 0.42, 0.41, 0.41], dataset="stats"),
            make_row("C", [0.10, 0.30, 0.05, 0.25], [0.20, 0.05, 0.30, 0.10], dataset="stats")]


def groups_and_segments(dom: str) -> tuple[dict[str, tuple[str, str]], list[str], str, int]:
    """Per label (group letters, rank text); the segment texts; the highlighted one; swap lines."""
    body = re.search(r'<table id="board-0" class="board">(.*?)</table>', dom, re.S)
    assert body is not None
    cells = {}
    for label, row in re.findall(r"<tr data-label=\"(.*?)\">(.*?)</tr>", body.group(1), re.S):
        cells[html.unescape(label)] = (_group(r'<td class="group">([^<]*)<', row),
                                       html.unescape(_group(r'<td class="rank"[^>]*>([^<]*)<', row)))
    box = re.search(r'<p class="wstab" id="wstab-0">(.*?)</p>', dom, re.S)
    assert box is not None
    segments = [html.unescape(t) for t in re.findall(r'<span class="seg[^"]*"[^>]*>([^<]*)</span>', box.group(1))]
    current = re.findall(r'<span class="seg current"[^>]*>([^<]*)</span>', box.group(1))
    swaps = len(re.findall(r'<line [^>]*class="swap"', dom))
    return cells, segments, html.unescape(current[0]) if current else "", swaps


def test_tie_groups_rank_ranges_and_w_stability_follow_the_slider(tmp_path: Path) -> None:
    from ddr.report.ranking import fmt_rank

    page = tmp_path / "stats.html"
    page.write_text(to_html(build_leaderboard(stat_rows(), 0.5)), encoding="utf-8")
    for w, query in ((0.5, ""), (0.2, "?w=0.2"), (0.9, "?w=0.9")):
        (board,) = build_leaderboard(stat_rows(), w)
        cells, segments, current, swaps = groups_and_segments(dump_dom(page, tmp_path, query))
        assert cells == {e.label: (e.group, fmt_rank(e)) for e in board.entries}, w
        want = board.analysis.segments
        assert segments == [f"w ∈ [{s.low:.2f}, {s.high:.2f}]: {' > '.join(s.order)}" for s in want]
        (inside,) = [s for s in want if s.low <= w and (w < s.high or s is want[-1])]
        assert current == f"w ∈ [{inside.low:.2f}, {inside.high:.2f}]: {' > '.join(inside.order)}"
        assert swaps == len(want) - 1 >= 1
    # at w = 0.5 B beats A on every paired student, C cannot be told from either
    (board,) = build_leaderboard(stat_rows(), 0.5)
    assert {e.label: e.group for e in board.entries} == {"B": "a", "C": "ab", "A": "b"}
    # moving the slider re-groups from the page's own per-w tables
    acted = with_script(page, tmp_path, "var s = document.getElementById('w'); s.value = '0.2';"
                                        "s.dispatchEvent(new Event('input'));")
    cells, _, current, _ = groups_and_segments(dump_dom(acted, tmp_path))
    (low,) = build_leaderboard(stat_rows(), 0.2)
    assert cells == {e.label: (e.group, fmt_rank(e)) for e in low.entries}
    assert current.startswith("w ∈ [0.00, ")
