"""Issue 26: a protocol's `follows:` says which settings --epochs/--lr/--num-eval set."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddr.errors import ConfigError
from ddr.protocol.config import load_protocol, resolve_protocol
from ddr.resources.session import Session
from ddr.runs.evaluate import EvalOptions, Evaluator


def test_ddranking_hard_epochs_trains_the_reference_that_long_too() -> None:
    logs: list[str] = []
    session = Session()
    session.log = logs.append  # type: ignore[method-assign]
    evaluator = Evaluator(EvalOptions(dataset="digits", protocol="ddranking-hard", epochs=20), session=session)
    assert evaluator.protocol.train.epochs == 20 and evaluator.protocol.real.epochs == 20
    assert evaluator.resources.real_recipe().epochs == 20
    assert evaluator.protocol.real.milestones == () and evaluator.protocol.train.milestones == ()  # StepLR(100), (500)
    evaluator.announce_protocol()  # said when work starts
    line = next(m for m in logs if "overrides set" in m)
    assert "train.epochs 1000 -> 20" in line and "real.epochs 1000 -> 20" in line
    record = EvalOptions(protocol="ddranking-hard", epochs=20).protocol_overrides(protocol=evaluator.protocol)
    assert record["real.epochs"] == 20


def test_digits_epochs_leaves_the_reference_alone() -> None:
    evaluator = Evaluator(EvalOptions(dataset="digits", protocol="digits", epochs=20), session=Session())
    assert evaluator.protocol.train.epochs == 20
    assert evaluator.protocol.real.epochs == resolve_protocol("digits").real.epochs == 50


def test_set_wins_over_a_followed_key() -> None:
    evaluator = Evaluator(EvalOptions(dataset="digits", protocol="ddranking-soft", epochs=40,
                                      overrides={"real.epochs": 7}), session=Session())
    assert (evaluator.protocol.train.epochs, evaluator.protocol.real.epochs) == (40, 7)


@pytest.mark.parametrize("name", ["ddranking-hard", "ddranking-soft", "ddranking-datm", "ddranking-d4m",
                                  "ddranking-rded", "ddranking-sre2l"])
def test_ddranking_protocols_follow_epochs_on_the_reference(name: str) -> None:
    protocol = resolve_protocol(name)
    assert protocol.follows["epochs"] == ("train.epochs", "real.epochs")
    assert protocol.step_sizes["real"] == 100
    # the shipped milestones are those of its steps at its own epochs
    assert protocol.flag_overrides("epochs", protocol.real.epochs)["real.milestones"] == list(protocol.real.milestones)


def test_old_files_without_follows_keep_their_meaning(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[3] / "ddr" / "builtins" / "protocols" / "_base.yaml"
    text = data.read_text().split("\nfollows:")[0]
    path = tmp_path / "old.yaml"
    path.write_text("name: old\nversion: 1\n" + text + "\n")
    protocol = load_protocol(str(path))
    assert protocol.follows["epochs"] == ("train.epochs",) and protocol.step_sizes == {}
    assert "follows" not in protocol.data  # records and cache keys are unchanged


def test_a_protocol_file_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("include: ddr.builtins.protocols:hard.yaml\nname: bad\nversion: 1\nnum_evl: 3\n"
                    "train: {optimiser: sgd}\nselection: best\nfollows: {epochs: [train.epoch]}\n")
    with pytest.raises(ConfigError) as info:
        load_protocol(str(path))
    message = str(info.value)
    assert "2 problems" in message and "num_evl" in message and "optimiser" in message
    path.write_text("include: ddr.builtins.protocols:hard.yaml\nname: bad\nversion: 1\nselection: best\n"
                    "num_eval: 0\nfollows: {epochs: [train.epoch]}\n")
    with pytest.raises(ConfigError) as info:
        load_protocol(str(path))
    message = str(info.value)
    assert "3 problems" in message and "selection must be one of" in message and "num_eval must be >= 1" in message
    assert "follows.epochs lists dotted protocol keys" in message
