"""Registry[Spec]: one flat, frozen table per component kind, with honest name resolution.

Names resolve as ``[provider/]name[.preset][:argument]``:

* exactly one provider of the name: that spec;
* none: :class:`UnknownComponentError` with did-you-mean suggestions, the ``ddr list`` hint and
  any plugin that failed to load (it might have provided the name);
* several: :class:`AmbiguousComponentError` listing every provider and the two fixes (qualify the
  name, or block a plugin). Built-ins get no precedence: installing a package never silently
  changes what a name means.
"""

from __future__ import annotations

import builtins
import difflib
import fnmatch
import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ddr.errors import AmbiguousComponentError, InvalidSpecError, UnknownComponentError
from ddr.plugin.faults import describe, is_plugin_fault, no_process_exit
from ddr.plugin.specs import ComponentSpec

S = TypeVar("S", bound=ComponentSpec)


@dataclass(frozen=True)
class Resolved(Generic[S]):
    """A resolved reference: the spec, the preset it named, the argument after ``:`` and the
    merged parameters (spec defaults < preset < overrides)."""

    spec: S
    preset: str | None
    argument: str | None
    params: dict[str, Any]

    @property
    def name(self) -> str:
        """The canonical reference (``name[.preset][:argument]``) for records and cache keys."""
        ref = self.spec.name + (f".{self.preset}" if self.preset else "")
        return ref + (f":{self.argument}" if self.argument is not None else "")


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def parse_reference(ref: str) -> tuple[str | None, str, str | None, str | None]:
    """Split ``[provider/]name[.preset][:argument]`` into its four parts."""
    argument = None
    if ":" in ref:
        ref, argument = ref.split(":", 1)
    provider = None
    if "/" in ref:
        provider, ref = ref.split("/", 1)
    preset = None
    if "." in ref:
        ref, preset = ref.split(".", 1)
    return provider, ref, preset, argument


@dataclass
class Registry(Generic[S]):
    """All specs of one kind, with the plugins that failed to load (for error messages)."""

    kind: str
    plural: str
    specs: list[S] = field(default_factory=list)
    failed_plugins: Sequence[str] = ()
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict)
    """plugin name -> (distribution, version), for qualification by distribution and messages."""

    def __post_init__(self) -> None:
        self._by_name: dict[str, list[S]] = {}
        for spec in self.specs:
            for key in (spec.name, *spec.aliases):
                bucket = self._by_name.setdefault(key, [])
                if spec not in bucket:
                    bucket.append(spec)
        self._materialized: dict[tuple[str | None, str], Any] = {}

    # -- lookup ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._by_name, key=_natural_key)

    def list(self, pattern: str | None = None, exclude: str | None = None) -> list[S]:
        """Specs whose name (or alias) matches the fnmatch ``pattern``, in natural order."""
        out: list[S] = []
        for spec in sorted(self.specs, key=lambda s: (_natural_key(s.name), s.provider or "")):
            keys = (spec.name, *spec.aliases)
            if pattern and not any(fnmatch.fnmatch(k, pattern) or pattern in k for k in keys):
                continue
            if exclude and any(fnmatch.fnmatch(k, exclude) for k in keys):
                continue
            out.append(spec)
        return out

    def conflicts(self) -> "dict[str, builtins.list[S]]":
        """Names (or aliases) claimed by more than one plugin."""
        return {name: specs for name, specs in self._by_name.items()
                if len({s.provider for s in specs}) > 1}

    def __contains__(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except (UnknownComponentError, AmbiguousComponentError):
            return False
        return True

    def get(self, ref: str) -> S:
        return self.resolve(ref).spec

    def resolve(self, ref: str, overrides: dict[str, Any] | None = None) -> Resolved[S]:
        """Resolve ``[provider/]name[.preset][:argument]`` to exactly one spec."""
        if not isinstance(ref, str) or not ref:
            raise UnknownComponentError(f"{self.kind} name must be a non-empty string, got {ref!r}")
        provider, name, preset, argument = parse_reference(ref.strip())
        candidates = list(self._by_name.get(name, ()))
        if provider is not None:
            candidates = [s for s in candidates if s.provider == provider
                          or self.provenance.get(s.provider or "", ("",))[0] == provider]
        if not candidates:
            raise UnknownComponentError(self._unknown_message(ref, name, provider))
        if len(candidates) > 1:
            raise AmbiguousComponentError(self._ambiguous_message(name, candidates))
        spec = candidates[0]
        if argument is not None and not spec.accepts_argument:
            raise UnknownComponentError(
                f"{self.kind} '{spec.name}' takes no ':ARGUMENT' (got {ref!r}); "
                f"see `ddr list {self.plural}`"
            )
        if argument is None and spec.accepts_argument:
            raise UnknownComponentError(
                f"{self.kind} '{spec.name}' needs an argument: write '{spec.name}:<value>' "
                f"({spec.summary or 'see ddr list ' + self.plural})"
            )
        params = dict(spec.defaults)
        if preset is not None:
            if preset not in spec.presets:
                known = ", ".join(sorted(spec.presets)) or "none"
                raise UnknownComponentError(
                    f"{self.kind} '{spec.name}' has no preset '{preset}' (presets: {known})"
                )
            params.update(spec.presets[preset])
        params.update(overrides or {})
        return Resolved(spec=spec, preset=preset, argument=argument, params=params)

    def _unknown_message(self, ref: str, name: str, provider: str | None) -> str:
        if provider is not None and name in self._by_name:
            providers = ", ".join(sorted({s.provider or "?" for s in self._by_name[name]}))
            msg = f"{self.kind} '{name}' is not provided by '{provider}' (it is provided by: {providers})"
        else:
            msg = f"unknown {self.kind} '{ref}'"
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
            if close:
                msg += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        msg += f"\n  see `ddr list {self.plural}` for what is installed"
        if self.failed_plugins:
            msg += "\n  note: these plugins failed to load and may provide it: " + "; ".join(self.failed_plugins)
            msg += "\n  run `ddr plugins` or `ddr doctor` for details"
        return msg

    def _ambiguous_message(self, name: str, candidates: Iterable[S]) -> str:
        lines = [f"{self.kind} '{name}' is provided by more than one plugin:"]
        providers = []
        for spec in candidates:
            dist = self.provenance.get(spec.provider or "")
            label = f" ({dist[0]} {dist[1]})" if dist else ""
            lines.append(f"  - {spec.provider}{label} -> {spec.target_path}")
            providers.append(spec.provider or "?")
        lines.append("pick one: " + "  or  ".join(f"'{p}/{name}'" for p in providers))
        lines.append("or block one: " + "  or  ".join(f"-p no:{p}" for p in providers if p != "builtins")
                     + "  (or DDR_DISABLE_PLUGINS=NAME)")
        return "\n".join(lines)

    # -- lazy targets --------------------------------------------------------------------------
    def materialize(self, spec: S) -> Any:
        """Import ``spec.target`` (cached) and return the object it names."""
        key = (spec.provider, spec.name)
        if key in self._materialized:
            return self._materialized[key]
        obj = import_target(spec)
        self._materialized[key] = obj
        return obj


def import_target(spec: ComponentSpec) -> Any:
    """Import a spec's ``"module:attr"`` target, turning failures into :class:`InvalidSpecError`."""
    target = spec.target
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        with no_process_exit():
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
    except BaseException as exc:  # any import-time failure of plugin code is the plugin's problem
        if not is_plugin_fault(exc):
            raise
        raise InvalidSpecError(
            f"{spec.kind} '{spec.name}' (from plugin '{spec.provider}'): cannot import target "
            f"'{target}': {describe(exc)}"
        ) from exc
    if not callable(obj):
        raise InvalidSpecError(f"{spec.kind} '{spec.name}': target '{target}' is not callable")
    return obj
