"""Plain-text tables of results and records (the ``ddr run``/``eval``/``show`` printouts).

Works on the JSON form of results (``metrics.json``, ``--json``), so it never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def score_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label with direction, key) of every score ``record`` holds: the built-in scores, then
    each reported metric's columns (labels and directions from the metric registry)."""
    from ddr.report.columns import builtin_columns, extra_columns, is_summary

    keys = [k for k, v in record.items() if is_summary(v)]
    return [(c.header, c.key) for c in (*builtin_columns(), *extra_columns(keys)) if c.key in record]


def fmt_summary(summary: Mapping[str, Any]) -> str:
    """``mean ± std`` with 4 decimals, or ``mean (n=1)`` when one value has no spread to show."""
    if int(summary.get("n", 0)) <= 1:
        return f"{summary['mean']:.4f} (n=1)"
    return f"{summary['mean']:.4f} ± {summary['std']:.4f}"


def describe_run(record: Mapping[str, Any]) -> str:
    """One line naming what was run: method, dataset, IPC, protocol and every override."""
    spec = record.get("run_spec", {})
    method = record.get("method") or spec.get("method") or f"eval {spec.get('source', '')}".strip()
    overrides = spec.get("protocol_overrides") or {}
    protocol = f"{record.get('protocol')} v{record.get('protocol_version')}"
    if overrides:
        protocol += " + " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    budget = record.get("budget")
    text = f"{method} · {spec.get('dataset')} · IPC {spec.get('ipc')} · {protocol}"
    if budget:
        text += f" · budget '{budget}'"
    return text


def result_table(record: Mapping[str, Any]) -> str:
    """The score table of one result (its ``--json`` / ``metrics.json`` form)."""
    rows = score_rows(record)
    width = max([26, *(len(label) + 2 for label, _ in rows)])
    lines = [describe_run(record), f"{'quantity':<{width}}{'mean ± std (fractions)':>24}"]
    for label, key in rows:
        lines.append(f"{label:<{width}}{fmt_summary(record[key]):>24}")
    if "distill_seconds" in record:
        cached = " (cached)" if record.get("distill_cached") else ""
        lines.append(f"{'distill time':<26}{record['distill_seconds']:>22.1f} s{cached}")
    if "eval_seconds" in record:
        lines.append(f"{'eval time':<26}{record['eval_seconds']:>22.1f} s")
    reused = record.get("reused_jobs") or {}
    if reused:
        lines.append("reused from the job cache: " + ", ".join(f"{n} {role}" for role, n in sorted(reused.items())))
    n = record.get("acc_syn_hard", {}).get("n")
    selection = "yes" if record.get("test_set_selection") else "no"
    lines.append(f"seed {record.get('seed')}, {n} student{'s' if n != 1 else ''} per accuracy, "
                 f"test-set selection: {selection}")
    return "\n".join(lines)


def runs_listing(records: list[tuple[str, Mapping[str, Any]]]) -> str:
    """One line per run record: folder name, what ran, DDRS."""
    if not records:
        return "no run records"
    width = max(len(name) for name, _ in records)
    lines = []
    for name, record in records:
        ddrs = record.get("ddrs", {})
        score = fmt_summary(ddrs) if ddrs else "-"
        lines.append(f"{name:<{width}}  DDRS {score:<18} {describe_run(record)}")
    return "\n".join(lines)


GENERALISATION_COLUMNS = (("acc syn (hard)", "acc_syn_hard"), ("acc syn (any)", "acc_syn_any"),
                          ("acc random", "acc_rdm_any"), ("acc real", "acc_real_hard"), ("HLR", "hlr"),
                          ("IOR", "ior"), ("DDRS", "ddrs"))


def generalisation_table(records: Sequence[Mapping[str, Any]], failures: Sequence[tuple[str, str]] | None = None) -> str:
    """One distilled set on several student architectures (DC-Bench's cross-architecture table):
    one row per architecture, each scored against its own real-data and random students."""
    from ddr.report.tabular import text_table

    if not records and not failures:
        return "no results"
    head = describe_run(records[0]) if records else ""
    distill_arch = (records[0].get("run_spec") or {}).get("distill_arch") if records else None
    rows = []
    for record in records:
        arch = record.get("eval_arch") or (record.get("run_spec") or {}).get("arch") or "?"
        rows.append([arch] + [fmt_summary(record[key]) if key in record else "-" for _, key in GENERALISATION_COLUMNS])
    for arch, message in failures or []:
        rows.append([arch, f"failed: {message}"] + [""] * (len(GENERALISATION_COLUMNS) - 1))
    table = text_table(["student arch"] + [label for label, _ in GENERALISATION_COLUMNS], rows,
                       ["l"] + ["r"] * len(GENERALISATION_COLUMNS))
    note = f"distilled with {distill_arch}; " if distill_arch else ""
    return (f"{head}\n{table}\n{note}each row's HLR/IOR/DDRS use that architecture's own real-data and random "
            "students (fractions)")


def seeds_summary(rows: Sequence[Mapping[str, Any]], as_json: bool = False) -> Any:
    """One method distilled with several seeds (``ddr run --distill-seeds N``): per quantity the
    mean ± std over distillations × students and the 95 % interval (hierarchical bootstrap over
    distillations, then students), and the beats-random verdict on IOR (t over per-distillation
    means). ``as_json``: the same as a dict."""
    from ddr.report.columns import builtin_columns
    from ddr.report.leaderboard import ACCURACIES as ACCURACY_KEYS
    from ddr.report.leaderboard import build_leaderboard
    from ddr.report.leaderboard_text import fmt_estimate

    boards = build_leaderboard(rows)
    entries = [e for b in boards for e in b.entries]
    if as_json:
        def described(e: Any, key: str) -> dict[str, Any]:
            est = e.estimate(key)
            return {"mean": est.mean, "std": est.std, "n": est.n,
                    "ci": None if est.ci is None else [est.ci.low, est.ci.high],
                    "ci_method": None if est.ci is None else est.ci.method}

        return [{"method": e.label, "dataset": b.dataset, "ipc": b.ipc, "protocol": e.protocol,
                 "distillations": e.n_distillations, "students": e.n_students,
                 "verdict": e.verdict.text if e.verdict else None,
                 "verdict_p": e.verdict.test.p_value if e.verdict and e.verdict.test else None,
                 **{key: described(e, key) for key in ("ddrs", "hlr", "ior", *ACCURACY_KEYS)}}
                for b in boards for e in b.entries]
    lines = []
    for board in boards:
        for e in board.entries:
            lines.append(f"{e.label} · {board.title} · {e.protocol} · {e.n_distillations} distillations × "
                         f"{e.n_students} students in all")
            lines.append(f"{'quantity':<26}{'mean ± std [95 % interval]':>44}")
            for col in builtin_columns():
                if col.key == "ars":
                    continue
                lines.append(f"{col.header:<26}{fmt_estimate(e.estimate(col.key)):>44}")
            verdict = e.verdict.short if e.verdict is not None else "-"
            lines.append(f"vs random: {verdict}" + (f" — {e.verdict.test.method}" if e.verdict and e.verdict.test else ""))
            ci = e.ddrs.ci
            if ci is not None:
                lines.append(f"intervals: {ci.method}")
    if len(entries) > 1:
        lines.append("note: these runs are not one recipe; each line is its own entry (see `ddr compare`)")
    return "\n".join(lines)
