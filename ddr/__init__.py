"""ddr: honest, reproducible, fast dataset-distillation evaluation.

This module is cheap to import (no torch): it exports the hook marker, the spec types and the
version. ``ddr.evaluate`` is imported lazily on first use.
"""

from __future__ import annotations

from typing import Any

import pluggy

from ddr.errors import DdrError
from ddr.plugin.specs import (
    ArchitectureSpec,
    AugmentationSpec,
    DatasetSpec,
    LabelStrategySpec,
    MethodRecipe,
    MethodSpec,
    ProtocolSpec,
)

__version__ = "0.1.0"

PROJECT_NAME = "ddr"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""The marker plugin authors decorate their hook functions with: ``@ddr.hookimpl``."""

__all__ = [
    "ArchitectureSpec",
    "AugmentationSpec",
    "DatasetSpec",
    "DdrError",
    "LabelStrategySpec",
    "MethodRecipe",
    "MethodSpec",
    "ProtocolSpec",
    "__version__",
    "evaluate",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from ddr.runs.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'ddr' has no attribute {name!r}")
