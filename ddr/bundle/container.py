"""The container of a result bundle: a zip archive written deterministically and read defensively.

Writing (:func:`write_zip`): members in the order given, each with the same fixed timestamp
(1980-01-01 00:00:00, the earliest a zip can hold), permission bits ``0644``, no extra fields and
deflate at a fixed level, so the same contents always give the same bytes (and the same sha256).
The archive is written to a temporary sibling and renamed into place.

Reading (:func:`read_members`): the rules of :mod:`ddr.store.archives`' safe extraction, for a
format ddr writes itself: every member name is checked before a byte is read (no absolute path,
no ``..``, no backslash, no NUL, no empty part), a member that is a link, a device or a folder, a
duplicate name, more members than :data:`MAX_MEMBERS`, a member declared larger than its bound or
the whole above :data:`max_bundle_bytes` are refused, as is a member that expands more than
:data:`MAX_RATIO` times (a compression bomb); every member's bytes are counted against its
declared size while they are read (a lying header is refused). Nothing is ever executed or
unpickled here: members are bytes, and the caller hashes them against the manifest
(:mod:`ddr.bundle.manifest`) before any is parsed. Never imports torch.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ddr.errors import ArtifactError
from ddr.store.archives import stream_member, unsafe_member
from ddr.store.paths import path_kind

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
"""The timestamp of every member (zip's earliest), so a bundle's bytes do not depend on when it was written."""
COMPRESS_LEVEL = 6
MAX_MEMBERS = 100_000
"""Bound on the number of members (a bundle holds a few files per run and per distilled set)."""
MAX_JSON_BYTES = 64 * 2**20
"""Bound on one JSON member, in bytes (a run record is a few KiB)."""
DEFAULT_MAX_BUNDLE_BYTES = 64 * 2**30
"""Default bound on a bundle's total uncompressed size, in bytes (64 GiB); ``DDR_MAX_BUNDLE_BYTES`` raises it."""
MAX_RATIO = 200.0
"""Bound on a member's uncompressed/compressed size above :data:`RATIO_FLOOR` bytes."""
RATIO_FLOOR = 2**20
BOUND_ENV = "DDR_MAX_BUNDLE_BYTES"


class BundleError(ArtifactError):
    """A bundle that cannot be read safely or does not match its manifest (exit status 2)."""


def max_bundle_bytes() -> int:
    """The bound on a bundle's uncompressed bytes: ``$DDR_MAX_BUNDLE_BYTES`` or 64 GiB."""
    raw = os.environ.get(BOUND_ENV)
    if not raw:
        return DEFAULT_MAX_BUNDLE_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise BundleError(f"{BOUND_ENV}={raw!r} is not a whole number of bytes") from None
    if value < 1:
        raise BundleError(f"{BOUND_ENV}={raw!r} must be a positive number of bytes")
    return value


def refuse(bundle: Path, reason: str) -> BundleError:
    """The one-line refusal of ``bundle`` for ``reason`` (which names the member)."""
    return BundleError(f"refusing bundle {bundle}: {reason}; nothing of it was used. The bundle was damaged or "
                       "modified after it was exported: ask its author for the original file (`ddr export` "
                       "writes one)")


def check_name(bundle: Path, name: str) -> str:
    """``name`` when it is a safe relative POSIX member path, else a :class:`BundleError`."""
    reason = unsafe_member(name)  # the rules every archive reader shares
    if reason is not None:
        raise refuse(bundle, reason.replace("the target directory", "the bundle"))
    if any(part in ("", ".") for part in name.split("/")):
        raise refuse(bundle, f"member {name!r} has an empty or '.' path component")
    return name


# -- writing --------------------------------------------------------------------------------------

def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix: the permission bits below are read as such
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def write_zip(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    """Write ``members`` (name, bytes), in that order, as a deterministic zip at ``path``.

    The file is written to a temporary sibling and renamed into place: ``path`` is complete or
    untouched. Raises :class:`~ddr.errors.ArtifactError` (naming the path and the fix) when it
    cannot be written."""
    from ddr.store.writable import write_output

    def write(tmp: Path) -> None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)  # a file to publish, not a private temporary
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as handle:
            for name, data in members:
                handle.writestr(_info(name), data, compress_type=zipfile.ZIP_DEFLATED,
                                compresslevel=COMPRESS_LEVEL)

    return write_output(Path(path), write, what="the bundle", choose="choose a writable -o FILE")


# -- reading --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One member as the archive's central directory declares it: ``name``, ``size`` (bytes
    uncompressed) and ``packed`` (bytes compressed)."""

    name: str
    size: int
    packed: int


def _entries(bundle: Path, handle: zipfile.ZipFile) -> list[tuple[Entry, zipfile.ZipInfo]]:
    infos = handle.infolist()
    if len(infos) > MAX_MEMBERS:
        raise refuse(bundle, f"it has {len(infos):,} members, more than the {MAX_MEMBERS:,} a bundle may hold")
    bound = max_bundle_bytes()
    seen: set[str] = set()
    total = 0
    out = []
    for info in infos:
        name = check_name(bundle, info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or (kind and kind != stat.S_IFREG):
            what = ("a folder" if info.is_dir() or kind == stat.S_IFDIR else
                    "a symbolic link" if kind == stat.S_IFLNK else "a device, FIFO or other special file")
            raise refuse(bundle, f"member {name!r} is {what}, not a regular file")
        if name in seen:
            raise refuse(bundle, f"member {name!r} appears twice")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise refuse(bundle, f"member {name!r} is encrypted")
        total += info.file_size
        if info.file_size > bound or total > bound:
            raise refuse(bundle, f"member {name!r} declares {info.file_size:,} bytes, which takes the bundle above "
                                 f"its bound of {bound:,} bytes (set {BOUND_ENV} to raise it)")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise refuse(bundle, f"member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                                 f"(bound {MAX_RATIO:g}x): a compression bomb")
        out.append((Entry(name, int(info.file_size), int(info.compress_size)), info))
    return out


def _read(bundle: Path, name: str, source: IO[bytes], declared: int, sink: Callable[[bytes], None]) -> None:
    """Feed ``source``'s bytes to ``sink`` in chunks, refusing more or fewer than ``declared``."""
    reason = stream_member(name, source, declared, sink)
    if reason is not None:
        raise refuse(bundle, reason)


def open_zip(bundle: Path) -> zipfile.ZipFile:
    """``bundle`` opened as a zip, or a :class:`BundleError` saying it is none (or is missing)."""
    bundle = Path(bundle)
    if path_kind(bundle, what="bundle", error=BundleError) != "file":
        raise BundleError(f"bundle {bundle} does not exist or is not a file; give the file `ddr export` wrote")
    try:
        return zipfile.ZipFile(bundle)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, NotImplementedError (a zip version), OSError, ...
        raise BundleError(f"cannot read {bundle} as a ddr bundle (a zip archive): {exc}; give the file "
                          "`ddr export` wrote, complete (re-download or re-copy it)") from None


def read_members(bundle: Path, visit: Callable[[Entry], Callable[[bytes], None] | None]) -> list[Entry]:
    """Check every member's header (names, kinds, sizes, ratios; :class:`BundleError` on the first
    bad one, before any byte is read), then read them in archive order: ``visit(entry)`` returns a
    sink for that member's bytes (or ``None`` to skip it). Returns the members in archive order."""
    bundle = Path(bundle)
    with open_zip(bundle) as handle:
        entries = _entries(bundle, handle)
        for entry, info in entries:
            sink = visit(entry)
            if sink is None:
                continue
            try:
                source = handle.open(info)
            except Exception as exc:  # noqa: BLE001 - a bad local header, an unknown compression method
                raise refuse(bundle, f"member {entry.name!r} cannot be read ({type(exc).__name__}: {exc})") from None
            with source:
                _read(bundle, entry.name, source, entry.size, sink)
    return [entry for entry, _ in entries]


def member_list(bundle: Path) -> Iterator[Entry]:
    """The members of ``bundle`` as its headers declare them (checked as :func:`read_members` checks them)."""
    with open_zip(Path(bundle)) as handle:
        yield from (entry for entry, _ in _entries(Path(bundle), handle))
