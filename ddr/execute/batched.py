"""The ``batched`` executor: many students trained at once as ONE stacked model.

Jobs that can train together form a group: the same architecture and parameters, the same
recipe but for the LR (optimizer, momentum, weight decay, epochs, batch size, schedule), the same
number and shape of training images, and either no periodic test or (``ddranking``) the same
test interval. Each (job, LR candidate) pair is one *member*. A group trains with
:func:`ddr.execute.group_training.train_group`: every member starts from
``workspace.make_model(arch, params, seed)``'s weights, draws its data order and augmentation
from its own ``torch_generator(job.seed, device)`` exactly as the local loop does, and has its
own LR, optimizer state and loss. Only floating-point reduction order can differ from
``local``, so per-student numbers agree within noise, not necessarily bit for bit.

What batches is what the components' specs declare ``stackable`` (asked through the plugin
system, so a third-party component that declares it batches like a built-in one): in-memory
training data; stackable label strategies (``hard`` and ``stored_soft``, also a random subset with
teacher soft labels, which are stored logits) with any loss (a stackable loss, as every built-in
one, computes all members' losses in one ``torch.vmap`` call, any other one member by member);
stackable augmentations (every built-in one that does not mix: DSA, crop/flip, ...); selection
``last``, ``validation`` (validation pass when there is more than one candidate, test of the
chosen member only) and ``ddranking`` (test every ``test_interval`` epochs); stackable networks
without BatchNorm, dropout or buffers (those that declare the ConvNet layout,
``ArchitectureSpec.grouped``, as grouped convolutions, others under ``torch.vmap``).

What runs job by job through :func:`ddr.execute.student.run_job` (exactly the local numbers; the
reason is logged at DEBUG level on the ``ddr.execute.batched`` logger): streamed datasets, the
``teacher`` strategy and label strategies, augmentations and architectures that do not declare
``stackable`` (mixup and cutmix mix; the ``timm``/``torchvision`` bridges), BatchNorm and other
networks whose built modules cannot be stacked, and groups of a single member (nothing to gain).

Results: ``seconds`` of a job is its fair share of its group's wall time (group time × its
members / the group's members; a job with 5 LR candidates counts 5), ``peak_memory_bytes`` the
group's peak. A member whose loss stops being finite fails its job with the local loop's
message, after the group's other jobs have been reported (``on_result``), and no further group
starts. ``on_result`` receives the chosen member's weights in a fresh module of the job's
architecture (eval mode), so the ``real`` role's model can serve as the teacher (under
``ddranking``, like ``run_job``, the reference's best epoch's weights). A group that runs out of
device memory (``torch.OutOfMemoryError``) fails with a DdrError that gives the group's size and
the options that make groups smaller (``max_images_per_step``, ``max_members``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DdrError
from ddr.execute.measure import measure_student
from ddr.records.jobs import JobResult, StudentJob

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline
    from ddr.engine.data import Split
    from ddr.engine.training import TrainData
    from ddr.execute.stacked import StackedModel
    from ddr.execute.workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A batchable job with what it trains: data, initial model, strategy, augmentation."""

    job: StudentJob
    data: "TrainData"
    model: "torch.nn.Module"
    strategy: Any
    pipeline: "Pipeline"
    key: str
    position: int
    grouped: bool = False
    """The architecture declares the ConvNet layout (``ArchitectureSpec.grouped``)."""
    loss_key: str | None = None
    """Equal for jobs whose losses one vmapped call computes (:attr:`Stream.loss_key`)."""


def _epoch_bar(ws: "Workspace", name: str) -> Callable[..., Any]:
    """The workspace's progress bar for an epoch loop, named ``name`` and not left behind."""
    def progress(iterable: Any, total: int | None = None, desc: str = "", leave: bool = False) -> Any:
        return ws.progress(iterable, total=total, desc=f"{name} {desc}".strip(), leave=False)

    return progress


def _is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's out-of-memory error (``torch.OutOfMemoryError``, raised by the CUDA
    allocator; ``torch.cuda.OutOfMemoryError`` is the same class)."""
    import torch

    kind = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return kind is not None and isinstance(exc, kind)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"executor 'batched': {name} must be an integer >= {low}, got {value!r}")
    return value


def _loss_key(job: StudentJob, strategy: Any, ws: "Workspace") -> str | None:
    """The key under which members of ``job`` share one vmapped loss call with other jobs' members
    (:attr:`ddr.execute.group_training.Stream.loss_key`): the label strategy (``strategy``, its
    resolved reference) and the loss as resolved, with their parameters; ``None`` when the loss's
    spec does not declare ``stackable``."""
    from ddr.errors import DdrError
    from ddr.store.hashing import canonical_json

    item = job.loss if job.loss is not None else strategy.spec.default_loss
    if isinstance(item, Mapping):
        name, params = str(item.get("name")), {k: v for k, v in item.items() if k != "name"}
    else:
        name, params = str(item), {}
    loss = ws.system.losses().resolve(name, params)
    if not loss.spec.stackable:
        return None
    try:
        return canonical_json({"label_strategy": [strategy.spec.provider, strategy.spec.name, strategy.argument,
                                                  strategy.params],
                               "loss": [loss.spec.provider, loss.spec.name, loss.params]})
    except DdrError:  # a parameter without a canonical JSON form: this job's loss calls stay its own
        return None


class BatchedExecutor:
    """Trains groups of compatible student jobs as one stacked model (see the module docstring).

    Args:
        max_members: most members (job × LR candidate) in one group.
        max_images_per_step: most member-images in one training step (members × batch size);
            caps the activation memory of a group. ``None``: 1024 on a CPU (larger steps were
            slower there: the activations of 3200 CIFAR images took 7 GiB), 16384 on a GPU.
        min_members: smaller groups run job by job (1 member gains nothing).
        backend: ``auto`` (grouped convolutions for ddr's ConvNet family, ``torch.vmap``
            otherwise), ``grouped`` or ``vmap``.
        bf16: bfloat16 autocast for the forward/backward (off: not measured to keep accuracy).
        channels_last: channels-last feature maps in the grouped program (off; see
            benchmarks/RESULTS.md for the CPU measurement).
        eval_images_per_step: most member-images in one test/validation forward.
    """

    name = "batched"

    def __init__(self, *, max_members: int = 64, max_images_per_step: int | None = None, min_members: int = 2,
                 backend: str = "auto", bf16: bool = False, channels_last: bool = False,
                 eval_images_per_step: int = 16384) -> None:
        from ddr.execute.stacked import BACKENDS

        self.max_members = _check_int("max_members", max_members, 1)
        self.max_images_per_step = (None if max_images_per_step is None
                                    else _check_int("max_images_per_step", max_images_per_step, 1))
        self.min_members = _check_int("min_members", min_members, 1)
        self.eval_images_per_step = _check_int("eval_images_per_step", eval_images_per_step, 1)
        if backend not in BACKENDS:
            raise ConfigError(f"executor 'batched': backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        for flag, value in (("bf16", bf16), ("channels_last", channels_last)):
            if not isinstance(value, bool):
                raise ConfigError(f"executor 'batched': {flag} must be true or false, got {value!r}")
        self.backend, self.bf16, self.channels_last = backend, bf16, channels_last

    # -- the Executor protocol ----------------------------------------------------------------------
    def run(self, jobs: Sequence[StudentJob], workspace: "Workspace",
            on_result: Callable[[StudentJob, JobResult, Any], None]) -> list[JobResult]:
        """Run ``jobs``: compatible ones in groups, the rest one by one; results in job order."""
        from ddr.execute.student import run_job

        results: dict[str, JobResult] = {}
        units = self._plan(list(jobs), workspace)
        for unit in workspace.progress(units, total=len(units), desc="groups") if len(units) > 1 else units:
            if isinstance(unit, StudentJob):
                result, model = run_job(unit, workspace, progress=_epoch_bar(workspace, f"{unit.role}[{unit.index}]"))
                on_result(unit, result, model)
                results[unit.key] = result
                continue
            try:
                results.update(self._run_group(unit, workspace, on_result))
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                raise self._out_of_memory(unit, workspace, exc) from exc
        return [results[job.key] for job in jobs]

    def _out_of_memory(self, chunk: list[_Prepared], ws: "Workspace", exc: BaseException) -> DdrError:
        """The DdrError for a group that ran out of device memory: how big the group was and the
        executor options that make groups smaller. The out-of-memory error's traceback (which holds
        the group's tensors) is dropped and the allocator's cache emptied, so that a caller that
        goes on (a suite's next run) gets the memory back."""
        members = sum(len(p.job.lr_candidates) for p in chunk)
        batch = min(chunk[0].job.recipe.batch_size, len(chunk[0].data))
        per_step = members * batch
        cap = self.images_per_step(ws.device)
        exc.__traceback__ = None
        if ws.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return DdrError(
            f"{ws.device} ran out of memory while the batched executor trained {len(chunk)} student jobs as one "
            f"group of {members} members ({per_step} member-images per training step; {said}). Train smaller "
            f"groups: --executor-option max_images_per_step={max(batch, per_step // 2)} (now {cap}) or "
            f"--executor-option max_members={max(1, members // 2)} (now {self.max_members}); if it ran out while "
            f"testing, --executor-option eval_images_per_step={max(1, self.eval_images_per_step // 2)}; or run "
            "the jobs one by one with --executor local")

    # -- grouping -----------------------------------------------------------------------------------
    def _plan(self, jobs: list[StudentJob], ws: "Workspace") -> list[Any]:
        """Work units in job order: a StudentJob (run alone) or a list of _Prepared (a group)."""
        groups: dict[str, list[_Prepared]] = {}
        alone: dict[int, StudentJob] = {}
        for position, job in enumerate(jobs):
            prepared = self._prepare(job, ws, position)
            if isinstance(prepared, str):
                logger.debug("batched: %s/%d runs on its own (run_job): %s", job.role, job.index, prepared)
                alone[position] = job
                continue
            groups.setdefault(prepared.key, []).append(prepared)
        ordered: list[tuple[int, Any]] = list(alone.items())
        for members in groups.values():
            for chunk in self._chunks(members, ws.device):
                size = sum(len(p.job.lr_candidates) for p in chunk)
                if size < self.min_members:
                    for p in chunk:
                        logger.debug("batched: %s/%d runs on its own (run_job): its group has %d member(s) "
                                     "(min_members %d)", p.job.role, p.job.index, size, self.min_members)
                        ordered.append((p.position, p.job))
                else:
                    ordered.append((chunk[0].position, chunk))
        ordered.sort(key=lambda item: item[0])
        return [unit for _, unit in ordered]

    def images_per_step(self, device: "torch.device") -> int:
        """The most member-images one training step holds on ``device`` (``max_images_per_step``, or
        its default: 16384 on a GPU, 1024 on a CPU)."""
        if self.max_images_per_step is not None:
            return self.max_images_per_step
        return 16384 if getattr(device, "type", str(device)) == "cuda" else 1024

    def members_per_group(self, batch_size: int, device: "torch.device") -> int:
        """The most members one group trains together at ``batch_size`` images per step."""
        return max(1, min(self.max_members, self.images_per_step(device) // max(1, batch_size)))

    def _chunks(self, members: list[_Prepared], device: "torch.device") -> list[list[_Prepared]]:
        """Split a group so that no chunk exceeds the member or images-per-step caps (a job's LR
        candidates stay together)."""
        batch = min(members[0].job.recipe.batch_size, len(members[0].data))
        cap = self.members_per_group(batch, device)
        chunks: list[list[_Prepared]] = []
        size = 0
        for p in members:
            n = len(p.job.lr_candidates)
            if chunks and size + n <= cap:
                chunks[-1].append(p)
                size += n
            else:
                chunks.append([p])
                size = n
        return chunks

    def _prepare(self, job: StudentJob, ws: "Workspace", position: int) -> "_Prepared | str":
        """The job's data, model, strategy and augmentation, or why it cannot be batched.

        What may be stacked is what the components' specs declare (``stackable``), asked through
        the workspace's plugin system; the built modules are checked on top.
        """
        from ddr.execute.stacked import unsupported_reason
        from ddr.store.hashing import canonical_json

        if job.selection not in ("last", "validation", "ddranking"):
            return f"selection {job.selection!r} is unknown to the batched executor"
        resolved = ws.system.label_strategies().resolve(job.label_strategy)
        if resolved.spec.needs_teacher:
            return f"label strategy {job.label_strategy!r} relabels every batch with the teacher"
        if not resolved.spec.stackable:
            return (f"label strategy {job.label_strategy!r} does not declare stackable=True in its "
                    "LabelStrategySpec (its targets are not known to be a per-image lookup)")
        for item in job.augmentation:
            name = item if isinstance(item, str) else item.get("name") if isinstance(item, Mapping) else None
            params = {k: v for k, v in item.items() if k != "name"} if isinstance(item, Mapping) else {}
            augmentation = None if name is None else ws.system.augmentations().resolve(name, params).spec
            if augmentation is None or augmentation.mixes:
                return f"augmentation {item!r} mixes images (its targets are mixed per job)"
            if not augmentation.stackable:
                return f"augmentation {item!r} does not declare stackable=True in its AugmentationSpec"
        data = ws.train_data(job.data)
        if data.split.images is None:
            return "its training images are streamed (decoded per batch)"
        strategy = ws.label_strategy(job.label_strategy, job.loss, hard_labels=data.split.labels,
                                     soft_labels=data.soft_labels, teachers=[])
        if getattr(strategy, "replay_epochs", None):
            return f"label strategy {job.label_strategy!r} replays epochs (replay_epochs), which THE loop does per job"
        architecture = ws.system.architectures().resolve(job.arch, dict(job.arch_params)).spec
        model = ws.make_model(job.arch, job.arch_params, job.seed)
        reason = unsupported_reason(model)
        if reason is None and not architecture.stackable:
            reason = "its ArchitectureSpec does not declare stackable=True"
        if reason is not None:
            return f"architecture {job.arch!r}: {reason}"
        recipe = {k: v for k, v in job.recipe.to_dict().items() if k != "lr"}
        key = canonical_json({"arch": job.arch, "arch_params": dict(job.arch_params), "recipe": recipe,
                              "images": list(data.split.images.shape), "dtype": str(data.split.images.dtype),
                              "periodic_test": job.test_interval if job.selection == "ddranking" else None})
        return _Prepared(job=job, data=data, model=model, strategy=strategy, pipeline=ws.augmentation(job.augmentation),
                         key=key, position=position, grouped=architecture.grouped,
                         loss_key=_loss_key(job, resolved, ws))

    # -- one group ----------------------------------------------------------------------------------
    def _run_group(self, chunk: list[_Prepared], ws: "Workspace",
                   on_result: Callable[[StudentJob, JobResult, Any], None]) -> dict[str, JobResult]:
        from ddr.engine.seeds import torch_generator
        from ddr.execute.group_training import Stream, train_group
        from ddr.execute.stacked import StackedModel, Unbatchable
        from ddr.execute.student import PeakMemory, run_job

        start = time.perf_counter()
        peak = PeakMemory(ws.device)
        owners: list[tuple[int, int]] = [(j, c) for j, p in enumerate(chunk) for c in range(len(p.job.lr_candidates))]
        models = [chunk[j].model for j, _ in owners]
        try:
            stacked = StackedModel(models, backend=self.backend, channels_last=self.channels_last,
                                   grouped=chunk[0].grouped)
            images = chunk[0].data.split.images
            assert images is not None  # in memory: _prepare checked
            probe = images[:4].to(ws.device)
            stacked.verify(models, probe, sorted({0, len(models) - 1}))
        except Unbatchable as exc:
            alone: dict[str, JobResult] = {}
            for p in chunk:
                logger.debug("batched: %s/%d runs on its own (run_job): %s", p.job.role, p.job.index, exc)
                result, model = run_job(p.job, ws, progress=_epoch_bar(ws, f"{p.job.role}[{p.job.index}]"))
                on_result(p.job, result, model)
                alone[p.job.key] = result
            return alone
        logger.debug("batched: training %d jobs as %d members (%s backend)", len(chunk), len(owners), stacked.backend)
        recipes = [chunk[j].job.recipe.with_lr(chunk[j].job.lr_candidates[c]) for j, c in owners]
        streams = [Stream(data=p.data, generator=torch_generator(p.job.seed, ws.device), pipeline=p.pipeline,
                          strategy=p.strategy, loss_key=p.loss_key) for p in chunk]
        job0 = chunk[0].job
        evaluate = None
        kept: dict[int, tuple[float, dict[str, Any]]] = {}  # the reference keeps its best epoch's weights
        if job0.selection == "ddranking":
            references = [m for m, (j, _) in enumerate(owners) if chunk[j].job.role == "real"]

            def evaluate() -> list[float]:
                accuracies = self._accuracies(stacked, ws.test, ws.device)
                for m in references:
                    if accuracies[m] > kept.get(m, (-1.0, {}))[0]:
                        kept[m] = (accuracies[m], stacked.member_state(m))
                return accuracies
        trained = train_group(stacked, streams, [j for j, _ in owners], recipes, device=ws.device,
                              evaluate_every=job0.test_interval or None, evaluate=evaluate,
                              progress=_epoch_bar(ws, f"{len(chunk)} jobs"), bf16=self.bf16)
        scores, tests = self._scores(chunk, owners, stacked, trained.evaluations, ws)
        chosen: dict[int, int] = {}  # job -> member
        for j in range(len(chunk)):
            best: int | None = None
            for m, (owner, _) in enumerate(owners):
                if owner == j and (best is None or scores[m] > scores[best]):
                    best = m
            assert best is not None
            chosen[j] = best
        tests = self._test_accuracies(chosen, tests, stacked, ws)
        seconds = time.perf_counter() - start
        memory = peak.read()
        results: dict[str, JobResult] = {}
        failure: str | None = None
        for j, p in enumerate(chunk):
            job = p.job
            mine = [m for m, (owner, _) in enumerate(owners) if owner == j]
            broken = [m for m in mine if m in trained.diverged]
            if broken:
                failure = failure or trained.diverged[broken[0]]
                continue
            m = chosen[j]
            info: dict[str, Any] = {}
            if len(job.lr_candidates) > 1:
                info = {"mode": job.selection, "scores_by_lr": {repr(job.lr_candidates[owners[k][1]]): scores[k]
                                                                for k in mine},
                        "chosen_lr": job.lr_candidates[owners[m][1]]}
            if job.selection == "ddranking":
                info["best_on_test"] = True
                info["test_interval"] = job.test_interval
                info["best_epoch"] = max(trained.evaluations[m], key=lambda e: e[1])[0]
            result = JobResult(key=job.key, role=job.role, index=job.index, seed=job.seed, accuracy=float(tests[m]),
                               lr=float(recipes[m].lr), epochs_trained=trained.epochs_trained,
                               seconds=seconds * len(mine) / len(owners), peak_memory_bytes=memory, selection=info)
            module = ws.make_model(job.arch, job.arch_params, job.seed)
            if m in kept:
                module.load_state_dict(kept[m][1])
            else:
                stacked.load_member(m, module)
            module.eval()
            result.metrics = measure_student(job, module, ws)
            on_result(job, result, module)
            results[job.key] = result
        if failure is not None:
            raise DdrError(failure)
        return results

    def _scores(self, chunk: list[_Prepared], owners: list[tuple[int, int]], stacked: "StackedModel",
                evaluations: list[list[tuple[int, float]]], ws: "Workspace") -> tuple[list[float], dict[int, float]]:
        """Each member's selection score as ``run_job`` computes it, and the test accuracies measured
        on the way: DD-Ranking's best periodic test accuracy; the validation accuracy when the job
        searches LRs under ``validation``; else the test accuracy after the last epoch."""
        import torch

        if chunk[0].job.selection == "ddranking":
            scores = [max(acc for _, acc in evals) for evals in evaluations]
            return scores, dict(enumerate(scores))
        scores = [float("nan")] * len(owners)
        validated = [m for m, (j, _) in enumerate(owners)
                     if chunk[j].job.selection == "validation" and len(chunk[j].job.lr_candidates) > 1]
        tested = [m for m in range(len(owners)) if m not in set(validated)]
        tests: dict[int, float] = {}
        for members, split in ((validated, ws.validation), (tested, ws.test)):
            if members:
                index = torch.tensor(members, dtype=torch.long, device=ws.device)
                for m, acc in zip(members, self._accuracies(stacked, split, ws.device, index)):
                    scores[m] = acc
                    if split is ws.test:
                        tests[m] = acc
        return scores, tests

    def _test_accuracies(self, chosen: dict[int, int], tests: dict[int, float], stacked: "StackedModel",
                         ws: "Workspace") -> dict[int, float]:
        """Test accuracy of each job's reported member (measured now unless already known)."""
        import torch

        missing = sorted(m for m in chosen.values() if m not in tests)
        if missing:
            index = torch.tensor(missing, dtype=torch.long, device=ws.device)
            tests = {**tests, **dict(zip(missing, self._accuracies(stacked, ws.test, ws.device, index)))}
        return tests

    def _accuracies(self, stacked: "StackedModel", split: "Split", device: "torch.device",
                    members: "torch.Tensor | None" = None) -> list[float]:
        """Top-1 accuracy (fraction) of each member (or of ``members``) on ``split``: eval mode, no
        augmentation, one host read at the end; the same count as ``test_accuracy``."""
        import torch

        from ddr.engine.training import loader_workers

        count = stacked.members if members is None else int(members.numel())
        chunk = max(1, self.eval_images_per_step // count)
        correct = torch.zeros(count, dtype=torch.long, device=device)

        def add(images: "torch.Tensor", labels: "torch.Tensor") -> None:
            nonlocal correct
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = stacked.shared(images.to(device), members)
            correct += (logits.argmax(2) == labels.to(device).unsqueeze(0)).sum(1)

        with torch.no_grad():
            if split.images is not None:
                for begin in range(0, len(split), chunk):
                    add(split.images[begin:begin + chunk], split.labels[begin:begin + chunk])
            else:
                from torch.utils.data import DataLoader

                for images, labels in DataLoader(split.source, batch_size=chunk, num_workers=loader_workers()):
                    add(images, labels)
        return [int(c) / len(split) for c in correct.tolist()]
