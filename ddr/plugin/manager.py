"""The plugin system: loading, blocking, provenance and the typed registries.

Load order:

1. essential built-ins (datasets, architectures, label strategies, augmentations, protocols)
   by import; they cannot be blocked;
2. entry points of group ``ddr`` (built-in methods come this way too, from this distribution),
   each loaded in isolation with provenance ``(entry-point name, distribution, version)``;
   ``-p no:NAME`` / ``DDR_DISABLE_PLUGINS=a,b`` block one; ``DDR_DISABLE_PLUGIN_AUTOLOAD=1`` turns
   autoload off, after which only ``-p NAME`` (or ``DDR_PLUGINS=a,b``) loads plugins; ``-p`` also
   accepts an importable module path for local development;
3. every plugin's hooks are checked against the specs: a misspelled hook name or an argument the
   spec lacks fails that plugin alone.

A failure never bricks listing commands; ``DDR_STRICT_PLUGINS=1`` (or ``strict=True``) makes it
fatal, and runs refuse to start while any plugin is broken.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from ddr.errors import InvalidSpecError, PluginLoadError
from ddr.plugin import hookspecs
from ddr.plugin.faults import describe, is_plugin_fault, no_process_exit
from ddr.plugin.registry import Registry
from ddr.plugin.specs import (
    HOOK_OF_KIND,
    SPEC_TYPES,
    ArchitectureSpec,
    AugmentationSpec,
    ComponentSpec,
    DatasetSpec,
    ExecutorSpec,
    LabelStrategySpec,
    LossSpec,
    MethodSpec,
    MetricSpec,
    ProtocolSpec,
)

ENTRY_POINT_GROUP = "ddr"
BUILTIN_PROVIDER = "builtins"
BUILTIN_MODULES = (
    "ddr.builtins.datasets",
    "ddr.builtins.architectures",
    "ddr.builtins.labels",
    "ddr.builtins.losses",
    "ddr.builtins.augmentations",
    "ddr.builtins.protocols",
    "ddr.builtins.executors",
    "ddr.builtins.formats",
    "ddr.builtins.metrics",
)


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class PluginInfo:
    """One plugin as ``ddr plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    module: str | None
    status: str  # active | blocked | failed
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "hooks": list(self.hooks),
            "error": self.error,
            "builtin": self.builtin,
        }

    def short(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"{self.name}{dist}: {self.error}"


class PluginSystem:
    """A pluggy manager plus ddr's loading policy and typed registries."""

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        block: Iterable[str] = (),
        load: Iterable[str] = (),
        strict: bool | None = None,
        builtins: bool = True,
    ) -> None:
        self.pm = pluggy.PluginManager("ddr")
        self.pm.add_hookspecs(hookspecs)
        self.autoload = (not _env_flag("DDR_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload
        self.strict = _env_flag("DDR_STRICT_PLUGINS") if strict is None else strict
        self.blocked = set(block) | set(_env_list("DDR_DISABLE_PLUGINS"))
        self.requested = list(dict.fromkeys([*load, *_env_list("DDR_PLUGINS")]))
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry[Any]] = {}
        self.spec_errors: list[str] = []
        if builtins:
            for module_name in BUILTIN_MODULES:
                self._register_builtin(module_name)
        self._load_entry_points()
        self._load_requested_modules()

    # -- loading -------------------------------------------------------------------------------
    def _register_builtin(self, module_name: str) -> None:
        module = importlib.import_module(module_name)
        self.pm.register(module, name=f"{BUILTIN_PROVIDER}:{module_name}")
        self._check_hooks(module, f"{BUILTIN_PROVIDER}:{module_name}")
        info = self.plugins.setdefault(
            BUILTIN_PROVIDER,
            PluginInfo(name=BUILTIN_PROVIDER, distribution="ddr-bench", version=_own_version(),
                       module="ddr.builtins", status="active", builtin=True),
        )
        info.hooks = sorted(set(info.hooks) | set(self._hooks_of(module)))

    def _load_entry_points(self) -> None:
        seen: set[tuple[str, str]] = set()
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist_name = ep.dist.metadata["Name"] if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            key = (dist_name or "", ep.name)
            if key in seen:
                continue
            seen.add(key)
            info = PluginInfo(name=ep.name, distribution=dist_name, version=version, module=ep.value, status="active")
            if ep.name in self.plugins:
                other = self.plugins[ep.name]
                self._fail(info, f"plugin name '{ep.name}' is already used by {other.distribution}; "
                                 "rename the entry point or uninstall one of the two distributions")
                continue
            self.plugins[ep.name] = info
            if ep.name in self.blocked:
                info.status = "blocked"
                continue
            if not self.autoload and ep.name not in self.requested:
                info.status = "blocked"
                info.error = "autoload disabled (DDR_DISABLE_PLUGIN_AUTOLOAD); load it with -p " + ep.name
                continue
            try:
                with no_process_exit():
                    module = ep.load()
            except BaseException as exc:  # an arbitrary plugin may raise anything at import, sys.exit included
                if not is_plugin_fault(exc):
                    raise
                self._fail(info, exc)
                continue
            self._register(module, info)

    def _load_requested_modules(self) -> None:
        """``-p some.module`` for local development: import a module that is no entry point."""
        for name in self.requested:
            if name in self.plugins or name in self.blocked:
                continue
            info = PluginInfo(name=name, distribution=None, version=None, module=name, status="active")
            self.plugins[name] = info
            try:
                with no_process_exit():
                    module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name is not None and name != exc.name and not name.startswith(exc.name + "."):
                    self._fail(info, exc)  # the module exists; something it imports does not
                else:
                    self._fail(info, f"-p {name}: no plugin entry point or importable module of that name "
                                     f"({type(exc).__name__}: {exc})")
                continue
            except BaseException as exc:  # a local plugin module may raise anything at import
                if not is_plugin_fault(exc):
                    raise
                self._fail(info, exc)
                continue
            self._register(module, info)

    def _register(self, module: ModuleType | Any, info: PluginInfo) -> None:
        try:
            self.pm.register(module, name=info.name)
        except Exception as exc:  # pluggy.PluginValidationError and friends
            self._fail(info, exc)
            return
        try:
            self._check_hooks(module, info.name)
        except PluginLoadError as exc:
            self.pm.unregister(module)
            self._fail(info, str(exc.cause))
            return
        info.hooks = self._hooks_of(module)

    def _check_hooks(self, module: Any, name: str) -> None:
        for caller in self.pm.get_hookcallers(module) or []:
            if not caller.has_spec():
                raise PluginLoadError(name, None, None,
                                      f"unknown hook '{caller.name}' (misspelled?); "
                                      f"known hooks: {', '.join(sorted(_hook_names()))}")

    def _hooks_of(self, module: Any) -> list[str]:
        return sorted(c.name for c in self.pm.get_hookcallers(module) or [])

    def _fail(self, info: PluginInfo, cause: BaseException | str) -> None:
        info.status = "failed"
        info.error = cause if isinstance(cause, str) else describe(cause)
        self.plugins[info.name] = info
        if self.strict:
            raise PluginLoadError(info.name, info.distribution, info.version, info.error)

    # -- state ---------------------------------------------------------------------------------
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "failed"]

    def require_healthy(self) -> None:
        """Raise if any plugin failed to load (runs must not silently miss a component)."""
        for kind in SPEC_TYPES:  # a hook returning bad records fails its plugin only when collected
            self.registry(kind)
        failed = self.failures()
        if failed:
            first = failed[0]
            raise PluginLoadError(first.name, first.distribution, first.version, first.error or "unknown error")

    def provenance(self) -> dict[str, tuple[str, str]]:
        return {name: (p.distribution or "", p.version or "") for name, p in self.plugins.items()}

    def describe(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in sorted(self.plugins.values(), key=lambda p: (not p.builtin, p.name))]

    # -- registries ----------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry[Any]:
        """The registry of ``kind`` (``methods``, ``datasets``, ``label-strategies``, ...)."""
        if kind not in SPEC_TYPES:
            raise InvalidSpecError(f"unknown component kind {kind!r}; kinds: {', '.join(SPEC_TYPES)}")
        if kind not in self._registries:
            spec_type = SPEC_TYPES[kind]
            specs = self._collect(HOOK_OF_KIND[kind], spec_type)
            self._registries[kind] = Registry(
                kind=spec_type.kind, plural=spec_type.plural, specs=specs,
                failed_plugins=[p.short() for p in self.failures()],
                provenance=self.provenance(),
            )
        return self._registries[kind]

    def _collect(self, hook_name: str, spec_type: type[ComponentSpec]) -> list[Any]:
        out: list[Any] = []
        claimed: dict[str, set[str]] = {}  # provider -> names and aliases it returned so far
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            plugin_name = impl.plugin_name
            provider = BUILTIN_PROVIDER if plugin_name.startswith(BUILTIN_PROVIDER + ":") else plugin_name
            info = self.plugins.get(provider)
            try:
                if getattr(impl, "wrapper", False) or getattr(impl, "hookwrapper", False):
                    raise InvalidSpecError(f"{hook_name} must not be implemented as a wrapper")
                with no_process_exit():
                    records = impl.function()
                    if records is None:
                        continue
                    records = list(records)
                for record in records:
                    if not isinstance(record, spec_type):
                        raise InvalidSpecError(
                            f"{hook_name} returned {type(record).__name__}; expected {spec_type.__name__} records"
                        )
                    if record.provider is not None:
                        raise InvalidSpecError(f"{spec_type.kind} '{record.name}': leave 'provider' empty, ddr fills it")
                keys = [key for record in records for key in (record.name, *record.aliases)]
                repeated = sorted({k for k in keys if keys.count(k) > 1} | (set(keys) & claimed.get(provider, set())))
                if repeated:
                    raise InvalidSpecError(f"{spec_type.kind} name(s) {', '.join(repeated)} returned twice; "
                                           "names and aliases must be unique within a plugin")
            except BaseException as exc:
                if not is_plugin_fault(exc):
                    raise
                dist = f" ({info.distribution} {info.version})" if info and info.distribution else ""
                message = f"plugin '{provider}'{dist}, hook {hook_name}: {describe(exc)}"
                if self.strict or provider == BUILTIN_PROVIDER:
                    raise InvalidSpecError(message) from exc
                self.spec_errors.append(message)
                if info is not None:
                    info.status, info.error = "failed", message
                continue
            from dataclasses import replace

            claimed.setdefault(provider, set()).update(keys)
            out.extend(replace(record, provider=provider) for record in records)
        return out

    def datasets(self) -> Registry[DatasetSpec]:
        return self.registry("datasets")

    def architectures(self) -> Registry[ArchitectureSpec]:
        return self.registry("architectures")

    def label_strategies(self) -> Registry[LabelStrategySpec]:
        return self.registry("label-strategies")

    def losses(self) -> Registry[LossSpec]:
        return self.registry("losses")

    def executors(self) -> Registry[ExecutorSpec]:
        return self.registry("executors")

    def augmentations(self) -> Registry[AugmentationSpec]:
        return self.registry("augmentations")

    def methods(self) -> Registry[MethodSpec]:
        return self.registry("methods")

    def protocols(self) -> Registry[ProtocolSpec]:
        return self.registry("protocols")

    def metrics(self) -> Registry[MetricSpec]:
        return self.registry("metrics")

    def all_conflicts(self) -> dict[str, dict[str, list[Any]]]:
        return {kind: c for kind in SPEC_TYPES if (c := self.registry(kind).conflicts())}


def _hook_names() -> list[str]:
    return [name for name in dir(hookspecs) if name.startswith("ddr_")]


def _own_version() -> str:
    from ddr import __version__

    return __version__
