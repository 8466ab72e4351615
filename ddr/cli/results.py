"""Sub-commands over the results database: ``ddr results``, ``ddr results import``, ``ddr compare``,
``ddr leaderboard`` and ``ddr plot``.

Register them with :func:`add_results_commands` (``subparsers`` is the object
``ArgumentParser.add_subparsers()`` returned). None of these code paths imports torch;
``ddr plot`` imports matplotlib only when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ddr.errors import DdrError

LIST_COLUMNS = ("run_id", "suite", "method", "dataset", "ipc", "arch", "protocol", "seed", "ddrs", "hlr", "ior",
                "acc_syn_hard", "acc_rdm_any", "origin", "created")
"""The columns of ``ddr results`` (the table puts any further metric before ``origin``, the CSV
after ``created``). ``origin`` is the results database's (local, imported, imported+verified); a
record folder listed directly has none ("-")."""
ABSENT = "(absent)"


def _db(args: argparse.Namespace) -> Any:
    from ddr.store.results import ResultsDB

    return ResultsDB(args.db)


def parse_where(items: Sequence[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is read as JSON when it parses (``1``, ``0.5``, ``true``), else as a
    string. The same KEY twice means "any of these values"."""
    where: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise DdrError(f"--where expects KEY=VALUE (e.g. method=dm, ipc=10), got '{item}'")
        try:
            value = json.loads(raw)
            if isinstance(value, (dict, list)):
                value = raw
        except ValueError:
            value = raw
        key = key.strip()
        if key.lower() == "lrs":  # DD-Ranking 0.2.0's name for DDRS
            key = "ddrs"
        if key in where:
            previous = where[key] if isinstance(where[key], list) else [where[key]]
            where[key] = previous + [value]
        else:
            where[key] = value
    return where


def selected_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows ``--suite`` and ``--where`` select. ``--suite NAME`` is every run tagged NAME;
    ``--suite FILE.yaml`` is the runs of that suite file's units as the file reads now (runs
    of units an earlier version of the file had are left out)."""
    where = parse_where(getattr(args, "where", None))
    suite = args.suite
    if suite is not None and (suite.endswith((".yaml", ".yml")) or Path(suite).is_file()):
        from ddr.cli.main import _plugin_system
        from ddr.runs.suite import load_suite

        loaded = load_suite(suite, _plugin_system(args))
        where["run_spec.suite_unit"] = [unit.uid for unit in loaded.units()]
        suite = loaded.name
    with _db(args) as db:
        return db.query(suite=suite, where=where)


def _out(text: str, path: str | None) -> None:
    if path:
        from ddr.store.writable import write_output

        write_output(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"), what="the table",
                     choose="choose a writable --output FILE")
        print(f"ddr: wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- ddr results ---------------------------------------------------------------------------------

def cmd_results(args: argparse.Namespace) -> int:
    from ddr.report.leaderboard import protocol_label, provenance
    from ddr.report.tabular import csv_text, fmt_num, text_table

    rows = selected_rows(args)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    from ddr.report.columns import column, extra_columns, is_summary

    # the scores' headers (label and direction) from the metric registry, then any reported metric's means
    extra = extra_columns({k for r in rows for k, v in (r.get("metrics") or {}).items() if is_summary(v)})
    if args.csv:
        # every reported metric beyond the built-in scores: its mean and standard deviation over students
        extra_keys = [name for c in extra for name in (c.key, f"{c.key}_std")]

        def extra_values(r: dict[str, Any]) -> list[Any]:
            metrics = r.get("metrics") or {}
            return [(metrics.get(c.key) or {}).get(stat) for c in extra for stat in ("mean", "std")]

        sys.stdout.write(csv_text([*LIST_COLUMNS, *extra_keys, "ddr"],
                                  [[protocol_label(r) if c == "protocol" else r.get(c) for c in LIST_COLUMNS]
                                   + extra_values(r) + [provenance()] for r in rows]))
        return 0
    if not rows:
        print("no runs match" + (f" in suite '{args.suite}'" if args.suite else "")
              + "; add run folders with `ddr results import DIR`")
        return 0
    table = []
    for r in rows:
        metrics = r.get("metrics") or {}
        table.append([r["run_id"][:10], r.get("suite") or "-", r["method"], r["dataset"], r["ipc"], r.get("arch") or "-",
                      protocol_label(r), r.get("seed"), fmt_num(r.get("ddrs")), fmt_num(r.get("hlr")),
                      fmt_num(r.get("ior")), fmt_num(r.get("acc_syn_hard")), fmt_num(r.get("acc_rdm_any")),
                      *(fmt_num((metrics.get(c.key) or {}).get("mean")) for c in extra), r.get("origin") or "-",
                      r.get("created") or "-"])
    scored = ("ddrs", "hlr", "ior", "acc_syn_hard", "acc_rdm_any")
    headers = [column(c).header if c in scored else c for c in LIST_COLUMNS[:-2]]
    headers += [c.header for c in extra] + list(LIST_COLUMNS[-2:])
    print(text_table(headers, table, ["l"] * 7 + ["r"] * (6 + len(extra)) + ["l", "l"]))
    print(f"{len(rows)} run(s) · {provenance()}")
    return 0


def cmd_results_import(args: argparse.Namespace) -> int:
    from ddr.store.results import ResultsDB

    suite = args.import_suite if args.import_suite is not None else args.suite
    with ResultsDB(args.import_db or args.db) as db:
        before = len(db)
        ids = db.import_dirs(args.dirs, suite=suite)
        added = len(db) - before
    print(f"imported {len(ids)} run(s) ({added} new, {len(ids) - added} updated) into {db.path}"
          + (f", suite '{suite}'" if suite else ""))
    return 0


# -- ddr compare ---------------------------------------------------------------------------------

def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}{key}."))
        if not value and prefix:
            out[prefix[:-1]] = {}
        return out
    return {prefix[:-1]: value}


def _load_runs(refs: Sequence[str], db_path: str | None) -> list[dict[str, Any]]:
    from ddr.store.results import ResultsDB, load_record

    rows, db = [], None
    try:
        for ref in refs:
            if Path(ref).is_dir():
                rows.append(load_record(ref))
                continue
            if db is None:
                db = ResultsDB(db_path)
            rows.append(db.get(ref))
    finally:
        if db is not None:
            db.close()
    return rows


def compare_runs(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scores side by side (mean, std, n per run; difference to the first run) and the run-spec keys
    whose values differ."""
    from ddr.report.columns import builtin_columns, extra_columns, is_summary

    names = [str(r.get("run_id") or "?")[:10] for r in rows]
    present = {k for r in rows for k, v in (r.get("metrics") or {}).items() if is_summary(v)}
    scores = []
    for col in (*builtin_columns(), *extra_columns(present)):
        key = col.key
        cells = []
        for r in rows:
            summary = (r.get("metrics") or {}).get(key)
            cells.append(summary if isinstance(summary, Mapping) else None)
        if all(c is None for c in cells):
            continue
        means = [None if c is None else c.get("mean") for c in cells]
        base = means[0]
        scores.append({"quantity": key, "label": col.header, "higher_is_better": col.higher_is_better, "mean": means,
                       "std": [None if c is None else c.get("std") for c in cells],
                       "n": [None if c is None else c.get("n") for c in cells],
                       "diff": [None if m is None or base is None else m - base for m in means]})
    for key in ("distill_seconds", "eval_seconds"):
        values = [r.get(key) for r in rows]
        if any(v is not None for v in values):
            scores.append({"quantity": key, "label": key, "higher_is_better": False, "mean": values,
                           "std": [None] * len(rows), "n": [None] * len(rows),
                           "diff": [None if v is None or values[0] is None else v - values[0] for v in values]})
    specs = [_flatten({"method": r.get("method"), **(r.get("run_spec") or {})}) for r in rows]
    keys = sorted(set().union(*specs)) if specs else []
    missing = object()
    differences = []
    for key in keys:
        values = [s.get(key, missing) for s in specs]
        if len({json.dumps(v, sort_keys=True, default=str) if v is not missing else "<missing>" for v in values}) > 1:
            differences.append({"key": key, "values": [ABSENT if v is missing else v for v in values]})
    return {"runs": names, "labels": [f"{r.get('method')} {r.get('dataset')} ipc{r.get('ipc')}" for r in rows],
            "scores": scores, "spec_differences": differences, "tests": compare_tests(rows, names)}


TESTED = ("ddrs", "hlr", "ior", "acc_syn_hard", "acc_syn_any")


def compare_tests(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Each run against the first, per quantity in :data:`TESTED`: the difference, the t test the
    leaderboard uses (paired where the runs share evaluation seeds, Welch otherwise), its interval,
    the Holm-adjusted p over the runs, and how many students (or distillations) per run would
    separate the difference at the observed noise with 80 % power. Rows without per-student values
    give no tests."""
    from ddr.report.leaderboard import build_leaderboard
    from ddr.report.ranking import compare
    from ddr.report.statistics import ALPHA, holm, required_n

    try:
        entries = [build_leaderboard([r], analyse=False)[0].entries[0] for r in rows]
    except DdrError:
        return []
    out = []
    for metric in TESTED:
        found = [compare(entries[k], entries[0], 0.5, k, 0, metric) for k in range(1, len(entries))]
        adjusted = iter(holm([c.test.p_value for c in found if c.test is not None]))
        for k, c in enumerate(found, start=1):
            item: dict[str, Any] = {"run": names[k], "quantity": metric, "paired": c.paired, "unit": c.unit}
            if c.test is None:
                item.update({"diff": None, "test": c.reason, "p": None, "p_holm": None, "ci": None,
                             "different": None, "needed": None})
            else:
                p_holm = next(adjusted)
                item.update({"diff": c.test.mean, "test": c.test.method, "p": c.test.p_value, "p_holm": p_holm,
                             "ci": [c.test.ci.low, c.test.ci.high], "different": p_holm < ALPHA,
                             "needed": required_n(c.test.mean, c.sd, paired=c.paired), "have": c.have})
            out.append(item)
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    from ddr.report.tabular import fmt_num, text_table

    if len(args.runs) < 2:
        raise DdrError("ddr compare needs at least two runs (run ids, id prefixes or run folders)")
    result = compare_runs(_load_runs(args.runs, args.db))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
        return 0
    runs = result["runs"]
    headers = ["quantity"] + [f"{n} ({lab})" for n, lab in zip(runs, result["labels"])]
    headers += [f"Δ {n} − {runs[0]}" for n in runs[1:]]
    table = []
    for s in result["scores"]:
        digits = 2 if s["quantity"].endswith("seconds") else 4
        cells = [fmt_num(m, digits) + ("" if sd is None else f" ± {fmt_num(sd, digits)}")
                 for m, sd in zip(s["mean"], s["std"])]
        diffs = [("-" if d is None else f"{d:+.{digits}f}") for d in s["diff"][1:]]
        table.append([s["label"], *cells, *diffs])
    print(text_table(headers, table, ["l"] + ["r"] * (len(headers) - 1)))
    print()
    if result["spec_differences"]:
        print("run spec differences:")
        spec_table = [[d["key"], *(v if v == ABSENT else json.dumps(v, default=str) for v in d["values"])]
                      for d in result["spec_differences"]]
        print(text_table(["key", *runs], spec_table))
    else:
        print("run specs are identical")
    if result["tests"]:
        from ddr.report.columns import column
        from ddr.report.ranking import fmt_p

        print()
        print(f"is the difference real? (each run − {runs[0]}; two-sided t, Holm over runs, α = 0.05)")
        rows = []
        for t in result["tests"]:
            quantity = column(t["quantity"]).header
            if t["diff"] is None:
                rows.append([t["run"], quantity, "-", "-", t["test"], "-", "-", "-"])
                continue
            need = ("-" if t["needed"] is None else
                    f"{t['needed']:,} {'pairs' if t['paired'] else t['unit']}" + (" (have enough)"
                                                                                   if t["needed"] <= t["have"] else ""))
            rows.append([t["run"], quantity, f"{t['diff']:+.4f}", f"[{t['ci'][0]:+.4f}, {t['ci'][1]:+.4f}]", t["test"],
                         fmt_p(t["p_holm"]), "yes" if t["different"] else "no", need])
        print(text_table(["run", "quantity", "Δ", "95 % CI", "test", "p (Holm)", "different", "n for 80 % power"],
                         rows, ["l", "l", "r", "r", "l", "r", "l", "r"]))
    return 0


# -- ddr leaderboard / ddr plot ------------------------------------------------------------------

def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ddr.report.leaderboard import render

    rows = selected_rows(args)
    if getattr(args, "verified_only", False):
        from ddr.store.results import VERIFIED_ORIGINS

        every = len(rows)
        rows = [r for r in rows if (r.get("origin") or "local") in VERIFIED_ORIGINS]
        if every and not rows:
            raise DdrError(f"none of the {every} matching run(s) is verified: they are imported and not reproduced "
                           "here; `ddr verify BUNDLE` reproduces a bundle's runs (or drop --verified-only)")
    if not rows:
        raise DdrError("no runs match" + (f" in suite '{args.suite}'" if args.suite else "")
                       + "; add run folders with `ddr results import DIR`")
    _out(render(rows, args.format, args.w, mixed=args.mixed, layout=args.layout, metric=args.metric,
                uncertainty=args.uncertainty, standalone=args.standalone, reported=args.reported,
                family=args.family), args.output)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ddr.report.plots import plot_all

    rows = selected_rows(args)
    for path in plot_all(rows, args.output, w=args.w, fmt=args.format, dpi=args.dpi, size=args.size):
        print(path)
    return 0


def _size(text: str) -> tuple[float, float]:
    """``WxH`` in inches (``7x4.5``) as a pair of positive numbers."""
    from ddr.report.plots import parse_size

    try:
        return parse_size(text)
    except DdrError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dpi(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--dpi expects a whole number of dots per inch, got '{text}'") from None
    if not 10 <= value <= 2400:
        raise argparse.ArgumentTypeError(f"--dpi must be between 10 and 2400 dots per inch, got {value}")
    return value


# -- registration --------------------------------------------------------------------------------

def _w(text: str) -> float:
    from ddr.report.leaderboard import check_w

    try:
        return check_w(text)
    except DdrError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p: argparse.ArgumentParser, where: bool = True) -> None:
    p.add_argument("--db", default=None, metavar="FILE",
                   help="results database (default: $DDR_CACHE_DIR/results.sqlite)")
    p.add_argument("--suite", default=None, metavar="NAME|FILE",
                   help="only runs of this suite (a suite file: only its current units)")
    if where:
        p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                       help="filter: a column (method, ipc, arch, ...) or a JSON path "
                            "(method_params.iterations, run_spec.protocol_config.train.epochs); repeatable")


def add_results_commands(subparsers: Any) -> None:
    """Register ``results`` (with ``results import``), ``compare``, ``leaderboard`` and ``plot``."""
    p = subparsers.add_parser("results", help="list the runs in the results database (or import run folders)")
    _common(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the full rows as JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    p.set_defaults(func=cmd_results)
    rsub = p.add_subparsers(dest="results_command", metavar="{import}")
    imp = rsub.add_parser("import", help="add run folders (or folders holding run folders) to the database")
    imp.add_argument("dirs", nargs="+", metavar="DIR")
    imp.add_argument("--suite", dest="import_suite", default=None, help="the suite the runs belong to")
    imp.add_argument("--db", dest="import_db", default=None, metavar="FILE",
                     help="results database (default: $DDR_CACHE_DIR/results.sqlite)")
    imp.set_defaults(func=cmd_results_import)

    p = subparsers.add_parser("compare", help="scores of runs side by side, and how their run specs differ")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run id, unique id prefix, or run folder")
    p.add_argument("--db", default=None, metavar="FILE", help="results database (default: $DDR_CACHE_DIR/results.sqlite)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("leaderboard", help="rank methods by DDRS (LRS) per (dataset, IPC), with intervals, "
                                                  "tie groups and beats-random verdicts: Markdown, CSV or HTML")
    _common(p)
    p.add_argument("--w", type=_w, default=0.5, help="weight of IOR against HLR in DDRS (default 0.5)")
    p.add_argument("--format", choices=("md", "csv", "html", "latex"), default="md",
                   help="md (default), csv, html (one offline page) or latex (booktabs tables)")
    p.add_argument("--layout", choices=("board", "pivot"), default="board",
                   help="board: one ranked table per (dataset, IPC) (default); pivot: one table of --metric, "
                        "methods x (dataset, IPC), as papers print results")
    p.add_argument("--metric", default="ddrs", metavar="NAME",
                   help="the metric of --layout pivot (default ddrs; lrs, hlr, ior, acc_syn_hard, a student "
                        "metric's column such as robust_pgd_syn)")
    p.add_argument("--uncertainty", choices=("pm", "ci"), default="pm",
                   help="LaTeX and pivot cells: pm = mean ± sample std (default), ci = mean [95 %% interval]")
    p.add_argument("--standalone", action="store_true",
                   help="latex: a complete document (pdflatex compiles it) instead of table environments")
    p.add_argument("--mixed", action="store_true",
                   help="rank runs of different protocols on one board anyway (the board says so); "
                        "without it such a board is refused")
    p.add_argument("--verified-only", action="store_true",
                   help="only runs computed here (local) or imported and reproduced here by `ddr verify` "
                        "(imported+verified); imported, unverified runs are left out")
    p.add_argument("--reported", action="store_true",
                   help="set the methods' published accuracies (with paper and table) beside ddr's measurement of "
                        "the same (dataset, IPC), with measured - reported in points; never ranked")
    p.add_argument("--family", choices=("all", "distillation", "selection"), default="all",
                   help="all methods (default), only distillation methods, or only selection methods (coresets: "
                        "random, herding, K-center, the coreset selectors), ranked among themselves; distillation "
                        "methods are compared with the cell's best coreset (IOC) either way")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=cmd_leaderboard)

    p = subparsers.add_parser("plot", help="plots (PNG, PDF or SVG): accuracy vs IPC, HLR vs IOR, cross-architecture "
                                           "heat map, DDRS vs w, Pareto fronts")
    _common(p)
    p.add_argument("--w", type=_w, default=0.5, help="weight for the iso-DDRS lines (default 0.5)")
    p.add_argument("--format", choices=("png", "pdf", "svg"), default="png", help="file format (default png)")
    p.add_argument("--dpi", type=_dpi, default=None, metavar="N",
                   help="dots per inch of PNG files (and of raster parts of PDF/SVG; default 120)")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="figure size in inches, e.g. 7x4.5: every file is exactly W*dpi x H*dpi pixels "
                        "(default: each plot's own size, cropped to its content)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the plot files")
    p.set_defaults(func=cmd_plot)
