"""``ddr export``, ``ddr verify`` and ``ddr import``: result bundles (:mod:`ddr.bundle`).

``ddr verify`` exits 0 when every run reproduces, 1 when a quantity does not, 3 when the bundle
cannot be verified here (a missing plugin, dataset or teacher file), 2 when the bundle is refused
or an argument is bad. Parsers are defined here; torch is imported only when verify runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ddr.errors import ConfigError


def _db(args: argparse.Namespace) -> Any:
    return getattr(args, "db", None)


# -- ddr export ----------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from ddr.bundle.export import export_bundle
    from ddr.store.inventory import format_size

    report = export_bundle(args.ref, args.output, db=_db(args), system=args.plugin_system,
                           log=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
    if args.json:
        print(json.dumps({"path": str(report.path), "kind": report.kind, "name": report.name, "runs": report.runs,
                          "sets": report.sets, "teachers": report.teachers, "bytes": report.bytes,
                          "sha256": report.sha256}, indent=2))
        return 0
    what = f"suite '{report.name}'" if report.kind == "suite" else f"run {report.name[:10]}"
    teachers = f"{len(report.teachers)} teacher checkpoint(s), " if report.teachers else ""
    print(f"wrote {report.path}: {what}, {len(report.runs)} run(s), {len(report.sets)} distilled set(s), {teachers}"
          f"{format_size(report.bytes)}")
    print(f"sha256 {report.sha256}")
    print(f"check it anywhere with: ddr verify {report.path}")
    return 0


# -- ddr verify ----------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return "-" if value is None else str(value)


def _delta(value: float | None) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:+.6f}"


def print_run(report: Any, out: Any = None) -> None:
    """One run's verification as a table, its rule and verdict."""
    from ddr.report.tabular import text_table

    out = out or sys.stdout
    counted = [c for c in report.checks if c.reproduces is not None]
    print(f"run {report.run_id[:10]}  {report.label}", file=out)
    print(f"  mode: {report.mode} ({report.why})", file=out)
    print(f"  rule: {report.comparison.rules()}", file=out)
    for note in report.notes:
        print(f"  note: {note}", file=out)
    rows = [[c.quantity, _fmt(c.recorded), _fmt(c.rerun), _delta(c.delta), c.rule,
             "-" if c.reproduces is None else ("yes" if c.reproduces else "NO")] for c in report.checks]
    table = text_table(["quantity", "recorded", "re-run", "Δ", "test", "reproduces"], rows,
                       ["l", "r", "r", "r", "l", "l"])
    print("\n".join("  " + line for line in table.splitlines()), file=out)
    verdict = "verified" if report.verified else "NOT verified"
    print(f"  {verdict}: {sum(bool(c.reproduces) for c in counted)} of {len(counted)} quantities reproduce "
          f"({report.seconds:.1f} s)", file=out)


def cmd_verify(args: argparse.Namespace) -> int:
    from ddr.bundle.verify import verify_bundle
    from ddr.cli.evaluation import _executor_options, _session

    if args.students is not None and args.students < 1:
        raise ConfigError(f"--students must be at least 1, got {args.students}")
    args.address = getattr(args, "address", None)
    options = _executor_options(args)
    session = _session(args)
    first = [True]

    def show(report: Any) -> None:
        if args.json:
            return
        if not first[0]:
            print()
        first[0] = False
        print_run(report)

    result = verify_bundle(args.bundle, students=args.students, sample_seed=args.sample_seed, executor=args.executor,
                           executor_options=options, device=args.device, distill=args.distill, run=args.run,
                           download=args.download, session=session, on_run=show)
    marked: list[str] = []
    if not args.no_mark:
        from ddr.bundle.importing import mark_verified

        marked = mark_verified(result, db=_db(args))
    if args.json:
        print(json.dumps({**result.to_dict(), "marked_verified": marked}, indent=2, default=str))
    else:
        good = sum(r.verified for r in result.runs)
        print()
        print(f"{'verified' if result.verified else 'NOT verified'}: {good} of {len(result.runs)} run(s) of "
              f"{args.bundle} reproduce (bundle sha256 {result.sha256[:16]}…)")
        if marked:
            print(f"marked {len(marked)} imported run(s) imported+verified in the results database")
    return result.exit_status


# -- ddr import ----------------------------------------------------------------------------------

def cmd_import(args: argparse.Namespace) -> int:
    from ddr.bundle.importing import import_bundle
    from ddr.bundle.verify import CannotVerify, verify_bundle

    verification, status, reason = None, 0, ""
    if args.verify:
        from ddr.cli.evaluation import _executor_options, _session

        args.address = getattr(args, "address", None)
        options = _executor_options(args)
        session = _session(args)
        try:
            verification = verify_bundle(args.bundle, students=args.students, sample_seed=args.sample_seed,
                                         executor=args.executor, executor_options=options, device=args.device,
                                         download=args.download, session=session, on_run=print_run)
            status = verification.exit_status
        except CannotVerify as exc:  # imported all the same, unverified, and said so
            status, reason = CannotVerify.exit_code, str(exc)
    report = import_bundle(args.bundle, db=_db(args), out=args.out, verification=verification)
    if verification is not None:
        print()
    for run_id, label, outcome in report.runs:
        print(f"{run_id[:10]}  {label}: {outcome}")
    print(f"imported {args.bundle} into {report.db}; records under {report.folder}")
    if reason:
        print(f"ddr: {reason}; the runs are imported unverified", file=sys.stderr)
    elif status == 1:
        print("ddr: the verification did not reproduce every run; those are imported unverified", file=sys.stderr)
    return status


# -- registration --------------------------------------------------------------------------------

def _verify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--students", type=int, default=None, metavar="K",
                   help="re-run a seeded sample of K students per run (default: every student); the real-data "
                        "reference is always re-run")
    p.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of the --students sample (default 0)")
    p.add_argument("--executor", default="local", help="how the student jobs run (`ddr list executors`; default local)")
    p.add_argument("--executor-option", dest="executor_option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the executor (repeatable)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: the recorded device type when usable here)")
    p.add_argument("--download", action="store_true", help="download a missing dataset into DDR_DATA_DIR")
    p.add_argument("--db", default=None, metavar="FILE", help="results database (default: $DDR_CACHE_DIR/results.sqlite)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars; warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="also show debug messages")
    p.add_argument("--log", default=None, metavar="FILE", help="also write every message to FILE")


def add_bundle_commands(subparsers: Any) -> None:
    """Register ``export``, ``verify`` and ``import``."""
    p = subparsers.add_parser("export", help="write a run or a suite as one verifiable bundle (.zip): distilled sets, "
                                             "records, job results, protocol, seeds, environment, manifest")
    p.add_argument("ref", metavar="RUN|SUITE", help="a run id (or unique prefix) as `ddr results` lists, a suite name "
                                                    "recorded in the results database, or a suite file")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the bundle file to write (e.g. dm.zip)")
    p.add_argument("--db", default=None, metavar="FILE", help="results database (default: $DDR_CACHE_DIR/results.sqlite)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("verify", help="re-run a bundle's evaluations here and say whether each quantity "
                                             "reproduces (exit 0 verified, 1 not verified, 3 could not verify)")
    p.add_argument("bundle", metavar="FILE", help="a bundle written by `ddr export`")
    p.add_argument("--distill", action="store_true",
                   help="also re-run each run's distillation (its method plugin must be installed) and compare the "
                        "set's content hash")
    p.add_argument("--run", default=None, metavar="ID", help="verify only this run of the bundle (id or prefix)")
    p.add_argument("--no-mark", action="store_true",
                   help="do not mark the bundle's imported runs imported+verified in the results database")
    p.add_argument("--json", action="store_true", help="print the verification as JSON")
    _verify_options(p)
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser("import", help="add a bundle's runs to the results database, marked imported "
                                             "(or imported+verified with --verify)")
    p.add_argument("bundle", metavar="FILE", help="a bundle written by `ddr export`")
    p.add_argument("--verify", action="store_true", help="verify the bundle first (as `ddr verify`); the runs it "
                                                         "reproduces are imported+verified")
    p.add_argument("--out", default="ddr-runs", metavar="DIR",
                   help="the imported run records go under DIR/imported/ (default ddr-runs)")
    _verify_options(p)
    p.set_defaults(func=cmd_import)
