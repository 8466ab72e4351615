"""Inter-process locks on cache entries, so concurrent ddr processes build each asset once.

A lock is an exclusive ``fcntl.flock`` on ``<entry>.lock`` beside the entry. The process that
gets it builds the asset; every other process blocks (saying so once), then re-checks the
cache and reads what the first one stored. The kernel drops a lock when its process ends, even
under ``kill -9``, so a crashed builder never blocks the next run; lock files are left in place
(removing one would let two processes lock two different files of the same name).

Locks are re-entrant within a thread (a nested ``entry_lock`` on a held entry does not
deadlock on itself); another thread of the same process waits like another process. Where
``fcntl`` does not exist (Windows) locking is a no-op.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ddr.errors import ArtifactError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"

_held: dict[tuple[str, int], int] = {}  # (lock path, thread) -> nesting depth in this process
_held_guard = threading.Lock()


def lock_path(entry: Path) -> Path:
    """The lock file of the cache entry ``entry`` (a sibling: ``<entry>.lock``)."""
    entry = Path(entry)
    return entry.with_name(entry.name + LOCK_SUFFIX)


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise ArtifactError(f"cannot create the lock file {path}: {exc.strerror or exc}; make the cache "
                            "directory writable or point DDR_CACHE_DIR at a writable directory") from None


@contextmanager
def entry_lock(entry: Path, what: str, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of cache entry ``entry`` for the ``with`` block.

    Args:
        entry: the cache entry directory (it need not exist).
        what: what is built under the lock, for the waiting message ("the distilled set ...").
        log: where "waiting for another ddr process building WHAT" goes when the lock is taken by
            another process (once, before blocking); ``None``: say nothing.
    """
    path = lock_path(entry)
    key = (os.path.abspath(path), threading.get_ident())
    with _held_guard:
        nested = key in _held
        if nested:  # re-entrant within this thread
            _held[key] += 1
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"waiting for another ddr process building {what} (lock {path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def entry_locks(entries: Sequence[tuple[Path, str]], log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the locks of several entries (``(entry, what)`` pairs) at once, taken in a fixed order
    (sorted by path) so two processes locking overlapping sets never deadlock."""
    with ExitStack() as stack:
        for entry, what in sorted(entries, key=lambda pair: str(pair[0])):
            stack.enter_context(entry_lock(entry, what, log))
        yield
