"""Fixtures for method tests: a real :class:`ddr.method.context.DistillContext` on the digits dataset.

``distill_context(params=..., ipc=..., seed=...)`` builds the context ``ddr run`` gives a method
(:func:`ddr.runs.distill.build_context`): the digits training pool (16x16 grey, 10 classes, the protocol's
validation images held out), on the CPU, with the core's ``make_model`` and ``train_model``. The
student is a small ConvNet (depth 2, width 16) so that feature networks train in about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from ddr.method.context import DistillContext

TEST_CONVNET = {"depth": 2, "width": 16}


@pytest.fixture
def distill_context() -> Callable[..., DistillContext]:
    """Factory: ``distill_context(params=None, *, ipc=1, seed=0) -> DistillContext`` on digits (CPU)."""
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import Evaluator

    torch.set_num_threads(1)
    evaluators: dict[int, Evaluator] = {}

    def build(params: dict[str, Any] | None = None, *, ipc: int = 1, seed: int = 0) -> DistillContext:
        # The evaluator's own ipc only bounds its validation split; 1 lets tests ask a method for
        # more images than a class holds and see the method's own error.
        if seed not in evaluators:
            evaluators[seed] = Evaluator(dataset="digits", ipc=1, seed=seed, device="cpu", arch="convnet",
                                         arch_params=TEST_CONVNET, overrides={"real.epochs": 2})
        return build_context(evaluators[seed].resources, ipc=ipc, params=dict(params or {}))

    return build
