"""Fuzzing archive extraction (``--download`` of a dataset, :mod:`ddr.store.archives`): zip and tar
(plain, gzip, bzip2, xz) archives whose members have any name (``..``, absolute, drive letters,
backslashes, NUL, unicode, empty, clashing), any type (links, devices, FIFOs), any declared size,
and archives whose bytes are damaged. Each property: the members land inside the target folder,
or a DataError with a message and nothing of the archive left behind; never a write anywhere
else, never a link or device file created."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.fuzzing import mutated_bytes, parse_outcome, scratch_dir, snapshot, weighted
from hypothesis import strategies as st

from ddr.errors import DataError
from ddr.store.archives import safe_extract, safe_gunzip

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # zip members of one name, on purpose

NAMES = ("data/a.txt", "data/sub/b.bin", "data/", "data/sub/", "data", "c.txt", "./data/d.txt", "data//e", "keep.txt",
         "data/keep.txt", "link/x", "link", "../evil.txt", "data/../../evil.txt", "/abs.txt", "/", "C:evil.txt",
         "C:\\evil.txt", "data\\evil.txt", "\x00evil", "ok\x00evil", "", ".", "./", "..", "é/ü.txt", "a" * 300,
         "data/" + "d/" * 60 + "deep.txt", "CON", "data/a.txt/inner")
"""Member names: ordinary, clashing (a file and a folder of one name, a name already in the target),
escaping (``..``, absolute, drive, backslash), NUL, empty, unicode, very long or deep."""
KINDS = ("file", "file", "file", "dir", "symlink", "hardlink", "fifo", "chr", "blk", "cont")


@st.composite
def members(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-5 member descriptions: name, kind, content, declared size (sometimes a lie), link target."""
    out = []
    for _ in range(draw(st.integers(1, 5))):
        data = draw(weighted((st.binary(max_size=64), 3), (st.sampled_from((b"x" * 5000, b"\0" * 3_000_000)), 1)))
        out.append({
            "name": draw(weighted((st.sampled_from(NAMES), 4), (st.text(max_size=12), 1))),
            "kind": draw(st.sampled_from(KINDS)),
            "data": data,
            "size": draw(weighted((st.just(len(data)), 4), (st.sampled_from((0, 1, 10**6, 2**33, 2**40)), 1))),
            "link": draw(st.sampled_from(("/etc/passwd", "../outside/secret.txt", "data/a.txt", ""))),
        })
    return out


def _tar_bytes(items: list[dict[str, Any]], fmt: int) -> bytes:
    """A tar written block by block, so headers may declare sizes their data does not have."""
    out = io.BytesIO()
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
             "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "cont": tarfile.CONTTYPE}
    for item in items:
        info = tarfile.TarInfo(item["name"])
        info.type = types[item["kind"]]
        info.linkname = item["link"] if item["kind"] in ("symlink", "hardlink") else ""
        info.size = item["size"] if item["kind"] in ("file", "cont") else 0
        try:
            out.write(info.tobuf(fmt, "utf-8", "surrogateescape"))
        except ValueError:  # a name or size the format cannot hold: the archive goes without it
            continue
        if item["kind"] in ("file", "cont"):
            data = item["data"][:info.size]
            out.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    out.write(b"\0" * tarfile.BLOCKSIZE * 2)
    return out.getvalue()


def _zip_bytes(items: list[dict[str, Any]], compression: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for item in items:
            name = item["name"] + ("/" if item["kind"] == "dir" and not item["name"].endswith("/") else "")
            info = zipfile.ZipInfo(name or "x")
            info.compress_type = compression
            mode = {"file": stat.S_IFREG, "cont": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK,
                    "hardlink": stat.S_IFREG, "fifo": stat.S_IFIFO, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK}
            info.external_attr = (mode[item["kind"]] | 0o644) << 16
            archive.writestr(info, item["link"].encode() if item["kind"] == "symlink" else item["data"])
    return out.getvalue()


COMPRESS = {"tar": lambda b: b, "tar.gz": gzip.compress, "tar.bz2": bz2.compress, "tar.xz": lzma.compress}
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@st.composite
def archives(draw: st.DrawFn) -> tuple[str, bytes]:
    """(suffix, bytes) of a zip or tar of generated members."""
    items = draw(members())
    suffix = draw(st.sampled_from(("zip", *COMPRESS)))
    if suffix == "zip":
        return suffix, _zip_bytes(items, draw(st.sampled_from(ZIP_METHODS)))
    fmt = draw(st.sampled_from((tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)))
    return suffix, COMPRESS[suffix](_tar_bytes(items, fmt))


def _setup(tmp: Path, suffix: str, content: bytes, existing: bool) -> tuple[Path, Path]:
    """The archive under ``tmp/downloads``, a secret beside the target, and (``existing``) a target
    that already holds a file, a folder and a link pointing outside it."""
    (tmp / "downloads").mkdir()
    archive = tmp / "downloads" / f"set.{suffix}"
    archive.write_bytes(content)
    (tmp / "outside").mkdir()
    (tmp / "outside" / "secret.txt").write_text("secret")
    target = tmp / "data" / "target"
    if existing:
        (target / "data").mkdir(parents=True)
        (target / "keep.txt").write_text("keep")
        (target / "data" / "keep.txt").write_text("keep")
        (target / "link").symlink_to(tmp / "outside")
    return archive, target


def _extract(tmp: Path, archive: Path, target: Path, **bounds: Any) -> None:
    """The property around one extraction."""
    outside = _outside(tmp)
    before = snapshot(target) if target.exists() else {}
    placed, error = parse_outcome(lambda: safe_extract(archive, target, **bounds))
    if error is not None:
        assert isinstance(error, DataError)
    after = snapshot(target)
    for rel, entry in after.items():  # what the extraction created is a plain file or folder inside the target
        if before.get(rel) != entry:
            assert entry[0] in ("file", "dir"), f"{rel}: {entry}"
            assert (target / rel).resolve().is_relative_to(target.resolve()), rel
    if error is not None:
        assert after == before, "a refused archive left files in the target"
    else:
        assert placed is not None and all(p.parent == target for p in placed)
    assert _outside(tmp) == outside


def _outside(tmp: Path) -> dict[str, tuple[Any, ...]]:
    """Everything under ``tmp`` but the target (and the folder holding it, created with it)."""
    return {k: v for k, v in snapshot(tmp).items() if k != "data" and not k.startswith("data/target")}


def test_archive_members(run_property: Callable[..., None]) -> None:
    """Zip and tar archives of generated members (names, types, declared sizes, compression), into
    an empty target or one that already holds files and a link leading outside it."""

    def prop(archive_bytes: tuple[str, bytes], existing: bool, small_bounds: bool) -> None:
        suffix, content = archive_bytes
        with scratch_dir() as tmp:
            archive, target = _setup(tmp, suffix, content, existing)
            bounds = {"max_bytes": 2**20, "max_members": 3, "max_ratio": 20.0} if small_bounds else {}
            _extract(tmp, archive, target, **bounds)

    run_property(prop, archives(), st.booleans(), st.booleans())


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid archive of ordinary members, then its bytes edited (or random bytes)."""
    items = [{"name": name, "kind": "file", "data": data, "size": len(data), "link": ""}
             for name, data in (("data/a.txt", b"hello " * 50), ("data/sub/b.bin", bytes(range(256)) * 4))]
    suffix = draw(st.sampled_from(("zip", *COMPRESS, "gz")))
    if suffix == "zip":
        valid = _zip_bytes(items, draw(st.sampled_from(ZIP_METHODS)))
    elif suffix == "gz":
        valid = gzip.compress(items[1]["data"])
    else:
        valid = COMPRESS[suffix](_tar_bytes(items, draw(st.sampled_from((tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT)))))
    return suffix, draw(weighted((mutated_bytes(valid), 6), (st.just(valid), 1), (st.binary(max_size=600), 1)))


def test_archive_bytes(run_property: Callable[..., None]) -> None:
    """Damaged zip, tar, tar.gz/bz2/xz and .gz files (bytes flipped, cut, inserted, truncated)."""

    def prop(archive_bytes: tuple[str, bytes]) -> None:
        suffix, content = archive_bytes
        with scratch_dir() as tmp:
            archive, target = _setup(tmp, suffix, content, existing=False)
            if suffix != "gz":
                _extract(tmp, archive, target)
                return
            target.mkdir(parents=True)
            outside = snapshot(tmp / "outside")
            out, error = parse_outcome(lambda: safe_gunzip(archive, target / "b.bin", max_bytes=2**20))
            assert error is None or isinstance(error, DataError)
            assert [p.name for p in target.iterdir()] == ([] if out is None else ["b.bin"])
            assert snapshot(tmp / "outside") == outside

    run_property(prop, damaged())
