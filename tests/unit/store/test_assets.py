"""Assets: what a method builds once and ddr caches (``ctx.asset``, ``Resources.asset``,
:class:`ddr.store.assets.Assets`): content-keyed, locked across processes, atomic."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ddr import ConfigError
from ddr.method.assets import Assets, content_key
from ddr.store.hashing import sha256_json


def test_the_key_is_the_canonical_json_digest_and_any_input_is_a_new_entry(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path))
    key = {"dataset": "digits", "epochs": 3, "lr": 0.01}
    assert content_key(key) == sha256_json(key) == content_key({"lr": 0.01, "epochs": 3, "dataset": "digits"})
    assert content_key(content_key(key)) == content_key(key)  # a digest is its own key
    assets = Assets()
    built: list[Path] = []

    def build(folder: Path) -> None:
        built.append(folder)
        (folder / "value.txt").write_text("3")

    first = assets.build("toy", key, build, what="a toy asset")
    again = assets.build("toy", key, build, what="a toy asset")
    other = assets.build("toy", {**key, "epochs": 4}, build, what="a toy asset")
    assert first == again != other and len(built) == 2
    assert (first / "value.txt").read_text() == "3"
    assert first == tmp_path / "toy" / content_key(key)[:2] / content_key(key)
    assert assets.get("toy", key) == first and assets.get("toy", {**key, "epochs": 5}) is None
    assert assets.entries("toy") == sorted([first, other])
    assert assets.entries("nothing-here") == []


def test_a_failed_build_leaves_no_entry_and_the_next_build_succeeds(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path))
    assets = Assets()

    def broken(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError, match="half way"):
        assets.build("toy", {"k": 1}, broken, what="a toy asset")
    assert assets.get("toy", {"k": 1}) is None
    assert not [p for p in (tmp_path / "toy").rglob("*") if p.is_dir() and p.name.startswith(".")]
    folder = assets.build("toy", {"k": 1}, lambda f: (f / "ok").write_text("1"), what="a toy asset")
    assert (folder / "ok").read_text() == "1" and not (folder / "half.bin").exists()


def test_bad_namespaces_and_keys_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path))
    for namespace in ("", "Experts", "../up", "_private", "a b"):
        with pytest.raises(ConfigError, match="namespace"):
            Assets().path(namespace, {"k": 1})
    with pytest.raises(ConfigError, match="sha256"):
        Assets().path("toy", "not-a-digest")


BUILDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from ddr.method.assets import Assets

    def build(folder):
        with open(sys.argv[1], "a") as log:
            log.write(f"{os.getpid()}\\n")
        time.sleep(1.5)
        (folder / "value.txt").write_text("built")

    folder = Assets(log=print).build("toy", {"shared": True}, build, what="the shared toy asset")
    print("read", (folder / "value.txt").read_text())
""")


def test_two_processes_build_a_shared_asset_once(tmp_path: Path) -> None:
    env = {**os.environ, "DDR_CACHE_DIR": str(tmp_path / "cache")}
    log = tmp_path / "builds.log"
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(log)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert len(log.read_text().split()) == 1  # built by one process
    assert all("read built" in out for out in outputs)
    assert any("waiting for another ddr process" in out for out in outputs)


def test_a_method_caches_through_its_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ctx.asset`` on the context ddr builds: the same entry for the same key, whatever the run."""
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import Evaluator

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path))
    resources = Evaluator(dataset="digits", ipc=1, device="cpu").resources
    calls: list[int] = []

    def build(folder: Path) -> None:
        calls.append(1)
        (folder / "bank.txt").write_text("features")

    ctx = build_context(resources, params={}, ipc=1)
    folder = ctx.asset("mymethod-features", {"pool": len(ctx.train)}, build, what="a feature bank")
    again = build_context(resources, params={}, ipc=2, seed=7).asset("mymethod-features", {"pool": len(ctx.train)},
                                                                    build, what="a feature bank")
    assert folder == again and calls == [1]
    assert resources.asset("mymethod-features", {"pool": len(ctx.train)}, build, what="x") == folder
    assert ctx.assets.get("mymethod-features", {"pool": len(ctx.train)}) == folder


def test_a_full_disk_while_an_asset_is_built_is_one_message_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """safetensors raises its own error on a full disk; ``save_tensors`` makes it an OSError with
    the OS's errno, and ``Assets.build`` turns that into one ArtifactError with no half-written
    entry. An OSError that is not a write failure (a missing input) stays the method's own."""
    import errno

    import safetensors.torch
    import torch
    from safetensors import SafetensorError

    from ddr.errors import ArtifactError
    from ddr.method.assets import save_tensors

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path))

    def full(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"\0" * 8)  # what a full disk leaves: a part of the file
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OSError) as info:
        save_tensors({"x": torch.zeros(3)}, tmp_path / "x.safetensors")
    assert info.value.errno == errno.ENOSPC and not (tmp_path / "x.safetensors").exists()

    def build(folder: Path) -> None:
        save_tensors({"x": torch.zeros(3)}, folder / "x.safetensors")

    with pytest.raises(ArtifactError) as caught:
        Assets().build("toy", {"a": 1}, build, what="a toy trajectory")
    assert str(caught.value).startswith(f"cannot write a toy trajectory to the cache under {tmp_path / 'toy'}")
    assert "No space left on device; free space on the disk holding" in str(caught.value)
    assert [p for p in (tmp_path / "toy").rglob("*") if not p.name.endswith(".lock") and p.is_file()] == []

    def missing_input(folder: Path) -> None:
        (tmp_path / "no-such-input.bin").read_bytes()

    with pytest.raises(FileNotFoundError):
        Assets().build("toy", {"a": 2}, missing_input, what="a toy asset")
