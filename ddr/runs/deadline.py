"""A wall-clock limit on a block of code (``ddr run --timeout SECONDS`` on the distillation).

:func:`time_limit` arms ``SIGALRM`` with ``signal.setitimer`` in the main thread; when the limit
passes, :class:`DeadlineExceeded` is raised wherever the block is (at the next Python bytecode:
a long native call finishes first). The previous handler and any outer timer are restored
afterwards. Off the main thread, or where ``setitimer`` does not exist, the block runs without a
limit and a log line says so.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ddr.errors import ConfigError


class DeadlineExceeded(BaseException):
    """The time limit passed. A ``BaseException`` (like ``KeyboardInterrupt``), so a method's
    broad ``except Exception`` cannot swallow it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"ran past its time limit of {seconds:g} s")
        self.seconds = seconds


def check_timeout(seconds: Any, option: str = "--timeout") -> float | None:
    """``seconds`` as a positive, finite float (``None``: no limit); ConfigError otherwise."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise ConfigError(f"{option} must be a positive number of seconds, got {seconds!r}; "
                          f"leave {option} out for no limit")
    return float(seconds)


@contextmanager
def time_limit(seconds: float | None, *, what: str = "the block",
               log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` inside the ``with`` block once ``seconds`` (wall clock)
    have passed; ``None`` means no limit. ``what`` names the block in the log line written when
    no limit can be set here (off the main thread)."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        if log is not None:
            log(f"--timeout works only in the main thread of a POSIX process; running {what} without a time limit")
        yield
        return
    armed = [True]

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:
            armed[0] = False
            raise DeadlineExceeded(seconds)

    start = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed[0] = False
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous_handler)
            if outer_delay > 0:  # an enclosing timer keeps running, less the time spent here
                remaining = max(outer_delay - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, remaining, outer_interval)
