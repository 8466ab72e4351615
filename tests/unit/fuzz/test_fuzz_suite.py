"""Fuzzing suite files (``ddr run SUITE.yaml``) and ``ddr validate FILE`` (suite, protocol or run
config): a validated suite whose units expand, or a DdrError with a message; nothing else escapes
and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.fuzzing import (
    EDGE_NUMBERS,
    HUGE_NUMBERS,
    dump_yaml,
    json_values,
    mutated,
    one_key_at_its_edge,
    parse_outcome,
    schema_edges,
    scratch_dir,
    snapshot,
    weighted,
    yaml_documents,
    yaml_values,
)
from hypothesis import strategies as st

from ddr.plugin.manager import PluginSystem
from ddr.protocol.config import Protocol, build_protocol
from ddr.protocol.yaml import load_yaml_with_includes
from ddr.runs.runconfig import RUN_SCHEMA, validate_run_config
from ddr.runs.suite import PER_METHOD_SCHEMA, SUITE_SCHEMA, Suite, is_suite_file, load_suite

BASE_SUITE: dict[str, Any] = {
    "suite": "fuzz", "description": "every key", "methods": ["random", "dm"], "datasets": ["digits"],
    "ipcs": [1, 10], "seeds": [0, 1], "eval_archs": ["convnet", "mlp"], "protocol": "digits", "num_eval": 3,
    "epochs": 100, "set": {"train.batch_size": 128},
    "per_method": {"dm": {"params": {"iterations": 200, "lr_img": 1.0}, "set": {"train.lr": 0.01}, "preset": "smoke"}},
    "exclude": [{"method": "dm", "ipc": 10}], "ars": False, "label_strategy": "hard", "loss": "ce",
    "arch": "convnet", "executor": "local", "device": "cpu",
}
"""A valid suite that sets every key: the document the structured inputs start from."""
BASE_RUN: dict[str, Any] = {
    "method": "dm", "method_params": {"iterations": 10, "lr_img": 1.0}, "dataset": "digits", "ipc": 1,
    "arch": "convnet", "protocol": "digits", "label_strategy": "hard", "loss": "ce", "seed": 0, "num_eval": 2,
    "epochs": 5, "set": {"train.lr": 0.01}, "iterations": 5,
}
PROTOCOL_FILE: dict[str, Any] = {"name": "p", "version": 1, "include": "ddr.builtins.protocols:hard.yaml",
                                 "train": {"epochs": 5}, "lr_grid": [0.01]}
NAMES = ["random", "dm", "dm.smoke", "dm.papr", "dmm", "all", "digits", "digitz", "convnet", "mlp", "hard", "soft",
         "ce", "kl", "local", "batched", "teacher", "folder:/nonexistent", "cifar10", "", "iterations", "lr_img",
         "train.lr", "train.epochs", "method", "ipc", "seed", "arch", "dataset", "x/y", ".hidden", "a:b"]
"""Names a suite or run config refers to, real and wrong, to put where the generator sets values."""
VALUES = st.one_of(yaml_values(max_leaves=8), st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES), max_size=4),
                   st.integers(-3, 12), st.lists(st.integers(-3, 12), max_size=4), st.sampled_from(HUGE_NUMBERS),
                   st.dictionaries(st.sampled_from(NAMES), json_values(max_leaves=4), max_size=3))


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def _write(tmp: Path, content: str | bytes) -> Path:
    file = tmp / "config.yaml"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    return file


def test_suite_files(run_property: Callable[..., None], system: PluginSystem) -> None:
    """A suite file holding anything: the full suite with wrong types, unknown/misspelt keys,
    unknown names, empty lists, duplicates, huge/NaN numbers, anchor cycles; raw text and bytes.
    A suite that loads expands into units with ids and describes itself."""
    documents = yaml_documents(BASE_SUITE, list(SUITE_SCHEMA), VALUES)

    def prop(content: str | bytes) -> None:
        with scratch_dir() as tmp:
            file = _write(tmp, content)
            before = snapshot(tmp)
            suite, _ = parse_outcome(lambda: load_suite(file, system))
            if suite is not None:
                assert isinstance(suite, Suite)
                units = suite.units()
                assert units and all(len(unit.uid) == 64 for unit in units)
                assert suite.name in suite.summary()
            assert snapshot(tmp) == before

    run_property(prop, documents)


def test_suite_key_edges(run_property: Callable[..., None], system: PluginSystem) -> None:
    """One key of the full suite at an edge of its type (per_method and exclude entries too)."""
    edges = {**schema_edges(SUITE_SCHEMA), **{f"per_method.dm.{k}": v for k, v in schema_edges(PER_METHOD_SCHEMA).items()},
             "per_method.dm.params.iterations": EDGE_NUMBERS, "per_method.dm.params.lr_img": EDGE_NUMBERS,
             "set.train.lr": EDGE_NUMBERS, "set.num_eval": EDGE_NUMBERS}

    def prop(case: tuple[str, Any, dict[str, Any]]) -> None:
        with scratch_dir() as tmp:
            file = _write(tmp, dump_yaml(case[2]))
            suite, _ = parse_outcome(lambda: load_suite(file, system))
            if suite is not None:
                assert suite.units() and suite.summary()

    run_property(prop, one_key_at_its_edge(BASE_SUITE, edges), examples=1.5)


def validate(path: Path, system: PluginSystem) -> Any:
    """What ``ddr validate PATH`` does (ddr.cli.main.cmd_validate), returning what it would print."""
    data = load_yaml_with_includes(str(path))
    if is_suite_file(data):
        return load_suite(path, system).summary()
    if "version" in data and "name" in data and "method" not in data:
        return build_protocol(data, str(path))
    return validate_run_config(data, system, where=str(path))


def test_validate_files(run_property: Callable[..., None], system: PluginSystem) -> None:
    """``ddr validate`` on anything: run configs and suites with wrong values, protocol-like files,
    raw text and bytes."""
    documents = weighted((yaml_documents(BASE_RUN, list(RUN_SCHEMA), VALUES), 2),
                         (mutated(BASE_SUITE, list(SUITE_SCHEMA), VALUES).map(dump_yaml), 1),
                         (mutated(PROTOCOL_FILE, ["train", "lr_grid", "method"], VALUES).map(dump_yaml), 1))

    def prop(content: str | bytes) -> None:
        with scratch_dir() as tmp:
            file = _write(tmp, content)
            before = snapshot(tmp)
            result, _ = parse_outcome(lambda: validate(file, system))
            assert result is None or isinstance(result, (str, Protocol))
            assert snapshot(tmp) == before

    run_property(prop, documents)
