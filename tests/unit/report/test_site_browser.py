"""The static leaderboard site in a real browser (headless Chromium driven over the DevTools
protocol, :mod:`helpers.cdp`): navigation index → cell → method page and back, the w slider
re-scores and re-ranks exactly as :func:`ddr.report.leaderboard.build_leaderboard`, the label and
storage filters hide rows (and keep hiding them when the slider re-renders), and no page requests
anything outside the site's folder (every request the browser makes is recorded).

Skipped when Chromium is not installed (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from helpers.cdp import CHROMIUM, Browser, Page
from helpers.site_data import HARD, SOFT, BuiltSite, built_site

from ddr.report.leaderboard import Board, build_leaderboard

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

ROWS_JS = """Array.prototype.map.call(document.querySelectorAll('#board-0 tbody tr'), function(tr){
  return {label: tr.dataset.label, rank: parseInt(tr.querySelector('td.rank').dataset.v, 10),
          ddrs: parseFloat(tr.querySelector('td.ddrs').dataset.v), group: tr.querySelector('td.group').textContent,
          shown: tr.offsetParent !== null,
          bundle: Array.prototype.map.call(tr.querySelectorAll('td.bundle a'), function(a){ return a.textContent; })};
})"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    return built_site(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def uri(site: BuiltSite, relative: str) -> str:
    return (site.out / relative).resolve().as_uri()


def cifar_board(site: BuiltSite, w: float) -> Board:
    (board,) = [b for b in build_leaderboard(site.rows, w) if b.dataset == "cifar10"]
    return board


def assert_inside(site: BuiltSite, page: Page) -> None:
    """Every request of ``page`` is a file of the site's folder, and nothing failed."""
    root = site.out.resolve()
    assert page.requests
    for url in page.requests:
        parsed = urlparse(url)
        if parsed.scheme == "data":  # inline, nothing is fetched
            continue
        assert parsed.scheme == "file", url
        assert Path(unquote(parsed.path)).resolve().is_relative_to(root), url
    assert page.failures == []


def set_slider(page: Page, w: float) -> None:
    page.evaluate(f"var s = document.getElementById('w'); s.value = '{w}'; s.dispatchEvent(new Event('input')); 1")


def test_navigation_index_cell_method_and_back(site: BuiltSite, browser: Browser) -> None:
    page = browser.page()
    page.goto(uri(site, "index.html"))
    page.click('a.cell-link[href="cells/cifar10-ipc10.html"]')
    page.loaded("cells/cifar10-ipc10.html")
    page.wait_for("document.querySelectorAll('#board-0 tbody tr').length === 4")
    assert page.evaluate("document.querySelector('h1').textContent") == "cifar10, IPC 10"
    page.click('#board-0 td.label a[href="../methods/dm.html"]')  # the method name in the ranked table
    page.loaded("methods/dm.html")
    assert page.evaluate("document.querySelector('h1').textContent") == "dm"
    assert page.evaluate("document.querySelectorAll('img.plot').length") == (4 if site.result.plots else 0)
    assert page.evaluate("Array.prototype.every.call(document.querySelectorAll('img.plot'), "
                         "function(i){ return i.complete && i.naturalWidth > 0; })")
    page.back()
    page.loaded("cells/cifar10-ipc10.html")
    page.wait_for("document.querySelectorAll('#board-0 tbody tr').length === 4")
    page.click("nav.crumbs a")
    page.loaded("index.html")
    page.click('a.method-link[href="methods/rded.html"]')
    page.loaded("methods/rded.html")
    page.click('a[href="../cells/cifar10-ipc10.html"]')
    page.loaded("cells/cifar10-ipc10.html")
    assert_inside(site, page)


def test_the_slider_rescores_and_reranks_as_python_does(site: BuiltSite, browser: Browser) -> None:
    page = browser.page()
    page.goto(uri(site, "cells/cifar10-ipc10.html"))
    for w in (0.5, 0.9, 0.1):
        if w != 0.5:
            set_slider(page, w)
        got = page.evaluate(ROWS_JS)
        want = cifar_board(site, w).entries
        assert [r["label"] for r in got] == [e.label for e in want], w
        assert [r["rank"] for r in got] == [e.rank for e in want]
        assert [r["ddrs"] for r in got] == pytest.approx([e.ddrs.mean for e in want], abs=1e-12)
        assert [r["group"] for r in got] == [e.group for e in cifar_board(site, w).entries]
        assert page.evaluate("document.getElementById('w-value').textContent") == f"{w:.2f}"
    orders = {w: [e.label for e in cifar_board(site, w).entries] for w in (0.1, 0.5, 0.9)}
    assert len({tuple(o) for o in orders.values()}) == 3  # the slider really changes the order here
    # the bundles and method links survive every re-render
    rows = {r["label"]: r for r in page.evaluate(ROWS_JS)}
    assert rows["dm"]["bundle"] == ["dm-cifar10.zip"] and rows["datm"]["bundle"] == []
    assert_inside(site, page)


def test_label_and_storage_filters_hide_rows(site: BuiltSite, browser: Browser) -> None:
    page = browser.page()
    page.goto(uri(site, "cells/cifar10-ipc10.html"))

    def shown() -> set[str]:
        return {r["label"] for r in page.evaluate(ROWS_JS) if r["shown"]}

    assert shown() == set(HARD) | set(SOFT)
    page.evaluate("var f = document.getElementById('f-soft'); f.checked = false; f.dispatchEvent(new Event('change')); 1")
    assert shown() == set(HARD)
    assert page.evaluate("document.getElementById('f-count').textContent") == "showing 2 of 4 entries"
    set_slider(page, 0.9)  # re-rendered rows are filtered again
    assert shown() == set(HARD) and len(page.evaluate(ROWS_JS)) == 4
    page.evaluate("var f = document.getElementById('f-soft'); f.checked = true; f.dispatchEvent(new Event('change'));"
                  "f = document.getElementById('f-hard'); f.checked = false; f.dispatchEvent(new Event('change')); 1")
    assert shown() == set(SOFT)
    page.evaluate("var f = document.getElementById('f-hard'); f.checked = true; f.dispatchEvent(new Event('change'));"
                  "var s = document.getElementById('f-storage'); s.value = String(70 * 1024);"
                  "s.dispatchEvent(new Event('change')); 1")
    assert shown() == {"dm", "random", "datm"}  # rded keeps its 3 MiB teacher
    # ranks are the whole board's
    ranks = {r["label"]: r["rank"] for r in page.evaluate(ROWS_JS)}
    assert ranks == {e.label: e.rank for e in cifar_board(site, 0.9).entries}
    assert_inside(site, page)


def test_no_page_requests_anything_outside_the_folder(site: BuiltSite, browser: Browser) -> None:
    page = browser.page()
    for relative in site.result.pages:
        page.goto(uri(site, relative))
        if relative.startswith("cells/"):
            page.wait_for("document.querySelectorAll('#board-0 tbody tr').length > 0")
    requested = {Path(unquote(urlparse(u).path)).resolve() for u in page.requests if u.startswith("file:")}
    assert {(site.out / p).resolve() for p in site.result.pages} <= requested
    assert (site.out / "assets" / "board.js").resolve() in requested
    assert {(site.out / p).resolve() for p in site.result.plots} <= requested
    assert_inside(site, page)


class _Recorder(BaseHTTPRequestHandler):
    """A static host for the site that is also the browser's proxy: every request the browser
    makes, to any host, arrives here and is logged; only the site's own host is served."""

    root: Path
    log: list[str]

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        self.log.append(self.path)
        url = urlparse(self.path)
        target = (self.root / unquote(url.path).lstrip("/")).resolve()
        if url.netloc not in ("", "ddr-site.test") or not target.is_relative_to(self.root) or not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        kinds = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        self.send_response(200)
        self.send_header("Content-Type", kinds.get(target.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:  # noqa: N802 - an https request to anywhere
        self.log.append(f"CONNECT {self.path}")
        self.send_error(403)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_on_a_static_host_every_request_stays_on_the_site(site: BuiltSite, tmp_path: Path) -> None:
    handler = type("Handler", (_Recorder,), {"root": site.out.resolve(), "log": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    chromium = Browser(tmp_path / "profile", flags=(f"--proxy-server=http://127.0.0.1:{port}",
                                                   "--proxy-bypass-list=<-loopback>"))
    try:
        page = chromium.page()
        for relative in site.result.pages:
            page.goto(f"http://ddr-site.test/{relative}")
            if relative.startswith("cells/"):
                page.wait_for("document.querySelectorAll('#board-0 tbody tr').length > 0")
        page.goto("http://ddr-site.test/cells/cifar10-ipc10.html")
        set_slider(page, 0.2)
        assert page.evaluate("document.getElementById('w-value').textContent") == "0.20"
    finally:
        chromium.close()
        server.shutdown()
    # every request of the pages went to the site's host and named a file of the folder
    fetched = [u for u in page.requests if not u.startswith("data:")]
    assert fetched and all(u.startswith("http://ddr-site.test/") for u in fetched), fetched
    log = handler.log
    assert {f"http://ddr-site.test/{p}" for p in site.result.pages} <= set(log)
    assert [u for u in fetched if not (site.out / unquote(urlparse(u).path).lstrip("/")).is_file()] == []
    # what else reached the proxy is Chromium's own background traffic, never asked for by a page
    others = [p for p in log if not p.startswith("http://ddr-site.test/")]
    assert not set(others) & set(page.requests)
    assert all("google" in p or "gvt1.com" in p for p in others), others
    assert page.failures == []
