"""YAML files (``safe_load`` only), ``include:`` merging and ``--set`` overrides.

A file is a mapping; ``include: other.yaml`` (or a list) is merged underneath it (deep merge, the
including file wins). An include is a path relative to the including file or
``package:file.yaml`` (package data). Overrides come from the CLI as dotted ``key=value`` pairs
(``--set train.epochs=50``), values parsed as YAML scalars. Schema checks live with the typed
configs that use them (:mod:`ddr.protocol.config`, suites, run configs).
"""

from __future__ import annotations

import copy
import difflib
import importlib.resources
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ddr.errors import ConfigError

MAX_DEPTH = 100
"""How deeply the lists and mappings of a config may nest (ddr's own files use 4 levels)."""
MAX_VALUES = 100_000
"""How many values a config may hold once its YAML aliases are expanded (a protocol holds ~100)."""


def read_yaml(path: Path | str, text: str | None = None) -> dict[str, Any]:
    """Parse a YAML mapping with ``yaml.safe_load``; errors name the file and line."""
    try:
        if text is None:
            file = Path(path)
            if file.exists() and not file.is_file() and not file.is_dir():  # a device or FIFO: never ends
                raise ConfigError(f"cannot read config file {path}: it is a device or FIFO, not a file; give the "
                                  "path of a YAML file")
            text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (OSError, ValueError) as exc:  # no permission, not UTF-8 text, a NUL byte in the path
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    data = parse_yaml_text(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_yaml_text(text: str, where: str) -> Any:
    """``yaml.safe_load(text)`` checked by :func:`check_tree`; every failure a ConfigError naming ``where``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{where}: invalid YAML: its lists or mappings nest too deeply to read (more than "
                          f"{MAX_DEPTH} levels); flatten them") from None
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as exc:
        # PyYAML's constructors fail this way on a tagged value that is not of its type (!!timestamp x)
        raise ConfigError(f"{where}: invalid YAML: a value does not fit its type ({type(exc).__name__}: {exc})") from exc
    check_tree(data, where)
    return data


def check_tree(data: Any, where: str) -> None:
    """ConfigError when parsed YAML ``data`` contains itself (an alias inside its own anchor's
    value), nests more than :data:`MAX_DEPTH` levels or expands to more than :data:`MAX_VALUES`
    values through aliases: every later step (merging, hashing, records) can then walk it."""
    seen: dict[int, tuple[int, int]] = {}  # id -> (values, height) of a finished list or mapping

    def measure(node: Any, depth: int, open_ids: set[int]) -> tuple[int, int]:
        if not isinstance(node, (list, dict)):
            return 1, 0
        key = id(node)
        if key in open_ids:
            raise ConfigError(f"{where}: a value contains itself (a YAML alias *NAME inside the value of its own "
                              "anchor &NAME); write the value out")
        if key not in seen:
            if depth >= MAX_DEPTH:
                raise ConfigError(f"{where}: lists or mappings nest more than {MAX_DEPTH} levels deep; flatten them")
            open_ids.add(key)
            values, height = 1, 0
            for child in (node.values() if isinstance(node, dict) else node):
                count, child_height = measure(child, depth + 1, open_ids)
                values, height = values + count, max(height, child_height + 1)
                if values > MAX_VALUES:
                    raise ConfigError(f"{where}: holds more than {MAX_VALUES} values once its YAML aliases are "
                                      "expanded; write a smaller file")
            open_ids.discard(key)
            seen[key] = (values, height)
        values, height = seen[key]
        if depth + height > MAX_DEPTH:
            raise ConfigError(f"{where}: lists or mappings nest more than {MAX_DEPTH} levels deep; flatten them")
        return values, height

    measure(data, 0, set())


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` merged over ``base``; nested mappings merge, everything else is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_PACKAGE_RE = re.compile(r"^[A-Za-z_][\w.]*$")
"""What precedes ':' in a ``package:file.yaml`` location (``./a:b.yaml`` is a file name)."""
_EXPONENT_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
"""A number like ``1e-3`` that YAML 1.1 (PyYAML) reads as a string because it has no dot."""


def _read_location(location: str) -> tuple[dict[str, Any], Any]:
    """Read ``package:file.yaml`` (package data) or a filesystem path; return (data, base)."""
    package, _, name = location.partition(":")
    windows_drive = location[1:3] == ":\\"
    if name and _PACKAGE_RE.match(package) and not windows_drive and not Path(location).exists():
        try:
            resource = importlib.resources.files(package).joinpath(name)
            text = resource.read_text()
        except (ImportError, OSError, TypeError) as exc:
            raise ConfigError(f"protocol file {location!r} not found") from exc
        return read_yaml(location, text), (package, str(Path(name).parent))
    path = Path(location)
    return read_yaml(path), path.parent


def load_yaml_with_includes(location: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a YAML file and merge its ``include:`` files underneath it (recursively).

    An include is a file name relative to the including file, or ``package:file.yaml``.
    """
    data, base = _read_location(location)
    # one spelling per file, so 'd/../d/a.yaml' and 'd/a.yaml' are recognised as the same file
    key = location if isinstance(base, tuple) else str(Path(location).resolve())
    if key in _seen:
        raise ConfigError(f"include cycle: {' -> '.join((*_seen, key))}")
    includes = data.pop("include", None)
    if includes is None:
        return data
    if not isinstance(includes, (str, list)):
        raise ConfigError(f"{location}: include must be a file name or a list of file names, got {includes!r}")
    merged: dict[str, Any] = {}
    for inc in [includes] if isinstance(includes, str) else includes:
        if not isinstance(inc, str):
            raise ConfigError(f"{location}: include entries must be file names, got {inc!r}")
        package_ref = ":" in inc and _PACKAGE_RE.match(inc.partition(":")[0]) and inc[1:3] != ":\\"
        if isinstance(base, tuple):
            package, folder = base
            ref = f"{package}:{inc}" if folder in ("", ".") else f"{package}:{folder}/{inc}"
            ref = inc if package_ref else ref
        else:
            ref = inc if package_ref and not (base / inc).exists() else str(base / inc)
        merged = deep_merge(merged, load_yaml_with_includes(ref, (*_seen, key)))
    return deep_merge(merged, data)


def check_schema(data: Mapping[str, Any], schema: Mapping[str, Any], where: str, prefix: str = "") -> None:
    """Reject unknown keys (with did-you-mean) and values of the wrong type."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1, cutoff=0.6)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; allowed here: {', '.join(schema)}"
            raise ConfigError(f"{where}: unknown key '{dotted}'{hint}")
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: '{dotted}' must be a mapping, got {value!r}")
            check_schema(value, expected, where, dotted + ".")
            continue
        types = expected if isinstance(expected, tuple) else (expected,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            hint = ""
            if float in types and isinstance(value, str) and _EXPONENT_FLOAT_RE.match(value.strip()):
                hint = f" (YAML reads {value} as text; write it with a dot, e.g. 1.0e-3)"
            raise ConfigError(f"{where}: '{dotted}' must be {names}, got {value!r}{hint}")


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.epochs=50"`` -> ``("train.epochs", 50)`` (value parsed as a YAML scalar)."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r} (e.g. --set train.epochs=50)")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
    value = parse_yaml_text(raw, f"--set {item!r}: cannot parse the value") if raw.strip() else ""
    if isinstance(value, str) and _EXPONENT_FLOAT_RE.match(value.strip()):
        value = float(value)  # YAML 1.1 reads '1e-3' (no dot) as text; on the command line it means a number
    return key, value


def lookup_dotted(data: Mapping[str, Any], dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"`` (``None`` when a part is absent or not a mapping)."""
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def dotted_to_nested(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"train.epochs": 50}`` -> ``{"train": {"epochs": 50}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs.items():
        if not isinstance(key, str):  # a YAML `set:` mapping may have number or null keys
            raise ConfigError(f"override key {key!r} is not a name; write a dotted key such as train.epochs")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{key}' conflicts with another override of '{part}'")
        leaf = parts[-1]
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf] = deep_merge(node[leaf], value)  # {"train.epochs": 5, "train": {...}} keeps both
        else:
            node[leaf] = copy.deepcopy(value)
    return out
