"""The coreset selectors: uncertainty, forgetting, GraNd, EL2N, CCS, Moderate-DS (plugins) and ddr_methods._coreset.

Scores are checked against numpy/autograd computations or numbers worked by hand; the selectors run
on the digits context of ``tests/methods/conftest.py`` (a small ConvNet) with one-epoch scoring
networks. ``benchmarks/fidelity_coresets.py`` compares them with the reference code itself.
"""

from __future__ import annotations

import importlib
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.recording import record_returns
from torch import nn

import ddr_methods.ccs
import ddr_methods.el2n
import ddr_methods.forgetting
import ddr_methods.grand
import ddr_methods.moderate
import ddr_methods.uncertainty
from ddr.engine.data import Split
from ddr.errors import ConfigError, DataError, DdrError
from ddr.plugin.specs import MethodSpec
from ddr_methods._coreset import ScoringRecipe, budgets, class_budget
from ddr_methods._coreset.scoring import (
    ForgettingTracker,
    TrainingDynamics,
    class_balanced_picks,
    el2n_scores,
    grand_scores,
    logits_over,
    top_k,
    train_scoring_model,
)
from ddr_methods.ccs.method import bin_allocate, ccs_select, strata_edges, stratified_sampling
from ddr_methods.moderate.method import median_distances, moderate_window
from ddr_methods.uncertainty.method import uncertainty_scores

PLUGINS = {"uncertainty": ddr_methods.uncertainty, "forgetting": ddr_methods.forgetting, "grand": ddr_methods.grand,
           "el2n": ddr_methods.el2n, "ccs": ddr_methods.ccs, "moderate": ddr_methods.moderate}
FAST = {"uncertainty": {"selection_epochs": 1, "selection_batch_size": 256},
        "forgetting": {"selection_epochs": 2, "selection_batch_size": 256},
        "grand": {"selection_epochs": 1, "repeat": 2, "selection_batch_size": 256},
        "el2n": {"selection_epochs": 1, "repeat": 2, "selection_batch_size": 256},
        "ccs": {"selection_epochs": 2, "selection_batch_size": 256, "selection_augmentation": None},
        "moderate": {"feature_epochs": 1, "feature_batch_size": 256}}


def spec_of(name: str) -> MethodSpec:
    (spec,) = PLUGINS[name].ddr_methods()
    return spec


def method_of(name: str):
    module, attr = spec_of(name).target.split(":")
    return getattr(importlib.import_module(module), attr)()


def params_of(name: str, **extra) -> dict:
    return {**spec_of(name).defaults, **FAST[name], **extra}


# -- registration ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_spec_is_a_hard_label_selector_with_its_paper_and_presets(name):
    spec = spec_of(name)
    assert spec.name == name
    assert (spec.label_type, spec.label_strategy, spec.protocol) == ("hard", "hard", "hard")
    assert spec.paper and spec.venue and spec.year and spec.code.startswith("https://github.com/")
    assert {"paper", "reduced", "smoke"} <= set(spec.presets)
    for preset in spec.presets.values():
        spec.check_params(dict(preset))  # every preset fits the schema
    assert "fraction" in spec.defaults and spec.defaults["fraction"] is None
    assert hasattr(method_of(name), "distill") and hasattr(method_of(name), "select")


def test_paper_presets_are_the_references_settings():
    assert spec_of("uncertainty").defaults["score"] == "entropy"  # DeepCore main.py --uncertainty Entropy
    for name in ("uncertainty", "forgetting", "ccs"):
        merged = {**spec_of(name).defaults, **spec_of(name).presets["paper"]}
        assert (merged["selection_epochs"], merged["selection_lr"], merged["selection_momentum"],
                merged["selection_weight_decay"], merged["selection_nesterov"]) == (200, 0.1, 0.9, 5e-4, True)
    for name in ("grand", "el2n"):
        paper = spec_of(name).presets["paper"]
        assert (paper["selection_epochs"], paper["repeat"], paper["selection_batch_size"]) == (20, 10, 128)
    ccs = {**spec_of("ccs").defaults, **spec_of("ccs").presets["paper"]}
    assert (ccs["beta"], ccs["strata"], ccs["importance"], ccs["selection_schedule"]) == (0.3, 50, "accumulated_margin",
                                                                                          "cosine")
    assert spec_of("moderate").presets["paper"] == {"feature_epochs": None}  # the fully trained reference


def test_registration_does_not_import_torch():
    modules = ", ".join(f"ddr_methods.{n}" for n in PLUGINS)
    code = (f"import sys, {modules}\n"
            f"[m.ddr_methods() for m in ({modules},)]\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- budgets -------------------------------------------------------------------------------------------------

def test_budget_is_ipc_unless_fraction_is_set():
    assert class_budget(110, 10, None) == 10
    assert class_budget(10, 3, 0.3) == 3
    assert class_budget(5, 99, 0.5) == 2  # round(2.5) = 2 (half to even, as DeepCore's Python round); ipc unused
    assert class_budget(7, 1, 0.5) == 4  # round(3.5) = 4
    assert class_budget(10, 1, 0.01) == 1  # never below one image
    assert class_budget(10, 1, 1.0) == 10
    assert budgets([10, 20, 30], 2, 0.1) == [1, 2, 3]


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, float("nan"), "0.1", True])
def test_a_bad_fraction_is_a_config_error(fraction):
    with pytest.raises(ConfigError, match=r"fraction must be a number in \(0, 1\]"):
        class_budget(10, 1, fraction)


def test_ipc_larger_than_a_class_is_a_data_error():
    with pytest.raises(DataError, match="only 5 training images but ipc=6"):
        class_budget(5, 6, None)


# -- scores against numpy / hand computation -------------------------------------------------------------------

LOGITS = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 3.0, 0.5], [1.0, 1.0, -2.0]])
LABELS = torch.tensor([0, 2, 0, 1])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_uncertainty_scores_are_deepcores_formulas():
    z = LOGITS.numpy().astype(np.float64)
    p = _softmax(z)
    np.testing.assert_allclose(uncertainty_scores(LOGITS, "least_confidence").numpy(), z.max(axis=1))  # raw logits
    np.testing.assert_allclose(uncertainty_scores(LOGITS, "entropy").numpy(), (np.log(p + 1e-6) * p).sum(axis=1),
                               rtol=1e-6)
    top = np.sort(p, axis=1)[:, ::-1]
    np.testing.assert_allclose(uncertainty_scores(LOGITS, "margin").numpy(), top[:, 0] - top[:, 1], atol=1e-7)
    # by hand: uniform logits -> entropy 3 * (1/3) log(1/3 + 1e-6) = log(1/3 + 1e-6), margin 0
    assert uncertainty_scores(LOGITS, "entropy")[1].item() == pytest.approx(math.log(1 / 3 + 1e-6), rel=1e-6)
    assert uncertainty_scores(LOGITS, "margin")[1].item() == 0.0
    assert uncertainty_scores(LOGITS, "margin")[3].item() == 0.0  # a tie for the top class
    with pytest.raises(ConfigError, match="unknown uncertainty score 'ratio'"):
        uncertainty_scores(LOGITS, "ratio")


def test_el2n_is_the_error_norm():
    # by hand: uniform logits over 3 classes, label 2: error (1/3, 1/3, -2/3) -> sqrt(6)/3
    assert el2n_scores(LOGITS, LABELS)[1].item() == pytest.approx(math.sqrt(6) / 3, rel=1e-6)
    p = _softmax(LOGITS.numpy().astype(np.float64))
    expected = np.linalg.norm(p - np.eye(3)[LABELS.numpy()], axis=1)
    np.testing.assert_allclose(el2n_scores(LOGITS, LABELS).numpy(), expected, rtol=1e-6)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Linear(6, 5), nn.Linear(5, 3)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x.flatten(1)))

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def test_grand_is_the_norm_of_the_last_layer_gradient_by_autograd():
    model = _Tiny()
    images = torch.randn(7, 1, 2, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    expected = []
    for x, y in zip(images, labels):
        loss = F.cross_entropy(model(x[None]), y[None])
        gw, gb = torch.autograd.grad(loss, [model.head.weight, model.head.bias])
        expected.append(torch.sqrt((gw ** 2).sum() + (gb ** 2).sum()))
    scores = grand_scores(model, Split(labels=labels, images=images), batch_size=3)
    torch.testing.assert_close(scores, torch.stack(expected), rtol=1e-5, atol=1e-7)
    # closed form: ||p - y|| * sqrt(1 + ||h||^2)
    with torch.no_grad():
        closed = el2n_scores(model(images), labels) * torch.sqrt(1 + model.embed(images).pow(2).sum(1))
    torch.testing.assert_close(scores, closed, rtol=1e-5, atol=1e-7)


def _logits_for(correct: list[bool], labels: torch.Tensor) -> torch.Tensor:
    """Two-class logits that classify each sample correctly or not."""
    out = torch.zeros(len(correct), 2)
    for i, (ok, y) in enumerate(zip(correct, labels.tolist())):
        out[i, y if ok else 1 - y] = 1.0
    return out


def test_forgetting_counts_one_to_zero_flips_on_the_batches_as_trained():
    tracker = ForgettingTracker(4)
    labels = torch.tensor([0, 1, 0, 1])
    # sample 0: 1,0,1,0 -> 2 events; 1: 0,1,1,1 -> 0; 2: never correct; 3: 1,1,0,0 -> 1
    history = [[True, False, False, True], [False, True, False, True], [True, True, False, False],
               [False, True, False, False]]
    for epoch, row in enumerate(history):
        tracker(epoch, torch.arange(4), _logits_for(row, labels), labels)
    assert tracker.scores("zero").tolist() == [2.0, 0.0, 0.0, 1.0]
    assert tracker.scores("most").tolist() == [2.0, 0.0, math.inf, 1.0]
    # a batch holding only some samples leaves the others untouched
    tracker(4, torch.tensor([1]), _logits_for([False], labels[1:2]), labels[1:2])
    assert tracker.scores("zero").tolist() == [2.0, 1.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="never_learned"):
        tracker.scores("never")


def test_training_dynamics_accumulate_ccs_margin_forgetting_and_early_el2n():
    dynamics = TrainingDynamics(2, el2n_epochs=1)
    labels = torch.tensor([0, 1])
    first = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    second = torch.tensor([[0.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    dynamics(0, torch.arange(2), first, labels)
    dynamics(1, torch.tensor([1, 0]), second.flip(0), labels.flip(0))
    p1, p2 = _softmax(first.numpy().astype(np.float64)), _softmax(second.numpy().astype(np.float64))
    margin = [p1[0, 0] - max(p1[0, 1], p1[0, 2]) + p2[0, 0] - max(p2[0, 1], p2[0, 2]),
              p1[1, 1] - max(p1[1, 0], p1[1, 2]) + p2[1, 1] - max(p2[1, 0], p2[1, 2])]
    np.testing.assert_allclose(dynamics.scores("accumulated_margin").numpy(), margin, rtol=1e-6)
    assert dynamics.scores("forgetting").tolist() == [1.0, 0.0]  # sample 0: right, then wrong
    el2n = np.linalg.norm(p1 - np.eye(3)[[0, 1]], axis=1)  # epoch 0 only (el2n_epochs=1)
    np.testing.assert_allclose(dynamics.scores("el2n").numpy(), el2n, rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown CCS importance score"):
        dynamics.scores("aum")


# -- class-balanced choice ---------------------------------------------------------------------------------------

def test_top_k_breaks_ties_by_the_lower_position():
    scores = torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_k(scores, 2, largest=True).tolist() == [1, 2]
    assert top_k(scores, 4, largest=True).tolist() == [1, 2, 4, 3]
    assert top_k(torch.tensor([2.0, 1.0, 1.0]), 2, largest=False).tolist() == [1, 2]
    assert top_k(torch.tensor([0.0, math.inf, 5.0]), 2, largest=True).tolist() == [1, 2]
    with pytest.raises(DataError, match="NaN"):
        top_k(torch.tensor([0.0, math.nan]), 1, largest=True)
    with pytest.raises(DataError, match="k=3 of 2"):
        top_k(torch.tensor([0.0, 1.0]), 3, largest=True)


def test_class_balanced_picks_map_positions_back_to_the_pool():
    scores = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])
    pools = [torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])]
    picks = class_balanced_picks(scores, pools, [2, 1], largest=True)
    assert [p.tolist() for p in picks] == [[0, 2], [3]]
    picks = class_balanced_picks(scores, pools, [1, 2], largest=False)
    assert [p.tolist() for p in picks] == [[4], [5, 1]]


# -- CCS ------------------------------------------------------------------------------------------------------

def test_bin_allocate_spreads_the_budget_from_the_smallest_bin():
    # counts 1, 5, 2, 0 -> visited 0-bin, 1, 2, 5: 0, min(1, 7//3=2)=1, min(2, 6//2=3)=2, min(5, 4)=4
    assert bin_allocate(7, torch.tensor([1, 5, 2, 0])).tolist() == [1, 4, 2, 0]
    assert bin_allocate(3, torch.tensor([4, 4, 4])).sum().item() == 3


def test_strata_cover_every_score_even_when_ccs_bins_would_not():
    score = torch.tensor([0.0, 1.0, 2.0, 3.0])
    low, step = strata_edges(score, 2)
    assert low.item() == 0.0 and step.item() == pytest.approx(3.0003 / 2)  # CCS: max * 1.0001
    for values in ([0.0, 0.0, 0.0], [-3.0, -1.0, -2.0]):  # the official top edge drops these maxima
        score = torch.tensor(values)
        low, step = strata_edges(score, 5)
        assert bool((score < low + 5 * step).all()) and step.item() > 0
    picks = stratified_sampling(torch.zeros(6), 3, strata=50, generator=torch.Generator().manual_seed(0))
    assert len(picks) == 3 and len(set(picks.tolist())) == 3


def test_ccs_prunes_the_hardest_and_spreads_over_strata():
    aum = torch.arange(20.0)  # 0..19: the 6 lowest (beta 0.3) are pruned
    importance = torch.arange(20.0)
    picks = ccs_select(importance, aum, 5, beta=0.3, strata=5, generator=torch.Generator().manual_seed(0))
    assert len(set(picks.tolist())) == 5 and min(picks.tolist()) >= 6
    # 14 left in 5 equal strata of width 13*1.0001/5: one pick per stratum
    strata = ((importance[picks] - 6) / (13.0013 / 5)).floor().tolist()
    assert sorted(strata) == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match="lower beta or ipc"):
        ccs_select(importance, aum, 15, beta=0.3, strata=5, generator=torch.Generator())
    with pytest.raises(ConfigError, match=r"beta must lie in \[0, 1\)"):
        ccs_select(importance, aum, 2, beta=1.0, strata=5, generator=torch.Generator())


# -- Moderate-DS -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [7, 8])
def test_moderate_distances_are_to_numpys_median(n):
    features = torch.randn(n, 5, generator=torch.Generator().manual_seed(n))
    x = features.numpy()
    expected = np.linalg.norm(x.astype(np.float64) - np.median(x, axis=0).astype(np.float64), axis=1)
    np.testing.assert_allclose(median_distances(features).numpy(), expected, rtol=1e-12)


def test_moderate_window_keeps_the_middle_of_the_ranking():
    distances = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])  # ranks: 5, 1, 3, 4, 2, 0
    assert moderate_window(distances, 2).tolist() == [3, 4]  # low = 2: ranks 2, 3
    assert moderate_window(distances, 4).tolist() == [1, 3, 4, 2]
    assert moderate_window(distances, 3).tolist() == [3, 4, 2]  # low = round(1.5) = 2
    assert moderate_window(distances, 6).tolist() == [5, 1, 3, 4, 2, 0]
    with pytest.raises(DataError, match="k=7 of 6"):
        moderate_window(distances, 7)


# -- the scoring network's loop -----------------------------------------------------------------------------------

def _toy_split(n: int = 24) -> Split:
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(n) % 3
    return Split(labels=labels, images=torch.randn(n, 1, 2, 3, generator=g) + labels.view(-1, 1, 1, 1).float())


def test_the_loop_sees_every_sample_once_per_epoch_before_each_update():
    split = _toy_split()
    model = _Tiny()
    seen: dict[int, list[int]] = {}
    before: list[torch.Tensor] = []

    def on_batch(epoch, index, logits, labels):
        seen.setdefault(epoch, []).extend(index.tolist())
        torch.testing.assert_close(labels, split.labels[index])
        with torch.no_grad():
            torch.testing.assert_close(logits, model(split.images[index]))  # the forward before the update
        before.append(model.head.bias.detach().clone())

    recipe = ScoringRecipe(epochs=2, lr=0.1, batch_size=10)
    train_scoring_model(model, split, recipe, generator=torch.Generator().manual_seed(0), on_batch=on_batch)
    assert sorted(seen[0]) == sorted(seen[1]) == list(range(24)) and seen[0] != seen[1]
    assert len(before) == 6 and not torch.equal(before[0], before[1])
    assert not model.training


def test_the_loop_is_deepcores_sgd_step_and_replays_a_given_order():
    split = _toy_split(12)
    batches = [torch.tensor([3, 1, 7, 0, 11]), torch.tensor([2, 4, 5, 6, 8, 9, 10])]
    ours = train_scoring_model(_Tiny(), split, ScoringRecipe(epochs=1, lr=0.2, batch_size=5),
                               generator=torch.Generator(), order=lambda epoch: batches)
    reference = _Tiny()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.2, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for index in batches:
        optimizer.zero_grad()
        F.cross_entropy(reference(split.images[index]), split.labels[index]).backward()
        optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_the_cosine_schedule_ends_at_min_lr_and_bad_recipes_are_refused():
    split = _toy_split(10)
    lrs: list[float] = []
    model = _Tiny()
    recipe = ScoringRecipe(epochs=3, lr=0.1, batch_size=5, schedule="cosine", min_lr=1e-3)
    train_scoring_model(model, split, recipe, generator=torch.Generator().manual_seed(0),
                        on_epoch=lambda epoch, m: lrs.append(epoch))
    assert lrs == [0, 1, 2]
    with pytest.raises(ConfigError, match="selection_nesterov needs selection_momentum > 0"):
        ScoringRecipe(epochs=1, momentum=0.0).check()
    with pytest.raises(ConfigError, match="selection_lr must be > 0"):
        ScoringRecipe(epochs=1, lr=0.0).check()
    with pytest.raises(ConfigError, match="selection_schedule"):
        ScoringRecipe(epochs=1, schedule="step").check()
    with pytest.raises(DdrError, match="diverged"):
        train_scoring_model(_Tiny(), _toy_split(10), ScoringRecipe(epochs=2, lr=1e30, batch_size=5),
                            generator=torch.Generator().manual_seed(0))


def test_a_mixing_augmentation_is_refused():
    def mixing(images, generator):
        return images, object()

    with pytest.raises(ConfigError, match="must not mix"):
        train_scoring_model(_Tiny(), _toy_split(10), ScoringRecipe(epochs=1, batch_size=5),
                            generator=torch.Generator(), augmentation=mixing)


def test_logits_over_restores_the_mode_and_batches():
    split, model = _toy_split(10), _Tiny()
    model.train()
    with torch.no_grad():
        torch.testing.assert_close(logits_over(model, split, batch_size=3), model(split.images))
    assert model.training
    torch.testing.assert_close(logits_over(model, split, torch.tensor([4, 2])), logits_over(model, split)[[4, 2]])


# -- the plugins on the digits context ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_selector_keeps_ipc_real_images_per_class_deterministically(name, distill_context):
    ctx = distill_context(params_of(name), ipc=2, seed=0)
    out = method_of(name).distill(ctx)
    assert out.images.shape == (20, 1, 16, 16) and out.images.dtype == torch.float32
    assert out.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert out.meta["method"] == name and out.pixel_space == ctx.dataset.pixel_space
    per_class = out.meta["selected_indices"]
    for c, idx in enumerate(per_class):
        assert len(set(idx)) == 2 and bool((ctx.train.labels[idx] == c).all())
    index = torch.tensor([i for idx in per_class for i in idx])
    assert torch.equal(out.images, ctx.train.images[index])
    again = method_of(name).distill(distill_context(params_of(name), ipc=2, seed=0))
    assert again.meta["selected_indices"] == per_class


def test_uncertainty_picks_the_lowest_scores_of_its_network(distill_context):
    ctx = distill_context(params_of("uncertainty", score="margin"), ipc=3)
    trained = record_returns(ctx, "make_model")
    picks = method_of("uncertainty").select(ctx)
    (model,) = trained
    pool = ctx.class_indices()[4]
    scores = uncertainty_scores(logits_over(model, ctx.train, pool), "margin")
    assert picks[4].tolist() == pool[torch.sort(scores, stable=True).indices[:3]].tolist()


def test_uncertainty_scores_with_the_reference_when_selection_epochs_is_null(distill_context):
    ctx = distill_context(params_of("uncertainty", selection_epochs=None), ipc=1)
    calls = []
    teacher = ctx.teacher
    ctx.teacher = lambda: calls.append(1) or teacher()
    ctx.make_model = None  # nothing is trained here
    out = method_of("uncertainty").distill(ctx)
    assert calls == [1] and out.meta["scoring_net"] == "reference"
    with pytest.raises(ConfigError, match="selection_epochs null scores with the protocol's reference"):
        method_of("uncertainty").distill(distill_context(params_of("uncertainty", selection_epochs=None, arch="mlp")))


def test_fraction_keeps_a_share_of_every_class(distill_context):
    ctx = distill_context(params_of("el2n", fraction=0.02), ipc=1)
    out = method_of("el2n").distill(ctx)
    sizes = [len(p) for p in ctx.class_indices()]
    expected = [max(1, round(0.02 * n)) for n in sizes]
    assert out.meta["per_class"] == expected and out.meta["fraction"] == 0.02
    assert [len(i) for i in out.meta["selected_indices"]] == expected
    assert out.labels.tolist() == [c for c, k in enumerate(expected) for _ in range(k)]


@pytest.mark.parametrize("name, params, error, match", [
    ("uncertainty", {"score": "ratio"}, ConfigError, "score must be one of least_confidence, entropy, margin"),
    ("forgetting", {"never_learned": "sometimes"}, ConfigError, "never_learned must be 'most' or 'zero'"),
    ("forgetting", {"selection_epochs": 0}, ConfigError, "selection_epochs must be >= 1"),
    ("grand", {"repeat": 0}, ConfigError, "repeat must be a positive integer"),
    ("el2n", {"selection_lr": -1.0}, ConfigError, "selection_lr must be a finite number >= 0"),
    ("ccs", {"beta": 1.0}, ConfigError, r"beta must lie in \[0, 1\)"),
    ("ccs", {"importance": "aum"}, ConfigError, "importance must be one of"),
    ("ccs", {"beta": 0.999}, DataError, "lower beta or ipc"),
    ("moderate", {"fraction": 2.0}, ConfigError, r"fraction must be a number in \(0, 1\]"),
])
def test_bad_params_say_what_is_wrong(name, params, error, match, distill_context):
    ctx = distill_context(params_of(name, **params), ipc=2)
    with pytest.raises(error, match=match):
        method_of(name).distill(ctx)


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_ipc_larger_than_a_class_is_refused_before_any_training(name, distill_context):
    ctx = distill_context(params_of(name), ipc=500)
    ctx.make_model = ctx.train_model = ctx.teacher = None  # fails loudly if anything trains first
    with pytest.raises(DdrError, match=r"has only \d+ training images"):
        method_of(name).distill(ctx)


def test_schema_refuses_unknown_and_mistyped_params():
    with pytest.raises(ConfigError, match="did you mean 'repeat'"):
        spec_of("grand").check_params({"repeats": 3})
    with pytest.raises(ConfigError, match="parameter score='x' is invalid"):
        spec_of("uncertainty").check_params({"score": "x"})
    assert spec_of("ccs").check_params({"selection_augmentation": None}) == {"selection_augmentation": None}
    assert spec_of("uncertainty").check_params({"selection_epochs": None}) == {"selection_epochs": None}
    with pytest.raises(ConfigError, match="selection_epochs must not be null"):
        spec_of("forgetting").check_params({"selection_epochs": None})
