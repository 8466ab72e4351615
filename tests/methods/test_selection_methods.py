"""The selection baselines: random, herding, K-center (plugins) and ddr_methods._selection."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch
from helpers.recording import record_returns

import ddr_methods.herding
import ddr_methods.kcenter
import ddr_methods.random
from ddr.engine.data import Split
from ddr.errors import ConfigError, DataError, DdrError
from ddr.plugin.specs import MethodSpec
from ddr_methods._selection import FEATURE_NET_DEFAULTS, embed_all, feature_network
from ddr_methods.herding.method import herding_order
from ddr_methods.kcenter.method import kcenter_order

PLUGINS = {"random": ddr_methods.random, "herding": ddr_methods.herding, "kcenter": ddr_methods.kcenter}
FAST_FEATURES = {"feature_epochs": 1, "feature_batch_size": 128}


def spec_of(name: str) -> MethodSpec:
    (spec,) = PLUGINS[name].ddr_methods()
    return spec


def method_of(name: str):
    module, attr = spec_of(name).target.split(":")
    return getattr(importlib.import_module(module), attr)()


def params_of(name: str) -> dict:
    params = dict(spec_of(name).defaults)
    if name != "random":
        params.update(FAST_FEATURES)
    return params


# -- pure selection rules on hand-made features ----------------------------------------------------

def test_herding_order_matches_hand_computed_1d():
    # mean 3.2; targets 3.2 -> x=3, 3.4 -> x=2, 4.6 -> x=1, 6.8 -> x=10 (not 0: herding compensates
    # the low picks), then 0. DeepCore's argmax would start with x=10.
    features = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    assert herding_order(features, 5).tolist() == [3, 2, 1, 4, 0]
    assert herding_order(features, 2).tolist() == [3, 2]


def test_herding_order_2d_breaks_ties_by_lowest_index():
    # Square around mean (1,1): all four tie -> 0; target (2,2) -> 3; 1 and 2 tie -> 1; then 2.
    features = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert herding_order(features, 4).tolist() == [0, 3, 1, 2]
    assert herding_order(torch.ones(3, 2), 3).tolist() == [0, 1, 2]


def test_kcenter_order_matches_hand_computed_2d():
    # mean (0.6,0.6): nearest is (1,0) -> 1; farthest from it (0,3) at sqrt(10) -> 3; then (4,0)
    # and (-2,0) tie at 3 -> 2 (lowest index); then 4; then 0.
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [0.0, 3.0], [-2.0, 0.0]])
    assert kcenter_order(features, 5).tolist() == [1, 3, 2, 4, 0]
    assert kcenter_order(features, 1).tolist() == [1]


def test_kcenter_order_still_picks_duplicates_of_a_centre():
    features = torch.tensor([[0.0], [0.0], [5.0]])
    assert kcenter_order(features, 3).tolist() == [0, 2, 1]


@pytest.mark.parametrize("order", [herding_order, kcenter_order])
def test_orders_reject_bad_input(order):
    with pytest.raises(DataError, match="k=4 of 3"):
        order(torch.zeros(3, 2), 4)
    with pytest.raises(DataError, match="2-D"):
        order(torch.zeros(3), 1)
    with pytest.raises(DataError, match="non-finite"):
        order(torch.tensor([[0.0], [float("nan")]]), 1)


def test_herding_tracks_the_mean_better_than_random_subsets():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(200, 8, generator=gen)
    mean = features.mean(0)

    def mean_error(idx: torch.Tensor) -> float:
        return float(torch.linalg.vector_norm(features[idx].mean(0) - mean))

    herd = mean_error(herding_order(features, 10))
    random_errors = [mean_error(torch.randperm(200, generator=gen)[:10]) for _ in range(100)]
    assert herd < min(random_errors)


def test_kcenter_covers_better_than_random_subsets():
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(200, 4, generator=gen)

    def covering_radius(idx: torch.Tensor) -> float:
        return float(torch.cdist(features, features[idx]).min(dim=1).values.max())

    kc = covering_radius(kcenter_order(features, 10))
    random_radii = [covering_radius(torch.randperm(200, generator=gen)[:10]) for _ in range(100)]
    assert kc < min(random_radii)


# -- registration --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_spec_registers_a_hard_label_method(name):
    spec = spec_of(name)
    assert spec.name == name
    assert (spec.label_strategy, spec.protocol) == ("hard", "hard")
    assert all(0.0 < float(v) < 1.0 and v.sourced for v in spec.reported.values())  # fractions, with sources
    assert hasattr(method_of(name), "distill")
    if name != "random":
        assert dict(spec.defaults) == dict(FEATURE_NET_DEFAULTS)


def test_plugin_registration_does_not_import_torch():
    code = ("import sys, ddr_methods.random, ddr_methods.herding, ddr_methods.kcenter\n"
            "[m.ddr_methods() for m in (ddr_methods.random, ddr_methods.herding, ddr_methods.kcenter)]\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the methods on a real context -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["random", "herding", "kcenter"])
def test_method_selects_class_major_real_images(name, distill_context):
    ctx = distill_context(params_of(name), ipc=3, seed=0)
    out = method_of(name).distill(ctx)

    assert out.images.shape == (30, 1, 16, 16) and out.images.dtype == torch.float32
    assert out.labels.dtype == torch.int64
    assert out.labels.tolist() == [c for c in range(10) for _ in range(3)]
    assert out.pixel_space == ctx.dataset.pixel_space
    assert out.meta["method"] == name and out.meta["params"] == ctx.params
    per_class = out.meta["selected_indices"]
    assert [len(idx) for idx in per_class] == [3] * 10
    for c, idx in enumerate(per_class):
        assert len(set(idx)) == 3
        assert (ctx.train.labels[idx] == c).all()
    index = torch.tensor([i for idx in per_class for i in idx])
    assert torch.equal(out.images, ctx.train.images[index])


@pytest.mark.parametrize("name", ["random", "herding", "kcenter"])
def test_same_seed_gives_same_selection(name, distill_context):
    first = method_of(name).distill(distill_context(params_of(name), ipc=2, seed=5))
    again = method_of(name).distill(distill_context(params_of(name), ipc=2, seed=5))
    assert first.meta["selected_indices"] == again.meta["selected_indices"]


def test_random_differs_across_seeds(distill_context):
    picks = [method_of("random").distill(distill_context(ipc=5, seed=s)).meta["selected_indices"]
             for s in (0, 1)]
    assert picks[0] != picks[1]


@pytest.mark.parametrize("name", ["random", "herding", "kcenter"])
def test_ipc_larger_than_a_class_is_an_error(name, distill_context):
    ctx = distill_context(params_of(name), ipc=500)
    smallest = min(len(p) for p in ctx.class_indices())
    with pytest.raises(DdrError, match=rf"has only \d+ training images .*ipc <= {smallest}"):
        method_of(name).distill(ctx)


def test_herding_picks_follow_the_order_of_the_trained_features(distill_context):
    ctx = distill_context(params_of("herding"), ipc=4)
    trained = record_returns(ctx, "train_model")
    out = method_of("herding").distill(ctx)
    (model,) = trained
    pool = ctx.class_indices()[7]
    expected = pool[herding_order(embed_all(model, ctx.train.images[pool]), 4)]
    assert out.meta["selected_indices"][7] == expected.tolist()
    assert out.meta["selected_indices"][7] != pool[:4].tolist()


@pytest.mark.parametrize("name, order", [("herding", herding_order), ("kcenter", kcenter_order)])
def test_by_default_selection_embeds_with_the_trained_reference(name, order, distill_context):
    """feature_epochs null (the default): the protocol's cached real-data reference, as IDC."""
    ctx = distill_context(dict(spec_of(name).defaults), ipc=3)
    loaded = record_returns(ctx, "teacher")
    ctx.train_model = None  # nothing is trained here
    out = method_of(name).distill(ctx)
    assert len(loaded) == 1 and out.meta["feature_net"] == "reference"
    pool = ctx.class_indices()[2]
    expected = pool[order(embed_all(loaded[0], ctx.train.images[pool]), 3)]
    assert out.meta["selected_indices"][2] == expected.tolist()


def test_a_feature_arch_needs_feature_epochs(distill_context):
    ctx = distill_context({**spec_of("herding").defaults, "arch": "mlp"}, ipc=1)
    with pytest.raises(ConfigError, match="feature_epochs null selects in the protocol's reference model"):
        method_of("herding").distill(ctx)


# -- ddr_methods._selection helpers --------------------------------------------------------------------------

def test_embed_all_batches_and_restores_mode(distill_context):
    ctx = distill_context()
    model = ctx.make_model()
    model.train()
    images = ctx.train.images[:70]
    features = embed_all(model, images, batch_size=32)
    with torch.no_grad():
        assert torch.allclose(features, model.embed(images).flatten(1), atol=1e-6)
    assert features.shape[0] == 70
    assert model.training


def test_feature_network_trains_on_the_whole_pool_with_its_params(distill_context):
    ctx = distill_context()
    calls = []

    def recording_train_model(model, images, labels, **kwargs):
        calls.append((images, labels, kwargs))
        return model

    ctx.train_model = recording_train_model
    model = feature_network(ctx, epochs=3, lr=0.05, batch_size=64)
    assert not model.training
    ((images, labels, kwargs),) = calls
    assert images is ctx.train.images and labels is ctx.train.labels
    assert kwargs == {"epochs": 3, "lr": 0.05, "batch_size": 64, "augmentation": None}

    calls.clear()
    assert not feature_network(ctx, epochs=0).training
    assert calls == []  # epochs=0 keeps the seeded initialisation


def test_feature_network_rejects_bad_params_and_streaming_pools(distill_context):
    ctx = distill_context()
    with pytest.raises(ConfigError, match="feature_epochs"):
        feature_network(ctx, epochs=-1)
    with pytest.raises(ConfigError, match="feature_lr"):
        feature_network(ctx, epochs=1, lr=0)
    ctx.train = Split(labels=ctx.train.labels, source=[(img, 0) for img in ctx.train.images])
    with pytest.raises(DataError, match="in memory"):
        feature_network(ctx, epochs=1)
