"""``ddr run`` and ``ddr eval`` as functions: distill (or load), evaluate, write the run record,
and tell observer plugins (``ddr_run_start``/``finish``/``error``) with typed records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.runs.evaluate import EvalOptions, Evaluator
from ddr.runs.records import EvaluationResult, RunSpec
from ddr.runs.session import Session

if TYPE_CHECKING:  # pragma: no cover
    from ddr.runs.distill import DistillOutcome


def observed(session: Session, spec: RunSpec, work: Callable[[], EvaluationResult]) -> EvaluationResult:
    """Run ``work`` between ``ddr_run_start`` and ``ddr_run_finish`` (``ddr_run_error`` on failure)."""
    session.hook.ddr_run_start(run=spec)
    try:
        result = work()
    except BaseException as exc:
        session.hook.ddr_run_error(run=spec, error=exc)
        raise
    session.hook.ddr_run_finish(run=spec, result=result)
    return result


def _write_record(result: EvaluationResult, out: str | Path | None, label: str, session: Session,
                  hashed: Mapping[str, Any]) -> None:
    if out is None:
        return
    from ddr.store.records import record_folder, write_records

    folder = record_folder(Path(out), label, dict(hashed))
    result.record_dir = str(write_records(folder, result, session.system).resolve())


def run(method: str, *, options: EvalOptions | None = None, session: Session | None = None,
        method_overrides: Mapping[str, Any] | None = None, out: str | Path | None = None,
        save_distilled_to: str | Path | None = None, use_cache: bool = True,
        auto_assets: bool = True, **option_fields: Any) -> tuple[EvaluationResult, "DistillOutcome"]:
    """Distill with ``method`` then evaluate; returns (evaluation result, distillation outcome).

    ``options`` (or ``option_fields``, :class:`EvalOptions` fields) say what to evaluate;
    ``method_overrides`` are ``--set method.KEY=VALUE`` values.
    """
    from ddr.runs.distill import distill, resolve_method
    from ddr.store.formats import save_distilled

    session = session or Session()
    system = session.system
    system.require_healthy()
    o = options or EvalOptions()
    if option_fields:
        o = replace(o, **option_fields)
    choice = resolve_method(system, method, o.dataset, method_overrides)
    if choice.spec.protocol_overrides:  # what the method needs, under the user's own overrides
        o = replace(o, overrides={**dict(choice.spec.protocol_overrides), **dict(o.overrides)})
    spec = RunSpec(command="run", method=method, method_params=dict(method_overrides or {}), source=None,
                   dataset=o.dataset, ipc=o.ipc, protocol=o.protocol, seed=o.seed, executor=o.executor,
                   device=o.device, overrides=o.protocol_overrides())
    evaluator = Evaluator(replace(o, method_protocol=choice.spec.protocol), session=session)
    if out is not None:
        from ddr.store.records import check_writable

        check_writable(Path(out))
    outcome_box: list[DistillOutcome] = []

    def work() -> EvaluationResult:
        if choice.budget:
            session.log(f"{choice.spec.name}: the '{choice.budget}' budget of dataset {o.dataset} "
                        f"({', '.join(f'{k}={v}' for k, v in (choice.budget_params or {}).items())}); "
                        f"{choice.spec.name}.paper or --set method.KEY=VALUE overrides it")
        outcome = distill(choice, evaluator, use_cache=use_cache, auto_assets=auto_assets)
        outcome_box.append(outcome)
        if save_distilled_to is not None:
            save_distilled(outcome.distilled, Path(save_distilled_to))
        run_spec = {"method": outcome.method, "method_params": outcome.params, "distill_key": outcome.key,
                    "budget": outcome.budget}
        result = evaluator.evaluate(outcome.distilled, method_strategy=choice.spec.label_strategy, run_spec=run_spec)
        result.extra.update({
            "method": outcome.method, "method_params": outcome.params, "budget": outcome.budget,
            "distill_seconds": round(outcome.seconds, 3), "distill_cached": outcome.cached,
            "distill_peak_memory_bytes": outcome.distilled.meta.get("peak_memory_bytes"),
            "storage_bytes": storage_bytes(outcome.distilled),
        })
        _write_record(result, out, f"{outcome.method}-{evaluator.dataset.name}-ipc{o.ipc}-seed{o.seed}", session,
                      result.run_spec)
        return result

    result = observed(session, spec, work)
    return result, outcome_box[0]


def eval_path(path: str | Path, *, options: EvalOptions, session: Session | None = None,
              out: str | Path | None = None, resize: bool = False,
              pixel_space: str | None = None) -> EvaluationResult:
    """``ddr eval``: load a distilled set (any known layout), evaluate it, write its record."""
    from ddr.store.formats import load_any

    session = session or Session()
    session.system.require_healthy()
    if out is not None:
        from ddr.store.records import check_writable

        check_writable(Path(out))
    spec = RunSpec(command="eval", method=None, method_params={}, source=str(path), dataset=options.dataset,
                   ipc=options.ipc, protocol=options.protocol, seed=options.seed, executor=options.executor,
                   device=options.device, overrides=options.protocol_overrides())

    def work() -> EvaluationResult:
        num_classes = session.load_dataset(options.dataset, download=options.download).num_classes
        space = pixel_space or ("zca" if options.zca else None)
        distilled = load_any(Path(path), session.system, num_classes=num_classes, ipc=options.ipc, pixel_space=space)
        ipc = options.ipc if options.ipc is not None else int(distilled.labels.bincount().max())
        evaluator = Evaluator(replace(options, ipc=ipc), session=session)
        result = evaluator.evaluate(distilled, resize=resize, run_spec={"source": str(path)})
        result.extra["storage_bytes"] = storage_bytes(distilled)
        _write_record(result, out, f"eval-{options.dataset}-ipc{ipc}-seed{options.seed}", session,
                      {**result.run_spec, "distilled_sha256": result.distilled_sha256})
        return result

    return observed(session, spec, work)


def storage_bytes(distilled: Any) -> dict[str, int]:
    """Bytes of the distilled set's images and soft labels as stored (float32)."""
    images = int(distilled.images.numel()) * 4
    soft = int(distilled.soft_labels.numel()) * 4 if distilled.soft_labels is not None else 0
    return {"images": images, "soft_labels": soft}
