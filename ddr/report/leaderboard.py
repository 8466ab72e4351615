"""Leaderboards: methods ranked by DDRS per (dataset, IPC), as Markdown, CSV or one static HTML page.

Input rows are dicts shaped like :meth:`ddr.store.results.ResultsDB.query` returns (``method``,
``dataset``, ``ipc``, ``metrics`` with the per-student ``values`` of ``hlr``, ``ior`` and the four
accuracies; optional ``arch``, ``method_params``, ``distill_seed``/``seed``, ``image_bytes``,
``soft_label_bytes``, ``distill_seconds``, ``run_id``).

DDRS is recomputed for any weight ``w`` from each student's HLR and IOR
(``α = w·IOR − (1−w)·HLR``, ``DDRS = (e^α − e^−1)/(e − e^−1)``), then averaged: mean ± sample
std (ddof=1; 0 for one value). When a method has several distillation seeds at one
(dataset, IPC), the students of all its distillations are pooled and the table says so.

This module imports only the standard library (and ddr.errors / ddr.report.tabular); never torch.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ddr.errors import ArtifactError, DdrError
from ddr.report.tabular import csv_text, fmt_bytes, fmt_num, fmt_pm, fmt_seconds, markdown_table

ACCURACIES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any")
FORMATS = ("md", "csv", "html")
FORMULA = "α = w·IOR − (1−w)·HLR;  DDRS = (e^α − e^−1) / (e − e^−1)"

_E_INV = math.exp(-1.0)
_SPAN = math.e - _E_INV


def ddrs_value(hlr: float, ior: float, w: float = 0.5) -> float:
    """DDRS of one student: ``(e^α − e^−1)/(e − e^−1)`` with ``α = w·IOR − (1−w)·HLR`` clipped to
    [−1, 1] (clipping only absorbs float rounding; same arithmetic as ddr.protocol.metrics.ddrs)."""
    alpha = w * ior - (1.0 - w) * hlr
    alpha = min(1.0, max(-1.0, alpha))
    return (math.exp(alpha) - _E_INV) / _SPAN


def check_w(w: Any) -> float:
    try:
        value = float(w)
    except (TypeError, ValueError):
        raise DdrError(f"w must be a number in [0, 1], got {w!r}") from None
    if not (0.0 <= value <= 1.0):
        raise DdrError(f"w must be in [0, 1] (the weight of IOR against HLR), got {w!r}")
    return value


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; 0.0 for one value) of ``n`` values."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat":
        values = [float(v) for v in values if v is not None]
        n = len(values)
        if n == 0:
            return cls(None, None, 0)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, std, n)


@dataclass
class Entry:
    """One method (with its parameters and student architecture) at one (dataset, IPC)."""

    method: str
    method_params: dict[str, Any]
    arch: str | None
    label: str = ""
    base_label: str = ""
    run_ids: list[str] = field(default_factory=list)
    seeds: list[Any] = field(default_factory=list)
    hlr_values: list[float] = field(default_factory=list)
    ior_values: list[float] = field(default_factory=list)
    acc_values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in ACCURACIES})
    image_bytes: list[int] = field(default_factory=list)
    soft_label_bytes: list[int] = field(default_factory=list)
    distill_seconds: list[float] = field(default_factory=list)
    protocols: set[str] = field(default_factory=set)
    rank: int = 0
    ddrs: Stat = Stat(None, None, 0)

    @property
    def n_students(self) -> int:
        return len(self.hlr_values)

    @property
    def n_distillations(self) -> int:
        return len(self.run_ids)

    @property
    def hlr(self) -> Stat:
        return Stat.of(self.hlr_values)

    @property
    def ior(self) -> Stat:
        return Stat.of(self.ior_values)

    def acc(self, name: str) -> Stat:
        return Stat.of(self.acc_values[name])

    @property
    def storage_bytes(self) -> int | None:
        if not self.image_bytes:
            return None
        soft = max(self.soft_label_bytes) if self.soft_label_bytes else 0
        return max(self.image_bytes) + soft

    @property
    def distill_time(self) -> float | None:
        return Stat.of(self.distill_seconds).mean

    def ddrs_at(self, w: float) -> Stat:
        return Stat.of([ddrs_value(h, i, w) for h, i in zip(self.hlr_values, self.ior_values)])


@dataclass
class Board:
    """The ranked entries of one (dataset, IPC)."""

    dataset: str
    ipc: int
    w: float
    entries: list[Entry]

    @property
    def title(self) -> str:
        return f"{self.dataset}, IPC {self.ipc}"

    @property
    def note(self) -> str:
        pooled = [e for e in self.entries if e.n_distillations > 1]
        single = [e for e in self.entries if e.n_distillations <= 1]
        parts = []
        if pooled:
            names = ", ".join(f"{e.label} ({e.n_distillations} distillations)" for e in pooled)
            parts.append(f"± pools distillation seeds × students (sample std over all of them) for {names}")
        if single:
            who = "every method" if not pooled else ", ".join(e.label for e in single)
            parts.append(f"± covers students only (one distillation; distillation-seed variance not "
                         f"included) for {who}")
        archs = sorted({e.arch for e in self.entries if e.arch})
        if len(archs) > 1:
            parts.append(f"several student architectures ({', '.join(archs)}): an entry's scores use its own "
                         f"architecture's real-data and random-subset students")
        protocols = sorted({p for e in self.entries for p in e.protocols})
        if len(protocols) > 1:
            parts.append(f"WARNING: mixed protocols {', '.join(protocols)}; scores are not comparable")
        return "; ".join(parts) + "."


def _summary_values(row: Mapping[str, Any], key: str, where: str) -> list[float]:
    metrics = row.get("metrics")
    if not isinstance(metrics, Mapping):
        raise ArtifactError(f"{where} has no 'metrics' object")
    summary = metrics.get(key)
    if not isinstance(summary, Mapping) or "values" not in summary:
        raise ArtifactError(f"{where}: metrics has no '{key}.values' (per-student values)")
    values = summary["values"]
    if not isinstance(values, list) or not values:
        raise ArtifactError(f"{where}: metrics '{key}.values' must be a non-empty list")
    return [float(v) for v in values]


def _where(row: Mapping[str, Any]) -> str:
    return f"run {row.get('run_id') or row.get('record_dir') or '?'}"


def _params_key(params: Any) -> str:
    return json.dumps(params or {}, sort_keys=True, default=str)


def _labels(entries: list[Entry]) -> None:
    """``method``, or ``method [k=v ...]`` naming the parameters that differ between variants of the
    same method; `` @arch`` when one method appears with several architectures (over all boards)."""
    by_method: dict[str, list[Entry]] = {}
    for entry in entries:
        by_method.setdefault(entry.method, []).append(entry)
    for method, group in by_method.items():
        keys = sorted({k for e in group for k in e.method_params})
        differing = [k for k in keys if len({_params_key(e.method_params.get(k)) for e in group}) > 1]
        archs = {e.arch for e in group}
        for entry in group:
            label = method
            if differing:
                label += " [" + ", ".join(f"{k}={json.dumps(entry.method_params.get(k), default=str)}"
                                          for k in differing) + "]"
            entry.base_label = label
            if len(archs) > 1:
                label += f" @{entry.arch}"
            entry.label = label


def rank_entries(entries: list[Entry], w: float) -> list[Entry]:
    """Sort by DDRS(w) mean (desc), then HLR mean (asc), then label; equal DDRS means share a rank."""
    for entry in entries:
        entry.ddrs = entry.ddrs_at(w)

    def key(e: Entry) -> tuple:
        d = e.ddrs.mean if e.ddrs.mean is not None else -math.inf
        h = e.hlr.mean if e.hlr.mean is not None else math.inf
        return (-d, h, e.label)

    entries.sort(key=key)
    previous, rank = None, 0
    for position, entry in enumerate(entries, start=1):
        if entry.ddrs.mean != previous:
            rank, previous = position, entry.ddrs.mean
        entry.rank = rank
    return entries


def build_leaderboard(rows: Iterable[Mapping[str, Any]], w: float = 0.5) -> list[Board]:
    """Group ``rows`` per (dataset, IPC) and method, pool each method's students, and rank by DDRS(w)."""
    w = check_w(w)
    groups: dict[tuple[str, int], dict[tuple, Entry]] = {}
    for row in rows:
        where = _where(row)
        for key in ("method", "dataset", "ipc"):
            if row.get(key) is None:
                raise ArtifactError(f"{where} has no '{key}'")
        hlrs = _summary_values(row, "hlr", where)
        iors = _summary_values(row, "ior", where)
        if len(hlrs) != len(iors):
            raise ArtifactError(f"{where}: {len(hlrs)} HLR values but {len(iors)} IOR values (one per student)")
        params = row.get("method_params") or {}
        arch = row.get("eval_arch") or row.get("arch")
        board = groups.setdefault((str(row["dataset"]), int(row["ipc"])), {})
        entry = board.setdefault((row["method"], _params_key(params), arch),
                                 Entry(method=str(row["method"]), method_params=dict(params), arch=arch))
        entry.run_ids.append(str(row.get("run_id") or ""))
        entry.seeds.append(row.get("distill_seed", row.get("seed")))
        entry.hlr_values.extend(hlrs)
        entry.ior_values.extend(iors)
        for name in ACCURACIES:
            entry.acc_values[name].extend(_summary_values(row, name, where))
        if row.get("image_bytes") is not None:
            entry.image_bytes.append(int(row["image_bytes"]))
            entry.soft_label_bytes.append(int(row.get("soft_label_bytes") or 0))
        if row.get("distill_seconds") is not None:
            entry.distill_seconds.append(float(row["distill_seconds"]))
        if row.get("protocol"):
            entry.protocols.add(f"{row['protocol']} v{row.get('protocol_version')}")
    # one labelling over every board, so a method variant has the same name at every (dataset, IPC)
    _labels([e for entries in groups.values() for e in entries.values()])
    return [Board(dataset, ipc, w, rank_entries(list(entries.values()), w))
            for (dataset, ipc), entries in sorted(groups.items())]


# ---------------------------------------------------------------------------------------------
# Markdown and CSV

_HEADERS = ["rank", "method", "arch", "DDRS", "HLR ↓", "IOR ↑", "acc real (hard)", "acc syn (hard)",
            "acc syn (any)", "acc random (any)", "distillations", "students", "storage", "distill time"]
_ALIGN = ["r", "l", "l"] + ["r"] * 11


def _cells(entry: Entry) -> list[str]:
    return [
        str(entry.rank), entry.label, entry.arch or "-",
        fmt_pm(entry.ddrs.mean, entry.ddrs.std), fmt_pm(entry.hlr.mean, entry.hlr.std),
        fmt_pm(entry.ior.mean, entry.ior.std),
        *(fmt_pm(entry.acc(a).mean, entry.acc(a).std) for a in ACCURACIES),
        str(entry.n_distillations), str(entry.n_students), fmt_bytes(entry.storage_bytes),
        fmt_seconds(entry.distill_time),
    ]


def to_markdown(boards: Sequence[Board]) -> str:
    w = boards[0].w if boards else 0.5
    out = ["# ddr leaderboard", "",
           f"Ranked by DDRS (w = {fmt_num(w, 2)}): {FORMULA}, computed per student, then mean ± sample std. "
           "Accuracies are fractions in [0, 1].", ""]
    if not boards:
        out.append("_no runs_")
    for board in boards:
        out += [f"## {board.title}", "", markdown_table(_HEADERS, [_cells(e) for e in board.entries], _ALIGN), "",
                f"Note: {board.note}", ""]
    return "\n".join(out).rstrip() + "\n"


CSV_HEADERS = ["dataset", "ipc", "rank", "method", "arch", "w", "ddrs_mean", "ddrs_std", "hlr_mean", "hlr_std",
               "ior_mean", "ior_std"] + [f"{a}_{s}" for a in ACCURACIES for s in ("mean", "std")] + [
               "distillations", "students", "storage_bytes", "distill_seconds", "method_params", "note"]


def to_csv(boards: Sequence[Board]) -> str:
    rows = []
    for board in boards:
        for e in board.entries:
            rows.append([board.dataset, board.ipc, e.rank, e.label, e.arch, repr(board.w),
                         repr(e.ddrs.mean), repr(e.ddrs.std), repr(e.hlr.mean), repr(e.hlr.std),
                         repr(e.ior.mean), repr(e.ior.std),
                         *(repr(v) for a in ACCURACIES for v in (e.acc(a).mean, e.acc(a).std)),
                         e.n_distillations, e.n_students, e.storage_bytes, e.distill_time,
                         _params_key(e.method_params), board.note])
    return csv_text(CSV_HEADERS, rows)


# ---------------------------------------------------------------------------------------------
# HTML

def html_data(boards: Sequence[Board]) -> dict[str, Any]:
    """What the HTML page embeds: per-student HLR/IOR of every entry, plus the display cells."""
    return {
        "w": boards[0].w if boards else 0.5,
        "boards": [{
            "title": b.title, "dataset": b.dataset, "ipc": b.ipc, "note": b.note,
            "entries": [{
                "label": e.label, "method": e.method, "arch": e.arch or "-",
                "hlr": e.hlr_values, "ior": e.ior_values,
                "acc": {a: [e.acc(a).mean, e.acc(a).std] for a in ACCURACIES},
                "distillations": e.n_distillations, "students": e.n_students,
                "storage": e.storage_bytes, "storage_text": fmt_bytes(e.storage_bytes),
                "distill": e.distill_time, "distill_text": fmt_seconds(e.distill_time),
            } for e in b.entries],
        } for b in boards],
    }


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.formula{font-family:Georgia,serif;background:#f5f5f5;padding:.5em .8em;border-radius:4px;display:inline-block}
.controls{margin:1em 0;font-size:1.05em}#w{width:18em;vertical-align:middle}
table{border-collapse:collapse;font-size:.85em;margin-top:.4em}
th,td{border:1px solid #ccc;padding:.25em .45em;text-align:right;white-space:nowrap}
th{white-space:normal;max-width:6.5em;vertical-align:bottom}
th{background:#eef;cursor:pointer;user-select:none}th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
td.label,td.arch{text-align:left}tr:nth-child(even){background:#fafafa}td.ddrs{font-weight:bold}
.note{color:#555;font-size:.88em;max-width:70em}
"""

_JS = r"""
(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("ddr-data").textContent);
var EINV = Math.exp(-1), SPAN = Math.E - Math.exp(-1);
var ACC = ["acc_real_hard","acc_syn_hard","acc_syn_any","acc_rdm_any"];
var COLS = [["rank","rank"],["label","method"],["arch","arch"],["ddrs","DDRS"],["hlr","HLR \u2193"],
  ["ior","IOR \u2191"],["acc_real_hard","acc real (hard)"],["acc_syn_hard","acc syn (hard)"],
  ["acc_syn_any","acc syn (any)"],["acc_rdm_any","acc random (any)"],["distillations","distillations"],
  ["students","students"],["storage","storage"],["distill","distill time"]];
function score(h, i, w){ var a = w*i - (1-w)*h; a = Math.min(1, Math.max(-1, a)); return (Math.exp(a) - EINV)/SPAN; }
function stat(v){ var n = v.length, s = 0, q = 0, k; if(!n) return [null, null];
  for(k=0;k<n;k++) s += v[k]; var m = s/n; if(n < 2) return [m, 0];
  for(k=0;k<n;k++) q += (v[k]-m)*(v[k]-m); return [m, Math.sqrt(q/(n-1))]; }
function f4(x){ return x === null || x === undefined ? "-" : x.toFixed(4); }
function pm(p){ return p[0] === null ? "-" : f4(p[0]) + " \u00b1 " + f4(p[1]); }
var sortState = {}; // board index -> [column, direction]
function recompute(w){
  DATA.w = w;
  DATA.boards.forEach(function(b){
    b.entries.forEach(function(e){
      e.ddrs = stat(e.hlr.map(function(h, k){ return score(h, e.ior[k], w); }));
      e.hlrS = stat(e.hlr); e.iorS = stat(e.ior);
    });
    var order = b.entries.slice().sort(function(x, y){
      var dx = x.ddrs[0] === null ? -Infinity : x.ddrs[0], dy = y.ddrs[0] === null ? -Infinity : y.ddrs[0];
      if(dx !== dy) return dy - dx;
      if(x.hlrS[0] !== y.hlrS[0]) return x.hlrS[0] - y.hlrS[0];
      return x.label < y.label ? -1 : x.label > y.label ? 1 : 0; });
    var prev = null, rank = 0;
    order.forEach(function(e, k){ if(e.ddrs[0] !== prev){ rank = k + 1; prev = e.ddrs[0]; } e.rank = rank; });
    b.order = order;
  });
  document.getElementById("w-value").textContent = w.toFixed(2);
  document.getElementById("w-formula").textContent = "\u03b1 = " + w.toFixed(2) + "\u00b7IOR \u2212 " +
    (1 - w).toFixed(2) + "\u00b7HLR";
  render();
}
function sortValue(e, col){
  if(col === "ddrs") return e.ddrs[0]; if(col === "hlr") return e.hlrS[0]; if(col === "ior") return e.iorS[0];
  if(ACC.indexOf(col) >= 0) return e.acc[col][0]; return e[col]; }
function render(){
  DATA.boards.forEach(function(b, bi){
    var st = sortState[bi] || ["rank", 1], col = st[0], dir = st[1];
    var rows = b.order.slice();
    if(col !== "rank") rows.sort(function(x, y){
      var a = sortValue(x, col), c = sortValue(y, col);
      if(a === null || a === undefined) return 1; if(c === null || c === undefined) return -1;
      if(a < c) return -dir; if(a > c) return dir; return x.rank - y.rank; });
    else if(dir < 0) rows.reverse();
    var table = document.getElementById("board-" + bi);
    table.querySelectorAll("th").forEach(function(th){
      th.className = th.dataset.col === col ? (dir > 0 ? "sorted-asc" : "sorted-desc") : ""; });
    var body = table.tBodies[0]; body.innerHTML = "";
    rows.forEach(function(e){
      var tr = document.createElement("tr"); tr.dataset.label = e.label;
      function td(cls, text, v){ var c = document.createElement("td"); c.className = cls; c.textContent = text;
        if(v !== undefined && v !== null) c.dataset.v = String(v); tr.appendChild(c); }
      td("rank", String(e.rank), e.rank); td("label", e.label); td("arch", e.arch);
      td("ddrs", pm(e.ddrs), e.ddrs[0]); td("hlr", pm(e.hlrS), e.hlrS[0]); td("ior", pm(e.iorS), e.iorS[0]);
      ACC.forEach(function(a){ td(a, pm(e.acc[a]), e.acc[a][0]); });
      td("distillations", String(e.distillations), e.distillations); td("students", String(e.students), e.students);
      td("storage", e.storage_text, e.storage); td("distill", e.distill_text, e.distill);
      tr.querySelector("td.ddrs").dataset.std = String(e.ddrs[1]);
      body.appendChild(tr);
    });
  });
}
function build(){
  var root = document.getElementById("boards");
  DATA.boards.forEach(function(b, bi){
    var h = document.createElement("h2"); h.textContent = b.title; root.appendChild(h);
    var t = document.createElement("table"); t.id = "board-" + bi; t.className = "board";
    var head = t.createTHead().insertRow();
    COLS.forEach(function(c){ var th = document.createElement("th"); th.dataset.col = c[0]; th.textContent = c[1];
      th.title = "sort by " + c[1];
      th.addEventListener("click", function(){ var st = sortState[bi] || ["rank", 1];
        sortState[bi] = [c[0], st[0] === c[0] ? -st[1]
          : (c[0] === "hlr" || c[0] === "rank" || c[0] === "label" || c[0] === "arch" ? 1 : -1)];
        render(); });
      head.appendChild(th); });
    t.appendChild(document.createElement("tbody")); root.appendChild(t);
    var p = document.createElement("p"); p.className = "note"; p.textContent = "Note: " + b.note; root.appendChild(p);
  });
}
build();
var slider = document.getElementById("w");
slider.addEventListener("input", function(){ recompute(parseFloat(slider.value)); });
var q = new URLSearchParams(window.location.search).get("w");
if(q !== null && q !== "" && isFinite(parseFloat(q))){
  var v = Math.min(1, Math.max(0, parseFloat(q))); slider.value = String(v);
  slider.dispatchEvent(new Event("input"));
} else { slider.value = String(DATA.w); recompute(DATA.w); }
window.ddrLeaderboard = {data: DATA, recompute: recompute, score: score};
})();
"""


def to_html(boards: Sequence[Board], title: str = "ddr leaderboard") -> str:
    """One self-contained page (inline CSS and JS, no network): sortable tables, a slider for w that
    recomputes DDRS per student and re-ranks, and the formula. ``?w=0.2`` in the URL sets the slider."""
    payload = json.dumps(html_data(boards), allow_nan=False).replace("<", "\\u003c")
    w = boards[0].w if boards else 0.5
    md = html.escape(to_markdown(boards))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Methods ranked by DDRS per (dataset, IPC). Accuracies are fractions in [0, 1]; HLR lower is better, IOR higher is
better. DDRS is computed per student from that student's HLR and IOR, then averaged (mean ± sample std).</p>
<p class="formula">HLR = acc<sub>real,hard</sub> − acc<sub>syn,hard</sub> &nbsp; IOR = acc<sub>syn,any</sub> −
acc<sub>rdm,any</sub><br>α = w·IOR − (1−w)·HLR &nbsp;&nbsp; DDRS = (e<sup>α</sup> − e<sup>−1</sup>) / (e − e<sup>−1</sup>)
&nbsp;&nbsp; (now: <span id="w-formula"></span>)</p>
<div class="controls"><label for="w">w (weight of IOR) = <b id="w-value">{w:.2f}</b></label>
<input type="range" id="w" min="0" max="1" step="0.05" value="{w}"></div>
<div id="boards"></div>
<noscript><pre>{md}</pre></noscript>
<script type="application/json" id="ddr-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""


def render(rows: Iterable[Mapping[str, Any]], fmt: str = "md", w: float = 0.5) -> str:
    """The leaderboard of ``rows`` in ``fmt`` (``md``, ``csv`` or ``html``)."""
    if fmt not in FORMATS:
        raise DdrError(f"unknown leaderboard format '{fmt}'; choose one of {', '.join(FORMATS)}")
    boards = build_leaderboard(rows, w)
    return {"md": to_markdown, "csv": to_csv, "html": to_html}[fmt](boards)
