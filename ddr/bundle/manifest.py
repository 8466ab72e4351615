"""A bundle's manifest and layout: which members a bundle may hold, and the sha256 of each.

A bundle (format :data:`FORMAT`, version :data:`FORMAT_VERSION`) is a zip whose members are, in
this order:

* ``manifest.json``: ``{"format", "format_version", "members": [{"name", "sha256", "bytes"}, ...]}``,
  the sha256 and size of every other member, in archive order;
* ``bundle.json``: what the bundle holds (kind ``run`` or ``suite``, its name, the exporting ddr,
  one summary per run, the distilled sets, the plugins with their versions);
* per run, under ``runs/<folder>/``: ``run_spec.json``, ``metrics.json``, ``env.json`` (the run
  record as the results database holds it), ``resolved.json`` (the resolved protocol, method and
  parameters, evaluation settings, every seed, the plugin and the machine it ran on) and
  ``jobs/<role>-<index>.json`` (each job's result: the reference and every student);
* per distilled set, under ``sets/<sha256>/``: ``images.safetensors`` and ``meta.json`` (ddr's
  distilled-set format, :mod:`ddr.store.formats`), the tensors exactly as evaluated.
* per teacher checkpoint a run was given (``--teacher FILE``, a protocol's ``teacher.checkpoint``,
  a DD-Ranking config's ``teacher_dir``), ``teachers/<sha256>.<suffix>``: the file's bytes as
  they were (``.safetensors``, or a state-dict ``.pt``/``.pth``), named by their sha256, which is
  what the run's job keys hold (``file:<sha256>``).

Nothing else is accepted: a member the layout does not name, a member the manifest does not list
(or lists but the archive lacks), or one whose bytes do not hash to the manifest's sha256 is
refused with a :class:`~ddr.bundle.container.BundleError` naming it, before anything is parsed or
loaded. Only JSON and safetensors are ever read from a bundle, except a teacher checkpoint in
``.pt`` form, which only ``ddr verify`` reads (when it re-runs the students) and only through the
loader ``--teacher`` uses (``torch.load(weights_only=True)``: tensors and containers, nothing
executed). :func:`read_manifest` is the light reader (no torch) for tools that list bundles.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddr.bundle.container import MAX_JSON_BYTES, BundleError, Entry, read_members, refuse

FORMAT = "ddr-bundle"
FORMAT_VERSION = 1
"""Bump when the layout or the meaning of a member changes; a reader refuses newer versions."""
MANIFEST = "manifest.json"
INFO = "bundle.json"
RUN_FILES = ("run_spec.json", "metrics.json", "env.json", "resolved.json")
SET_FILES = ("images.safetensors", "meta.json")
SET_PREFIX = "sets/"
RUN_PREFIX = "runs/"

_FOLDER = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
_LAYOUT = (
    ("run", re.compile(rf"runs/{_FOLDER}/(run_spec|metrics|env|resolved)\.json")),
    ("job", re.compile(rf"runs/{_FOLDER}/jobs/[a-z_]{{1,32}}-[0-9]{{1,7}}\.json")),
    ("set", re.compile(r"sets/[0-9a-f]{64}/(images\.safetensors|meta\.json)")),
    ("teacher", re.compile(r"teachers/[0-9a-f]{64}\.(safetensors|pt|pth)")),
)
LARGE_KINDS = ("set", "teacher")
"""Members holding tensors: bounded by the bundle's total size, not by :data:`MAX_JSON_BYTES`."""


def member_kind(name: str) -> str | None:
    """What member ``name`` is in the layout (``manifest``, ``info``, ``run``, ``job``, ``set``,
    ``teacher``), or ``None`` when the layout has no place for it."""
    if name == MANIFEST:
        return "manifest"
    if name == INFO:
        return "info"
    for kind, pattern in _LAYOUT:
        if pattern.fullmatch(name):
            return kind
    return None


def teacher_member(sha256: str, source: str | Path) -> str:
    """The member name of a teacher checkpoint whose bytes hash to ``sha256``: ``.safetensors`` when
    ``source`` is one, else ``.pt`` (the suffix decides how
    :func:`ddr.engine.teachers.read_state_dict` reads it)."""
    return f"teachers/{sha256}{'.safetensors' if Path(str(source)).suffix == '.safetensors' else '.pt'}"


def teacher_sha256(member: str) -> str:
    """The sha256 a teacher member (``teachers/<sha256>.<suffix>``) is named by."""
    return member.split("/", 1)[1].split(".", 1)[0]


def folder_name(run_id: str) -> str:
    """The folder of a run under ``runs/``: its id when that is a safe name, else the id's sha256."""
    if re.fullmatch(_FOLDER, run_id):
        return run_id
    return hashlib.sha256(run_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    """One member the manifest vouches for: its ``name``, ``sha256`` (hex) and size in ``bytes``."""

    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json``: the format version and every other member, in archive order."""

    format_version: int
    members: tuple[ManifestEntry, ...]

    def to_bytes(self) -> bytes:
        """The manifest's canonical JSON (sorted keys, two-space indent, trailing newline), UTF-8."""
        record = {"format": FORMAT, "format_version": self.format_version,
                  "members": [{"name": m.name, "sha256": m.sha256, "bytes": m.bytes} for m in self.members]}
        return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def by_name(self) -> dict[str, ManifestEntry]:
        return {m.name: m for m in self.members}


def build_manifest(members: Sequence[tuple[str, bytes]]) -> Manifest:
    """The manifest of ``members`` (name, bytes), which must all fit the layout."""
    entries = []
    for name, data in members:
        if member_kind(name) in (None, "manifest"):
            raise BundleError(f"internal error: member {name!r} does not fit the bundle layout")
        entries.append(ManifestEntry(name, hashlib.sha256(data).hexdigest(), len(data)))
    return Manifest(FORMAT_VERSION, tuple(entries))


def parse_json(bundle: Path, name: str, data: bytes) -> Any:
    """The JSON value of member ``name`` (a :class:`BundleError` naming it when it is not JSON)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise refuse(bundle, f"member {name!r} is not valid JSON ({exc})") from None
    except RecursionError:
        raise refuse(bundle, f"member {name!r} nests too deeply to read") from None


def parse_manifest(bundle: Path, data: bytes) -> Manifest:
    """``manifest.json``'s bytes checked and parsed: its format, version, and each entry's name
    (in the layout, no duplicates), sha256 and size."""
    record = parse_json(bundle, MANIFEST, data)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise BundleError(f"{bundle} is not a ddr bundle: its {MANIFEST} says format {found!r}, not {FORMAT!r}")
    version = record.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise refuse(bundle, f"{MANIFEST} has format_version {version!r}, not a positive integer")
    if version > FORMAT_VERSION:
        raise BundleError(f"{bundle} is a ddr bundle of format version {version}; this ddr reads up to "
                          f"{FORMAT_VERSION}. Upgrade ddr to read it")
    raw = record.get("members")
    if not isinstance(raw, list):
        raise refuse(bundle, f"{MANIFEST} has no 'members' list")
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise refuse(bundle, f"{MANIFEST} lists {item!r:.60}, not a member object")
        name, digest, size = item.get("name"), item.get("sha256"), item.get("bytes")
        if not isinstance(name, str) or member_kind(name) in (None, "manifest"):
            raise refuse(bundle, f"{MANIFEST} lists member {name!r:.80}, which a bundle may not hold")
        if name in seen:
            raise refuse(bundle, f"{MANIFEST} lists member {name!r} twice")
        seen.add(name)
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise refuse(bundle, f"{MANIFEST} gives member {name!r} the sha256 {digest!r:.80}, not 64 hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise refuse(bundle, f"{MANIFEST} gives member {name!r} the size {size!r:.40}, not a byte count")
        entries.append(ManifestEntry(name, digest, size))
    return Manifest(version, tuple(entries))


class _Hashing:
    """A sink that hashes and counts a member's bytes while passing them on to ``inner``."""

    def __init__(self, inner: Callable[[bytes], None] | None) -> None:
        self.digest = hashlib.sha256()
        self.inner = inner

    def __call__(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        if self.inner is not None:
            self.inner(chunk)


def checked_members(bundle: Path, sink_for: Callable[[Entry], Callable[[bytes], None] | None] | None = None,
                    *, on_member: Callable[[Entry], None] | None = None) -> Manifest:
    """Read ``bundle`` member by member, checking each against the manifest, and return the manifest.

    ``manifest.json`` must come first; every other member must be in the layout and in the
    manifest, with the size and sha256 it lists; a listed member the archive lacks is refused too.
    ``sink_for(entry)`` returns where a member's bytes go as they are read (``None``: only hashed),
    ``on_member(entry)`` is called once a member's hash has been checked. The sinks see bytes
    before their member's hash is known: a caller writing them somewhere must discard everything
    when this raises. Raises :class:`BundleError` naming the offending member."""
    bundle = Path(bundle)
    state: dict[str, Any] = {"manifest": None, "pending": None, "seen": set()}
    manifest_bytes = bytearray()

    def finish_pending() -> None:
        pending = state["pending"]
        if pending is None:
            return
        entry, hashing = pending
        state["pending"] = None
        expected = state["manifest"].by_name()[entry.name]
        found = hashing.digest.hexdigest()
        if found != expected.sha256:
            raise refuse(bundle, f"member {entry.name!r} does not match the manifest (its sha256 is {found[:16]}…, "
                                 f"the manifest says {expected.sha256[:16]}…)")
        if on_member is not None:
            on_member(entry)

    def visit(entry: Entry) -> Callable[[bytes], None] | None:
        finish_pending()  # the previous member is complete: check it before reading on
        if state["manifest"] is None:
            if entry.name != MANIFEST:
                raise refuse(bundle, f"its first member is {entry.name!r}, not {MANIFEST}")
            if entry.size > MAX_JSON_BYTES:
                raise refuse(bundle, f"member {MANIFEST!r} declares {entry.size:,} bytes (bound {MAX_JSON_BYTES:,})")
            state["manifest"] = "reading"
            return manifest_bytes.extend
        if state["manifest"] == "reading":
            state["manifest"] = parse_manifest(bundle, bytes(manifest_bytes))
        manifest: Manifest = state["manifest"]
        listed = manifest.by_name()
        kind = member_kind(entry.name)
        if kind is None or kind == "manifest" or entry.name not in listed:
            raise refuse(bundle, f"member {entry.name!r} is not listed in its manifest (an unexpected member)")
        if kind not in LARGE_KINDS and entry.size > MAX_JSON_BYTES:
            raise refuse(bundle, f"member {entry.name!r} declares {entry.size:,} bytes, above the {MAX_JSON_BYTES:,} "
                                 "a JSON member may hold")
        if entry.size != listed[entry.name].bytes:
            raise refuse(bundle, f"member {entry.name!r} holds {entry.size:,} bytes, the manifest says "
                                 f"{listed[entry.name].bytes:,}")
        state["seen"].add(entry.name)
        hashing = _Hashing(sink_for(entry) if sink_for is not None else None)
        state["pending"] = (entry, hashing)
        return hashing

    read_members(bundle, visit)
    finish_pending()
    if state["manifest"] is None:
        raise refuse(bundle, "it is empty (no manifest.json)")
    if state["manifest"] == "reading":  # the manifest was the only member
        state["manifest"] = parse_manifest(bundle, bytes(manifest_bytes))
    manifest = state["manifest"]
    missing = [m.name for m in manifest.members if m.name not in state["seen"]]
    if missing:
        raise refuse(bundle, f"member {missing[0]!r} is listed in its manifest but missing from the archive"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if INFO not in manifest.by_name():
        raise refuse(bundle, f"it has no {INFO}")
    return manifest


def read_manifest(path: str | Path, *, check: bool = True) -> dict[str, Any]:
    """What a bundle holds, for tools that list or link bundles (a static site): no torch, nothing
    extracted, nothing executed.

    Args:
        path: a bundle file written by ``ddr export``.
        check: also hash every member against the manifest (reads the whole file once); ``False``
            reads only ``manifest.json`` and ``bundle.json`` (still checking ``bundle.json``'s hash).

    Returns:
        ``bundle.json``'s content (``format``, ``format_version``, ``kind`` (``run`` or ``suite``),
        ``name``, ``exported_with``, ``runs`` (one summary per run: ``run_id``, ``label``,
        ``method``, ``dataset``, ``ipc``, ``seed``, ``protocol``, ``distilled_sha256``, ``scores``
        {name: {mean, std, n}} as fractions, ``folder``, ...), ``sets``, ``plugins``) plus
        ``file`` (the path), ``sha256`` (of the file's bytes, what ``sha256sum`` prints),
        ``manifest_sha256`` (of ``manifest.json``: the bundle's content identity), ``bytes`` (the
        file's size) and ``members`` (``[{name, sha256, bytes}]``, archive order).

    Raises:
        BundleError: the file is not a ddr bundle, is of a newer format, or (``check``) a member does
            not match the manifest; the message names the member.
    """
    bundle = Path(path)
    captured: dict[str, bytearray] = {MANIFEST: bytearray(), INFO: bytearray()}

    def sink_for(entry: Entry) -> Callable[[bytes], None] | None:
        return captured[INFO].extend if entry.name == INFO else None

    manifest = checked_members(bundle, sink_for) if check else _manifest_and_info(bundle, captured)
    info = parse_json(bundle, INFO, bytes(captured[INFO]))
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise refuse(bundle, f"member {INFO!r} does not describe a ddr bundle")
    digest = hashlib.sha256()
    with open(bundle, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return {**info, "file": str(bundle), "sha256": digest.hexdigest(), "bytes": bundle.stat().st_size,
            "manifest_sha256": manifest_sha256(bundle),
            "members": [{"name": m.name, "sha256": m.sha256, "bytes": m.bytes} for m in manifest.members]}


def _manifest_and_info(bundle: Path, captured: Mapping[str, bytearray]) -> Manifest:
    """Read only ``manifest.json`` and ``bundle.json`` (the latter checked against the manifest)."""
    from ddr.bundle.container import member_list, open_zip

    entries = {e.name: e for e in member_list(bundle)}
    if MANIFEST not in entries:
        raise refuse(bundle, "it has no manifest.json")
    with open_zip(bundle) as handle:
        for name in (MANIFEST, INFO):
            if name not in entries:
                raise refuse(bundle, f"it has no {name}")
            if entries[name].size > MAX_JSON_BYTES:
                raise refuse(bundle, f"member {name!r} declares {entries[name].size:,} bytes (bound {MAX_JSON_BYTES:,})")
            try:
                captured[name].extend(handle.read(name))
            except Exception as exc:  # noqa: BLE001 - CRC errors and damaged streams
                raise refuse(bundle, f"member {name!r} cannot be read ({type(exc).__name__}: {exc})") from None
    manifest = parse_manifest(bundle, bytes(captured[MANIFEST]))
    listed = manifest.by_name().get(INFO)
    if listed is None or hashlib.sha256(bytes(captured[INFO])).hexdigest() != listed.sha256:
        raise refuse(bundle, f"member {INFO!r} does not match the manifest")
    return manifest


def manifest_sha256(path: str | Path) -> str:
    """sha256 of a bundle's ``manifest.json`` bytes: its content identity (two bundles with the
    same members have the same one)."""
    from ddr.bundle.container import open_zip

    with open_zip(Path(path)) as handle:
        try:
            info = handle.getinfo(MANIFEST)
        except KeyError:
            raise refuse(Path(path), "it has no manifest.json") from None
        if info.file_size > MAX_JSON_BYTES:
            raise refuse(Path(path), f"member {MANIFEST!r} declares {info.file_size:,} bytes")
        try:
            return hashlib.sha256(handle.read(info)).hexdigest()
        except Exception as exc:  # noqa: BLE001 - CRC errors and damaged streams
            raise refuse(Path(path), f"member {MANIFEST!r} cannot be read ({type(exc).__name__}: {exc})") from None
