"""Fuzzing the DD-Ranking config reader (``ddr eval --ddranking-config FILE``): the YAML or JSON
file, the evaluator it is for, its mapping onto ddr's options and protocol overrides, and the
protocol those overrides give. Each step gives a result or a DdrError with a message; nothing else
escapes and nothing is written (``save_path`` is only written after an evaluation)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from helpers.fuzzing import (
    HUGE_NUMBERS,
    UNICODE_TEXT,
    dump_yaml,
    json_values,
    mutated,
    parse_outcome,
    scalars,
    scratch_dir,
    snapshot,
    weighted,
    yaml_documents,
)
from hypothesis import strategies as st

from ddr.compat.ddranking.config import KEYS, MappedConfig, evaluator_for, load_config, map_config
from ddr.plugin.manager import PluginSystem
from ddr.protocol.config import Protocol, resolve_protocol
from ddr.runs.evaluate import EvalOptions

DSA = {"flip": 0.5, "rotate": 15.0, "scale": 1.2, "crop": 0.125, "cutout": 0.5, "brightness": 1.0,
       "saturation": 2.0, "contrast": 0.5}
HARD: dict[str, Any] = {  # DD-Ranking's DSA/DM eval-config layout (tests/unit/compat/test_ddranking_compat.py)
    "dataset": "digits", "real_data_path": None, "ipc": 1, "im_size": [16, 16], "model_name": "ConvNet-3",
    "use_torchvision": False, "data_aug_func": "dsa", "aug_params": DSA, "use_zca": False,
    "custom_train_trans": [{"name": "ToTensor"}], "custom_val_trans": None, "optimizer": "sgd", "lr_scheduler": "step",
    "step_size": 5, "weight_decay": 0.0005, "momentum": 0.9, "num_eval": 1, "num_epochs": 10,
    "num_workers": 0, "device": "cpu", "dist": False, "syn_batch_size": 256, "real_batch_size": 256,
    "eval_full_data": True, "random_data_format": "tensor", "random_data_path": None, "default_lr": 0.01,
}
SOFT: dict[str, Any] = {  # DD-Ranking's D4M/RDED-style soft-label layout
    "dataset": "CIFAR10", "ipc": 10, "im_size": [32, 32], "model_name": "ConvNet-3-BN", "stu_use_torchvision": False,
    "tea_use_torchvision": False, "teacher_dir": None, "teacher_model_names": ["ConvNet-3"],
    "soft_label_mode": "M", "soft_label_criterion": "kl", "loss_fn_kwargs": {"temperature": 20.0, "scale_loss": False},
    "data_aug_func": "cutmix", "aug_params": {"beta": 1.0}, "use_aug_for_hard": False, "optimizer": "adamw",
    "lr_scheduler": "cosine", "weight_decay": 0.01, "momentum": [0.9, 0.999], "num_eval": 1, "num_epochs": 20,
    "syn_batch_size": 256, "real_batch_size": 256, "eval_full_data": True, "use_zca": False, "device": "cpu",
    "dist": False, "random_data_format": "tensor", "random_data_path": None, "save_path": "out/scores.csv",
    "custom_train_trans": None, "custom_val_trans": None,
}
ARS: dict[str, Any] = {"dataset": "digits", "ipc": 1, "model_name": "ConvNet-3", "label_type": "soft",
                       "batch_size": 64, "soft_label_mode": "S", "soft_label_criterion": "mse_gt",
                       "loss_fn_kwargs": {"mse_weight": 1.0, "ce_weight": 0.5}, "num_epochs": 30}
WORDS = ("CIFAR10", "CIFAR100", "TinyImageNet", "ImageMeow", "digits", "ConvNet-3", "ConvNet-0", "ConvNet", "ResNet-18",
         "ResNet-50-BN", "VGG-13", "AlexNet-BN", "LeNet-5", "MLP", "mobilenet_v2", "sgd", "adam", "step", "cosine",
         "lambda_step", "dsa", "mixup", "zca", "none", "M", "S", "kl", "sce", "mse_gt", "hard", "soft", "tensor",
         "image", "cpu", "cuda:9", "Normalize", "ToTensor", "RandomCrop", "~nosuchuser-ddr/data", "/nonexistent")
VALUES = weighted((json_values(), 3), (st.sampled_from(HUGE_NUMBERS), 2), (st.integers(-3, 2000), 2),
                  (st.sampled_from(WORDS + UNICODE_TEXT), 3), (st.lists(st.sampled_from(WORDS), max_size=3), 1),
                  (st.lists(weighted((st.integers(0, 64), 1), (st.sampled_from(HUGE_NUMBERS), 1)), max_size=3), 1),
                  (st.dictionaries(st.sampled_from(("lambda", "beta", "temperature", "scale_loss", "mse_weight",
                                                    "ce_weight", "flip", "prob_flip", "mean", "std", "name", "args")),
                                   weighted((json_values(max_leaves=3), 1), (st.sampled_from(HUGE_NUMBERS), 1),
                                            (st.floats(-2, 40), 1)), max_size=3), 1))
"""Values of DD-Ranking keys: names it and ddr know or refuse, numbers of every size, mappings of
the keys its augmentations and losses take."""
NUMBERS = weighted((st.sampled_from(HUGE_NUMBERS), 3), (st.integers(-3, 2000), 1), (st.floats(), 1),
                   (st.sampled_from(("1", None, True, [], {})), 1))
PATHS = st.sampled_from(("~nosuchuser-ddr/data", "~", "/nonexistent", "", ".", "a\x00b", "é/ü", "out/scores.csv"))
KEY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{key: NUMBERS for key in ("ipc", "num_epochs", "step_size", "num_eval", "syn_batch_size", "real_batch_size",
                                "batch_size", "weight_decay", "default_lr", "num_workers")},
    **{key: PATHS for key in ("real_data_path", "save_path", "teacher_dir")},
    "momentum": weighted((NUMBERS, 1), (st.lists(NUMBERS, max_size=3), 2)),
    "im_size": st.lists(NUMBERS, max_size=3),
    "aug_params": weighted((st.fixed_dictionaries({"beta": NUMBERS}), 1), (st.fixed_dictionaries({"lambda": NUMBERS}), 1),
                           (st.dictionaries(st.sampled_from(("lambda", "beta", "flip", "prob_flip", "rotate", "x")),
                                            NUMBERS, max_size=3), 1)),
    "loss_fn_kwargs": st.dictionaries(st.sampled_from(("temperature", "scale_loss", "mse_weight", "ce_weight")),
                                      weighted((NUMBERS, 3), (scalars, 1)), max_size=3),
    "custom_train_trans": st.lists(st.fixed_dictionaries({"name": st.sampled_from(("Normalize", "ToTensor", "Crop")),
                                                          "args": json_values(max_leaves=4)}), max_size=2),
    **{key: st.sampled_from(WORDS) for key in ("model_name", "dataset", "optimizer", "lr_scheduler", "data_aug_func",
                                               "soft_label_mode", "soft_label_criterion", "label_type")},
    "teacher_model_names": st.lists(st.sampled_from(WORDS), max_size=2),
}
"""Per key, values of the type it takes, at their edges."""


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def _contents() -> st.SearchStrategy[tuple[str, str | bytes]]:
    """(suffix, file content): the configs above mutated, any YAML/JSON, soup, text, bytes."""
    documents = weighted(*[(yaml_documents(base, list(KEYS), VALUES, KEY_VALUES), 1) for base in (HARD, SOFT, ARS)])
    as_json = weighted(*[(mutated(base, list(KEYS), VALUES, cycles=False, key_values=KEY_VALUES).map(json.dumps), 1)
                         for base in (HARD, SOFT, ARS)])
    return weighted((st.tuples(st.just(".yaml"), documents), 3), (st.tuples(st.just(".json"), as_json), 1),
                    (st.tuples(st.just(".json"), st.sampled_from((10, 100_000)).map(lambda n: "[" * n + "]" * n)), 1),
                    (st.tuples(st.sampled_from((".json", ".yml")), st.binary(max_size=64)), 1))


def read_config(path: str, options: EvalOptions, system: PluginSystem) -> tuple[MappedConfig, EvalOptions, Protocol]:
    """What ``ddr eval --ddranking-config PATH`` does before evaluating
    (:func:`ddr.compat.ddranking.config.cli_eval_options`, with one plugin system), then the
    protocol the options resolve to."""
    data = load_config(path)
    evaluator = evaluator_for(data, protocol=options.protocol, ars=options.ars)
    mapped = map_config(data, evaluator=evaluator, where=path, system=system)
    applied = mapped.eval_options(options)
    assert applied.protocol in ("ddranking-hard", "ddranking-soft")
    return mapped, applied, resolve_protocol(applied.protocol, applied.protocol_overrides(), system)


def test_ddranking_configs(run_property: Callable[..., None], system: PluginSystem) -> None:
    """A DD-Ranking config holding anything: its hard, soft and ARS layouts with wrong types,
    unknown/misspelt keys, keys of another evaluator, unknown datasets and models, huge/NaN
    numbers, odd paths; any YAML/JSON, text and bytes; with command-line flags that agree or not."""
    flags = st.fixed_dictionaries({}, optional={"protocol": st.sampled_from(("ddranking-hard", "ddranking-soft", "hard")),
                                                "ars": st.just(True), "dataset": st.sampled_from(("digits", "cifar10")),
                                                "num_eval": st.sampled_from((1, 3)), "epochs": st.just(5)})

    def prop(content: tuple[str, str | bytes], flag_values: dict[str, Any]) -> None:
        suffix, text = content
        with scratch_dir() as tmp:
            file = tmp / f"config{suffix}"
            if isinstance(text, bytes):
                file.write_bytes(text)
            else:
                file.write_text(text, encoding="utf-8")
            before, environment = snapshot(tmp), dict(os.environ)
            result, _ = parse_outcome(lambda: read_config(str(file), EvalOptions(**flag_values), system))
            if result is not None:
                mapped, applied, protocol = result
                assert applied.dataset and protocol.name in ("ddranking-hard", "ddranking-soft")
                assert all(isinstance(note, str) and note for note in mapped.notes)
            assert snapshot(tmp) == before and dict(os.environ) == environment

    run_property(prop, _contents(), flags)


def test_ddranking_mapping(run_property: Callable[..., None], system: PluginSystem) -> None:
    """:func:`map_config` (the Python API's ``Config``) on mappings that never were a file: non-str
    keys, values YAML cannot write (tuples, sets, bytes), for every evaluator."""
    odd = weighted((VALUES, 4), (st.tuples(st.integers(), st.integers()), 1), (st.binary(max_size=4), 1),
                   (st.frozensets(st.integers(0, 3), max_size=2), 1))
    configs = st.sampled_from((HARD, SOFT, ARS)).flatmap(
        lambda base: mutated(base, list(KEYS), odd, cycles=False, key_values=KEY_VALUES))

    def prop(data: dict[str, Any], evaluator: str | None) -> None:
        before = repr(data)
        result, _ = parse_outcome(lambda: map_config(data, evaluator=evaluator, system=system))
        assert repr(data) == before, "map_config changed the mapping it was given"
        if result is not None:
            parse_outcome(lambda: resolve_protocol(result.protocol, dict(result.overrides), system))
            assert dump_yaml(dict(result.options)) is not None

    run_property(prop, configs, st.sampled_from((None, "hard", "soft", "ars", "general")), examples=0.8)


def test_ddranking_key_edges(run_property: Callable[..., None], system: PluginSystem) -> None:
    """One key of a valid hard, soft or ARS config set to an edge value of the type it takes (huge,
    negative, NaN/Inf numbers, paths with ~user, single-key mappings): every key gets a few dozen."""
    cases = st.tuples(st.sampled_from((HARD, SOFT, ARS)), st.sampled_from(sorted(KEY_VALUES))).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), KEY_VALUES[pair[1]]))

    def prop(case: tuple[dict[str, Any], str, Any]) -> None:
        base, key, value = case
        data = copy.deepcopy({**base, key: value})
        before = repr(data)
        result, _ = parse_outcome(lambda: map_config(data, system=system))
        assert repr(data) == before, "map_config changed the mapping it was given"
        if result is not None:
            parse_outcome(lambda: resolve_protocol(result.protocol, dict(result.overrides), system))

    run_property(prop, cases, examples=3)
