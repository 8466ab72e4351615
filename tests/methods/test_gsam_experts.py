"""DATM's experts trained as DATM trains them: GSAM (``ddr_methods._trajectory.gsam``).

The reference for every formula is FTD's GSAM as DATM ships it (NUS-HPC-AI-Lab/DATM @ 97ae510,
``buffer/gsam/gsam.py`` and ``buffer/gsam/scheduler.py``, driven by ``buffer/buffer_FTD.py`` with the
README's ``--rho_max=0.01 --rho_min=0.01 --alpha=0.3``) and Zhuang et al., ICLR 2022, Algorithm 1.
The steps below are computed by hand (plain Python floats, or float64 autograd on flattened
parameters) and compared with :func:`gsam_step`; ``benchmarks/fidelity_official.py --datm`` compares
it with the official classes themselves.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from ddr.errors import ConfigError
from ddr_methods._trajectory.gsam import PERTURB_EPS, ProportionalRho, frozen_batchnorm_statistics, gsam_step

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("ddr_methods._trajectory", "ddr_methods.mtt", "ddr_methods.datm")


# -- the step against the formula ------------------------------------------------------------------

def _quadratic_by_hand(w: list[float], c: list[float], *, lr: float, rho: float, alpha: float,
                       adaptive: bool) -> list[float]:
    """One GSAM step on ``L(w) = sum_i c_i w_i^2`` (gradient ``2 c w``), in Python floats.

    gsam.py perturb_weights (lines 41-53): e = rho * [w^2 if adaptive] * g / (||[|w|] g|| + eps);
    gradient_decompose (lines 63-85): cos = <g, g_p> / (||g_p|| ||g|| + eps),
    v = g - cos ||g|| g_p / (||g_p|| + eps), d = g_p - alpha v; SGD (momentum 0): w - lr d.
    """
    g = [2 * ci * wi for ci, wi in zip(c, w)]
    scaled = [abs(wi) * gi for wi, gi in zip(w, g)] if adaptive else g
    norm = math.sqrt(sum(x * x for x in scaled))
    e = [rho * (wi * wi if adaptive else 1.0) * gi / (norm + PERTURB_EPS) for wi, gi in zip(w, g)]
    gp = [2 * ci * (wi + ei) for ci, wi, ei in zip(c, w, e)]
    g_norm, gp_norm = math.sqrt(sum(x * x for x in g)), math.sqrt(sum(x * x for x in gp))
    cos = sum(a * b for a, b in zip(g, gp)) / (gp_norm * g_norm + PERTURB_EPS)
    v = [gi - cos * g_norm * gpi / (gp_norm + PERTURB_EPS) for gi, gpi in zip(g, gp)]
    return [wi - lr * (gpi - alpha * vi) for wi, gpi, vi in zip(w, gp, v)]


@pytest.mark.parametrize("adaptive", [True, False])
def test_gsam_step_on_a_quadratic_equals_the_formula_by_hand(adaptive: bool) -> None:
    w0, c = [0.8, -1.5, 0.3], [1.0, 0.25, 3.0]
    model = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([w0], dtype=torch.float64))
    coeff = torch.tensor([c], dtype=torch.float64)
    loss = gsam_step(model, lambda m: (coeff * m.weight ** 2).sum(), lr=0.1, rho=0.5, alpha=0.3, adaptive=adaptive)
    expected = _quadratic_by_hand(w0, c, lr=0.1, rho=0.5, alpha=0.3, adaptive=adaptive)
    assert float(loss) == pytest.approx(sum(ci * wi * wi for ci, wi in zip(c, w0)), rel=1e-15)
    assert model.weight.flatten().tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert model.weight.grad is None  # nothing left behind
    # the real numbers of this case (adaptive: DATM's mode): neither plain SGD nor a plain SAM step
    sgd = [wi - 0.1 * 2 * ci * wi for wi, ci in zip(w0, c)]
    assert max(abs(a - b) for a, b in zip(expected, sgd)) > 1e-3
    # worked through on paper for the adaptive case: g = (1.6, -0.75, 1.8), || |w| g || = 1.787631,
    # e = (0.286415, -0.471996, 0.045313), g_p = (2.172830, -0.985998, 2.071878), cos = 0.996772,
    # v = (-0.128824, 0.034509, 0.151517), d = g_p - 0.3 v
    assert expected == pytest.approx([0.5788530920, -1.4003650180, 0.0973585852] if adaptive else
                                     [0.5888855653, -1.4269017166, -0.1030180292], abs=1e-9)


def test_gsam_step_on_a_network_equals_the_formula_with_autograd() -> None:
    """A two-layer net (float64), cross-entropy on a fixed batch: the update ddr applies equals
    ``w - lr * (g_p - alpha * (g - <g, g_p> g_p / ||g_p||^2))`` (up to the eps terms) with
    ``g_p`` the gradient at ``w + rho |w|^2 g / || |w| g ||``, computed on one flat vector."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_at(flat: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(flat, [math.prod(s) for s in shapes])
        params = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes)}
        return nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    lr, rho, alpha = 0.05, 0.2, 0.3
    g = torch.func.grad(loss_at)(w)
    e = rho * w ** 2 * g / ((w.abs() * g).norm() + PERTURB_EPS)
    gp = torch.func.grad(loss_at)(w + e)
    v = g - (g @ gp) / (gp.norm() * g.norm() + PERTURB_EPS) * g.norm() * gp / (gp.norm() + PERTURB_EPS)
    expected = w - lr * (gp - alpha * v)

    gsam_step(model, lambda m: nn.functional.cross_entropy(m(x), y), lr=lr, rho=rho, alpha=alpha)
    got = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(got, w - lr * g, rtol=1e-6)  # not a plain SGD step


def test_the_second_pass_leaves_batchnorm_statistics_alone() -> None:
    """gsam.py line 168 / util.py lines 5-11: the pass at ``w + e`` does not move running statistics."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    probe = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    probe.load_state_dict(model.state_dict())
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    probe(x)  # one training-mode forward: the statistics one GSAM step may update
    gsam_step(model, lambda m: nn.functional.cross_entropy(m(x), y), lr=0.1, rho=0.05, alpha=0.3)
    assert torch.equal(model[1].running_mean, probe[1].running_mean)
    assert torch.equal(model[1].running_var, probe[1].running_var)
    assert model[1].momentum == 0.1  # restored
    with frozen_batchnorm_statistics(model):
        assert model[1].momentum == 0.0


# -- the rho schedule ------------------------------------------------------------------------------------

def test_rho_follows_the_learning_rate_as_the_proportion_scheduler() -> None:
    """scheduler.py lines 36-39: linear in the LR between (min_lr, min_rho) and (max_lr, max_rho);
    with a constant LR (buffer_FTD.py line 85: max_lr = min_lr = lr_teacher) rho is rho_max."""
    schedule = ProportionalRho(max_lr=0.1, min_lr=0.0, max_rho=0.05, min_rho=0.01)
    assert [schedule(lr) for lr in (0.1, 0.05, 0.025, 0.0)] == pytest.approx([0.05, 0.03, 0.02, 0.01], rel=1e-12)
    datm = ProportionalRho(max_lr=0.01, min_lr=0.01, max_rho=0.01, min_rho=0.01)
    assert [datm(0.01), datm(0.5)] == [0.01, 0.01]
    with pytest.raises(ConfigError, match="must equal rho_min"):  # scheduler.py line 18's assertion
        ProportionalRho(max_lr=0.01, min_lr=0.01, max_rho=0.02, min_rho=0.01)
    with pytest.raises(ConfigError, match="below rho_min"):
        ProportionalRho(max_lr=0.1, min_lr=0.0, max_rho=0.01, min_rho=0.02)
    with pytest.raises(ConfigError, match="below min_lr"):
        ProportionalRho(max_lr=0.0, min_lr=0.1, max_rho=0.01, min_rho=0.01)


# -- settings, cache keys, the methods' defaults --------------------------------------------------------

def _settings(**changes: Any) -> Any:
    from ddr_methods._trajectory.experts import ExpertSettings

    return ExpertSettings(**{"dataset": "digits", "pixel_space": "normalized", "arch": "convnet", "model": "m",
                             "pool": "p", "epochs": 8, "num_classes": 10, **changes})


def test_cache_keys_separate_sgd_and_gsam_experts_and_keep_the_plain_key() -> None:
    from dataclasses import asdict

    from ddr.method.assets import content_key
    from ddr_methods._trajectory.experts import EXPERT_FORMAT

    sgd, gsam = _settings(), _settings(optimizer="gsam")
    assert sgd.key(0) != gsam.key(0) and sgd.key(0) != sgd.key(1)
    # a plain expert's key is the one it had before the optimizer existed: cached experts stay valid
    before = {k: v for k, v in asdict(sgd).items() if k not in ("optimizer", "rho_max", "rho_min", "alpha")}
    assert sgd.key(0) == content_key({"format": EXPERT_FORMAT, **before, "index": 0})
    assert _settings(rho_max=0.5, rho_min=0.5, alpha=0.9).key(0) == sgd.key(0)  # GSAM's values: no part of sgd
    assert _settings(optimizer="gsam", rho_max=0.05, rho_min=0.05).key(0) != gsam.key(0)
    assert _settings(optimizer="gsam", alpha=0.4).key(0) != gsam.key(0)
    assert gsam.key_fields()["adaptive"] is True and "optimizer" not in sgd.key_fields()
    assert "--optimizer gsam" in gsam.command(2) and "--optimizer" not in sgd.command(2)
    assert "--alpha 0.4" in _settings(optimizer="gsam", alpha=0.4).command(1)
    with pytest.raises(ConfigError, match="unknown expert optimizer 'adam'"):
        _settings(optimizer="adam")
    with pytest.raises(ConfigError, match="must equal rho_min"):
        _settings(optimizer="gsam", rho_max=0.02)
    with pytest.raises(ConfigError, match="alpha"):
        _settings(optimizer="gsam", alpha=float("nan"))


def test_datm_defaults_to_gsam_experts_and_mtt_to_sgd_ones(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import ddr_methods.datm
    import ddr_methods.mtt
    from ddr.cli.main import main

    datm, = ddr_methods.datm.ddr_methods()
    mtt, = ddr_methods.mtt.ddr_methods()
    d = {s.name: s.default for s in datm.params}
    m = {s.name: s.default for s in mtt.params}
    # DATM README.md line 31: buffer_FTD.py --train_epochs=100 --rho_max=0.01 --rho_min=0.01 --alpha=0.3
    assert (d["expert_optimizer"], d["expert_rho_max"], d["expert_rho_min"], d["expert_alpha"]) == ("gsam", 0.01,
                                                                                                      0.01, 0.3)
    assert d["expert_train_epochs"] == 100 and d["expert_lr"] == 0.01 and d["expert_batch_size"] == 256
    assert m["expert_optimizer"] == "sgd"  # MTT's buffer.py
    assert {s.name: s for s in datm.params}["expert_optimizer"].choices == ("sgd", "gsam")
    for spec in (datm, mtt):  # the presets keep the method's own experts
        assert all("expert_optimizer" not in preset for preset in spec.presets.values())
    _use_plugins(monkeypatch)
    capsys.readouterr()
    assert main(["describe", "method", "datm"]) == 0
    shown = capsys.readouterr().out
    assert 'expert_optimizer         str     default "gsam"' in shown and "expert_alpha" in shown


def test_datm_asks_for_gsam_experts_and_mtt_for_sgd_ones(distill_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr_methods._trajectory import matching

    asked: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def fake_experts_for(ctx: Any, **kwargs: Any) -> Any:
        asked.append(kwargs)
        raise Stop

    monkeypatch.setattr(matching, "experts_for", fake_experts_for)
    for method, params in ((matching.DATM(), {}), (matching.MTT(), {}),
                           (matching.DATM(), {"expert_optimizer": "sgd"}),
                           (matching.MTT(), {"expert_optimizer": "gsam", "expert_alpha": 0.5})):
        with pytest.raises(Stop):
            method.distill(distill_context(params))
    assert [(a["optimizer"], a["rho_max"], a["rho_min"], a["alpha"]) for a in asked] == [
        ("gsam", 0.01, 0.01, 0.3), ("sgd", 0.01, 0.01, 0.3), ("sgd", 0.01, 0.01, 0.3), ("gsam", 0.01, 0.01, 0.5)]


# -- ddr experts train --optimizer gsam, and a run finding what it trained ------------------------------

def _use_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    installed = {ep.value.split(":")[0] for ep in md.entry_points(group="ddr")}
    missing = [m for m in MODULES if m not in installed]
    if missing:
        monkeypatch.setenv("DDR_PLUGINS", ",".join(missing))


def test_experts_train_gsam_writes_a_trajectory_a_datm_run_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from ddr.cli.main import main
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import Evaluator
    from ddr_methods._trajectory.experts import _read_trajectory, experts_for

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cli"))
    _use_plugins(monkeypatch)
    torch.set_num_threads(1)
    command = ["experts", "train", "--dataset", "digits", "--arch", "convnet", "--arch-params", "{width: 8, depth: 2}",
               "--num-experts", "1", "--epochs", "2", "--batch-size", "128", "--augmentation", "dsa.noflip",
               "--no-progress", "--json"]
    capsys.readouterr()
    assert main([*command, "--optimizer", "gsam"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["trained"] == 1 and record["optimizer"] == "gsam" and record["alpha"] == 0.3
    folder = Path(record["folders"][0])
    trajectory = _read_trajectory(folder)  # loadable: the plain experts' format
    assert trajectory.epochs == 2 and trajectory.info["settings"]["optimizer"] == "gsam"
    first, last = trajectory.params(0), trajectory.params(2)
    assert first.dtype == torch.float32 and first.shape == last.shape and torch.isfinite(last).all()
    assert not torch.equal(first, last)

    assert main([*command]) == 0  # plain SGD: another entry, another trajectory from the same start
    plain = _read_trajectory(Path(json.loads(capsys.readouterr().out)["folders"][0]))
    assert plain.path != trajectory.path and torch.equal(plain.params(0), first)
    assert not torch.equal(plain.params(2), last)
    assert main(["experts", "list", "--json"]) == 0
    assert sorted(r["optimizer"] for r in json.loads(capsys.readouterr().out)) == ["gsam", "sgd"]
    assert main([*command, "--optimizer", "gsam", "--rho-min", "0.005"]) != 0  # the LR is constant
    assert "must equal rho_min" in capsys.readouterr().err

    # a DATM run with the same settings finds the CLI's expert, and training it in a run gives the same numbers
    evaluator = Evaluator(dataset="digits", ipc=1, seed=0, device="cpu", arch="convnet",
                          arch_params={"width": 8, "depth": 2})
    ctx = dataclasses.replace(build_context(evaluator.resources, ipc=1, seed=0, params={}), auto_assets=False)
    found = experts_for(ctx, num_experts=1, epochs=2, batch_size=128, augmentation="dsa.noflip", optimizer="gsam")
    assert found[0].path == trajectory.path
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "run"))
    ctx = build_context(evaluator.resources, ipc=1, seed=0, params={})
    again = experts_for(ctx, num_experts=1, epochs=2, batch_size=128, augmentation="dsa.noflip", optimizer="gsam")
    assert again[0].path != trajectory.path and os.fspath(tmp_path / "run") in os.fspath(again[0].path)
    assert torch.equal(again[0].params(2), last)
