"""Shared pieces of the property-based (hypothesis) tests in tests/unit/fuzz/.

The one property every parser must keep: given anything at all, it returns a valid result or
raises a :class:`ddr.errors.DdrError` whose message says what was wrong — never another exception
type (a traceback from inside yaml, json, torch, tarfile or PIL), and never a write outside the
folder it was asked to write to.

* :func:`parse_outcome` runs one parser call and enforces that contract.
* :func:`snapshot` records a folder tree, to compare before and after a call; :func:`scratch_dir`
  gives each generated example its own temporary folder, :func:`environ` its own variables.
* The strategies generate both structured-but-wrong inputs (:func:`mutated`: a valid document
  with wrong types, unknown keys, huge/negative/NaN numbers, deep nesting, unicode, anchor
  cycles; :func:`one_key_at_its_edge`: one key at an edge of its type, every key equally often)
  and raw text/bytes (:func:`yaml_documents`, :func:`mutated_bytes`).

Settings profiles (``ddr-fuzz``: the default suite; ``ddr-fuzz-slow``: several thousand
examples, run under ``-m slow``) are registered in tests/unit/fuzz/conftest.py.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from ddr.errors import DdrError

DEFAULT_PROFILE = "ddr-fuzz"
SLOW_PROFILE = "ddr-fuzz-slow"
DEFAULT_EXAMPLES = 250
SLOW_EXAMPLES = 3000

# -------------------------------------------------------------------------------------------------
# the contract


def parse_outcome(call: Callable[[], Any]) -> tuple[Any, DdrError | None]:
    """``(result, None)`` when ``call()`` returns, ``(None, error)`` for a DdrError with a useful
    message; any other exception propagates (the property fails and hypothesis shows the input)."""
    try:
        result = call()
    except DdrError as exc:
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} raised with an empty message"
        assert "Traceback (most recent call last)" not in message, message
        OUTCOMES[f"{type(exc).__name__}: {_shape(message)}"] += 1
        return None, exc
    OUTCOMES[f"valid {type(result).__name__}"] += 1
    return result, None


OUTCOMES: Counter[str] = Counter()
"""How often each outcome occurred (``DDR_FUZZ_STATS=1`` prints them after the run): a property
whose inputs all fail at the first check tests little."""


def _shape(message: str) -> str:
    """A message with its variable parts blurred, so outcomes group by the check that raised."""
    first = message.splitlines()[0] if message else ""
    return re.sub(r"'[^']*'|\"[^\"]*\"|/[^ :]+|\d+", "_", first)[:90]


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``root`` (relative path -> kind, size, content digest, link target), so
    ``snapshot(root) == before`` proves nothing was written, moved or deleted there."""
    out: dict[str, tuple[Any, ...]] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(current) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            elif path.is_file():
                out[rel] = ("file", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                out[rel] = ("special",)
    return out


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A fresh temporary folder per generated example (tmp_path is one folder per test)."""
    with tempfile.TemporaryDirectory(prefix="ddr-fuzz-") as name:
        yield Path(name)


@contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables for the block and restore them afterwards."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -------------------------------------------------------------------------------------------------
# values


HUGE_NUMBERS = (10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 10**19, -1, 0, 1e308, -1e308, 5e-324,
                math.inf, -math.inf, math.nan)

UNICODE_TEXT = ("", " ", "é", "日本語", "\u202e", "\u0000", "\x7f", "\ufeff", "😀", "\u00b2", "٣", "Ⅻ",
                "\n", "\t", "a" * 300, "~", "~nosuchuser-ddr/x", "../..", "/", ".", "*", "%s", "{0}", "$HOME")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HUGE_NUMBERS), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(UNICODE_TEXT),
)
"""A JSON/YAML scalar: null, bools, ints of any size, floats with NaN/Inf, unicode text."""


def json_values(leaves: st.SearchStrategy[Any] = scalars, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Nested lists and string-keyed mappings of ``leaves``."""
    return st.recursive(leaves, _containers(st.text(max_size=8)), max_leaves=max_leaves)


def yaml_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Like :func:`json_values`, but YAML mappings may also have null/bool/int/float keys."""
    keys = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
    return st.recursive(scalars, _containers(keys), max_leaves=max_leaves)


def _containers(keys: st.SearchStrategy[Any]) -> Callable[[st.SearchStrategy[Any]], st.SearchStrategy[Any]]:
    """The ``extend`` of a recursive strategy: lists and ``keys``-keyed mappings of ``inner``
    (a named function: hypothesis's check that a lambda uses its argument misreads multi-line ones)."""

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4)

    return extend


def dotted_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = (), _open: frozenset[int] = frozenset()
                 ) -> list[tuple[str, ...]]:
    """Every key path of a nested mapping (sections and leaves; a mapping inside itself once)."""
    out = []
    for key, value in data.items():
        path = (*prefix, key)
        out.append(path)
        if isinstance(value, Mapping) and id(value) not in _open and len(path) < 20:
            out.extend(dotted_paths(value, path, _open | {id(data)}))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Mapping[str, Any], extra_keys: Sequence[str] = (),
            values: st.SearchStrategy[Any] | None = None, max_changes: int = 4, cycles: bool = True,
            key_values: Mapping[str, st.SearchStrategy[Any]] | None = None) -> dict[str, Any]:
    """``base`` (a valid document) with 0..``max_changes`` edits: a key set to a generated value
    (wrong types, huge/NaN numbers, nesting, unicode), a key deleted, an unknown or misspelt key
    added, or (with ``cycles``) a value made to contain itself (a YAML anchor cycle). A key of
    ``key_values`` is set, half of the time, to a value of its own strategy (values of the types the
    key takes, at their edges)."""
    data = copy.deepcopy(dict(base))
    values = values if values is not None else yaml_values()
    changes = draw(st.sampled_from((0, 1, 1, 1, 1, 2, 2, 3, max_changes)))
    for _ in range(changes):
        paths = dotted_paths(data)
        op = draw(st.sampled_from(("set",) * 12 + ("delete", "delete", "add", "misspell", "nest", "cycle")))
        if op == "cycle" and not cycles:  # JSON has no anchors
            op = "set"
        if op in ("set", "delete", "nest", "cycle") and not paths:
            op = "add"
        if op == "set":
            path = draw(st.sampled_from(paths))
            own = (key_values or {}).get(path[-1])
            _at(data, path[:-1])[path[-1]] = _fresh(draw(values if own is None else weighted((own, 1), (values, 1))))
        elif op == "delete":
            path = draw(st.sampled_from(paths))
            del _at(data, path[:-1])[path[-1]]
        elif op == "add":
            key = draw(st.one_of(st.sampled_from(list(extra_keys) or ["x"]), st.text(max_size=10)))
            sections = [p for p in paths if isinstance(_at(data, p), dict)]
            where = draw(st.sampled_from([(), *sections]))
            _at(data, where)[key] = _fresh(draw(values))
        elif op == "misspell":
            path = draw(st.sampled_from(paths))
            holder, key = _at(data, path[:-1]), path[-1]
            if isinstance(key, str) and key:
                i = draw(st.integers(0, len(key) - 1))
                holder[key[:i] + key[i + 1:] + draw(st.sampled_from(("", "s", "_", "é")))] = holder.pop(key)
        elif op == "nest":
            path = draw(st.sampled_from(paths))
            holder = _at(data, path[:-1])
            depth = draw(st.integers(1, 60))
            value: Any = holder[path[-1]]
            for _ in range(depth):
                value = draw(st.sampled_from(([value], {"k": value})))
            holder[path[-1]] = value
        else:  # cycle: a list or mapping that contains itself (YAML: &id001 [*id001])
            path = draw(st.sampled_from(paths))
            cyclic: Any = draw(st.sampled_from(("list", "dict")))
            cyclic = [] if cyclic == "list" else {}
            if isinstance(cyclic, list):
                cyclic.append(cyclic)
            else:
                cyclic["self"] = cyclic
            _at(data, path[:-1])[path[-1]] = cyclic
    return data


def _fresh(value: Any) -> Any:
    """A private copy of a drawn value: strategies such as ``st.sampled_from(([], {}))`` hand out
    the same list or mapping every time, and a later edit (or the parser under test) writing into
    it would change what the strategy draws next, which hypothesis rightly reports as a flaky
    strategy."""
    return copy.deepcopy(value)


def _at(data: Any, path: Sequence[Any]) -> Any:
    for key in path:
        data = data[key]
    return data


# -------------------------------------------------------------------------------------------------
# text


YAML_TOKENS = (
    "include:", "include: ", "name:", "train:", "  epochs: ", "lr:", "suite:", "methods:", "- ", ": ", ":", "\n",
    "  ", "\t", "{", "}", "[", "]", ",", "&a ", "*a", "<<: *a", "? ", "|", ">", "---\n", "...\n", "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n", "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!!binary aGk=",
    "!!set {a, b}", "!!omap [a: 1]", "!!timestamp 2001-12-14", "!!float", "!!int", "!!str", "!custom x", "1e400",
    "-1e400", ".nan", ".inf", "-.inf", "0x1F", "0o17", "0b101", "1_000", "~", "null", "yes", "no", "on", "'",
    '"', "\\", "#", "@", "`", "%", "\x00", "\x85", "\u2028", "\ufeff", "é", "😀", "9" * 30, "-", "1.0e-3",
    "2001-01-01", "12:30:00", "1" + "0" * 5000,
)


def yaml_soup(tokens: Sequence[str] = YAML_TOKENS, max_size: int = 30) -> st.SearchStrategy[str]:
    """Text glued from YAML syntax fragments and random characters: mostly invalid YAML, some
    valid with odd types (tags, anchors, merge keys, timestamps, sets)."""
    return st.lists(st.one_of(st.sampled_from(tokens), st.text(max_size=4)), max_size=max_size).map("".join)


def deep_nesting() -> st.SearchStrategy[str]:
    """YAML/JSON nested thousands deep (a parser's recursion limit)."""
    brackets = st.sampled_from((("[", "]"), ('{"a": ', "}"), ("{a: ", "}"), ("- ", "")))
    depths = st.sampled_from((10, 100, 900, 1100, 5000, 40_000))
    middles = st.sampled_from(("1", "", "[]"))
    return st.builds(lambda pair, depth, middle: pair[0] * depth + middle + pair[1] * depth, brackets, depths, middles)


def dump_yaml(data: Any) -> str:
    """``data`` as YAML text (anchors for shared or cyclic values, .nan/.inf for floats)."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked in proportion to its weight (``st.one_of`` picks among
    distinct strategies only, and leans towards the simplest)."""
    return st.sampled_from([strategy for strategy, weight in choices for _ in range(weight)]).flatmap(lambda s: s)


def yaml_documents(base: Mapping[str, Any] | None = None, extra_keys: Sequence[str] = (),
                   values: st.SearchStrategy[Any] | None = None,
                   key_values: Mapping[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[str | bytes]:
    """Every kind of file content a user could hand to a YAML reader: ``base`` mutated and dumped
    (half of the inputs), random YAML values dumped, YAML-token soup, deep nesting, random text
    and random bytes."""
    unstructured: list[tuple[st.SearchStrategy[Any], int]] = [
        (yaml_values().map(dump_yaml), 1), (yaml_soup(), 1), (deep_nesting(), 1), (st.text(max_size=200), 1),
        (st.binary(max_size=200), 1)]
    if base is None:
        return weighted(*unstructured)
    return weighted((mutated(base, extra_keys, values, key_values=key_values).map(dump_yaml), 5), *unstructured)


# -------------------------------------------------------------------------------------------------
# bytes


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes, max_changes: int = 4) -> bytes:
    """``base`` (a valid file) with a few byte-level edits: bytes flipped or overwritten, a range
    cut, duplicated or replaced with random bytes, random bytes inserted, or the file truncated."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_changes))):
        op = draw(st.sampled_from(("flip", "flip", "set", "truncate", "insert", "cut", "repeat")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from((0x00, 0xFF, 0x7F, 0x80, ord("9"), ord('"'), ord("{"))))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


# -------------------------------------------------------------------------------------------------
# one key at its edge


EDGE_NUMBERS = st.sampled_from((10**400, -(10**400), 2**63, -1, 0, 1, 3, 0.5, -0.5, 1e308, 1e-320, math.inf, -math.inf,
                                math.nan, True, None, "1", "1e-3", [], {}))
"""Numbers at the edges of every range (and the non-numbers a number key is most often given)."""
EDGE_TEXT = st.sampled_from(("", " ", "x", "a/b", "../..", "~nosuchuser-ddr/x", "\x00", "é", "ddr.builtins.protocols:x",
                             "a:b", "a.b", "*", None, 1, True, [], {}, ["x"]))
"""Strings a name or path key is given (and the non-strings)."""


def edges_for(expected: Any) -> st.SearchStrategy[Any]:
    """Edge values for a key of schema type ``expected`` (a type, a tuple of types or a section)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    choices: list[st.SearchStrategy[Any]] = []
    if int in types or float in types:
        choices.append(EDGE_NUMBERS)
    if str in types:
        choices.append(EDGE_TEXT)
    if list in types:
        choices.append(st.lists(weighted((EDGE_NUMBERS, 1), (EDGE_TEXT, 1)), max_size=3))
    if dict in types or isinstance(expected, dict):
        keys = weighted((st.text(max_size=6), 3), (st.sampled_from((1, None, True, 1.5, "train.lr", "a..b")), 1))
        choices.append(st.dictionaries(keys, weighted((EDGE_NUMBERS, 1), (EDGE_TEXT, 1)), max_size=2))
    if bool in types:
        choices.append(st.sampled_from((True, False, "yes", 1, 0, None)))
    return weighted(*[(choice, 1) for choice in choices or [scalars]])


def schema_edges(schema: Mapping[str, Any], prefix: str = "") -> dict[str, st.SearchStrategy[Any]]:
    """``{"train.lr": edges for a float, ...}`` for every key of a (nested) schema."""
    out: dict[str, st.SearchStrategy[Any]] = {}
    for key, expected in schema.items():
        out[prefix + key] = edges_for(expected)
        if isinstance(expected, dict):
            out.update(schema_edges(expected, f"{prefix}{key}."))
    return out


def one_key_at_its_edge(base: Mapping[str, Any], edges: Mapping[str, st.SearchStrategy[Any]]
                        ) -> st.SearchStrategy[tuple[str, Any, dict[str, Any]]]:
    """``(dotted key, value, base with that key set to the value)``: exactly one key of a valid
    document at an edge of its type, every key equally often."""

    def edit(key: str, value: Any) -> tuple[str, Any, dict[str, Any]]:
        data = copy.deepcopy(dict(base))
        *sections, leaf = key.split(".")
        holder = data
        for section in sections:
            holder = holder.setdefault(section, {})
        holder[leaf] = _fresh(value)
        return key, value, data

    return st.sampled_from(sorted(edges)).flatmap(lambda key: edges[key].map(lambda value: edit(key, value)))
