"""Assets: what a method (or a command) builds once and caches, keyed by content.

An asset is one cache entry ``<cache>/<namespace>/<key[:2]>/<key>/``: a folder a ``build``
function fills (expert trajectories, an observer model, a feature bank). :meth:`Assets.build`
makes it exactly once per key and cache:

* **content-keyed**: the key is the sha256 of everything the asset depends on
  (:func:`content_key` of a JSON-able mapping), so a change of any input is a new entry;
* **locked**: the entry is locked while it is built (:mod:`ddr.store.locks`), so two ddr
  processes on one cache build it once and the second reads it;
* **atomic**: ``build`` writes into a temporary sibling folder that is renamed into place when it
  returns, so an entry is absent or complete, never half written (a killed build leaves only a
  ``.tmp`` folder, removed by the next build);
* **verified**: the folder's manifest (every file's sha256, :mod:`ddr.store.checksums`) is
  written with it and checked before the entry is first used in a process; an entry that fails
  it is reported, moved aside and built again.

Never imports torch at module level.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddr.errors import ArtifactError, ConfigError
from ddr.store.checksums import check_manifest, quarantine, write_manifest
from ddr.store.hashing import sha256_json

_NAMESPACE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def content_key(fields: Mapping[str, Any] | str) -> str:
    """The sha256 hex key of ``fields`` (canonical JSON), or ``fields`` itself when it is already
    a 64-character hex key."""
    if isinstance(fields, str):
        if len(fields) != 64 or any(c not in "0123456789abcdef" for c in fields):
            raise ConfigError(f"an asset key given as a string must be a sha256 hex digest, got {fields!r}; "
                              "pass the mapping of what the asset depends on instead")
        return fields
    return sha256_json(dict(fields))


def _check_namespace(namespace: str) -> str:
    if not namespace or not set(namespace) <= _NAMESPACE_CHARS or namespace[0] in "-_":
        raise ConfigError(f"asset namespace {namespace!r}: use lower-case letters, digits, '-' and '_' "
                          "(e.g. 'experts', 'mymethod-features')")
    return namespace


@dataclass(frozen=True)
class Assets:
    """The cache's asset entries (under ``DDR_CACHE_DIR``).

    Attributes:
        log: where "waiting for another ddr process building ..." goes (``None``: nowhere).
    """

    log: Callable[[str], None] | None = None

    def path(self, namespace: str, key: Mapping[str, Any] | str) -> Path:
        """Where the entry of ``key`` lives (it may not exist)."""
        from ddr.store.cache import entry_dir

        return entry_dir(_check_namespace(namespace), content_key(key))

    def get(self, namespace: str, key: Mapping[str, Any] | str) -> Path | None:
        """The entry's folder when it is built and sound, else ``None`` (a corrupt entry is left for
        :meth:`build` to report and replace)."""
        folder = self.path(namespace, key)
        return folder if folder.is_dir() and check_manifest(folder) is None else None

    def build(self, namespace: str, key: Mapping[str, Any] | str, build: Callable[[Path], None], *,
              what: str) -> Path:
        """The entry of ``key``, built by ``build(folder)`` when absent (locked, atomic).

        Args:
            namespace: the kind of asset (``experts``), a folder of the cache.
            key: what the asset depends on (a JSON-able mapping) or its :func:`content_key`.
            build: fills the (empty, temporary) folder it is given; the folder becomes the entry
                when it returns. An exception leaves no entry.
            what: what is built, for messages ("expert trajectory 3 (convnet on digits)").
        """
        from ddr.store.cache import publish_dir
        from ddr.store.locks import entry_lock
        from ddr.store.writable import fix_for, is_write_error, reason

        folder = self.path(namespace, key)
        if folder.is_dir() and check_manifest(folder) is None:
            return folder
        with entry_lock(folder, what, log=self.log):
            if folder.is_dir():  # another process built it while we waited, or it is corrupt
                problem = check_manifest(folder)
                if problem is None:
                    return folder
                moved = quarantine(folder)
                if self.log is not None:
                    self.log(f"warning: {problem.message()} ({what}); "
                             f"{f'moved to {moved}' if moved is not None else 'removed'}; building it again")
            for stale in folder.parent.glob(f".{folder.name}.*"):  # left by a killed build; we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            try:
                folder.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            except OSError as exc:
                raise ArtifactError(f"cannot create the cache entry for {what} under {folder.parent} ({exc}); "
                                    "free space under DDR_CACHE_DIR or point it elsewhere") from None
            try:
                build(tmp)
                write_manifest(tmp)
                return publish_dir(tmp, folder)
            except OSError as exc:  # a full or read-only cache disk, while building or publishing
                shutil.rmtree(tmp, ignore_errors=True)
                if not is_write_error(exc):
                    raise
                raise ArtifactError(f"cannot write {what} to the cache under {folder.parent}: {reason(exc)}; "
                                    f"{fix_for(exc, folder.parent, 'set DDR_CACHE_DIR to a writable directory')}; "
                                    "nothing half-written was kept") from exc
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    def entries(self, namespace: str) -> list[Path]:
        """Every built entry of ``namespace``, sorted by key."""
        from ddr.store.cache import cache_root

        base = cache_root() / _check_namespace(namespace)
        if not base.is_dir():
            return []
        return sorted(p for p in base.glob("*/*") if p.is_dir() and not p.name.startswith("."))
