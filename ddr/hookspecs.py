"""Hook specifications: the plugin API of ddr. Their docstrings are its reference.

Registration hooks take no arguments and return an iterable of spec records (see
:mod:`ddr.specs`). The core calls each plugin's implementation separately, so every record is
attributed to the plugin that returned it, and a name provided twice is an error, never a silent
override. Implement a hook with ``@ddr.hookimpl`` in a module named by an entry point of group
``ddr``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from ddr.artifacts import DistilledSet
    from ddr.specs import (
        ArchitectureSpec,
        AugmentationSpec,
        DatasetSpec,
        LabelStrategySpec,
        MethodSpec,
        ProtocolSpec,
    )

DDR_HOOKSPEC_VERSION = 1
hookspec = pluggy.HookspecMarker("ddr")


# -- registration: no arguments, return spec records -------------------------------------------

@hookspec
def ddr_datasets() -> "Iterable[DatasetSpec]":
    """Return the datasets this plugin provides (:class:`ddr.specs.DatasetSpec`)."""


@hookspec
def ddr_architectures() -> "Iterable[ArchitectureSpec]":
    """Return the network architectures this plugin provides (:class:`ddr.specs.ArchitectureSpec`)."""


@hookspec
def ddr_label_strategies() -> "Iterable[LabelStrategySpec]":
    """Return label strategies and losses (:class:`ddr.specs.LabelStrategySpec`, ``role`` tells which)."""


@hookspec
def ddr_augmentations() -> "Iterable[AugmentationSpec]":
    """Return augmentations (:class:`ddr.specs.AugmentationSpec`)."""


@hookspec
def ddr_methods() -> "Iterable[MethodSpec]":
    """Return dataset-distillation methods (:class:`ddr.specs.MethodSpec`)."""


@hookspec
def ddr_protocols() -> "Iterable[ProtocolSpec]":
    """Return evaluation protocols (:class:`ddr.specs.ProtocolSpec`, each pointing at a YAML file)."""


# -- CLI extension -----------------------------------------------------------------------------

@hookspec
def ddr_add_commands(subparsers: "argparse._SubParsersAction") -> None:
    """Add sub-commands to the ``ddr`` CLI.

    Call ``subparsers.add_parser(name, help=...)`` and ``parser.set_defaults(func=callable)``;
    the callable receives the parsed ``argparse.Namespace`` and returns an exit code.
    """


# -- lifecycle observers (return values are ignored) -------------------------------------------

@hookspec
def ddr_run_start(run: "dict[str, Any]") -> None:
    """Called before a run (distillation and/or evaluation) starts; ``run`` is its run spec."""


@hookspec
def ddr_run_finish(run: "dict[str, Any]", result: "dict[str, Any]") -> None:
    """Called after a run finished; ``result`` is the JSON result record."""


@hookspec
def ddr_run_error(run: "dict[str, Any]", error: BaseException) -> None:
    """Called when a run failed with ``error`` (the error is re-raised afterwards)."""


@hookspec
def ddr_session_finish(results: "Sequence[dict[str, Any]]", exitstatus: int) -> None:
    """Called once when a CLI command that ran evaluations is about to exit."""


# -- first-result extension points -------------------------------------------------------------

@hookspec(firstresult=True)
def ddr_load_distilled(path: Path) -> "DistilledSet | None":
    """Load a distilled set stored at ``path`` in a format ddr does not know; return ``None`` if
    the format is not yours. Called before ddr's own loaders. Never unpickle untrusted files."""
