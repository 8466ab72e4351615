"""Fuzzing result bundles (``ddr verify``/``ddr import``, :mod:`ddr.bundle`): a well-formed bundle
whose bytes are damaged, or whose members are renamed, dropped, added, duplicated or rewritten
(with the manifest left alone or re-sealed over the edit). Each property: ``read_manifest`` (checking
every member or not) and ``open_bundle`` return, or raise a BundleError with a message; nothing else, and nothing is
written outside the folder the bundle is opened into (which is empty again afterwards)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.fuzzing import mutated_bytes, parse_outcome, scratch_dir, snapshot, weighted
from hypothesis import strategies as st

from ddr.bundle import BundleError, read_manifest
from ddr.bundle.contents import open_bundle
from ddr.bundle.manifest import MANIFEST, build_manifest

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")

SHA = "cd" * 32
RUN = "run0000000000"
TEACHER_BYTES = b"a teacher's state dict"
TEACHER = f"teachers/{hashlib.sha256(TEACHER_BYTES).hexdigest()}.pt"
NAMES = ("bundle.json", f"runs/{RUN}/metrics.json", f"runs/{RUN}/env.json", f"runs/{RUN}/jobs/real-0.json",
         f"sets/{SHA}/images.safetensors", f"sets/{SHA}/meta.json", f"runs/{RUN}/evil.py", "../evil.json",
         "/abs.json", "runs\\x.json", "", "sets/zz/images.safetensors", "manifest.json", "a" * 300, TEACHER,
         f"teachers/{SHA}.pt", f"teachers/{SHA}.exe", "teachers/../x.pt")


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def base_members() -> list[tuple[str, bytes]]:
    folder = f"runs/{RUN}"
    return [
        ("bundle.json", _json({"format": "ddr-bundle", "format_version": 1, "kind": "run", "name": RUN,
                               "runs": [{"run_id": RUN, "folder": folder, "label": "x", "teacher": TEACHER}],
                               "sets": [SHA], "teachers": [TEACHER]})),
        (f"{folder}/run_spec.json", _json({"dataset": "digits", "ipc": 1})),
        (f"{folder}/metrics.json", _json({"run_id": RUN, "distilled_sha256": SHA})),
        (f"{folder}/env.json", _json({})),
        (f"{folder}/resolved.json", _json({"run_id": RUN})),
        (f"{folder}/jobs/real-0.json", _json({"result": {"accuracy": 0.5}})),
        (f"sets/{SHA}/images.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"\x01" * 64),
        (f"sets/{SHA}/meta.json", _json({"format": "ddr-distilled", "sha256": SHA})),
        (TEACHER, TEACHER_BYTES),
    ]


def zip_bytes(members: list[tuple[str, bytes]], manifest: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for name, data in [(MANIFEST, manifest), *members]:
            handle.writestr(zipfile.ZipInfo(name or "x"), data)
    return out.getvalue()


@st.composite
def edited_bundles(draw: st.DrawFn) -> bytes:
    """A bundle whose members were edited one way or another, its manifest re-sealed or not."""
    members = base_members()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("rewrite", "rename", "drop", "add", "duplicate")))
        index = draw(st.integers(0, len(members) - 1)) if members else 0
        if op == "rewrite" and members:
            name, data = members[index]
            members[index] = (name, draw(weighted((mutated_bytes(data), 3), (st.binary(max_size=80), 1),
                                                  (st.sampled_from((b"[]", b"null", b'{"runs": 7}', b"{" * 3000)), 1))))
        elif op == "rename" and members:
            members[index] = (draw(st.sampled_from(NAMES)), members[index][1])
        elif op == "drop" and members:
            members.pop(index)
        elif op == "add":
            members.append((draw(st.sampled_from(NAMES)), draw(st.binary(max_size=40))))
        elif members:
            members.append(members[index])
    try:
        resealed = build_manifest(members).to_bytes()
    except BundleError:  # a name the layout has no place for cannot be sealed: keep the old manifest
        resealed = build_manifest(base_members()).to_bytes()
    manifest = draw(st.sampled_from((resealed, build_manifest(base_members()).to_bytes())))
    return zip_bytes(members, manifest)


def _open(path: Path, workdir: Path) -> Any:
    with open_bundle(path, workdir) as bundle:
        return [r.run_id for r in bundle.runs]


def _check(tmp: Path, content: bytes) -> None:
    path = tmp / "bundle.zip"
    path.write_bytes(content)
    workdir = tmp / "work"
    workdir.mkdir()
    before = snapshot(tmp)
    for call in (lambda: read_manifest(path), lambda: read_manifest(path, check=False), lambda: _open(path, workdir)):
        _, error = parse_outcome(call)
        assert error is None or isinstance(error, BundleError), type(error)
    assert snapshot(tmp) == before  # nothing left in the workdir, nothing written anywhere else


def test_bundle_members(run_property: Callable[..., None]) -> None:
    """Members renamed (to unsafe or unexpected names too), dropped, added, duplicated, rewritten."""

    def prop(content: bytes) -> None:
        with scratch_dir() as tmp:
            _check(tmp, content)

    run_property(prop, edited_bundles())


def test_bundle_bytes(run_property: Callable[..., None]) -> None:
    """A valid bundle's bytes flipped, cut, inserted or truncated."""
    valid = zip_bytes(base_members(), build_manifest(base_members()).to_bytes())

    def prop(content: bytes) -> None:
        with scratch_dir() as tmp:
            _check(tmp, content)

    run_property(prop, weighted((mutated_bytes(valid), 6), (st.just(valid), 1)))
