"""The ``batched`` executor turns a group's out-of-memory error into a DdrError that says how to
make groups smaller. On the CPU the CUDA allocator's error is simulated: the group's training
raises ``torch.OutOfMemoryError`` (tests/gpu/test_cuda.py makes the allocator raise it for real)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from helpers.executors import digits_workspace, make_job, run

from ddr.errors import DdrError
from ddr.execute.batched import BatchedExecutor, _is_out_of_memory

CUDA_SAID = ("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
             "1.06 GiB is free.\nIncluding non-PyTorch memory, this process has 78.11 GiB memory in use.")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with digits_workspace(tmp_path_factory.mktemp("oom-cache")) as workspace:
        yield workspace


def _raise_in_training(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def train_group(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr("ddr.execute.group_training.train_group", train_group)


def test_out_of_memory_in_a_group_is_a_ddr_error_that_suggests_a_smaller_group(
        ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _raise_in_training(monkeypatch, torch.OutOfMemoryError(CUDA_SAID))
    jobs = [make_job(i, epochs=1) for i in range(3)]
    with pytest.raises(DdrError) as caught:
        run(BatchedExecutor(max_images_per_step=4096), jobs, ws)
    message = str(caught.value)
    # 3 jobs of one LR each, 100 images per step (IPC 10 x 10 classes, batch 256): 300 member-images
    assert "3 student jobs as one group of 3 members (300 member-images per training step" in message
    assert "CUDA out of memory. Tried to allocate 20.00 GiB" in message and "Including non-PyTorch" not in message
    assert "--executor-option max_images_per_step=150 (now 4096)" in message
    assert "--executor-option max_members=1 (now 64)" in message
    assert "eval_images_per_step=8192" in message and "--executor local" in message
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert caught.value.__cause__.__traceback__ is None  # the group's tensors are not held by the error


def test_another_runtime_error_is_not_called_out_of_memory(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _raise_in_training(monkeypatch, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as caught:
        run(BatchedExecutor(), [make_job(i, epochs=1) for i in range(2)], ws)
    assert not isinstance(caught.value, DdrError)


def test_the_out_of_memory_check_knows_torchs_class() -> None:
    assert _is_out_of_memory(torch.OutOfMemoryError("x")) and _is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert not _is_out_of_memory(RuntimeError("CUDA out of memory"))  # by class, not by message
    assert not _is_out_of_memory(MemoryError())
