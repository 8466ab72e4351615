"""Improvement over the best coreset (IOC): each distillation method against the best selection
method of its leaderboard cell.

IOR asks whether a distilled set beats a *random* subset of the same size. IOC asks the sharper
question: does it beat the best subset a *selection* method (random, herding, K-center, the coreset
selectors: every method whose spec says ``family="selection"``) picked at the same size, evaluated
the same way? For a distillation entry ``m`` of a board (one dataset and IPC):

* the candidates are the board's selection entries evaluated under the same protocol (name,
  version and overrides) with the same kind of labels (hard/soft) as ``m``;
* the best is the candidate with the highest mean ``acc_syn_any`` (ties: the first label in
  alphabetical order);
* ``IOC = mean acc_syn_any(m) − mean acc_syn_any(best)``, a difference of fractions, with its 95 %
  interval and p value from :func:`ddr.report.ranking.compare` (a paired t test where the two
  entries' students or distillations share seeds, else Welch's).

Choosing the best of several selectors on the same test data favours the selector (the maximum
of noisy means is biased upwards), so IOC leans against the distillation method: a positive,
significant IOC is conservative, and a negative one may partly be that bias. The note of every
IOC table says so.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddr.report.methods import label_type, method_family
from ddr.report.ranking import compare, fmt_p
from ddr.report.tabular import fmt_num, markdown_table

if TYPE_CHECKING:  # pragma: no cover
    from ddr.report.leaderboard import Board, Entry
    from ddr.report.statistics import TestResult

METRIC = "acc_syn_any"
"""The accuracy IOC compares (the distilled set under its own label strategy, like IOR)."""
FAMILIES = ("all", "distillation", "selection")
"""What ``ddr leaderboard --family`` may show."""


@dataclass(frozen=True)
class CoresetGap:
    """IOC of one distillation entry.

    Attributes:
        entry: the distillation entry's label; best: the best selection entry's label (None when
            the cell has no comparable selection entry).
        candidates: how many comparable selection entries there were.
        mean: IOC, mean acc_syn_any of the entry minus the best's (a difference of fractions).
        entry_acc, best_acc: the two means.
        test: the paired or Welch t test of the difference (None when a side has < 2 replicates).
        reason: why there is no value or no test.
    """

    entry: str
    best: str | None
    candidates: int
    mean: float | None = None
    entry_acc: float | None = None
    best_acc: float | None = None
    test: "TestResult | None" = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entry": self.entry, "best_coreset": self.best, "candidates": self.candidates,
                               "ioc": self.mean, "entry_acc_syn_any": self.entry_acc,
                               "best_acc_syn_any": self.best_acc, "reason": self.reason}
        if self.test is not None:
            out.update(ci_low=self.test.ci.low, ci_high=self.test.ci.high, p=self.test.p_value,
                       test=self.test.method)
        return out


def _comparable(entry: "Entry", other: "Entry") -> bool:
    return other.protocol == entry.protocol and label_type(other.method, other.recipe) == \
        label_type(entry.method, entry.recipe)


def coreset_gaps(entries: Sequence["Entry"], w: float = 0.5) -> dict[str, CoresetGap]:
    """IOC of every distillation entry of one cell, by entry label (:class:`CoresetGap`).

    Empty when the cell has no selection entry or no distillation entry."""
    selectors = [e for e in entries if method_family(e.method) == "selection"]
    distillers = [e for e in entries if method_family(e.method) != "selection"]
    out: dict[str, CoresetGap] = {}
    if not selectors or not distillers:
        return out
    for entry in distillers:
        candidates = [s for s in selectors if _comparable(entry, s) and s.acc(METRIC).mean is not None]
        if not candidates:
            out[entry.label] = CoresetGap(entry.label, None, 0, reason="no selection method under the same protocol "
                                                                       "and labels")
            continue
        best = max(sorted(candidates, key=lambda s: s.label), key=lambda s: float(s.acc(METRIC).mean or 0.0))
        mine, theirs = entry.acc(METRIC).mean, best.acc(METRIC).mean
        if mine is None or theirs is None:
            out[entry.label] = CoresetGap(entry.label, best.label, len(candidates), reason=f"no {METRIC} values")
            continue
        comparison = compare(entry, best, w, metric=METRIC)
        out[entry.label] = CoresetGap(entry.label, best.label, len(candidates), mine - theirs, mine, theirs,
                                      comparison.test, comparison.reason)
    return out


def ioc(board: "Board") -> dict[str, CoresetGap]:
    """The ``ioc`` metric's target (``needs="board"``): :func:`coreset_gaps` of the board, computed
    over every entry of the cell (also those a ``--family`` filter hides)."""
    gaps = getattr(board, "coresets", None)
    return dict(gaps) if gaps is not None else coreset_gaps(board.entries, board.w)


def keep_family(entries: Iterable["Entry"], family: str) -> list["Entry"]:
    """The entries of ``family`` (``all``: every one)."""
    if family == "all":
        return list(entries)
    return [e for e in entries if method_family(e.method) == family]


def fmt_gap(gap: CoresetGap, digits: int = 4) -> str:
    """``+0.0123 [−0.0040, +0.0286]``; ``-`` without a value."""
    if gap.mean is None:
        return "-"
    text = f"{gap.mean:+.{digits}f}"
    if gap.test is not None:
        text += f" [{gap.test.ci.low:+.{digits}f}, {gap.test.ci.high:+.{digits}f}]"
    return text


def verdict(gap: CoresetGap) -> str:
    """``beats the best coreset`` / ``worse than the best coreset`` / ``no evidence`` (α = 0.05)."""
    from ddr.report.statistics import ALPHA

    if gap.test is None:
        return gap.reason or "untested"
    if gap.test.p_value < ALPHA:
        return "beats the best coreset" if gap.test.mean > 0 else "worse than the best coreset"
    return "no evidence"


IOC_NOTE = ("IOC = mean acc syn (any) of the method − that of the best selection method (coreset) of the same cell, "
            "protocol and labels; 95 % t interval, paired where students share seeds, else Welch. The best is "
            "picked on the same test data, which favours the coreset: a significant positive IOC is conservative, a "
            "negative one may partly be that bias.")


def coreset_markdown(board: "Board") -> list[str]:
    """The board's "Against the best coreset" section (nothing when the cell has no IOC)."""
    gaps = ioc(board)
    if not gaps:
        return []
    shown = {e.label for e in board.entries}
    rows = [[g.entry, g.best or "-", fmt_num(g.entry_acc), fmt_num(g.best_acc), fmt_gap(g),
             fmt_p(g.test.p_value) if g.test else "-", verdict(g)]
            for label, g in gaps.items() if label in shown]
    if not rows:
        return []
    return ["### Against the best coreset (IOC)", "",
            markdown_table(["method", "best coreset", "acc syn (any)", "its acc syn (any)", "IOC [95 % CI]", "p",
                            "verdict"], rows, ["l", "l", "r", "r", "r", "r", "l"]),
            "", IOC_NOTE, ""]


def coreset_html(board: "Board") -> str:
    """The "Against the best coreset (IOC)" section as HTML (``""`` when the cell has no IOC)."""
    import html

    shown = {e.label for e in board.entries}
    gaps = [g for label, g in ioc(board).items() if label in shown]
    if not gaps:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ("method", "best coreset", "acc syn (any)", "its acc syn (any)", "IOC [95 % CI]", "p", "verdict"))
    rows = []
    for g in gaps:
        value = "" if g.mean is None else f' data-v="{g.mean!r}"'
        cells = [html.escape(g.entry), html.escape(g.best or "-"), fmt_num(g.entry_acc), fmt_num(g.best_acc)]
        rows.append(f'<tr data-label="{html.escape(g.entry)}">'
                    + "".join(f"<td>{c}</td>" for c in cells)
                    + f'<td class="ioc"{value}>{html.escape(fmt_gap(g))}</td>'
                    + f"<td>{html.escape(fmt_p(g.test.p_value) if g.test else '-')}</td>"
                    + f"<td>{html.escape(verdict(g))}</td></tr>")
    title = html.escape(f"{board.title}: against the best coreset (IOC)")
    return (f'<section class="ioc" data-board="{html.escape(board.title)}"><h3>{title}</h3>'
            f'<div class="board-wrap"><table class="ioc-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div><p class="note">{html.escape(IOC_NOTE)}</p></section>')


CSV_HEADERS = ["family", "best_coreset", "ioc_mean", "ioc_ci_low", "ioc_ci_high", "ioc_p"]
"""The IOC columns of the CSV board (empty for selection entries and cells without IOC)."""


def csv_fields(board: "Board", entry: "Entry") -> list[Any]:
    gap = ioc(board).get(entry.label)
    if gap is None:
        return [method_family(entry.method), "", "", "", "", ""]
    return [method_family(entry.method), gap.best or "", repr(gap.mean) if gap.mean is not None else "",
            repr(gap.test.ci.low) if gap.test else "", repr(gap.test.ci.high) if gap.test else "",
            repr(gap.test.p_value) if gap.test else ""]
