"""A Session: what one command (or one worker process) shares across its runs.

It owns the plugin system, the loaded datasets, the device choice, logging and progress
settings, so nothing of this lives in process-wide globals: a Ray worker, a test or a notebook
builds its own Session and gets its own view.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.data import ImageDataset
    from ddr.execute import Executor
    from ddr.plugin.manager import PluginSystem


def _stderr_log(message: str) -> None:
    print(f"ddr: {message}", file=sys.stderr)


def _quiet(message: str) -> None:
    return None


@dataclass
class Session:
    """Shared state of one command.

    Attributes:
        system: the plugin system (``-p`` blocking/loading applied).
        log: one-line messages to the user (default: none).
        progress_bars: show progress bars on a terminal.
        datasets: loaded datasets by reference and preprocessing (filled on use).
    """

    system: "PluginSystem" = field(default=None)  # type: ignore[assignment]
    log: Callable[[str], None] = _quiet
    progress_bars: bool = True
    datasets: dict[Any, "ImageDataset"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.system is None:
            from ddr.plugin.manager import PluginSystem

            self.system = PluginSystem()

    @classmethod
    def for_cli(cls, system: "PluginSystem", *, progress: bool = True) -> "Session":
        return cls(system=system, log=_stderr_log, progress_bars=progress)

    @property
    def hook(self) -> Any:
        """The plugin hooks (``session.hook.ddr_run_start(run=...)``)."""
        return self.system.pm.hook

    def load_dataset(self, ref: str, *, download: bool = False, zca: bool = False) -> "ImageDataset":
        from ddr.engine.build import load_dataset

        return load_dataset(ref, download=download, zca=zca, system=self.system, cache=self.datasets)

    def progress(self, iterable: Any, total: int | None = None, desc: str = "", leave: bool = True) -> Any:
        if not self.progress_bars:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=leave, disable=None, dynamic_ncols=True)

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


def resolve_device(device: str | None) -> "torch.device":
    """``device`` (default: the GPU when one is present) as a usable ``torch.device``."""
    import torch

    try:
        resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r}: use cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise ConfigError(f"device {device!r} is not available here ({count} CUDA device(s)); "
                              "use --device cpu or leave --device out")
    return resolved
