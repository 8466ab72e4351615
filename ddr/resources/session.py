"""A Session: what one command (or one worker process) shares across its runs.

It owns the plugin system, the loaded datasets, the device choice, logging and progress
settings, so nothing of this lives in process-wide globals: a Ray worker, a test or a notebook
builds its own Session and gets its own view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover

    from ddr.engine.data import ImageDataset
    from ddr.execute import Executor
    from ddr.plugin.manager import PluginSystem


LOGGER = logging.getLogger("ddr")
"""Every message of a run goes to this logger (the CLI shows it, ``--log`` files it, and each
run record keeps its own lines as ``log.txt``); a library user configures it like any other."""


def _quiet(message: str) -> None:
    return None


class Display(Protocol):
    """What shows a session's progress (the CLI's terminal display; none in library use)."""

    def track(self, iterable: Any, total: int | None, desc: str, leave: bool) -> Any: ...

    def stage(self, name: str) -> None: ...


@dataclass
class Session:
    """Shared state of one command.

    Attributes:
        system: the plugin system (``-p`` blocking/loading applied).
        log: one-line messages to the user; every message also goes to the ``ddr`` logger.
        progress_bars: show progress bars (when a display is attached).
        datasets: loaded datasets by reference and preprocessing (filled on use).
        display: the terminal display (progress bars, stage headers), ``None`` in library use.
    """

    system: "PluginSystem" = field(default=None)  # type: ignore[assignment]
    log: Callable[[str], None] = _quiet
    progress_bars: bool = True
    datasets: dict[Any, "ImageDataset"] = field(default_factory=dict)
    display: Display | None = None
    results_db: str | None = None
    """The results database every record is added to (``None``: ``$DDR_CACHE_DIR/results.sqlite``)."""
    run_log: list[str] | None = field(default=None, repr=False)
    """The current run's log lines (filled while a run is observed; its record's ``log.txt``)."""
    isolate: bool = False
    """Distill in a child process (``--isolate``): a method that ends its process (``os._exit``
    from C, a crash) is reported with its name instead of ending ddr (:mod:`ddr.execute.child`)."""
    prefetched: dict[str, Any] = field(default_factory=dict, repr=False)
    """Distillations submitted ahead to a remote executor, by content key (a suite under
    ``--executor ray`` submits the next units' while one is evaluated); each has ``.wait()``,
    ``.result()`` and ``.cancel()``."""

    def __post_init__(self) -> None:
        if self.system is None:
            from ddr.plugin.manager import PluginSystem

            self.system = PluginSystem()
        user = self.log

        def log(message: str) -> None:
            LOGGER.info(message)
            if user is not _quiet:
                user(message)

        self.log = log

    @classmethod
    def for_cli(cls, system: "PluginSystem", *, progress: bool = True, display: Display | None = None,
                isolate: bool = False) -> "Session":
        """A session whose messages reach the terminal through the ``ddr`` logger (configured by
        the CLI) and whose loops show ``display``'s progress bars."""
        return cls(system=system, progress_bars=progress, display=display, isolate=isolate)

    def stage(self, name: str) -> None:
        """Say which stage starts (``distill``, ``reference``, ``students``, a suite's unit)."""
        LOGGER.debug("stage: %s", name)
        if self.display is not None:
            self.display.stage(name)

    @property
    def hook(self) -> Any:
        """The plugin hooks (``session.hook.ddr_run_start(run=...)``)."""
        return self.system.pm.hook

    def load_dataset(self, ref: str, *, download: bool = False, zca: bool = False) -> "ImageDataset":
        from ddr.engine.build import load_dataset

        return load_dataset(ref, download=download, zca=zca, system=self.system, cache=self.datasets)

    def progress(self, iterable: Any, total: int | None = None, desc: str = "", leave: bool = True) -> Any:
        """``iterable`` wrapped in a progress bar of the display (unchanged without one)."""
        if not self.progress_bars or self.display is None:
            return iterable
        return self.display.track(iterable, total, desc, leave)

    def executor(self, name: str, options: "Mapping[str, Any] | None" = None) -> "Executor":
        """A fresh executor by registry name (``local``), built with ``options`` as keyword
        arguments (``{"address": ...}`` for ``ray``)."""
        registry = self.system.executors()
        resolved = registry.resolve(name)
        target = registry.materialize(resolved.spec)
        kwargs = {**resolved.params, **{k: v for k, v in dict(options or {}).items() if v is not None}}
        try:
            executor = target(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"executor '{resolved.name}' does not take the options {sorted(kwargs)}: {exc}") from None
        if not callable(getattr(executor, "run", None)):
            raise ConfigError(f"executor '{resolved.name}' ({resolved.spec.target_path}) has no run() method")
        return executor


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """The ``ddr`` logger's lines (INFO and up, timestamped) while the block runs (a run's log.txt)."""
    handler = _Lines()
    handler.setLevel(logging.INFO)
    previous = LOGGER.level
    if LOGGER.getEffectiveLevel() > logging.INFO:
        LOGGER.setLevel(logging.INFO)
    LOGGER.addHandler(handler)
    try:
        yield handler.lines
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(previous)
