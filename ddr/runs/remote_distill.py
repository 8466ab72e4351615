"""Distilling in another process: what a distillation task carries and what its worker does.

An executor that runs work elsewhere offers ``submit(function, argument, what=..., device=...)``
(the ``ray`` executor does). :func:`ddr.runs.distill.distill` then sends :func:`distill_task`
there with a :class:`DistillTask` instead of running the method in this process:

* the driver resolves the method and its parameters, computes the distillation's content key,
  and ships the teacher's weights when the method needs one (trained here first, once);
* the worker rebuilds the plugin system, a session and the resources from the same settings
  (with the ``local`` executor and the driver's torch settings), runs the method with the same
  seeds through the same code (:func:`ddr.runs.distill.execute_method`) under the same
  ``--timeout``, and returns the set as CPU tensors with its log lines and what it cost, measured
  in the worker (:class:`ddr.runs.cost.DistillCost`: the worker's wall, CPU and GPU seconds);
* the driver validates the set, stamps its metadata and stores it: the cache is written only
  by the driver, so the set is the one ``local`` would have made, bit for bit on equal hardware.

Files the options name (a protocol YAML, a dataset folder) and assets a method builds on
demand (MTT's experts, under ``DDR_CACHE_DIR``, passed to the worker) must be reachable from
the worker: true for a local Ray, and for a cluster with a shared file system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError, portable_error

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.distilled import DistilledSet
    from ddr.protocol.config import Protocol
    from ddr.resources.service import Resources
    from ddr.runs.cost import DistillCost
    from ddr.runs.distill import MethodChoice


@dataclass
class DistillTask:
    """Everything a worker needs to distill as the driver would (plain, picklable data).

    Attributes:
        plugins: the driver's plugin-system settings (autoload, block and load lists, strict).
        torch: the driver's torch settings that change numbers (threads, determinism).
        protocol: the driver's resolved protocol; resources: what rebuilds the driver's
            resources (:meth:`ddr.resources.Resources.portable`: the ``local`` executor, the
            driver's resolved device type, no teacher file: the teacher travels in ``teachers``).
        ipc: images per class to distill.
        method: the method reference as resolved (``dm``, ``dm.paper``); ``params``: its
            resolved parameters (the worker checks it resolves the same ones).
        provenance: the driver's (distribution, version) of the method's plugin.
        teachers: ``{"arch": (name, params), "states": [state dict, ...]}`` for a teacher-based
            method, else ``None``.
        cache_dir: the driver's cache root (``DDR_CACHE_DIR``) for assets built on demand.
        auto_assets, timeout: as for :func:`ddr.runs.distill.distill` (timeout in seconds).
    """

    plugins: dict[str, Any]
    torch: dict[str, Any]
    protocol: "Protocol"
    resources: dict[str, Any]
    ipc: int
    method: str
    params: dict[str, Any]
    provenance: tuple[str, str]
    teachers: dict[str, Any] | None = None
    cache_dir: str | None = None
    auto_assets: bool = True
    timeout: float | None = None


@dataclass
class DistillReply:
    """A worker's distillation: the set (CPU tensors), wall seconds, peak device memory (bytes),
    the messages it logged and its whole cost as measured in the worker (``cost``; ``None`` from
    a worker of a ddr that did not measure it)."""

    distilled: "DistilledSet"
    seconds: float
    peak_memory_bytes: int | None
    messages: list[str] = field(default_factory=list)
    cost: "DistillCost | None" = None

    def distill_cost(self) -> "DistillCost":
        """The worker's measured cost, else what the reply's ``seconds`` and peak memory say."""
        from ddr.runs.cost import DistillCost

        if self.cost is not None:
            return self.cost
        return DistillCost(wall_seconds=self.seconds, peak_memory_bytes=self.peak_memory_bytes)


def make_task(choice: "MethodChoice", resources: "Resources", ipc: int, *, auto_assets: bool,
              timeout: float | None) -> DistillTask:
    """The task that distills ``choice`` at ``ipc`` as ``resources`` would here (teachers trained
    here if needed)."""
    from ddr.execute.portable import plugin_settings, state_dict_cpu, torch_settings
    from ddr.store.cache import cache_root

    system = resources.system
    teachers = None
    if choice.spec.needs_teacher:
        teachers = {"arch": resources.teacher_arch(), "states": [state_dict_cpu(t) for t in resources.teachers()]}
    return DistillTask(
        plugins=plugin_settings(system), torch=torch_settings(), protocol=resources.protocol,
        resources=resources.portable(), ipc=ipc, method=choice.name, params=dict(choice.params),
        provenance=tuple(system.provenance().get(choice.spec.provider or "", ("", ""))),
        teachers=teachers, cache_dir=str(cache_root()), auto_assets=auto_assets, timeout=timeout,
    )


def distill_task(task: DistillTask) -> dict[str, Any]:
    """Run ``task`` in this (worker) process: ``{"reply": DistillReply}`` or ``{"error": ...}``."""
    try:
        return {"reply": _distill(task)}
    except DdrError as exc:
        return {"error": portable_error(exc)}


def _distill(task: DistillTask) -> DistillReply:
    from ddr.execute.portable import apply_torch_settings, frozen_models
    from ddr.plugin.manager import PluginSystem
    from ddr.resources.service import Resources
    from ddr.resources.session import Session
    from ddr.runs.distill import execute_method, resolve_method

    apply_torch_settings(task.torch)
    if task.cache_dir is not None:
        os.environ["DDR_CACHE_DIR"] = task.cache_dir
    system = PluginSystem(**task.plugins)
    system.require_healthy()
    messages: list[str] = []
    session = Session(system=system, log=messages.append, progress_bars=False)
    resources = Resources(session, task.protocol, **task.resources)
    choice = resolve_method(system, task.method, resources.dataset_ref, task.params, ipc=task.ipc)
    here = tuple(system.provenance().get(choice.spec.provider or "", ("", "")))
    if choice.params != task.params or here != tuple(task.provenance):
        raise DdrError(f"method '{task.method}' on this Ray worker is not the driver's (plugin "
                       f"{' '.join(here) or '?'} here, {' '.join(task.provenance) or '?'} in the driver; parameters "
                       f"{'equal' if choice.params == task.params else 'differ'}); install the same ddr and plugins "
                       "on every node")
    if task.teachers is not None:
        arch, params = task.teachers["arch"]
        resources.use_teachers(frozen_models(task.teachers["states"], lambda: resources.make_model(0, arch, params)))
    distilled, cost = execute_method(choice, resources, task.ipc, auto_assets=task.auto_assets, timeout=task.timeout)
    return DistillReply(distilled=moved(distilled, "cpu"), seconds=float(cost.wall_seconds or 0.0),
                        peak_memory_bytes=cost.peak_memory_bytes, messages=messages, cost=cost)


def moved(distilled: "DistilledSet", device: Any) -> "DistilledSet":
    """``distilled`` with its tensors on ``device`` (a copy; meta shared)."""
    soft = distilled.soft_labels
    return replace(distilled, images=distilled.images.detach().to(device), labels=distilled.labels.detach().to(device),
                   soft_labels=None if soft is None else soft.detach().to(device))
