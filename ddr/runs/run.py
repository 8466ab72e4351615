"""``ddr run``: distill with a method plugin, then evaluate the result under the protocol.

The distilled set is cached by a content key (method, its version and provider, resolved
parameters, dataset, ipc, seed, the training pool and student architecture), so running the same
spec again skips distillation and says so. Evaluation always reuses :class:`ddr.runs.evaluate.Evaluator`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.method.distilled import DistilledSet
    from ddr.runs.evaluate import EvaluationResult, Evaluator

DISTILL_FORMAT_VERSION = 1


@dataclass
class DistillOutcome:
    distilled: "DistilledSet"
    key: str
    cached: bool
    seconds: float
    method: str
    params: dict[str, Any]


def _model_seeds(seed: int) -> Any:
    """An endless, deterministic stream of integer seeds for the networks a method builds."""
    import numpy as np

    from ddr.engine.seeds import derive_seed

    rng = np.random.default_rng(derive_seed(seed, "method_models"))
    while True:
        yield int(rng.integers(0, 2**62))


def build_context(evaluator: "Evaluator", *, ipc: int, seed: int, params: dict[str, Any],
                  teacher: bool = False) -> Any:
    """The :class:`~ddr.method.context.DistillContext` a method receives."""
    from ddr.engine.build import build_augmentations
    from ddr.method.context import DistillContext
    from ddr.engine.seeds import derive_seed, torch_generator
    from ddr.engine.training import Recipe, TrainData, train

    seeds = _model_seeds(seed)
    method_seed = derive_seed(seed, "method")
    generator = torch_generator(method_seed, evaluator.device)
    arch, _ = evaluator.student_arch()

    def make_model(arch: str | None = None, **model_params: Any) -> "torch.nn.Module":
        return evaluator.make_model(next(seeds), arch, model_params or None)

    def train_model(model: "torch.nn.Module", images: "torch.Tensor", labels: "torch.Tensor", *, epochs: int,
                    lr: float = 0.01, batch_size: int = 256, optimizer: str = "sgd", momentum: float = 0.9,
                    weight_decay: float = 5e-4, schedule: str = "step", augmentation: Any = None) -> "torch.nn.Module":
        from ddr.engine.data import Split

        recipe = Recipe(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, epochs=epochs,
                        batch_size=batch_size, schedule=schedule)
        recipe.check()
        strategy = evaluator.make_label_strategy("hard", None, hard_labels=labels, soft_labels=None, teachers=[])
        pipeline = augmentation
        if isinstance(augmentation, (str, list, tuple)):
            pipeline = build_augmentations([augmentation] if isinstance(augmentation, str) else augmentation,
                                           system=evaluator.system)
        train(model, TrainData(Split(labels=labels, images=images)), recipe,
              generator=torch_generator(next(seeds), evaluator.device), strategy=strategy,
              augmentation=pipeline, device=evaluator.device)
        return model

    def augmentation(name: str, **aug_params: Any) -> Any:
        return build_augmentations([{"name": name, **aug_params}], system=evaluator.system).augmentations[0]

    def teacher_factory() -> "torch.nn.Module":
        return evaluator.teachers()[0]

    return DistillContext(
        dataset=evaluator.dataset, train=evaluator.pool, ipc=ipc, num_classes=evaluator.dataset.num_classes,
        generator=generator, seed=method_seed, device=evaluator.device, params=params, arch=arch,
        make_model=make_model, train_model=train_model, augmentation=augmentation,
        teacher=teacher_factory if teacher else None, progress=evaluator.progress,
    )


def distill(method: str, evaluator: "Evaluator", *, ipc: int, seed: int, overrides: Mapping[str, Any] | None = None,
            use_cache: bool = True, log: Any = None) -> DistillOutcome:
    """Run (or fetch from the cache) the distillation of ``method``."""
    from ddr.method.distilled import DistilledSet
    from ddr.store.formats import load_distilled, save_distilled
    from ddr.store.cache import entry_dir
    from ddr.store.hashing import sha256_json

    log = log or (lambda message: None)
    system = evaluator.system
    registry = system.methods()
    resolved = registry.resolve(method, dict(overrides or {}))
    spec = resolved.spec
    dist, version = system.provenance().get(spec.provider or "", ("", ""))
    arch, arch_params = evaluator.student_arch()
    key = sha256_json({
        "format": DISTILL_FORMAT_VERSION, "method": spec.name, "method_version": spec.version,
        "provider": spec.provider, "distribution": dist, "distribution_version": version,
        "params": resolved.params, "dataset": evaluator.dataset.name,
        "dataset_version": evaluator.dataset_spec().version, "pixel_space": evaluator.dataset.pixel_space,
        "ipc": ipc, "seed": seed, "arch": arch, "arch_params": arch_params,
        "validation_per_class": evaluator.protocol.get("validation_per_class"),
    })
    folder = entry_dir("distilled", key)
    if use_cache and (folder / "meta.json").exists():
        try:
            distilled = load_distilled(folder)
            log(f"distilled set found in the cache ({folder}); skipping distillation")
            return DistillOutcome(distilled, key, True, float(distilled.meta.get("distill_seconds", 0.0)),
                                  resolved.name, resolved.params)
        except DdrError:
            log(f"cache entry {folder} is unreadable; distilling again")
    target = registry.materialize(spec)
    ctx = build_context(evaluator, ipc=ipc, seed=seed, params=dict(resolved.params), teacher=spec.needs_teacher)
    peak = _PeakMemory(evaluator.device)
    start = time.perf_counter()
    try:
        instance = target()
        distilled = instance.distill(ctx)
    except DdrError:
        raise
    except Exception as exc:
        raise DdrError(f"method '{resolved.name}' (plugin '{spec.provider}', {dist} {version}) failed: "
                       f"{type(exc).__name__}: {exc}\n  rerun with --debug for the traceback") from exc
    seconds = time.perf_counter() - start
    if not isinstance(distilled, DistilledSet):
        raise DdrError(f"method '{resolved.name}' returned {type(distilled).__name__}, not a DistilledSet")
    distilled.meta.update({
        "method": spec.name, "method_ref": resolved.name, "method_version": spec.version, "provider": spec.provider,
        "distribution": dist, "distribution_version": version, "params": resolved.params,
        "dataset": evaluator.dataset.name, "ipc": ipc, "seed": seed, "distill_seconds": seconds,
        "peak_memory_bytes": peak.read(), "distill_key": key,
    })
    if distilled.label_strategy is None:
        distilled.label_strategy = spec.label_strategy
    if use_cache:
        save_distilled(distilled, folder)
    return DistillOutcome(distilled, key, False, seconds, resolved.name, resolved.params)


class _PeakMemory:
    """Peak memory during distillation: CUDA allocator peak on a GPU, else process max RSS."""

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


def run(method: str, *, dataset: str = "digits", ipc: int = 1, seed: int = 0, method_overrides: Mapping[str, Any] | None = None,
        iterations: int | None = None, out: str | Path | None = None, save_distilled_to: str | Path | None = None,
        use_cache: bool = True, log: Any = None, **evaluator_options: Any) -> tuple["EvaluationResult", DistillOutcome]:
    """Distill with ``method`` then evaluate; returns (evaluation result, distillation outcome)."""
    from ddr.store.formats import save_distilled
    from ddr.runs.evaluate import Evaluator
    from ddr.plugin.manager import get_plugin_system

    system = evaluator_options.pop("system", None) or get_plugin_system()
    system.require_healthy()
    spec = system.methods().get(method)
    overrides = dict(method_overrides or {})
    if iterations is not None:
        overrides["iterations"] = iterations
    evaluator = Evaluator(dataset=dataset, ipc=ipc, seed=seed, system=system, log=log,
                          method_protocol=spec.protocol, **evaluator_options)
    run_spec = {"method": method, "method_params": None}
    system.pm.hook.ddr_run_start(run={"method": method, "dataset": dataset, "ipc": ipc, "seed": seed})
    try:
        outcome = distill(method, evaluator, ipc=ipc, seed=seed, overrides=overrides, use_cache=use_cache, log=log)
        if save_distilled_to is not None:
            save_distilled(outcome.distilled, Path(save_distilled_to))
        run_spec = {"method": outcome.method, "method_params": outcome.params, "distill_key": outcome.key}
        result = evaluator.evaluate(outcome.distilled, method_strategy=spec.label_strategy, run_spec=run_spec)
    except BaseException as exc:
        system.pm.hook.ddr_run_error(run=run_spec, error=exc)
        raise
    extra = {"method": outcome.method, "method_params": outcome.params, "distill_seconds": round(outcome.seconds, 3),
             "distill_cached": outcome.cached,
             "distill_peak_memory_bytes": outcome.distilled.meta.get("peak_memory_bytes")}
    result.run_spec.update({k: v for k, v in extra.items() if k in ("method", "method_params")})
    result.extra.update(extra)
    if out is not None:
        from ddr.store.records import record_folder, write_records

        folder = record_folder(Path(out), f"{outcome.method}-{evaluator.dataset.name}-ipc{ipc}-seed{seed}",
                               result.run_spec)
        result.record_dir = str(write_records(folder, result, system).resolve())
    system.pm.hook.ddr_run_finish(run=result.run_spec, result=result.to_json())
    return result, outcome
