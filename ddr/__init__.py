"""ddr: honest, reproducible, fast dataset-distillation evaluation.

This module is the plugin author's door, cheap to import (no torch): the hook marker, every spec
type a plugin returns, the parameter schema, the method contract, the typed records hooks
receive and every error kind. ``ddr.evaluate`` and ``ddr.Resources`` (the dataset, splits,
reference model, teachers and cached assets of a dataset under a protocol) are imported lazily
on first use. Together with :mod:`ddr.method` (and its submodules) it is all a plugin imports
(``tests/contracts/test_layers.py`` holds every built-in method to it).

    import ddr
    from ddr import ConfigError, LossSpec, MethodSpec, ParamSpec, hookimpl
"""

from __future__ import annotations

from typing import Any

import pluggy

from ddr.errors import (
    AmbiguousComponentError,
    ArtifactError,
    ConfigError,
    DataError,
    DdrError,
    DistilledSetError,
    InvalidSpecError,
    PluginLoadError,
    UnknownComponentError,
)
from ddr.method.context import DistillContext, Method
from ddr.method.distilled import DistilledSet
from ddr.plugin.params import ParamSpec
from ddr.plugin.reported import load_reported
from ddr.plugin.specs import (
    ArchitectureSpec,
    AugmentationSpec,
    DatasetSpec,
    ExecutorSpec,
    LabelStrategySpec,
    LossSpec,
    MethodRecipe,
    MethodSpec,
    MetricSpec,
    ProtocolSpec,
    ReportedNumber,
)
from ddr.records.jobs import JobResult, StudentJob
from ddr.records.run import EvaluationResult, RunSpec
from ddr.records.summary import Summary

__version__ = "0.1.0"

PROJECT_NAME = "ddr"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""The marker plugin authors decorate their hook functions with: ``@ddr.hookimpl``."""

__all__ = [
    "AmbiguousComponentError",
    "ArchitectureSpec",
    "ArtifactError",
    "AugmentationSpec",
    "ConfigError",
    "DataError",
    "DatasetSpec",
    "DdrError",
    "DistillContext",
    "DistilledSet",
    "DistilledSetError",
    "EvaluationResult",
    "ExecutorSpec",
    "InvalidSpecError",
    "JobResult",
    "LabelStrategySpec",
    "LossSpec",
    "Method",
    "MethodRecipe",
    "MethodSpec",
    "MetricSpec",
    "ParamSpec",
    "PluginLoadError",
    "ProtocolSpec",
    "ReportedNumber",
    "Resources",
    "RunSpec",
    "StudentJob",
    "Summary",
    "UnknownComponentError",
    "__version__",
    "evaluate",
    "hookimpl",
    "load_reported",
]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from ddr.runs.evaluate import evaluate

        return evaluate
    if name == "Resources":
        from ddr.resources.service import Resources

        return Resources
    raise AttributeError(f"module 'ddr' has no attribute {name!r}")
