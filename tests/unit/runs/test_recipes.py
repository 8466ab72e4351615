"""Method recipes: the authors' settings per (dataset, IPC), pinned to their official sources, picked
by ``ddr run`` and applied under the user's own choices (which always win)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from ddr.errors import InvalidSpecError
from ddr.plugin.manager import PluginSystem
from ddr.plugin.specs import MethodRecipe, MethodSpec
from ddr.runs.distill import resolve_method
from ddr.runs.evaluate import EvalOptions
from ddr.runs.run import describe_recipe, evaluation_options

if TYPE_CHECKING:
    from ddr.protocol.config import Protocol

# Transcribed here independently of the plugins, from the official files named in each recipe's source.
MTT_ZCA = {  # GeorgeCazenavette/mtt-distillation readme.md table, the ZCA column
    ("cifar10", 1): True, ("cifar10", 10): True, ("cifar10", 50): False,
    ("cifar100", 1): True, ("cifar100", 10): False, ("cifar100", 50): True,
    ("tinyimagenet", 1): False, ("tinyimagenet", 10): False, ("tinyimagenet", 50): False,
}
DATM_CELLS = [(d, k) for d in ("cifar10", "cifar100", "tinyimagenet") for k in (1, 10, 50)]  # every config: zca True,
DATM_BATCH = 128                                                                             # batch_train 128
RDED = {  # LINs-lab/RDED argument.py: re_batch_size by IPC on CIFAR-10; the CIFAR-100 conv3 special experiment
    ("cifar10", 1): {"train.batch_size": 10}, ("cifar10", 10): {"train.batch_size": 50},
    ("cifar10", 50): {"train.batch_size": 100},
    ("cifar100", 1): {"train.batch_size": 25, "train.lr": 0.002},
    ("cifar100", 10): {"train.batch_size": 25, "train.lr": 0.002},
    ("cifar100", 50): {"train.batch_size": 25, "train.lr": 0.002},
}


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def spec_of(system: PluginSystem, name: str) -> MethodSpec:
    return system.methods().resolve(name).spec


def test_each_recipe_table_equals_its_transcribed_source(system: PluginSystem) -> None:
    mtt, datm, rded = (spec_of(system, m) for m in ("mtt", "datm", "rded"))
    for (dataset, ipc), zca in MTT_ZCA.items():
        recipe = mtt.recipe_for(dataset, ipc)
        assert recipe is not None and recipe.zca is zca and not recipe.protocol_overrides and not recipe.params
        assert "mtt-distillation" in recipe.source
    assert len(mtt.recipes) == len(MTT_ZCA)
    for dataset, ipc in DATM_CELLS:
        recipe = datm.recipe_for(dataset, ipc)
        assert recipe is not None and recipe.zca is True
        assert dict(recipe.protocol_overrides) == {"train.batch_size": DATM_BATCH}
        assert f"/ConvIN/IPC{ipc}.yaml" in recipe.source and "evaluation.py" in recipe.source
    for (dataset, ipc), settings in RDED.items():
        recipe = rded.recipe_for(dataset, ipc)
        assert recipe is not None and dict(recipe.params) == {"factor": 1} and recipe.zca is None
        assert dict(recipe.protocol_overrides) == {"teacher.arch": "convnet_bn", **settings}
        assert "LINs-lab/RDED@" in recipe.source and "conv3" in recipe.source
    assert mtt.recipe_for("digits", 1) is None and rded.recipe_for("tinyimagenet", 10) is None
    assert mtt.recipe_for("cifar10:train_per_class=5", 1) is mtt.recipe_for("cifar10", 1)  # options ignored


def test_parameters_resolve_defaults_budget_recipe_preset_user(system: PluginSystem) -> None:
    plain = resolve_method(system, "rded", "cifar10", ipc=10)
    assert plain.recipe is not None and plain.params["factor"] == 1  # the recipe over the default 2
    assert resolve_method(system, "rded", "cifar10", ipc=10, overrides={"factor": 3}).params["factor"] == 3
    assert resolve_method(system, "rded.paper", "cifar10", ipc=10).params["factor"] == 2  # a named preset wins
    assert resolve_method(system, "rded", "cifar10").recipe is None  # no IPC: no recipe
    assert resolve_method(system, "rded", "digits", ipc=10).params["factor"] == 1  # digits' reduced budget


def test_evaluation_options_apply_the_recipe_under_the_users_choices(system: PluginSystem) -> None:
    base = EvalOptions(dataset="cifar10", ipc=1)
    mtt = resolve_method(system, "mtt", "cifar10", ipc=1)
    assert evaluation_options(mtt, base).zca is True
    assert evaluation_options(mtt, replace(base, zca=False)).zca is False  # --no-zca wins
    assert evaluation_options(resolve_method(system, "mtt", "cifar10", ipc=50), replace(base, ipc=50)).zca is False
    assert evaluation_options(resolve_method(system, "random", "cifar10", ipc=1), base).zca is False  # no recipe: off
    datm = resolve_method(system, "datm", "cifar100", ipc=10)
    o = evaluation_options(datm, EvalOptions(dataset="cifar100", ipc=10))
    assert o.zca is True and dict(o.overrides) == {"train.batch_size": 128} and o.method_protocol == "hard"
    o = evaluation_options(datm, EvalOptions(dataset="cifar100", ipc=10, overrides={"train.batch_size": 64}))
    assert dict(o.overrides) == {"train.batch_size": 64}  # --set wins
    rded = resolve_method(system, "rded", "cifar10", ipc=50)
    o = evaluation_options(rded, EvalOptions(dataset="cifar10", ipc=50))
    assert dict(o.overrides) == {"teacher.arch": "convnet_bn", "train.batch_size": 100} and o.method_protocol == "soft"
    assert o.protocol_overrides()["train.batch_size"] == 100  # recorded like any override
    line = describe_recipe(rded, "cifar10", 50)
    assert line is not None and line.startswith("rded: the authors' 'cifar10 IPC 50' recipe for cifar10 IPC 50 "
                                                 "(factor=1; teacher.arch=convnet_bn; train.batch_size=100)")
    assert describe_recipe(resolve_method(system, "random", "cifar10", ipc=1), "cifar10", 1) is None


def test_a_recipe_may_name_a_protocol(system: PluginSystem) -> None:
    spec = spec_of(system, "dm")
    mine = replace(spec, recipes=(MethodRecipe(dataset="cifar10", protocol="soft", source="a paper, Table 2"),))
    choice = resolve_method(system, "dm", "cifar10", ipc=10)
    choice = replace(choice, recipe=mine.recipe_for("cifar10", 10))
    assert evaluation_options(choice, EvalOptions(dataset="cifar10", ipc=10)).method_protocol == "soft"


def test_bad_recipes_are_refused_when_the_spec_is_made() -> None:
    with pytest.raises(InvalidSpecError, match="say where the recipe comes from"):
        MethodRecipe(dataset="cifar10")
    with pytest.raises(InvalidSpecError, match="positive integers"):
        MethodRecipe(dataset="cifar10", ipcs=(0,), source="x")
    common = dict(name="m", target="m:M", defaults={"k": 1})
    with pytest.raises(InvalidSpecError, match="both cover cifar10"):
        MethodSpec(**common, recipes=(MethodRecipe(dataset="cifar10", ipcs=(1, 10), source="x"),
                                      MethodRecipe(dataset="cifar10", ipcs=(10,), source="y")))
    with pytest.raises(InvalidSpecError, match="recipe 'cifar10'"):
        MethodSpec(**common, recipes=(MethodRecipe(dataset="cifar10", params={"nope": 1}, source="x"),))
    ok = MethodSpec(**common, recipes=(MethodRecipe(dataset="cifar10", ipcs=(1,), source="x"),
                                       MethodRecipe(dataset="cifar10", ipcs=(10,), source="y")))
    assert ok.recipe_for("cifar10", 10).source == "y" and ok.recipe_for("cifar10", 50) is None  # type: ignore[union-attr]


def test_describe_lists_the_recipes(ddr_cli) -> None:
    proc = ddr_cli("describe", "method", "datm")
    assert proc.returncode == 0, proc.stderr
    assert "  cifar10 IPC 10: ZCA on; train.batch_size=128" in proc.stdout
    assert "NUS-HPC-AI-Lab/DATM configs/CIFAR-10/ConvIN/IPC10.yaml" in proc.stdout
    record = json.loads(ddr_cli("describe", "method", "rded", "--json").stdout)
    assert [r["name"] for r in record["recipes"]] == ["cifar10 IPC 1", "cifar10 IPC 10", "cifar10 IPC 50", "cifar100"]


def test_sre2l_cifar_recipe_is_its_32px_scripts_and_builds_a_valid_protocol(system: PluginSystem) -> None:
    """VILA-Lab/SRe2L *small_dataset: squeeze_cifar.py, recover_cifar.py/.sh, relabel_cifar.py/.sh."""
    from ddr.protocol.config import resolve_protocol

    for dataset in ("cifar10", "cifar100"):
        choice = resolve_method(system, "sre2l", dataset, ipc=50)
        assert choice.recipe is not None and "recover_cifar.py" in choice.recipe.source
        assert {k: choice.params[k] for k in ("crop_scale_min", "flip", "jitter", "iterations", "lr", "r_bn")} == {
            "crop_scale_min": 1.0, "flip": False, "jitter": 4, "iterations": 1000, "lr": 0.25, "r_bn": 0.01}
        o = evaluation_options(choice, EvalOptions(dataset=dataset, ipc=50))
        assert o.method_protocol == "sre2l-paper" and o.zca is False
        protocol = resolve_protocol(o.method_protocol, dict(o.overrides), system=system)
        assert (protocol.teacher.arch, protocol.student.arch) == ("resnet18_bn", "resnet18_bn")  # not convnet_bn
        assert (protocol.real.optimizer, protocol.real.lr, protocol.real.epochs, protocol.real.batch_size,
                protocol.real.schedule) == ("sgd", 0.1, 200, 128, "cosine")
        assert (protocol.train.optimizer, protocol.train.lr, protocol.train.weight_decay, protocol.train.epochs,
                protocol.train.batch_size) == ("adamw", 0.001, 0.01, 400, 128)
        assert tuple(protocol.augmentation) == ("crop_flip", "mixup.sre2l") and protocol.loss["temperature"] == 30.0
    assert resolve_method(system, "sre2l", "digits", ipc=1).recipe is None


# -- DC, DSA and DM: VICO-UoE/DatasetCondensation @ 53f63a6 ------------------------------------------
# Transcribed here from the official files, independently of ddr_methods/_matching/recipes.py.

VICO = "VICO-UoE/DatasetCondensation@53f63a6"
VICO_GET_LOOPS = {1: (1, 1), 10: (10, 50), 50: (50, 10)}  # utils.py get_loops: ipc -> (outer_loop, inner_loop)
VICO_MAIN = {  # main.py argparse defaults (Iteration, lr_img, lr_net, batch_real, batch_train, dis_metric), optimizer_img
    "iterations": 1000, "lr_img": 0.1, "momentum_img": 0.5, "lr_net": 0.01, "batch_real": 256, "batch_train": 256,
    "metric": "ours",
}
VICO_INIT = {"dc": "noise", "dsa": "real"}  # main.py --init default; readme's DSA command: --init real
VICO_DM = {  # main_DM.py argparse defaults (Iteration, lr_img, batch_real, init, dsa_strategy on), optimizer_img
    "iterations": 20000, "lr_img": 1.0, "momentum_img": 0.5, "batch_real": 256, "init": "real", "augmentation": "dsa",
}
FLIP, NOFLIP = "color_crop_cutout_flip_scale_rotate", "color_crop_cutout_scale_rotate"  # readme: no flip for MNIST, SVHN
VICO_PARAM_DIFF_AUG = {"mode": "S", "flip": 0.5, "scale": 1.2, "rotate": 15.0, "crop": 0.125, "cutout": 0.5,
                       "brightness": 1.0, "saturation": 2.0, "contrast": 0.5}  # utils.py ParamDiffAug
VICO_STUDENT = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005, "batch_size": 256,
                "schedule": "step", "milestones": (0.5,), "gamma": 0.1}  # utils.py evaluate_synset (lr = lr_net)
VICO_CELLS = {  # the papers' tables
    "dc": [(d, k) for d in ("mnist", "fashion-mnist", "svhn", "cifar10") for k in (1, 10, 50)]
    + [("cifar100", 1), ("cifar100", 10)],
    "dsa": [(d, k) for d in ("mnist", "fashion-mnist", "svhn", "cifar10", "cifar100") for k in (1, 10, 50)],
    "dm": [(d, k) for d in ("cifar10", "cifar100", "tinyimagenet") for k in (1, 10, 50)],
}
# main.py's evaluation: DC students train 1000 epochs with get_daparam's augmentation (MNIST only: crop_scale_rotate),
# 300 without; DSA's train 1000 with its strategy; DM's (main_DM.py epoch_eval_train) 1000 with its strategy.
DC_EVAL_EPOCHS = {"mnist": 1000}  # else 300


def _recipe_protocol(system: PluginSystem, method: str, dataset: str, ipc: int) -> tuple[EvalOptions, Protocol]:
    """The options and protocol ``ddr run --method METHOD --dataset DATASET --ipc IPC`` evaluates under."""
    from ddr.protocol.config import resolve_protocol

    o = evaluation_options(resolve_method(system, method, dataset, ipc=ipc), EvalOptions(dataset=dataset, ipc=ipc))
    assert o.zca is False  # get_dataset only normalises
    return o, resolve_protocol(o.method_protocol, dict(o.overrides), system=system, dataset=dataset, ipc=ipc)


def _strategy(system: PluginSystem, names: Sequence[str], extra: Mapping[str, Any] | None = None) -> str:
    """The DSA strategy of a one-entry augmentation list (``["dsa"]``, ``["dsa.noflip"]``), after ``extra``."""
    assert len(names) == 1
    resolved = system.augmentations().resolve(names[0])
    assert resolved.spec.name == "dsa"
    params = {**resolved.params, **(extra or {})}
    assert {k: params[k] for k in VICO_PARAM_DIFF_AUG} == VICO_PARAM_DIFF_AUG
    return params["strategy"]


@pytest.mark.parametrize("method", ["dc", "dsa"])
def test_dc_and_dsa_recipes_are_vico_main_py_cell_by_cell(system: PluginSystem, method: str) -> None:
    from types import SimpleNamespace

    from ddr_methods._matching.gradient import read_matching_params

    spec = spec_of(system, method)
    assert sorted((r.dataset, *r.ipcs) for r in spec.recipes) == sorted(VICO_CELLS[method])
    for dataset, ipc in VICO_CELLS[method]:
        choice = resolve_method(system, method, dataset, ipc=ipc)
        recipe = choice.recipe
        assert recipe is not None and recipe.ipcs == (ipc,) and recipe.zca is False, (dataset, ipc)
        assert recipe.source.startswith(VICO) and "main.py:" in recipe.source and "get_loops" in recipe.source
        # what gradient_matching runs: every parameter, the loops resolved from the IPC
        cfg = read_matching_params(SimpleNamespace(params=choice.params, ipc=ipc), method,  # type: ignore[arg-type]
                                   "dsa" if method == "dsa" else None)
        assert {k: getattr(cfg, k) for k in VICO_MAIN} == VICO_MAIN, (dataset, ipc)
        assert cfg.init == VICO_INIT[method] and (cfg.outer_loop, cfg.inner_loop) == VICO_GET_LOOPS[ipc], (dataset, ipc)
        o, protocol = _recipe_protocol(system, method, dataset, ipc)
        assert {k: getattr(protocol.train, k) for k in VICO_STUDENT} == VICO_STUDENT, (dataset, ipc)
        assert protocol.student.arch_for(32) == "convnet"  # ConvNet-3, width 128, instance norm (get_network)
        if method == "dsa":
            digits = dataset in ("mnist", "svhn")
            assert _strategy(system, ["dsa"], cfg.augmentation_params) == (NOFLIP if digits else FLIP)
            assert o.method_protocol == "hard" and protocol.train.epochs == 1000
            for names in (protocol.hard_augmentation, protocol.augmentation):  # students: the same DSA strategy
                assert _strategy(system, names) == (NOFLIP if digits else FLIP), (dataset, ipc)
            assert "readme.md:113" in recipe.source if digits else "readme.md:113" not in recipe.source
        else:
            assert o.method_protocol == "hard-dc"
            assert protocol.train.epochs == DC_EVAL_EPOCHS.get(dataset, 300), (dataset, ipc)
            # get_daparam's crop_scale_rotate on MNIST has no ddr counterpart: no augmentation, said in the source
            assert protocol.hard_augmentation == () and protocol.augmentation == ()
            assert ("get_daparam" in recipe.source
                    and ("known deviation" in recipe.source) == (dataset == "mnist")), (dataset, ipc)
        if not (method == "dsa" and dataset in ("mnist", "svhn")):  # the defaults restated: cached sets still match
            assert choice.params == dict(spec.defaults), (dataset, ipc)
    assert spec.recipe_for("digits", 1) is None and spec.recipe_for("mnist5k", 10) is None
    assert spec.recipe_for("cifar10", 20) is None  # not a published cell


def test_dm_recipes_are_vico_main_dm_py_cell_by_cell(system: PluginSystem) -> None:
    spec = spec_of(system, "dm")
    assert sorted((r.dataset, *r.ipcs) for r in spec.recipes) == sorted(VICO_CELLS["dm"])
    for dataset, ipc in VICO_CELLS["dm"]:
        choice = resolve_method(system, "dm", dataset, ipc=ipc)
        recipe = choice.recipe
        assert recipe is not None and recipe.zca is False and recipe.source.startswith(VICO + " main_DM.py:")
        assert {k: choice.params[k] for k in VICO_DM} == VICO_DM, (dataset, ipc)
        assert _strategy(system, [choice.params["augmentation"]], choice.params["augmentation_params"]) == FLIP
        assert choice.params == dict(spec.defaults)  # the defaults restated: cached sets still match
        o, protocol = _recipe_protocol(system, "dm", dataset, ipc)
        assert o.method_protocol == "hard" and not o.overrides and protocol.train.epochs == 1000
        assert {k: getattr(protocol.train, k) for k in VICO_STUDENT} == VICO_STUDENT
        assert _strategy(system, protocol.hard_augmentation) == FLIP and _strategy(system, protocol.augmentation) == FLIP
    assert spec.recipe_for("digits", 1) is None and spec.recipe_for("mnist", 10) is None  # not in DM's table


def test_ddr_run_dm_cifar10_ipc10_uses_the_recipe_under_the_users_choices(system: PluginSystem) -> None:
    """``ddr run --method dm --dataset cifar10 --ipc 10``: the recipe is picked, printed and applied."""
    choice = resolve_method(system, "dm", "cifar10", ipc=10)
    assert choice.recipe is not None and choice.recipe.name == "cifar10 IPC 10" and choice.budget is None
    assert choice.params["iterations"] == 20000 and choice.params["lr_img"] == 1.0
    o = evaluation_options(choice, EvalOptions(dataset="cifar10", ipc=10))
    assert o.method_protocol == "hard" and o.zca is False and dict(o.overrides) == {}
    line = describe_recipe(choice, "cifar10", 10)
    assert line is not None and line.startswith(
        "dm: the authors' 'cifar10 IPC 10' recipe for cifar10 IPC 10 (ZCA off; iterations=20000; lr_img=1.0; "
        "momentum_img=0.5; batch_real=256; init=real; augmentation=dsa; protocol hard); source: " + VICO + " main_DM.py:")
    # --set method.KEY, a preset, --zca, --protocol and --set KEY still win
    assert resolve_method(system, "dm", "cifar10", overrides={"iterations": 5}, ipc=10).params["iterations"] == 5
    assert resolve_method(system, "dm.reduced", "cifar10", ipc=10).params["iterations"] == 50
    o = evaluation_options(choice, EvalOptions(dataset="cifar10", ipc=10, zca=True, protocol="hard-dc",
                                               overrides={"train.epochs": 300}))
    assert o.zca is True and o.protocol == "hard-dc" and dict(o.overrides) == {"train.epochs": 300}
    dsa = evaluation_options(resolve_method(system, "dsa", "svhn", ipc=10),
                             EvalOptions(dataset="svhn", ipc=10, overrides={"augmentation": ["dsa"]}))
    assert dict(dsa.overrides) == {"hard_augmentation": ["dsa.noflip"], "augmentation": ["dsa"]}


def test_describe_lists_the_matching_recipes(ddr_cli) -> None:
    record = json.loads(ddr_cli("describe", "method", "dc", "--json").stdout)
    assert len(record["recipes"]) == 14 and record["recipes"][0]["name"] == "mnist IPC 1"
    assert record["recipes"][0]["protocol"] == "hard-dc" and record["recipes"][0]["protocol_overrides"] == {
        "train.epochs": 1000}
