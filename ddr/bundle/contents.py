"""An opened bundle: every member checked against the manifest, the records parsed, the distilled
sets written out (as ddr-format folders) for the evaluation to load.

:func:`open_bundle` reads the whole file once. Every member is hashed as it is read and compared
with the manifest before anything of the bundle is used; JSON members are parsed only after that,
safetensors files are only ever loaded by :func:`ddr.store.formats.load_distilled` (which checks
the tensors against the set's own hash) and only through :meth:`Bundle.load_set`. Then the
structure is checked: ``bundle.json`` names every run folder, distilled set and teacher
checkpoint the archive holds and nothing else, each run has its four records, each run's set (and
teacher, when it names one) is in the bundle, and the ids agree. Any mismatch is a
:class:`~ddr.bundle.container.BundleError` naming the member.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ddr.bundle.container import BundleError, Entry, refuse
from ddr.bundle.manifest import (
    FORMAT,
    FORMAT_VERSION,
    INFO,
    RUN_FILES,
    SET_FILES,
    checked_members,
    member_kind,
    parse_json,
    teacher_sha256,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.distilled import DistilledSet


@dataclass
class BundledRun:
    """One run of a bundle: its ``run_id``, ``folder`` (``runs/<name>``), records (``run_spec``,
    ``metrics``, ``env``, ``resolved``; dicts as in the results database) and ``jobs`` (file stem
    ``<role>-<index>`` -> the job's JSON)."""

    run_id: str
    folder: str
    label: str
    run_spec: dict[str, Any]
    metrics: dict[str, Any]
    env: dict[str, Any]
    resolved: dict[str, Any]
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    teacher: str | None = None
    """The member holding the teacher checkpoint file the run was given (``teachers/<sha256>.<suffix>``),
    or ``None`` (no file teacher, or the export could not include it)."""

    @property
    def distilled_sha256(self) -> str:
        return str(self.metrics.get("distilled_sha256") or "")

    @property
    def is_distillation(self) -> bool:
        """A ``ddr run`` record (the method distilled the set), not a ``ddr eval`` of an external set."""
        return bool(self.run_spec.get("method"))


@dataclass
class Bundle:
    """An opened, checked bundle (:func:`open_bundle`).

    Attributes:
        path: the bundle file; sha256: of its bytes; manifest_sha256: of its ``manifest.json``.
        info: ``bundle.json``; runs: its runs in ``bundle.json`` order.
        sets: distilled set sha256 -> the folder it was written to (ddr's format).
        teachers: teacher checkpoint sha256 -> the file it was written to (its original suffix);
            read only by the evaluation ``ddr verify`` re-runs.
    """

    path: Path
    sha256: str
    manifest_sha256: str
    info: dict[str, Any]
    runs: list[BundledRun]
    sets: dict[str, Path]
    teachers: dict[str, Path] = field(default_factory=dict)

    def load_set(self, sha256: str) -> "DistilledSet":
        """The distilled set ``sha256`` as safetensors tensors (nothing else is ever read), checked
        to hash to ``sha256``."""
        from ddr.method.distilled import distilled_sha256
        from ddr.store.formats import load_distilled

        folder = self.sets.get(sha256)
        if folder is None:
            raise refuse(self.path, f"it has no distilled set sets/{sha256[:16]}…")
        try:
            loaded = load_distilled(folder)
        except BundleError:
            raise
        except Exception as exc:  # a DdrError from the loader; anything else is damage too  # noqa: BLE001
            raise refuse(self.path, f"member 'sets/{sha256}/images.safetensors' cannot be loaded: "
                                    f"{str(exc).splitlines()[0]}") from None
        if distilled_sha256(loaded) != sha256:
            raise refuse(self.path, f"member 'sets/{sha256}/images.safetensors' holds tensors whose content hash is "
                                    "not the one its folder is named by")
        return loaded

    def run(self, ref: str) -> BundledRun:
        """The run whose id is (or starts with) ``ref``."""
        found = [r for r in self.runs if r.run_id == ref] or [r for r in self.runs if r.run_id.startswith(ref)]
        if len(found) != 1:
            listing = ", ".join(r.run_id[:10] for r in self.runs)
            raise BundleError(f"{'no' if not found else 'more than one'} run '{ref}' in {self.path} (it holds: "
                              f"{listing})")
        return found[0]


def _sink_to(path: Path, files: list[IO[bytes]]) -> Callable[[bytes], None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "wb")  # noqa: SIM115 - closed by open_bundle once the member is complete
    files.append(handle)

    def write(chunk: bytes) -> None:
        handle.write(chunk)

    return write


def _dict(bundle: Path, name: str, data: bytes) -> dict[str, Any]:
    value = parse_json(bundle, name, data)
    if not isinstance(value, dict):
        raise refuse(bundle, f"member {name!r} holds {type(value).__name__}, not a JSON object")
    return value


def _structure(bundle: Path, texts: Mapping[str, bytes], set_names: set[str],
               teacher_names: set[str]) -> tuple[dict[str, Any], list[BundledRun]]:
    """``bundle.json`` and the runs, checked against each other and against the archive's members."""
    info = _dict(bundle, INFO, texts[INFO])
    if info.get("format") != FORMAT or info.get("format_version") != FORMAT_VERSION:
        raise refuse(bundle, f"member {INFO!r} says format {info.get('format')!r} version "
                             f"{info.get('format_version')!r}, not {FORMAT!r} {FORMAT_VERSION}")
    listed = info.get("runs")
    if not isinstance(listed, list) or not listed:
        raise refuse(bundle, f"member {INFO!r} lists no runs")
    runs, folders = [], set()
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("folder"), str) or not isinstance(
                item.get("run_id"), str):
            raise refuse(bundle, f"member {INFO!r} lists a run without 'run_id' and 'folder'")
        folder = item["folder"]
        records: dict[str, dict[str, Any]] = {}
        for file in RUN_FILES:
            name = f"{folder}/{file}"
            if name not in texts:
                raise refuse(bundle, f"member {name!r} is missing (run {item['run_id'][:10]})")
            records[file] = _dict(bundle, name, texts[name])
        metrics = records["metrics.json"]
        if metrics.get("run_id", item["run_id"]) != item["run_id"] or records["resolved.json"].get("run_id") != \
                item["run_id"]:
            raise refuse(bundle, f"member '{folder}/metrics.json' belongs to another run than {INFO!r} says")
        sha = str(metrics.get("distilled_sha256") or "")
        if sha not in set_names:
            raise refuse(bundle, f"run {item['run_id'][:10]}: its distilled set sets/{sha[:16]}… is not in the bundle")
        jobs = {name.rsplit("/", 1)[1][:-len(".json")]: _dict(bundle, name, data) for name, data in texts.items()
                if name.startswith(f"{folder}/jobs/")}
        teacher = item.get("teacher")
        if teacher is not None and teacher not in teacher_names:
            raise refuse(bundle, f"run {item['run_id'][:10]}: its teacher checkpoint {str(teacher)[:80]!r} is not in "
                                 "the bundle")
        runs.append(BundledRun(run_id=item["run_id"], folder=folder, label=str(item.get("label") or item["run_id"]),
                               run_spec=records["run_spec.json"], metrics=metrics, env=records["env.json"],
                               resolved=records["resolved.json"], jobs=jobs, teacher=teacher))
        folders.add(folder)
    if sorted(teacher_names) != sorted(str(t) for t in info.get("teachers") or []):
        raise refuse(bundle, f"member {INFO!r} lists other teacher checkpoints than the archive holds")
    stray = sorted(n for n in texts if n.startswith("runs/") and n.split("/", 2)[0] + "/" + n.split("/", 2)[1]
                   not in folders)
    if stray:
        raise refuse(bundle, f"member {stray[0]!r} belongs to no run {INFO!r} lists (an unexpected member)")
    if sorted(set_names) != sorted(str(s) for s in info.get("sets") or []):
        raise refuse(bundle, f"member {INFO!r} lists other distilled sets than the archive holds")
    return info, runs


@contextmanager
def open_bundle(path: str | Path, workdir: str | Path | None = None) -> Iterator[Bundle]:
    """Open ``path`` (a file ``ddr export`` wrote), check every member against its manifest and
    the layout, and yield the :class:`Bundle`; the distilled sets are written into a new temporary
    folder (inside ``workdir`` when given), removed on exit.

    Raises:
        BundleError: a member that does not match the manifest, is missing, unexpected, unsafe
            (path traversal, a link), oversized, or a record that does not fit the others; the
            message names the member. Nothing is left behind.
    """
    bundle = Path(path)
    root = Path(tempfile.mkdtemp(prefix="ddr-bundle-", dir=None if workdir is None else str(workdir)))
    texts: dict[str, bytes] = {}
    buffers: dict[str, bytearray] = {}
    open_files: list[IO[bytes]] = []
    set_files: dict[str, set[str]] = {}
    teachers: dict[str, Path] = {}
    try:
        def sink_for(entry: Entry) -> Callable[[bytes], None]:
            kind = member_kind(entry.name)
            if kind == "set":
                _, sha, file = entry.name.split("/")
                set_files.setdefault(sha, set()).add(file)
                return _sink_to(root / "sets" / sha / file, open_files)
            if kind == "teacher":
                sha = teacher_sha256(entry.name)
                if sha in teachers:
                    raise refuse(bundle, f"member {entry.name!r} is a second copy of teacher checkpoint {sha[:16]}…")
                teachers[sha] = root / entry.name
                return _sink_to(teachers[sha], open_files)
            buffer = buffers[entry.name] = bytearray()

            def keep(chunk: bytes) -> None:
                buffer.extend(chunk)

            return keep

        def done(entry: Entry) -> None:
            for handle in open_files:
                handle.close()
            open_files.clear()
            if entry.name in buffers:
                texts[entry.name] = bytes(buffers.pop(entry.name))

        listed = checked_members(bundle, sink_for, on_member=done).by_name()
        for sha, file in teachers.items():  # its key in every job is this sha256: the name must be the content's
            if listed[f"teachers/{file.name}"].sha256 != sha:
                raise refuse(bundle, f"member 'teachers/{file.name}' holds bytes whose sha256 is not the one it is "
                                     "named by")
        for sha, files in sorted(set_files.items()):
            if files != set(SET_FILES):
                missing = sorted(set(SET_FILES) - files)
                raise refuse(bundle, f"member 'sets/{sha}/{missing[0]}' is missing")
        info, runs = _structure(bundle, texts, set(set_files), {f"teachers/{p.name}" for p in teachers.values()})
        from ddr.bundle.manifest import manifest_sha256
        from ddr.store.hashing import sha256_file

        yield Bundle(path=bundle, sha256=sha256_file(bundle), manifest_sha256=manifest_sha256(bundle), info=info,
                     runs=runs, sets={sha: root / "sets" / sha for sha in sorted(set_files)}, teachers=teachers)
    finally:
        for handle in open_files:
            handle.close()
        shutil.rmtree(root, ignore_errors=True)
