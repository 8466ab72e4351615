"""The heavy sub-commands: ``ddr run``, ``ddr eval``, ``ddr teacher train``, ``ddr show``.

Parsers are defined here; torch and the evaluation machinery are imported only when one of
these commands actually runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ddr.errors import ConfigError


def _log(message: str) -> None:
    print(f"ddr: {message}", file=sys.stderr)


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
    p.add_argument("--teacher", default=None, help="teacher checkpoint (.safetensors or state-dict .pt)")
    p.add_argument("--ars", action="store_true", help="also compute the augmentation robust score (ARS)")
    p.add_argument("--zca", action="store_true", help="ZCA-whiten the dataset (for ZCA-space distilled sets)")
    p.add_argument("--download", action="store_true", help="download the dataset into DDR_DATA_DIR if missing")
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels (bit-identical reruns)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", default=None, help="write run_spec.json, metrics.json, env.json under this directory")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _split_overrides(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` pairs -> (protocol overrides, method overrides from ``method.KEY``)."""
    from ddr.protocol.config import parse_override

    protocol, method = {}, {}
    for item in items:
        key, value = parse_override(item)
        if key.startswith("method."):
            method[key[len("method."):]] = value
        else:
            protocol[key] = value
    return protocol, method


def _evaluator_options(args: argparse.Namespace, protocol_overrides: dict[str, Any]) -> dict[str, Any]:
    from ddr.plugin.manager import get_plugin_system
    from ddr.engine.seeds import set_deterministic

    if args.deterministic:
        set_deterministic(True)
    return {
        "protocol": args.protocol, "arch": args.arch, "label_strategy": args.label_strategy, "loss": args.loss,
        "num_eval": args.num_eval, "epochs": args.epochs, "lr": args.lr, "overrides": protocol_overrides,
        "device": args.device, "teacher": args.teacher, "ars": args.ars or None, "zca": args.zca,
        "download": args.download, "progress": not args.no_progress, "system": get_plugin_system(),
    }


def _fmt(summary: Any) -> str:
    return f"{summary.mean:.4f} ± {summary.std:.4f}"


def print_table(result: Any, title: str) -> None:
    rows = [("acc real (hard)", result.scores["acc_real_hard"]), ("acc syn (hard)", result.scores["acc_syn_hard"]),
            ("acc syn (any)", result.scores["acc_syn_any"]), ("acc random (any)", result.scores["acc_rdm_any"]),
            ("HLR  (lower is better)", result.scores["hlr"]), ("IOR  (higher is better)", result.scores["ior"]),
            ("DDRS", result.scores["ddrs"])]
    if result.ars is not None:
        rows.append(("ARS", result.ars["ars"]))
    print(title)
    print(f"{'quantity':<26}{'mean ± std (fractions)':>24}")
    for label, summary in rows:
        print(f"{label:<26}{_fmt(summary):>24}")
    extra = result.extra
    if "distill_seconds" in extra:
        cached = " (cached)" if extra.get("distill_cached") else ""
        print(f"{'distill time':<26}{extra['distill_seconds']:>22.1f} s{cached}")
    print(f"{'eval time':<26}{result.eval_seconds:>22.1f} s" + (" (real-data accuracy cached)" if result.real_cached else ""))
    print(f"protocol {result.protocol} v{result.protocol_version}, seed {result.seed}, "
          f"{result.scores['acc_syn_hard'].n} students, test-set selection: {'yes' if result.test_set_selection else 'no'}")
    if result.record_dir:
        print(f"run record: {result.record_dir}")


def _ipc(args: argparse.Namespace) -> int:
    """``--ipc`` of ``ddr run`` (1 when not given; 0 or less is refused by the evaluator)."""
    return 1 if args.ipc is None else args.ipc


def _report(args: argparse.Namespace, options: dict[str, Any], result: Any, title: str) -> int:
    """Print one result (JSON or table) and tell observer plugins the session ended."""
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_table(result, title)
    options["system"].pm.hook.ddr_session_finish(results=[result.to_json()], exitstatus=0)
    return 0


# -- ddr run -------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from ddr.runs.run import run

    protocol_overrides, method_overrides = _split_overrides(args.overrides)
    options = _evaluator_options(args, protocol_overrides)
    out = args.out if args.out is not None else "ddr-runs"
    result, outcome = run(args.method, dataset=args.dataset, ipc=_ipc(args), seed=args.seed,
                          method_overrides=method_overrides, iterations=args.iterations, out=out,
                          save_distilled_to=args.save_distilled, use_cache=not args.no_cache, log=_log, **options)
    return _report(args, options, result, f"ddr run --method {outcome.method}  ({args.dataset}, IPC {_ipc(args)})")


# -- ddr eval ------------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    from ddr.runs.evaluate import evaluate

    protocol_overrides, method_overrides = _split_overrides(args.overrides)
    if method_overrides:
        raise ConfigError("--set method.KEY only applies to `ddr run`")
    options = _evaluator_options(args, protocol_overrides)
    options["log"] = _log
    path = Path(args.path)
    result = evaluate(path, dataset=args.dataset, ipc=args.ipc, out=args.out, resize=args.resize,
                      pixel_space=args.pixel_space, **options)
    return _report(args, options, result, f"ddr eval {path}  ({args.dataset}, IPC {result.run_spec['ipc']})")


# -- ddr teacher ---------------------------------------------------------------------------------

def cmd_teacher_train(args: argparse.Namespace) -> int:
    import shutil

    from ddr.store.cache import entry_dir
    from ddr.runs.evaluate import Evaluator
    from ddr.plugin.manager import get_plugin_system

    evaluator = Evaluator(dataset=args.dataset, ipc=1, protocol=args.protocol, arch=args.arch, seed=args.seed,
                          device=args.device, download=args.download, system=get_plugin_system(), log=_log)
    values, cached = evaluator.real_accuracy()
    path = entry_dir("real", evaluator._real_key()) / "model.safetensors"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.output)
        path = Path(args.output)
    record = {"dataset": args.dataset, "arch": evaluator.teacher_arch()[0], "accuracy": values[0],
              "cached": cached, "checkpoint": str(path)}
    print(json.dumps(record, indent=2) if args.json else
          f"teacher {record['arch']} on {args.dataset}: test accuracy {values[0]:.4f}"
          f"{' (cached)' if cached else ''}\ncheckpoint: {path}")
    return 0


# -- ddr show ------------------------------------------------------------------------------------

def cmd_show(args: argparse.Namespace) -> int:
    from ddr.errors import ArtifactError

    folder = Path(args.run)
    files = {name: folder / f"{name}.json" for name in ("run_spec", "metrics", "env")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise ArtifactError(f"{folder} is not a complete run record; missing {', '.join(missing)}")
    data = {name: json.loads(path.read_text()) for name, path in files.items()}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    metrics = data["metrics"]
    for key in ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "ars"):
        if key in metrics:
            print(f"{key:<14} {metrics[key]['mean']:.4f} ± {metrics[key]['std']:.4f}")
    print(f"protocol {metrics['protocol']} v{metrics['protocol_version']}, seed {metrics['seed']}, "
          f"distilled_sha256 {metrics['distilled_sha256'][:16]}…")
    return 0


def add_commands(sub: Any) -> None:
    """Register the heavy sub-commands on the main parser's subparsers."""
    p = sub.add_parser("run", help="distill with a method, then evaluate it (default: digits, IPC 1)")
    p.add_argument("--method", required=True, help="method name, optionally with a preset (dm.paper)")
    p.add_argument("--iterations", type=int, default=None, help="distillation iterations (method.iterations)")
    p.add_argument("--save-distilled", default=None, metavar="DIR", help="also save the distilled set here (ddr format)")
    p.add_argument("--no-cache", action="store_true", help="distill again even if the set is cached")
    _add_eval_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="evaluate your own distilled set (ddr dir, DD-Ranking .pt files, image folders)")
    p.add_argument("path", help="distilled set: ddr artifact dir, dir with images.pt/labels.pt/lr.pt, or class folders")
    p.add_argument("--resize", action="store_true", help="resize images to the dataset's size instead of failing")
    p.add_argument("--pixel-space", choices=["normalized", "zca", "pixel01"], default=None,
                   help="pixel space of .pt images (default: normalized; zca with --zca)")
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
    t.set_defaults(func=cmd_teacher_train)

    p = sub.add_parser("show", help="print a run record (run_spec.json, metrics.json, env.json)")
    p.add_argument("run", help="run record directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)
