"""Running one student job in this process: the per-job code every in-process executor shares.

For each LR candidate a fresh model (seeded with the job's seed), label strategy and augmentation
are built and trained with THE training loop (:func:`ddr.engine.training.train`); the reported
accuracy follows the job's selection rule (docs/protocol.md §2).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ddr.execute.measure import measure_student
from ddr.records.jobs import JobResult, StudentJob

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.execute.workspace import Workspace


class PeakMemory:
    """Peak memory of a piece of work: CUDA allocator peak on a GPU, else the process's max RSS."""

    def __init__(self, device: Any) -> None:
        import torch

        self.cuda = getattr(device, "type", str(device)) == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.device = device

    def read(self) -> int:
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(self.device))
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_job(job: StudentJob, ws: "Workspace", *, progress: Any = None, compile: bool = False,
            bf16: bool = False) -> tuple[JobResult, "torch.nn.Module"]:
    """Train and test ``job``'s student(s); returns the result and the reported student's model.

    With ``compile`` every candidate trains through ``torch.compile(model)``; tests run on the
    uncompiled module (it shares the parameters), which is also what is returned and kept.
    With ``bf16`` the training forward runs under bfloat16 autocast (tests stay float32).
    """
    from ddr.engine.build import label_strategy_spec
    from ddr.engine.seeds import torch_generator
    from ddr.engine.training import test_accuracy

    start = time.perf_counter()
    peak = PeakMemory(ws.device)
    data = ws.train_data(job.data)
    split = data.split
    strategy_teacher = label_strategy_spec(job.label_strategy, system=ws.system).needs_teacher
    teachers = ws.teachers() if strategy_teacher else []
    best: tuple[float, float, Any, float, Any] | None = None
    tried: dict[str, float] = {}
    for candidate in job.lr_candidates:
        model = ws.make_model(job.arch, job.arch_params, job.seed)
        strategy = ws.label_strategy(job.label_strategy, job.loss, hard_labels=split.labels,
                                     soft_labels=data.soft_labels, teachers=teachers)
        pipeline = ws.augmentation(job.augmentation)
        kwargs: dict[str, Any] = {}
        kept: dict[str, Any] = {}  # the reference keeps its best epoch's weights (DD-Ranking's real-data model)
        if job.selection == "ddranking":
            kwargs = {"evaluate_every": job.test_interval,
                      "evaluate": lambda m, kept=kept, plain=model: _tested(plain, ws, kept if job.role == "real" else None)}
        trained = _compiled(model) if compile else model
        result = _train(trained, data, job.recipe.with_lr(candidate), compile=compile,
                       generator=torch_generator(job.seed, ws.device), strategy=strategy, augmentation=pipeline,
                       device=ws.device, progress=progress, bf16=bf16, **kwargs)
        test_acc: float | None
        if job.selection == "ddranking":
            score = test_acc = max(acc for _, acc in result.evaluations)
            if "state" in kept:
                model.load_state_dict(kept["state"])
        elif job.selection == "validation" and len(job.lr_candidates) > 1:
            score, test_acc = test_accuracy(model, ws.validation, device=ws.device), None
        else:
            score = test_acc = test_accuracy(model, ws.test, device=ws.device)
        tried[repr(candidate)] = score
        if best is None or score > best[0]:
            if test_acc is None:
                test_acc = test_accuracy(model, ws.test, device=ws.device)
            best = (score, candidate, result, test_acc, model)
    assert best is not None
    _, chosen, result, test_acc, model = best
    info: dict[str, Any] = {}
    if len(job.lr_candidates) > 1:
        info = {"mode": job.selection, "scores_by_lr": tried, "chosen_lr": chosen}
    if job.selection == "ddranking":
        info["best_on_test"] = True
        info["test_interval"] = job.test_interval
        info["best_epoch"] = max(result.evaluations, key=lambda e: e[1])[0]
    measured = measure_student(job, model, ws)  # before the model leaves this job (docs: student metrics)
    return JobResult(key=job.key, role=job.role, index=job.index, seed=job.seed, accuracy=float(test_acc),
                     lr=float(chosen), epochs_trained=result.epochs_trained, seconds=time.perf_counter() - start,
                     peak_memory_bytes=peak.read(), selection=info, metrics=measured), model


def _compiled(model: "torch.nn.Module") -> "torch.nn.Module":
    import torch

    return torch.compile(model)  # type: ignore[return-value, unused-ignore]


def _train(trained: "torch.nn.Module", *args: Any, compile: bool, **kwargs: Any) -> Any:
    """THE training loop; with ``compile``, a failure of the compiler itself (no C++ toolchain,
    an unsupported platform) becomes a DdrError that says what to use instead."""
    from ddr.engine.training import train

    try:
        return train(trained, *args, **kwargs)
    except Exception as exc:
        if compile and type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
            from ddr.errors import DdrError

            raise DdrError(f"torch.compile failed here ({type(exc).__name__}: {str(exc)[:300]}); "
                           "use --executor local") from exc
        raise


def _tested(model: "torch.nn.Module", ws: "Workspace", kept: dict[str, Any] | None) -> float:
    """Test accuracy (fraction) of ``model`` now; with ``kept``, a copy of the weights of the best
    epoch so far is kept there under ``state`` (the first of equal accuracies, like ``max``)."""
    from ddr.engine.training import test_accuracy

    accuracy = test_accuracy(model, ws.test, device=ws.device)
    if kept is not None and accuracy > kept.get("accuracy", -1.0):
        kept["accuracy"] = accuracy
        kept["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return accuracy
