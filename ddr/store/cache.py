"""The content-addressed cache (``DDR_CACHE_DIR``, default ``~/.cache/ddr``) and atomic writes.

Entries live at ``<cache>/<namespace>/<key[:2]>/<key>/``; the directory is created with a
``CACHEDIR.TAG`` so backup tools skip it. Every write goes to a temporary sibling first and is
moved into place with ``os.replace``, so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ddr.store.paths import cache_dir

_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This directory is a cache made by ddr; see https://bford.info/cachedir/\n"


def cache_root() -> Path:
    """The cache directory, created (with its ``CACHEDIR.TAG``) on first use; an ArtifactError
    naming ``DDR_CACHE_DIR`` when it cannot be (a regular file, read-only, no space)."""
    root = cache_dir()
    tag = root / "CACHEDIR.TAG"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not tag.exists():
            atomic_write_text(tag, _TAG)
    except OSError:
        from ddr.store.writable import check_cache

        check_cache()  # says what is wrong with the directory and what to do
        raise
    return root


def entry_dir(namespace: str, key: str) -> Path:
    """Where the cache entry ``key`` of ``namespace`` lives (not created)."""
    return cache_root() / namespace / key[:2] / key


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling renamed into place (``path`` holds
    the old or the new text, never a part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON at ``path``, or ``None`` when missing or unreadable (a corrupt entry is a miss)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def publish_dir(tmp: Path, final: Path) -> Path:
    """Move a fully written temporary directory into place (replacing an older entry)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
