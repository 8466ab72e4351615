"""The gradient-based coreset selectors: facility-location, graph-cut (submodular), craig, gradmatch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

import ddr_methods.craig
import ddr_methods.gradmatch
import ddr_methods.submodular
from ddr.errors import ConfigError, DdrError
from ddr.plugin.specs import MethodSpec
from ddr_methods._coreset.gradients import last_layer_gradients
from ddr_methods._coreset.gradmatch import orthogonal_matching_pursuit
from ddr_methods._coreset.submodular import FacilityLocation, GraphCut, cosine_similarity, greedy_maximize
from ddr_methods.craig.method import craig_order

SPECS: dict[str, MethodSpec] = {s.name: s for module in (ddr_methods.submodular, ddr_methods.craig,
                                                         ddr_methods.gradmatch) for s in module.ddr_methods()}
NAMES = sorted(SPECS)


def method_of(name: str):
    module, attr = SPECS[name].target.split(":")
    return getattr(importlib.import_module(module), attr)()


def smoke_params(name: str, **changes) -> dict:
    return {**dict(SPECS[name].defaults), **dict(SPECS[name].presets["smoke"]), **changes}


def test_the_four_selectors_are_registered():
    assert NAMES == ["craig", "facility-location", "gradmatch", "graph-cut"]


@pytest.mark.parametrize("name", NAMES)
def test_spec_metadata(name):
    spec = SPECS[name]
    assert (spec.label_type, spec.label_strategy, spec.protocol) == ("hard", "hard", "hard")
    assert {"paper", "reduced", "smoke"} <= set(spec.presets)
    assert spec.presets["smoke"]["selection_epochs"] == 1
    assert spec.presets["paper"]["selection_epochs"] == 200
    assert spec.defaults["selection_lr"] == 0.1 and spec.defaults["selection_momentum"] == 0.9
    assert spec.defaults["selection_weight_decay"] == 5e-4 and spec.defaults["selection_nesterov"] is True
    assert spec.defaults["fraction"] is None
    assert spec.venue and spec.year and spec.paper and spec.code and spec.code.startswith("https://")
    assert not spec.needs_teacher  # the scoring network is trained here, as DeepCore's EarlyTrain
    assert hasattr(method_of(name), "distill")


def test_registration_does_not_import_torch():
    code = ("import sys, ddr_methods.submodular, ddr_methods.craig, ddr_methods.gradmatch\n"
            "[m.ddr_methods() for m in (ddr_methods.submodular, ddr_methods.craig, ddr_methods.gradmatch)]\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name, bad, match", [
    ("facility-location", {"greedy": "stochastic"}, "greedy"),
    ("graph-cut", {"lam": -1.0}, "lam"),
    ("gradmatch", {"lam": -0.5}, "lam"),
    ("craig", {"selection_epochs": -1}, "selection_epochs"),
    ("graph-cut", {"greedy_typo": "lazy"}, "greedy"),
])
def test_bad_params_are_config_errors(name, bad, match):
    with pytest.raises(ConfigError, match=match):
        SPECS[name].check_params({**dict(SPECS[name].defaults), **bad})


@pytest.mark.parametrize("name, bad, match", [
    ("facility-location", {"greedy": "stochastic"}, "unknown greedy optimiser 'stochastic'"),
    ("craig", {"greedy": "random"}, "unknown greedy optimiser"),
    ("gradmatch", {"lam": float("nan")}, "lam must be a finite number"),
    ("graph-cut", {"selection_lr": 0.0}, "selection_lr must be > 0"),
    ("craig", {"fraction": 0.0}, "fraction must be a number in"),
    ("gradmatch", {"fraction": 1.5}, "fraction must be a number in"),
])
def test_bad_params_in_a_context_fail_before_training(name, bad, match, distill_context, monkeypatch):
    import ddr_methods._coreset.scoring as scoring

    ctx = distill_context(smoke_params(name, **bad), ipc=2)
    trained = []
    monkeypatch.setattr(scoring, "train_scoring_model", lambda *a, **k: trained.append(1))
    with pytest.raises(ConfigError, match=match):
        method_of(name).distill(ctx)
    assert not trained


@pytest.mark.parametrize("name", NAMES)
def test_selects_class_balanced_real_images(name, distill_context):
    ctx = distill_context(smoke_params(name), ipc=3, seed=0)
    out = method_of(name).distill(ctx)
    assert out.images.shape == (30, 1, 16, 16) and out.images.dtype == torch.float32
    assert out.labels.tolist() == [c for c in range(10) for _ in range(3)]
    assert out.meta["method"] == name and out.meta["params"] == ctx.params
    per_class = out.meta["selected_indices"]
    assert [len(set(idx)) for idx in per_class] == [3] * 10
    for c, idx in enumerate(per_class):
        assert (ctx.train.labels[idx] == c).all()
    index = torch.tensor([i for idx in per_class for i in idx])
    assert torch.equal(out.images, ctx.train.images[index])
    assert out.meta["scoring_epochs"] == 1 and out.meta["gradient_dim"] > 10
    weights_key = {"craig": "craig_weights", "gradmatch": "gradmatch_weights"}.get(name)
    if weights_key:
        weights = out.meta[weights_key]
        assert [len(w) for w in weights] == [3] * 10 and all(v >= 0 for w in weights for v in w)
    if name == "craig":  # 1 + the samples each pick stands for: the class size plus the picks
        sizes = [len(p) for p in ctx.class_indices()]
        assert [sum(w) for w in out.meta["craig_weights"]] == [n + 3 for n in sizes]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_same_selection(name, distill_context):
    first = method_of(name).distill(distill_context(smoke_params(name), ipc=2, seed=5))
    again = method_of(name).distill(distill_context(smoke_params(name), ipc=2, seed=5))
    assert first.meta["selected_indices"] == again.meta["selected_indices"]
    assert torch.equal(first.images, again.images)


def test_picks_follow_the_gradients_of_the_scoring_network(distill_context, monkeypatch):
    """The selection is the pure algorithm applied to the scoring network's per-class gradients."""
    import ddr_methods._coreset.gradient_selection as gs

    models = []
    network = gs.gradient_scoring_network

    def recording(ctx, method):
        models.append(network(ctx, method))
        return models[-1]

    monkeypatch.setattr(gs, "gradient_scoring_network", recording)
    results = {}
    for name in NAMES:
        ctx = distill_context(smoke_params(name), ipc=3, seed=2)
        results[name] = method_of(name).distill(ctx).meta["selected_indices"]
    pool = ctx.class_indices()[4]
    for name, model in zip(NAMES, models):
        g = last_layer_gradients(model, ctx.train.images[pool], ctx.train.labels[pool])
        if name == "facility-location":
            expected = greedy_maximize(FacilityLocation(cosine_similarity(g)), 3)
        elif name == "graph-cut":
            expected = greedy_maximize(GraphCut(cosine_similarity(g)), 3)
        elif name == "craig":
            expected, _ = craig_order(g, 3)
        else:
            A = g.to(torch.float64).T
            expected, _ = orthogonal_matching_pursuit(A, A.mean(1), 3)
        assert results[name][4] == pool[expected].tolist(), name


def test_fraction_keeps_deepcores_per_class_budget(distill_context):
    ctx = distill_context(smoke_params("facility-location", fraction=0.05), ipc=1)
    out = method_of("facility-location").distill(ctx)
    sizes = [len(p) for p in ctx.class_indices()]
    assert out.meta["per_class"] == [max(1, round(0.05 * n)) for n in sizes]


@pytest.mark.parametrize("name", ["graph-cut", "gradmatch"])
def test_ipc_larger_than_a_class_is_an_error(name, distill_context):
    ctx = distill_context(smoke_params(name), ipc=500)
    with pytest.raises(DdrError, match="ipc"):
        method_of(name).distill(ctx)


def test_zero_selection_epochs_scores_with_the_seeded_initialisation(distill_context, monkeypatch):
    import ddr_methods._coreset.scoring as scoring

    monkeypatch.setattr(scoring, "train_scoring_model",
                        lambda *a, **k: pytest.fail("nothing is trained with selection_epochs 0"))
    ctx = distill_context(smoke_params("craig", selection_epochs=0), ipc=1)
    out = method_of("craig").distill(ctx)
    assert out.meta["scoring_epochs"] == 0 and len(out.labels) == 10


@pytest.mark.parametrize("name", ["graph-cut", "gradmatch"])
def test_select_returns_the_picks_distill_keeps(name, distill_context):
    picks = method_of(name).select(distill_context(smoke_params(name), ipc=2, seed=3))
    out = method_of(name).distill(distill_context(smoke_params(name), ipc=2, seed=3))
    assert [p.tolist() for p in picks] == out.meta["selected_indices"]
    assert all(p.dtype == torch.int64 for p in picks)
