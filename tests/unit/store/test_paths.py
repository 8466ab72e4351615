"""``ddr.store.paths.path_kind``: what a user-given path is, and a clear error where Python's own
``Path.exists`` would raise (a name too long for the file system, an embedded NUL byte)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ddr.errors import ConfigError, DdrError
from ddr.store.paths import path_kind


def test_files_folders_and_absent_paths(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert path_kind(tmp_path / "f", what="x") == "file"
    assert path_kind(str(tmp_path), what="x") == "dir"
    assert path_kind(tmp_path / "missing", what="x") is None
    assert path_kind(tmp_path / "f" / "below-a-file", what="x") is None  # ENOTDIR is "absent", as Path.exists says
    assert path_kind(os.devnull, what="x") is None  # neither a regular file nor a folder


def test_a_name_too_long_or_with_a_nul_byte_is_a_ddr_error_of_the_callers_class(tmp_path: Path) -> None:
    long = tmp_path / ("a" * 300)
    with pytest.raises(OSError):
        long.exists()  # what the helper exists for (Python 3.11)
    with pytest.raises(ConfigError, match=r"cannot look at DD-Ranking config .*a{300}: File name too long; "
                                          r"give a shorter path"):
        path_kind(long, what="DD-Ranking config", error=ConfigError)
    with pytest.raises(DdrError, match=r"bundle 'x\\x00y' is not a usable path \(embedded null byte\)"):
        path_kind("x\0y", what="bundle")
