"""``local.compiled`` (THE loop through ``torch.compile``) and ``local.bf16`` (its forward under
bfloat16 autocast): numbers within noise of plain ``local``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from helpers.executors import digits_workspace, make_job, run, within_noise

from ddr.errors import ConfigError, DdrError
from ddr.execute.local import LocalExecutor


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with digits_workspace(tmp_path_factory.mktemp("compiled-cache")) as workspace:
        yield workspace


def test_the_preset_is_registered_and_bad_values_are_config_errors() -> None:
    from ddr.plugin.manager import PluginSystem

    executors = PluginSystem().executors()
    assert executors.resolve("local.compiled").params == {"compile": True}
    assert executors.resolve("local.bf16").params == {"bf16": True}
    assert LocalExecutor(compile=True).compile is True and LocalExecutor().compile is False
    assert LocalExecutor(bf16=True).bf16 is True and LocalExecutor().bf16 is False
    with pytest.raises(ConfigError, match="compile must be true or false"):
        LocalExecutor(compile="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="bf16 must be true or false"):
        LocalExecutor(bf16=1)  # type: ignore[arg-type]


def raising_stand_in(error: Exception) -> type[torch.nn.Module]:
    """A stand-in for ``torch.compile(model)`` whose forward raises ``error``."""
    class StandIn(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise error

    return StandIn


def test_a_compiler_failure_is_a_ddr_error_that_names_the_way_out(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class BackendCompilerFailed(RuntimeError):
        __module__ = "torch._dynamo.exc"

    monkeypatch.setattr("ddr.execute.student._compiled",
                        raising_stand_in(BackendCompilerFailed("backend='inductor' raised: no C++ compiler")))
    with pytest.raises(DdrError, match=r"torch.compile failed here \(BackendCompilerFailed.*use --executor local"):
        run(LocalExecutor(compile=True), [make_job(0, epochs=1)], ws)


def test_an_ordinary_training_error_is_not_blamed_on_the_compiler(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ddr.execute.student._compiled", raising_stand_in(ValueError("a shape problem of the model's own")))
    with pytest.raises(ValueError, match="a shape problem"):
        run(LocalExecutor(compile=True), [make_job(0, epochs=1)], ws)


@pytest.mark.slow
def test_compiled_students_are_within_noise_of_local(ws: Any) -> None:
    """4 hard students (15 epochs) and 2 DD-Ranking LR searches (2 candidates, best of every 3
    epochs): the compiled loop's per-student accuracies within 0.05 of the eager loop's."""
    jobs = [make_job(i, epochs=15) for i in range(4)]
    jobs += [make_job(10 + i, epochs=6, lrs=(0.01, 0.05), selection="ddranking", test_interval=3) for i in range(2)]
    local, _ = run(LocalExecutor(), jobs, ws)
    compiled, models = run(LocalExecutor(compile=True), jobs, ws)
    within_noise(local, compiled)
    for model in models.values():  # what callers get back is the plain module, not the compiled wrapper
        assert not hasattr(model, "_orig_mod")
    assert [r.selection for r in compiled][4:] and all(r.selection["best_on_test"] for r in compiled[4:])


def test_bf16_students_are_within_noise_of_local(ws: Any) -> None:
    """3 hard students (15 epochs) and one DD-Ranking LR search: bf16 autocast within 0.05."""
    jobs = [make_job(i, epochs=15) for i in range(3)]
    jobs.append(make_job(10, epochs=6, lrs=(0.01, 0.05), selection="ddranking", test_interval=3))
    local, _ = run(LocalExecutor(), jobs, ws)
    low, _ = run(LocalExecutor(bf16=True), jobs, ws)
    within_noise(local, low)
