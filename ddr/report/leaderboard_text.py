"""The leaderboard as Markdown and CSV: per board a score table (mean ± std and 95 % interval,
tie group, rank range, beats-random verdict), a cost and storage table, the pairwise comparisons,
the power estimate and the w-stability of the ranking. Standard library only; never torch."""

from __future__ import annotations

from collections.abc import Sequence

from ddr.report import coresets
from ddr.report import statistics as st
from ddr.report.columns import Column, column, extra_columns
from ddr.report.leaderboard import ACCURACIES, Board, Entry, _json, provenance, score_column
from ddr.report.methods import label_type, method_info
from ddr.report.ranking import BoardAnalysis, describe_power, describe_segments, fmt_p, fmt_rank
from ddr.report.statistics import Estimate
from ddr.report.tabular import csv_text, fmt_bytes, fmt_num, fmt_seconds, markdown_table


def fmt_estimate(e: Estimate, digits: int = 4) -> str:
    """``mean ± std [low, high]``; ``mean (n = 1)`` for one value; ``-`` for none."""
    if e.mean is None:
        return "-"
    if e.n <= 1:
        return f"{fmt_num(e.mean, digits)} (n = 1)"
    text = f"{fmt_num(e.mean, digits)} ± {fmt_num(e.std, digits)}"
    if e.ci is not None:
        text += f" [{fmt_num(e.ci.low, digits)}, {fmt_num(e.ci.high, digits)}]"
    return text


def fmt_flops(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} FLOP"


def fmt_count(value: float | None) -> str:
    return "-" if value is None else f"{int(round(value)):,}"


def replication(e: Entry) -> str:
    return f"{e.n_distillations} × {e.n_students // max(1, e.n_distillations)}" if e.n_distillations > 1 \
        else f"1 × {e.n_students}"


def pareto(entries: Sequence[Entry], cost_key: str) -> set[str]:
    """Labels on the Pareto front of (higher mean DDRS, lower cost): no other entry has at least
    as high a DDRS and at most the cost, with one of the two strictly better."""
    points: list[tuple[str, float, float]] = []
    for e in entries:
        d, c = e.ddrs.mean, e.storage_bytes if cost_key == "storage" else e.cost(cost_key)
        if d is not None and c is not None:
            points.append((e.label, float(d), float(c)))
    front = set()
    for label, d, c in points:
        if not any((d2 >= d and c2 <= c) and (d2 > d or c2 < c) for _, d2, c2 in points):
            front.add(label)
    return front


SCORED = ("ddrs", "hlr", "ior")
"""The scores a board's table leads with (then the verdict, the accuracies, any reported metric)."""


def board_columns(board: Board) -> list[Column]:
    """The metric columns of ``board``'s score table after the verdict: the accuracies, then every
    reported metric some entry's students carry (labels and directions from the registry)."""
    keys = {k for e in board.entries for k in e.metric_keys()}
    return [column(a) for a in ACCURACIES] + extra_columns(keys)


def score_headers(board: Board) -> list[str]:
    return ["rank", "group", "method", "arch", *(column(k).header for k in SCORED), "vs random",
            *(c.header for c in board_columns(board)), "venue", "labels", "distillations × students"]
COST_HEADERS = ["method", "distill wall", "distill CPU", "distill GPU", "peak memory", "FLOPs (est.)",
                "teacher images", "eval wall", "storage", "Pareto"]


def _score_cells(e: Entry, extra: list[Column]) -> list[str]:
    return [fmt_rank(e), e.group or "-", e.label, e.arch or "-", fmt_estimate(e.ddrs), fmt_estimate(e.hlr),
            fmt_estimate(e.ior), e.verdict.short if e.verdict is not None else "-",
            *(fmt_estimate(e.estimate(c.key)) for c in extra), method_info(e.method).venue_text,
            label_type(e.method, e.recipe), replication(e)]


def _cost_cells(e: Entry, fronts: dict[str, set[str]]) -> list[str]:
    marks = [name for name, front in fronts.items() if e.label in front]
    return [e.label, fmt_seconds(e.cost("distill_wall_seconds")), fmt_seconds(e.cost("distill_cpu_seconds")),
            fmt_seconds(e.cost("distill_gpu_seconds")), fmt_bytes(e.cost("distill_peak_memory_bytes")),
            fmt_flops(e.cost("distill_flops_estimate")), fmt_count(e.cost("teacher_forward_images")),
            fmt_seconds(e.cost("eval_wall_seconds")), fmt_bytes(e.storage_bytes), ", ".join(marks) or "-"]


def _comparison_rows(board: Board) -> list[list[str]]:
    analysis: BoardAnalysis | None = board.analysis
    if analysis is None:
        return []
    rows = []
    for c in analysis.comparisons:
        a, b = board.entries[c.a].label, board.entries[c.b].label
        if c.test is None:
            rows.append([a, b, "-", c.reason, "-", "-", "-"])
            continue
        rows.append([a, b, f"{c.test.mean:+.4f}", c.test.method, fmt_p(c.test.p_value), fmt_p(c.p_holm),
                     "yes" if c.significant else "no"])
    return rows


def board_markdown(board: Board, reported: bool = False) -> list[str]:
    """One board's Markdown; ``reported``: with its "Reported (published) vs measured" section
    (:mod:`ddr.report.reported`) after the score table's notes."""
    protocols = board.protocols
    head = (f"Protocol: {next(iter(protocols))}" if len(protocols) == 1
            else "**Mixed protocols**: " + "; ".join(f"{p} ({', '.join(labels)})" for p, labels in protocols.items()))
    fronts = {"cost": pareto(board.entries, "distill_wall_seconds"), "storage": pareto(board.entries, "storage")}
    headers, extra = score_headers(board), board_columns(board)
    name = score_column().label
    out = [f"## {board.title}", "", head, "",
           markdown_table(headers, [_score_cells(e, extra) for e in board.entries],
                          ["r", "l", "l", "l", "r", "r", "r", "l"] + ["r"] * (len(headers) - 11) + ["l", "l", "r"]),
           "",
           f"Groups: entries sharing a letter cannot be told apart (pairwise t tests on {name} at "
           f"w = {board.w:.2f}, paired where students or distillations share seeds, Holm-adjusted, α = {st.ALPHA:g}); "
           f"rank is the range of ranks consistent with the significant differences.",
           "", describe_power(board)]
    segments = describe_segments(board)
    if segments:
        out += ["", segments]
    out += ["", f"Note: {board.note}", ""]
    if reported:
        from ddr.report.reported import reported_markdown

        out += reported_markdown(board)
    from ddr.report.coresets import coreset_markdown

    out += coreset_markdown(board)
    out += ["### Cost and storage", "",
            markdown_table(COST_HEADERS, [_cost_cells(e, fronts) for e in board.entries],
                           ["l"] + ["r"] * 8 + ["l"]),
            "",
            "Per distillation, mean over distillations. FLOPs: an estimate (torch's FlopCounterMode on one sampled "
            "iteration of the method's main loop × its iterations). Storage: what a user must keep to train the "
            "students again (images, soft labels, learned LR, and the teacher when the label strategy needs one). "
            f"Pareto: on the front of higher {name} at lower distillation wall time (cost) or storage.", ""]
    metrics = [c for c in extra if c.key not in ACCURACIES]
    if metrics:
        out += ["Reported metrics: " + "; ".join(f"{c.metric_label} ({c.direction_words}): {c.formula}"
                                                 for c in {c.metric: c for c in metrics}.values()), ""]
    rows = _comparison_rows(board)
    if rows:
        out += ["### Pairwise comparisons", "",
                markdown_table(["A", "B", "Δ DDRS (A − B)", "test", "p", "p (Holm)", "different"], rows,
                               ["l", "l", "r", "l", "r", "r", "l"]), ""]
    return out


def to_markdown(boards: Sequence[Board], generated: str | None = None, reported: bool = False) -> str:
    w = boards[0].w if boards else 0.5
    out = ["# ddr leaderboard", "", provenance(generated), "",
           f"Ranked by {score_column().label} at w = {fmt_num(w, 2)}: {score_column().formula}, computed per student. "
           "Cells read "
           "mean ± sample std [95 % interval]; accuracies are fractions in [0, 1]. \"vs random\" tests IOR against 0 "
           "(two-sided t, α = 0.05).", ""]
    if not boards:
        out.append("_no runs_")
    for board in boards:
        out += board_markdown(board, reported)
    return "\n".join(out).rstrip() + "\n"


def _estimate_columns(e: Estimate) -> list[str]:
    return [repr(e.mean), repr(e.std), repr(e.ci.low) if e.ci else "", repr(e.ci.high) if e.ci else ""]


CSV_HEADERS = (["dataset", "ipc", "rank", "rank_best", "rank_worst", "group", "method", "arch", "venue", "year",
                "label_type", "protocol",
                "budget", "w"]
               + [f"{m}_{s}" for m in ("ddrs", "hlr", "ior", *ACCURACIES) for s in ("mean", "std", "ci_low", "ci_high")]
               + ["vs_random", "vs_random_p", "distillations", "students", "distill_wall_seconds",
                  "distill_cpu_seconds", "distill_gpu_seconds", "distill_peak_memory_bytes", "distill_flops_estimate",
                  "teacher_forward_images", "eval_wall_seconds", "storage_bytes", "method_params", "ddr", "note"]
               + coresets.CSV_HEADERS)


def to_csv(boards: Sequence[Board], generated: str | None = None, reported: bool = False) -> str:
    """One row per entry (:data:`CSV_HEADERS`); ``reported``: the published-number columns of
    :data:`ddr.report.reported.CSV_HEADERS` too, and a ``reported only`` row per method with a
    published number at a board's cell but no entry there."""
    from ddr.report import reported as rep

    made = provenance(generated)
    rows: list[list] = []
    for board in boards:
        published = rep.reported_rows(board) if reported else []
        mine = rep.by_entry(published)
        for e in board.entries:
            info = method_info(e.method)
            rows.append([board.dataset, board.ipc, e.rank, e.rank_range[0], e.rank_range[1], e.group, e.label,
                         e.arch, info.venue, info.year, label_type(e.method, e.recipe), e.protocol, e.budget_note, repr(board.w),
                         *_estimate_columns(e.ddrs), *_estimate_columns(e.hlr), *_estimate_columns(e.ior),
                         *(c for a in ACCURACIES for c in _estimate_columns(e.acc(a))),
                         e.verdict.text if e.verdict else "",
                         repr(e.verdict.test.p_value) if e.verdict and e.verdict.test else "",
                         e.n_distillations, e.n_students,
                         *(e.cost(k) for k in ("distill_wall_seconds", "distill_cpu_seconds", "distill_gpu_seconds",
                                               "distill_peak_memory_bytes", "distill_flops_estimate",
                                               "teacher_forward_images", "eval_wall_seconds")),
                         e.storage_bytes, _json(e.method_params), made, board.note,
                         *coresets.csv_fields(board, e)])
            if reported:
                rows[-1] += rep.csv_fields(mine.get(id(e)))
        for r in published:
            if r.entry is None:
                info = method_info(r.method)
                line: list = [""] * len(CSV_HEADERS)
                line[:2], line[6], line[8:10] = [board.dataset, board.ipc], r.method, [info.venue, info.year]
                line[CSV_HEADERS.index("ddr")] = made
                rows.append(line + rep.csv_fields(r))
    return csv_text(CSV_HEADERS + (rep.CSV_HEADERS if reported else []), rows)
