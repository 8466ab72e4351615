"""Every count and size a user types has an upper bound checked before work starts
(:mod:`ddr.protocol.bounds`): the message names the setting, the bound and how to raise it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddr.cli.main import main
from ddr.errors import ConfigError
from ddr.protocol.bounds import BOUNDS, check_bound, limit


@pytest.mark.parametrize(("argv", "said"), [
    (["--num-eval", "5000"], "num_eval = 5,000 is above ddr's bound of 1,000 students per accuracy"),
    (["--epochs", "50000"], "train.epochs = 50,000 is above ddr's bound of 10,000 epochs of one training"),
    (["--set", "real.epochs=99999"], "real.epochs = 99,999 is above ddr's bound of 10,000 epochs"),
    (["--ipc", "20000"], "ipc = 20,000 is above ddr's bound of 10,000 images per class"),
    (["--distill-seeds", "500"], "--distill-seeds = 500 is above ddr's bound of 100 distillations"),
], ids=["students", "epochs", "real-epochs", "ipc", "distill-seeds"])
def test_a_count_above_its_bound_is_refused_before_any_work(argv: list[str], said: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["run", "--method", "random", *argv, "--no-progress", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "if you mean it, set DDR_MAX_" in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache" / "jobs").exists()


def test_the_environment_raises_a_bound_and_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    check_bound("num_eval", 1_000, what="--num-eval")  # the bound itself is allowed
    with pytest.raises(ConfigError, match="set DDR_MAX_NUM_EVAL=1001"):
        check_bound("num_eval", 1_001, what="--num-eval")
    monkeypatch.setenv("DDR_MAX_NUM_EVAL", "2000")
    check_bound("num_eval", 1_001, what="--num-eval")
    assert limit("num_eval") == 2000
    monkeypatch.setenv("DDR_MAX_NUM_EVAL", "-3")
    with pytest.raises(ConfigError, match=r"DDR_MAX_NUM_EVAL='-3' must be a positive whole number"):
        limit("num_eval")
    check_bound("ipc", "many", what="ipc")  # not an int: the type check elsewhere says so
    assert {b.env for b in BOUNDS.values()} == {f"DDR_MAX_{name.upper()}" for name in BOUNDS}


def test_a_suite_that_expands_past_its_bound_is_refused_at_load(tmp_path: Path) -> None:
    from ddr.plugin.manager import PluginSystem
    from ddr.runs.suite import load_suite

    suite = tmp_path / "big.yaml"
    suite.write_text("suite: big\nmethods: [random]\nipcs: [1, 10]\nseeds: [" +
                     ", ".join(str(s) for s in range(6000)) + "]\n")
    with pytest.raises(ConfigError, match=r"datasets x ipcs x methods x seeds x eval_archs = 12,000 is above "
                                          r"ddr's bound of 10,000 runs in one suite"):
        load_suite(suite, PluginSystem())
    suite.write_text("suite: big\nmethods: [random]\nnum_eval: 100000\n")
    with pytest.raises(ConfigError, match="num_eval = 100,000 is above"):
        load_suite(suite, PluginSystem())


def test_an_image_size_above_its_bound_is_refused() -> None:
    from ddr.builtins.datasets.labelled_files import as_size

    assert as_size(64) == (64, 64) and as_size([2048, 32]) == (2048, 32)
    with pytest.raises(ConfigError, match="image_size = 4,096 is above ddr's bound of 2,048 pixels per image side"):
        as_size([32, 4096])
    with pytest.raises(ConfigError, match="must be a positive int or"):
        as_size(True)  # type: ignore[arg-type]
