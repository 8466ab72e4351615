"""What a person sees while ddr works: log lines, stage headers and live progress bars (rich).

:func:`open_display` installs one handler on the ``ddr`` logger (``ddr: message`` on stderr,
``-v`` adds debug lines, ``-q`` keeps warnings only), an optional ``--log FILE`` handler, and
returns a :class:`TerminalDisplay` whose bars refresh from a background thread, so the elapsed
time keeps ticking while a long student trains. On a pipe or file (not a terminal), with
``--quiet`` or ``--no-progress`` there are no bars, only the log lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from ddr.resources.session import LOGGER

_FORMAT_FILE = "%(asctime)s %(levelname)-7s %(message)s"


class _ConsoleHandler(logging.Handler):
    """``ddr: message`` lines printed through the rich console (above the live bars)."""

    def __init__(self, console: Any, level: int) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            prefix = "ddr: " if record.levelno < logging.WARNING else f"ddr: {record.levelname.lower()}: "
            self.console.print(prefix + message, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - a display problem must never end a run
            self.handleError(record)


class _Tracked:
    """An iterable shown as one bar; ``set_postfix(acc=0.91)`` adds live values to it."""

    def __init__(self, display: "TerminalDisplay", iterable: Any, total: int | None, desc: str, leave: bool) -> None:
        self.display, self.iterable, self.desc, self.leave = display, iterable, desc, leave
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.task: Any = None

    def set_postfix(self, **values: Any) -> None:
        if self.task is not None:
            text = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
            self.display.progress.update(self.task, info=text)

    def __iter__(self) -> Iterator[Any]:
        progress = self.display.progress
        self.task = progress.add_task(self.desc, total=self.total, info="")
        start = time.perf_counter()
        done = 0
        try:
            for item in self.iterable:
                yield item
                done += 1
                progress.advance(self.task)
        finally:
            info = progress.tasks[[t.id for t in progress.tasks].index(self.task)].fields.get("info", "")
            progress.remove_task(self.task)
            self.task = None
            if self.leave and done:
                total = f"/{self.total}" if self.total else ""
                self.display.console.print(f"  {self.desc}: {done}{total} in {time.perf_counter() - start:.1f} s"
                                           + (f"  ({info})" if info else ""), markup=False, highlight=False)

    def __len__(self) -> int:
        return int(self.total or 0)


class TerminalDisplay:
    """Live bars (stage header, one bar per running loop with elapsed and remaining time)."""

    def __init__(self, console: Any, *, bars: bool) -> None:
        self.console = console
        self.bars = bars and console.is_terminal
        self._progress: Any = None

    @property
    def progress(self) -> Any:
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=self.console, refresh_per_second=4, transient=True,
            )
            self._progress.start()
        return self._progress

    def track(self, iterable: Any, total: int | None, desc: str, leave: bool) -> Any:
        if not self.bars:
            return iterable
        return _Tracked(self, iterable, total, desc, leave)

    def stage(self, name: str) -> None:
        if self.bars:
            self.console.rule(name, style="dim")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def open_display(*, verbosity: int = 0, bars: bool = True, log_file: str | None = None) -> tuple[TerminalDisplay, Any]:
    """Install the CLI's log handlers and return (display, close); call ``close()`` when done.

    ``verbosity``: -1 warnings only (``-q``), 0 info, 1 debug (``-v``).
    """
    from rich.console import Console

    from ddr.errors import ConfigError

    console = Console(stderr=True)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handlers: list[logging.Handler] = [_ConsoleHandler(console, level)]
    if log_file:
        try:
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the log file {log_file} (--log): {exc.strerror or exc}") from None
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(_FORMAT_FILE))
        handlers.append(file_handler)
    previous = (LOGGER.level, LOGGER.propagate)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    for handler in handlers:
        LOGGER.addHandler(handler)
    display = TerminalDisplay(console, bars=bars and verbosity >= 0)

    def close() -> None:
        display.close()
        for handler in handlers:
            LOGGER.removeHandler(handler)
            handler.close()
        LOGGER.setLevel(previous[0])
        LOGGER.propagate = previous[1]

    return display, close
