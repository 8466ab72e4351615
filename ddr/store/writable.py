"""Can ddr write where it is about to? Checked before any work starts; a write that fails later
(a full disk, a read-only mount) becomes one :class:`~ddr.errors.ArtifactError` naming the path,
the reason and the fix.

:func:`check_directory` probes a directory by writing (and fsyncing) a small file in it, so a
read-only directory, one below a regular file and a disk with no space left are all refused
before an expensive step; :func:`check_cache` does that for ``DDR_CACHE_DIR``;
:func:`copy_file` copies a finished file into place atomically (a reader never sees half of it);
:func:`write_output` writes a file a user asked for (a table, a plot) the same way;
:func:`save_tensors` writes a safetensors file whose failures are ``OSError`` s like any write's;
:func:`rescue_dir` is where a finished result goes when its destination cannot take it.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ddr.errors import ArtifactError
from ddr.store.paths import CACHE_DIR_ENV, cache_dir

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping

    import torch

PROBE_BYTES = 4096
"""Bytes the write check writes (and fsyncs): enough that a full disk refuses them."""

_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_NOT_DIR = (errno.ENOTDIR, errno.EEXIST)


def reason(exc: OSError) -> str:
    """``exc`` in words ("No space left on device"), without the errno number."""
    return exc.strerror or str(exc)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) says the disk or the quota is full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _SPACE:
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def is_write_error(exc: OSError) -> bool:
    """Whether ``exc`` says the destination cannot take a write (no space, quota, read-only, no
    permission, an I/O error), as opposed to, e.g., a missing input file."""
    return exc.errno in (*_SPACE, *_READ_ONLY, errno.EIO)


def fix_for(exc: OSError, directory: Path, choose: str) -> str:
    """What to do about ``exc`` raised while writing into ``directory``; ``choose`` is the
    alternative to offer ("choose a writable directory with --out DIR")."""
    if exc.errno in _SPACE:
        return f"free space on the disk holding {directory} (or {choose})"
    if exc.errno in _NOT_DIR:
        return f"{directory} or a folder above it is a regular file: remove it (or {choose})"
    if exc.errno in _READ_ONLY:
        return f"make {directory} writable (or {choose})"
    return choose


def probe(directory: Path) -> None:
    """Create ``directory`` (and its parents) and write, fsync and remove a small file in it.

    Raises:
        OSError: the directory cannot be created or written (read-only, below a regular file,
            no space left).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".ddr-write-check-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\0" * PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        Path(name).unlink(missing_ok=True)


def check_directory(directory: Path, *, what: str, choose: str) -> None:
    """Refuse, before any work, a ``directory`` that cannot receive ``what``.

    Args:
        directory: where ``what`` will be written (created when missing).
        what: what goes there, for the message ("run records (--out)").
        choose: the alternative the message offers ("choose a writable directory with --out DIR").
    """
    directory = Path(directory)
    try:
        probe(directory)
    except OSError as exc:
        raise ArtifactError(f"cannot write {what} to {directory}: {reason(exc)}; "
                            f"{fix_for(exc, directory, choose)}") from None


def check_cache() -> Path:
    """Refuse, before any work, a cache directory (``DDR_CACHE_DIR``, default ``~/.cache/ddr``)
    that cannot hold what a run stores: the distilled set, finished jobs, the reference model.
    Returns the cache directory."""
    root = cache_dir()
    choose = f"set {CACHE_DIR_ENV} to a writable directory"
    if root.exists() and not root.is_dir():
        raise ArtifactError(f"the cache directory {root} ({CACHE_DIR_ENV}) is a regular file, not a directory; "
                            f"{choose}, or remove the file")
    try:
        probe(root)
    except OSError as exc:
        raise ArtifactError(f"cannot write to the cache directory {root} ({CACHE_DIR_ENV}): {reason(exc)}; "
                            f"{fix_for(exc, root, choose)}") from None
    return root


def copy_file(source: Path, dest: Path, *, what: str, choose: str) -> Path:
    """Copy ``source`` to ``dest`` through a temporary sibling renamed into place, so ``dest`` is
    complete or untouched; a failure is an ArtifactError saying where ``source`` still is."""
    return write_output(Path(dest), lambda tmp: shutil.copyfile(source, tmp), what=what, choose=choose,
                        kept=f"it is safe at {source}: copy it from there")


def write_output(path: Path, write: "Callable[[Path], object]", *, what: str, choose: str,
                 kept: str | None = None) -> Path:
    """Write a user-requested output file (a table, a plot, a CSV, a copy) at ``path``:
    ``write(tmp)`` fills a temporary sibling that is renamed into place, so ``path`` is complete or
    untouched; any write failure is one ArtifactError naming ``what``, the reason, ``choose`` and
    (``kept``) where the result still is."""
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ArtifactError(f"cannot write {what} to {path}: {reason(exc)}; "
                            f"{fix_for(exc, path.parent, choose)}" + (f"; {kept}" if kept else "")) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def save_tensors(tensors: "Mapping[str, torch.Tensor]", path: Path, *,
                 metadata: "Mapping[str, str] | None" = None) -> None:
    """``safetensors.torch.save_file(tensors, path, metadata=...)`` whose I/O failures are
    ``OSError`` s like every other write's (safetensors raises its own ``SafetensorError``, e.g.
    ``I/O error: No space left on device (os error 28)``), so every writer's ``except OSError``
    turns a full disk into its one clear message. A partly written ``path`` is removed.

    Raises:
        OSError: the file could not be written (``errno`` as the operating system said, or
            ``EIO`` when safetensors did not say).
    """
    import re

    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(dict(tensors), str(path), metadata=dict(metadata) if metadata is not None else None)
    except SafetensorError as exc:
        Path(path).unlink(missing_ok=True)
        text = str(exc)
        code = re.search(r"\(os error (\d+)\)", text)
        if code is not None:
            number = int(code.group(1))
            raise OSError(number, os.strerror(number), str(path)) from exc
        if "I/O error" in text or "io error" in text.lower():
            raise OSError(errno.EIO, text, str(path)) from exc
        raise


RESCUE_FOLDER = "ddr-rescued"


def rescue_dir(name: str) -> Path:
    """Where a finished result goes when its own destination cannot be written (a full cache
    disk, an unwritable ``--out``): ``<temp dir>/ddr-rescued/<name>`` (the temp dir is
    ``$TMPDIR`` or the system's). Not created."""
    return Path(tempfile.gettempdir()) / RESCUE_FOLDER / name
