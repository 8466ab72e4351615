"""``ddr run`` and ``ddr eval`` as functions: distill (or load), evaluate, write the run record,
and tell observer plugins (``ddr_run_start``/``finish``/``error``) with typed records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.records.run import EvaluationResult, RunSpec
from ddr.resources.session import Session, captured_log
from ddr.runs.cost import evaluation_cost, storage_bytes
from ddr.runs.evaluate import EvalOptions, Evaluator, external_set

if TYPE_CHECKING:  # pragma: no cover
    from ddr.runs.distill import DistillOutcome, MethodChoice


def observed(session: Session, spec: RunSpec, work: Callable[[], EvaluationResult]) -> EvaluationResult:
    """Run ``work`` between ``ddr_run_start`` and ``ddr_run_finish`` (``ddr_run_error`` on failure)."""
    session.hook.ddr_run_start(run=spec)
    try:
        with captured_log() as lines:
            session.run_log = lines
            result = work()
    except BaseException as exc:
        session.hook.ddr_run_error(run=spec, error=exc)
        raise
    session.hook.ddr_run_finish(run=spec, result=result)
    return result


def _write_record(result: EvaluationResult, out: str | Path | None, label: str, session: Session,
                  hashed: Mapping[str, Any], folder: str | Path | None = None) -> None:
    """Write the record under ``out`` (folder named by ``label`` and the hash of ``hashed``), or
    into ``folder`` when given (a suite names its units' folders before running them)."""
    if out is None and folder is None:
        return
    from ddr.store.records import record_folder, run_id_of, write_records

    target = Path(folder) if folder is not None else record_folder(Path(str(out)), label, dict(hashed))
    log_text = "\n".join(session.run_log) + "\n" if session.run_log is not None else None
    result.record_dir = str(write_records(target, result, session.system, extra_metrics={"run_id": run_id_of(
        dict(hashed))}, log_text=log_text).resolve())
    add_to_results_db(Path(result.record_dir), session, suite=hashed.get("suite"))


def add_to_results_db(folder: Path, session: Session, suite: str | None = None) -> None:
    """Add a written record to the results database (``ddr results``); the record folder stays
    the primary copy, so a database that cannot be written is a warning, not a lost run."""
    from ddr.errors import DdrError
    from ddr.store.results import ResultsDB

    try:
        with ResultsDB(session.results_db) as db:
            db.add_record(folder, suite=suite, origin="local")  # computed here, whatever the row was
    except DdrError as exc:
        session.log(f"warning: the run record {folder} is complete, but adding it to the results database failed "
                    f"({exc}); add it later with `ddr results import {folder}`")


def prepare_distillation(method: str, options: EvalOptions, session: Session,
                         method_overrides: Mapping[str, Any] | None = None) -> "tuple[MethodChoice, EvalOptions, Evaluator]":
    """The resolved method, the options it is evaluated under (:func:`evaluation_options`) and the
    evaluator of its distillation."""
    from ddr.runs.distill import resolve_method

    choice = resolve_method(session.system, method, options.dataset, method_overrides, ipc=options.ipc)
    o = evaluation_options(choice, options)
    return choice, o, Evaluator(o, session=session)


def evaluation_options(choice: "MethodChoice", options: EvalOptions) -> EvalOptions:
    """``options`` with what the method asks of its evaluation, under the user's own choices: its
    ``protocol_overrides``, then its recipe for the (dataset, IPC) (protocol settings, ZCA, a
    protocol), then the user's ``--set`` / ``--zca`` / ``--no-zca`` / ``--protocol``, which always
    win. ``zca`` comes out a bool; ``method_protocol`` is the recipe's protocol or the method's."""
    recipe = choice.recipe
    o = options
    needs = {**dict(choice.spec.protocol_overrides), **(dict(recipe.protocol_overrides) if recipe else {})}
    if needs:
        o = replace(o, overrides={**needs, **dict(o.overrides)})
    if o.zca is None:
        o = replace(o, zca=bool(recipe is not None and recipe.zca))
    method_protocol = recipe.protocol if recipe is not None and recipe.protocol else choice.spec.protocol
    return replace(o, method_protocol=method_protocol)


def describe_recipe(choice: "MethodChoice", dataset: str, ipc: int | None) -> str | None:
    """The line ``ddr run`` prints when a method's recipe applies (None when none does)."""
    recipe = choice.recipe
    if recipe is None:
        return None
    return (f"{choice.spec.name}: the authors' '{recipe.name}' recipe for {dataset} IPC {ipc} ({recipe.summary()}); "
            f"source: {recipe.source}. --set method.KEY, --zca/--no-zca, --protocol and --set KEY override it")


def run(method: str, *, options: EvalOptions | None = None, session: Session | None = None,
        method_overrides: Mapping[str, Any] | None = None, out: str | Path | None = None,
        save_distilled_to: str | Path | None = None, use_cache: bool = True,
        auto_assets: bool = True, eval_arch: str | None = None, record_dir: str | Path | None = None,
        spec_extra: Mapping[str, Any] | None = None, timeout: float | None = None,
        estimate: bool = False, **option_fields: Any) -> tuple[EvaluationResult, "DistillOutcome"]:
    """Distill with ``method`` then evaluate; returns (evaluation result, distillation outcome).

    ``options`` (or ``option_fields``, :class:`EvalOptions` fields) say what to evaluate;
    ``method_overrides`` are ``--set method.KEY=VALUE`` values. With ``eval_arch`` the set is
    distilled as usual (with ``options.arch``, the protocol's by default) and evaluated on
    students of ``eval_arch``, each scored against that architecture's own real-data and random
    students (cross-architecture generalisation). ``record_dir`` writes the record into that
    folder instead of one named under ``out``; ``spec_extra`` is added to ``run_spec.json``
    (a suite's name). ``timeout`` stops the distillation after that many seconds (``--timeout``).
    ``estimate`` logs what the run will cost before it starts (:mod:`ddr.runs.estimate`).
    """
    from ddr.runs.distill import distill, save_copy

    session = session or Session()
    session.system.require_healthy()
    o = options or EvalOptions()
    if option_fields:
        o = replace(o, **option_fields)
    choice, o, evaluator = prepare_distillation(method, o, session, method_overrides)
    spec = RunSpec(command="run", method=method, method_params=dict(method_overrides or {}), source=None,
                   dataset=o.dataset, ipc=o.ipc, protocol=o.protocol, seed=o.seed, executor=o.executor,
                   device=o.device, overrides=o.protocol_overrides())
    student_evaluator = evaluator
    if eval_arch is not None:
        session.system.architectures().resolve(eval_arch)  # a misspelt architecture fails before distilling
        if eval_arch != evaluator.resources.student_arch()[0]:  # the distillation's own arch keeps the protocol's params
            student_evaluator = Evaluator(replace(o, arch=eval_arch),
                                          session=session)
    for target in (out, Path(record_dir).parent if record_dir is not None else None):
        if target is not None:
            from ddr.store.records import check_writable

            check_writable(Path(target))
    if save_distilled_to is not None:
        from ddr.runs.distill import check_save_target

        check_save_target(Path(save_distilled_to))
    outcome_box: list[DistillOutcome] = []

    def work() -> EvaluationResult:
        recipe_line = describe_recipe(choice, o.dataset, o.ipc)
        if recipe_line:
            session.log(recipe_line)
        if choice.budget:
            session.log(f"{choice.spec.name}: the '{choice.budget}' budget of dataset {o.dataset} "
                        f"({', '.join(f'{k}={v}' for k, v in (choice.budget_params or {}).items())}); "
                        f"{choice.spec.name}.paper or --set method.KEY=VALUE overrides it")
        student_evaluator.announce_protocol()
        if estimate:
            from ddr.runs.estimate import announce, estimate_run

            announce(session, estimate_run(choice, student_evaluator, use_cache=use_cache, distill_evaluator=evaluator))
        session.stage(f"distill · {choice.name} · {o.dataset} · IPC {o.ipc} · seed {o.seed}")
        outcome = distill(choice, evaluator.resources, evaluator.ipc, use_cache=use_cache, auto_assets=auto_assets,
                          timeout=timeout)
        outcome_box.append(outcome)
        if save_distilled_to is not None:
            save_copy(outcome, Path(save_distilled_to))
        run_spec = {"method": outcome.method, "method_params": outcome.params, "distill_key": outcome.key,
                    "budget": outcome.budget, **dict(spec_extra or {})}
        if choice.recipe is not None:
            run_spec["recipe"] = {"name": choice.recipe.name, "source": choice.recipe.source}
        if eval_arch is not None:
            run_spec["distill_arch"] = evaluator.resources.student_arch()[0]
        result = student_evaluator.evaluate(outcome.distilled, method_strategy=choice.spec.label_strategy,
                                            run_spec=run_spec)
        result.extra.update({
            "method": outcome.method, "method_params": outcome.params, "budget": outcome.budget,
            "distill_seconds": round(outcome.seconds, 3), "distill_cached": outcome.cached,
            "distill_peak_memory_bytes": outcome.distilled.meta.get("peak_memory_bytes"),
            "storage_bytes": storage_bytes(outcome.distilled),
            "cost": evaluation_cost(result, outcome.distilled, student_evaluator.resources, outcome.cost),
        })
        label = f"{outcome.method}-{evaluator.resources.dataset.name}-ipc{o.ipc}-seed{o.seed}"
        if eval_arch is not None:
            label += f"-{eval_arch}"
        _write_record(result, out, label, session, result.run_spec, folder=record_dir)
        return result

    result = observed(session, spec, work)
    return result, outcome_box[0]


def eval_path(path: str | Path, *, options: EvalOptions, session: Session | None = None,
              out: str | Path | None = None, resize: bool = False,
              pixel_space: str | None = None, estimate: bool = False) -> EvaluationResult:
    """``ddr eval``: load a distilled set (any known layout), evaluate it, write its record
    (``estimate``: log what it will cost first)."""
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
        if estimate:
            from ddr.runs.estimate import announce, estimate_distilled

            announce(session, estimate_distilled(distilled, evaluator, resize=resize))
        # the pixel space a .pt set was read in (when chosen) lets `ddr export` read it again the same way
        result = evaluator.evaluate(distilled, resize=resize, run_spec={
            "source": str(path), **({"pixel_space": pixel_space} if pixel_space else {})})
        result.extra["storage_bytes"] = storage_bytes(distilled)
        result.extra["cost"] = evaluation_cost(result, distilled, evaluator.resources, None)
        result.extra["external_set"] = external_set(distilled)
        _write_record(result, out, f"eval-{options.dataset}-ipc{ipc}-seed{options.seed}", session,
                      {**result.run_spec, "distilled_sha256": result.distilled_sha256})
        return result

    return observed(session, spec, work)
