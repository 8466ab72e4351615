"""The result-bundle container and manifest (ddr.bundle.container, .manifest, .contents): a bundle is
written deterministically, and one that does not match its manifest, or holds a member that is
missing, unexpected, unsafe or oversized, is refused with a message naming the member, before any
of it is used. No training here: the bundles are synthetic."""

from __future__ import annotations

import hashlib
import json
import pickle
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ddr.bundle import FORMAT, FORMAT_VERSION, BundleError, read_manifest
from ddr.bundle.container import write_zip
from ddr.bundle.contents import open_bundle
from ddr.bundle.manifest import INFO, MANIFEST, build_manifest, member_kind

SHA = "ab" * 32
RUN = "r" + "0" * 15
SET_BYTES = b"\x00" * 4096


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def members(**change: bytes) -> list[tuple[str, bytes]]:
    """A small well-formed bundle's members (manifest excluded); ``change`` replaces some by name
    (slashes written as ``__``)."""
    folder = f"runs/{RUN}"
    out = [
        (INFO, _json({"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "run", "name": RUN,
                      "runs": [{"run_id": RUN, "folder": folder, "label": "random · digits · IPC 1 · seed 0",
                                "scores": {"ddrs": {"mean": 0.2, "std": 0.0, "n": 1}}}],
                      "sets": [SHA], "plugins": [], "exported_with": {"ddr": "test"}})),
        (f"{folder}/run_spec.json", _json({"dataset": "digits", "ipc": 1})),
        (f"{folder}/metrics.json", _json({"run_id": RUN, "distilled_sha256": SHA, "ddrs": {"mean": 0.2}})),
        (f"{folder}/env.json", _json({})),
        (f"{folder}/resolved.json", _json({"run_id": RUN})),
        (f"{folder}/jobs/real-0.json", _json({"result": {"role": "real", "index": 0, "accuracy": 0.9}})),
        (f"sets/{SHA}/images.safetensors", SET_BYTES),
        (f"sets/{SHA}/meta.json", _json({"format": "ddr-distilled", "sha256": SHA})),
    ]
    return [(name, change.get(name.replace("/", "__"), data)) for name, data in out]


def write_bundle(path: Path, content: list[tuple[str, bytes]] | None = None,
                 manifest_of: list[tuple[str, bytes]] | None = None) -> Path:
    """A bundle of ``content`` whose manifest describes ``manifest_of`` (default: the content)."""
    content = members() if content is None else content
    manifest = build_manifest(manifest_of if manifest_of is not None else content)
    return write_zip(path, [(MANIFEST, manifest.to_bytes()), *content])


def rewrite(source: Path, target: Path, edit: Callable[[list[tuple[zipfile.ZipInfo, bytes]]], None]) -> Path:
    """Copy a zip member by member, letting ``edit`` change the list (headers and bytes) first."""
    with zipfile.ZipFile(source) as handle:
        items = [(info, handle.read(info)) for info in handle.infolist()]
    edit(items)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info, data in items:
            out.writestr(info, data)
    return target


def test_a_bundle_is_byte_for_byte_deterministic_and_read_manifest_describes_it(tmp_path: Path) -> None:
    first, second = write_bundle(tmp_path / "a.zip"), write_bundle(tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as handle:
        infos = handle.infolist()
    assert [i.filename for i in infos][:2] == [MANIFEST, INFO]  # a fixed order, the manifest first
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    info = read_manifest(first)
    assert info["format"] == FORMAT and info["kind"] == "run" and info["runs"][0]["run_id"] == RUN
    assert info["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert [m["name"] for m in info["members"]] == [name for name, _ in members()]
    assert read_manifest(first, check=False)["manifest_sha256"] == info["manifest_sha256"]


def test_a_changed_byte_in_the_set_or_a_record_is_refused_naming_the_member(tmp_path: Path) -> None:
    good = write_bundle(tmp_path / "good.zip")
    image = f"sets/{SHA}/images.safetensors"
    flipped = bytearray(SET_BYTES)
    flipped[100] ^= 1
    bad_set = write_bundle(tmp_path / "set.zip", members(**{image.replace("/", "__"): bytes(flipped)}),
                           manifest_of=members())
    metrics = f"runs/{RUN}/metrics.json"
    edited = _json({"run_id": RUN, "distilled_sha256": SHA, "ddrs": {"mean": 0.9}})
    bad_record = write_bundle(tmp_path / "rec.zip", members(**{metrics.replace("/", "__"): edited}),
                              manifest_of=members())
    with open_bundle(good) as bundle:
        assert bundle.runs[0].run_id == RUN and set(bundle.sets) == {SHA}
    for path, name in ((bad_set, image), (bad_record, metrics)):
        for reader in (lambda p: open_bundle(p).__enter__(), read_manifest):
            with pytest.raises(BundleError, match=f"member '{name}' does not match the manifest"):
                reader(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_unexpected_missing_and_unsafe_members_are_refused(tmp_path: Path) -> None:
    good = write_bundle(tmp_path / "good.zip")

    def add(name: str, data: bytes = b"{}", mode: int = stat.S_IFREG | 0o644) -> Callable:
        def edit(items: list) -> None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            items.append((info, data))
        return edit

    cases = {
        "unexpected": (add(f"runs/{RUN}/evil.py", b"import os"), "is not listed in its manifest"),
        "traversal": (add("../evil.json"), "escapes the bundle"),
        "absolute": (add("/etc/evil.json"), "has an absolute path"),
        "backslash": (add("runs\\evil.json"), "contains a backslash"),
        "symlink": (add(f"runs/{RUN}/jobs/syn_hard-0.json", b"/etc/passwd", stat.S_IFLNK | 0o777),
                    "is a symbolic link"),
        "duplicate": (add(f"runs/{RUN}/env.json"), "appears twice"),
        "missing": (lambda items: items.pop(3), "is listed in its manifest but missing from the archive"),
        "manifest-not-first": (lambda items: items.insert(0, items.pop(1)), "its first member is 'bundle.json'"),
    }
    for label, (edit, message) in cases.items():
        path = rewrite(good, tmp_path / f"{label}.zip", edit)
        with pytest.raises(BundleError, match=message):
            read_manifest(path)
        with pytest.raises(BundleError, match=message), open_bundle(path):
            pass
    # a manifest that vouches for a member the layout has no place for is refused too
    odd = [*members(), ("runs/" + RUN + "/notes.txt", b"hello")]
    with pytest.raises(BundleError, match="internal error"):
        build_manifest(odd)
    assert member_kind("sets/" + SHA + "/images.safetensors") == "set" and member_kind("x/../y") is None


def test_a_run_folder_bundle_json_does_not_list_or_a_run_without_its_records_is_refused(tmp_path: Path) -> None:
    stray = [*members(), ("runs/other/metrics.json", b"{}")]
    with pytest.raises(BundleError, match="'runs/other/metrics.json' belongs to no run"), \
            open_bundle(write_bundle(tmp_path / "stray.zip", stray)):
        pass
    lacking = [m for m in members() if not m[0].endswith("resolved.json")]
    with pytest.raises(BundleError, match=f"'runs/{RUN}/resolved.json' is missing"), \
            open_bundle(write_bundle(tmp_path / "lacking.zip", lacking)):
        pass
    newer = json.loads(build_manifest(members()).to_bytes())
    newer["format_version"] = FORMAT_VERSION + 1
    path = write_zip(tmp_path / "newer.zip", [(MANIFEST, _json(newer)), *members()])
    with pytest.raises(BundleError, match="Upgrade ddr"):
        read_manifest(path)
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(BundleError, match="cannot read .* as a ddr bundle"):
        read_manifest(not_zip)


def test_oversized_members_and_compression_bombs_are_refused_before_they_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = write_bundle(tmp_path / "good.zip")
    monkeypatch.setenv("DDR_MAX_BUNDLE_BYTES", "1000")
    with pytest.raises(BundleError, match="above its bound of 1,000 bytes .*DDR_MAX_BUNDLE_BYTES"):
        read_manifest(good)
    monkeypatch.delenv("DDR_MAX_BUNDLE_BYTES")
    monkeypatch.setattr("ddr.bundle.manifest.MAX_JSON_BYTES", 100)
    with pytest.raises(BundleError, match="above the 100 a JSON member may hold|'manifest.json' declares"):
        read_manifest(good)
    monkeypatch.undo()
    bomb = SET_BYTES * 1024  # 4 MiB of zeros: deflates about 1000x
    path = write_bundle(tmp_path / "bomb.zip", members(**{f"sets__{SHA}__images.safetensors": bomb}))
    with pytest.raises(BundleError, match="a compression bomb"):
        read_manifest(path)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.marker, "executed"))


def test_loading_a_bundle_never_executes_what_it_holds(tmp_path: Path) -> None:
    """A pickle that would write a file when unpickled, stored as the set's tensors with a manifest
    that vouches for it: the bundle opens (its bytes match), but loading the set reads it as
    safetensors only, refuses it, and the pickle never runs."""
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Payload(marker))
    path = write_bundle(tmp_path / "pickle.zip", members(**{f"sets__{SHA}__images.safetensors": payload}))
    with open_bundle(path) as bundle:
        with pytest.raises(BundleError, match=f"member 'sets/{SHA}/images.safetensors' cannot be loaded"):
            bundle.load_set(SHA)
    assert not marker.exists()


@pytest.mark.parametrize(("name", "message"), [("missing.zip", "does not exist or is not a file"),
                                               (".", "does not exist or is not a file"),
                                               ("b" * 300, "File name too long; give a shorter path")])
def test_a_bundle_path_that_is_no_file_is_refused_in_words(name: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=message), open_bundle(tmp_path / name):
        pass
