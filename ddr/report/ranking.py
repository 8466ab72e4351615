"""What a board can and cannot say: is each method better than random, which methods can be told
apart, how many replicates would separate the closest pair, and for which w each ranking holds.

- **Replicates.** A claim about a method rests on its distillations when it has several (the
  students of one distilled set share its luck): the replicate is then a distillation's mean. With
  one distillation the replicates are its students, and the claim covers that distilled set only.
- **Beats random.** IOR = acc_syn_any − acc_rdm_any is tested two-sided against 0 with a t test
  over the replicates (per-student IOR, i.e. syn_any and rdm_any paired by student index, or
  per-distillation mean IOR): "beats random" when p < α and IOR > 0, "worse than random" when p <
  α and IOR < 0, "no evidence" otherwise.
- **Pairwise.** For each pair of entries, DDRS(w) is compared with a paired t test when both
  have replicates at the same keys (students at the same evaluation seed and index, or
  distillations at the same seed: then they share initial weights, data order and the very same
  random-subset students), Welch's t test otherwise; p-values are Holm-adjusted over the board's
  pairs. Entries with different kinds of replicate (one distillation against several) are not
  tested and count as not told apart.
- **Groups.** Entries sharing a letter are not significantly different (compact letter display);
  an entry's rank range runs from 1 + the entries that beat it to n − the entries it beats.
- **Power.** For the closest pair (the smallest |Δ DDRS| between neighbours), the replicates per
  entry a t test needs to separate that difference at the observed sd with 80 % power.
- **w-stability.** The order of mean DDRS as w sweeps [0, 1], with the w at which neighbours swap.

numpy and scipy only (lazily); never torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ddr.report import statistics as st

if TYPE_CHECKING:  # pragma: no cover
    from ddr.report.leaderboard import Board, Entry


@dataclass(frozen=True)
class Verdict:
    """Is the entry's IOR different from 0?"""

    text: str
    test: st.TestResult | None

    @property
    def short(self) -> str:
        if self.test is None:
            return self.text
        return f"{self.text} ({fmt_p_equals(self.test.p_value)})"


@dataclass(frozen=True)
class Comparison:
    """DDRS(w) of entry ``a`` against entry ``b`` (indices into the board's ranked entries)."""

    a: int
    b: int
    test: st.TestResult | None
    paired: bool
    unit: str
    p_holm: float | None = None
    reason: str = ""
    sd: float = 0.0
    """sd of the paired differences, or the pooled sd √((s_a² + s_b²)/2) of an unpaired test."""
    have: int = 0
    """pairs, or the smaller number of replicates of the two sides"""

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < st.ALPHA


@dataclass(frozen=True)
class PowerEstimate:
    """Replicates per entry needed to separate the closest pair."""

    a: int
    b: int
    delta: float
    sd: float
    paired: bool
    unit: str
    needed: int | None
    have: int


@dataclass(frozen=True)
class Segment:
    """A range of w over which the order of mean DDRS does not change."""

    low: float
    high: float
    order: tuple[str, ...]


@dataclass
class BoardAnalysis:
    comparisons: list[Comparison] = field(default_factory=list)
    power: PowerEstimate | None = None
    segments: list[Segment] = field(default_factory=list)

    def comparison(self, a: int, b: int) -> Comparison | None:
        for c in self.comparisons:
            if {c.a, c.b} == {a, b}:
                return c
        return None


TIE = 1e-12
"""Mean DDRS that differ by no more than this are equal (float rounding, not a difference)."""


def identical_pairs(board: "Board") -> list[tuple[str, str]]:
    """Entries whose every replicate has the same DDRS (e.g. two methods that chose the same images)."""
    out = []
    entries = board.entries
    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            a, b = entries[i].values("ddrs", board.w), entries[j].values("ddrs", board.w)
            if len(a) == len(b) and a and all(abs(x - y) <= TIE for x, y in zip(a, b)):
                out.append((entries[i].label, entries[j].label))
    return out


def fmt_p_equals(p: float) -> str:
    """``p = 0.012`` or ``p < 0.001``."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# ---------------------------------------------------------------------------------------------
# replicates


def replicates(entry: "Entry", metric: str, w: float) -> tuple[str, dict[object, float] | None, list[float]]:
    """``(unit, keyed, values)``: the unit (``distillations`` or ``students``), the replicates by
    pairing key (None when they cannot be paired) and their values."""
    dists = list(entry.distillations.values())
    if len(dists) > 1:
        per_dist = [(d.seed, d.values(metric, w)) for d in dists]
        means = [(seed, float(np.mean(values))) for seed, values in per_dist if values]
        seeds = [seed for seed, _ in means]
        keyed: dict[object, float] | None = None
        if len(means) == len(dists) and all(s is not None for s in seeds) and len(set(seeds)) == len(seeds):
            keyed = dict(means)
        return "distillations", keyed, [m for _, m in means]
    keyed_students: dict[object, float] = {}
    for d in dists:
        keyed_students.update(d.keyed(metric, w))
    return "students", keyed_students, list(keyed_students.values())


def verdict(entry: "Entry") -> Verdict:
    """Tests IOR against 0 at the entry's replicate level."""
    unit, _, values = replicates(entry, "ior", 0.5)
    if len(values) < 2:
        return Verdict(f"untested (n = {len(values)} {unit[:-1] if len(values) == 1 else unit})", None)
    what = ("per-distillation mean IOR" if unit == "distillations"
            else "per-student IOR (syn_any − rdm_any by student index, one distillation)")
    test = st.one_sample_test(values, what=f"{len(values)} {what}")
    assert test is not None
    if test.p_value < st.ALPHA:
        return Verdict("beats random" if test.mean > 0 else "worse than random", test)
    return Verdict("no evidence", test)


def compare(a: "Entry", b: "Entry", w: float, ia: int = 0, ib: int = 1, metric: str = "ddrs") -> Comparison:
    """``metric`` (DDRS at ``w`` by default) of ``a`` against ``b``: paired where they share
    replicate keys, else Welch."""
    unit_a, keyed_a, values_a = replicates(a, metric, w)
    unit_b, keyed_b, values_b = replicates(b, metric, w)
    if unit_a != unit_b:
        return Comparison(ia, ib, None, False, unit_a,
                          reason=f"not tested: {a.label} has {a.n_distillations} distillation(s), "
                                 f"{b.label} {b.n_distillations}")
    if keyed_a is not None and keyed_b is not None:
        common = sorted(set(keyed_a) & set(keyed_b), key=str)
        if len(common) >= 2:
            x = np.array([keyed_a[k] for k in common])
            y = np.array([keyed_b[k] for k in common])
            test = st.paired_test(x, y, what=f"{len(common)} {unit_a} at shared seeds")
            return Comparison(ia, ib, test, True, unit_a, sd=float(np.std(x - y, ddof=1)), have=len(common))
    test = st.welch_test(values_a, values_b, what=f"{len(values_a)} + {len(values_b)} {unit_a}")
    if test is None:
        return Comparison(ia, ib, None, False, unit_a, reason=f"not tested: fewer than 2 {unit_a} on a side")
    sd = math.sqrt((np.var(values_a, ddof=1) + np.var(values_b, ddof=1)) / 2)
    return Comparison(ia, ib, test, False, unit_a, sd=float(sd), have=min(len(values_a), len(values_b)))


def _power(board: "Board", comparisons: list[Comparison]) -> PowerEstimate | None:
    """The replicates needed to separate the closest neighbouring pair at its observed noise."""
    entries = board.entries
    best: tuple[float, Comparison] | None = None
    for k in range(len(entries) - 1):
        c = next((c for c in comparisons if (c.a, c.b) == (k, k + 1)), None)
        if c is None or c.test is None:
            continue
        gap = abs(c.test.mean)
        if gap <= TIE:  # identical scores: no number of runs separates them (said separately)
            continue
        if best is None or gap < best[0]:
            best = (gap, c)
    if best is None:
        return None
    c = best[1]
    assert c.test is not None
    needed = st.required_n(c.test.mean, c.sd, paired=c.paired)
    return PowerEstimate(c.a, c.b, float(c.test.mean), c.sd, c.paired, c.unit, needed, c.have)


# ---------------------------------------------------------------------------------------------
# w-stability


def _order(entries: "list[Entry]", w: float) -> tuple[str, ...]:
    means = [(float(np.mean(e.values("ddrs", w))) if e.values("ddrs", w) else -math.inf, e.label) for e in entries]
    return tuple(label for _, label in sorted(means, key=lambda m: (-m[0], m[1])))


def w_segments(entries: "list[Entry]", steps: int = 100, tol: float = 1e-4) -> list[Segment]:
    """The ranges of w ∈ [0, 1] with one order of mean DDRS; the boundaries are located by
    bisection to ``tol`` between the ``steps``-grid points where the order changes."""
    if not entries:
        return []
    grid = [k / steps for k in range(steps + 1)]
    orders = [_order(entries, w) for w in grid]
    segments: list[Segment] = []
    low = 0.0
    for k in range(1, len(grid)):
        if orders[k] != orders[k - 1]:
            lo, hi = grid[k - 1], grid[k]
            while hi - lo > tol:
                mid = (lo + hi) / 2
                if _order(entries, mid) == orders[k - 1]:
                    lo = mid
                else:
                    hi = mid
            boundary = round((lo + hi) / 2, 4)
            if boundary - low > tol:  # an order held at a single w (an exact tie there) is no range
                segments.append(Segment(low, boundary, orders[k - 1]))
                low = boundary
    segments.append(Segment(low, 1.0, orders[-1]))
    return segments


# ---------------------------------------------------------------------------------------------
# the board


def tie_structure(entries: "list[Entry]", w: float) -> tuple[list[Comparison], list[str], list[tuple[int, int]]]:
    """Pairwise comparisons of DDRS(w) (Holm-adjusted), tie letters and rank ranges of ``entries``
    (in ranked order)."""
    raw = [compare(entries[i], entries[j], w, i, j) for i in range(len(entries)) for j in range(i + 1, len(entries))]
    tested = [c for c in raw if c.test is not None]
    adjusted = st.holm([c.test.p_value for c in tested if c.test is not None])
    holm_of = {(c.a, c.b): p for c, p in zip(tested, adjusted)}
    comparisons = [replace(c, p_holm=holm_of.get((c.a, c.b))) for c in raw]
    different = {(c.a, c.b) for c in comparisons if c.significant}
    better = set()
    for c in comparisons:
        if c.significant and c.test is not None:
            better.add((c.a, c.b) if c.test.mean > 0 else (c.b, c.a))
    letters = st.letter_groups(len(entries), different)
    return comparisons, letters, [st.rank_range(k, len(entries), better) for k in range(len(entries))]


def analyse(board: "Board") -> BoardAnalysis:
    """Verdicts, pairwise comparisons (Holm), tie letters, rank ranges, power and w-stability of
    ``board`` (entries must already be ranked); sets ``verdict``, ``group`` and ``rank_range`` on
    every entry."""
    entries = board.entries
    for entry in entries:
        entry.verdict = verdict(entry)
    comparisons, letters, ranges = tie_structure(entries, board.w)
    for k, entry in enumerate(entries):
        entry.group, entry.rank_range = letters[k], ranges[k]
    return BoardAnalysis(comparisons, _power(board, comparisons), w_segments(entries))


def snapshot(entries: "list[Entry]", w: float) -> dict[str, dict[str, object]]:
    """Per label at weight ``w``: position rank (equal means share one), rank range, tie letters
    and the DDRS(w) estimate; ``entries`` are left as they are."""
    def key(e: "Entry") -> tuple:
        m = e.ddrs_at(w).mean
        h = e.hlr.mean
        return (-(m if m is not None else -math.inf), h if h is not None else math.inf, e.label)

    ordered = sorted(entries, key=key)
    _, letters, ranges = tie_structure(ordered, w)
    out: dict[str, dict[str, object]] = {}
    previous, rank = None, 0
    for position, e in enumerate(ordered, start=1):
        est = e.ddrs_at(w)
        if est.mean != previous:
            rank, previous = position, est.mean
        out[e.label] = {"rank": rank, "best": ranges[position - 1][0], "worst": ranges[position - 1][1],
                        "group": letters[position - 1], "mean": est.mean, "std": est.std,
                        "ci": [est.ci.low, est.ci.high] if est.ci else None}
    return out


def fmt_rank(entry: "Entry") -> str:
    low, high = entry.rank_range
    return str(low) if low == high else f"{low}–{high}"


def describe_power(board: "Board") -> str:
    """One sentence on the closest pair and what would separate it."""
    analysis: BoardAnalysis | None = board.analysis
    same = identical_pairs(board)
    prefix = ("Identical scores at every student: " + "; ".join(f"{a} = {b}" for a, b in same) + ". ") if same else ""
    if analysis is None or analysis.power is None:
        return prefix + "Closest pair: no pair of different entries with ≥ 2 replicates each to estimate the noise from."
    p = analysis.power
    a, b = board.entries[p.a].label, board.entries[p.b].label
    c = analysis.comparison(p.a, p.b)
    state = "told apart" if c is not None and c.significant else "not told apart"
    unit = p.unit
    per = "pairs" if p.paired else f"{unit} per method"
    if p.needed is None:
        need = f"cannot be separated at any practical number of {unit} (Δ = {p.delta:+.4f})"
    elif p.needed <= p.have:
        need = f"{p.have} {per} suffice for 80 % power at α = {st.ALPHA:g}"
    else:
        need = f"separating it at α = {st.ALPHA:g} with 80 % power needs ≈ {p.needed:,} {per} (have {p.have})"
    kind = "paired" if p.paired else "Welch"
    return (f"{prefix}Closest pair: {a} vs {b}, Δ DDRS {p.delta:+.4f} ({state}; {kind} t, sd {p.sd:.4f} over {unit}); "
            f"{need}.")


def describe_segments(board: "Board") -> str:
    """``Ranking by mean DDRS: w ∈ [0.00, 0.41]: A > B; w ∈ [0.41, 1.00]: B > A.``"""
    analysis: BoardAnalysis | None = board.analysis
    if analysis is None or not analysis.segments:
        return ""
    if len(analysis.segments) == 1:
        return "Ranking by mean DDRS is the same for every w ∈ [0, 1]."
    parts = [f"w ∈ [{s.low:.2f}, {s.high:.2f}]: {' > '.join(s.order)}" for s in analysis.segments]
    return "Ranking by mean DDRS over w: " + "; ".join(parts) + "."
