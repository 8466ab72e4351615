"""The ``ddr`` command line, run as ``python -m ddr`` in subprocesses (see the ``ddr_cli`` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ddr import __version__
from ddr.protocol.config import load_yaml_with_includes

PROTOCOLS = Path(__file__).resolve().parents[2] / "ddr" / "builtins" / "protocols"

BROKEN = {"fake_cli_broken_plugin.py": 'raise ImportError("fake_cli_broken_plugin needs libfoo")\n'}

HELLO = {
    "fake_hello_plugin.py": """
        from ddr import hookimpl

        def say_hello(args):
            print(f"hello {args.name} from a plugin command")
            return 0

        @hookimpl
        def ddr_add_commands(subparsers):
            parser = subparsers.add_parser("hello", help="greet")
            parser.add_argument("--name", default="world")
            parser.set_defaults(func=say_hello)
    """,
}


@pytest.fixture
def broken_site(fake_dist) -> Path:
    """A site directory holding an installed plugin whose import fails."""
    return fake_dist("ddr-fake-cli-broken", {"clibroken": "fake_cli_broken_plugin"}, BROKEN, version="0.5")


def test_list_methods_json(ddr_cli) -> None:
    proc = ddr_cli("list", "methods", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["random"]["provider"] == "random"
    assert by_name["random"]["target"] == "ddr_methods.random.method:RandomSelection"
    assert by_name["random"]["conflict"] is False
    assert [row["name"] for row in rows] == sorted(by_name)  # natural order of plain names
    filtered = json.loads(ddr_cli("list", "methods", "rand*", "--json").stdout)
    assert [row["name"] for row in filtered] == ["random"]


def test_plugins_json_shows_builtins_and_methods_from_ddr_bench(ddr_cli) -> None:
    proc = ddr_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["builtins"]["builtin"] is True and rows["builtins"]["distribution"] == "ddr-bench"
    assert rows["builtins"]["version"] == __version__
    assert {"ddr_datasets", "ddr_protocols"} <= set(rows["builtins"]["hooks"])
    assert rows["random"] == {"name": "random", "distribution": "ddr-bench", "version": __version__,
                              "module": "ddr_methods.random", "status": "active", "hooks": ["ddr_methods"],
                              "error": None, "builtin": False}
    assert list(rows)[0] == "builtins"  # built-ins first


def test_listing_commands_never_import_torch() -> None:
    code = ("import sys; from ddr.cli.main import main; "
            "codes = [main(['list', 'methods']), main(['list', 'datasets', '--json']), main(['plugins']), "
            "main(['doctor']), main(['list', 'metrics']), main(['describe', 'metric', 'robust_pgd'])]; "
            "assert 'torch' not in sys.modules, 'torch was imported'; print('codes', codes)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "codes [0, 0, 0, 0, 0, 0]" in proc.stdout


def test_version(ddr_cli) -> None:
    proc = ddr_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"ddr {__version__}"


def test_ddr_error_is_one_line_without_traceback_unless_debug(ddr_cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "nonexistent.yaml")
    proc = ddr_cli("validate", missing)
    assert proc.returncode == 2
    assert proc.stderr == f"ddr: error: config file not found: {missing}\n"
    assert proc.stdout == ""
    debug = ddr_cli("--debug", "validate", missing)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ddr.errors.ConfigError: config file not found" in debug.stderr


def test_validate_reports_a_typo_with_did_you_mean(ddr_cli, tmp_path: Path) -> None:
    protocol = load_yaml_with_includes(str(PROTOCOLS / "hard.yaml"))
    protocol["trian"] = protocol.pop("train")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(protocol))
    proc = ddr_cli("validate", str(path))
    assert proc.returncode == 2
    assert f"ddr: error: {path}: unknown key 'trian'; did you mean 'train'?" in proc.stderr
    assert "Traceback" not in proc.stderr

    nested = load_yaml_with_includes(str(PROTOCOLS / "hard.yaml"))
    nested["train"]["epoch"] = nested["train"].pop("epochs")
    path.write_text(yaml.safe_dump(nested))
    proc = ddr_cli("validate", str(path))
    assert proc.returncode == 2 and "unknown key 'train.epoch'; did you mean 'train.epochs'?" in proc.stderr


def test_validate_accepts_a_copy_of_the_shipped_hard_protocol(ddr_cli, tmp_path: Path) -> None:
    for name in ("hard.yaml", "_base.yaml"):  # hard.yaml includes _base.yaml, resolved beside it
        (tmp_path / name).write_text((PROTOCOLS / name).read_text())
    proc = ddr_cli("validate", str(tmp_path / "hard.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{tmp_path / 'hard.yaml'}: valid protocol 'hard' version 1\n"


def test_doctor_passes_on_a_clean_install(ddr_cli) -> None:
    proc = ddr_cli("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout and "no problems found" in proc.stdout


def test_doctor_names_a_broken_plugin(ddr_cli, broken_site: Path) -> None:
    proc = ddr_cli("doctor", pythonpath=broken_site)
    assert proc.returncode == 1
    assert ("PROBLEM failed plugin: clibroken (ddr-fake-cli-broken 0.5): "
            "ImportError: fake_cli_broken_plugin needs libfoo") in proc.stdout
    assert "1 failed" in proc.stdout


def test_broken_plugin_does_not_brick_listing(ddr_cli, broken_site: Path) -> None:
    proc = ddr_cli("list", "methods", pythonpath=broken_site)
    assert proc.returncode == 0
    assert "random" in proc.stdout
    assert "warning: clibroken (ddr-fake-cli-broken 0.5): ImportError" in proc.stderr
    assert "-p no:clibroken" in proc.stderr
    as_json = ddr_cli("list", "methods", "--json", pythonpath=broken_site)
    assert as_json.returncode == 0 and "random" in {r["name"] for r in json.loads(as_json.stdout)}
    assert "warning: clibroken" in as_json.stderr


def test_run_refuses_to_start_while_a_plugin_is_broken(ddr_cli, broken_site: Path) -> None:
    proc = ddr_cli("run", "--method", "random", "--num-eval", "1", "--epochs", "1", pythonpath=broken_site)
    assert proc.returncode == 2
    assert "ddr: error: plugin 'clibroken' (ddr-fake-cli-broken 0.5) failed to load" in proc.stderr
    assert "-p no:clibroken" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_p_no_blocks_the_broken_plugin_for_run(ddr_cli, broken_site: Path) -> None:
    # with the plugin blocked the run gets past the health check and fails on the next thing
    # (an unknown method), before any training
    for option in (["-pno:clibroken"], ["-p", "no:clibroken"]):
        proc = ddr_cli(*option, "run", "--method", "no-such-method", pythonpath=broken_site)
        assert proc.returncode == 2
        assert "ddr: error: unknown method 'no-such-method'" in proc.stderr
        assert "clibroken" not in proc.stderr


def test_a_plugin_adds_a_command(ddr_cli, fake_dist) -> None:
    site = fake_dist("ddr-fake-hello", {"hello": "fake_hello_plugin"}, HELLO)
    proc = ddr_cli("hello", "--name", "ddr", pythonpath=site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello ddr from a plugin command\n"
    blocked = ddr_cli("-p", "no:hello", "hello", pythonpath=site)
    assert blocked.returncode == 2 and "invalid choice: 'hello'" in blocked.stderr


def test_each_main_call_configures_the_plugin_system_from_its_own_p(capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.main import main

    assert main(["-p", "no:random", "list", "methods", "--json"]) == 0
    assert "random" not in {row["name"] for row in json.loads(capsys.readouterr().out)}
    # run and eval use the same configuration: the blocked method is unknown to them
    assert main(["-p", "no:random", "run", "--method", "random", "--no-progress"]) == 2
    assert "unknown method 'random'" in capsys.readouterr().err
    assert main(["list", "methods", "--json"]) == 0
    assert "random" in {row["name"] for row in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp, "cannot read config file {path}: [Errno 21] Is a directory"),
        (lambda tmp: _write_bytes(tmp / "latin1.yaml", b"name: caf\xe9\n"), "cannot read config file {path}: 'utf-8'"),
        (lambda tmp: _write_bytes(tmp / "list.yaml", b"- a\n- b\n"), "{path}: the top level must be a mapping"),
        (lambda tmp: _write_bytes(tmp / "bad.yaml", b"name: [unclosed\n"), "{path}: invalid YAML"),
        (lambda tmp: tmp / "a:b.yaml", "config file not found: {path}"),
        (lambda tmp: "ddr.builtins.protocols:nope.yaml", "protocol file '{path}' not found"),
    ],
    ids=["directory", "not-utf8", "not-a-mapping", "invalid-yaml", "colon-in-file-name", "missing-package-data"],
)
def test_unreadable_configs_are_reported_without_traceback(make, message: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.main import main

    path = make(tmp_path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddr: error: " + message.format(path=path)), err


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CLASH = {
    "fake_cli_clash_plugin.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import MethodSpec

        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="random", target="fake_cli_clash_plugin:Random", summary="another random")]
    """,
}


def test_list_and_doctor_flag_a_collision(fake_dist, capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.main import main

    fake_dist("ddr-fake-cli-clash", {"cliclash": "fake_cli_clash_plugin"}, CLASH, version="1.1")
    assert main(["list", "methods", "random"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("random")]
    assert len(lines) == 2 and all(line.endswith("[CONFLICT]") for line in lines)
    assert "<cliclash>" in lines[0] + lines[1] and "<random>" in lines[0] + lines[1]
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert ("PROBLEM conflict: method 'random' is provided by cliclash, random; qualify it as PROVIDER/random "
            "or block one with -p no:PROVIDER") in out
    assert main(["-p", "no:cliclash", "doctor"]) == 0


def test_doctor_materialize_imports_every_target(local_module, capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.cli.main import main

    assert main(["doctor", "--materialize"]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.endswith("no problems found\n")
    local_module("bad_target_plugin_mod", """
        from ddr import hookimpl
        from ddr.plugin.specs import AugmentationSpec

        @hookimpl
        def ddr_augmentations():
            return [AugmentationSpec(name="bad-target", target="bad_target_plugin_mod:Missing")]
    """)
    assert main(["-p", "bad_target_plugin_mod", "doctor"]) == 0  # targets are not imported without --materialize
    capsys.readouterr()
    assert main(["-p", "bad_target_plugin_mod", "doctor", "--materialize"]) == 1
    assert ("PROBLEM bad target: augmentation 'bad-target' (from plugin 'bad_target_plugin_mod'): cannot import "
            "target 'bad_target_plugin_mod:Missing': AttributeError") in capsys.readouterr().out


@pytest.mark.parametrize("args", [("list", "methods"), ("describe", "method", "craig")])
def test_a_reader_that_stops_early_is_not_a_traceback(args: tuple[str, ...]) -> None:
    """`ddr describe ... | head`: stdout's reader is gone before ddr writes (a pipe whose read end is
    already closed, so the write fails every time), and ddr exits 0 without a traceback. The
    ENAMETOOLONG handler once caught BrokenPipeError (an OSError) first and re-raised it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "ddr", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=600)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
