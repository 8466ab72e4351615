"""Protocol YAML (ddr.protocol.config) and protocol resolution (ddr.protocol.config.resolve_protocol)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ddr.errors import ConfigError
from ddr.protocol.config import PROTOCOL_SCHEMA, build_protocol, load_protocol, resolve_protocol
from ddr.protocol.yaml import check_schema, dotted_to_nested, load_yaml_with_includes, parse_override


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def _hard_data() -> dict:
    """The fully merged 'hard' protocol as plain data."""
    return resolve_protocol("hard").to_dict()


# -- the shipped protocols ----------------------------------------------------------------------

def test_hard_protocol_is_the_vico_standard() -> None:
    p = resolve_protocol("hard")
    assert (p.name, p.version) == ("hard", "1")
    assert p.student.arch == "convnet"
    assert p.data["train"] == {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005, "epochs": 1000,
                          "batch_size": 256, "schedule": "step", "milestones": [0.5], "gamma": 0.1}
    assert list(p.hard_augmentation) == ["dsa"] and list(p.augmentation) == ["dsa"]
    assert p.label_strategy == "hard" and p.loss is None
    assert p.selection == "last" and p.num_eval == 5
    assert p.lr_grid == (0.001, 0.005, 0.01, 0.05, 0.1)
    assert p.real.epochs is None  # the dataset's real_epochs
    assert p.metrics.w == 0.5
    assert "include" not in p.data


def test_hard_dc_inherits_hard_with_300_epochs_and_no_augmentation() -> None:
    p = resolve_protocol("hard-dc")
    assert (p.name, p.version) == ("hard-dc", "1")
    assert p.train.epochs == 300
    assert p.train.lr == 0.01 and p.train.schedule == "step"  # merged from _base.yaml
    assert list(p.hard_augmentation) == [] and list(p.augmentation) == []


def test_soft_protocol_is_the_teacher_recipe() -> None:
    p = resolve_protocol("soft")
    assert (p.name, p.version) == ("soft", "1")
    assert p.train.optimizer == "adamw" and p.train.lr == 0.001
    assert p.train.weight_decay == 0.01 and p.train.schedule == "cosine"
    assert p.train.epochs == 300
    assert p.label_strategy == "teacher"
    assert p.loss == {"name": "kl", "temperature": 4.0}
    assert list(p.augmentation) == ["random_resized_crop", "flip", "cutmix"]


def test_digits_protocol_is_the_quick_embedded_one() -> None:
    p = resolve_protocol("digits")
    assert (p.name, p.version) == ("digits", "1")
    assert dict(p.student.arch_params) == {"width": 64}
    assert p.student.arch == "convnet"
    assert p.train.epochs == 300 and p.real.epochs == 50
    assert p.real.schedule == "cosine"  # from _base.yaml
    assert list(p.real_augmentation) == []  # digits are not mirror-symmetric: no crop_flip
    assert list(p.hard_augmentation) == ["dsa.noflip"] and list(p.augmentation) == ["dsa.noflip"]


def test_protocol_is_typed_and_frozen() -> None:
    p = resolve_protocol("hard")
    assert p.train.to_dict()["milestones"] == [0.5]
    assert p.student.arch_for(32) == "convnet" and p.student.arch_for(64) == "convnet_d4"
    assert p.teacher.arch is None and p.teacher.checkpoint is None and p.metrics.ars is False
    with pytest.raises(AttributeError):
        p.num_eval = 3  # type: ignore[misc]


def test_a_protocol_missing_a_key_names_it_and_the_include_to_use(tmp_path: Path) -> None:
    data = _hard_data()
    del data["train"]["gamma"], data["test_interval"]
    with pytest.raises(ConfigError, match=r"does not set train.gamma, test_interval.*include: ddr.builtins.protocols:_base.yaml"):
        resolve_protocol(str(_write(tmp_path / "p.yaml", data)))


def test_a_protocol_written_before_the_later_keys_keeps_its_meaning(tmp_path: Path) -> None:
    data = _hard_data()
    del data["real"]["selection"], data["syn_hard_learned_lr"]  # a complete file from before they existed
    old = resolve_protocol(str(_write(tmp_path / "p.yaml", data)))
    assert old.real_selection == "last" and old.syn_hard_learned_lr is True
    assert old.to_dict() == _hard_data()  # the same protocol as the shipped 'hard'
    data["real"]["selection"] = "ddranking"  # a later key given is honoured
    assert resolve_protocol(str(_write(tmp_path / "q.yaml", data))).real_selection == "ddranking"


# -- strict schema -----------------------------------------------------------------------------

def test_unknown_top_level_key_says_did_you_mean(tmp_path: Path) -> None:
    data = _hard_data()
    data["trian"] = data.pop("train")
    with pytest.raises(ConfigError, match=r"unknown key 'trian'; did you mean 'train'\?"):
        resolve_protocol(str(_write(tmp_path / "p.yaml", data)))


def test_unknown_nested_key_says_did_you_mean(tmp_path: Path) -> None:
    data = _hard_data()
    data["train"]["epoch"] = data["train"].pop("epochs")
    with pytest.raises(ConfigError, match=r"unknown key 'train.epoch'; did you mean 'train.epochs'\?"):
        resolve_protocol(str(_write(tmp_path / "p.yaml", data)))


def test_unknown_key_without_a_close_match_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'metrics.zzz'; allowed here: w, lambda"):
        check_schema({"metrics": {"zzz": 1}}, PROTOCOL_SCHEMA, "x.yaml")


def test_unknown_override_key_is_an_error_too() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'train.epochs'"):
        resolve_protocol("hard", {"train.epoch": 5})


@pytest.mark.parametrize("override, fragment", [
    ({"train.epochs": "many"}, "'train.epochs' must be int or null"),
    ({"train.lr": "fast"}, "'train.lr' must be float"),
    ({"train.lr": True}, "'train.lr' must be float"),
    ({"train": 5}, "'train' must be a mapping"),
    ({"metrics.ddranking_compat_percent": 1}, "must be bool"),
    ({"lr_grid": 0.01}, "'lr_grid' must be list"),
    ({"num_eval": 2.5}, "'num_eval' must be int"),
])
def test_wrong_types_are_config_errors(override: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve_protocol("hard", override)


def test_an_int_is_accepted_where_a_float_is_expected() -> None:
    assert resolve_protocol("hard", {"train.lr": 1}).train.lr == 1


def test_yaml_exponent_without_a_dot_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nversion: 1\ntrain:\n  lr: 1e-3\n")  # PyYAML reads 1e-3 as a string
    with pytest.raises(ConfigError, match=r"'train.lr' must be float.*write it with a dot"):
        resolve_protocol(str(path))


@pytest.mark.parametrize("override, fragment", [
    ({"selection": "best"}, "selection must be one of"),
    ({"metrics.w": 1.5}, r"metrics.w must be within \[0, 1\]"),
    ({"metrics.lambda": -0.1}, r"metrics.lambda must be within \[0, 1\]"),
    ({"train.optimizer": "rmsprop"}, "train.optimizer must be one of"),
    ({"real.schedule": "linear"}, "real.schedule must be one of"),
    ({"train.epochs": 0}, "train.epochs must be >= 1"),
    ({"num_eval": 0}, "num_eval must be >= 1"),
    ({"selection": "validation", "lr_grid": []}, "lr_grid, which is empty"),
    ({"lr_grid": [0.01, -1]}, "positive learning rates"),
    ({"selection": "validation", "validation_per_class": 0}, "validation_per_class >= 1"),
    ({"test_interval": 0}, "test_interval >= 1"),
])
def test_invalid_values_are_config_errors(override: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve_protocol("hard", override)


def test_name_and_version_are_required() -> None:
    data = _hard_data()
    del data["version"]
    with pytest.raises(ConfigError, match="does not set version;"):
        build_protocol(data, "x.yaml")
    data = _hard_data()
    del data["name"]
    with pytest.raises(ConfigError, match="does not set name;"):
        build_protocol(data, "x.yaml")


# -- include ------------------------------------------------------------------------------------

def test_include_merges_deeply_and_the_including_file_wins(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", {"train": {"lr": 0.01, "epochs": 100}, "num_eval": 5, "augmentation": ["dsa"]})
    _write(tmp_path / "extra.yaml", {"train": {"epochs": 200}, "augmentation": ["flip"]})
    _write(tmp_path / "top.yaml", {"name": "t", "version": 2, "include": ["base.yaml", "extra.yaml"],
                                   "train": {"batch_size": 32}, "num_eval": 3})
    data = load_yaml_with_includes(str(tmp_path / "top.yaml"))
    assert (data["name"], data["version"]) == ("t", 2)
    # later includes win over earlier ones, the file itself over both; lists are replaced, not concatenated
    assert data["train"] == {"lr": 0.01, "epochs": 200, "batch_size": 32}
    assert data["augmentation"] == ["flip"] and data["num_eval"] == 3


def test_include_cycle_is_a_config_error(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", {"name": "a", "version": 1, "include": "b.yaml"})
    _write(tmp_path / "b.yaml", {"include": "a.yaml"})
    with pytest.raises(ConfigError, match="include cycle"):
        load_yaml_with_includes(str(tmp_path / "a.yaml"))
    _write(tmp_path / "self.yaml", {"include": "self.yaml"})
    with pytest.raises(ConfigError, match="include cycle"):
        resolve_protocol(str(tmp_path / "self.yaml"))


def test_include_cycle_through_differently_spelled_paths(tmp_path: Path) -> None:
    # 'd/../d/b.yaml' and 'd/b.yaml' are one file: the cycle must be found, not recursed into forever
    _write(tmp_path / "d" / "a.yaml", {"name": "a", "version": 1, "include": "../d/b.yaml"})
    _write(tmp_path / "d" / "b.yaml", {"include": "a.yaml"})
    with pytest.raises(ConfigError, match="include cycle"):
        resolve_protocol(str(tmp_path / "d" / "a.yaml"))


def test_missing_include_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", {"name": "a", "version": 1, "include": "gone.yaml"})
    with pytest.raises(ConfigError, match="gone.yaml"):
        resolve_protocol(str(tmp_path / "a.yaml"))


def test_a_user_file_can_include_a_shipped_protocol(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.yaml", {"name": "mine", "version": 3,
                                           "include": "ddr.builtins.protocols:hard.yaml",
                                           "train": {"epochs": 20}})
    p = resolve_protocol(str(path))
    assert (p.name, p.version) == ("mine", "3")
    assert p.train.epochs == 20 and p.train.lr == 0.01 and list(p.augmentation) == ["dsa"]


# -- overrides ------------------------------------------------------------------------------------

def test_dotted_and_nested_overrides_are_equivalent() -> None:
    dotted = resolve_protocol("hard", {"train.epochs": 5, "metrics.w": 0.25})
    nested = resolve_protocol("hard", {"train": {"epochs": 5}, "metrics": {"w": 0.25}})
    assert dotted.to_dict() == nested.to_dict()
    assert dotted.train.epochs == 5 and dotted.train.lr == 0.01  # siblings kept
    assert dotted.metrics.w == 0.25 and dotted.metrics.lam == 0.5


def test_mixed_dotted_and_nested_overrides_keep_both_and_leave_the_input_alone() -> None:
    user = {"train": {"lr": 0.05}}
    both = {**user, "train.epochs": 7}
    assert dotted_to_nested(both) == {"train": {"lr": 0.05, "epochs": 7}}
    assert dotted_to_nested({"train.epochs": 7, "train": {"lr": 0.05}}) == {"train": {"lr": 0.05, "epochs": 7}}
    assert user == {"train": {"lr": 0.05}}  # not mutated
    p = resolve_protocol("digits", both)
    assert (p.train.lr, p.train.epochs) == (0.05, 7)


def test_conflicting_overrides_are_an_error() -> None:
    with pytest.raises(ConfigError, match="conflicts"):
        dotted_to_nested({"train": 5, "train.epochs": 3})


def test_overrides_do_not_change_the_shipped_protocol() -> None:
    resolve_protocol("hard", {"train.epochs": 3})
    assert resolve_protocol("hard").train.epochs == 1000


@pytest.mark.parametrize("item, expected", [
    ("train.epochs=5", ("train.epochs", 5)),
    ("train.lr=0.05", ("train.lr", 0.05)),
    ("train.lr=1e-3", ("train.lr", 0.001)),
    ("train.lr=2.5E+1", ("train.lr", 25.0)),
    ("lr_grid=[0.01, 0.05]", ("lr_grid", [0.01, 0.05])),
    ("metrics.ars=true", ("metrics.ars", True)),
    ("metrics.ddranking_compat_percent=false", ("metrics.ddranking_compat_percent", False)),
    ("selection=validation", ("selection", "validation")),
    ("real.epochs=null", ("real.epochs", None)),
    ("loss={name: kl, temperature: 20}", ("loss", {"name": "kl", "temperature": 20})),
    (" student.arch = resnet18", ("student.arch", "resnet18")),
    ("label=a=b", ("label", "a=b")),
    ("student.arch=e5", ("student.arch", "e5")),
])
def test_parse_override(item: str, expected: tuple) -> None:
    assert parse_override(item) == expected


@pytest.mark.parametrize("item", ["train.epochs", "=5", "lr_grid=[0.01"])
def test_parse_override_rejects_malformed_items(item: str) -> None:
    with pytest.raises(ConfigError):
        parse_override(item)


def test_override_strings_feed_resolve_protocol() -> None:
    pairs = dict(parse_override(s) for s in ("train.epochs=5", "train.lr=1e-3", "lr_grid=[0.01, 0.05]",
                                             "selection=ddranking"))
    p = resolve_protocol("digits", pairs)
    assert p.train.epochs == 5 and p.train.lr == 0.001
    assert p.lr_grid == (0.01, 0.05) and p.selection == "ddranking"


# -- user protocol files --------------------------------------------------------------------------

def test_a_user_yaml_protocol_file_works_with_resolve_protocol(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yml"
    path.write_text(
        "name: tiny\n"
        "version: 7\n"
        "include: ddr.builtins.protocols:_base.yaml\n"
        "student: {arch: convnet, arch_params: {width: 16}}\n"
        "train: {epochs: 3, lr: 0.02}\n"
        "real: {epochs: 1, augmentation: []}\n"
        "augmentation: []\n"
    )
    p = resolve_protocol(str(path), {"train.epochs": 4})
    assert (p.name, p.version) == ("tiny", "7")
    assert p.train.epochs == 4 and p.train.lr == 0.02
    assert dict(p.student.arch_params) == {"width": 16}
    assert load_protocol(str(path)).train.epochs == 3


def test_bad_protocol_files_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve_protocol(str(tmp_path / "list.yaml"))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        resolve_protocol(str(tmp_path / "broken.yaml"))
    with pytest.raises(ConfigError, match="not found"):
        resolve_protocol(str(tmp_path / "absent.yaml"))


def test_unknown_protocol_name_is_a_ddr_error() -> None:
    from ddr.errors import DdrError

    with pytest.raises(DdrError, match="unknown protocol 'hrad'; did you mean 'hard'"):
        resolve_protocol("hrad")


def test_soft_paper_preset_uses_temperature_20() -> None:
    assert resolve_protocol("soft").loss == {"name": "kl", "temperature": 4.0}
    paper = resolve_protocol("soft.paper")
    assert paper.name == "soft" and paper.loss == {"name": "kl", "temperature": 20.0}
