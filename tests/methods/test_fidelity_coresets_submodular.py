"""benchmarks/fidelity_coresets_submodular.py: the differential check against DeepCore.

Without a checkout only the script's own pieces are tested; with ``DDR_DEEPCORE`` (or
``DDR_OFFICIAL_DEEPCORE``) naming a checkout
of PatrickZH/DeepCore (slow: about 15 s on one CPU thread) the whole comparison runs and must agree.
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
    return load_benchmark("fidelity_coresets_submodular")


def test_it_asks_for_a_checkout(script: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["fidelity_coresets_submodular.py"])
    monkeypatch.delenv("DDR_DEEPCORE", raising=False)
    monkeypatch.delenv("DDR_OFFICIAL_DEEPCORE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == 2
    assert "--deepcore" in capsys.readouterr().err


def test_a_folder_that_is_not_deepcore_is_named(script: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a DeepCore checkout"):
        script._load_deepcore(tmp_path)


def test_the_mlp_view_is_the_mlps_forward(script: ModuleType) -> None:
    class MLP(torch.nn.Module):  # DeepCore's MLP layer names
        def __init__(self) -> None:
            super().__init__()
            self.fc_1, self.fc_2, self.fc_3 = torch.nn.Linear(16, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    torch.manual_seed(0)
    net = MLP()
    x = torch.randn(5, 1, 4, 4)
    view = script.DeepCoreMLPView(net)
    expected = net.fc_3(torch.relu(net.fc_2(torch.relu(net.fc_1(x.reshape(5, -1))))))
    assert torch.equal(view(x), expected) and view.embed(x).shape == (5, 8)


@pytest.mark.slow
def test_deepcore_agrees(script: ModuleType) -> None:
    value = os.environ.get("DDR_DEEPCORE") or os.environ.get("DDR_OFFICIAL_DEEPCORE")
    if not value or not Path(value).is_dir():
        pytest.skip("no DeepCore checkout: set DDR_DEEPCORE to run the coreset differential check")
    pytest.importorskip("scipy")
    torch.set_num_threads(1)
    result = script.compare(Path(value), 1e-5)
    assert result["agree"], (result["rows"], result["picks"])
    counted = [p for p in result["picks"] if p["counted"]]
    assert len(counted) == 11 and all(p["equal"] for p in counted)
