"""Shared by the executor tests: a digits workspace, student jobs and a runner that checks order."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ddr.engine.data import Split
from ddr.engine.seeds import derive_seed
from ddr.engine.training import Recipe
from ddr.records.jobs import DataRef, JobResult, StudentJob
from ddr.runs.evaluate import Evaluator

IPC = 10
ARCH = {"width": 64}
SOFT_SET = "5" * 64


@contextmanager
def digits_workspace(cache: Path, device: str = "cpu") -> Iterator[Any]:
    """A digits workspace (pool, validation and test splits on ``device``, the CPU unless told) with
    one stored-soft set."""
    previous = os.environ.get("DDR_CACHE_DIR")
    os.environ["DDR_CACHE_DIR"] = str(cache)
    evaluator = Evaluator(dataset="digits", ipc=IPC, device=device, overrides={"real.epochs": 1})
    workspace = evaluator.workspace
    workspace.progress = lambda iterable, **_: iterable
    pool = workspace.pool
    index = torch.cat([idx[:IPC] for idx in pool.class_indices(10)])
    labels = pool.labels[index].clone()
    noise = torch.randn(len(index), 10, generator=torch.Generator().manual_seed(3)).to(labels.device)
    workspace.add_distilled(SOFT_SET, Split(labels=labels, images=pool.images[index].clone()),
                            noise + 4.0 * torch.nn.functional.one_hot(labels, 10).float())
    try:
        yield workspace
    finally:
        if previous is None:
            os.environ.pop("DDR_CACHE_DIR", None)
        else:
            os.environ["DDR_CACHE_DIR"] = previous


def make_job(index: int, *, role: str = "rdm_any", epochs: int = 15, lrs: Sequence[float] = (0.01,),
             selection: str = "last", test_interval: int = 0, strategy: str = "hard", loss: Any = None,
             augmentation: tuple[Any, ...] = ("dsa.noflip",), arch: str = "convnet",
             arch_params: dict[str, Any] | None = None, batch_size: int = 256, optimizer: str = "sgd") -> StudentJob:
    """A student job on random subset ``index`` (or, for ``stored_soft``, the stored-soft set)."""
    data = (DataRef("distilled", sha256=SOFT_SET, soft="stored") if strategy == "stored_soft"
            else DataRef("random", index=index, ipc=IPC))
    recipe = Recipe(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                    lr=lrs[0], weight_decay=5e-4 if optimizer != "adamw" else 0.01)
    return StudentJob(role=role, index=index, data=data, recipe=recipe, lr_candidates=tuple(float(x) for x in lrs),
                      selection=selection, test_interval=test_interval, label_strategy=strategy, loss=loss,
                      augmentation=augmentation, arch=arch, arch_params=dict(ARCH if arch_params is None else arch_params),
                      seed=derive_seed(0, role, index), needs_teacher=False, context={})


def run(executor: Any, jobs: list[StudentJob], ws: Any) -> tuple[list[JobResult], dict[str, Any]]:
    models: dict[str, Any] = {}

    def on_result(job: StudentJob, result: JobResult, model: Any) -> None:
        models[job.key] = model

    results = executor.run(jobs, ws, on_result)
    assert [r.key for r in results] == [j.key for j in jobs] and set(models) == {j.key for j in jobs}
    return results, models


def within_noise(local: list[JobResult], other: list[JobResult], *, each: float = 0.05,
                 mean: float = 0.02) -> list[float]:
    """Per-student accuracy deltas ``other - local``: each within ``each``, their mean within
    ``mean``; the same students (role, index, seed, epochs) and the local students learnt."""
    deltas = [b.accuracy - a.accuracy for a, b in zip(local, other)]
    print("accuracy deltas (other - local):", [round(d, 4) for d in deltas])
    assert max(abs(d) for d in deltas) <= each
    assert abs(sum(deltas) / len(deltas)) <= mean
    assert all(a.accuracy > 0.3 for a in local)  # the students learnt something: the comparison means something
    for a, b in zip(local, other):
        assert (b.role, b.index, b.seed, b.epochs_trained) == (a.role, a.index, a.seed, a.epochs_trained)
        assert b.seconds > 0 and b.peak_memory_bytes and b.peak_memory_bytes > 0
    return deltas
