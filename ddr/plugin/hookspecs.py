"""Hook specifications: the plugin API of ddr. Their docstrings are its reference.

Registration hooks take no arguments and return an iterable of spec records (see
:mod:`ddr.plugin.specs`). The core calls each plugin's implementation separately, so every record is
attributed to the plugin that returned it, and a name provided twice is an error, never a silent
override. Implement a hook with ``@ddr.hookimpl`` in a module named by an entry point of group
``ddr``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from ddr.method.distilled import DistilledSet
    from ddr.plugin.specs import (
        ArchitectureSpec,
        AugmentationSpec,
        DatasetSpec,
        ExecutorSpec,
        LabelStrategySpec,
        LossSpec,
        MethodSpec,
        MetricSpec,
        ProtocolSpec,
    )
    from ddr.records.run import EvaluationResult, RunSpec

DDR_HOOKSPEC_VERSION = 3
"""Version 2: losses and executors are their own kinds; lifecycle hooks take typed records.
Version 3: metrics are a kind (``ddr_metrics``)."""
hookspec = pluggy.HookspecMarker("ddr")


# -- registration: no arguments, return spec records -------------------------------------------

@hookspec
def ddr_datasets() -> "Iterable[DatasetSpec]":
    """Return the datasets this plugin provides (:class:`ddr.plugin.specs.DatasetSpec`)."""


@hookspec
def ddr_architectures() -> "Iterable[ArchitectureSpec]":
    """Return the network architectures this plugin provides (:class:`ddr.plugin.specs.ArchitectureSpec`)."""


@hookspec
def ddr_label_strategies() -> "Iterable[LabelStrategySpec]":
    """Return label strategies (:class:`ddr.plugin.specs.LabelStrategySpec`): how targets are made."""


@hookspec
def ddr_losses() -> "Iterable[LossSpec]":
    """Return losses (:class:`ddr.plugin.specs.LossSpec`): how logits are compared with targets."""


@hookspec
def ddr_augmentations() -> "Iterable[AugmentationSpec]":
    """Return augmentations (:class:`ddr.plugin.specs.AugmentationSpec`)."""


@hookspec
def ddr_methods() -> "Iterable[MethodSpec]":
    """Return dataset-distillation methods (:class:`ddr.plugin.specs.MethodSpec`)."""


@hookspec
def ddr_protocols() -> "Iterable[ProtocolSpec]":
    """Return evaluation protocols (:class:`ddr.plugin.specs.ProtocolSpec`, each pointing at a YAML file)."""


@hookspec
def ddr_executors() -> "Iterable[ExecutorSpec]":
    """Return executors (:class:`ddr.plugin.specs.ExecutorSpec`): ways to run student jobs
    (``--executor NAME``); ``local`` (in-process, sequential) is built in."""


@hookspec
def ddr_metrics() -> "Iterable[MetricSpec]":
    """Return metrics (:class:`ddr.plugin.specs.MetricSpec`): numbers a run reports, computed from
    the students' accuracies or, inside each student job, from the trained student model."""


# -- CLI extension -----------------------------------------------------------------------------

@hookspec
def ddr_add_commands(subparsers: "argparse._SubParsersAction") -> None:
    """Add sub-commands to the ``ddr`` CLI.

    Call ``subparsers.add_parser(name, help=...)`` and ``parser.set_defaults(func=callable)``;
    the callable receives the parsed ``argparse.Namespace`` and returns an exit code.
    """


# -- lifecycle observers (return values are ignored) -------------------------------------------

@hookspec
def ddr_run_start(run: "RunSpec") -> None:
    """Called before a ``ddr run`` or ``ddr eval`` starts its work.

    Args:
        run: what is about to run: command (``run``/``eval``), method and its resolved
            parameters (``None`` for ``eval``), dataset, IPC, protocol name and version, every
            override, seed, executor and device (:class:`ddr.records.run.RunSpec`).
    """


@hookspec
def ddr_run_finish(run: "RunSpec", result: "EvaluationResult") -> None:
    """Called after a run finished and its record was written.

    Args:
        run: as given to ``ddr_run_start``.
        result: the scores (fractions), per-student job results, timings and the record folder
            (:class:`ddr.records.run.EvaluationResult`; ``result.to_json()`` is the ``--json`` form).
    """


@hookspec
def ddr_run_error(run: "RunSpec", error: BaseException) -> None:
    """Called when a run failed; the error is re-raised afterwards (Ctrl-C included).

    Args:
        run: as given to ``ddr_run_start``.
        error: the exception that ended the run.
    """


@hookspec
def ddr_session_finish(results: "Sequence[EvaluationResult]", exitstatus: int) -> None:
    """Called once when a command that ran evaluations exits, also when it failed.

    Args:
        results: the results that finished (empty when the first run failed).
        exitstatus: the exit status the command is about to return (0 on success).
    """


# -- first-result extension points -------------------------------------------------------------

@hookspec(firstresult=True)
def ddr_load_distilled(path: Path, num_classes: int | None, ipc: int | None,
                       pixel_space: str | None) -> "DistilledSet | None":
    """Load a distilled set stored at ``path``; return ``None`` if the format is not yours.

    ddr's own formats (its directory format, DD-Ranking's ``.pt`` files, class-folder images)
    are built-in implementations of this hook, marked ``trylast``, so a plugin's loader is asked
    first. Never unpickle untrusted files.

    Args:
        path: the file or directory the user named (``ddr eval PATH``).
        num_classes: the dataset's K (to infer class-major labels), or ``None``.
        ipc: the images per class the user asked for, or ``None``.
        pixel_space: the pixel space the user declared (``--pixel-space``), or ``None``.

    An implementation may take only the arguments it needs (e.g. just ``path``).
    """
