"""Contract check for method plugins: ``check_method(spec)`` distills on a tiny real problem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_method(method: Any, *, dataset: str = "digits", ipc: int = 1, params: Mapping[str, Any] | None = None,
                 seed: int = 0, device: str = "cpu", preset: str | None = "smoke") -> Any:
    """Run a method (a :class:`~ddr.plugin.specs.MethodSpec` or its class) on ``dataset`` and check it.

    A spec runs with its schema defaults, then its ``smoke`` preset (every method should declare
    one that distils in seconds), then ``params``; the parameters are validated against the
    schema first. The teacher (``ctx.teacher()``) is the digits reference trained for 2 epochs,
    with the method's ``protocol_overrides`` applied.

    Checks: ``distill`` returns a :class:`~ddr.method.DistilledSet` with ``ipc * K`` float32
    images of the dataset's shape in class-major order, int64 labels, finite values, a valid pixel
    space, soft labels of shape ``[N, K]`` when present, and the same output for the same seed.
    Returns the distilled set. Raises ``AssertionError`` with a message naming what failed.
    """
    import torch

    from ddr.errors import DdrError
    from ddr.method.distilled import PIXEL_SPACES, DistilledSet, validate_distilled
    from ddr.plugin.registry import import_target
    from ddr.plugin.specs import MethodSpec
    from ddr.resources.session import Session
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import EvalOptions, Evaluator

    protocol_overrides: dict[str, Any] = {"real.epochs": 2}
    if isinstance(method, MethodSpec):
        protocol_overrides.update(method.protocol_overrides)
        cls = import_target(method)
        merged = dict(method.defaults)
        if preset is not None and preset in method.presets:
            merged.update(method.presets[preset])
        try:
            merged.update(method.check_params(dict(params or {})))
        except DdrError as exc:
            raise AssertionError(f"parameters do not fit the method's schema: {exc}") from exc
    else:
        cls, merged = method, dict(params or {})
    evaluator = Evaluator(EvalOptions(dataset=dataset, ipc=ipc, seed=seed, device=device, num_eval=1,
                                      overrides=protocol_overrides), session=Session(progress_bars=False))
    ds = evaluator.resources.dataset

    def once() -> DistilledSet:
        out = cls().distill(build_context(evaluator.resources, params=dict(merged), ipc=ipc))
        assert isinstance(out, DistilledSet), f"distill() returned {type(out).__name__}, not a DistilledSet"
        return out

    first = once()
    assert first.pixel_space in PIXEL_SPACES, f"pixel_space {first.pixel_space!r} is not one of {PIXEL_SPACES}"
    assert first.images.dtype == torch.float32, f"images must be float32, got {first.images.dtype}"
    assert first.labels.dtype == torch.int64, f"labels must be int64, got {first.labels.dtype}"
    try:
        validate_distilled(first, num_classes=ds.num_classes, ipc=ipc, channels=ds.channels,
                           image_size=(ds.image_size[0], ds.image_size[1]), mean=ds.mean, std=ds.std)
    except DdrError as exc:
        raise AssertionError(f"the distilled set fails validation: {exc}") from exc
    expected = torch.arange(ds.num_classes).repeat_interleave(ipc)
    assert torch.equal(first.labels.cpu(), expected), "labels must be class-major: ipc images of class 0, then 1, ..."
    second = once()
    assert torch.equal(first.images.cpu(), second.images.cpu()), "the same seed must give the same images"
    return first
