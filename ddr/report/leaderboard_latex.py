"""The leaderboard as LaTeX: one booktabs table per board (dataset, IPC), ready for a paper.

Each table has a row per entry (method label, venue and year of its paper, label type, student
architecture), the scores DDRS (LRS), HLR and IOR, the synthetic-set accuracies and any reported
metric, and the replication (distillations × students). Cells read ``mean ± std`` (``pm``) or
``mean [low, high]`` with the leaderboard's 95 % interval (``ci``); accuracies and scores are
fractions in [0, 1]. The best mean of each column is bold, "best" in the direction the metric
registry gives (:func:`ddr.report.columns.column`: HLR's lowest, DDRS's highest), compared at the
printed precision so printed ties are all bold. The caption names the protocol (name, version,
overrides), ddr's version, the date and what the spread covers.

The output needs ``\\usepackage{booktabs}``; ``standalone=True`` wraps it in a complete document
(``article``, T1 fonts, UTF-8 input) that ``pdflatex`` compiles. Every piece of text from a record
(method labels, protocol names, metric labels) passes through :func:`escape`.

Standard library only; never torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ddr.errors import DdrError
from ddr.report.columns import Column, column
from ddr.report.leaderboard import ACCURACIES, Board, Entry, provenance
from ddr.report.methods import label_type, method_info
from ddr.report.statistics import Estimate
from ddr.report.tabular import fmt_num

UNCERTAINTIES = ("pm", "ci")
"""How a cell shows uncertainty: ``pm`` mean ± sample std, ``ci`` mean [95 % interval]."""

_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # characters ddr's own labels use that pdflatex's default fonts lack
    "·": r"\textperiodcentered{}", "×": r"$\times$", "±": r"$\pm$", "−": r"$-$", "≥": r"$\geq$", "≤": r"$\leq$",
    "↑": r"$\uparrow$", "↓": r"$\downarrow$", "→": r"$\rightarrow$", "²": r"\textsuperscript{2}",
    "⁴": r"\textsuperscript{4}", "–": "--", "—": "---", "Δ": r"$\Delta$", "α": r"$\alpha$", "≈": r"$\approx$",
    "✓": r"$\surd$",  # a verified import (docs/leaderboard.md)
}
_SPECIAL_RE = re.compile("|".join(re.escape(k) for k in _SPECIAL))

SCORES = ("ddrs", "hlr", "ior")
"""The scores every table leads with."""
SYN_ACCURACIES = ("acc_syn_hard", "acc_syn_any")
"""The accuracies a table shows: the synthetic sets'. The full-data and random-subset references
are the same for every entry of one architecture, so the caption states them instead."""


def escape(text: object) -> str:
    """``text`` with LaTeX's special characters (``\\ & % $ # _ { } ~ ^``, and the few non-ASCII
    symbols ddr's labels use) made literal."""
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(0)], str(text))


def check_uncertainty(uncertainty: str) -> str:
    """``uncertainty`` if it is one of :data:`UNCERTAINTIES`, else a :class:`DdrError`."""
    if uncertainty not in UNCERTAINTIES:
        raise DdrError(f"unknown uncertainty '{uncertainty}'; choose pm (mean ± std) or ci (mean [95 % interval])")
    return uncertainty


def cell(e: Estimate, uncertainty: str = "pm", digits: int = 4, bold: bool = False) -> str:
    """One LaTeX cell: ``mean $\\pm$ std`` or ``mean [low, high]`` (the mean bold when ``bold``);
    the mean alone for one value or no interval; ``--`` for none."""
    if e.mean is None:
        return "--"
    mean = fmt_num(e.mean, digits)
    mean = f"\\textbf{{{mean}}}" if bold else mean
    if e.n <= 1:
        return mean
    if uncertainty == "ci":
        return mean if e.ci is None else f"{mean} [{fmt_num(e.ci.low, digits)}, {fmt_num(e.ci.high, digits)}]"
    return f"{mean} $\\pm$ {fmt_num(e.std, digits)}"


def best_rows(values: Sequence[float | None], higher_is_better: bool, digits: int = 4) -> set[int]:
    """Indices of the best values (highest or lowest by direction), compared as printed with
    ``digits`` decimals, so values that print equal are all best; none when fewer than two values."""
    printed = {k: round(v, digits) for k, v in enumerate(values) if v is not None}
    if len(printed) < 2:
        return set()
    best = max(printed.values()) if higher_is_better else min(printed.values())
    return {k for k, v in printed.items() if v == best}


def header(col: Column) -> str:
    """``HLR $\\downarrow$``: the registry's label and direction."""
    arrow = "$\\uparrow$" if col.higher_is_better else "$\\downarrow$"
    return f"{escape(col.label)} {arrow}"


def table_columns(board: Board) -> list[Column]:
    """The metric columns of ``board``'s table: the scores, the synthetic accuracies, then every
    reported metric some entry carries (labels and directions from the registry)."""
    from ddr.report.leaderboard_text import board_columns

    extra = [c for c in board_columns(board) if c.key not in ACCURACIES]
    return [column(k) for k in (*SCORES, *SYN_ACCURACIES)] + extra


def venue(e: Entry) -> str:
    """The entry's method's venue and year (``-`` when the method's spec does not say)."""
    return method_info(e.method).venue_text


def replication(e: Entry) -> str:
    """``2 $\\times$ 2``: distillations × students per distillation (``1 $\\times$ n`` for one)."""
    per = e.n_students // max(1, e.n_distillations)
    return f"{e.n_distillations} $\\times$ {per}"


def protocol_text(board: Board) -> str:
    """The board's protocol (name, version and overrides), or the entries of each when mixed."""
    protocols = board.protocols
    if len(protocols) == 1:
        return f"Protocol: {escape(next(iter(protocols)))}"
    return "Mixed protocols (not comparable): " + "; ".join(
        f"{escape(p)} ({escape(', '.join(labels))})" for p, labels in protocols.items())


def _references(board: Board) -> str:
    parts = []
    for key, words in (("acc_real_hard", "full-data accuracy"), ("acc_rdm_any", "random-subset accuracy")):
        by_arch: dict[str, list[float]] = {}
        for e in board.entries:
            by_arch.setdefault(e.arch or "-", []).extend(e.values(key))
        for arch, values in sorted(by_arch.items()):
            if values:
                tag = f" ({escape(arch)})" if len(by_arch) > 1 else ""
                parts.append(f"{words}{tag} {fmt_num(sum(values) / len(values), 4)}")
    return "; ".join(parts)


def caption(board: Board, uncertainty: str, generated: str | None = None) -> str:
    """The caption: board, protocol, what a cell reads, the references, replication and provenance."""
    spread = ("mean $\\pm$ sample std" if uncertainty == "pm"
              else "mean [95~\\% interval: t over students for one distillation, hierarchical bootstrap for several]")
    counts = "; ".join(f"{escape(e.label)} {e.n_distillations} distillation{'s' if e.n_distillations != 1 else ''} "
                       f"$\\times$ {e.n_students // max(1, e.n_distillations)} students" for e in board.entries)
    refs = _references(board)
    return (f"{escape(board.title)}. {protocol_text(board)}. Cells: {spread} over all students, fractions in [0, 1]; "
            f"{escape(column('ddrs').label)} at $w = {board.w:g}$; bold: best per column "
            f"($\\uparrow$ higher, $\\downarrow$ lower is better). "
            + (f"References: {refs}. " if refs else "")
            + f"Replication: {counts}. {escape(provenance(generated))}.")


def label_key(board: Board) -> str:
    """``tab:ddr-digits-ipc1``: a label for ``\\ref``."""
    return "tab:ddr-" + re.sub(r"[^A-Za-z0-9-]+", "-", f"{board.dataset}-ipc{board.ipc}").strip("-").lower()


def board_latex(board: Board, uncertainty: str = "pm", generated: str | None = None, digits: int = 4) -> str:
    """One ``table`` environment (booktabs) for ``board``."""
    cols = table_columns(board)
    means = {c.key: [e.estimate(c.key, board.w).mean if c.key == "ddrs" else e.estimate(c.key).mean
                     for e in board.entries] for c in cols}
    best = {c.key: best_rows(means[c.key], c.higher_is_better, digits) for c in cols}
    heads = ["Method", "Venue", "Labels", "Arch", *(header(c) for c in cols), "Dist.\\,$\\times$\\,stud."]
    lines = ["\\begin{table}[htbp]", "\\centering", "\\small",
             f"\\caption{{{caption(board, uncertainty, generated)}}}", f"\\label{{{label_key(board)}}}",
             "\\begin{tabular}{" + "llll" + "r" * len(cols) + "r}", "\\toprule",
             " & ".join(heads) + " \\\\", "\\midrule"]
    for k, e in enumerate(board.entries):
        cells = [escape(e.label), escape(venue(e)), escape(label_type(e.method, e.recipe)), escape(e.arch or "-")]
        for c in cols:
            est = e.estimate(c.key, board.w) if c.key == "ddrs" else e.estimate(c.key)
            cells.append(cell(est, uncertainty, digits, bold=k in best[c.key]))
        cells.append(replication(e))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)


PREAMBLE = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
            "\\usepackage{booktabs}\n\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n")
"""What :func:`wrap` puts before the tables (``pdflatex`` compiles the result)."""


def wrap(body: str, standalone: bool) -> str:
    """``body`` as a complete document when ``standalone``, else as it is."""
    return f"{PREAMBLE}{body}\n\\end{{document}}\n" if standalone else body


def to_latex(boards: Iterable[Board], uncertainty: str = "pm", generated: str | None = None, *,
             standalone: bool = False, digits: int = 4, reported: bool = False) -> str:
    """Every board as a booktabs table (``\\usepackage{booktabs}``); ``standalone``: a whole document;
    ``reported``: after each board, its published numbers beside the measurement (a second table,
    :func:`ddr.report.reported.reported_latex`)."""
    check_uncertainty(uncertainty)
    boards = list(boards)
    out = [f"% ddr leaderboard: {provenance(generated)}; needs \\usepackage{{booktabs}}"]
    if not boards:
        out.append("% no runs")
    for b in boards:
        out.append(board_latex(b, uncertainty, generated, digits))
        if reported:
            from ddr.report.reported import reported_latex

            out += [t for t in [reported_latex(b, generated)] if t]
    return wrap("\n\n".join(out) + "\n", standalone)
