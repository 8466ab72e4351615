"""Contract checks for plugin authors: call one per component in your own tests.

``check_dataset``, ``check_architecture``, ``check_label_strategy``, ``check_loss``,
``check_augmentation`` and ``check_method`` each raise ``AssertionError`` naming what is wrong.
Imported lazily, so ``import ddr.testing`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_WHERE = {
    "check_dataset": "ddr.testing.datasets",
    "check_architecture": "ddr.testing.architectures",
    "check_label_strategy": "ddr.testing.labels",
    "check_loss": "ddr.testing.labels",
    "check_augmentation": "ddr.testing.augmentations",
    "check_method": "ddr.testing.methods",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ddr.testing' has no attribute {name!r}")
