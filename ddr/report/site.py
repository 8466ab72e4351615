"""A static leaderboard site: ``ddr site build -o DIR`` writes plain HTML, CSS, JavaScript and SVG
that work opened from the file system (``file://``) and on any static host. Nothing is loaded
from a network: styles and scripts are local files under ``assets/``, data is embedded in each
page, plots are local SVG files; the only outside addresses are the official-code links a
reader may follow.

What it writes (every link relative)::

    DIR/index.html                  the (dataset, IPC) cells and the methods, with downloads
    DIR/cells/<dataset>-ipc<k>.html one board: the ranked table with the w slider (the single-page
                                    board's script, assets/board.js), 95 % intervals, tie groups and
                                    rank ranges (ddr.report.ranking / statistics), filters for hard/soft
                                    labels and storage, published numbers beside the measurements,
                                    cost and storage, pairwise tests, Pareto plot, downloads
    DIR/methods/<method>.html       one method: description and paper, parameters, per cell the
                                    recipe used, scores, provenance, cost and storage, plots, bundles
    DIR/assets/                     ddr.css, board.js, site.js
    DIR/plots/*.svg                 ddr.report.plots as SVG (when matplotlib is installed)
    DIR/bundles/*                   the result bundles behind the rows (--bundles DIR), copied
    DIR/leaderboard.csv, .md        every board, with the published-number columns

Accuracies, HLR, IOR and DDRS are fractions in [0, 1]; a published number's difference to the
measurement is in percentage points (:mod:`ddr.report.reported`). Result bundles are linked from
the rows whose run ids they hold: the run id (64 hex digits) or a run folder's 10-digit suffix in
the bundle's file name, its member names or its small JSON members.

Standard library only (matplotlib for the plots, lazily); never torch.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ddr.errors import ArtifactError, DdrError
from ddr.report.leaderboard import Board, Entry, build_leaderboard, check_protocols, provenance, score_column

SITE_MARKER = ".ddr-site"
"""The file that marks a folder as a site ddr wrote (so a rebuild may replace it)."""
RUN_ID_TOKEN = re.compile(r"(?<![0-9a-f])([0-9a-f]{64}|[0-9a-f]{10})(?![0-9a-f])")
"""A run id (SHA-256 of the run spec, 64 hex digits) or a run folder's suffix (its first 10)."""
JSON_MEMBER_BYTES = 1_000_000
"""Largest JSON member of a bundle read for run ids (bytes)."""

esc = html.escape


# ---------------------------------------------------------------------------------------------
# bundles


@dataclass
class Bundle:
    """A result bundle file and the runs of the site it belongs to."""

    path: Path
    run_ids: set[str] = field(default_factory=set)
    sha256: str = ""
    """SHA-256 of the file's bytes (hex): what ``sha256sum`` prints, for a downloader to check."""
    checked: bool = False
    """Its manifest's member hashes were checked by ``ddr.bundle`` (a ``ddr export`` bundle)."""
    error: str = ""
    """Why it is not linked although it claims to be a ddr bundle (a member fails its hash)."""


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _ddr_bundle(path: Path, names: set[str]) -> Bundle | None:
    """A ``ddr export`` bundle read with :func:`ddr.bundle.manifest.read_manifest` (every member
    checked against its manifest); ``None`` when the file is not one or that reader is absent."""
    if not {"manifest.json", "bundle.json"} <= names:
        return None
    try:
        from ddr.bundle.manifest import read_manifest
    except ImportError:
        return None
    try:
        info = read_manifest(path)
    except Exception as exc:  # noqa: BLE001 - BundleError and whatever a damaged zip raises: not linked, said why
        return Bundle(path, error=str(exc) or type(exc).__name__)
    runs = [r.get("run_id") for r in info.get("runs") or [] if isinstance(r, Mapping)]
    return Bundle(path, {str(r).lower() for r in runs if r}, str(info.get("sha256") or ""), checked=True)


def read_bundle(path: Path, run_ids: Iterable[str]) -> Bundle:
    """The bundle at ``path`` with the run ids among ``run_ids`` it holds: a ``ddr export`` bundle's
    own list (its manifest checked), else any run id (64 hex digits, or a run folder's 10-digit
    suffix when it picks one run id) in the file name, a zip's member names or its small JSON
    members."""
    ids = {str(r).lower() for r in run_ids if r}
    texts = [path.name.lower()]
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()[:100_000]
                known = _ddr_bundle(path, {m.filename for m in members})
                if known is not None:
                    known.run_ids &= ids
                    return known
                for info in members:
                    texts.append(info.filename.lower())
                    if info.filename.endswith(".json") and info.file_size <= JSON_MEMBER_BYTES:
                        try:
                            texts.extend(_strings(json.loads(archive.read(info))))
                        except (ValueError, OSError, zipfile.BadZipFile, RuntimeError):
                            continue
    except (OSError, zipfile.BadZipFile):
        pass
    by_prefix: dict[str, set[str]] = {}
    for run_id in ids:
        by_prefix.setdefault(run_id[:10], set()).add(run_id)
    found: set[str] = set()
    for text in texts:
        for token in RUN_ID_TOKEN.findall(text.lower()):
            if token in ids:
                found.add(token)
            elif len(token) == 10 and len(by_prefix.get(token, ())) == 1:
                found |= by_prefix[token]
    return Bundle(path, found)


def _strings(value: Any, limit: int = 10_000) -> list[str]:
    out: list[str] = []
    stack = [value]
    while stack and len(out) < limit:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def find_bundles(folder: str | Path, run_ids: Iterable[str]) -> tuple[list[Bundle], list[Bundle]]:
    """``(bundles holding some of run_ids, the other files)`` among the regular files directly in
    ``folder`` (hidden files skipped); a :class:`DdrError` when ``folder`` is not a directory."""
    root = Path(folder)
    if not root.is_dir():
        raise DdrError(f"--bundles {folder}: not a directory; give the folder that holds the result bundles "
                       f"(files written by `ddr export`)")
    ids = [str(r) for r in run_ids if r]
    linked: list[Bundle] = []
    other: list[Bundle] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        bundle = read_bundle(path, ids)
        if bundle.run_ids and not bundle.error:
            bundle.sha256 = bundle.sha256 or _sha256(path)
            linked.append(bundle)
        else:
            other.append(bundle)
    return linked, other


# ---------------------------------------------------------------------------------------------
# helpers


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (``dm [iterations=5]`` → ``dm-iterations-5``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.").lower() or "x"


def cell_slug(board: Board) -> str:
    return f"{slug(board.dataset)}-ipc{board.ipc}"


@dataclass
class SiteResult:
    """What :func:`build_site` wrote."""

    out: Path
    pages: list[str] = field(default_factory=list)
    """Every page, relative to :attr:`out` (``index.html``, ``cells/...``, ``methods/...``)."""
    plots: list[str] = field(default_factory=list)
    plots_note: str = ""
    bundles: dict[str, list[str]] = field(default_factory=dict)
    """Bundle file name → the run ids it is linked to."""
    unmatched_bundles: list[str] = field(default_factory=list)
    """Files of the bundle folder that hold no run of the site (or were refused: ``name (why)``)."""

    def summary(self) -> str:
        cells = sum(p.startswith("cells/") for p in self.pages)
        methods = sum(p.startswith("methods/") for p in self.pages)
        text = (f"wrote {self.out}: index.html, {cells} cell page(s), {methods} method page(s), "
                f"{len(self.plots)} plot(s), {len(self.bundles)} bundle(s) linked")
        if self.unmatched_bundles:
            text += f"; not linked: {', '.join(self.unmatched_bundles)}"
        if self.plots_note:
            text += f"; {self.plots_note}"
        return text


def _specs() -> dict[str, Any]:
    """Installed method specs by name and alias (empty when none can be listed)."""
    try:
        from ddr.plugin.manager import PluginSystem

        specs = PluginSystem().methods().list()
    except Exception:  # noqa: BLE001 - records made elsewhere need no installed plugin
        return {}
    out: dict[str, Any] = {}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            out.setdefault(name, spec)
    return out


def _json_script(element_id: str, data: Any) -> str:
    payload = json.dumps(data, allow_nan=False, default=str).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{payload}</script>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", raw: bool = False) -> str:
    """An HTML table of text cells (escaped unless ``raw``: cells already HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="board-wrap"><table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _page(title: str, body: str, *, depth: int, crumbs: Sequence[tuple[str, str | None]],
          scripts: Sequence[str] = ()) -> str:
    up = "../" * depth
    nav = " › ".join(f'<a href="{esc(href)}">{esc(text)}</a>' if href else f"<span>{esc(text)}</span>"
                     for text, href in crumbs)
    tags = "".join(f'<script src="{up}assets/{name}"></script>' for name in scripts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<link rel="icon" href="data:,">'  # no icon: a browser on a static host asks for none
            f'<link rel="stylesheet" href="{up}assets/ddr.css"></head>\n<body>\n'
            f'<nav class="crumbs">{nav}</nav>\n{body}\n{tags}\n</body></html>\n')


SITE_CSS = """
nav.crumbs{font-size:.9em;margin-bottom:1em;color:#555}nav.crumbs a{color:#1a4f9c}
a{color:#1a4f9c}.filters{margin:.6em 0 1em;font-size:.95em}.filters label{margin-right:1.2em}
tr.filtered{display:none}td.bundle,td.label{text-align:left}td.bundle a{margin-right:.4em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em;max-width:70em}
dl.facts dt{font-weight:bold;color:#444}dl.facts dd{margin:0}
pre.recipe{background:#f7f7f7;padding:.6em;font-size:.8em;max-height:24em;overflow:auto}
img.plot{max-width:100%;border:1px solid #ddd;margin:.4em 0}section.entry{border-top:1px solid #ddd;margin-top:1.4em}
.muted{color:#777}
table.cells td,table.methods td,table.params td,table.runs td,table.pairs td:nth-child(-n+2),table.pairs td:nth-child(4),
table.cost td:first-child,table.scores td:first-child{text-align:left}table.params td:last-child{white-space:normal}
"""

SITE_JS = r"""
(function(){
"use strict";
var SITE = JSON.parse(document.getElementById("ddr-site").textContent);
var table = document.getElementById("board-0");
if(!table) return;
var hard = document.getElementById("f-hard"), soft = document.getElementById("f-soft");
var storage = document.getElementById("f-storage"), count = document.getElementById("f-count");
function decorate(){
  var head = table.tHead.rows[0];
  if(!head.querySelector('th[data-col="bundle"]')){
    var th = document.createElement("th"); th.dataset.col = "bundle"; th.textContent = "bundle"; head.appendChild(th); }
  var max = storage && storage.value !== "" ? parseFloat(storage.value) : NaN, shown = 0, total = 0;
  Array.prototype.forEach.call(table.tBodies[0].rows, function(tr){
    var info = SITE.entries[tr.dataset.label] || {};
    var cell = tr.querySelector("td.label");
    if(cell && info.href && !cell.querySelector("a")){
      var a = document.createElement("a"); a.href = info.href; a.textContent = cell.textContent;
      cell.textContent = ""; cell.appendChild(a); }
    if(!tr.querySelector("td.bundle")){
      var td = document.createElement("td"); td.className = "bundle";
      (info.bundles || []).forEach(function(b){ var l = document.createElement("a"); l.href = b.href;
        l.textContent = b.name; l.setAttribute("download", ""); td.appendChild(l); });
      if(!(info.bundles || []).length) td.textContent = "-";
      tr.appendChild(td); }
    var kind = info.labels, okLabels = kind === "hard" ? hard.checked : kind === "soft" ? soft.checked : true;
    var okStorage = isNaN(max) || info.storage === null || info.storage === undefined || info.storage <= max;
    var hide = !(okLabels && okStorage);
    tr.classList.toggle("filtered", hide); total += 1; if(!hide) shown += 1;
  });
  if(count) count.textContent = "showing " + shown + " of " + total + " entries";
}
new MutationObserver(decorate).observe(table.tBodies[0], {childList: true});
[hard, soft, storage].forEach(function(el){ if(el) el.addEventListener("change", decorate); });
decorate();
window.ddrSite = {data: SITE, decorate: decorate};
})();
"""


# ---------------------------------------------------------------------------------------------
# the site


class _Site:
    def __init__(self, rows: list[dict[str, Any]], boards: list[Board], out: Path, *, reported: bool,
                 generated: str | None, title: str) -> None:
        self.rows = {str(r.get("run_id") or ""): r for r in rows}
        self.boards = boards
        self.out = out
        self.reported = reported
        self.generated = generated
        self.title = title
        self.specs = _specs()
        self.bundles: dict[str, list[str]] = {}  # run id -> bundle file names (under bundles/)
        self.hashes: dict[str, str] = {}  # bundle file name -> sha256 of its bytes
        self.plots: dict[str, str] = {}  # plot key -> file name under plots/
        self.method_slugs: dict[str, str] = {}
        self.cell_names: dict[tuple[str, int], str] = {}
        for board in boards:
            self.cell_names[(board.dataset, board.ipc)] = _unique(cell_slug(board), self.cell_names.values())
        for board in boards:
            for e in board.entries:
                if e.method not in self.method_slugs:
                    self.method_slugs[e.method] = _unique(slug(e.method), self.method_slugs.values())

    # -- links ---------------------------------------------------------------------------------
    def method_href(self, method: str, depth: int = 1) -> str | None:
        name = self.method_slugs.get(method)
        return None if name is None else f"{'../' * depth}methods/{name}.html"

    def cell_href(self, board: Board, depth: int = 1) -> str:
        return f"{'../' * depth}cells/{self.cell_names[(board.dataset, board.ipc)]}.html"

    def entry_bundles(self, e: Entry, depth: int = 1) -> list[dict[str, str]]:
        names = list(dict.fromkeys(n for run_id in e.run_ids for n in self.bundles.get(run_id, [])))
        return [{"name": n, "href": f"{'../' * depth}bundles/{quote(n)}", "sha256": self.hashes.get(n, "")} for n in names]

    def plot_img(self, key: str, alt: str, depth: int = 1) -> str:
        name = self.plots.get(key)
        if not name:
            return ""
        return f'<img class="plot" src="{"../" * depth}plots/{esc(name)}" alt="{esc(alt)}">'

    # -- plots ---------------------------------------------------------------------------------
    def make_plots(self) -> str:
        """SVG plots under ``plots/``; returns a note when they cannot be made."""
        try:
            from ddr.report import plots as pl
        except ImportError:  # pragma: no cover - plots.py imports matplotlib lazily
            return "plots skipped"
        try:
            pl._pyplot()
        except DdrError:
            return f"plots skipped: matplotlib is not installed ({pl.INSTALL_HINT})"
        style = pl.PlotStyle("svg")
        folder = self.out / "plots"
        for path in pl.plot_accuracy_vs_ipc(self.boards, folder, style=style):
            self.plots[path.stem] = path.name
        for path in pl.plot_hlr_ior(self.boards, folder, self.boards[0].w, style):
            self.plots[path.stem] = path.name
        for path in pl.plot_pareto(self.boards, folder, style):
            self.plots[path.stem] = path.name
        return ""

    # -- pages ---------------------------------------------------------------------------------
    def write(self, relative: str, text: str) -> str:
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return relative

    def index(self) -> str:
        from ddr.report.methods import method_info
        from ddr.report.reported import reported_rows
        from ddr.report.tabular import fmt_num

        cells = []
        for b in self.boards:
            top = b.entries[0] if b.entries else None
            first = [e.label for e in b.entries if "a" in (e.group or "")]
            published = len(reported_rows(b)) if self.reported else 0
            cells.append([f'<a href="{self.cell_href(b, 0)}">{esc(b.dataset)}</a>', str(b.ipc),
                          esc("; ".join(b.protocols)), str(len(b.entries)),
                          esc(f"{top.label} ({fmt_num(top.ddrs.mean)})") if top else "-",
                          esc(", ".join(first) or "-"), str(published) if self.reported else "-",
                          f'<a class="cell-link" href="{self.cell_href(b, 0)}">open</a>'])
        methods = []
        for method, name in sorted(self.method_slugs.items()):
            info = method_info(method)
            where = [b for b in self.boards if any(e.method == method for e in b.entries)]
            methods.append([f'<a class="method-link" href="methods/{esc(name)}.html">{esc(method)}</a>',
                            esc(info.venue_text), esc(info.label_type or "-"),
                            ", ".join(f'<a href="{self.cell_href(b, 0)}">{esc(b.title)}</a>' for b in where)])
        score = score_column()
        body = (f"<h1>{esc(self.title)}</h1>\n<p class=\"prov\">{esc(provenance(self.generated))}</p>\n"
                f"<p>Each (dataset, IPC) cell ranks the evaluated recipes by {esc(score.label)} at "
                f"w = {self.boards[0].w:.2f} (a slider on each cell page changes w). Accuracies, HLR, IOR and "
                f"DDRS are fractions in [0, 1]; every number carries a 95 % interval, and entries sharing a "
                f"tie-group letter cannot be told apart. Published numbers, when shown, sit beside the "
                f"measurements and are never ranked.</p>\n"
                f"<h2>Cells</h2>\n"
                + _table(["dataset", "IPC", "protocol", "entries", f"first by mean {score.label}",
                          "group a (not told apart from the first)", "published numbers", "page"], cells,
                         "cells", raw=True)
                + "\n<h2>Methods</h2>\n"
                + _table(["method", "venue", "labels (paper)", "cells"], methods, "methods", raw=True)
                + "\n<h2>Downloads</h2>\n<ul>"
                  '<li><a href="leaderboard.csv" download>leaderboard.csv</a>: every board, one row per entry'
                  + (" and per published number" if self.reported else "") + "</li>"
                  '<li><a href="leaderboard.md" download>leaderboard.md</a>: every board in Markdown</li>'
                + "".join(f'<li><a href="bundles/{esc(quote(n))}" download>{esc(n)}</a>: result bundle</li>'
                          for n in sorted({n for names in self.bundles.values() for n in names}))
                + "</ul>")
        return self.write("index.html", _page(self.title, body, depth=0, crumbs=[(self.title, None)]))

    def cell(self, board: Board) -> str:
        from ddr.report.columns import column
        from ddr.report.coresets import coreset_html
        from ddr.report.leaderboard_html import html_data
        from ddr.report.leaderboard_text import COST_HEADERS, _comparison_rows, _cost_cells, pareto, to_csv, to_markdown
        from ddr.report.methods import label_type
        from ddr.report.reported import reported_html
        from ddr.report.tabular import fmt_bytes

        name = self.cell_names[(board.dataset, board.ipc)]
        self.write(f"cells/{name}.csv", to_csv([board], self.generated, self.reported))
        markdown = self.write(f"cells/{name}.md", to_markdown([board], self.generated, self.reported))
        score = score_column()
        storages = sorted({e.storage_bytes for e in board.entries if e.storage_bytes is not None})
        options = '<option value="">any</option>' + "".join(
            f'<option value="{s}">≤ {esc(fmt_bytes(s))}</option>' for s in storages)
        labels = {label_type(e.method, e.recipe) for e in board.entries}
        fronts = {"cost": pareto(board.entries, "distill_wall_seconds"), "storage": pareto(board.entries, "storage")}
        published = reported_html(board, method_href=lambda m: self.method_href(m)) if self.reported else ""
        comparisons = _comparison_rows(board)
        bundles = [b for e in board.entries for b in self.entry_bundles(e)]
        site = {"entries": {e.label: {"href": self.method_href(e.method), "labels": label_type(e.method, e.recipe),
                                      "storage": e.storage_bytes, "bundles": self.entry_bundles(e),
                                      "runs": e.run_ids} for e in board.entries}}
        body = (f"<h1>{esc(board.title)}</h1>\n<p class=\"prov\">{esc(provenance(self.generated))}</p>\n"
                f"<p>Ranked by {esc(score.label)}; accuracies are fractions in [0, 1]; HLR "
                f"{esc(column('hlr').direction_words)}, IOR {esc(column('ior').direction_words)}. Cells read mean ± "
                f"sample std [95 % interval: t over students for one distillation, hierarchical bootstrap for several]. "
                f"Entries sharing a group letter cannot be told apart (pairwise t tests, Holm-adjusted, α = 0.05); "
                f"rank gives the range of ranks those tests allow. The slider recomputes DDRS per student; tie groups "
                f"and rank ranges follow it.</p>\n"
                f'<p class="formula">{esc(column("hlr").formula)} &nbsp; {esc(column("ior").formula)}<br>'
                f'{esc(score.formula)} &nbsp;&nbsp; (now: <span id="w-formula"></span>)</p>\n'
                f'<div class="controls"><label for="w">w (weight of IOR) = <b id="w-value">{board.w:.2f}</b></label>'
                f'<input type="range" id="w" min="0" max="1" step="0.05" value="{board.w}">'
                f'<span id="w-groups"></span></div>\n'
                f'<div class="filters">Show: <label><input type="checkbox" id="f-hard" checked> hard labels</label>'
                f'<label><input type="checkbox" id="f-soft" checked> soft labels</label>'
                f'<label>storage <select id="f-storage">{options}</select></label>'
                f'<span id="f-count" class="muted"></span><br><span class="muted">Filters hide rows only: ranks, '
                f'groups and intervals are those of the whole board. Labels here: '
                f'{esc(", ".join(sorted(labels)))}.</span></div>\n'
                f'<div id="boards"></div>\n{coreset_html(board)}\n{published}\n'
                f"<h2>Cost and storage</h2>\n"
                + _table(COST_HEADERS, [_cost_cells(e, fronts) for e in board.entries], "cost")
                + "<p class=\"note\">Per distillation, mean over distillations; FLOPs are an estimate; storage is what "
                  "a user must keep to train the students again.</p>\n"
                + self.plot_img(f"pareto_{slug_plot(board.dataset)}_ipc{board.ipc}", f"{board.title}: score against cost")
                + ("<h2>Pairwise comparisons</h2>\n"
                   + _table(["A", "B", "Δ DDRS (A − B)", "test", "p", "p (Holm)", "different"], comparisons,
                            "pairs") if comparisons else "")
                + "\n<h2>Downloads</h2>\n<ul>"
                + f'<li><a href="{name}.csv" download>{name}.csv</a> (this board'
                + (", with the published numbers" if published else "") + ")</li>"
                + f'<li><a href="{name}.md" download>{name}.md</a></li>'
                + "".join(f'<li><a href="{esc(b["href"])}" download>{esc(b["name"])}</a>: result bundle</li>'
                          for b in {b["name"]: b for b in bundles}.values())
                + "</ul>\n"
                + f"<noscript><pre>{esc((self.out / markdown).read_text(encoding='utf-8'))}</pre></noscript>\n"
                + _json_script("ddr-data", html_data([board], self.generated))
                + _json_script("ddr-site", site))
        return self.write(f"cells/{name}.html", _page(
            f"{board.title} · {self.title}", body, depth=1,
            crumbs=[(self.title, "../index.html"), (board.title, None)], scripts=("board.js", "site.js")))

    def method(self, method: str, name: str) -> str:
        from ddr.report.methods import label_type, method_info
        from ddr.report.reported import reported_rows

        info = method_info(method)
        spec = self.specs.get(method)
        facts: list[tuple[str, str]] = []
        if spec is not None and spec.summary:
            facts.append(("summary", esc(spec.summary)))
        if info.paper:
            facts.append(("paper", esc(info.paper)))
        if info.venue_text != "-":
            facts.append(("venue", esc(info.venue_text)))
        if info.code:
            facts.append(("official code", f'<a href="{esc(info.code)}" rel="noopener">{esc(info.code)}</a>'))
        if info.label_type:
            facts.append(("labels (paper)", esc(info.label_type)))
        if spec is not None:
            facts += [("label strategy", esc(spec.label_strategy)), ("default protocol", esc(spec.protocol)),
                      ("provider", esc(f"{spec.provider or '-'} · version {spec.version}"))]
        else:
            facts.append(("installed here", "no: the description comes from the records alone"))
        body = [f"<h1>{esc(method)}</h1>", f'<p class="prov">{esc(provenance(self.generated))}</p>',
                _facts(facts)]
        params = list(getattr(spec, "params", ()) or ())
        if params:
            body += ["<h2>Parameters</h2>", _table(["name", "type", "default", "description"],
                                                    [[p.name, p.type, json.dumps(p.default), p.doc] for p in params],
                                                    "params")]
        elif spec is not None and spec.defaults:
            body += ["<h2>Parameters</h2>", _table(["name", "default"], [[k, json.dumps(v, default=str)]
                                                                        for k, v in spec.defaults.items()], "params")]
        datasets = []
        for board in self.boards:
            entries = [e for e in board.entries if e.method == method]
            if not entries:
                continue
            datasets.append(board.dataset)
            published = {id(r.entry): r for r in reported_rows(board, unmeasured=False)} if self.reported else {}
            body.append(f'<h2><a href="{self.cell_href(board)}">{esc(board.title)}</a></h2>')
            recipe = spec.recipe_for(board.dataset, board.ipc) if spec is not None else None
            if recipe is not None:
                body.append(f'<p>Authors\' recipe for this cell ({esc(recipe.name)}): {esc(recipe.summary())}. '
                            f'<span class="muted">Source: {esc(recipe.source)}</span></p>')
            for e in entries:
                body.append(self.entry_section(board, e, published.get(id(e)), label_type(e.method, e.recipe)))
        plots = [self.plot_img(f"{kind}_{slug_plot(d)}", f"{d}: {kind}") for d in dict.fromkeys(datasets)
                 for kind in ("accuracy_vs_ipc", "hlr_vs_ior")]
        if any(plots):
            body += ["<h2>Plots</h2>", '<p class="muted">Every method of the dataset, this one among them '
                     "(ddr plot); accuracies are fractions.</p>", *plots]
        return self.write(f"methods/{name}.html", _page(
            f"{method} · {self.title}", "\n".join(body), depth=1,
            crumbs=[(self.title, "../index.html"), (method, None)]))

    def entry_section(self, board: Board, e: Entry, published: Any, labels: str) -> str:
        from ddr.report.leaderboard_text import fmt_count, fmt_estimate, fmt_flops
        from ddr.report.ranking import fmt_rank
        from ddr.report.reported import fmt_delta
        from ddr.report.tabular import fmt_bytes, fmt_seconds

        scores = [[score_column().header, fmt_estimate(e.ddrs)], ["HLR", fmt_estimate(e.hlr)],
                  ["IOR", fmt_estimate(e.ior)],
                  *([name, fmt_estimate(e.estimate(name))] for name in
                    ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any")),
                  ["rank (range) · group", f"{fmt_rank(e)} · {e.group or '-'}"],
                  ["vs random", e.verdict.short if e.verdict is not None else "-"],
                  ["distillations × students", f"{e.n_distillations} × {e.n_students // max(1, e.n_distillations)}"]]
        if published is not None:
            n = published.number
            scores.append(["reported (published)", f"{n.value:.3f} ({n.source}; {n.arch or '-'}, "
                                                   f"{n.label_type or '-'} labels); measured − reported "
                                                   f"{fmt_delta(published.delta_points)} points"])
        params = e.method_params or {}
        recipe_facts = [("entry", esc(e.label)), ("student architecture", esc(e.arch or "-")),
                        ("protocol", esc(e.protocol)), ("labels", esc(labels)),
                        ("method parameters", esc(", ".join(f"{k}={json.dumps(v, default=str)}"
                                                            for k, v in sorted(params.items())) or "defaults"))]
        if e.budget_note:
            recipe_facts.append(("budget", esc(e.budget_note)))
        cost = [("distill wall", fmt_seconds(e.cost("distill_wall_seconds"))),
                ("distill CPU", fmt_seconds(e.cost("distill_cpu_seconds"))),
                ("distill GPU", fmt_seconds(e.cost("distill_gpu_seconds"))),
                ("peak memory", fmt_bytes(e.cost("distill_peak_memory_bytes"))),
                ("FLOPs (est.)", fmt_flops(e.cost("distill_flops_estimate"))),
                ("teacher images", fmt_count(e.cost("teacher_forward_images"))),
                ("eval wall", fmt_seconds(e.cost("eval_wall_seconds"))), ("storage", fmt_bytes(e.storage_bytes))]
        parts = [k[len("storage_"):] for d in e.distillations.values() for k, v in d.cost.items()
                 if k.startswith("storage_") and k != "storage_total"
                 and isinstance(v, (int, float)) and not isinstance(v, bool)]  # not storage_note (text)
        for part in dict.fromkeys(parts):
            cost.append((f"storage: {part}", fmt_bytes(e.cost(f"storage_{part}"))))
        runs = []
        for run_id in e.run_ids:
            row = self.rows.get(run_id, {})
            env = _mapping(row.get("env"))
            ddr_env, packages, spec = _mapping(env.get("ddr")), _mapping(env.get("packages")), _mapping(row.get("run_spec"))
            where = _mapping(row.get("provenance"))
            origin = esc(str(row.get("origin") or "-"))
            if where:
                origin = (f'<span title="{esc(json.dumps(where, sort_keys=True, default=str))}">{origin}</span>')
            commit = str(ddr_env.get("git_commit") or "")[:10] + (" (dirty)" if ddr_env.get("git_dirty") else "")
            links = " ".join(f'<a href="../bundles/{esc(quote(n))}" download>{esc(n)}</a>'
                             for n in self.bundles.get(run_id, []))
            runs.append([esc(run_id[:12]), esc(str(row.get("seed", "-"))), esc(str(row.get("distilled_sha256") or "-")[:12]),
                         esc(str(row.get("created") or "-")),
                         esc(f"ddr {ddr_env.get('version', '?')}" + (f" @{commit}" if commit.strip() else "")),
                         esc(str(packages.get("torch", "-"))), esc(str(spec.get("device") or "-")),
                         origin, links or "-"])
        return (f'<section class="entry" data-label="{esc(e.label)}"><h3>{esc(e.label)}</h3>'
                f"<h4>Scores</h4>" + _table(["quantity", "value (fraction; mean ± sd [95 % interval])"], scores, "scores")
                + "<h4>Recipe used</h4>" + _facts(recipe_facts)
                + f'<details><summary>the full resolved recipe (run spec without seeds)</summary><pre class="recipe">'
                  f"{esc(json.dumps(e.recipe, indent=2, sort_keys=True, default=str))}</pre></details>"
                + "<h4>Cost and storage</h4>" + _facts([(k, esc(v)) for k, v in cost])
                + "<h4>Provenance</h4>"
                + _table(["run", "seed", "distilled set", "created", "ddr", "torch", "device", "origin", "bundle"],
                         runs, "runs", raw=True)
                + "</section>")

    def copy_bundles(self, bundles: Sequence[Bundle]) -> dict[str, list[str]]:
        """Copy ``bundles`` under ``bundles/`` and link each from its runs; file name → run ids."""
        by_id = {run_id.lower(): run_id for run_id in self.rows}
        linked: dict[str, list[str]] = {}
        for bundle in bundles:
            name = bundle.path.name
            shutil.copyfile(bundle.path, self.out / "bundles" / name)
            self.hashes[name] = bundle.sha256
            for run_id in sorted(bundle.run_ids):
                original = by_id.get(run_id, run_id)
                self.bundles.setdefault(original, []).append(name)
                linked.setdefault(name, []).append(original)
        return linked


def _unique(name: str, taken: Iterable[str]) -> str:
    """``name``, or ``name-2``, ``name-3`` ... when it is taken (two names with one slug)."""
    used = set(taken)
    out, k = name, 2
    while out in used:
        out, k = f"{name}-{k}", k + 1
    return out


def slug_plot(dataset: str) -> str:
    """The dataset part of a plot file name, as :mod:`ddr.report.plots` writes it."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("_") or "plot"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _facts(items: Sequence[tuple[str, str]]) -> str:
    """A definition list of (term, HTML) pairs."""
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DdrError(f"-o {out}: a file, not a folder; give a folder for the site (it is created when missing)")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).exists():
        raise DdrError(f"-o {out}: the folder is not empty and holds no site ddr wrote ({SITE_MARKER} is missing); "
                       f"give an empty or new folder, so nothing of yours is replaced")


def build_site(rows: Iterable[Mapping[str, Any]], out_dir: str | Path, *, w: float = 0.5,
               bundles: str | Path | None = None, reported: bool = True, plots: bool = True, mixed: bool = False,
               title: str = "ddr leaderboard", generated: str | None = None) -> SiteResult:
    """Write the static site of ``rows`` (result rows as :meth:`ddr.store.results.ResultsDB.query`
    returns them) into ``out_dir``: built in a sibling folder and moved into place, so ``out_dir`` is
    the old site or the new one, never half of each. ``w`` is the DDRS weight the pages open at;
    ``bundles`` a folder of result bundles to link from the rows whose run ids they hold;
    ``reported`` sets the methods' published numbers beside the measurements; ``plots`` writes SVG
    plots (matplotlib). ``out_dir`` must be new, empty or an earlier site."""
    records = [dict(r) for r in rows]
    if not records:
        raise DdrError("no runs to put on the site; import run folders with `ddr results import DIR` "
                       "(or loosen --suite/--where)")
    out = Path(out_dir)
    _check_out(out)
    found: list[Bundle] = []
    unmatched: list[Bundle] = []
    if bundles is not None:
        found, unmatched = find_bundles(bundles, [str(r.get("run_id") or "") for r in records])
    boards = build_leaderboard(records, w)
    check_protocols(boards, mixed)
    from ddr.store.writable import check_directory

    parent = out.resolve().parent
    check_directory(parent, what="the site", choose="choose a writable folder with -o DIR")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        for sub in ("assets", "cells", "methods", "plots", "bundles"):
            (stage / sub).mkdir()
        site = _Site(records, boards, stage, reported=reported, generated=generated, title=title)
        result = SiteResult(out)
        result.bundles = site.copy_bundles(found)
        result.unmatched_bundles = [b.path.name + (f" (refused: {b.error})" if b.error else "") for b in unmatched]
        if plots:
            result.plots_note = site.make_plots()
            result.plots = sorted(f"plots/{n}" for n in site.plots.values())
        from ddr.report.leaderboard_html import _CSS, _JS
        from ddr.report.leaderboard_text import to_csv, to_markdown

        site.write("assets/ddr.css", _CSS + SITE_CSS)
        site.write("assets/board.js", _JS)
        site.write("assets/site.js", SITE_JS)
        site.write("leaderboard.csv", to_csv(boards, generated, reported))
        site.write("leaderboard.md", to_markdown(boards, generated, reported))
        result.pages.append(site.index())
        result.pages += [site.cell(b) for b in boards]
        result.pages += [site.method(m, n) for m, n in sorted(site.method_slugs.items())]
        (stage / SITE_MARKER).write_text(f"{provenance(generated)}\n", encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.replace(out, old / "site")
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out)
    except OSError as exc:
        from ddr.store.writable import fix_for, reason

        raise ArtifactError(f"cannot write the site to {out}: {reason(exc)}; "
                            f"{fix_for(exc, parent, 'choose a writable folder with -o DIR')}") from None
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return result
