"""ddr's own archive extraction (``ddr.store.archives``): a good zip and tar land where they
should; members that escape the target, links, devices, absurd sizes and compression bombs are
refused with one line, and nothing of a refused archive is left behind."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from ddr.errors import DataError
from ddr.store.archives import safe_extract, safe_gunzip


def _zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as t:
        for member in members:
            if isinstance(member, tuple):
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(member)
    return path


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _left(target: Path) -> list[str]:
    return sorted(str(p.relative_to(target)) for p in target.rglob("*"))


def test_a_good_zip_and_tar_extract_completely(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "good.zip", {"set/wnids.txt": b"n01\nn02\n", "set/train/n01/a.JPEG": b"jpeg",
                                           "set/empty/": b""})
    placed = safe_extract(archive, tmp_path / "data")
    assert placed == [tmp_path / "data" / "set"]
    assert (tmp_path / "data" / "set" / "wnids.txt").read_bytes() == b"n01\nn02\n"
    assert (tmp_path / "data" / "set" / "train" / "n01" / "a.JPEG").read_bytes() == b"jpeg"
    assert (tmp_path / "data" / "set" / "empty").is_dir()
    tar = _tar(tmp_path / "good.tar.gz", [("./batches/data_batch_1", b"x" * 1000), ("batches/meta", b"m")])
    safe_extract(tar, tmp_path / "data")
    assert (tmp_path / "data" / "batches" / "data_batch_1").read_bytes() == b"x" * 1000
    assert _left(tmp_path / "data") == ["batches", "batches/data_batch_1", "batches/meta", "set", "set/empty",
                                        "set/train", "set/train/n01", "set/train/n01/a.JPEG", "set/wnids.txt"]


def test_an_archive_merges_into_an_existing_folder(tmp_path: Path) -> None:
    target = tmp_path / "data"
    (target / "set").mkdir(parents=True)
    (target / "set" / "mine.txt").write_text("kept")
    (target / "set" / "wnids.txt").write_text("old")
    safe_extract(_zip(tmp_path / "a.zip", {"set/wnids.txt": b"new"}), target)
    assert (target / "set" / "mine.txt").read_text() == "kept"
    assert (target / "set" / "wnids.txt").read_text() == "new"


@pytest.mark.parametrize("name, reason", [
    ("../evil.txt", "escapes the target directory ('..')"),
    ("set/../../evil.txt", "escapes the target directory ('..')"),
    ("/etc/evil.txt", "has an absolute path"),
    ("C:/evil.txt", "has an absolute path"),
    ("..\\evil.txt", "contains a backslash"),
])
def test_zip_members_that_escape_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {"set/ok.txt": b"ok", name: b"evil"})
    target = tmp_path / "data"
    with pytest.raises(DataError) as info:
        safe_extract(archive, target)
    message = str(info.value)
    assert message.startswith(f"refusing to extract {archive}: member {name!r} {reason}") and "\n" not in message
    assert "delete it and download it again" in message
    assert _left(target) == [] and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("member, reason", [
    (_special("set/link", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link (to '/etc/passwd')"),
    (_special("set/hard", tarfile.LNKTYPE, "set/ok.txt"), "is a hard link (to 'set/ok.txt')"),
    (_special("set/null", tarfile.CHRTYPE), "is a device, FIFO or other special file"),
    (_special("set/disk", tarfile.BLKTYPE), "is a device, FIFO or other special file"),
    (_special("set/pipe", tarfile.FIFOTYPE), "is a device, FIFO or other special file"),
    (("../outside.txt", b"x"), "escapes the target directory"),
    (("/abs.txt", b"x"), "has an absolute path"),
])
def test_tar_links_devices_and_escapes_are_refused(tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes],
                                                   reason: str) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", [("set/ok.txt", b"ok"), member])
    target = tmp_path / "data"
    with pytest.raises(DataError, match="refusing to extract") as info:
        safe_extract(archive, target)
    assert reason in str(info.value)
    assert _left(target) == []  # not even the good member before it


def test_a_zip_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("set/link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="member 'set/link' is a symbolic link"):
        safe_extract(archive, tmp_path / "data")


def test_sizes_over_the_bound_are_refused_at_the_header(tmp_path: Path) -> None:
    big = tarfile.TarInfo("set/huge")
    big.size = 2**40
    archive = tmp_path / "huge.tar"
    archive.write_bytes(big.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)  # the header lies; no data follows
    with pytest.raises(DataError, match=r"its members declare more than 1.0 KiB uncompressed .*declares 1.0 TiB"):
        safe_extract(archive, tmp_path / "data", max_bytes=1024)
    many = _zip(tmp_path / "many.zip", {f"set/{i}": b"" for i in range(5)})
    with pytest.raises(DataError, match="more than 3 members"):
        safe_extract(many, tmp_path / "data", max_members=3)
    assert _left(tmp_path / "data") == []


def test_compression_bombs_are_refused(tmp_path: Path) -> None:
    zeros = b"\0" * (4 * 2**20)
    zipped = _zip(tmp_path / "bomb.zip", {"set/zeros": zeros}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(DataError, match=r"member 'set/zeros' expands \d+x \(bound 200x\): a compression bomb"):
        safe_extract(zipped, tmp_path / "data")
    tarred = _tar(tmp_path / "bomb.tar.gz", [("set/zeros", zeros)])
    with pytest.raises(DataError, match=r"it expands more than \d+x.*a compression bomb"):
        safe_extract(tarred, tmp_path / "data")
    assert safe_extract(tarred, tmp_path / "data", max_ratio=1e6)  # a generous bound lets it through
    gz = tmp_path / "zeros.gz"
    gz.write_bytes(gzip.compress(zeros))
    with pytest.raises(DataError, match="decompresses to more than"):
        safe_gunzip(gz, tmp_path / "zeros")
    assert not (tmp_path / "zeros").exists() and not list(tmp_path.glob(".zeros.partial-*"))


def test_unreadable_archives_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(os.urandom(512))
    with pytest.raises(DataError, match="is neither a zip nor a tar archive"):
        safe_extract(junk, tmp_path / "data")
    truncated = tmp_path / "cut.tar.gz"
    full = _tar(tmp_path / "full.tar.gz", [("set/a", os.urandom(50_000))]).read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match="cannot read .* as a tar archive") as info:
        safe_extract(truncated, tmp_path / "data")
    assert "\n" not in str(info.value)
    assert _left(tmp_path / "data") == []


def test_tinyimagenet_download_extracts_with_safe_extract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    from ddr.builtins.datasets import tinyimagenet

    source = _zip(tmp_path / "source.zip", {"tiny-imagenet-200/wnids.txt": b"n01\n",
                                            "tiny-imagenet-200/train/n01/images/a.JPEG": b"j",
                                            "tiny-imagenet-200/val/images/b.JPEG": b"j"})
    calls = []

    def download_url(url: str, root: str, filename: str | None = None, md5: str | None = None) -> None:
        calls.append((url, filename, md5))
        (Path(root) / str(filename)).write_bytes(source.read_bytes())

    monkeypatch.setattr(tv_utils, "download_url", download_url)
    root = tmp_path / "data"
    root.mkdir()
    assert tinyimagenet._locate(root, download=True) == root / "tiny-imagenet-200"
    assert calls == [(tinyimagenet.URL, "tiny-imagenet-200.zip", tinyimagenet.MD5)]  # torchvision checks the md5
    assert sorted(p.name for p in root.iterdir()) == ["tiny-imagenet-200", "tiny-imagenet-200.zip"]
