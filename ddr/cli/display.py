"""What a person sees while ddr works: log lines, stage headers and live progress bars (rich).

:func:`open_display` installs one handler on the ``ddr`` logger (``ddr: message`` on stderr,
``-v`` adds debug lines, ``-q`` keeps warnings only), an optional ``--log FILE`` handler, and
returns a :class:`TerminalDisplay` whose bars refresh from a background thread, so the elapsed
time keeps ticking while a long student trains. On a pipe or file (not a terminal), with
``--quiet`` or ``--no-progress`` there are no bars, only the log lines, and (unless ``--quiet``)
a heartbeat every ``DDR_HEARTBEAT_SECONDS`` (default 30) when stderr is not a terminal: ``ddr:
… students · 3/10 jobs · 0:42 elapsed · eta 1:30``, so a piped or CI run never goes silent.
The per-job lines of the ``ddr.progress`` logger are left to the bars and the heartbeat (shown
with ``-v`` and in ``--log`` files).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from ddr.resources.session import LOGGER

_FORMAT_FILE = "%(asctime)s %(levelname)-7s %(message)s"
HEARTBEAT_DEFAULT_SECONDS = 30.0


def heartbeat_seconds() -> float:
    """The heartbeat interval in seconds: ``DDR_HEARTBEAT_SECONDS`` (a positive number), else 30."""
    from ddr.errors import ConfigError

    raw = os.environ.get("DDR_HEARTBEAT_SECONDS", "").strip()
    if not raw:
        return HEARTBEAT_DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"DDR_HEARTBEAT_SECONDS must be a positive number of seconds, got {raw!r}")
    return value


def clock(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03`` for a duration in seconds; ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def heartbeat_line() -> str:
    """``… students · 3/10 jobs (2 reused) · 0:42 elapsed · eta 1:30`` from the progress state."""
    from ddr.resources.progress import STATE

    now = time.perf_counter()
    parts = [f"… {STATE.stage or 'starting'}"]
    if STATE.total:
        parts.append(f"{STATE.done}/{STATE.total} jobs" + (f" ({STATE.reused} reused)" if STATE.reused else ""))
    parts.append(f"{clock(now - STATE.stage_started)} in stage, {clock(now - STATE.started)} elapsed")
    if STATE.total:
        parts.append(f"eta {clock(STATE.eta())}")
    return " · ".join(parts)


class Heartbeat:
    """A daemon thread printing :func:`heartbeat_line` every ``interval`` seconds until stopped."""

    def __init__(self, console: Any, interval: float) -> None:
        self.console, self.interval = console, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="ddr-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.console.print("ddr: " + heartbeat_line(), markup=False, highlight=False, soft_wrap=True)
            except Exception:  # noqa: BLE001 - a display problem must never end a run
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)


class _NoProgressLines(logging.Filter):
    """Drops the ``ddr.progress`` logger's per-job lines (the bars and heartbeat show them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("ddr.progress")


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
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), _eta_column(), TextColumn("{task.fields[info]}"),
                console=self.console, refresh_per_second=4, transient=True, speed_estimate_period=24 * 3600,
            )
            self._progress.start()
        return self._progress

    def track(self, iterable: Any, total: int | None, desc: str, leave: bool) -> Any:
        if not self.bars:
            return iterable
        return _Tracked(self, iterable, total, desc, leave)

    def stage(self, name: str) -> None:
        from ddr.resources import progress

        progress.stage(name)
        if self.bars:
            self.console.rule(name, style="dim")

    def on_event(self, event: dict[str, Any]) -> None:
        """A progress event: a stage whose jobs all come from the job cache says so under its rule."""
        if self.bars and event.get("event") == "jobs_start" and event.get("total") and \
                event.get("cached") == event.get("total"):
            self.console.print(f"  {event.get('stage')}: reused ({event.get('total')} jobs from the job cache)",
                               markup=False, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _eta_column() -> Any:
    """rich's time-remaining column, falling back to the progress state's ETA (the estimate,
    scaled by the jobs finished so far) for the students bar before rich has a speed, and to the
    mean time per finished item otherwise."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            remaining = task.time_remaining
            if remaining is None and task.description == "students":
                from ddr.resources.progress import STATE

                remaining = STATE.eta()
            if remaining is None and task.completed and task.elapsed and task.total:
                remaining = task.elapsed / task.completed * (task.total - task.completed)
            return Text(clock(remaining), style="progress.remaining")

    return EtaColumn()


def open_display(*, verbosity: int = 0, bars: bool = True, log_file: str | None = None) -> tuple[TerminalDisplay, Any]:
    """Install the CLI's log handlers and return (display, close); call ``close()`` when done.

    ``verbosity``: -1 warnings only (``-q``), 0 info, 1 debug (``-v``).
    """
    from rich.console import Console

    from ddr.errors import ConfigError

    interval = heartbeat_seconds()  # a bad DDR_HEARTBEAT_SECONDS fails before any handler is installed
    console = Console(stderr=True)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    console_handler = _ConsoleHandler(console, level)
    if verbosity <= 0:
        console_handler.addFilter(_NoProgressLines())
    handlers: list[logging.Handler] = [console_handler]
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
    from ddr.resources import progress

    progress.STATE = progress.ProgressState()
    progress.add_listener(display.on_event)
    heartbeat = Heartbeat(console, interval).start() if verbosity >= 0 and not console.is_terminal else None

    def close() -> None:
        if heartbeat is not None:
            heartbeat.stop()
        progress.remove_listener(display.on_event)
        display.close()
        for handler in handlers:
            LOGGER.removeHandler(handler)
            handler.close()
        LOGGER.setLevel(previous[0])
        LOGGER.propagate = previous[1]

    return display, close
