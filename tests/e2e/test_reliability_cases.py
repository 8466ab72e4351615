"""Every row of docs/reliability.md, run: each bad input through ``ddr.cli.main.main`` in-process,
asserting the exit status, the message, that nothing escapes as a traceback, and the disk state.
The cases are data in ``tests/e2e/reliability_cases.py``; the doc's table is generated from them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from reliability_cases import CASES, DOC, PROMISES, Case, Env, render_doc

from ddr.cli.main import main


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = Env(tmp_path, monkeypatch)
    try:
        if case.setup is not None:
            case.setup(env)
        fields = env.fields()
        capsys.readouterr()  # what the setup printed is not the case's output
        code = main([arg.format(**fields) for arg in case.argv])
        out, err = capsys.readouterr()
        text = out + err
        assert code == case.exit_code, text
        assert case.message.format(**fields) in text, text
        assert "Traceback" not in text
        if case.exit_code == 2:  # one clear line (the message may wrap onto indented lines)
            assert err.count("ddr: error:") == 1 and out == "", text
        if case.check is not None:
            case.check(env)
    finally:
        for cleanup in env.cleanups:
            cleanup()
        for name in env.modules:
            sys.modules.pop(name, None)


def test_the_doc_table_is_generated_from_the_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
    assert DOC.read_text(encoding="utf-8") == render_doc(), \
        "docs/reliability.md is stale: regenerate it with `python tests/e2e/reliability_cases.py --write`"


def test_every_promise_names_tests_that_exist() -> None:
    """A promise in docs/reliability.md is only as good as its tests: each named one must exist."""
    import ast

    root = Path(__file__).resolve().parents[2]
    ids = {case.id for case in CASES}
    for promise in PROMISES:
        assert promise.tests, promise.promise
        for name in promise.tests:
            if name.startswith("case:"):
                assert name.removeprefix("case:") in ids, name
                continue
            path, _, test = name.partition("::")
            tree = ast.parse((root / path).read_text(encoding="utf-8"))
            assert test in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}, name
