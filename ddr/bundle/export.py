"""``ddr export RUN|SUITE -o FILE``: one run (or every run of a suite) from the results database as
one self-describing, verifiable bundle (layout: :mod:`ddr.bundle.manifest`).

What goes in, per run: the run record exactly as the results database holds it (``run_spec.json``,
``metrics.json``, ``env.json``), ``resolved.json`` (the resolved protocol, the method with its
resolved parameters, budget and recipe, the evaluation settings, every seed, the method's plugin
with its distribution and version, and the kind of machine it ran on) and one JSON per job (the
reference and each student: the result the record lists, with the job cache's sealed record when
the cache still holds it and agrees). Per distilled set: the set exactly as evaluated, in ddr's
safetensors format, found by content: the cache entry the run's ``distill_key`` names, or, for a
``ddr eval`` record, the set at its ``source`` path, as loaded or as the evaluation validated it
(normalised from ``pixel01``, resized); either must hash to the run's
``distilled_sha256``, so a bundle never carries another set than the one its numbers came from.
Per teacher checkpoint file a run was given: the file's bytes, when it is still where the run read
it and still hashes to the ``teacher_sha256`` its record holds (otherwise the export says so and
goes on; ``ddr verify`` then asks for the file).

The bytes depend only on the records and the sets (fixed member order, fixed timestamps, canonical
JSON): exporting the same runs twice gives the same file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.bundle.container import write_zip
from ddr.bundle.machine import machine_kind
from ddr.bundle.manifest import (
    FORMAT,
    FORMAT_VERSION,
    INFO,
    MANIFEST,
    build_manifest,
    folder_name,
    teacher_member,
    teacher_sha256,
)
from ddr.errors import ArtifactError, DdrError

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.distilled import DistilledSet

SUMMARY_SCORES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "ars")
"""The scores ``bundle.json`` summarises per run (mean, std, n; fractions)."""
ROLE_ORDER = ("real", "syn_hard", "syn_any", "rdm_any", "syn_noaug", "rdm_noaug")


@dataclass
class ExportReport:
    """What ``ddr export`` wrote: the ``path``, the bundle's ``kind`` and ``name``, its ``runs``
    (ids), ``sets`` (sha256 of each distilled set), ``teachers`` (sha256 of each teacher checkpoint),
    ``bytes`` (file size) and ``sha256`` (of the file)."""

    path: Path
    kind: str
    name: str
    runs: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    teachers: list[str] = field(default_factory=list)
    bytes: int = 0
    sha256: str = ""


def canonical(value: Any) -> bytes:
    """The JSON bytes a bundle stores: sorted keys, two-space indent, trailing newline, UTF-8."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def select_runs(ref: str, *, db: str | Path | None = None, system: Any = None) -> tuple[str, str, list[dict[str, Any]]]:
    """``(kind, name, rows)`` that ``ref`` names in the results database: a suite name (every run
    tagged with it, as ``ddr results --suite NAME`` lists), a suite file (its current units' runs),
    or a run id / unique id prefix / record folder name (as ``ddr results`` and ``ddr show`` take).
    A :class:`DdrError` when nothing or two different things match."""
    from ddr.store.results import ResultsDB

    with ResultsDB(db) as database:
        if ref.endswith((".yaml", ".yml")) and Path(ref).is_file():
            from ddr.runs.suite import load_suite

            suite = load_suite(ref, system)
            rows = database.query(suite=suite.name, where={"run_spec.suite_unit": [u.uid for u in suite.units()]})
            if not rows:
                raise DdrError(f"no run of suite file {ref} is in {database.path}; run it first (`ddr run {ref}`)")
            return "suite", suite.name, rows
        suite_rows = database.query(suite=ref)
        try:
            run = database.get(ref)
        except DdrError as exc:
            if suite_rows:
                return "suite", ref, suite_rows
            if "ambiguous" in str(exc):
                raise
            raise DdrError(f"'{ref}' is neither a suite nor a run in {database.path}; `ddr results` lists the runs "
                           "(their ids and suites)") from None
        if suite_rows and [r["run_id"] for r in suite_rows] != [run["run_id"]]:
            raise DdrError(f"'{ref}' names both suite '{ref}' and run {run['run_id'][:10]}; give more digits of the "
                           "run id to export the run, or the suite's file (ddr export SUITE.yaml) to export the suite")
        return "run", run["run_id"], [run]


def _label(row: Mapping[str, Any]) -> str:
    parts = [str(row["method"]), str(row["dataset"]), f"IPC {row['ipc']}", f"seed {row.get('seed')}"]
    spec = row.get("run_spec") or {}
    if spec.get("distill_arch") and spec.get("arch") and spec.get("distill_arch") != spec.get("arch"):
        parts.append(f"students {spec['arch']}")
    return " · ".join(parts)


def _summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key in SUMMARY_SCORES:
        value = metrics.get(key)
        if isinstance(value, Mapping) and "mean" in value:
            out[key] = {"mean": value.get("mean"), "std": value.get("std"), "n": value.get("n")}
    return out


def _plugin_of(row: Mapping[str, Any], system: Any) -> dict[str, Any] | None:
    """The method's plugin (``name``, ``distribution``, ``version``): its provider as resolved here,
    described by the run's own ``env.json`` (the versions it ran with) when that lists it."""
    spec = row.get("run_spec") or {}
    method = spec.get("method") or (row.get("metrics") or {}).get("method")
    if not method or system is None:
        return None
    try:
        provider = system.methods().resolve(str(method)).spec.provider
    except DdrError:  # the method's plugin is not installed here: the record still names the method
        return {"name": None, "distribution": None, "version": None, "method": str(method)}
    for plugin in (row.get("env") or {}).get("plugins") or []:
        if isinstance(plugin, Mapping) and plugin.get("name") == provider:
            return {"name": provider, "distribution": plugin.get("distribution"), "version": plugin.get("version"),
                    "method": str(method)}
    dist, version = system.provenance().get(provider or "", ("", ""))
    return {"name": provider, "distribution": dist or None, "version": version or None, "method": str(method)}


def _jobs(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every job result of a record (the reference first, then the students), each with the job
    cache's sealed record (``job_cache``) when the cache holds the job and agrees with the record."""
    from ddr.store.jobs import read_entry

    listed = []
    reference = metrics.get("reference")
    if isinstance(reference, Mapping):
        listed.append(dict(reference))
    listed += [dict(s) for s in metrics.get("students") or [] if isinstance(s, Mapping)]
    out = []
    for job in listed:
        cached = None
        key = job.get("key")
        if isinstance(key, str) and key:
            record, problem = read_entry(key)
            if record is not None and problem is None and record.get("accuracy") == job.get("accuracy"):
                cached = record
        out.append({"result": job, "job_cache": cached})
    order = {role: i for i, role in enumerate(ROLE_ORDER)}
    return sorted(out, key=lambda j: (order.get(str(j["result"].get("role")), 99), int(j["result"].get("index") or 0)))


def _seeds(row: Mapping[str, Any]) -> dict[str, Any]:
    metrics = row.get("metrics") or {}
    found = metrics.get("reference")
    reference: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {"run": row.get("seed"), "distillation": row.get("distill_seed"),
            "reference": reference.get("seed"),
            "students": [{"role": s.get("role"), "index": s.get("index"), "seed": s.get("seed"), "key": s.get("key")}
                         for s in metrics.get("students") or [] if isinstance(s, Mapping)]}


def resolved_record(row: Mapping[str, Any], plugin: Mapping[str, Any] | None) -> dict[str, Any]:
    """``resolved.json``: what a run resolved to, gathered in one place for a reader (and ``ddr verify``)."""
    spec = dict(row.get("run_spec") or {})
    metrics = dict(row.get("metrics") or {})
    is_run = bool(spec.get("method"))
    method = None
    if is_run:
        method = {"name": spec.get("method"), "params": spec.get("method_params") or {}, "budget": spec.get("budget"),
                  "recipe": spec.get("recipe"), "distill_key": spec.get("distill_key"),
                  "distill_arch": spec.get("distill_arch"), "plugin": dict(plugin) if plugin else None}
    return {
        "run_id": row["run_id"],
        "command": "run" if is_run else "eval",
        "label": _label(row),
        "protocol": {"name": spec.get("protocol"), "version": spec.get("protocol_version"),
                     "overrides": spec.get("protocol_overrides") or {}, "config": spec.get("protocol_config")},
        "method": method,
        "external_set": None if is_run else {"source": spec.get("source"), **(metrics.get("external_set") or {})},
        "evaluation": {k: spec.get(k) for k in ("dataset", "ipc", "arch", "arch_params", "label_strategy", "loss",
                                                "zca", "lr_override", "ars", "metrics", "teacher", "executor", "device")},
        "seeds": _seeds(row),
        "distilled_sha256": row.get("distilled_sha256"),
        "test_set_selection": metrics.get("test_set_selection"),
        "machine": machine_kind(row.get("env") or {}, spec.get("device")),
    }


def _set_files(row: Mapping[str, Any], system: Any, workdir: Path) -> dict[str, bytes]:
    """``{file name: bytes}`` of the distilled set ``row`` evaluated, in ddr's format, checked to
    hash to its ``distilled_sha256``."""
    from ddr.method.distilled import distilled_sha256
    from ddr.store.formats import META_FILE, TENSOR_FILE, load_distilled, save_distilled

    spec = row.get("run_spec") or {}
    wanted = str(row.get("distilled_sha256") or "")
    run = str(row["run_id"])[:10]
    tried = []
    key = spec.get("distill_key")
    if isinstance(key, str) and len(key) > 2:
        from ddr.store.cache import entry_dir

        folder = entry_dir("distilled", key)
        tried.append(f"the cache entry {folder}")
        if folder.is_dir():
            try:
                found = distilled_sha256(load_distilled(folder))
            except DdrError as exc:
                raise ArtifactError(f"run {run}: its distilled set in the cache ({folder}) cannot be read: "
                                    f"{str(exc).splitlines()[0]}; rerun the run (its set is distilled again) and "
                                    "export again") from None
            if found == wanted:
                return {name: (folder / name).read_bytes() for name in (TENSOR_FILE, META_FILE)}
    source = spec.get("source")
    if isinstance(source, str) and source:
        tried.append(f"its source {source}")
        if Path(source).exists():
            from ddr.store.formats import load_any

            try:
                dataset = system.datasets().get(str(row["dataset"]))
            except (DdrError, AttributeError):
                dataset = None
            try:
                loaded = load_any(Path(source), system, num_classes=getattr(dataset, "num_classes", None),
                                  ipc=int(row["ipc"]),
                                  pixel_space=spec.get("pixel_space") or ("zca" if spec.get("zca") else None))
            except DdrError as exc:
                raise ArtifactError(f"run {run}: the set at {source} cannot be read now: {str(exc).splitlines()[0]}"
                                    ) from None
            evaluated: DistilledSet | None = loaded
            if distilled_sha256(loaded) != wanted:  # the file's tensors are not the trained ones: validate them
                evaluated = _as_evaluated(loaded, dataset, int(row["ipc"]))
                if evaluated is not None and distilled_sha256(evaluated) != wanted:
                    evaluated = None
            if evaluated is not None:
                target = save_distilled(evaluated, workdir / wanted)
                return {name: (target / name).read_bytes() for name in (TENSOR_FILE, META_FILE)}
    where = " and ".join(tried) if tried else "nowhere (the record names neither a distill key nor a source)"
    again = (f"`ddr eval {source}` with the run's options" if source else
             "the run again (`ddr run` distils the same set and finds every finished student in the job cache)")
    raise ArtifactError(f"run {run} ({_label(row)}): the distilled set it evaluated (sha256 {wanted[:16]}…) is no "
                        f"longer at {where} (pruned, moved or changed since); recreate it by running {again}, then "
                        "export again")


def _teacher(row: Mapping[str, Any], members: dict[str, bytes], log: Callable[[str], None] | None) -> str | None:
    """The member holding the teacher checkpoint file ``row``'s run was given, added to ``members``
    (a file another run of the bundle recorded with the same sha256 is not read again); ``None`` when
    the run had none or the file is gone or changed since (said through ``log``)."""
    spec = row.get("run_spec") or {}
    path = spec.get("teacher")
    if not path:
        return None
    recorded = spec.get("teacher_sha256")
    known = next((name for name in members if teacher_sha256(name) == recorded), None)
    if known is not None:
        return known
    run = f"run {str(row['run_id'])[:10]} ({_label(row)})"
    try:
        data = Path(str(path)).read_bytes()
    except (OSError, ValueError) as exc:
        if log is not None:
            log(f"export: {run}: its teacher checkpoint {path} cannot be read ({exc}); the bundle goes without it "
                "and `ddr verify` will ask for the file")
        return None
    sha = hashlib.sha256(data).hexdigest()
    if recorded and recorded != sha:
        if log is not None:
            log(f"export: {run}: its teacher checkpoint {path} changed since the run (sha256 {sha[:16]}…, the record "
                f"says {str(recorded)[:16]}…); the bundle goes without it")
        return None
    member = teacher_member(sha, path)
    members[member] = data
    return member


def _as_evaluated(loaded: "DistilledSet", dataset: Any, ipc: int) -> "DistilledSet | None":
    """``loaded`` as ``ddr eval`` trained on it: validated against ``dataset`` (its spec; pixel01
    sets normalised, dtypes converted, another size resized as ``--resize`` does), or ``None`` when
    the dataset's geometry is not known without loading it or the set does not fit."""
    from ddr.method.distilled import validate_distilled

    geometry = [getattr(dataset, k, None) for k in ("num_classes", "channels", "image_size", "mean", "std")]
    if any(value is None for value in geometry):
        return None
    try:
        return validate_distilled(loaded, num_classes=dataset.num_classes, ipc=ipc, channels=dataset.channels,
                                  image_size=dataset.image_size, mean=dataset.mean, std=dataset.std, resize=True)
    except DdrError:
        return None


def _check_row(row: Mapping[str, Any]) -> None:
    metrics = row.get("metrics") or {}
    run = str(row.get("run_id"))[:10]
    if not row.get("distilled_sha256") or not isinstance(metrics.get("students"), list):
        raise ArtifactError(f"run {run}: its record lacks the distilled set's hash or the students' results (written "
                            "by an older ddr?); rerun it, then export again")
    if not isinstance((row.get("run_spec") or {}).get("protocol_config"), Mapping):
        raise ArtifactError(f"run {run}: its run_spec.json has no resolved protocol ('protocol_config'); rerun it with "
                            "this ddr, then export again")


def bundle_members(kind: str, name: str, rows: Sequence[Mapping[str, Any]], *, system: Any = None,
                   log: Callable[[str], None] | None = None) -> list[tuple[str, bytes]]:
    """Every member of the bundle of ``rows`` (manifest first), in archive order."""
    import ddr

    rows = sorted(rows, key=lambda r: str(r["run_id"]))
    run_members: list[tuple[str, bytes]] = []
    set_members: dict[str, dict[str, bytes]] = {}
    teacher_members: dict[str, bytes] = {}
    summaries, plugins = [], {}
    with tempfile.TemporaryDirectory(prefix="ddr-export-") as tmp:
        for row in rows:
            _check_row(row)
            sha = str(row["distilled_sha256"])
            if sha not in set_members:
                set_members[sha] = _set_files(row, system, Path(tmp))
            plugin = _plugin_of(row, system)
            if plugin and plugin.get("name"):
                plugins[plugin["name"]] = {k: plugin[k] for k in ("name", "distribution", "version")}
            folder = f"runs/{folder_name(str(row['run_id']))}"
            run_members += [(f"{folder}/run_spec.json", canonical(row.get("run_spec") or {})),
                            (f"{folder}/metrics.json", canonical(row.get("metrics") or {})),
                            (f"{folder}/env.json", canonical(row.get("env") or {})),
                            (f"{folder}/resolved.json", canonical(resolved_record(row, plugin)))]
            for job in _jobs(row.get("metrics") or {}):
                result = job["result"]
                run_members.append((f"{folder}/jobs/{result.get('role')}-{int(result.get('index') or 0)}.json",
                                    canonical(job)))
            spec = row.get("run_spec") or {}
            teacher = _teacher(row, teacher_members, log)
            summaries.append({
                "run_id": row["run_id"], "folder": folder, "label": _label(row), "method": row["method"],
                "external": not bool(spec.get("method")), "dataset": row["dataset"], "ipc": row["ipc"],
                "seed": row.get("seed"), "distill_seed": row.get("distill_seed"), "suite": row.get("suite"),
                "arch": row.get("arch"), "label_strategy": row.get("label_strategy"), "protocol": row.get("protocol"),
                "protocol_version": row.get("protocol_version"), "distilled_sha256": sha, "set": f"sets/{sha}",
                "created": row.get("created"), "scores": _summary(row.get("metrics") or {}), "plugin": plugin,
                **({"teacher": teacher} if teacher is not None else {}),
            })
            if log is not None:
                log(f"export: run {str(row['run_id'])[:10]} {_label(row)}")
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "name": name,
            "exported_with": {"ddr": ddr.__version__}, "runs": summaries, "sets": sorted(set_members),
            "plugins": [plugins[k] for k in sorted(plugins)],
            **({"teachers": sorted(teacher_members)} if teacher_members else {})}
    members = [(INFO, canonical(info)), *run_members]
    for sha in sorted(set_members):
        members += [(f"sets/{sha}/{file}", data) for file, data in sorted(set_members[sha].items())]
    members += sorted(teacher_members.items())
    manifest = build_manifest(members)
    return [(MANIFEST, manifest.to_bytes()), *members]


def export_bundle(ref: str, output: str | Path, *, db: str | Path | None = None, system: Any = None,
                  log: Callable[[str], None] | None = None) -> ExportReport:
    """Write the bundle of ``ref`` (a run id or prefix, a suite name or a suite file; see
    :func:`select_runs`) to ``output`` (a ``.zip``); returns what was written.

    Raises :class:`DdrError` (one line, what to do) when ``ref`` names nothing, a run's distilled set
    can no longer be found, or ``output`` cannot be written."""
    from ddr.store.hashing import sha256_file

    if system is None:
        from ddr.plugin.manager import PluginSystem

        system = PluginSystem()
    output = Path(output)
    if output.is_dir():
        raise ArtifactError(f"-o {output} is a directory; give a file name, e.g. -o {output / 'bundle.zip'}")
    kind, name, rows = select_runs(ref, db=db, system=system)
    members = bundle_members(kind, name, rows, system=system, log=log)
    write_zip(output, members)
    info = json.loads(members[1][1])
    return ExportReport(path=output, kind=kind, name=name, runs=[r["run_id"] for r in info["runs"]],
                        sets=list(info["sets"]), teachers=[teacher_sha256(t) for t in info.get("teachers", [])],
                        bytes=output.stat().st_size, sha256=sha256_file(output))
