"""Safe extraction of downloaded dataset archives (zip and tar, compressed or not).

:func:`safe_extract` checks every member's header before writing a byte, and refuses the whole
archive with a one-line :class:`~ddr.errors.DataError` when a member

* would land outside the target directory (an absolute path, a ``..`` component, a drive letter
  or a backslash, a NUL byte),
* is a symbolic or hard link, a device, a FIFO or anything else that is not a regular file or a
  directory,
* or when the archive is absurdly large: the declared uncompressed total above ``max_bytes``,
  more than ``max_members`` members, or an uncompressed/compressed ratio above ``max_ratio``
  (a compression bomb).

Members are written by ddr itself (never by ``extractall``), copied in chunks with the byte count
enforced against the declared size, without owners, permission bits or timestamps from the
archive. Everything is extracted into a temporary folder inside ``target`` and moved into place
only when the whole archive succeeded, so a refused or interrupted extraction leaves no partial
dataset behind.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ddr.errors import DataError

MAX_BYTES = 64 * 2**30
"""Default bound on an archive's total uncompressed size (bytes): 64 GiB."""
MAX_RATIO = 200.0
"""Default bound on uncompressed/compressed size; real image archives are close to 1."""
MAX_MEMBERS = 2_000_000
"""Default bound on the number of members."""
RATIO_FLOOR = 2**20
"""Archives (and zip members) smaller than this many uncompressed bytes skip the ratio check."""
CHUNK = 2**20


@dataclass(frozen=True)
class Member:
    """One archive member as its header describes it: ``name`` (POSIX path inside the archive),
    ``kind`` (``file`` or ``dir``), ``size`` (declared uncompressed bytes) and ``packed`` (its
    compressed bytes where the format says, else ``None``)."""

    name: str
    kind: str
    size: int
    packed: int | None = None


def _refuse(archive: Path, reason: str) -> DataError:
    return DataError(f"refusing to extract {archive}: {reason}; the archive is corrupt or malicious: delete it "
                     "and download it again from the official source")


def unsafe_member(name: str) -> str | None:
    """Why an archive member called ``name`` could write outside its target folder or fail on some
    file system (an empty name, a NUL byte, a backslash, an absolute path, ``..``, a component over
    255 bytes), or ``None`` when its name is safe. Shared by every reader of archives (datasets,
    result bundles)."""
    if not name or "\x00" in name:
        return f"member {name!r} has an empty name or a NUL byte"
    if "\\" in name:
        return f"member {name!r} contains a backslash (a Windows path)"
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return f"member {name!r} has an absolute path"
    if ".." in path.parts:
        return f"member {name!r} escapes the target directory ('..')"
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in path.parts):
        return f"member {name[:80]!r}... has a file name longer than 255 bytes"
    return None


def _check_name(archive: Path, name: str) -> PurePosixPath:
    """The member path relative to the target, or a DataError when it could escape it."""
    reason = unsafe_member(name)
    if reason is not None:
        raise _refuse(archive, reason)
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts:
        raise _refuse(archive, f"member {name!r} names no file")
    return PurePosixPath(*parts)


def _zip_members(archive: Path, handle: zipfile.ZipFile) -> Iterator[tuple[Member, zipfile.ZipInfo]]:
    for info in handle.infolist():
        _check_name(archive, info.filename)  # before is_dir(), which fails on an empty name
        kind_bits = stat.S_IFMT(info.external_attr >> 16)  # Unix file type, when the zip records one
        kind = "dir" if info.is_dir() else "file"
        if kind_bits and kind_bits not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind_bits == stat.S_IFLNK else "a device, FIFO or other special file"
            raise _refuse(archive, f"member {info.filename!r} is {what}")
        yield Member(info.filename, kind, info.file_size, info.compress_size), info


def _tar_members(archive: Path, handle: tarfile.TarFile) -> Iterator[tuple[Member, tarfile.TarInfo]]:
    headers = iter(handle)
    while True:  # lazily: a member is checked as soon as its header is read
        try:
            info = next(headers)
        except StopIteration:
            return
        except Exception as exc:  # a damaged stream: tarfile, zlib, bz2 (OSError) and lzma errors share no base class
            raise _unreadable(archive, "tar", exc) from None
        if info.issym() or info.islnk():
            raise _refuse(archive, f"member {info.name!r} is a {'symbolic' if info.issym() else 'hard'} link "
                                   f"(to {info.linkname!r})")
        if info.isdir():
            yield Member(info.name, "dir", 0), info
        elif info.isfile():
            yield Member(info.name, "file", info.size), info
        else:
            raise _refuse(archive, f"member {info.name!r} is a device, FIFO or other special file")


class _Budget:
    """The size bounds, checked member by member as the headers are read (a bomb is refused at
    its header, before anything is decompressed or written)."""

    def __init__(self, archive: Path, max_bytes: int, max_ratio: float, max_members: int) -> None:
        self.archive, self.max_bytes, self.max_ratio, self.max_members = archive, max_bytes, max_ratio, max_members
        self.packed = max(archive.stat().st_size, 1)
        self.total = 0
        self.count = 0

    def add(self, member: Member) -> None:
        archive = self.archive
        _check_name(archive, member.name)
        self.count += 1
        if self.count > self.max_members:
            raise _refuse(archive, f"it has more than {self.max_members} members")
        if member.size < 0:
            raise _refuse(archive, f"member {member.name!r} declares a negative size")
        self.total += member.size
        if self.total > self.max_bytes:
            raise _refuse(archive, f"its members declare more than {_size(self.max_bytes)} uncompressed (the bound "
                                   f"for this dataset; member {member.name!r} alone declares {_size(member.size)})")
        if member.packed is not None and member.size > RATIO_FLOOR and \
                member.size > self.max_ratio * max(member.packed, 1):
            raise _refuse(archive, f"member {member.name!r} expands {member.size / max(member.packed, 1):.0f}x "
                                   f"(bound {self.max_ratio:g}x): a compression bomb")
        if self.total > RATIO_FLOOR and self.total > self.max_ratio * self.packed:
            raise _refuse(archive, f"it expands more than {self.total / self.packed:.0f}x, from {_size(self.packed)} "
                                   f"to {_size(self.total)} or more (bound {self.max_ratio:g}x): a compression bomb")


def check_members(archive: Path, members: list[Member], *, max_bytes: int = MAX_BYTES,
                  max_ratio: float = MAX_RATIO, max_members: int = MAX_MEMBERS) -> int:
    """Check the members' names and sizes; returns the declared total bytes (DataError on a bad one)."""
    budget = _Budget(Path(archive), max_bytes, max_ratio, max_members)
    for member in members:
        budget.add(member)
    return budget.total


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _unreadable(archive: Path, kind: str, exc: BaseException) -> DataError:
    return DataError(f"cannot read {archive} as a {kind} archive: {type(exc).__name__}: {exc}; the file is damaged: "
                     "delete it and download it again")


def stream_member(name: str, source: IO[bytes], declared: int, sink: Callable[[bytes], object]) -> str | None:
    """Feed an archive member's bytes from ``source`` to ``sink`` in chunks of :data:`CHUNK`; why
    the member is damaged (it cannot be decompressed, or holds more or fewer bytes than the
    ``declared`` size of its header: more is refused before it is passed on), or ``None``. Shared by
    every reader of archives (datasets, result bundles)."""
    count = 0
    while True:
        try:
            chunk = source.read(CHUNK)
        except Exception as exc:  # noqa: BLE001 - damaged data: BadZipFile (CRC), zlib/lzma errors, bz2's OSError, EOFError
            return f"member {name!r} cannot be decompressed ({type(exc).__name__}: {exc})"
        if not chunk:
            break
        count += len(chunk)
        if count > declared:
            return f"member {name!r} holds more bytes than its header declares ({declared:,})"
        sink(chunk)
    if count != declared:
        return f"member {name!r} is truncated ({count:,} of {declared:,} bytes)"
    return None


def _copy(archive: Path, name: str, source: IO[bytes], dest: Path, declared: int) -> None:
    """Copy a member's bytes, refusing more than it declared (a lying header)."""
    with open(dest, "wb") as out:
        reason = stream_member(name, source, declared, out.write)
    if reason is not None:
        raise _refuse(archive, reason)


def safe_extract(archive: Path, target: Path, *, max_bytes: int = MAX_BYTES, max_ratio: float = MAX_RATIO,
                 max_members: int = MAX_MEMBERS) -> list[Path]:
    """Extract the zip or tar ``archive`` into ``target`` after checking every member.

    Args:
        archive: a ``.zip`` or a tar (plain, gzip, bzip2 or xz compressed).
        target: the directory the members land in (created when missing). A top-level entry that
            already exists is merged with (its files replaced by) the archive's.
        max_bytes: bound on the declared total uncompressed size, in bytes.
        max_ratio: bound on uncompressed/compressed bytes (whole archive, and each zip member).
        max_members: bound on the number of members.

    Returns:
        The top-level paths created or updated under ``target``.

    Raises:
        DataError: the archive is unreadable, or a member or its size is refused (nothing of the
            archive is left in ``target`` then).
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}.extract-", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging, max_bytes, max_ratio, max_members)
        elif _is_tarfile(archive):
            _extract_tar(archive, staging, max_bytes, max_ratio, max_members)
        else:
            raise DataError(f"{archive} is neither a zip nor a tar archive; delete it and download it again")
        placed = []
        for entry in sorted(staging.iterdir()):
            _merge(entry, target / entry.name)
            placed.append(target / entry.name)
        return placed
    except OSError as exc:
        raise DataError(f"cannot extract {archive} into {target}: {exc.strerror or exc}; free space or make "
                        f"{target} writable, then retry") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_tarfile(archive: Path) -> bool:
    """``tarfile.is_tarfile``, whose read of the first header raises on a damaged compressed stream."""
    try:
        return tarfile.is_tarfile(archive)
    except Exception as exc:  # noqa: BLE001 - EOFError, zlib.error, lzma.LZMAError, bz2's OSError
        raise _unreadable(archive, "tar", exc) from None


def _write_members(archive: Path, staging: Path, members: Any, open_member: Any, budget: "_Budget") -> None:
    """Check every member against ``budget`` first, then write them under ``staging``;
    ``open_member(handle_info)`` opens one file member's data."""
    pairs = []
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    for member, info in members:
        budget.add(member)
        pairs.append((member, info))
        path = _check_name(archive, member.name)
        (folders if member.kind == "dir" else files).add(path)
        folders.update(list(path.parents)[:-1])  # every folder above it ('.' left out)
    clashes = sorted(str(path) for path in files & folders)
    if clashes:
        raise _refuse(archive, f"member {clashes[0]!r} is both a file and a folder")
    for member, info in pairs:
        dest = staging / _check_name(archive, member.name)
        if member.kind == "dir":
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            source = open_member(member, info)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bad local header, an encrypted or unknown compression method
            raise _refuse(archive, f"member {member.name!r} cannot be read ({type(exc).__name__}: {exc})") from None
        with source:
            _copy(archive, member.name, source, dest, member.size)


def _extract_zip(archive: Path, staging: Path, max_bytes: int, max_ratio: float, max_members: int) -> None:
    try:
        with zipfile.ZipFile(archive) as handle:
            _write_members(archive, staging, _zip_members(archive, handle), lambda member, info: handle.open(info),
                           _Budget(archive, max_bytes, max_ratio, max_members))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DataError(f"cannot read {archive} as a zip archive: {exc}; delete it and download it again") from None


def _extract_tar(archive: Path, staging: Path, max_bytes: int, max_ratio: float, max_members: int) -> None:
    def open_member(member: Any, tar_info: tarfile.TarInfo) -> Any:
        source = handle.extractfile(tar_info)
        if source is None:  # pragma: no cover - isfile() members always have data
            raise _refuse(archive, f"member {member.name!r} has no data")
        return source

    try:
        with tarfile.open(archive, "r:*") as handle:
            _write_members(archive, staging, _tar_members(archive, handle), open_member,
                           _Budget(archive, max_bytes, max_ratio, max_members))
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, ValueError) as exc:
        raise DataError(f"cannot read {archive} as a tar archive: {exc}; delete it and download it again") from None
    except Exception as exc:  # bz2/lzma decompression errors have no common base class
        if isinstance(exc, (DataError, OSError)):
            raise
        raise DataError(f"cannot read {archive} as a tar archive: {exc}; delete it and download it again") from None


def _merge(source: Path, dest: Path) -> None:
    """Move ``source`` onto ``dest``: a file replaces a file or folder, a folder merges into a folder
    and replaces a file or link."""
    if source.is_dir() and dest.is_dir() and not dest.is_symlink():
        for child in source.iterdir():
            _merge(child, dest / child.name)
        return
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif source.is_dir() and (dest.exists() or dest.is_symlink()):
        dest.unlink()  # a file or link where the archive has a folder: the link itself goes, never its target
    os.replace(source, dest)


def safe_gunzip(packed: Path, dest: Path, *, max_bytes: int = MAX_BYTES, max_ratio: float = MAX_RATIO) -> Path:
    """Decompress the gzip file ``packed`` to ``dest`` (through a temporary sibling), refusing more
    than ``max_bytes`` or a ratio above ``max_ratio`` (DataError)."""
    packed, dest = Path(packed), Path(dest)
    limit = min(max_bytes, max(int(max_ratio * max(packed.stat().st_size, 1)), RATIO_FLOOR))
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    written = 0
    try:
        with gzip.open(packed, "rb") as source, open(partial, "wb") as out:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > limit:
                    raise _refuse(packed, f"it decompresses to more than {_size(limit)} (a compression bomb)")
                out.write(chunk)
        os.replace(partial, dest)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot decompress {packed}: {exc}; delete it and download again") from None
    finally:
        partial.unlink(missing_ok=True)
    return dest
