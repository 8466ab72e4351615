"""The ``ddr`` command line (argparse).

``ddr list`` and ``ddr plugins`` never import torch; ``run``, ``eval`` and ``teacher`` import
their machinery only when invoked. Every :class:`~ddr.errors.DdrError` is printed without a
traceback and exits with status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Sequence
from typing import Any

from ddr import __version__
from ddr.errors import ConfigError, DdrError, Terminated
from ddr.plugin.specs import SPEC_TYPES


def _configure_plugins(plugins: Sequence[str]) -> Any:
    """The plugin system of this invocation, from the ``-p`` values (``NAME`` loads, ``no:NAME``
    blocks); every command of the invocation uses this one."""
    from ddr.plugin.manager import PluginSystem

    block = [p[3:] for p in plugins if p.startswith("no:")]
    load = [p for p in plugins if not p.startswith("no:")]
    return PluginSystem(block=block, load=load)


def _plugin_system(args: argparse.Namespace) -> Any:
    """The plugin system of this invocation (configured once by :func:`main`)."""
    system = getattr(args, "plugin_system", None)
    if system is None:
        system = args.plugin_system = _configure_plugins(args.plugins)
    return system


def _warn_failures(system: Any) -> None:
    for info in system.failures():
        print(f"warning: {info.short()}\n  (block it with -p no:{info.name}; `ddr doctor` for details)",
              file=sys.stderr)


# -- list ----------------------------------------------------------------------------------------

def _list_kinds(args: argparse.Namespace, system: Any) -> int:
    """``ddr list`` without a kind: every kind with how many components it has."""
    counts = {kind: len(system.registry(kind).list()) for kind in SPEC_TYPES}
    _warn_failures(system)
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    width = max(len(kind) for kind in counts)
    for kind, n in counts.items():
        print(f"{kind.ljust(width)}  {n}")
    print("`ddr list KIND` lists one kind's components")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    system = _plugin_system(args)
    if args.kind is None:
        if args.pattern or args.exclude:
            raise DdrError("a name pattern or --exclude needs a kind: ddr list KIND [PATTERN]; "
                           f"kinds: {', '.join(SPEC_TYPES)}")
        return _list_kinds(args, system)
    registry = system.registry(args.kind)
    specs = registry.list(args.pattern, args.exclude)
    conflicts = registry.conflicts()
    _warn_failures(system)  # on stderr, so --json output stays parseable
    if args.json:
        rows = []
        for spec in specs:
            row = spec.describe()
            row["conflict"] = spec.name in conflicts
            rows.append(row)
        print(json.dumps(rows, indent=2))
    else:
        if not specs:
            print(f"no {args.kind} match" + (f" '{args.pattern}'" if args.pattern else ""))
        width = max((len(s.name) for s in specs), default=0)
        for spec in specs:
            mark = "  [CONFLICT]" if spec.name in conflicts else ""
            alias = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
            presets = f" [presets: {', '.join(sorted(spec.presets))}]" if spec.presets else ""
            arg = ":ARG" if spec.accepts_argument else ""
            print(f"{(spec.name + arg).ljust(width + 4)}  {spec.summary}{alias}{presets}  <{spec.provider}>{mark}")
    return 0


# -- plugins -------------------------------------------------------------------------------------

def cmd_plugins(args: argparse.Namespace) -> int:
    system = _plugin_system(args)
    for kind in SPEC_TYPES:  # collect every hook so spec errors show up as failures
        system.registry(kind)
    rows = system.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        dist = f"{row['distribution']} {row['version']}" if row["distribution"] else "(local module)"
        print(f"{row['name']:<14} {dist:<24} {row['status']:<8} {', '.join(row['hooks'])}")
        if row["error"]:
            print(f"{'':14} ! {row['error']}")
    return 0


# -- doctor --------------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from ddr.plugin.registry import import_target

    system = _plugin_system(args)
    problems: list[str] = []
    for kind in SPEC_TYPES:
        registry = system.registry(kind)
        for name, specs in registry.conflicts().items():
            providers = ", ".join(sorted(s.provider or "?" for s in specs))
            problems.append(f"conflict: {registry.kind} '{name}' is provided by {providers}; "
                            f"qualify it as PROVIDER/{name} or block one with -p no:PROVIDER")
        if args.materialize:
            for spec in registry.list():
                try:
                    import_target(spec)
                except DdrError as exc:
                    problems.append(f"bad target: {exc}")
        problems.extend(_static_problems(kind, registry.list()))
    for info in system.failures():
        problems.append(f"failed plugin: {info.short()}")
    counts = {kind: len(system.registry(kind).specs) for kind in SPEC_TYPES}
    print(f"ddr {__version__}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print(f"plugins: {sum(p.status == 'active' for p in system.plugins.values())} active, "
          f"{sum(p.status == 'blocked' for p in system.plugins.values())} blocked, "
          f"{len(system.failures())} failed")
    problems.extend(_storage_problems())
    print(f"torch: {torch_build()}")
    if problems:
        for problem in problems:
            print(f"PROBLEM {problem}")
        return 1
    print("no problems found" + ("" if args.materialize else " (run with --materialize to import every target)"))
    return 0


_TORCH_PROBE = """
import json, torch
cuda, hip = getattr(torch.version, "cuda", None), getattr(torch.version, "hip", None)
try:
    usable = bool(torch.cuda.is_available()); name = torch.cuda.get_device_name(0) if usable else None; error = None
except Exception as exc:
    usable, name, error = False, None, str(exc)
print(json.dumps({"version": torch.__version__, "cuda": cuda, "hip": hip, "usable": usable, "name": name,
                  "error": error}))
"""


def torch_build(timeout: float = 120.0) -> str:
    """The installed torch build in one line: its version, the CUDA (or ROCm) version it was built
    for or ``CPU-only``, and whether a GPU is usable now (with its name).

    torch is imported in a child interpreter (waited for at most ``timeout`` seconds), so ``ddr
    doctor`` itself stays torch-free and a broken torch install is reported, not fatal."""
    import subprocess

    try:
        proc = subprocess.run([sys.executable, "-c", _TORCH_PROBE], capture_output=True, text=True, timeout=timeout)
        info = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return f"could not be inspected ({exc})"
    if not isinstance(info, dict):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"not importable ({last}); install it (README: Install)"
    build = f"CUDA {info['cuda']}" if info["cuda"] else f"ROCm {info['hip']}" if info["hip"] else "CPU-only"
    gpu = f"GPU usable: {info['name']}" if info["usable"] else "no usable GPU"
    if info.get("error"):
        gpu += f" ({info['error']})"
    elif not info["usable"] and build != "CPU-only":
        gpu += " (a GPU build: check the driver and CUDA_VISIBLE_DEVICES)"
    return f"{info['version']} ({build}); {gpu}"


def _static_problems(kind: str, specs: Sequence[Any]) -> list[str]:
    """What ``ddr doctor`` finds wrong in specs without importing torch: method presets that do
    not fit their parameter schema, protocol YAML files that do not load or validate."""
    problems: list[str] = []
    for spec in specs:
        block = f"fix the plugin '{spec.provider}' or block it with -p no:{spec.provider}"
        if kind == "methods":
            for preset, values in sorted(spec.presets.items()):
                try:
                    spec.check_params(dict(values))
                except DdrError as exc:
                    problems.append(f"bad preset: method '{spec.name}' preset '{preset}' (plugin '{spec.provider}'): "
                                    f"{exc}; {block}")
        elif kind == "protocols":
            from ddr.protocol.config import load_protocol

            try:
                load_protocol(spec.path)
            except DdrError as exc:
                problems.append(f"bad protocol '{spec.name}' (plugin '{spec.provider}'): {exc}; {block}")
    return problems


def _storage_problems() -> list[str]:
    """Whether the cache directory takes writes and the results database opens (printed as
    ``cache:`` and ``results database:`` lines; problems returned)."""
    from ddr.store.results import ResultsDB, default_path
    from ddr.store.writable import check_cache

    problems: list[str] = []
    try:
        print(f"cache: {check_cache()} (writable)")
    except DdrError as exc:
        problems.append(f"cache: {exc}")
    path = default_path()
    if not path.exists():
        print(f"results database: {path} (not created yet; runs and `ddr results import` create it)")
        return problems
    try:
        with ResultsDB(path) as db:
            print(f"results database: {path} ({len(db)} runs)")
    except DdrError as exc:
        problems.append(f"results database: {exc}")
    return problems


# -- validate ------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from ddr.protocol.config import build_protocol
    from ddr.protocol.yaml import load_yaml_with_includes
    from ddr.runs.runconfig import validate_run_config
    from ddr.runs.suite import is_suite_file, load_suite

    failed: list[str] = []  # every file is checked; each invalid one is reported with all its problems
    for path in args.config:
        try:
            data = load_yaml_with_includes(path)
            if is_suite_file(data):
                print(f"{path}: valid {load_suite(path, _plugin_system(args)).summary()}")
            elif "version" in data and "name" in data and "method" not in data:
                protocol = build_protocol(data, path)
                print(f"{path}: valid protocol '{protocol.name}' version {protocol.version}")
            else:
                system = _plugin_system(args)
                summary = validate_run_config(data, system, where=path)
                print(f"{path}: valid run config ({summary})")
        except DdrError as exc:
            if len(args.config) == 1:
                raise
            print(f"ddr: error: {exc}", file=sys.stderr)
            failed.append(path)
    if failed:
        raise ConfigError(f"{len(failed)} of {len(args.config)} files are invalid: {', '.join(failed)}")
    return 0


# -- describe ------------------------------------------------------------------------------------

def _kind(name: str) -> str:
    """The registry kind of a singular or plural CLI name (``method`` -> ``methods``)."""
    for kind in SPEC_TYPES:
        if name in (kind, singular(kind)):
            return kind
    return name


def singular(kind: str) -> str:
    """``methods`` -> ``method``, ``losses`` -> ``loss``, ``label-strategies`` -> ``label-strategy``."""
    if kind.endswith("ies"):
        return kind[:-3] + "y"
    if kind.endswith("sses"):
        return kind[:-2]
    return kind.removesuffix("s")


def cmd_describe(args: argparse.Namespace) -> int:
    system = _plugin_system(args)
    registry = system.registry(_kind(args.kind))
    spec = registry.get(args.name)
    record = spec.describe()
    dist = system.provenance().get(spec.provider or "", ("", ""))
    record["distribution"] = {"name": dist[0] or None, "version": dist[1] or None}
    if registry.kind == "protocol":
        from ddr.protocol.config import load_protocol

        record["cells"] = list(load_protocol(spec.path).cells)
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"{registry.kind} {spec.name}: {spec.summary}")
    print(f"  provider {spec.provider} ({dist[0]} {dist[1]}), target {spec.target_path}, version {spec.version}")
    for key in ("paper", "venue", "year", "code", "label_type",
                "label_strategy", "protocol", "needs_teacher", "soft", "default_loss", "budget", "num_classes",
                "image_size", "devices", "unit", "higher_is_better", "formula", "needs", "inputs", "outputs", "roles",
                "columns"):
        if key in record and record[key] not in (None, "", []):
            print(f"  {key}: {record[key]}")
    params = record.get("params")
    if params:
        print("parameters:")
        width = max(len(p["name"]) for p in params)
        for param in params:
            extra = f"; one of {param['choices']}" if param["choices"] else ""
            extra += f"; >= {param['minimum']:g}" if param["minimum"] is not None else ""
            print(f"  {param['name']:<{width}}  {param['type']:<7} default {json.dumps(param['default'])}{extra}")
            if param["doc"]:
                print(f"  {'':<{width}}  {param['doc']}")
    elif spec.defaults:
        print("parameters: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in spec.defaults.items()))
    for preset, values in sorted(spec.presets.items()):
        print(f"preset {spec.name}.{preset}: " + (", ".join(f"{k}={json.dumps(v)}" for k, v in values.items()) or "(defaults)"))
    recipes = list(getattr(spec, "recipes", ()) or ())
    if recipes:
        print("recipes (the authors' settings, applied by `ddr run` on that dataset and IPC under your own):")
        for recipe in recipes:
            print(f"  {recipe.name}: {recipe.summary()}")
            print(f"    source: {recipe.source}")
    if record.get("cells"):
        print("cells (applied by `ddr run`/`ddr eval` on that dataset and IPC; --set KEY overrides them):")
        for cell in record["cells"]:
            print(f"  {cell}")
    if record.get("reported"):
        from ddr.plugin.specs import reported_number

        print("reported (published test accuracy as a fraction; its source, evaluation architecture, labels):")
        sources = record.get("reported_sources") or {}
        width = max(len(k) for k in record["reported"])
        for key, value in sorted(record["reported"].items()):
            number = reported_number({"value": value, **(sources.get(key) or {})})
            extra = ", ".join(x for x in (number.arch, f"{number.label_type} labels" if number.label_type else "") if x)
            print(f"  {key:<{width}}  {value:.3f}  {number.source}" + (f" ({extra})" if extra else ""))
    return 0


# -- parser --------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddr",
        description="Distill with any method and evaluate it honestly: accuracy, HLR, IOR, DDRS, ARS.",
    )
    parser.add_argument("--version", action="version", version=f"ddr {__version__}")
    parser.add_argument("-p", dest="plugins", action="append", default=[], metavar="NAME",
                        help="load plugin NAME (entry point or module), or block it with no:NAME")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list installed components of one kind (no kind: every kind with its count)")
    p.add_argument("kind", nargs="?", default=None, choices=list(SPEC_TYPES))
    p.add_argument("pattern", nargs="?", help="glob or substring to filter names")
    p.add_argument("--exclude", help="glob of names to leave out")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plugins", help="list plugins with their distribution, hooks and status")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("doctor", help="check plugins (conflicts, load failures, method presets, protocols), "
                                      "the cache and the results database")
    p.add_argument("--materialize", action="store_true", help="also import every component's target")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("describe", help="one component in full: parameters with types, defaults and docs, presets")
    p.add_argument("kind", choices=sorted({*SPEC_TYPES, *(singular(k) for k in SPEC_TYPES)}),
                   metavar="KIND", help="method, dataset, architecture, label-strategy, loss, augmentation, "
                                        "protocol, executor")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("validate", help="validate suite, protocol or run config YAML files (strict: did-you-mean)")
    p.add_argument("config", nargs="+")
    p.set_defaults(func=cmd_validate)

    from ddr.cli import ddranking
    from ddr.cli.bundles import add_bundle_commands
    from ddr.cli.cache import add_cache_commands
    from ddr.cli.evaluation import add_commands
    from ddr.cli.results import add_results_commands
    from ddr.cli.site import add_site_commands

    add_commands(sub)
    add_results_commands(sub)
    add_site_commands(sub)
    add_cache_commands(sub)
    add_bundle_commands(sub)
    ddranking.register(sub)
    return parser


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    import signal

    from ddr.plugin.faults import on_sigint

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = _install(signal.SIGINT, on_sigint)
    try:
        parser = build_parser()
        system = _add_plugin_commands(parser, argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        # every command, run and eval included, uses the plugin system configured by -p
        args.plugin_system = system if system is not None else _configure_plugins(args.plugins)
        try:
            return int(args.func(args) or 0)
        finally:
            for cleanup in getattr(args, "cleanups", []):  # the display's bars and log handlers
                cleanup()
    except DdrError as exc:
        if debug:
            raise
        print(f"ddr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("ddr: terminated (SIGTERM); results written so far are kept", file=sys.stderr)
        return Terminated.exit_code
    except KeyboardInterrupt:
        print("ddr: interrupted; results written so far are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ddr list ... | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # after BrokenPipeError, an OSError too
        if debug or exc.errno != errno.ENAMETOOLONG:
            raise
        # a name the user typed that the file system refuses, wherever it is first looked at
        print(f"ddr: error: cannot use the path {exc.filename}: {exc.strerror}; give a shorter path", file=sys.stderr)
        return DdrError.exit_code
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def _install(signum: int, handler: Any) -> Any:
    """Install ``handler`` for ``signum`` unless someone chose to ignore that signal (``nohup``,
    a parent); returns the previous handler to restore, or ``None`` when nothing was changed."""
    import signal

    previous = signal.getsignal(signum)
    if previous in (signal.SIG_IGN, None):
        return None
    signal.signal(signum, handler)
    return previous


def _add_plugin_commands(parser: argparse.ArgumentParser, argv: list[str]) -> Any:
    """Let plugins add sub-commands (``ddr_add_commands``) when the command is not a built-in.

    Returns the plugin system it built (configured with the ``-p`` values), or ``None`` when the
    command is a built-in one.
    """
    plugins, command = _split_global_options(argv)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    if command is None or command in sub.choices:
        return None
    system = _configure_plugins(plugins)
    system.pm.hook.ddr_add_commands(subparsers=sub)
    return system


def _split_global_options(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """The ``-p`` values (``-p NAME`` or ``-pNAME``) before the sub-command, and the sub-command."""
    plugins: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "-p":
            plugins.append(next(tokens, ""))
        elif token.startswith("-p"):
            plugins.append(token[2:].removeprefix("="))
        elif not token.startswith("-"):
            return plugins, token
    return plugins, None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
