"""``ddr run SUITE.yaml`` (a whole benchmark, resumable) and ``ddr run --eval-arch A,B``
(one distilled set on several student architectures: the generalisation table)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ddr.errors import ConfigError

# options of one run that a suite file sets instead (ddr run SUITE.yaml refuses them)
_RUN_ONLY = ("method", "iterations", "save_distilled", "ipc", "arch", "protocol", "label_strategy", "loss",
             "num_eval", "epochs", "lr", "teacher", "eval_arch", "distill_seeds", "zca")
_RUN_ONLY_FLAGS = ("ars",)


def refuse_run_options(args: argparse.Namespace, parser_defaults: dict[str, Any]) -> None:
    """A suite sets what one run's options would: refuse them rather than ignore them."""
    given = [name for name in _RUN_ONLY if getattr(args, name, None) is not None]
    given += [name for name in _RUN_ONLY_FLAGS if getattr(args, name, False)]
    if args.overrides:
        given.append("set")
    if args.dataset != parser_defaults.get("dataset", "digits"):
        given.append("dataset")
    if args.seed != parser_defaults.get("seed", 0):
        given.append("seed")
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(f"{flags} set(s) one run; with a suite file put it in the file (methods, datasets, ipcs, "
                          "seeds, eval_archs, protocol, num_eval, epochs, set, per_method) and run it again")


def cmd_run_suite(args: argparse.Namespace, session: Any, base: Any) -> int:
    """Run a suite; print the outcome table, the failures and where the results are."""
    from ddr.report.tabular import fmt_num, text_table
    from ddr.resources.session import LOGGER
    from ddr.runs.scheduler import run_suite
    from ddr.runs.suite import load_suite

    suite = load_suite(args.suite, session.system)
    LOGGER.info(suite.summary() + (" (resuming: complete records are kept)" if args.resume else ""))
    if suite.executor and args.executor == "local":
        from dataclasses import replace

        base = replace(base, executor=suite.executor)
    if suite.device and args.device is None:
        from dataclasses import replace

        base = replace(base, device=suite.device)
    from ddr.cli.evaluation import check_executor_options

    check_executor_options(session.system, base.executor, dict(base.executor_options))  # the suite's executor
    if args.dry_run:
        return _dry_run_suite(args, session, suite, base)
    from ddr.runs.scheduler import estimate_suite

    LOGGER.info(estimate_suite(suite, session=session, out=args.out, base=base, resume=args.resume,
                               use_cache=not args.no_cache).line())

    def announce(index: int, total: int, outcome: Any) -> None:
        what = {"done": f"DDRS {fmt_num(outcome.ddrs)} in {outcome.seconds:.1f} s",
                "skipped": f"kept (complete record, DDRS {fmt_num(outcome.ddrs)})",
                "failed": outcome.error or ""}[outcome.status]
        LOGGER.info(f"[{index + 1}/{total}] {outcome.status:<7} {outcome.unit.label}  {what}")

    report = run_suite(suite, session=session, out=args.out, base=base, resume=args.resume,
                       exit_on_error=args.exit_on_error, use_cache=not args.no_cache, timeout=args.timeout,
                       announce=announce)
    if args.json:
        print(json.dumps({
            "suite": suite.name, "total": report.total, "done": report.count("done"),
            "skipped": report.count("skipped"), "failed": report.count("failed"),
            "interrupted": report.interrupted is not None,
            "units": [{"label": o.unit.label, "uid": o.unit.uid, "status": o.status, "record_dir": o.record_dir,
                       "ddrs": o.ddrs, "error": o.error, "plugin": o.plugin, "distribution": o.distribution}
                      for o in report.outcomes],
        }, indent=2))
    else:
        rows = [[o.unit.label, o.status, fmt_num(o.ddrs), f"{o.seconds:.1f}"] for o in report.outcomes]
        print(text_table(["run", "status", "DDRS", "seconds"], rows, ["l", "l", "r", "r"]))
        print(f"suite '{suite.name}': {report.count('done')} run, {report.count('skipped')} kept, "
              f"{report.count('failed')} failed, {report.total - len(report.outcomes)} not started, "
              f"of {report.total}; records under {args.out}/{suite.name}")
    if report.failures:
        from ddr.runs.scheduler import failure_table

        print("\nfailures:\n" + failure_table(report), file=sys.stderr)
    session.hook.ddr_session_finish(results=[], exitstatus=report.exit_status)
    if report.interrupted is not None:
        print(f"ddr: interrupted; {len(report.outcomes)} of {report.total} runs finished and kept. "
              f"Continue with: ddr run {args.suite} --resume", file=sys.stderr)
        raise report.interrupted
    if report.exit_status == 0 and not args.json:
        print(f"next: ddr leaderboard --suite {suite.name}   (or ddr plot --suite {suite.name} -o plots)")
    return report.exit_status


def _dry_run_suite(args: argparse.Namespace, session: Any, suite: Any, base: Any) -> int:
    """``ddr run SUITE.yaml --dry-run``: one row per unit (jobs, reused, estimated seconds,
    distillation) and the suite's total; nothing is distilled, trained or written."""
    from ddr.report.tabular import text_table
    from ddr.runs.estimate import dry_run_json
    from ddr.runs.scheduler import estimate_suite

    report = estimate_suite(suite, session=session, out=args.out, base=base, resume=args.resume,
                            use_cache=not args.no_cache, measure=True)
    estimates = [e for _, e in report.units]
    if args.json:
        print(dry_run_json(estimates, suite=suite.name, kept=report.kept, unresolved=report.unresolved,
                           line=report.line()))
    else:
        rows = [[e.label, str(e.student_jobs), str(e.reused), f"{e.jobs_seconds:.1f}", e.distill_note]
                for e in estimates]
        rows += [[label, "-", "-", "-", f"cannot be planned: {message}"] for label, message in report.unresolved.items()]
        print(text_table(["run", "student jobs", "reused", "est. seconds", "distillation"], rows,
                         ["l", "r", "r", "r", "l"]))
        print(report.line())
        print("dry run: nothing was distilled, trained or written")
    session.hook.ddr_session_finish(results=[], exitstatus=0)
    return 0


def cmd_run_cross_arch(args: argparse.Namespace, session: Any, options: Any, method_overrides: dict[str, Any],
                       archs: list[str]) -> int:
    """Distill once, evaluate on each architecture, print the generalisation table."""
    from ddr.report.tables import generalisation_table
    from ddr.runs.run import run

    for arch in archs:  # every name first: a typo fails before any work
        session.system.architectures().resolve(arch)
    records, failures = [], []
    for arch in archs:
        try:
            result, _ = run(args.method, options=options, session=session, method_overrides=method_overrides,
                            out=args.out, use_cache=not args.no_cache, auto_assets=not args.no_auto_assets,
                            eval_arch=arch, timeout=getattr(args, "timeout", None), estimate=True)
        except Exception as exc:  # noqa: BLE001 - one architecture failing leaves the others' results
            from ddr.errors import DdrError

            message = str(exc).splitlines()[0] if isinstance(exc, DdrError) else f"{type(exc).__name__}: {exc}"
            failures.append((arch, message))
            session.log(f"{arch}: {message}")
            continue
        record = result.to_json()
        record["eval_arch"] = arch
        records.append(record)
    if args.json:
        print(json.dumps({"results": records, "failures": [{"arch": a, "error": m} for a, m in failures]}, indent=2))
    else:
        print(generalisation_table(records, failures))
    session.hook.ddr_session_finish(results=[], exitstatus=1 if failures else 0)
    return 1 if failures else 0
