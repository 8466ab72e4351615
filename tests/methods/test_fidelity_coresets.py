"""benchmarks/fidelity_coresets.py: the coreset selectors against DeepCore, CCS and Moderate-DS.

The script runs the reference code from checkouts outside the project. Without them only its own
pieces are tested here; with a checkout named in ``DDR_OFFICIAL_DEEPCORE``, ``DDR_OFFICIAL_CCS`` or
``DDR_OFFICIAL_MODERATE`` (slow: a few seconds each on one CPU thread) that check runs and must agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from helpers.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark("fidelity_coresets")


def test_it_asks_for_a_checkout(script: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    for name in script.ENV.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "argv", ["fidelity_coresets.py"])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == 2
    assert "--deepcore" in capsys.readouterr().err


@pytest.mark.parametrize("check, missing", [("compare_deepcore", "earlytrain.py"),
                                            ("compare_ccs", "generate_importance_score.py"),
                                            ("compare_moderate", "selection.py")])
def test_a_folder_that_is_not_a_checkout_is_named(script: ModuleType, tmp_path: Path, check: str,
                                                  missing: str) -> None:
    with pytest.raises(SystemExit, match=missing):
        getattr(script, check)(tmp_path, 1e-5)


def test_the_tiny_input_is_fixed_and_class_balanced(script: ModuleType) -> None:
    images, labels = script.tiny_data()
    again, _ = script.tiny_data()
    assert images.shape == (40, 1, 4, 4) and torch.equal(images, again)
    assert torch.bincount(labels).tolist() == [10, 10, 10, 10]
    mlp = script.MLP()
    with torch.no_grad():
        assert torch.equal(mlp(images), mlp.get_classifier()(mlp.embed(images)))


def _checkout(name: str) -> Path:
    variable = f"DDR_OFFICIAL_{name.upper()}"
    value = os.environ.get(variable)
    if not value or not Path(value).is_dir():
        pytest.skip(f"no reference checkout: set {variable} to run the {name} check")
    return Path(value)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deepcore", "ccs", "moderate"])
def test_the_reference_code_agrees(script: ModuleType, name: str) -> None:
    repo = _checkout(name)
    torch.set_num_threads(1)
    check = {"deepcore": script.compare_deepcore, "ccs": script.compare_ccs, "moderate": script.compare_moderate}[name]
    result = check(repo, 1e-5)
    assert result["agree"], result["rows"]
    counted = [r for r in result["rows"] if r["counted"]]
    assert counted and all(r["max_abs_diff"] <= 1e-5 for r in counted)
    assert all(r["indices_equal"] in (True, None) for r in counted)
