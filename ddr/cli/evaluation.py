"""The heavy sub-commands: ``ddr run``, ``ddr eval``, ``ddr teacher train``, ``ddr show``.

Parsers are defined here; torch and the evaluation machinery are imported only when one of
these commands actually runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ddr.errors import ArtifactError, ConfigError
from ddr.protocol.bounds import check_bound

DEFAULT_OUT = "ddr-runs"


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits, the embedded set)")
    p.add_argument("--ipc", type=int, default=None, help="images per class")
    p.add_argument("--arch", default=None, help="student architecture (default: the protocol's)")
    p.add_argument("--protocol", default=None, help="protocol name or YAML file (default: the method's; digits on digits)")
    p.add_argument("--label-strategy", default=None, help="label strategy (or a loss name) for acc_syn_any")
    p.add_argument("--loss", default=None, help="loss for the label strategy (e.g. kl, sce, mse_gt)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (every other seed derives from it)")
    p.add_argument("--num-eval", type=int, default=None, help="students per accuracy (protocol default: 5)")
    p.add_argument("--epochs", type=int, default=None, help="override the protocol's student epochs")
    p.add_argument("--lr", type=float, default=None, help="override the student learning rate")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a protocol key, e.g. --set train.batch_size=128 (repeatable)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the GPU when present)")
    p.add_argument("--executor", default="local", help="how student jobs run (`ddr list executors`; default: local)")
    p.add_argument("--address", default=None, help="the cluster an executor connects to (ray: ADDR of `ray start --head`)")
    p.add_argument("--executor-option", dest="executor_option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option (keyword argument) of the executor, e.g. --executor-option connect_timeout=60: "
                        "how long ray waits for --address to answer (seconds, default 30); repeatable")
    p.add_argument("--teacher", default=None, help="teacher checkpoint (.safetensors or state-dict .pt)")
    p.add_argument("--ars", action="store_true", help="also compute the augmentation robust score (ARS)")
    p.add_argument("--metric", dest="metrics", action="append", default=[], metavar="NAME[.PRESET]",
                   help="also report this metric (`ddr list metrics`), e.g. robust_pgd; repeatable; its parameters: "
                        "--set metric.NAME.KEY=VALUE")
    p.add_argument("--zca", action=argparse.BooleanOptionalAction, default=None,
                   help="ZCA-whiten the dataset (kornia's fit on 0..1 pixels, as MTT/DATM); --no-zca refuses it. "
                        "Default for ddr run: as the method's recipe for the dataset and IPC says, else off")
    p.add_argument("--download", action="store_true", help="download the dataset into DDR_DATA_DIR if missing")
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels (bit-identical reruns)")
    p.add_argument("--no-job-cache", action="store_true", help="train every student again instead of reusing cached ones")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"write the run record under this directory (default: {DEFAULT_OUT})")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (jobs per role, epochs, images, cached or not) and the estimated cost; "
                        "train, distill and write nothing")
    _add_output_options(p)


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars; warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="also show debug messages")
    p.add_argument("--log", default=None, metavar="FILE", help="also write every message (debug included) to FILE")


def _split_overrides(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` pairs -> (protocol overrides, method overrides from ``method.KEY``)."""
    from ddr.protocol.yaml import parse_override

    protocol, method = {}, {}
    for item in items:
        key, value = parse_override(item)
        if key.startswith("method."):
            method[key[len("method."):]] = value
        else:
            protocol[key] = value
    return protocol, method


def _session(args: argparse.Namespace) -> Any:
    """The command's session, its messages and bars on the terminal (closed by ``ddr.cli.main``)."""
    from ddr.cli.display import open_display
    from ddr.resources.session import Session

    if getattr(args, "deterministic", False):
        from ddr.engine.seeds import set_deterministic

        set_deterministic(True)
    verbosity = -1 if getattr(args, "quiet", False) else 1 if getattr(args, "verbose", False) else 0
    bars = not getattr(args, "no_progress", False)
    display, close = open_display(verbosity=verbosity, bars=bars, log_file=getattr(args, "log", None))
    args.cleanups = [*getattr(args, "cleanups", []), close]
    session = Session.for_cli(args.plugin_system, progress=bars, display=display,
                              isolate=getattr(args, "isolate", False))
    session.results_db = getattr(args, "db", None)
    return session


def _options(args: argparse.Namespace, protocol_overrides: dict[str, Any], ipc: int | None) -> Any:
    from ddr.runs.evaluate import EvalOptions, metric_overrides

    protocol_overrides, metric_params = metric_overrides(protocol_overrides)
    return EvalOptions(
        dataset=args.dataset, ipc=ipc, seed=args.seed, protocol=args.protocol, arch=args.arch,
        label_strategy=args.label_strategy, loss=args.loss, num_eval=args.num_eval, epochs=args.epochs, lr=args.lr,
        overrides=protocol_overrides, device=args.device, teacher=args.teacher, ars=args.ars or None, zca=args.zca,
        download=args.download, executor=args.executor, job_cache=not args.no_job_cache,
        executor_options=_executor_options(args), metrics=tuple(getattr(args, "metrics", None) or ()),
        metric_params=metric_params,
    )


def _executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--executor-option KEY=VALUE`` pairs and ``--address``, refused when the executor would ignore one
    (checked here for one run; a suite checks its own executor, :func:`check_executor_options`)."""
    from ddr.protocol.yaml import parse_override

    options: dict[str, Any] = {}
    for item in getattr(args, "executor_option", None) or []:
        if "=" not in item or not item.partition("=")[0].strip():
            raise ConfigError(f"--executor-option expects KEY=VALUE, got {item!r} (e.g. --executor-option "
                              "connect_timeout=60)")
        key, value = parse_override(item)
        options[key] = value
    if args.address:
        if "address" in options:
            raise ConfigError("give the cluster's address once: --address ADDR or --executor-option address=ADDR")
        options["address"] = args.address
    if getattr(args, "suite", None) is None:
        check_executor_options(args.plugin_system, args.executor, options)
    return options


def check_executor_options(system: Any, executor: str, options: dict[str, Any]) -> None:
    """Refuse an option that executor ``executor`` does not take (``--address`` with ``local``), which it
    would otherwise ignore, before any work starts; the options a target's signature names are taken."""
    import inspect

    if not options:
        return
    registry = system.executors()
    resolved = registry.resolve(executor)
    try:
        parameters = inspect.signature(registry.materialize(resolved.spec)).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the executor checks its options itself
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    takes = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                       inspect.Parameter.KEYWORD_ONLY)]
    for key in options:
        if key not in takes:
            import difflib

            flag = "--address" if key == "address" else f"--executor-option {key}=..."
            close = difflib.get_close_matches(key, takes, n=1, cutoff=0.6)
            where = ("; --address is for an executor that runs jobs on a cluster (--executor ray)"
                     if key == "address" else f"; did you mean '{close[0]}'?" if close else "")
            raise ConfigError(f"{flag}: executor '{resolved.spec.name}' has no option '{key}' and would ignore it"
                              f"{where}; its options: {', '.join(takes) or 'none'}")


def _report(args: argparse.Namespace, session: Any, result: Any) -> int:
    """Print one result (JSON or table) and tell observer plugins the session ended."""
    from ddr.report.tables import result_table

    record = result.to_json()
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(result_table(record))
        if result.record_dir:
            print(f"run record: {result.record_dir}")
    session.hook.ddr_session_finish(results=[result], exitstatus=0)
    return 0


def _guarded(session: Any, work: Any) -> Any:
    """Run ``work``; on failure tell ``ddr_session_finish`` (exit status 2, or 130 on Ctrl-C)."""
    from ddr.errors import DdrError

    try:
        return work()
    except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143)
        session.hook.ddr_session_finish(results=[], exitstatus=getattr(exc, "exit_code", 130))
        raise
    except DdrError as exc:
        session.hook.ddr_session_finish(results=[], exitstatus=exc.exit_code)
        raise
    except BaseException:
        session.hook.ddr_session_finish(results=[], exitstatus=1)
        raise


# -- ddr run -------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from ddr.runs.run import run

    if args.suite is not None:
        from ddr.cli.suites import cmd_run_suite, refuse_run_options

        refuse_run_options(args, {"dataset": "digits", "seed": 0})
        session = _session(args)
        return cmd_run_suite(args, session, _options(args, {}, 1))
    if args.resume or args.exit_on_error:
        raise ConfigError("--resume and --exit-on-error apply to suites: ddr run SUITE.yaml --resume")
    if not args.method:
        raise ConfigError("say what to run: ddr run --method NAME (see `ddr list methods`) or ddr run SUITE.yaml")
    protocol_overrides, method_overrides = _split_overrides(args.overrides)
    if args.iterations is not None:
        method_overrides["iterations"] = args.iterations
    session = _session(args)
    options = _options(args, protocol_overrides, 1 if args.ipc is None else args.ipc)
    if args.dry_run:
        return int(_guarded(session, lambda: _dry_run(args, session, options, method_overrides)))
    if args.distill_seeds is not None:
        if args.distill_seeds < 1:
            raise ConfigError(f"--distill-seeds must be at least 1, got {args.distill_seeds}")
        check_bound("distill_seeds", args.distill_seeds, what="--distill-seeds")
        if args.eval_arch is not None or args.save_distilled is not None:
            raise ConfigError("--distill-seeds cannot be combined with --eval-arch or --save-distilled; "
                              "write a suite file (seeds: [...], eval_archs: [...]) instead")
        return int(_guarded(session, lambda: _run_seeds(args, session, options, method_overrides)))
    if args.eval_arch is not None:
        from ddr.cli.suites import cmd_run_cross_arch

        archs = [a.strip() for a in args.eval_arch.split(",") if a.strip()]
        if not archs or len(set(archs)) != len(archs):
            raise ConfigError(f"--eval-arch expects distinct comma-separated architectures, got {args.eval_arch!r}")
        return int(_guarded(session, lambda: cmd_run_cross_arch(args, session, options, method_overrides, archs)))
    result, _ = _guarded(session, lambda: run(
        args.method, options=options, session=session, method_overrides=method_overrides, out=args.out,
        save_distilled_to=args.save_distilled, use_cache=not args.no_cache, auto_assets=not args.no_auto_assets,
        timeout=args.timeout, estimate=True))
    return _report(args, session, result)


def _dry_run(args: argparse.Namespace, session: Any, options: Any, method_overrides: dict[str, Any]) -> int:
    """``ddr run --method M --dry-run``: the plan and the estimate of each run the command would
    make (one per --distill-seeds seed and --eval-arch architecture); nothing is trained or written."""
    from dataclasses import replace

    from ddr.runs.estimate import dry_run_json, estimate_run, plan_text
    from ddr.runs.evaluate import Evaluator
    from ddr.runs.run import prepare_distillation

    seeds = distill_seeds(options.seed, args.distill_seeds) if args.distill_seeds else [options.seed]
    archs = [a.strip() for a in args.eval_arch.split(",") if a.strip()] if args.eval_arch else [None]
    estimates = []
    for seed in seeds:
        choice, o, evaluator = prepare_distillation(args.method, replace(options, seed=seed), session,
                                                    method_overrides)
        for arch in archs:
            students = evaluator if arch is None else Evaluator(replace(o, arch=arch), session=session)
            estimate = estimate_run(choice, students, use_cache=not args.no_cache, distill_evaluator=evaluator,
                                    measure=True)
            if arch is not None:
                estimate.label += f" · students {arch}"
            estimates.append((estimate, o))
    if args.json:
        print(dry_run_json([e for e, _ in estimates]))
    else:
        print("\n\n".join(plan_text(e, o) for e, o in estimates))
        print("dry run: nothing was distilled, trained or written")
    session.hook.ddr_session_finish(results=[], exitstatus=0)
    return 0


def distill_seeds(seed: int, count: int) -> list[int]:
    """The seeds of ``--seed S --distill-seeds N``: S, S+1, …, S+N−1. Consecutive, so the runs are
    the units a suite with ``seeds: [S, …, S+N−1]`` makes, and every method run this way at the
    same S shares its evaluation seeds (student initialisations and random subsets) with the others."""
    return [seed + k for k in range(count)]


def _run_seeds(args: argparse.Namespace, session: Any, options: Any, method_overrides: dict[str, Any]) -> int:
    """``ddr run --distill-seeds N``: one distillation and evaluation per seed, then the summary
    over distillations × students (intervals by the hierarchical bootstrap, the IOR verdict)."""
    from dataclasses import replace

    from ddr.report.tables import seeds_summary
    from ddr.runs.run import run
    from ddr.store.results import load_record

    results, rows = [], []
    for seed in distill_seeds(options.seed, args.distill_seeds):
        result, _ = run(args.method, options=replace(options, seed=seed), session=session,
                        method_overrides=method_overrides, out=args.out, use_cache=not args.no_cache,
                        auto_assets=not args.no_auto_assets, timeout=args.timeout, estimate=True)
        results.append(result)
        if result.record_dir:
            rows.append(load_record(result.record_dir))
        if not args.json:
            print(f"seed {seed}: DDRS {result.to_json()['ddrs']['mean']:.4f}; run record: {result.record_dir}")
    if args.json:
        print(json.dumps({"runs": [r.to_json() for r in results], "summary": seeds_summary(rows, as_json=True)},
                         indent=2, default=str))
    else:
        print(seeds_summary(rows))
    session.hook.ddr_session_finish(results=results, exitstatus=0)
    return 0


# -- ddr eval ------------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    protocol_overrides, method_overrides = _split_overrides(args.overrides)
    if method_overrides:
        raise ConfigError("--set method.KEY only applies to `ddr run`")
    session = _session(args)
    options = _options(args, protocol_overrides, args.ipc)  # a flag the executor would ignore is refused first
    from ddr.errors import DistilledSetError
    from ddr.store.paths import path_kind

    if getattr(args, "path", None) is not None and path_kind(args.path, what="distilled set",
                                                              error=DistilledSetError) is None:  # before torch loads
        raise DistilledSetError(f"distilled set {args.path} does not exist; give a folder saved by `ddr run "
                                "--save-distilled`, a DD-Ranking folder of images.pt/labels.pt, or a file")
    from ddr.runs.run import eval_path

    finish = None
    if args.ddranking_config:  # a DD-Ranking config file mapped onto the options (docs/ddranking.md)
        from ddr.compat.ddranking.config import cli_eval_options

        base = options
        options, finish = _guarded(session, lambda: cli_eval_options(args.ddranking_config, base, log=session.log))
    if args.dry_run:
        return int(_guarded(session, lambda: _dry_run_eval(args, session, options)))
    result = _guarded(session, lambda: eval_path(args.path, options=options, session=session, out=args.out,
                                                 resize=args.resize, pixel_space=args.pixel_space, estimate=True))
    if finish is not None:
        finish(result)
    return _report(args, session, result)


def _dry_run_eval(args: argparse.Namespace, session: Any, options: Any) -> int:
    """``ddr eval PATH --dry-run``: read the set, print the plan and the estimate; train and write nothing."""
    from dataclasses import replace

    from ddr.runs.estimate import dry_run_json, estimate_distilled, plan_text
    from ddr.runs.evaluate import Evaluator
    from ddr.store.formats import load_any

    num_classes = session.load_dataset(options.dataset, download=options.download).num_classes
    space = args.pixel_space or ("zca" if options.zca else None)
    distilled = load_any(Path(args.path), session.system, num_classes=num_classes, ipc=options.ipc, pixel_space=space)
    ipc = options.ipc if options.ipc is not None else int(distilled.labels.bincount().max())
    evaluator = Evaluator(replace(options, ipc=ipc), session=session)
    estimate = estimate_distilled(distilled, evaluator, resize=args.resize, measure=True,
                                  label=f"eval {args.path} · {options.dataset} · IPC {ipc} · seed {options.seed}")
    if args.json:
        print(dry_run_json([estimate]))
    else:
        print(plan_text(estimate, evaluator.options))
        print("dry run: nothing was trained or written")
    session.hook.ddr_session_finish(results=[], exitstatus=0)
    return 0


# -- ddr teacher ---------------------------------------------------------------------------------

def cmd_teacher_train(args: argparse.Namespace) -> int:
    from ddr.resources.service import Resources
    from ddr.store.paths import path_kind
    from ddr.store.writable import check_directory, copy_file

    session = _session(args)
    resources = Resources.open(session, dataset=args.dataset, protocol=args.protocol, arch=args.arch, seed=args.seed,
                               device=args.device, download=args.download)
    where = {"what": "the teacher checkpoint (--output)", "choose": "choose a writable --output FILE"}
    if args.output:  # refused before training when it cannot be written
        check_directory(Path(args.output).parent, **where)
        if path_kind(args.output, what="--output") == "dir":
            raise ConfigError(f"--output {args.output} is a folder; give the checkpoint's file name")
    accuracy, cached = resources.real_accuracy()
    path = resources.teacher_checkpoint()
    if args.output:
        path = copy_file(path, Path(args.output), **where)
    record = {"dataset": args.dataset, "arch": resources.teacher_arch()[0], "accuracy": accuracy,
              "cached": cached, "checkpoint": str(path)}
    print(json.dumps(record, indent=2) if args.json else
          f"teacher {record['arch']} on {args.dataset}: test accuracy {accuracy:.4f}"
          f"{' (cached)' if cached else ''}\ncheckpoint: {path}")
    return 0


# -- ddr show ------------------------------------------------------------------------------------

RECORD_FILES = ("run_spec", "metrics", "env")


def read_record(folder: Path) -> dict[str, Any]:
    """The three files of a run record, parsed; a clear ArtifactError for anything missing or corrupt."""
    files = {name: folder / f"{name}.json" for name in RECORD_FILES}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise ArtifactError(f"{folder} is not a complete run record; missing {', '.join(missing)}")
    data: dict[str, Any] = {}
    for name, path in files.items():
        try:
            data[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ArtifactError(f"cannot read {path}: {exc}; the record is corrupt (rerun the evaluation)") from exc
        except RecursionError:
            raise ArtifactError(f"cannot read {path}: its JSON nests too deeply to read; the record is corrupt "
                                "(rerun the evaluation)") from None
        if not isinstance(data[name], dict):
            raise ArtifactError(f"{path} does not hold a JSON object; the record is corrupt (rerun the evaluation)")
    for key in ("protocol", "protocol_version", "seed", "ddrs"):
        if key not in data["metrics"]:
            raise ArtifactError(f"{files['metrics']} lacks '{key}'; the record is incomplete (rerun the evaluation)")
    _check_shown_fields(data["metrics"], files["metrics"])
    return data


_SUMMARIES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "ars")
"""The score summaries ``ddr show`` prints from metrics.json."""


def _check_shown_fields(metrics: dict[str, Any], path: Path) -> None:
    """ArtifactError when a field ``ddr show`` prints does not have the shape ddr writes."""

    def number(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            float(value)
        except OverflowError:
            return False
        return True

    def corrupt(key: str, expected: str) -> ArtifactError:
        return ArtifactError(f"{path}: '{key}' must be {expected}, got {metrics.get(key)!r:.80}; the record is corrupt "
                             "(rerun the evaluation)")

    for key in _SUMMARIES:
        summary = metrics.get(key)
        if key not in metrics or (key == "ars" and summary is None):
            continue
        if not isinstance(summary, dict) or not number(summary.get("mean")) or not (
                isinstance(summary.get("n", 0), int) and not isinstance(summary.get("n", 0), bool)) or (
                summary.get("n", 0) > 1 and not number(summary.get("std"))):
            raise corrupt(key, "a summary object {mean, std, n, values} of numbers")
    for key in ("distill_seconds", "eval_seconds"):
        if key in metrics and not number(metrics[key]):
            raise corrupt(key, "a number of seconds")
    if not isinstance(metrics.get("reused_jobs") or {}, dict):
        raise corrupt("reused_jobs", "an object {role: count}")
    if not isinstance(metrics.get("distilled_sha256") or "", str):
        raise corrupt("distilled_sha256", "the hex digest of the distilled set")
    spec = metrics.get("run_spec", {})
    if not isinstance(spec, dict) or not isinstance(spec.get("protocol_overrides") or {}, dict):
        raise corrupt("run_spec", "an object whose 'protocol_overrides' is an object")


def cmd_show(args: argparse.Namespace) -> int:
    from ddr.report.tables import result_table, runs_listing

    folder = Path(args.run)
    if not folder.exists() and "/" not in args.run and "\\" not in args.run:  # a run id from `ddr results`
        from ddr.store.results import ResultsDB, default_path

        db_path = getattr(args, "db", None) or default_path()
        if Path(db_path).is_file():
            with ResultsDB(db_path) as db:
                record_dir = db.get(args.run).get("record_dir")
            if record_dir:
                folder = Path(record_dir)
    if not folder.is_dir():
        raise ArtifactError(f"{folder} is not a directory; give a run record folder, a folder of them, or a run id "
                            "that `ddr results` lists")
    if not (folder / "metrics.json").exists():
        runs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "metrics.json").exists())
        if not runs:
            raise ArtifactError(f"{folder} holds no run records (folders with run_spec.json, metrics.json, env.json)")
        records = [(p.name, read_record(p)) for p in runs]
        if args.json:
            print(json.dumps({name: data for name, data in records}, indent=2))
        else:
            print(runs_listing([(name, data["metrics"]) for name, data in records]))
        return 0
    data = read_record(folder)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(result_table(data["metrics"]))
    if data["metrics"].get("run_id"):
        print(f"run id {str(data['metrics']['run_id'])[:10]}  ({folder})")
    sha = data["metrics"].get("distilled_sha256") or ""
    print(f"distilled_sha256 {sha[:16]}…")
    return 0


def add_commands(sub: Any) -> None:
    """Register the heavy sub-commands on the main parser's subparsers."""
    p = sub.add_parser("run", help="distill with a method, then evaluate it (default: digits, IPC 1); or run a suite")
    p.add_argument("suite", nargs="?", default=None, metavar="SUITE.yaml",
                   help="a suite file (methods x datasets x IPCs x seeds x architectures) instead of --method")
    p.add_argument("--method", default=None, help="method name, optionally with a preset (dm.paper)")
    p.add_argument("--eval-arch", default=None, metavar="A,B,...",
                   help="evaluate the distilled set on each of these student architectures (generalisation table)")
    p.add_argument("--resume", action="store_true", help="suite: keep every complete record, run the rest")
    p.add_argument("--exit-on-error", action="store_true", help="suite: stop at the first failing run")
    p.add_argument("--db", default=None, metavar="FILE",
                   help="results database (default: $DDR_CACHE_DIR/results.sqlite)")
    p.add_argument("--iterations", type=int, default=None, help="distillation iterations (method.iterations)")
    p.add_argument("--distill-seeds", type=int, default=None, metavar="N",
                   help="distil N times (seeds --seed … --seed+N-1), evaluate each, and summarise over "
                        "distillations × students")
    p.add_argument("--save-distilled", default=None, metavar="DIR", help="also save the distilled set here (ddr format)")
    p.add_argument("--no-cache", action="store_true", help="distill again even if the set is cached")
    p.add_argument("--no-auto-assets", action="store_true",
                   help="never build expensive assets (experts, teachers) on demand; say which command builds them")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop the distillation after SECONDS (wall clock) and report the method as failed")
    p.add_argument("--isolate", action="store_true",
                   help="distill in a child process: a method that exits, aborts or crashes its process is "
                        "reported by name instead of ending ddr (costs a few seconds of start-up)")
    _add_eval_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="evaluate your own distilled set (ddr dir, DD-Ranking .pt files, image folders)")
    p.add_argument("path", help="distilled set: ddr artifact dir, dir with images.pt/labels.pt/lr.pt, or class folders")
    p.add_argument("--resize", action="store_true", help="resize images to the dataset's size instead of failing")
    p.add_argument("--pixel-space", choices=["normalized", "zca", "pixel01"], default=None,
                   help="pixel space of .pt images (default: normalized; zca with --zca)")
    p.add_argument("--ddranking-config", default=None, metavar="FILE",
                   help="a DD-Ranking 0.2.0 config (YAML/JSON): evaluate as its evaluator does (docs/ddranking.md)")
    _add_eval_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("teacher", help="teachers and real-data references")
    tsub = p.add_subparsers(dest="teacher_command", metavar="SUBCOMMAND", required=True)
    t = tsub.add_parser("train", help="train (or fetch from the cache) the real-data model of a dataset/arch")
    t.add_argument("--dataset", default="digits")
    t.add_argument("--arch", default=None)
    t.add_argument("--protocol", default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None)
    t.add_argument("--download", action="store_true")
    t.add_argument("--output", default=None, help="also copy the checkpoint (.safetensors) here")
    t.add_argument("--json", action="store_true")
    _add_output_options(t)
    t.set_defaults(func=cmd_teacher_train)

    p = sub.add_parser("show", help="print a run record, or list the records in a folder")
    p.add_argument("run", help="run record directory, a directory of them (e.g. ddr-runs), or a run id "
                               "`ddr results` lists")
    p.add_argument("--db", default=None, metavar="FILE",
                   help="results database a run id is looked up in (default: $DDR_CACHE_DIR/results.sqlite)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)
