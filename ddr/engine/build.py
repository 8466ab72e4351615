"""Build runtime components (datasets, models, augmentations, label strategies) from names.

This is the only place that turns a registry reference into an object, so every command and
the Python API resolve names, merge parameters and report errors the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DataError, DdrError
from ddr.plugin.manager import PluginSystem
from ddr.plugin.specs import LabelStrategySpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline
    from ddr.engine.data import ImageDataset
    from ddr.engine.labels import LabelStrategy, Loss

def _system(system: PluginSystem | None) -> PluginSystem:
    return system if system is not None else PluginSystem()


def _call_target(target: Any, what: str, **kwargs: Any) -> Any:
    """Call a component target, turning a bad parameter into a ConfigError."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        signature = None
    if signature is not None and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        unknown = [k for k in kwargs if k not in signature.parameters]
        if unknown:
            allowed = [n for n, p in signature.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
            raise ConfigError(f"{what}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return target(**kwargs)


def load_dataset(ref: str, *, params: Mapping[str, Any] | None = None, download: bool = False,
                 zca: bool = False, system: PluginSystem | None = None,
                 cache: dict[Any, "ImageDataset"] | None = None) -> "ImageDataset":
    """Load a dataset by reference (``digits``, ``cifar10``, ``folder:/data/x``).

    ``cache`` (a Session's) keeps loaded datasets by reference, parameters and preprocessing.
    """
    from ddr.store.hashing import canonical_json
    from ddr.store.paths import cache_dir, data_dir

    registry = _system(system).datasets()
    resolved = registry.resolve(ref, dict(params or {}))
    key = (resolved.name, canonical_json({"params": resolved.params, "zca": zca, "provider": resolved.spec.provider}))
    if cache is not None and key in cache:
        return cache[key]
    target = registry.materialize(resolved.spec)
    kwargs: dict[str, Any] = dict(resolved.params)
    kwargs["root"] = data_dir()
    if resolved.argument is not None:
        kwargs["argument"] = resolved.argument
    if download:
        kwargs["download"] = True
    dataset = _call_target(target, f"dataset '{resolved.name}'", **kwargs)
    if len(dataset.train) == 0 or len(dataset.test) == 0:
        raise DataError(f"dataset '{resolved.name}' has an empty train or test split")
    if zca:
        from ddr.builtins.datasets.zca import apply_zca

        dataset = apply_zca(dataset, cache_dir())
    if cache is not None:
        cache[key] = dataset
    return dataset


def build_model(ref: str, dataset: "ImageDataset", *, params: Mapping[str, Any] | None = None,
                seed: int, device: "torch.device | str" = "cpu", system: PluginSystem | None = None) -> "torch.nn.Module":
    """A fresh network for ``dataset``, initialised deterministically from ``seed``."""
    import torch

    registry = _system(system).architectures()
    resolved = registry.resolve(ref, dict(params or {}))
    target = registry.materialize(resolved.spec)
    kwargs = dict(resolved.params)
    if resolved.argument is not None:
        kwargs["argument"] = resolved.argument
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _call_target(target, f"architecture '{resolved.name}'", channels=dataset.channels,
                             num_classes=dataset.num_classes, image_size=tuple(dataset.image_size), **kwargs)
    return model.to(device)


def _reference(item: Any, what: str) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{name: ..., **params}`` (as written in protocol YAML) -> (name, params)."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping) and "name" in item:
        return item["name"], {k: v for k, v in item.items() if k != "name"}
    raise ConfigError(f"{what} is a name or a {{name: ..., params}} mapping, got {item!r}")


def build_augmentations(items: Sequence[Any] | None, *, system: PluginSystem | None = None) -> "Pipeline":
    """A :class:`~ddr.engine.augment.Pipeline` from a list of names or ``{name: ..., **params}`` entries."""
    from ddr.engine.augment import Pipeline

    registry = _system(system).augmentations()
    augs, names = [], []
    for item in items or []:
        resolved = registry.resolve(*_reference(item, "an augmentation entry"))
        target = registry.materialize(resolved.spec)
        augs.append(_call_target(target, f"augmentation '{resolved.name}'", **resolved.params))
        names.append(resolved.name)
    return Pipeline(augs, names)


def build_loss(item: Any, *, system: PluginSystem | None = None) -> "Loss | None":
    """A loss from a name, ``{name: ..., **params}`` or ``None`` (-> ``None``)."""
    if item is None:
        return None
    registry = _system(system).losses()
    resolved = registry.resolve(*_reference(item, "a loss"))
    target = registry.materialize(resolved.spec)
    return _call_target(target, f"loss '{resolved.name}'", **resolved.params)


def loss_spec(item: Any, *, system: PluginSystem | None = None) -> Any:
    """The spec of a loss reference (a name or ``{name: ..., **params}``): did-you-mean on typos."""
    return _system(system).losses().resolve(*_reference(item, "a loss")).spec


def label_strategy_spec(ref: str, *, system: PluginSystem | None = None) -> LabelStrategySpec:
    """The spec of a label strategy reference."""
    return _system(system).label_strategies().get(ref)


def build_label_strategy(ref: str, *, loss: Any = None, system: PluginSystem | None = None) -> "LabelStrategy":
    """A label-strategy object with ``loss`` (name/mapping; ``None``: the strategy's default loss)."""
    registry = _system(system).label_strategies()
    resolved = registry.resolve(ref)
    target = registry.materialize(resolved.spec)
    loss_ref = loss if loss is not None else resolved.spec.default_loss
    if loss_spec(loss_ref, system=system).soft and not resolved.spec.soft:
        raise ConfigError(f"loss {_reference(loss_ref, 'a loss')[0]!r} compares with soft targets but the label strategy "
                          f"'{resolved.name}' gives class labels only; use a soft strategy (stored_soft, teacher) "
                          "or a hard loss (ce)")
    built_loss = build_loss(loss_ref, system=system)
    kwargs: dict[str, Any] = dict(resolved.params)
    if resolved.argument is not None:  # a family such as teacher_views:K
        kwargs["argument"] = resolved.argument
    strategy = _call_target(target, f"label strategy '{resolved.name}'", loss=built_loss, **kwargs)
    for attr in ("prepare", "targets", "loss"):
        if not callable(getattr(strategy, attr, None)):
            raise DdrError(f"label strategy '{resolved.name}' ({resolved.spec.target_path}) has no {attr}() method")
    return strategy
