"""The pivot layout: one metric, methods as rows and (dataset, IPC) as columns, as dataset-distillation
papers print their results tables.

Built on :func:`ddr.report.leaderboard.build_leaderboard`: a row is an entry label (one labelling
over every board, so a method variant has the same row everywhere), a cell is that entry's
estimate of the metric on that (dataset, IPC) board — the same mean, sample std and 95 % interval
the leaderboard prints (DDRS recomputed per student at the board's ``w``). The metric is any name
the registry knows (``ddrs``, its alias ``lrs``, ``hlr``, ``acc_syn_hard``, a student metric's
column such as ``robust_pgd_syn``); the best mean of each column, in the registry's direction,
is marked (bold in Markdown, LaTeX and HTML; a ``best`` flag in CSV).

Rows keep the order of the first board that has them (its DDRS ranking), then the rest by label.
Standard library only; never torch.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from ddr.errors import DdrError
from ddr.report.columns import Column, column
from ddr.report.leaderboard import Board, Entry, metric_name, provenance
from ddr.report.leaderboard_latex import best_rows, cell, check_uncertainty, escape, wrap
from ddr.report.methods import label_type, method_info
from ddr.report.statistics import Estimate
from ddr.report.tabular import csv_text, fmt_num, markdown_table

PIVOT_FORMATS = ("md", "csv", "latex", "html")


@dataclass
class Pivot:
    """A pivot table of one metric: ``cells[r][c]`` is row ``r``'s estimate on column ``c`` (None
    when that entry did not run there)."""

    metric: Column
    rows: list[str]
    entries: list[Entry]
    """A representative entry per row (its method, recipe and label type)."""
    columns: list[tuple[str, int]]
    cells: list[list[Estimate | None]]
    boards: list[Board]

    def best(self, digits: int = 4) -> list[set[int]]:
        """Per column, the rows holding the best mean (compared as printed with ``digits`` decimals)."""
        out = []
        for c in range(len(self.columns)):
            means = [None if row[c] is None else row[c].mean for row in self.cells]  # type: ignore[union-attr]
            out.append(best_rows(means, self.metric.higher_is_better, digits))
        return out

    @property
    def protocols(self) -> list[str]:
        """The protocols (name, version, overrides) of the boards, each once."""
        return list(dict.fromkeys(p for b in self.boards for p in b.protocols))


def pivot_metric(name: str, boards: Sequence[Board]) -> Column:
    """The column of metric ``name`` (aliases resolved: ``lrs`` → ``ddrs``); a :class:`DdrError`
    naming the choices when no board's entries carry it."""
    key = metric_name(name)
    present = {"ddrs", "hlr", "ior", "acc_real_hard"} | {k for b in boards for e in b.entries for k in e.metric_keys()}
    if key not in present:
        raise DdrError(f"unknown metric '{name}' for --metric; these runs carry: {', '.join(sorted(present))} "
                       f"(and the alias lrs for ddrs)")
    return column(key)


def build_pivot(boards: Sequence[Board], metric: str = "ddrs") -> Pivot:
    """The pivot of ``metric`` over ``boards`` (from :func:`ddr.report.leaderboard.build_leaderboard`)."""
    col = pivot_metric(metric, boards)
    keys = [(b.dataset, b.ipc) for b in boards]
    rows: list[str] = []
    reps: dict[str, Entry] = {}
    for b in boards:
        for e in b.entries:
            if e.label not in reps:
                reps[e.label] = e
                rows.append(e.label)
    cells: list[list[Estimate | None]] = []
    for label in rows:
        line: list[Estimate | None] = []
        for b in boards:
            entry = next((e for e in b.entries if e.label == label), None)
            if entry is None:
                line.append(None)
            else:
                line.append(entry.estimate(col.key, b.w) if col.key == "ddrs" else entry.estimate(col.key))
        cells.append(line)
    return Pivot(col, rows, [reps[r] for r in rows], keys, cells, list(boards))


def _text(e: Estimate | None, uncertainty: str, digits: int = 4) -> str:
    if e is None or e.mean is None:
        return "-"
    mean = fmt_num(e.mean, digits)
    if e.n <= 1:
        return f"{mean} (n = 1)"
    if uncertainty == "ci":
        return mean if e.ci is None else f"{mean} [{fmt_num(e.ci.low, digits)}, {fmt_num(e.ci.high, digits)}]"
    return f"{mean} ± {fmt_num(e.std, digits)}"


def _what(p: Pivot, uncertainty: str) -> str:
    spread = "mean ± sample std" if uncertainty == "pm" else "mean [95 % interval]"
    w = sorted({b.w for b in p.boards})
    at = f" at w = {', '.join(f'{x:g}' for x in w)}" if p.metric.key == "ddrs" else ""
    return (f"{p.metric.header}{at} ({p.metric.direction_words}); cells: {spread} over all students; "
            f"best per column in bold. Protocol: {'; '.join(p.protocols)}")


def _meta(e: Entry) -> list[str]:
    return [method_info(e.method).venue_text, label_type(e.method, e.recipe)]


def to_markdown(p: Pivot, uncertainty: str = "pm", generated: str | None = None) -> str:
    """The pivot as a Markdown table with a header line (metric, protocol) and provenance."""
    best = p.best()
    heads = ["method", "venue", "labels", *(f"{d} IPC {k}" for d, k in p.columns)]
    body = []
    for r, (label, entry) in enumerate(zip(p.rows, p.entries)):
        cells = []
        for c, est in enumerate(p.cells[r]):
            text = _text(est, uncertainty)
            cells.append(f"**{text}**" if r in best[c] else text)
        body.append([label, *_meta(entry), *cells])
    table = markdown_table(heads, body, ["l", "l", "l"] + ["r"] * len(p.columns))
    return f"# ddr results: {p.metric.label}\n\n{provenance(generated)}\n\n{_what(p, uncertainty)}\n\n{table}\n"


def to_csv(p: Pivot, generated: str | None = None) -> str:
    """The pivot as CSV, one line per row: method, venue, year, label type, then per (dataset, IPC)
    the mean, std, interval, number of students and whether it is the column's best."""
    best = p.best()
    heads = ["method", "venue", "year", "label_type", "metric"]
    for d, k in p.columns:
        heads += [f"{d}_ipc{k}_{s}" for s in ("mean", "std", "ci_low", "ci_high", "n", "best")]
    heads += ["protocol", "ddr"]
    rows = []
    for r, (label, entry) in enumerate(zip(p.rows, p.entries)):
        info = method_info(entry.method)
        line: list[object] = [label, info.venue, info.year, label_type(entry.method, entry.recipe), p.metric.key]
        for c, est in enumerate(p.cells[r]):
            if est is None or est.mean is None:
                line += ["", "", "", "", "", ""]
                continue
            line += [repr(est.mean), repr(est.std), repr(est.ci.low) if est.ci else "",
                     repr(est.ci.high) if est.ci else "", est.n, "yes" if r in best[c] else ""]
        line += ["; ".join(p.protocols), provenance(generated)]
        rows.append(line)
    return csv_text(heads, rows)


def to_latex(p: Pivot, uncertainty: str = "pm", generated: str | None = None, *, standalone: bool = False,
             digits: int = 4) -> str:
    """The pivot as one booktabs table: a dataset header spanning its IPCs (``\\cmidrule``), bold
    best per column, a caption naming the metric, protocol, replication and provenance."""
    best = p.best(digits)
    datasets: list[tuple[str, int]] = []
    for d, _ in p.columns:
        if datasets and datasets[-1][0] == d:
            datasets[-1] = (d, datasets[-1][1] + 1)
        else:
            datasets.append((d, 1))
    top = ["", "", ""]
    rules, start = [], 4
    for d, span in datasets:
        top.append(f"\\multicolumn{{{span}}}{{c}}{{{escape(d)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + span - 1}}}")
        start += span
    second = ["Method", "Venue", "Labels", *(f"IPC {k}" for _, k in p.columns)]
    counts = []
    for label, line in zip(p.rows, p.cells):
        n = sorted({(e.groups, e.n) for e in line if e is not None})
        counts.append(f"{escape(label)}: " + ", ".join(f"{g} $\\times$ {m // max(1, g)}" for g, m in n))
    arrow = "$\\uparrow$" if p.metric.higher_is_better else "$\\downarrow$"
    spread = "mean $\\pm$ sample std" if uncertainty == "pm" else "mean [95~\\% interval]"
    w = sorted({b.w for b in p.boards})
    at = f" at $w = {', '.join(f'{x:g}' for x in w)}$" if p.metric.key == "ddrs" else ""
    cap = (f"{escape(p.metric.label)} {arrow}{at} ({escape(p.metric.direction_words)}); cells: {spread} over all "
           f"students, fractions; bold: best per column. Protocol: {escape('; '.join(p.protocols))}. "
           f"Distillations $\\times$ students per entry: {'; '.join(counts)}. {escape(provenance(generated))}.")
    lines = [f"% ddr pivot of {p.metric.key}: {provenance(generated)}; needs \\usepackage{{booktabs}}",
             "\\begin{table}[htbp]", "\\centering", "\\small", f"\\caption{{{cap}}}",
             f"\\label{{tab:ddr-pivot-{p.metric.key.replace('_', '-')}}}",
             "\\begin{tabular}{lll" + "r" * len(p.columns) + "}", "\\toprule",
             " & ".join(top) + " \\\\", " ".join(rules), " & ".join(second) + " \\\\", "\\midrule"]
    for r, (label, entry) in enumerate(zip(p.rows, p.entries)):
        cells = [escape(label), *(escape(x) for x in _meta(entry))]
        for c, est in enumerate(p.cells[r]):
            cells.append("--" if est is None else cell(est, uncertainty, digits, bold=r in best[c]))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return wrap("\n".join(lines) + "\n", standalone)


def to_html(p: Pivot, uncertainty: str = "pm", generated: str | None = None) -> str:
    """The pivot as one self-contained HTML page (no script, nothing loaded from a network)."""
    best = p.best()
    esc = html.escape
    head = "".join(f"<th>{esc(x)}</th>" for x in ("method", "venue", "labels"))
    head += "".join(f"<th>{esc(d)}<br>IPC {k}</th>" for d, k in p.columns)
    body = []
    for r, (label, entry) in enumerate(zip(p.rows, p.entries)):
        tds = [f"<td class=\"label\">{esc(label)}</td>", *(f"<td class=\"meta\">{esc(x)}</td>" for x in _meta(entry))]
        for c, est in enumerate(p.cells[r]):
            text = esc(_text(est, uncertainty))
            tds.append(f"<td><b>{text}</b></td>" if r in best[c] else f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}td.label,td.meta{text-align:left}"
             "caption{caption-side:bottom;color:#555;max-width:60em;text-align:left}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>ddr results: {esc(p.metric.label)}</title><style>{style}</style></head><body>\n"
            f"<h1>ddr results: {esc(p.metric.header)}</h1>\n<table><caption>{esc(_what(p, uncertainty))}. "
            f"{esc(provenance(generated))}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
            + "\n".join(body) + "\n</tbody></table>\n</body></html>\n")


def render_pivot(boards: Sequence[Board], fmt: str = "md", metric: str = "ddrs", uncertainty: str = "pm",
                 generated: str | None = None, *, standalone: bool = False) -> str:
    """The pivot of ``metric`` over ``boards`` in ``fmt`` (``md``, ``csv``, ``latex`` or ``html``)."""
    if fmt not in PIVOT_FORMATS:
        raise DdrError(f"unknown pivot format '{fmt}'; choose one of {', '.join(PIVOT_FORMATS)}")
    check_uncertainty(uncertainty)
    p = build_pivot(boards, metric)
    if fmt == "csv":
        return to_csv(p, generated)
    if fmt == "latex":
        return to_latex(p, uncertainty, generated, standalone=standalone)
    if fmt == "html":
        return to_html(p, uncertainty, generated)
    return to_markdown(p, uncertainty, generated)
