"""The environment record."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import ddr
from ddr.store.envinfo import environment_info, git_revision

HEX40 = re.compile(r"[0-9a-f]{40}")


def test_record_has_every_key_and_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", "/tmp/ddr-cache")
    monkeypatch.setenv("NOT_DDR_SECRET", "x")
    plugins = [{"name": "dm", "distribution": "ddr-bench", "version": "0.1.0"}]
    info = environment_info(plugins=plugins, deterministic=True, device="cpu")
    assert set(info) == {
        "timestamp", "python", "platform", "machine_id", "cpu_count", "packages", "ddr",
        "cuda", "plugins", "determinism", "env",
    }  # fmt: skip
    assert json.loads(json.dumps(info)) == info
    assert info["plugins"] == plugins
    assert info["env"]["DDR_CACHE_DIR"] == "/tmp/ddr-cache" and "NOT_DDR_SECRET" not in info["env"]
    assert info["determinism"]["requested"] is True
    assert isinstance(info["determinism"]["deterministic_algorithms"], bool)
    assert info["cuda"]["device"] == "cpu" and isinstance(info["cuda"]["available"], bool)
    assert info["ddr"]["version"] == ddr.__version__
    commit = info["ddr"]["git_commit"]
    assert commit is None or HEX40.fullmatch(commit)
    assert info["python"]["version"].count(".") == 2
    assert re.fullmatch(r"[0-9a-f]{16}", info["machine_id"])
    assert info["packages"]["torch"] is not None and info["packages"]["pluggy"] is not None
    assert info["timestamp"].endswith("+00:00")


def test_defaults_without_arguments() -> None:
    info = environment_info()
    assert info["plugins"] == [] and info["determinism"]["requested"] is None and info["cuda"]["device"] is None


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo), *args],
        check=True,
        capture_output=True,
    )


def test_git_revision_of_a_checkout(tmp_path: Path) -> None:
    assert git_revision(tmp_path) == (None, None)  # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "other").mkdir()
    assert git_revision(tmp_path / "pkg") == (None, None)  # no commit yet
    _git(tmp_path, "add", "pkg/mod.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    commit, dirty = git_revision(tmp_path / "pkg")
    assert HEX40.fullmatch(commit) and dirty is False
    assert git_revision(tmp_path / "other") == (None, None)  # nothing of it is tracked
    (tmp_path / "pkg" / "mod.py").write_text("x = 2\n")
    assert git_revision(tmp_path / "pkg") == (commit, True)
