"""A real third-party plugin package (tests/data/sample-plugin), installed with pip into a fresh
virtual environment, is discovered by ``ddr``; its loss and method work.
How the venv is made: tests/helpers/plugin_venv.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.plugin_venv import install_in_fresh_venv, run

SAMPLE_PLUGIN = Path(__file__).resolve().parents[1] / "data" / "sample-plugin"


@pytest.fixture(scope="module")
def sample_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with ddr-sample-plugin pip-installed; returns (its python, subprocess env)."""
    return install_in_fresh_venv(SAMPLE_PLUGIN, tmp_path_factory.mktemp("sample-install"))


def _ddr_json(sample_venv: tuple[Path, dict[str, str]], *args: str) -> Any:
    python, env = sample_venv
    proc = run([str(python), "-m", "ddr", *args, "--json"], env, python.parents[2])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_installed_plugin_is_listed_with_its_distribution(sample_venv) -> None:
    plugins = {row["name"]: row for row in _ddr_json(sample_venv, "plugins")}
    assert plugins["sample"] == {
        "name": "sample", "distribution": "ddr-sample-plugin", "version": "0.1.0",
        "module": "ddr_sample_plugin.plugin", "status": "active",
        "hooks": ["ddr_losses", "ddr_methods"], "error": None, "builtin": False,
    }
    assert plugins["random"]["distribution"] == "ddr-bench"  # the parent environment is seen too


def test_installed_plugin_components_are_listed_with_provider(sample_venv) -> None:
    losses = {row["name"]: row for row in _ddr_json(sample_venv, "list", "losses")}
    kl = losses["sample_kl"]
    assert (kl["provider"], kl["soft"]) == ("sample", True)
    assert kl["target"] == "ddr_sample_plugin.loss:SampleKL" and kl["defaults"] == {"temperature": 4.0}
    methods = {row["name"]: row for row in _ddr_json(sample_venv, "list", "methods")}
    assert methods["sample-mean"]["provider"] == "sample"
    assert methods["sample-mean"]["target"] == "ddr_sample_plugin.method:ClassMean"
    assert methods["sample-mean"]["params"] == [{"name": "groups_per_image", "type": "int", "default": 1,
                                                 "doc": "random groups averaged into each image", "choices": None,
                                                 "minimum": 1, "nullable": False}]
    assert methods["random"]["provider"] == "random"


# -- the sample plugin's code, loaded in-process as a local module (-p MODULE) ---------------------


@pytest.fixture
def sample_system(monkeypatch: pytest.MonkeyPatch):
    from ddr.plugin.manager import PluginSystem

    monkeypatch.syspath_prepend(str(SAMPLE_PLUGIN))
    yield PluginSystem(autoload=False, load=["ddr_sample_plugin.plugin"])
    for name in [m for m in sys.modules if m.split(".")[0] == "ddr_sample_plugin"]:
        del sys.modules[name]


def test_plugin_module_does_not_import_torch() -> None:
    code = (f"import sys; sys.path.insert(0, {str(SAMPLE_PLUGIN)!r}); import ddr_sample_plugin.plugin as p; "
            "p.ddr_methods(); p.ddr_losses(); assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _softmax(row: list[float], t: float) -> list[float]:
    exps = [math.exp(v / t) for v in row]
    return [e / sum(exps) for e in exps]


def test_sample_kl_loss(sample_system) -> None:
    import torch

    from ddr.engine.labels import Targets
    from ddr.errors import ConfigError

    resolved = sample_system.losses().resolve("sample_kl", {"temperature": 2.0})
    loss = sample_system.losses().materialize(resolved.spec)(**resolved.params)
    logits = torch.tensor([[0.0, 0.0, 1.0], [2.0, -1.0, 0.5]])
    soft = torch.tensor([[math.log(3.0), 0.0, 0.0], [2.0, -1.0, 0.5]])
    targets = Targets(hard=torch.tensor([0, 0]), soft=soft)
    expected = 0.0
    for s_row, l_row in zip(soft.tolist(), logits.tolist()):
        p, q = _softmax(s_row, 2.0), _softmax(l_row, 2.0)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    expected = expected / 2 * 2.0 ** 2  # batch mean, times T^2
    value = loss(logits, targets)
    assert value.ndim == 0 and value.item() == pytest.approx(expected, rel=1e-5)
    assert loss(soft, targets).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="soft targets"):
        loss(logits, Targets(hard=torch.tensor([0, 1])))
    with pytest.raises(ConfigError, match="temperature must be a positive number"):
        type(loss)(temperature=0)


def test_sample_mean_method(sample_system) -> None:
    import torch

    from ddr.engine.data import ImageDataset, Split
    from ddr.method.context import DistillContext

    # 3 classes x 4 images of 1x2x2 pixels; image j of class c is filled with 10*c + j
    labels = torch.arange(3).repeat_interleave(4)
    values = 10.0 * labels + torch.arange(4).repeat(3)
    images = values.view(12, 1, 1, 1).expand(12, 1, 2, 2).contiguous()
    train = Split(labels=labels, images=images)
    dataset = ImageDataset(name="toy", num_classes=3, channels=1, image_size=(2, 2), mean=(0.0,), std=(1.0,),
                           train=train, test=train)
    method_cls = sample_system.methods().materialize(sample_system.methods().get("sample-mean"))

    def distill(seed: int, ipc: int):
        def unused(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("sample-mean needs no network")

        ctx = DistillContext(dataset=dataset, train=train, ipc=ipc, num_classes=3,
                             generator=torch.Generator().manual_seed(seed), seed=seed, device=torch.device("cpu"),
                             params={"groups_per_image": 1}, arch="convnet", make_model=unused, train_model=unused,
                             augmentation=unused, teacher=unused)
        return method_cls().distill(ctx)

    one = distill(0, ipc=1)
    assert one.images.shape == (3, 1, 2, 2) and one.labels.tolist() == [0, 1, 2]
    assert one.images[:, 0, 0, 0].tolist() == [1.5, 11.5, 21.5]  # the class means

    two = distill(0, ipc=2)
    assert two.labels.tolist() == [0, 0, 1, 1, 2, 2] and two.meta["method"] == "sample-mean"
    pixel = two.images[:, 0, 0, 0].view(3, 2)
    for c in range(3):
        pair_means = {10 * c + (a + b) / 2 for a in range(4) for b in range(a + 1, 4)}
        assert set(pixel[c].tolist()) <= pair_means
        assert pixel[c].mean().item() == pytest.approx(10 * c + 1.5)  # two halves of the class
    assert torch.equal(distill(0, ipc=2).images, two.images)  # same seed, same set
    groupings = {tuple(distill(seed, ipc=2).images[:, 0, 0, 0].tolist()) for seed in range(6)}
    assert len(groupings) > 1  # the groups are random
