"""The leaderboard as one self-contained HTML page (inline CSS, JS and SVG; nothing loaded from a
network): sortable tables, a slider for w that recomputes DDRS per student and re-ranks, the tie
groups and rank ranges at that w, the beats-random verdicts, cost and storage, and a chart of mean
DDRS against w per board that marks where neighbours swap. Standard library only; never torch."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from ddr.report.columns import column
from ddr.report.leaderboard import Board, provenance, score_column
from ddr.report.leaderboard_text import board_columns, fmt_flops, pareto, to_markdown
from ddr.report.methods import label_type, method_info
from ddr.report.ranking import describe_power, snapshot
from ddr.report.statistics import Estimate
from ddr.report.tabular import fmt_bytes, fmt_seconds

W_GRID = [round(k * 0.05, 2) for k in range(21)]
"""The slider's steps; tie groups and intervals are computed in Python for each of them."""


def _est(e: Estimate) -> list[Any]:
    return [e.mean, e.std, e.ci.low if e.ci else None, e.ci.high if e.ci else None, e.n]


def html_data(boards: Sequence[Board], generated: str | None = None) -> dict[str, Any]:
    """What the page embeds: per-student HLR/IOR of every entry, the display cells, and per w on
    :data:`W_GRID` the ranks, tie letters and DDRS intervals."""
    out_boards = []
    lower = {"hlr"} if not column("hlr").higher_is_better else set()
    for b in boards:
        fronts = {"cost": pareto(b.entries, "distill_wall_seconds"), "storage": pareto(b.entries, "storage")}
        cols = board_columns(b)
        lower |= {c.key for c in cols if not c.higher_is_better}
        out_boards.append({
            "title": b.title, "dataset": b.dataset, "ipc": b.ipc, "note": b.note, "power": describe_power(b),
            "acc_columns": [[c.key, c.header] for c in cols],
            "protocols": b.protocols, "mixed": b.mixed,
            "segments": [{"low": s.low, "high": s.high, "order": list(s.order)}
                         for s in (b.analysis.segments if b.analysis else [])],
            "snapshots": {f"{w:.2f}": snapshot(b.entries, w) for w in W_GRID},
            "entries": [{
                "label": e.label, "method": e.method, "arch": e.arch or "-",
                "venue": method_info(e.method).venue_text, "labels": label_type(e.method, e.recipe),
                "hlr": e.hlr_values, "ior": e.ior_values,
                "hlrS": _est(e.hlr), "iorS": _est(e.ior),
                "acc": {c.key: _est(e.estimate(c.key)) for c in cols},
                "verdict": e.verdict.short if e.verdict is not None else "-",
                "verdict_kind": e.verdict.text.split(" (")[0] if e.verdict is not None else "",
                "distillations": e.n_distillations, "students": e.n_students,
                "storage": e.storage_bytes, "storage_text": fmt_bytes(e.storage_bytes),
                "distill": e.distill_time, "distill_text": fmt_seconds(e.distill_time),
                "cpu_text": fmt_seconds(e.cost("distill_cpu_seconds")),
                "flops_text": fmt_flops(e.cost("distill_flops_estimate")),
                "pareto": ", ".join(n for n, f in fronts.items() if e.label in f) or "-",
            } for e in b.entries],
        })
    return {"w": boards[0].w if boards else 0.5, "grid": W_GRID, "provenance": provenance(generated),
            "score_name": score_column().header, "heads": {k: column(k).header for k in ("hlr", "ior")},
            "lower": sorted(lower), "boards": out_boards}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.formula{font-family:Georgia,serif;background:#f5f5f5;padding:.5em .8em;border-radius:4px;display:inline-block}
.controls{margin:1em 0;font-size:1.05em}#w{width:18em;vertical-align:middle}
table{border-collapse:collapse;font-size:.85em;margin-top:.4em}
.board-wrap{max-width:100%;overflow-x:auto}pre{max-width:100%;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .45em;text-align:right;white-space:nowrap}
th{white-space:normal;max-width:6.5em;vertical-align:bottom}
th{background:#eef;cursor:pointer;user-select:none}th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
td.label,td.arch,td.venue,td.labels,td.group,td.verdict{text-align:left}tr:nth-child(even){background:#fafafa}td.ddrs{font-weight:bold}
td.group{font-family:monospace;font-weight:bold;color:#1a5}
td.verdict.beats{color:#070}td.verdict.worse{color:#a00}td.verdict.none{color:#777}
.note,.power,.protocol,.prov{color:#555;font-size:.88em;max-width:70em}.mixed{color:#a00;font-weight:bold}
.wstab{font-size:.88em;max-width:70em}.wstab span.seg{padding:.1em .3em;border-radius:3px}
.wstab span.seg.current{background:#ffe9a8;font-weight:bold}
svg.wplot{border:1px solid #ddd;margin-top:.4em;background:#fff}
table.reported-table td.source,table.reported-table td.rnote,table.reported-table td.rarch,
table.reported-table td.rlabels{text-align:left}table.reported-table td.source,table.reported-table td.rnote{white-space:normal}
tr.unmeasured{color:#666;font-style:italic}
"""

_JS = r"""
(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("ddr-data").textContent);
var EINV = Math.exp(-1), SPAN = Math.E - Math.exp(-1);
var HEAD = [["rank","rank"],["group","group"],["label","method"],["arch","arch"],["venue","venue"],["labels","labels"],
  ["ddrs",DATA.score_name],
  ["ddrs_ci","95 % CI"],["hlr",DATA.heads.hlr],["ior",DATA.heads.ior],["verdict","vs random"]];
var TAIL = [["distillations","distillations"],["students","students"],
  ["distill","distill time"],["cpu","distill CPU"],["flops","FLOPs (est.)"],["storage","storage"],
  ["pareto","Pareto"]];
function colsOf(b){ return HEAD.concat(b.acc_columns.map(function(c){ return [c[0], c[1]]; })).concat(TAIL); }
var COLORS = ["#1f77b4","#d62728","#2ca02c","#9467bd","#ff7f0e","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
function score(h, i, w){ var a = w*i - (1-w)*h; a = Math.min(1, Math.max(-1, a)); return (Math.exp(a) - EINV)/SPAN; }
function stat(v){ var n = v.length, s = 0, q = 0, k; if(!n) return [null, null];
  for(k=0;k<n;k++) s += v[k]; var m = s/n; if(n < 2) return [m, 0];
  for(k=0;k<n;k++) q += (v[k]-m)*(v[k]-m); return [m, Math.sqrt(q/(n-1))]; }
function f4(x){ return x === null || x === undefined ? "-" : x.toFixed(4); }
function pm(p){ return p[0] === null ? "-" : f4(p[0]) + " \u00b1 " + f4(p[1]); }
function est(e){ if(e[0] === null) return "-"; if(e[4] <= 1) return f4(e[0]) + " (n = 1)";
  return f4(e[0]) + " \u00b1 " + f4(e[1]) + (e[2] === null ? "" : " [" + f4(e[2]) + ", " + f4(e[3]) + "]"); }
function meanAt(e, w){ return stat(e.hlr.map(function(h, k){ return score(h, e.ior[k], w); }))[0]; }
function nearest(w){ var best = DATA.grid[0];
  DATA.grid.forEach(function(g){ if(Math.abs(g - w) < Math.abs(best - w)) best = g; }); return best; }
var sortState = {};
function recompute(w){
  DATA.w = w;
  var g = nearest(w), gkey = g.toFixed(2);
  DATA.boards.forEach(function(b){
    var snap = b.snapshots[gkey];
    b.entries.forEach(function(e){
      e.ddrs = stat(e.hlr.map(function(h, k){ return score(h, e.ior[k], w); }));
      var s = snap[e.label];
      e.group = s.group; e.range = s.best === s.worst ? String(s.best) : s.best + "\u2013" + s.worst;
      e.ci = (s.ci && Math.abs(g - w) < 1e-9) ? "[" + f4(s.ci[0]) + ", " + f4(s.ci[1]) + "]" : (s.ci ? "-" : "n = 1");
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
  document.getElementById("w-groups").textContent = Math.abs(g - w) < 1e-9 ? "" :
    " (tie groups and rank ranges shown for the nearest computed w = " + g.toFixed(2) + ")";
  render();
}
function sortValue(e, col){
  if(col === "ddrs") return e.ddrs[0]; if(col === "hlr") return e.hlrS[0]; if(col === "ior") return e.iorS[0];
  if(Object.prototype.hasOwnProperty.call(e.acc, col)) return e.acc[col][0];
  if(col === "cpu" || col === "flops") return null;
  if(col === "verdict") return e.verdict_kind; return e[col]; }
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
        if(v !== undefined && v !== null) c.dataset.v = String(v); tr.appendChild(c); return c; }
      td("rank", e.range, e.rank); td("group", e.group); td("label", e.label); td("arch", e.arch);
      td("venue", e.venue); td("labels", e.labels);
      td("ddrs", pm(e.ddrs), e.ddrs[0]); td("ddrs-ci", e.ci);
      td("hlr", est(e.hlrS), e.hlrS[0]); td("ior", est(e.iorS), e.iorS[0]);
      td("verdict " + (e.verdict_kind === "beats random" ? "beats" : e.verdict_kind === "worse than random" ? "worse" : "none"),
         e.verdict);
      b.acc_columns.forEach(function(c){ td(c[0], est(e.acc[c[0]]), e.acc[c[0]][0]); });
      td("distillations", String(e.distillations), e.distillations); td("students", String(e.students), e.students);
      td("distill", e.distill_text, e.distill); td("cpu", e.cpu_text); td("flops", e.flops_text);
      td("storage", e.storage_text, e.storage); td("pareto", e.pareto);
      tr.querySelector("td.ddrs").dataset.std = String(e.ddrs[1]);
      body.appendChild(tr);
    });
    renderStability(b, bi);
  });
}
function renderStability(b, bi){
  var box = document.getElementById("wstab-" + bi); box.innerHTML = "";
  if(b.segments.length <= 1){ box.textContent = "Ranking by mean DDRS is the same for every w \u2208 [0, 1]."; }
  else {
    box.appendChild(document.createTextNode("Ranking by mean DDRS over w: "));
    b.segments.forEach(function(s, k){
      var span = document.createElement("span"); span.className = "seg";
      var inside = DATA.w >= s.low && (DATA.w < s.high || (k === b.segments.length - 1 && DATA.w <= s.high));
      if(inside) span.className += " current";
      span.dataset.low = String(s.low); span.dataset.high = String(s.high);
      span.textContent = "w \u2208 [" + s.low.toFixed(2) + ", " + s.high.toFixed(2) + "]: " + s.order.join(" > ");
      box.appendChild(span); if(k < b.segments.length - 1) box.appendChild(document.createTextNode("; "));
    });
  }
  var svg = document.getElementById("wplot-" + bi), W = 520, H = 220, L = 48, R = 150, T = 10, B = 30;
  var NS = svg.namespaceURI; while(svg.firstChild) svg.removeChild(svg.firstChild);
  var curves = b.entries.map(function(e){ var pts = []; for(var k=0;k<=100;k++){ pts.push(meanAt(e, k/100)); } return pts; });
  var lo = Infinity, hi = -Infinity;
  curves.forEach(function(c){ c.forEach(function(v){ if(v !== null){ lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
  if(!isFinite(lo)){ return; } if(hi - lo < 1e-6){ hi += 0.01; lo -= 0.01; }
  function x(w){ return L + w * (W - L - R); } function y(v){ return T + (hi - v) / (hi - lo) * (H - T - B); }
  function el(name, attrs, text){ var n = document.createElementNS(NS, name); for(var k in attrs) n.setAttribute(k, attrs[k]);
    if(text) n.textContent = text; svg.appendChild(n); return n; }
  el("line", {x1: x(0), y1: y(lo), x2: x(1), y2: y(lo), stroke: "#999"});
  el("line", {x1: x(0), y1: y(lo), x2: x(0), y2: y(hi), stroke: "#999"});
  el("text", {x: x(0), y: H - 8, "font-size": 11}, "w = 0"); el("text", {x: x(1) - 30, y: H - 8, "font-size": 11}, "w = 1");
  el("text", {x: 2, y: y(hi) + 4, "font-size": 10}, hi.toFixed(3)); el("text", {x: 2, y: y(lo), "font-size": 10}, lo.toFixed(3));
  b.segments.slice(1).forEach(function(s){ el("line", {x1: x(s.low), y1: y(hi), x2: x(s.low), y2: y(lo), stroke: "#c60",
    "stroke-dasharray": "4,3", "class": "swap", "data-w": String(s.low)}); });
  el("line", {x1: x(DATA.w), y1: y(hi), x2: x(DATA.w), y2: y(lo), stroke: "#000", "stroke-width": 1.5, "class": "current-w"});
  curves.forEach(function(c, k){
    var d = c.map(function(v, j){ return (j ? "L" : "M") + x(j/100).toFixed(1) + "," + y(v).toFixed(1); }).join("");
    var color = COLORS[k % COLORS.length];
    el("path", {d: d, fill: "none", stroke: color, "stroke-width": 1.6, "data-label": b.entries[k].label});
    el("text", {x: W - R + 6, y: T + 12 + 13 * k, "font-size": 11, fill: color}, b.entries[k].label);
  });
}
function build(){
  var root = document.getElementById("boards");
  DATA.boards.forEach(function(b, bi){
    var h = document.createElement("h2"); h.textContent = b.title; root.appendChild(h);
    var p0 = document.createElement("p"); var names = Object.keys(b.protocols);
    p0.className = b.mixed ? "protocol mixed" : "protocol";
    p0.textContent = b.mixed ? "Mixed protocols: " + names.map(function(n){
      return n + " (" + b.protocols[n].join(", ") + ")"; }).join("; ") : "Protocol: " + names[0];
    root.appendChild(p0);
    var t = document.createElement("table"); t.id = "board-" + bi; t.className = "board";
    var head = t.createTHead().insertRow();
    colsOf(b).forEach(function(c){ var th = document.createElement("th"); th.dataset.col = c[0]; th.textContent = c[1];
      th.title = "sort by " + c[1];
      th.addEventListener("click", function(){ var st = sortState[bi] || ["rank", 1];
        sortState[bi] = [c[0], st[0] === c[0] ? -st[1]
          : (DATA.lower.indexOf(c[0]) >= 0 || c[0] === "rank" || c[0] === "label" || c[0] === "arch"
             || c[0] === "group" ? 1 : -1)];
        render(); });
      head.appendChild(th); });
    t.appendChild(document.createElement("tbody"));
    var wrap = document.createElement("div"); wrap.className = "board-wrap";  // a wide board scrolls in here
    wrap.appendChild(t); root.appendChild(wrap);
    var pw = document.createElement("p"); pw.className = "power"; pw.textContent = b.power; root.appendChild(pw);
    var ws = document.createElement("p"); ws.className = "wstab"; ws.id = "wstab-" + bi; root.appendChild(ws);
    var holder = document.createElement("div");  // parsed as SVG by the HTML parser: no namespace URL here
    holder.innerHTML = '<svg class="wplot" id="wplot-' + bi + '" width="520" height="220"></svg>';
    root.appendChild(holder);
    var p = document.createElement("p"); p.className = "note"; p.textContent = "Note: " + b.note; root.appendChild(p);
  });
}
build();
var slider = document.getElementById("w");
slider.addEventListener("input", function(){ recompute(parseFloat(slider.value)); });
var q = new URLSearchParams(window.location.search).get("w");
if(q !== null && q !== "" && isFinite(parseFloat(q))){
  var v = Math.min(1, Math.max(0, parseFloat(q))); slider.value = String(v);
  recompute(v);
} else { slider.value = String(DATA.w); recompute(DATA.w); }
window.ddrLeaderboard = {data: DATA, recompute: recompute, score: score};
})();
"""


def to_html(boards: Sequence[Board], title: str = "ddr leaderboard", generated: str | None = None,
            reported: bool = False) -> str:
    """One self-contained page; ``?w=0.2`` in the URL sets the slider; ``reported``: a section of
    published numbers beside the measurements (:func:`ddr.report.reported.reported_html`)."""
    payload = json.dumps(html_data(boards, generated), allow_nan=False).replace("<", "\\u003c")
    w = boards[0].w if boards else 0.5
    md = html.escape(to_markdown(boards, generated, reported))
    from ddr.report.coresets import coreset_html

    coresets = "".join(coreset_html(b) for b in boards)
    sections = f'<div id="coresets"><h2>Against the best coreset (IOC)</h2>{coresets}</div>' if coresets else ""
    if reported:
        from ddr.report.reported import reported_html

        rows = "".join(reported_html(b) for b in boards)
        sections += f'<div id="reported"><h2>Reported (published) vs measured</h2>{rows}</div>' if rows else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="prov">{html.escape(provenance(generated))}</p>
<p>Methods ranked by {html.escape(score_column().label)} per (dataset, IPC). Accuracies are fractions in [0, 1];
HLR {column("hlr").direction_words}, IOR {column("ior").direction_words}. DDRS is computed per student from that
student's HLR and IOR, then averaged (mean ± sample std; 95 % interval: t over students for one distillation,
hierarchical bootstrap over distillations then students for several). Methods sharing a group letter cannot be told
apart (pairwise t tests, Holm-adjusted, α = 0.05); rank gives the range of ranks those tests allow. "vs random" tests
IOR against 0.</p>
<p class="formula">{html.escape(column("hlr").formula)} &nbsp; {html.escape(column("ior").formula)}<br>
{html.escape(score_column().formula)} &nbsp;&nbsp; (now: <span id="w-formula"></span>)</p>
<div class="controls"><label for="w">w (weight of IOR) = <b id="w-value">{w:.2f}</b></label>
<input type="range" id="w" min="0" max="1" step="0.05" value="{w}"><span id="w-groups"></span></div>
<div id="boards"></div>
{sections}
<noscript><pre>{md}</pre></noscript>
<script type="application/json" id="ddr-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
