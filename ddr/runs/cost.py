"""What a distillation and an evaluation cost, for the run record's ``cost`` object.

:class:`DistillMeter` measures one distillation while it runs (:func:`ddr.runs.distill.execute_method`
enters it around the method's ``distill(ctx)``; a Ray worker does the same and returns its
:class:`DistillCost` with the set):

* wall seconds (``time.perf_counter``), process CPU seconds (``time.process_time``: user + system
  time of this process, all its threads), GPU seconds on CUDA (two ``torch.cuda.Event`` with
  timing, synchronised), peak memory in bytes (:class:`ddr.execute.student.PeakMemory`);
* a FLOP estimate of the method's main loop (:class:`FlopSampler`): one steady-state iteration of
  the first top-level ``ctx.progress`` loop with a known ``total`` runs under
  ``torch.utils.flop_counter.FlopCounterMode``, and its count times ``total`` is the estimate;
* the images passed through the teacher (:class:`TeacherCounter`: a forward pre-hook on the
  module ``ctx.teacher()`` returns, removed when the distillation ends).

The distillation's numbers are stored in the distilled set's meta (:meth:`DistillCost.to_meta`),
so a set read back from the cache reports its original distillation's cost
(:meth:`DistillCost.from_meta`; entries written before these keys existed give ``None``).
:func:`cost_record` builds the record's ``cost`` object from them and the evaluation.

Imports no torch at module level (``ddr list`` must not import torch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

COUNT_FLOPS = True
"""Whether :class:`FlopSampler` runs its sampled iteration under ``FlopCounterMode`` (a test
turns it off to show that counting changes no result)."""

_META_KEYS = {
    "wall_seconds": "distill_seconds", "cpu_seconds": "distill_cpu_seconds", "gpu_seconds": "distill_gpu_seconds",
    "peak_memory_bytes": "peak_memory_bytes", "flops_estimate": "distill_flops_estimate",
    "flops_method": "distill_flops_method", "teacher_forward_images": "teacher_forward_images",
}
""":class:`DistillCost` field -> the distilled set's meta key (the first two predate this module)."""

COST_KEYS = (
    "distill_wall_seconds", "distill_cpu_seconds", "distill_gpu_seconds", "distill_peak_memory_bytes",
    "distill_flops_estimate", "distill_flops_method", "teacher_forward_images", "eval_wall_seconds",
    "eval_student_seconds", "eval_student_epochs", "storage_bytes", "storage_note",
)
"""The keys of the run record's ``cost`` object, in order."""


@dataclass
class DistillCost:
    """What one distillation cost; ``None`` where unknown.

    Attributes:
        wall_seconds: wall-clock seconds of the method's ``distill(ctx)``.
        cpu_seconds: CPU seconds (user + system) of the process that ran it, all threads.
        gpu_seconds: seconds between two CUDA events recorded around it (``None`` off CUDA).
        peak_memory_bytes: CUDA allocator peak on a GPU, else the process's peak RSS, in bytes.
        flops_estimate: floating-point operations of the main loop, estimated (see
            :class:`FlopSampler`); ``None`` when no progress loop with a total ran.
        flops_method: how ``flops_estimate`` was obtained, one line.
        teacher_forward_images: images passed through the teacher (``None``: never requested).
    """

    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    gpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    flops_estimate: int | None = None
    flops_method: str | None = None
    teacher_forward_images: int | None = None

    def to_meta(self) -> dict[str, Any]:
        """The distilled set's meta keys for these numbers (JSON values)."""
        return {key: getattr(self, name) for name, key in _META_KEYS.items()}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "DistillCost":
        """The cost stored in a distilled set's meta; keys it lacks (older entries) are ``None``."""
        return cls(**{name: meta.get(key) for name, key in _META_KEYS.items()})


# ---------------------------------------------------------------------------------------------
# the FLOP estimate


_warm = False


def _warm_up_flop_counter() -> None:
    """Pay, once per process and outside any measured time, what the first ``FlopCounterMode``
    costs (it imports ``torch._dynamo``: seconds), so a distillation's times do not include it.
    The random number generator is left as it was."""
    global _warm
    if _warm or not COUNT_FLOPS:
        return
    _warm = True
    import torch

    counter = _flop_counter()
    if counter is None:  # pragma: no cover
        return
    with torch.random.fork_rng(devices=[]), counter:
        layer = torch.nn.Linear(2, 2)
        layer(torch.ones(1, 2, requires_grad=True)).sum().backward()


def _flop_counter() -> Any:
    """A fresh ``FlopCounterMode`` that prints nothing, or ``None`` when it cannot be had."""
    if not COUNT_FLOPS:
        return None
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover - every supported torch has it
        return None
    return FlopCounterMode(display=False)


class FlopSampler:
    """Wraps a ``progress(iterable, total=None, desc="")`` function so that one steady-state
    iteration of the first top-level loop with a known ``total`` is counted.

    The sampled iteration is the 2nd when ``total >= 2`` (the 1st may build things once), else
    the 1st: the body of the loop runs, between two ``next()`` calls on the wrapped iterator,
    under ``FlopCounterMode`` (which observes operators and changes no value). The estimate is
    that count times ``total`` (:attr:`flops`, an int, FLOPs as torch's counter defines them:
    a multiply-add is 2; operators it has no formula for count 0). A loop that starts while
    another wrapped loop is running is nested and never sampled. When the first loop with a
    total ends before its sampled iteration, the next top-level one is sampled.
    ``total=None`` (or a non-positive / non-integer total) is never sampled: the size of an
    arbitrary iterable is not taken from it.
    """

    def __init__(self) -> None:
        self.flops: int | None = None
        """The estimate: FLOPs of the sampled iteration × total (``None``: none sampled)."""
        self.method: str | None = None
        """How :attr:`flops` was obtained, one line (``None``: none sampled)."""
        self._depth = 0
        self._claimed = False

    def wrap(self, progress: Callable[..., Any]) -> Callable[..., Any]:
        """``progress`` with sampling added (arguments pass through unchanged)."""

        def sampled_progress(iterable: Any, total: int | None = None, desc: str = "", *args: Any,
                             **kwargs: Any) -> Iterator[Any]:
            return self._loop(progress(iterable, total, desc, *args, **kwargs), total, desc)

        return sampled_progress

    def _loop(self, iterable: Iterable[Any], total: Any, desc: str) -> Iterator[Any]:
        top = self._depth == 0
        self._depth += 1
        try:
            target: int | None = None
            if top and not self._claimed and isinstance(total, int) and not isinstance(total, bool) and total >= 1:
                target = 1 if total >= 2 else 0
            for index, item in enumerate(iterable):
                if index != target or self._claimed:
                    yield item
                    continue
                self._claimed = True
                counter = _flop_counter()
                try:
                    if counter is not None:
                        counter.__enter__()
                except Exception:  # counting must never fail the method: no estimate instead
                    counter = None
                if counter is None:
                    yield item
                    continue
                try:
                    yield item
                finally:
                    counter.__exit__(None, None, None)
                    self.flops = int(counter.get_total_flops()) * int(total)
                    where = f" ('{desc}')" if desc else ""
                    self.method = (f"FlopCounterMode on iteration {index + 1} of {total}{where}, × {total} "
                                   "(main loop only)")
        finally:
            self._depth -= 1


# ---------------------------------------------------------------------------------------------
# the teacher


class TeacherCounter:
    """Counts the images passed through the teacher(s) a method requests.

    :meth:`wrap` wraps ``ctx.teacher``: the first time a module is returned, a forward pre-hook
    (and a forward hook) are registered on it and its ``embed`` (the architecture contract's
    penultimate features, which feature-space selection calls instead of ``forward``) is wrapped
    on the instance; each outermost call adds its batch size (``shape[0]`` of the first tensor
    argument) to :attr:`images` (``forward`` calling ``embed`` counts once). :meth:`close`
    removes the hooks and the wrapper (the same module serves later as the evaluation's
    teacher). Copies the method makes of the module (``deepcopy``) count too, until
    :meth:`close`; the wrapper they keep afterwards calls their own ``embed`` and counts nothing.
    """

    def __init__(self) -> None:
        self.images: int | None = None
        """Images forwarded through the teacher (``None``: the teacher was never requested)."""
        self._undo: list[Callable[[], None]] = []
        self._watched: set[int] = set()
        self._open = True
        self._depth = 0

    def wrap(self, teacher: Callable[[], Any]) -> Callable[[], Any]:
        """``teacher`` with counting added."""

        def counted_teacher() -> Any:
            model = teacher()
            self.watch(model)
            return model

        return counted_teacher

    def _enter(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """A call into the teacher begins: count its batch when it is the outermost one."""
        if self._open and self._depth == 0:
            for value in (*args, *kwargs.values()):
                shape = getattr(value, "shape", None)
                if shape is not None and len(shape) > 0:
                    self.images = (self.images or 0) + int(shape[0])
                    break
        self._depth += 1

    def _leave(self) -> None:
        self._depth = max(0, self._depth - 1)

    def watch(self, model: Any) -> None:
        """Count the calls of ``model`` (an ``nn.Module``; anything else is only noted as requested)."""
        import types

        if self.images is None:
            self.images = 0
        if id(model) in self._watched or not self._open or not callable(getattr(model, "register_forward_hook", None)):
            return
        self._watched.add(id(model))
        counter = self  # hooks are closures, not bound methods: a deepcopy of the module shares them

        def pre_hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            counter._enter(args, kwargs)
            return None

        def post_hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            counter._leave()
            return None

        handles = [model.register_forward_pre_hook(pre_hook, with_kwargs=True),
                   model.register_forward_hook(post_hook, always_call=True)]
        self._undo.extend(handle.remove for handle in handles)
        if callable(getattr(type(model), "embed", None)) and "embed" not in vars(model):
            def counted_embed(module: Any, *args: Any, **kwargs: Any) -> Any:
                if not counter._open:
                    return type(module).embed(module, *args, **kwargs)
                counter._enter(args, kwargs)
                try:
                    return type(module).embed(module, *args, **kwargs)
                finally:
                    counter._leave()

            patched = types.MethodType(counted_embed, model)  # deepcopy binds a copy to the copy
            model.embed = patched

            def unpatch() -> None:
                if vars(model).get("embed") is patched:
                    del model.embed

            self._undo.append(unpatch)

    def close(self) -> None:
        """Remove every hook and wrapper; later calls are not counted."""
        self._open = False
        for undo in self._undo:
            undo()
        self._undo.clear()


# ---------------------------------------------------------------------------------------------
# the meter


class DistillMeter:
    """Measures one distillation: ``with meter: method.distill(ctx)``, then :attr:`cost`.

    Build the method's context with :meth:`wrap_progress` and :meth:`wrap_teacher` applied to
    its ``progress`` and ``teacher`` (:func:`ddr.runs.distill.build_context` does, given the
    meter) so the FLOP estimate and the teacher count see the method's loops and teacher.
    """

    def __init__(self, device: "torch.device | str") -> None:
        self.device = device
        self.flops = FlopSampler()
        self.teacher = TeacherCounter()
        self.cost: DistillCost | None = None
        """Set when the ``with`` block ends (also when it raises)."""
        self._start: tuple[float, float] = (0.0, 0.0)
        self._events: tuple[Any, Any] | None = None
        self._peak: Any = None

    def wrap_progress(self, progress: Callable[..., Any]) -> Callable[..., Any]:
        """``ctx.progress`` with the FLOP sampler added."""
        return self.flops.wrap(progress)

    def wrap_teacher(self, teacher: Callable[[], Any]) -> Callable[[], Any]:
        """``ctx.teacher`` with the forward counter added."""
        return self.teacher.wrap(teacher)

    def __enter__(self) -> "DistillMeter":
        from ddr.execute.student import PeakMemory

        _warm_up_flop_counter()
        self._peak = PeakMemory(self.device)
        if getattr(self.device, "type", str(self.device)).startswith("cuda"):
            import torch

            if torch.cuda.is_available():
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                self._events = (start, end)
        self._start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = time.perf_counter() - self._start[0]
        cpu = time.process_time() - self._start[1]
        gpu = None
        if self._events is not None:
            start, end = self._events
            end.record()
            end.synchronize()
            gpu = start.elapsed_time(end) / 1000.0  # milliseconds -> seconds
        self.teacher.close()
        self.cost = DistillCost(
            wall_seconds=wall, cpu_seconds=cpu, gpu_seconds=gpu,
            peak_memory_bytes=self._peak.read() if self._peak is not None else None,
            flops_estimate=self.flops.flops, flops_method=self.flops.method,
            teacher_forward_images=self.teacher.images,
        )


# ---------------------------------------------------------------------------------------------
# the record's cost object


def module_bytes(models: Iterable[Any]) -> int:
    """Bytes of the parameters and buffers of ``models`` (``numel × element_size``)."""
    total = 0
    for model in models:
        for tensor in (*model.parameters(), *model.buffers()):
            total += int(tensor.numel()) * int(tensor.element_size())
    return total


def teacher_storage(resources: Any, strategy: str | None) -> tuple[int, bool]:
    """``(bytes, needed)``: the teacher's parameter and buffer bytes when the label strategy
    ``strategy`` (the evaluation's ``acc_syn_any`` strategy) relabels with a teacher, so training
    a student on the set needs it; ``(0, False)`` otherwise.

    The bytes are those of a fresh network of the protocol's teacher architecture (a teacher
    checkpoint loads strictly into it, so its size is the same), which never loads nor trains
    the teacher itself."""
    if not strategy or stored_views(strategy) is not None:  # a view budget stores labels, not the teacher
        return 0, False
    from ddr.engine.build import label_strategy_spec

    if not label_strategy_spec(strategy, system=resources.system).needs_teacher:
        return 0, False
    arch, params = resources.teacher_arch()
    return module_bytes([resources.make_model(0, arch, params)]), True


def stored_views(strategy: str | None) -> int | None:
    """K of a ``teacher_views:K`` label budget (None for any other strategy)."""
    if not strategy:
        return None
    from ddr.plugin.registry import parse_reference

    _, name, _, argument = parse_reference(str(strategy))
    if name != "teacher_views" or argument is None or not argument.strip().isdigit():
        return None
    return int(argument)


def storage_bytes(distilled: Any) -> dict[str, int]:
    """Bytes of the distilled set's images and soft labels as stored (float32)."""
    images = int(distilled.images.numel()) * 4
    soft = int(distilled.soft_labels.numel()) * 4 if distilled.soft_labels is not None else 0
    return {"images": images, "soft_labels": soft}


def storage(distilled: Any, *, teacher_bytes: int = 0, teacher_needed: bool = False,
            views: int | None = None, num_classes: int | None = None) -> tuple[dict[str, int], str]:
    """``({images, soft_labels, learned_lr, teacher, total}, note)``: bytes needed to train a
    student from ``distilled`` (float32 images and soft labels, 4 bytes for a learned LR, the
    teacher when the label strategy needs one) and one line saying what the total covers. Under
    a view budget (``views`` K, ``teacher_views:K``) the soft labels are the K stored float32 label
    vectors of ``num_classes`` per image, and the teacher is not needed."""
    stored = storage_bytes(distilled)
    images, soft = stored["images"], stored["soft_labels"]
    if views is not None and num_classes is not None:
        soft = int(distilled.labels.numel()) * int(views) * int(num_classes) * 4
    lr = 4 if getattr(distilled, "lr", None) is not None else 0
    teacher = int(teacher_bytes) if teacher_needed else 0
    parts = ["images"] + (["soft labels"] if soft else []) + (["learned LR"] if lr else [])
    if teacher_needed:
        parts.append("teacher")
        tail = "the label strategy relabels every batch with the teacher"
    elif views is not None:
        tail = f"{views} stored teacher labels per image (teacher_views:{views}); the teacher is not needed"
    else:
        tail = "the teacher is not needed"
    out = {"images": images, "soft_labels": soft, "learned_lr": lr, "teacher": teacher,
           "total": images + soft + lr + teacher}
    return out, f"{' + '.join(parts)} (float32); {tail}"


def evaluation_cost(result: Any, distilled: Any, resources: Any, distill: "DistillCost | None") -> dict[str, Any]:
    """The record's ``cost`` object (:func:`cost_record`): ``distill``'s numbers (``None`` for an
    evaluation of a given set: nulls), the evaluation's time and student epochs, and the bytes
    needed to train a student from ``distilled`` (the teacher's when the evaluated label strategy
    relabels with it; the stored labels under ``teacher_views:K``)."""
    strategy = result.run_spec.get("label_strategy")
    teacher_bytes, needed = teacher_storage(resources, strategy)
    stored, note = storage(distilled, teacher_bytes=teacher_bytes, teacher_needed=needed,
                           views=stored_views(strategy), num_classes=resources.dataset.num_classes)
    return cost_record(distill, eval_seconds=result.eval_seconds, students=result.students,
                       storage_bytes=stored, storage_note=note)


def _rounded(value: Any, digits: int = 3) -> Any:
    return None if value is None else round(float(value), digits)


def cost_record(distill: DistillCost | None, *, eval_seconds: float | None, students: Iterable[Any],
                storage_bytes: Mapping[str, int], storage_note: str) -> dict[str, Any]:
    """The run record's ``cost`` object (:data:`COST_KEYS`; ``None`` where unknown).

    Args:
        distill: the distillation's cost (``None`` for ``ddr eval``: every ``distill_*`` is null).
        eval_seconds: the evaluation's wall seconds.
        students: the evaluation's student job results (``seconds``, ``epochs_trained``).
        storage_bytes, storage_note: from :func:`storage`.
    """
    d = distill or DistillCost()
    jobs = list(students)
    return {
        "distill_wall_seconds": _rounded(d.wall_seconds),
        "distill_cpu_seconds": _rounded(d.cpu_seconds),
        "distill_gpu_seconds": _rounded(d.gpu_seconds, 6),
        "distill_peak_memory_bytes": None if d.peak_memory_bytes is None else int(d.peak_memory_bytes),
        "distill_flops_estimate": None if d.flops_estimate is None else int(d.flops_estimate),
        "distill_flops_method": d.flops_method,
        "teacher_forward_images": None if d.teacher_forward_images is None else int(d.teacher_forward_images),
        "eval_wall_seconds": _rounded(eval_seconds),
        "eval_student_seconds": round(sum(float(j.seconds) for j in jobs), 3),
        "eval_student_epochs": sum(int(j.epochs_trained) for j in jobs),
        "storage_bytes": dict(storage_bytes),
        "storage_note": storage_note,
    }
