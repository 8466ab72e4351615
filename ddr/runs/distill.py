"""Distillation: resolve a method and its parameters, build its context, run it (or fetch the
distilled set from the cache).

Parameters are resolved as: schema defaults < the dataset's budget preset (``reduced`` on
digits, when the method has one and no preset is named) or the named preset (``dm.paper``)
< ``--set method.KEY``; every
key and value is checked against the method's schema first. The distilled set is cached by a
content key (method, its version and distribution, resolved parameters, dataset, ipc, seed,
training pool, student architecture and, for a teacher-based method, the teacher), so the same
spec distils once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError, DistilledSetError

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import torch

    from ddr.execute import RemoteExecutor, TaskRunner
    from ddr.method.context import DistillContext, Method
    from ddr.method.distilled import DistilledSet
    from ddr.plugin.registry import Resolved
    from ddr.resources.service import Resources
    from ddr.runs.cost import DistillCost, DistillMeter

DISTILL_FORMAT_VERSION = 1


@dataclass
class DistillOutcome:
    """A distilled set and how it was obtained (``cached``: read from the cache; ``seconds``:
    distillation wall time; ``cost``: what the distillation cost, the original one's for a
    cached set, :class:`ddr.runs.cost.DistillCost`)."""

    distilled: "DistilledSet"
    key: str
    cached: bool
    seconds: float
    method: str
    params: dict[str, Any]
    budget: str | None = None
    budget_params: dict[str, Any] | None = None
    stored_at: "Path | None" = None
    """Where the set is on disk: its cache entry, a rescue folder, or ``None`` (only in memory)."""
    cost: "DistillCost | None" = None


@dataclass(frozen=True)
class MethodChoice:
    """A method reference resolved against its schema: spec, canonical name, parameters, the
    dataset budget applied (its name and the parameters it set) and the authors' recipe for the
    run's (dataset, IPC), when the method declares one."""

    resolved: "Resolved[Any]"
    params: dict[str, Any]
    budget: str | None
    budget_params: dict[str, Any] | None
    recipe: Any = None

    @property
    def spec(self) -> Any:
        return self.resolved.spec

    @property
    def name(self) -> str:
        return self.resolved.name


def resolve_method(system: Any, method: str, dataset: str, overrides: Mapping[str, Any] | None = None,
                   ipc: int | None = None) -> MethodChoice:
    """Resolve ``method`` (``dm``, ``dm.paper``) for ``dataset`` at ``ipc``. Parameters, later
    winning: the schema's defaults, the dataset's budget preset, the method's recipe for the
    (dataset, IPC), a named preset (``dm.paper``), the user's ``--set method.KEY``."""
    registry = system.methods()
    resolved = registry.resolve(method)
    spec = resolved.spec
    user = spec.check_params(dict(overrides or {}))
    budget = system.datasets().get(dataset).budget
    # a named preset (dm.smoke, dm.paper) says the whole budget: the dataset's is not mixed in
    use_budget = budget and budget in spec.presets and resolved.preset is None
    budget_params = dict(spec.presets[budget]) if use_budget else None
    recipe = spec.recipe_for(dataset, ipc) if ipc is not None else None
    params = dict(spec.defaults)
    params.update(budget_params or {})
    if recipe is not None:
        params.update(recipe.params)
    if resolved.preset is not None:
        params.update(spec.presets[resolved.preset])
    params.update(user)
    resolved = type(resolved)(spec=spec, preset=resolved.preset, argument=resolved.argument, params=params)
    return MethodChoice(resolved=resolved, params=params, budget=budget if budget_params is not None else None,
                        budget_params=budget_params, recipe=recipe)


def _model_seeds(seed: int) -> Iterator[int]:
    """An endless, deterministic stream of integer seeds for the networks a method builds."""
    import numpy as np

    from ddr.engine.seeds import derive_seed

    rng = np.random.default_rng(derive_seed(seed, "method_models"))
    while True:
        yield int(rng.integers(0, 2**62))


def build_context(resources: "Resources", *, params: dict[str, Any], ipc: int, seed: int | None = None,
                  auto_assets: bool = True, meter: "DistillMeter | None" = None) -> "DistillContext":
    """The :class:`~ddr.method.context.DistillContext` a method receives for ``ipc`` images per
    class (``seed``: the resources' run seed unless given). With ``meter`` its ``progress`` and
    ``teacher`` are measured (the FLOP estimate of the main loop, the images forwarded through
    the teacher)."""
    from ddr.engine.build import build_augmentations
    from ddr.engine.data import Split
    from ddr.method.context import DistillContext
    from ddr.method.training import Recipe, derive_seed, torch_generator, train_hard

    r = resources
    seed = r.seed if seed is None else seed
    system = r.system
    seeds = _model_seeds(seed)
    method_seed = derive_seed(seed, "method")
    generator = torch_generator(method_seed, r.device)
    arch, _ = r.student_arch()

    def make_model(arch: str | None = None, **model_params: Any) -> "torch.nn.Module":
        return r.make_model(next(seeds), arch, model_params or None)

    def train_model(model: "torch.nn.Module", images: "torch.Tensor", labels: "torch.Tensor", *, epochs: int,
                    lr: float = 0.01, batch_size: int = 256, optimizer: str = "sgd", momentum: float = 0.9,
                    weight_decay: float = 5e-4, schedule: str = "step", augmentation: Any = None,
                    generator: "torch.Generator | None" = None) -> "torch.nn.Module":
        recipe = Recipe(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, epochs=epochs,
                        batch_size=batch_size, schedule=schedule)
        train_hard(model, Split(labels=labels, images=images), recipe,
                   generator=generator if generator is not None else torch_generator(next(seeds), r.device),
                   num_classes=r.dataset.num_classes, augmentation=augmentation, device=r.device, system=system)
        return model

    def augmentation(name: str, **aug_params: Any) -> Any:
        return build_augmentations([{"name": name, **aug_params}], system=system).augmentations[0]

    def teacher() -> "torch.nn.Module":
        return r.teachers()[0]

    progress: Any = r.session.progress
    teacher_fn: Any = teacher
    if meter is not None:
        progress, teacher_fn = meter.wrap_progress(progress), meter.wrap_teacher(teacher)
    return DistillContext(
        dataset=r.dataset, train=r.pool, ipc=ipc, num_classes=r.dataset.num_classes,
        generator=generator, seed=method_seed, device=r.device, params=params, arch=arch,
        make_model=make_model, train_model=train_model, augmentation=augmentation, teacher=teacher_fn,
        progress=progress, log=r.log, auto_assets=auto_assets, assets=r.assets,
    )


def distill_key(choice: MethodChoice, resources: "Resources", ipc: int) -> str:
    """The content key of a distillation at ``ipc`` (what the distilled set depends on)."""
    from ddr.store.hashing import sha256_json

    r, spec = resources, choice.spec
    dist, version = r.system.provenance().get(spec.provider or "", ("", ""))
    arch, arch_params = r.student_arch()
    # a teacher-based method's set depends on the teacher: its file, or the reference's recipe and arch
    teacher = {"teacher": r.teacher_identity()} if spec.needs_teacher else {}
    # a set distilled in ZCA space depends on the fit (its version and statistics): a refit is a new space
    zca = {"preprocess": r.dataset.preprocess} if r.dataset.pixel_space == "zca" else {}
    return sha256_json({
        **teacher, **zca, "format": DISTILL_FORMAT_VERSION, "method": spec.name, "method_version": spec.version,
        "provider": spec.provider, "distribution": dist, "distribution_version": version,
        "params": choice.params, "dataset": r.dataset.name,
        "dataset_version": r.dataset_spec().version, "pixel_space": r.dataset.pixel_space,
        "ipc": ipc, "seed": r.seed, "arch": arch, "arch_params": arch_params,
        "validation_per_class": r.protocol.validation_per_class,
    })


def distill(choice: MethodChoice, resources: "Resources", ipc: int, *, use_cache: bool = True,
            auto_assets: bool = True, timeout: float | None = None) -> DistillOutcome:
    """Run (or fetch from the cache) the distillation ``choice`` describes.

    Args:
        use_cache: read and store the distilled set in the cache (``--no-cache``: neither).
        auto_assets: the method may build expensive assets (experts, a teacher) on demand.
        timeout: stop the method after this many seconds (wall clock, ``--timeout``) and report
            it as a failure; ``None``: no limit.

    A set being distilled by another ddr process on the same cache is waited for (its entry is
    locked, :mod:`ddr.store.locks`) and read, so concurrent runs distill it once. When the cache
    cannot store the set (a full disk), it is saved to a rescue folder instead and the run goes on.
    """
    from ddr.runs.deadline import check_timeout
    from ddr.store.cache import entry_dir
    from ddr.store.locks import entry_lock

    timeout = check_timeout(timeout)
    resources.check_ipc(ipc)  # an IPC the pool cannot fill fails before any distillation
    key = distill_key(choice, resources, ipc)
    if not use_cache:
        return _run_method(choice, resources, ipc, key, auto_assets=auto_assets, timeout=timeout)
    folder = entry_dir("distilled", key)
    found = _from_cache(choice, resources, key, folder, quiet=True)
    if found is not None:
        return found
    with entry_lock(folder, f"the distilled set of {choice.name} ({key[:12]})", log=resources.log):
        found = _from_cache(choice, resources, key, folder)  # another process may just have stored it
        if found is not None:
            return found
        outcome = _run_method(choice, resources, ipc, key, auto_assets=auto_assets, timeout=timeout)
        outcome.stored_at = _store(outcome, folder, resources.log)
    return outcome


def _from_cache(choice: MethodChoice, resources: "Resources", key: str, folder: "Path", *,
                quiet: bool = False) -> DistillOutcome | None:
    """The cached outcome, or ``None`` when the entry is absent or unreadable (said unless ``quiet``).
    Its cost is the original distillation's, as stored in the set's meta."""
    from ddr.runs.cost import DistillCost
    from ddr.store.formats import load_distilled

    if not (folder / "meta.json").exists():
        return None
    try:
        distilled = load_distilled(folder)
    except DdrError:
        if not quiet:
            resources.log(f"cache entry {folder} is unreadable; distilling again")
        return None
    resources.log(f"distilled set found in the cache ({folder}); skipping distillation")
    return DistillOutcome(distilled, key, True, float(distilled.meta.get("distill_seconds") or 0.0),
                          choice.name, choice.params, choice.budget, choice.budget_params, stored_at=folder,
                          cost=DistillCost.from_meta(distilled.meta))


def _who(choice: MethodChoice, system: Any) -> str:
    """The method, its plugin and distribution, as messages name them."""
    spec = choice.spec
    dist, version = system.provenance().get(spec.provider or "", ("", ""))
    return f"method '{choice.name}' (plugin '{spec.provider}', {dist or 'no distribution'} {version})".replace(" )", ")")


def execute_method(choice: MethodChoice, resources: "Resources", ipc: int, *, auto_assets: bool,
                   timeout: float | None) -> "tuple[DistilledSet, DistillCost]":
    """Materialize the method and run it here, under ``timeout`` seconds when given:
    ``(what it returned, what it cost)`` (wall, CPU and GPU seconds, peak memory, the FLOP
    estimate of its main loop, the images it passed through the teacher:
    :class:`ddr.runs.cost.DistillMeter`). Any failure is a DdrError naming the plugin."""
    from ddr.plugin.faults import describe, is_plugin_fault, no_process_exit
    from ddr.runs.cost import DistillMeter
    from ddr.runs.deadline import DeadlineExceeded, time_limit

    who = _who(choice, resources.system)
    target = resources.system.methods().materialize(choice.spec)
    meter = DistillMeter(resources.device)
    ctx = build_context(resources, params=dict(choice.params), ipc=ipc, auto_assets=auto_assets, meter=meter)
    try:
        with time_limit(timeout, what=f"method '{choice.name}'", log=resources.log), meter, no_process_exit():
            method: Method = target()
            distilled = method.distill(ctx)
    except DeadlineExceeded:
        raise DdrError(f"{who} ran past --timeout {timeout:g} s and was stopped; raise --timeout, lower its budget "
                       "(--iterations, --set method.KEY=VALUE, a smaller preset) or report it to the plugin's "
                       "authors") from None
    except DdrError:
        raise
    except Exception as exc:
        raise DdrError(f"{who} failed: {type(exc).__name__}: {exc}\n  rerun with --debug for the traceback") from exc
    except BaseException as exc:  # sys.exit, os._exit, a KeyboardInterrupt nobody typed: would fake success
        if not is_plugin_fault(exc):
            raise
        raise DdrError(f"{who} {describe(exc)} instead of returning a DistilledSet; nothing was stored. Report "
                       "it to the plugin's authors") from exc
    from ddr.method.distilled import DistilledSet

    if not isinstance(distilled, DistilledSet):
        raise DdrError(f"method '{choice.name}' returned {type(distilled).__name__}, not a DistilledSet")
    assert meter.cost is not None  # set when the with block ended
    return distilled, meter.cost


def submit_distillation(executor: "TaskRunner", choice: MethodChoice, resources: "Resources", ipc: int, *,
                        auto_assets: bool, timeout: float | None) -> Any:
    """Send the distillation to ``executor`` (one that runs work elsewhere, ``ray``); returns its
    pending handle (``.wait()``, ``.result()``, ``.cancel()``)."""
    from ddr.runs.remote_distill import distill_task, make_task

    task = make_task(choice, resources, ipc, auto_assets=auto_assets, timeout=timeout)
    return executor.submit(distill_task, task, what=f"the distillation of {_who(choice, resources.system)}",
                           device=resources.device.type)


def _remote_executor(resources: "Resources") -> "RemoteExecutor | None":
    """The resources' executor when it runs distillations elsewhere, else ``None``."""
    from ddr.execute import RemoteExecutor

    if resources.jobs.executor == "local":
        return None
    executor = resources.session.executor(resources.jobs.executor, resources.jobs.executor_options)
    return executor if isinstance(executor, RemoteExecutor) else None


def _run_method(choice: MethodChoice, resources: "Resources", ipc: int, key: str, *, auto_assets: bool,
                timeout: float | None) -> DistillOutcome:
    """Run the method (here, or as a task of an executor that submits work elsewhere, ``ray``),
    validate what it returned and stamp its metadata."""
    from ddr.method.distilled import validate_distilled
    from ddr.runs.remote_distill import moved

    r = resources
    system = r.system
    spec = choice.spec
    dist, version = system.provenance().get(spec.provider or "", ("", ""))
    who = _who(choice, system)
    pending = r.session.prefetched.pop(key, None)
    executor: "TaskRunner | None" = _remote_executor(r) if pending is None else None
    if pending is None and executor is None and r.session.isolate:
        from ddr.execute.child import ChildProcess

        executor = ChildProcess()
    if pending is None and executor is not None:
        pending = submit_distillation(executor, choice, r, ipc, auto_assets=auto_assets, timeout=timeout)
    if pending is None:
        distilled, cost = execute_method(choice, r, ipc, auto_assets=auto_assets, timeout=timeout)
    else:
        try:
            for _ in r.session.progress(pending.wait(), total=None, desc=f"distill {choice.name} (remote)"):
                pass
            reply = pending.result()["reply"]
        finally:
            pending.cancel()  # Ctrl-C, SIGTERM: nothing keeps distilling (a no-op once finished)
        for message in reply.messages:
            r.log(message)
        where = "a child process" if r.session.isolate and r.jobs.executor == "local" else \
            f"a task of the {r.jobs.executor} executor"
        r.log(f"{choice.name}: distilled in {where} ({reply.seconds:.1f} s)")
        distilled, cost = moved(reply.distilled, r.device), reply.distill_cost()
    ds = r.dataset
    try:  # refused before it is cached: a bad set is never read back from the cache
        validate_distilled(distilled, num_classes=ds.num_classes, ipc=ipc, channels=ds.channels,
                           image_size=(ds.image_size[0], ds.image_size[1]), mean=ds.mean, std=ds.std)
    except DistilledSetError as exc:
        raise DistilledSetError(f"{who} returned a distilled set that cannot be evaluated: {exc}") from None
    distilled.meta.update({
        "method": spec.name, "method_ref": choice.name, "method_version": spec.version, "provider": spec.provider,
        "distribution": dist, "distribution_version": version, "params": choice.params,
        "budget": choice.budget, "dataset": ds.name, "ipc": ipc, "seed": r.seed,
        **cost.to_meta(), "distill_key": key,
    })
    if distilled.label_strategy is None:
        distilled.label_strategy = spec.label_strategy
    return DistillOutcome(distilled, key, False, float(cost.wall_seconds or 0.0), choice.name, choice.params,
                          choice.budget, choice.budget_params, cost=cost)


def _store(outcome: DistillOutcome, folder: "Path", log: Any) -> "Path | None":
    """Store a fresh distilled set in the cache (called holding its lock); when the cache cannot
    take it, save it to a rescue folder and say where. Returns where the set is on disk (``None``:
    only in memory)."""
    import shutil

    from ddr.store.formats import save_distilled
    from ddr.store.writable import rescue_dir

    for stale in folder.parent.glob(f"{folder.name}.tmp-*"):  # left by a killed process; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    try:
        return save_distilled(outcome.distilled, folder)
    except DdrError as exc:
        problem = str(exc).splitlines()[0]
    rescue = rescue_dir(f"distilled-{outcome.key[:16]}")
    try:
        save_distilled(outcome.distilled, rescue)
    except DdrError:
        log(f"warning: the cache could not store the distilled set ({problem}); it exists only in this run's "
            "memory: rerun with --save-distilled DIR on a disk with space to keep it")
        return None
    log(f"warning: the cache could not store the distilled set ({problem}); saved it to {rescue} instead "
        f"(`ddr eval {rescue}` evaluates it again)")
    return rescue


def check_save_target(path: "Path") -> None:
    """Refuse, before any work, a ``--save-distilled DIR`` whose parent cannot be written."""
    from pathlib import Path

    from ddr.store.writable import check_directory

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DdrError(f"--save-distilled {path}: it exists and is not a directory; remove it or choose another path")
    check_directory(path.parent, what="the distilled set (--save-distilled)",
                    choose="choose a writable location with --save-distilled DIR")


def save_copy(outcome: DistillOutcome, path: "Path") -> "Path":
    """``--save-distilled DIR``: write the set there; a failure names where the set still is."""
    from ddr.store.formats import save_distilled

    try:
        return save_distilled(outcome.distilled, path)
    except DdrError as exc:
        where = (f"the distilled set is safe at {outcome.stored_at}: copy it from there, or rerun with a writable "
                 "--save-distilled DIR (it is read from the cache)") if outcome.stored_at is not None else \
            "rerun with a writable --save-distilled DIR"
        raise type(exc)(f"{str(exc).splitlines()[0]}; {where}") from exc
