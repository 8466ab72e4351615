"""Method parameter schemas: one declaration per parameter, for built-in and third-party methods.

A method declares its parameters in its spec as :class:`ParamSpec` records (name, default, type,
one-line doc, optional choices and minimum). The schema is the single source of the method's
defaults, of ``ddr describe method NAME`` and ``ddr list methods --json``, and of validation:
an unknown key is an error with a did-you-mean, a value of the wrong type or out of range is an
error naming the parameter. A spec that gives only ``defaults={...}`` (the short form) gets a
schema inferred from the default values, so every method is checked the same way.

Never imports torch.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ddr.errors import ConfigError, InvalidSpecError

PARAM_TYPES = ("int", "float", "str", "bool", "mapping", "list", "any")
"""The value types a parameter may declare (``any`` accepts every JSON-like value)."""


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return "any"


@dataclass(frozen=True)
class ParamSpec:
    """One method parameter.

    Attributes:
        name: the key used in ``--set method.NAME=VALUE`` and in ``ctx.params``.
        default: the value used when nothing overrides it (``None`` makes it nullable).
        doc: one line saying what it does, with its unit.
        type: one of :data:`PARAM_TYPES`; inferred from ``default`` when empty.
        choices: the allowed values, when the parameter is an enumeration.
        minimum: the smallest allowed value of a number.
        nullable: ``None`` is allowed (always true when the default is ``None``).
    """

    name: str
    default: Any
    doc: str = ""
    type: str = ""
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise InvalidSpecError(f"parameter name {self.name!r} must be a Python identifier")
        kind = self.type or _infer_type(self.default)
        if kind not in PARAM_TYPES:
            raise InvalidSpecError(f"parameter {self.name!r}: type {kind!r} is not one of {PARAM_TYPES}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.default is None:
            object.__setattr__(self, "nullable", True)
        else:
            try:
                self.check(self.default, owner="default")
            except ConfigError as exc:
                raise InvalidSpecError(str(exc)) from None

    def check(self, value: Any, owner: str = "") -> Any:
        """``value`` if it fits this parameter (ints are accepted for floats), else ConfigError."""
        where = f"{owner}: " if owner else ""
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{where}parameter {self.name} must not be null; {self.describe_type()}")
        ok = _fits(self.type, value)
        if not ok:
            raise ConfigError(f"{where}parameter {self.name}={value!r} is invalid; {self.describe_type()}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where}parameter {self.name}={value!r} is invalid; expected one of "
                              f"{', '.join(repr(c) for c in self.choices)}")
        if self.minimum is not None and self.type in ("int", "float") and value < self.minimum:
            raise ConfigError(f"{where}parameter {self.name}={value!r} is invalid; {self.describe_type()}")
        return value

    def describe_type(self) -> str:
        text = {"int": "an integer", "float": "a finite number", "str": "a string", "bool": "true or false",
                "mapping": "a mapping", "list": "a list", "any": "a value"}[self.type]
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        return "expected " + text + (" or null" if self.nullable else "")

    def describe(self) -> dict[str, Any]:
        """JSON-friendly record for ``ddr describe`` and ``ddr list --json``."""
        return {"name": self.name, "type": self.type, "default": _jsonable(self.default), "doc": self.doc,
                "choices": [_jsonable(c) for c in self.choices] or None, "minimum": self.minimum,
                "nullable": self.nullable}


def is_finite_number(value: Any) -> bool:
    """A number (not a bool) that is a finite float; an int too large for a float is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _fits(kind: str, value: Any) -> bool:
    """Whether ``value`` is of the parameter type ``kind`` (a float is a finite number)."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return is_finite_number(value)
    return {"str": isinstance(value, str), "bool": isinstance(value, bool), "mapping": isinstance(value, Mapping),
            "list": isinstance(value, (list, tuple)), "any": True}[kind]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def infer_schema(defaults: Mapping[str, Any]) -> tuple[ParamSpec, ...]:
    """The schema of a spec that gave only ``defaults``: one parameter per key, typed by its value."""
    return tuple(ParamSpec(name=key, default=value) for key, value in defaults.items())


def check_params(schema: Iterable[ParamSpec], values: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Validate ``values`` against ``schema``: unknown keys (with did-you-mean), types, ranges.

    Returns the values as a new dict. ``owner`` names the component in messages
    (``"method 'dm'"``).
    """
    by_name = {p.name: p for p in schema}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in by_name:
            close = difflib.get_close_matches(str(key), list(by_name), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(f"{owner} has no parameter '{key}'{hint}\n  its parameters: {known}"
                              "\n  see `ddr describe method NAME` for what each one does")
        out[key] = by_name[key].check(value, owner)
    return out
