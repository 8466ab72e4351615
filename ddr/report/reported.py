"""Published numbers beside ddr's measurement of the same (dataset, IPC) cell.

A method's published accuracies are its spec's ``reported`` numbers (:class:`ddr.ReportedNumber`:
a fraction in [0, 1] with the paper, table, evaluation architecture and label type that printed
it; the built-in methods' come from ``ddr_methods/<method>/reported.yaml``). For each board this
module lines them up with what ddr measured:

- **measured**: the entry's ``acc_syn_any`` — students trained on the distilled images with the
  method's own label strategy, under ddr's protocol (mean ± sample std [95 % interval], a
  fraction), the quantity a paper's table reports;
- **reported**: the published fraction and its source;
- **Δ = measured − reported**, in percentage points (0.500 − 0.489 → +1.1).

A reported number is never an entry: it takes no rank, no tie group, no interval and no test, and
a method that has a number for the cell but no run on the board is listed as "not measured". The
paper's protocol (epochs, augmentation, architecture, number of students) is its own, so Δ says
how far ddr's measurement sits from the published one, not that either is wrong.

Never imports torch.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ddr.plugin.specs import ReportedNumber
from ddr.report.statistics import Estimate

if TYPE_CHECKING:  # pragma: no cover
    from ddr.report.leaderboard import Board, Entry

MEASURED = "acc_syn_any"
"""The measured quantity a published accuracy is set beside."""
NOTE = ("Reported: the papers' own published test accuracy (their protocol, architecture, epochs and students), shown "
        "for reference only: never ranked, grouped or tested. Measured: acc syn (any) under this board's protocol "
        "(mean ± sample std [95 % interval]). Δ = measured − reported, in percentage points.")
HEADERS = ["method", "measured acc syn (any)", "labels", "reported", "Δ (points)", "reported by", "eval arch",
           "reported labels", "note"]


@lru_cache(maxsize=1)
def _installed() -> tuple[dict[str, str], dict[str, Mapping[str, ReportedNumber]]]:
    """(name or alias → spec name, spec name → its reported numbers) of the installed methods."""
    from ddr.plugin.manager import PluginSystem

    try:
        specs = PluginSystem().methods().list()
    except Exception:  # noqa: BLE001 - a report of records made elsewhere needs no installed plugin
        return {}, {}
    names: dict[str, str] = {}
    numbers: dict[str, Mapping[str, ReportedNumber]] = {}
    for spec in specs:
        numbers.setdefault(spec.name, spec.reported)
        for name in (spec.name, *spec.aliases):
            names.setdefault(name, spec.name)
    return names, numbers


def reported_for(method: str) -> Mapping[str, ReportedNumber]:
    """The installed method ``method``'s (name or alias) published numbers; empty when it is not
    installed here or declares none."""
    names, numbers = _installed()
    return numbers.get(names.get(str(method), ""), {})


@lru_cache(maxsize=64)
def dataset_name(dataset: str) -> str:
    """``dataset`` without options (``:zca``), lower case, an installed alias resolved to its name
    (``cifar-10`` → ``cifar10``)."""
    name = str(dataset).split(":")[0].strip().lower()
    try:
        from ddr.plugin.manager import PluginSystem

        known = {n: spec.name for spec in PluginSystem().datasets().list() for n in (spec.name, *spec.aliases)}
    except Exception:  # noqa: BLE001 - without the registry the name is taken as written
        return name
    return str(known.get(name, name))


def cell_key(dataset: str, ipc: int) -> str:
    """``cifar10/ipc10``: the key of a (dataset, IPC) cell in a spec's ``reported``."""
    return f"{dataset_name(dataset)}/ipc{int(ipc)}"


@dataclass(frozen=True)
class ReportedRow:
    """One published number at a board's cell, beside the entry that measured it (if any)."""

    method: str
    label: str
    number: ReportedNumber
    entry: "Entry | None" = None

    @property
    def measured(self) -> Estimate | None:
        """The entry's acc_syn_any (fractions); ``None`` when the method has no run on the board."""
        return None if self.entry is None else self.entry.estimate(MEASURED)

    @property
    def measured_labels(self) -> str:
        """``hard``/``soft``: what the measured students trained on (``-`` when not measured)."""
        if self.entry is None:
            return "-"
        from ddr.report.methods import label_type

        return label_type(self.entry.method, self.entry.recipe)

    @property
    def delta_points(self) -> float | None:
        """measured mean − reported, in percentage points (``None`` when not measured)."""
        measured = self.measured
        if measured is None or measured.mean is None:
            return None
        return (float(measured.mean) - self.number.value) * 100.0

    @property
    def caveats(self) -> list[str]:
        """What makes the two numbers less comparable than they look."""
        out = []
        labels = self.measured_labels
        if self.entry is not None and self.number.label_type and labels in ("hard", "soft") \
                and labels != self.number.label_type:
            out.append(f"labels differ ({labels} measured, {self.number.label_type} reported)")
        if not self.number.sourced:
            out.append("no source given by the method's plugin")
        return out

    @property
    def note(self) -> str:
        return "; ".join([*self.caveats, *([self.number.note] if self.number.note else [])])


def reported_rows(board: "Board", *, unmeasured: bool = True) -> list[ReportedRow]:
    """The published numbers at ``board``'s (dataset, IPC): one row per entry whose method has one
    (board order), then (``unmeasured``) one per installed method with a number but no entry here."""
    key = cell_key(board.dataset, board.ipc)
    names, numbers = _installed()
    rows: list[ReportedRow] = []
    seen: set[str] = set()
    for entry in board.entries:
        canonical = names.get(entry.method, entry.method)
        seen.add(canonical)
        number = reported_for(entry.method).get(key)
        if number is not None:
            rows.append(ReportedRow(entry.method, entry.label, number, entry))
    if unmeasured:
        for name in sorted(numbers):
            number = numbers[name].get(key)
            if name not in seen and number is not None:
                rows.append(ReportedRow(name, name, number, None))
    return rows


# ---------------------------------------------------------------------------------------------
# cells, shared by every format


def fmt_delta(delta: float | None) -> str:
    """``+1.1`` (percentage points, one decimal as papers print); ``-`` when not measured."""
    return "-" if delta is None else f"{delta:+.1f}"


def cells(row: ReportedRow) -> list[str]:
    """The text cells of :data:`HEADERS` for ``row``."""
    from ddr.report.leaderboard_text import fmt_estimate

    measured = row.measured
    return [row.label, "not measured" if measured is None else fmt_estimate(measured), row.measured_labels,
            f"{row.number.value:.3f}", fmt_delta(row.delta_points), row.number.source, row.number.arch or "-",
            row.number.label_type or "-", row.note or "-"]


def reported_markdown(board: "Board") -> list[str]:
    """The board's "Reported (published) vs measured" section in Markdown (nothing when no method
    has a published number at its cell)."""
    from ddr.report.tabular import markdown_table

    rows = reported_rows(board)
    if not rows:
        return []
    return ["### Reported (published) vs measured", "",
            markdown_table(HEADERS, [cells(r) for r in rows], ["l", "r", "l", "r", "r", "l", "l", "l", "l"]), "",
            NOTE, ""]


def reported_html(board: "Board", *, method_href: Any = None) -> str:
    """The same section as an HTML table (``method_href(method) -> URL or None`` links the method
    names, as the site does); ``""`` when no method has a number at the board's cell."""
    rows = reported_rows(board)
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = []
    for r in rows:
        texts = cells(r)
        href = method_href(r.method) if method_href is not None else None
        first = (f'<a href="{html.escape(href)}">{html.escape(texts[0])}</a>' if href else html.escape(texts[0]))
        delta = r.delta_points
        tds = [f'<td class="label">{first}</td>',
               f'<td class="measured"{"" if r.measured is None else f" data-v={r.measured.mean!r}"}>'
               f'{html.escape(texts[1])}</td>',
               f'<td class="labels">{html.escape(texts[2])}</td>',
               f'<td class="reported" data-v="{r.number.value!r}">{html.escape(texts[3])}</td>',
               f'<td class="delta"{"" if delta is None else f" data-v={delta!r}"}>{html.escape(texts[4])}</td>',
               *(f'<td class="{c}">{html.escape(t)}</td>'
                 for c, t in zip(("source", "rarch", "rlabels", "rnote"), texts[5:]))]
        kind = "measured" if r.entry is not None else "unmeasured"
        body.append(f'<tr class="reported-row {kind}" data-method="{html.escape(r.method)}">{"".join(tds)}</tr>')
    title = html.escape(f"{board.title}: reported (published) vs measured")
    return (f'<section class="reported" data-board="{html.escape(board.title)}"><h3>{title}</h3>'
            f'<div class="board-wrap"><table class="reported-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div><p class="note">{html.escape(NOTE)}</p></section>')


CSV_HEADERS = ["reported_acc", "measured_minus_reported_points", "reported_paper", "reported_table", "reported_arch",
               "reported_label_type", "reported_note", "row_kind"]
"""The columns ``--reported`` adds to the leaderboard CSV (``reported_acc`` a fraction; the
difference in percentage points; ``row_kind``: ``measured`` for an entry, ``reported only`` for a
published number without a run on the board)."""


def csv_fields(row: ReportedRow | None) -> list[Any]:
    """The :data:`CSV_HEADERS` values of an entry's row (empty but the kind when it has no number)."""
    if row is None:
        return ["", "", "", "", "", "", "", "measured"]
    n = row.number
    delta = row.delta_points
    return [repr(n.value), "" if delta is None else repr(round(delta, 9)), n.paper or "", n.table or "", n.arch or "",
            n.label_type or "", row.note, "measured" if row.entry is not None else "reported only"]


def by_entry(rows: Sequence[ReportedRow]) -> dict[int, ReportedRow]:
    """The rows that have an entry, by the entry's ``id``."""
    return {id(r.entry): r for r in rows if r.entry is not None}


def reported_latex(board: "Board", generated: str | None = None) -> str:
    """A booktabs ``table`` of the board's published numbers beside the measurement (``""`` when
    none): method, measured acc syn (any) mean ± std, reported, Δ in points, source, arch, labels."""
    from ddr.report.leaderboard import provenance
    from ddr.report.leaderboard_latex import cell, escape, label_key

    rows = reported_rows(board)
    if not rows:
        return ""
    lines = ["\\begin{table}[htbp]", "\\centering", "\\small",
             f"\\caption{{{escape(board.title)}: reported (published) vs measured. {escape(NOTE)} "
             f"{escape(provenance(generated))}.}}",
             f"\\label{{{label_key(board)}-reported}}", "\\begin{tabular}{lrlrrlll}", "\\toprule",
             "Method & Measured acc syn (any) & Labels & Reported & $\\Delta$ (points) & Reported by & Arch & "
             "Labels \\\\", "\\midrule"]
    for r in rows:
        measured = "not measured" if r.measured is None else cell(r.measured, "pm")
        lines.append(" & ".join([escape(r.label), measured, escape(r.measured_labels), f"{r.number.value:.3f}",
                                 escape(fmt_delta(r.delta_points)), escape(r.number.source),
                                 escape(r.number.arch or "-"), escape(r.number.label_type or "-")]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)
