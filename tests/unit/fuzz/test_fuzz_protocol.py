"""Fuzzing the protocol readers: protocol YAML files (``--protocol FILE``, ``ddr validate``), their
``include:`` chains, and ``--set KEY=VALUE`` overrides (protocol keys and ``method.KEY``).

Each property: a :class:`~ddr.protocol.config.Protocol` (or resolved method parameters) or a
DdrError with a message; nothing else escapes, and nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers.fuzzing import (
    HUGE_NUMBERS,
    dotted_paths,
    dump_yaml,
    json_values,
    mutated,
    one_key_at_its_edge,
    parse_outcome,
    scalars,
    schema_edges,
    scratch_dir,
    snapshot,
    weighted,
    yaml_documents,
    yaml_soup,
    yaml_values,
)
from hypothesis import strategies as st

from ddr.cli.evaluation import _split_overrides
from ddr.plugin.manager import PluginSystem
from ddr.protocol.config import PROTOCOL_SCHEMA, Protocol, build_protocol, load_protocol, resolve_protocol
from ddr.protocol.yaml import load_yaml_with_includes
from ddr.runs.distill import MethodChoice, resolve_method

HARD = "ddr.builtins.protocols:hard.yaml"
BASE = "ddr.builtins.protocols:_base.yaml"
MERGED_HARD = load_yaml_with_includes(HARD)
"""The hard protocol with every key: the valid document the structured inputs start from."""
PROTOCOL_KEYS = [".".join(path) for path in dotted_paths(PROTOCOL_SCHEMA)]
METHODS = ("dm", "dsa", "mtt", "sre2l", "rded", "random", "herding")
PROTOCOLS = ("hard", "soft", "digits", "ddranking-soft")
WORDS = ("sgd", "adam", "adamw", "step", "cosine", "half-cosine", "multistep", "constant", "last", "validation",
         "ddranking", "convnet", "mlp", "hard", "teacher", "ce", "kl", "dsa", "flip", "null", "")
VALUES = weighted((yaml_values(), 3), (st.integers(-3, 1000), 2), (st.floats(), 2), (st.sampled_from(HUGE_NUMBERS), 1),
                  (st.lists(st.floats(-2, 2), max_size=4), 1), (st.sampled_from(WORDS), 2),
                  (st.dictionaries(st.sampled_from(WORDS), st.floats(-2, 2), max_size=3), 1))
"""Values for protocol keys: any YAML, and numbers and names of the types the keys take."""


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def _check_protocol(result: Any) -> None:
    if result is not None:
        assert isinstance(result, Protocol)
        assert result.num_eval >= 1 and result.train.epochs is not None and result.train.epochs >= 1
        result.train.check()  # the recipe the training loop checks again: a protocol never fails there


def test_protocol_file_contents(run_property: Callable[..., None]) -> None:
    """A protocol file holding anything: the hard protocol with wrong types, unknown or misspelt
    keys, huge/NaN numbers, deep nesting and anchor cycles; YAML-token soup; random text and bytes;
    with or without ``include:`` of a shipped protocol."""

    def prop(content: str | bytes, with_include: bool) -> None:
        with scratch_dir() as tmp:
            file = tmp / "protocol.yaml"
            if with_include and isinstance(content, str):
                content = f"include: {HARD}\n{content}"
            if isinstance(content, bytes):
                file.write_bytes(content)
            else:
                file.write_text(content, encoding="utf-8", errors="surrogatepass")
            before = snapshot(tmp)
            result, _ = parse_outcome(lambda: load_protocol(str(file)))
            _check_protocol(result)
            assert snapshot(tmp) == before

    run_property(prop, yaml_documents(MERGED_HARD, PROTOCOL_KEYS, VALUES), st.booleans())


def test_protocol_key_edges(run_property: Callable[..., None], system: PluginSystem) -> None:
    """One key of the hard protocol at an edge of its type (huge, negative, NaN/Inf, empty, of
    another type), every key a few dozen times: in the file's data, and as ``--set KEY=VALUE``."""

    def prop(case: tuple[str, Any, dict[str, Any]]) -> None:
        key, value, data = case
        result, _ = parse_outcome(lambda: build_protocol(data, "edge.yaml"))
        _check_protocol(result)
        result, _ = parse_outcome(lambda: resolve_protocol("hard", {key: value}, system))
        _check_protocol(result)

    run_property(prop, one_key_at_its_edge(MERGED_HARD, schema_edges(PROTOCOL_SCHEMA)), examples=2)


INCLUDE_TARGETS = (
    "b.yaml", "sub/c.yaml", "../a.yaml", "a.yaml", "./b.yaml", "sub/../b.yaml", "nothing.yaml", "sub", ".", "",
    HARD, BASE, "ddr.builtins.protocols:nope.yaml", "ddr.builtins.protocols:../__init__.py", "nosuchpkg:x.yaml",
    "os:x.yaml", "ddr:", ":", "C:\\x.yaml", "/dev/null", "/dev/zero", "/", "~/nothing.yaml", "é.yaml", "\x00.yaml",
)


@st.composite
def _include(draw: st.DrawFn) -> Any:
    one = st.sampled_from(INCLUDE_TARGETS)
    return draw(weighted((one, 4), (st.lists(one, max_size=3), 2), (scalars, 1), (json_values(max_leaves=4), 1)))


def test_protocol_includes(run_property: Callable[..., None]) -> None:
    """Three protocol files including each other, themselves, shipped protocols, missing files,
    folders, devices, package data that is no YAML, and include values of the wrong type."""
    document = st.fixed_dictionaries({"include": _include()}, optional={"body": mutated(MERGED_HARD, PROTOCOL_KEYS, VALUES)})

    def prop(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any], entry: str) -> None:
        with scratch_dir() as tmp:
            (tmp / "sub").mkdir()
            for name, doc in (("a.yaml", a), ("b.yaml", b), ("sub/c.yaml", c)):
                body = dict(doc.get("body", {}))
                body.pop("include", None)
                (tmp / name).write_text(dump_yaml({"include": doc["include"], **body}), encoding="utf-8")
            before = snapshot(tmp)
            result, _ = parse_outcome(lambda: load_protocol(str(tmp / entry)))
            _check_protocol(result)
            result, _ = parse_outcome(lambda: resolve_protocol(str(tmp / entry), {"train.epochs": 3}))
            _check_protocol(result)
            assert snapshot(tmp) == before

    run_property(prop, document, document, document, st.sampled_from(("a.yaml", "b.yaml", "sub/c.yaml")))


_ODD_KEYS = ("", " ", ".", "train.", ".epochs", "train..epochs", "method.", "method", "train.epochs.x", "trian.epochs",
             "metrics.lambda", "student.arch_by_size.64", "student.arch_by_size.²", "include", "a=b", "method.iteratons")
_VALUES = st.one_of(
    scalars.map(lambda v: dump_yaml(v).removesuffix("\n...\n").strip()),
    json_values(max_leaves=6).map(lambda v: dump_yaml(v).strip()),
    yaml_soup(max_size=8),
    st.sampled_from(("1" + "0" * 400, "-1" + "0" * 400, "1e400", "1e-3", "nan", ".nan", "[1e-400]", "&a [*a]",
                     "!!python/object/apply:os.system ['true']", "{a: 1", "[" * 2000, "- - - - x", "2**63")),
)


@st.composite
def _set_case(draw: st.DrawFn, system: PluginSystem) -> tuple[list[str], str, str]:
    """(``--set`` items, protocol, method): keys are mostly the method's parameters and protocol
    keys, some misspelt, empty or odd; values YAML of every type, invalid YAML, huge numbers."""
    method = draw(st.sampled_from(METHODS))
    params = [f"method.{p.name}" for p in system.methods().resolve(method).spec.params] or ["method.x"]
    key = st.one_of(st.sampled_from(params), st.sampled_from(PROTOCOL_KEYS), st.sampled_from(_ODD_KEYS),
                    st.text(max_size=12))
    item = st.one_of(st.builds(lambda k, v: f"{k}={v}", key, _VALUES), st.text(max_size=20))
    return draw(st.lists(item, max_size=4)), draw(st.sampled_from(PROTOCOLS)), method


def test_set_overrides(run_property: Callable[..., None], system: PluginSystem) -> None:
    """``--set`` items as the CLI splits them: protocol keys (known, misspelt, nested too deep,
    empty) and ``method.KEY`` parameters, with values that are YAML of any type, invalid YAML,
    huge or NaN numbers, anchors and tags; then the protocol and the method's parameters are
    resolved with them, as ``ddr run`` does."""

    def prop(case: tuple[list[str], str, str]) -> None:
        items, protocol, method = case
        split, _ = parse_outcome(lambda: _split_overrides(items))
        if split is None:
            return
        protocol_overrides, method_overrides = split
        result, _ = parse_outcome(lambda: resolve_protocol(protocol, protocol_overrides, system))
        _check_protocol(result)
        choice, _ = parse_outcome(lambda: resolve_method(system, method, "digits", method_overrides, ipc=1))
        if choice is not None:
            assert isinstance(choice, MethodChoice)
            for key, value in method_overrides.items():
                assert choice.params[key] == value or value != value  # NaN only for 'any' parameters

    run_property(prop, _set_case(system))
