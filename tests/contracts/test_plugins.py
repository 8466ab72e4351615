"""Plugin discovery through real entry points (fake ``*.dist-info`` on ``sys.path``), failure
isolation, blocking, autoload control, and the non-registration hooks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ddr import hookimpl
from ddr.errors import AmbiguousComponentError, PluginLoadError, UnknownComponentError
from ddr.plugin.manager import PluginSystem
from ddr.plugin.specs import SPEC_TYPES

GOOD = {
    "fake_good_plugin/__init__.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import MethodSpec

        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="fake-mean", target="fake_good_plugin.impl:FakeMean",
                               summary="a test method", defaults={"steps": 3}, presets={"long": {"steps": 30}})]
    """,
    "fake_good_plugin/impl.py": """
        class FakeMean:
            def distill(self, ctx):
                raise NotImplementedError
    """,
}

BROKEN_IMPORT = {
    "fake_broken_plugin.py": """
        raise ImportError("fake_broken_plugin needs libfoo >= 2 (not installed)")
    """,
}

MISSPELLED_HOOK = {
    "fake_typo_plugin.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import MethodSpec

        @hookimpl
        def ddr_method():
            return [MethodSpec(name="typo-method", target="x.y:Z")]
    """,
}

EXTRA_ARGUMENT = {
    "fake_args_plugin.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import MethodSpec

        @hookimpl
        def ddr_methods(config):
            return [MethodSpec(name="args-method", target="x.y:Z")]
    """,
}

CLASHING = {
    "fake_clash_plugin.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import DatasetSpec, MethodSpec

        @hookimpl
        def ddr_datasets():
            return [DatasetSpec(name="digits", target="fake_clash_plugin:load", num_classes=10)]

        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="random", target="fake_clash_plugin:Random")]
    """,
}

WRONG_RECORD = {
    "fake_wrong_record_plugin.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import DatasetSpec

        @hookimpl
        def ddr_methods():
            return [DatasetSpec(name="not-a-method", target="x.y:Z")]
    """,
}


EVERY_KIND = {
    "fake_every_kind_plugin.py": """
        from ddr import hookimpl
        from ddr.plugin.specs import (ArchitectureSpec, AugmentationSpec, DatasetSpec, ExecutorSpec,
                                      LabelStrategySpec, LossSpec, MethodSpec, MetricSpec, ProtocolSpec)

        @hookimpl
        def ddr_datasets():
            return [DatasetSpec(name="fk-data", target="fk.mod:load", num_classes=4, image_size=(8, 8), channels=1)]

        @hookimpl
        def ddr_architectures():
            return [ArchitectureSpec(name="fk-net", target="fk.mod:build", family="convnet")]

        @hookimpl
        def ddr_label_strategies():
            return [LabelStrategySpec(name="fk-labels", target="fk.mod:Labels", soft=True, default_loss="fk-loss")]

        @hookimpl
        def ddr_losses():
            return [LossSpec(name="fk-loss", target="fk.mod:Loss", soft=True)]

        @hookimpl
        def ddr_executors():
            return [ExecutorSpec(name="fk-exec", target="fk.mod:Executor", devices=("cuda",))]

        @hookimpl
        def ddr_augmentations():
            return [AugmentationSpec(name="fk-mix", target="fk.mod:Mix", mixes=True)]

        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="fk-method", target="fk.mod:Method")]

        @hookimpl
        def ddr_protocols():
            return [ProtocolSpec(name="fk-protocol", path="fk:protocol.yaml")]

        @hookimpl
        def ddr_metrics():
            return [MetricSpec(name="fk-metric", target="fk.mod:measure", needs="student", outputs=("v",),
                               higher_is_better=False)]
    """,
}


def install_good(fake_dist) -> Path:
    return fake_dist("ddr-fake-good", {"fakegood": "fake_good_plugin"}, GOOD, version="1.2.3")


def install_broken(fake_dist) -> Path:
    return fake_dist("ddr-fake-broken", {"fakebroken": "fake_broken_plugin"}, BROKEN_IMPORT, version="0.9")


def test_third_party_plugin_is_discovered_with_provenance(fake_dist) -> None:
    install_good(fake_dist)
    system = PluginSystem()
    info = system.plugins["fakegood"]
    assert (info.distribution, info.version, info.module) == ("ddr-fake-good", "1.2.3", "fake_good_plugin")
    assert info.status == "active" and info.error is None and not info.builtin
    assert info.hooks == ["ddr_methods"]
    assert system.provenance()["fakegood"] == ("ddr-fake-good", "1.2.3")
    methods = system.methods()
    resolved = methods.resolve("fake-mean.long")
    assert resolved.spec.provider == "fakegood" and resolved.params == {"steps": 30}
    assert methods.resolve("fakegood/fake-mean").spec is resolved.spec
    assert methods.resolve("ddr-fake-good/fake-mean").spec is resolved.spec
    assert methods.materialize(resolved.spec).__name__ == "FakeMean"
    # built-in methods arrive through the same entry-point group, from ddr-bench itself
    random_spec = methods.get("random")
    assert random_spec.provider == "random"
    assert system.plugins["random"].distribution == "ddr-bench"
    assert system.plugins["builtins"].builtin and system.plugins["builtins"].status == "active"
    row = next(r for r in system.describe() if r["name"] == "fakegood")
    assert row == {"name": "fakegood", "distribution": "ddr-fake-good", "version": "1.2.3",
                   "module": "fake_good_plugin", "status": "active", "hooks": ["ddr_methods"],
                   "error": None, "builtin": False}
    system.require_healthy()  # no failure: does not raise


def test_every_registration_hook_fills_its_registry(fake_dist) -> None:
    fake_dist("ddr-fake-every", {"fakeevery": "fake_every_kind_plugin"}, EVERY_KIND, version="0.2")
    system = PluginSystem()
    assert system.plugins["fakeevery"].hooks == ["ddr_architectures", "ddr_augmentations", "ddr_datasets",
                                                  "ddr_executors", "ddr_label_strategies", "ddr_losses",
                                                  "ddr_methods", "ddr_metrics", "ddr_protocols"]
    expected = {"datasets": "fk-data", "architectures": "fk-net", "label-strategies": "fk-labels",
                "losses": "fk-loss", "augmentations": "fk-mix", "methods": "fk-method", "protocols": "fk-protocol",
                "executors": "fk-exec", "metrics": "fk-metric"}
    assert set(expected) == set(SPEC_TYPES)
    for kind, name in expected.items():
        spec = system.registry(kind).get(f"ddr-fake-every/{name}")
        assert (spec.name, spec.provider) == (name, "fakeevery")
    assert system.datasets().get("fk-data").num_classes == 4
    assert system.augmentations().get("fk-mix").mixes is True
    assert system.losses().get("fk-loss").soft is True
    assert system.label_strategies().get("fk-labels").default_loss == "fk-loss"
    assert system.executors().get("fk-exec").devices == ("cuda",)
    assert system.protocols().get("fk-protocol").path == "fk:protocol.yaml"
    assert system.metrics().get("fk-metric").columns() == ("fk-metric_syn", "fk-metric_rdm", "fk-metric_gap")


def test_broken_plugin_fails_alone(fake_dist) -> None:
    install_good(fake_dist)
    install_broken(fake_dist)
    system = PluginSystem()
    broken = system.plugins["fakebroken"]
    assert broken.status == "failed"
    assert broken.error == "ImportError: fake_broken_plugin needs libfoo >= 2 (not installed)"
    assert [p.name for p in system.failures()] == ["fakebroken"]
    assert system.plugins["fakegood"].status == "active"
    assert system.methods().get("fake-mean").provider == "fakegood"
    assert system.methods().get("random").provider == "random"
    assert system.protocols().get("hard").provider == "builtins"
    with pytest.raises(UnknownComponentError, match=r"failed to load and may provide it: fakebroken "
                                                    r"\(ddr-fake-broken 0.9\): ImportError"):
        system.methods().resolve("mtt-plus")
    with pytest.raises(PluginLoadError) as info:
        system.require_healthy()
    assert info.value.distribution == "ddr-fake-broken"
    assert "plugin 'fakebroken' (ddr-fake-broken 0.9) failed to load: ImportError" in str(info.value)
    assert "-p no:fakebroken" in str(info.value)


def test_strict_mode_makes_a_broken_plugin_fatal(fake_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    install_broken(fake_dist)
    with pytest.raises(PluginLoadError, match=r"plugin 'fakebroken' \(ddr-fake-broken 0.9\) failed to load"):
        PluginSystem(strict=True)
    monkeypatch.setenv("DDR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"ddr-fake-broken"):
        PluginSystem()
    assert PluginSystem(strict=False).plugins["fakebroken"].status == "failed"


def test_misspelled_hook_fails_that_plugin(fake_dist) -> None:
    fake_dist("ddr-fake-typo", {"faketypo": "fake_typo_plugin"}, MISSPELLED_HOOK)
    system = PluginSystem()
    info = system.plugins["faketypo"]
    assert info.status == "failed"
    assert "unknown hook 'ddr_method' (misspelled?)" in info.error
    assert "ddr_methods" in info.error  # the known hooks are listed
    assert "typo-method" not in system.methods()
    assert system.pm.get_plugin("faketypo") is None  # unregistered again


def test_hookimpl_with_an_argument_the_spec_lacks_fails_that_plugin(fake_dist) -> None:
    fake_dist("ddr-fake-args", {"fakeargs": "fake_args_plugin"}, EXTRA_ARGUMENT)
    system = PluginSystem()
    info = system.plugins["fakeargs"]
    assert info.status == "failed"
    assert info.error.startswith("PluginValidationError:")
    assert "ddr_methods(config)" in info.error
    assert "are declared in the hookimpl but can not be found in the hookspec" in info.error
    assert "args-method" not in system.methods()
    assert system.methods().get("random").provider == "random"


def test_hook_returning_the_wrong_record_type_fails_that_plugin(fake_dist) -> None:
    fake_dist("ddr-fake-wrong", {"fakewrong": "fake_wrong_record_plugin"}, WRONG_RECORD)
    system = PluginSystem()
    assert "not-a-method" not in system.methods()
    info = system.plugins["fakewrong"]
    assert info.status == "failed"
    assert "hook ddr_methods: InvalidSpecError: ddr_methods returned DatasetSpec; expected MethodSpec" in info.error
    with pytest.raises(PluginLoadError, match="fakewrong"):
        PluginSystem().require_healthy()  # require_healthy also sees failures of not yet collected hooks


def test_a_name_returned_twice_by_one_plugin_fails_that_plugin(local_module) -> None:
    local_module("twice_plugin_mod", """
        from ddr import hookimpl
        from ddr.plugin.specs import MethodSpec

        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="twice", target="x.y:A"), MethodSpec(name="once", target="x.y:B"),
                    MethodSpec(name="other", target="x.y:C", aliases=("twice",))]
    """)
    system = PluginSystem(load=["twice_plugin_mod"])
    assert "once" not in system.methods() and system.methods().conflicts() == {}
    info = system.plugins["twice_plugin_mod"]  # failed while its hook was collected
    assert info.status == "failed"
    assert "method name(s) twice returned twice; names and aliases must be unique within a plugin" in info.error


def test_builtin_and_third_party_collision_is_ambiguous(fake_dist) -> None:
    fake_dist("ddr-fake-clash", {"fakeclash": "fake_clash_plugin"}, CLASHING, version="3.1")
    system = PluginSystem()
    with pytest.raises(AmbiguousComponentError) as info:
        system.datasets().resolve("digits")
    message = str(info.value)
    assert "dataset 'digits' is provided by more than one plugin" in message
    assert "- builtins (ddr-bench " in message and "- fakeclash (ddr-fake-clash 3.1) -> fake_clash_plugin:load" in message
    assert "'builtins/digits'" in message and "'fakeclash/digits'" in message
    assert "-p no:fakeclash" in message
    assert system.datasets().resolve("builtins/digits").spec.provider == "builtins"
    assert system.datasets().resolve("ddr-fake-clash/digits").spec.provider == "fakeclash"
    with pytest.raises(AmbiguousComponentError, match=r"(?s)- random \(ddr-bench .*- fakeclash \(ddr-fake-clash 3.1\)"):
        system.methods().resolve("random")
    assert set(system.all_conflicts()) == {"datasets", "methods"}


def test_blocking_a_plugin_with_p_no_or_the_environment(fake_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dist("ddr-fake-clash", {"fakeclash": "fake_clash_plugin"}, CLASHING, version="3.1")
    for system in (PluginSystem(block=["fakeclash"]), _with_env(monkeypatch, "DDR_DISABLE_PLUGINS", "other, fakeclash")):
        info = system.plugins["fakeclash"]
        assert info.status == "blocked" and info.hooks == []
        assert system.datasets().resolve("digits").spec.provider == "builtins"
        assert system.methods().resolve("random").spec.provider == "random"
        assert system.all_conflicts() == {}
        assert system.failures() == []


def _with_env(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> PluginSystem:
    monkeypatch.setenv(name, value)
    return PluginSystem()


def test_autoload_off_loads_only_requested_plugins(fake_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(fake_dist)
    install_broken(fake_dist)
    by_argument = PluginSystem(autoload=False, load=["fakegood"])
    monkeypatch.setenv("DDR_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("DDR_PLUGINS", "fakegood")
    by_env = PluginSystem()
    for system in (by_argument, by_env):
        assert system.plugins["fakegood"].status == "active"
        assert system.plugins["fakebroken"].status == "blocked"  # never imported, so not failed
        assert system.plugins["random"].status == "blocked"
        assert "autoload disabled" in system.plugins["random"].error
        assert [s.name for s in system.methods().list()] == ["fake-mean"]
        assert system.protocols().get("hard").provider == "builtins"  # essentials are always there
        system.require_healthy()


def test_p_accepts_an_importable_module_for_local_development(local_module) -> None:
    local_module("dev_plugin_mod", """
        from ddr import hookimpl
        from ddr.plugin.specs import AugmentationSpec

        @hookimpl
        def ddr_augmentations():
            return [AugmentationSpec(name="dev-jitter", target="dev_plugin_mod:Jitter", mixes=False)]
    """)
    system = PluginSystem(load=["dev_plugin_mod", "no_such_plugin_mod"])
    info = system.plugins["dev_plugin_mod"]
    assert (info.status, info.distribution, info.hooks) == ("active", None, ["ddr_augmentations"])
    assert system.augmentations().get("dev-jitter").provider == "dev_plugin_mod"
    missing = system.plugins["no_such_plugin_mod"]
    assert missing.status == "failed"
    assert "-p no_such_plugin_mod: no plugin entry point or importable module of that name" in missing.error


def test_sessions_have_their_own_plugin_systems() -> None:
    """No process-wide plugin system: a Session (a worker, a test) builds its own view."""
    from ddr.resources.session import Session

    blocked, plain = Session(system=PluginSystem(block=["random"])), Session()
    assert blocked.system is not plain.system
    assert blocked.system.plugins["random"].status == "blocked"
    assert plain.system.plugins["random"].status == "active"
    assert "random" not in blocked.system.methods() and "random" in plain.system.methods()


# -- non-registration hooks ------------------------------------------------------------------------


def test_ddr_load_distilled_is_firstresult() -> None:
    system = PluginSystem(builtins=False, autoload=False)
    calls: list[str] = []

    class Loader:
        def __init__(self, name: str, result: Any) -> None:
            self.name, self.result = name, result

        @hookimpl
        def ddr_load_distilled(self, path: Path) -> Any:
            calls.append(self.name)
            return self.result

    def load() -> Any:
        return system.pm.hook.ddr_load_distilled(path=Path("/tmp/x.npz"), num_classes=None, ipc=None, pixel_space=None)

    # pluggy calls the most recently registered implementation first
    system.pm.register(Loader("registered-first", "second-answer"), name="a")
    system.pm.register(Loader("registered-second", "first-answer"), name="b")
    system.pm.register(Loader("declines", None), name="c")
    assert load() == "first-answer"
    assert calls == ["declines", "registered-second"]
    system.pm.unregister(name="b")
    assert load() == "second-answer"
    system.pm.unregister(name="a")
    assert load() is None


def test_lifecycle_hooks_receive_the_documented_arguments() -> None:
    system = PluginSystem(builtins=False, autoload=False)
    seen: list[tuple[str, dict[str, Any]]] = []

    class Observer:
        @hookimpl
        def ddr_run_start(self, run):
            seen.append(("start", {"run": run}))

        @hookimpl
        def ddr_run_finish(self, run, result):
            seen.append(("finish", {"run": run, "result": result}))

        @hookimpl
        def ddr_run_error(self, run, error):
            seen.append(("error", {"run": run, "error": error}))

        @hookimpl
        def ddr_session_finish(self, results, exitstatus):
            seen.append(("session", {"results": results, "exitstatus": exitstatus}))

    system.pm.register(Observer(), name="observer")
    run = {"method": "random", "dataset": "digits", "ipc": 1, "seed": 0}
    result = {"acc_syn_hard": {"mean": 0.5, "std": 0.0}}
    error = RuntimeError("boom")
    hook = system.pm.hook
    assert hook.ddr_run_start(run=run) == []
    assert hook.ddr_run_finish(run=run, result=result) == []
    assert hook.ddr_run_error(run=run, error=error) == []
    assert hook.ddr_session_finish(results=[result], exitstatus=0) == []
    assert seen == [("start", {"run": run}), ("finish", {"run": run, "result": result}),
                    ("error", {"run": run, "error": error}),
                    ("session", {"results": [result], "exitstatus": 0})]
    assert seen[2][1]["error"] is error


ENDERS = {
    "fakesysexit": ("ddr-fake-sysexit", "fake_sysexit_plugin", "import sys\nsys.exit(3)\n", "called sys.exit(3)"),
    "fakeosexit": ("ddr-fake-osexit", "fake_osexit_plugin", "import os\nos._exit(0)\n", "called os._exit(0)"),
    "fakectrlc": ("ddr-fake-ctrlc", "fake_ctrlc_plugin", "raise KeyboardInterrupt\n",
                  "raised KeyboardInterrupt (nobody pressed Ctrl-C)"),
}


def test_a_plugin_that_ends_the_process_at_import_is_a_failed_plugin_and_ddr_goes_on(fake_dist) -> None:
    """The issue's case: a plugin calling ``sys.exit`` at import made every command, ``ddr doctor``
    included, exit with no message. Through the real CLI (a subprocess, entry points installed):
    ``ddr list`` works and names each plugin's fault; ``ddr doctor`` reports each (exit 1)."""
    import subprocess
    import sys

    for name, (dist, module, source, _) in ENDERS.items():
        site = fake_dist(dist, {name: module}, {f"{module}/__init__.py": source})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run([sys.executable, "-m", "ddr", "plugins"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for name, (*_, said) in ENDERS.items():
        assert name in listed.stdout and said in listed.stdout + listed.stderr, (name, listed.stdout)
    methods = subprocess.run([sys.executable, "-m", "ddr", "list", "methods"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert methods.returncode == 0 and "random" in methods.stdout, methods.stderr
    doctor = subprocess.run([sys.executable, "-m", "ddr", "doctor"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    for name, (dist, *_, said) in ENDERS.items():
        assert f"PROBLEM failed plugin: {name} ({dist} 1.0): {said}" in doctor.stdout, doctor.stdout


def test_a_users_ctrl_c_is_not_a_plugin_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from ddr.errors import Interrupted, Terminated
    from ddr.plugin.faults import PluginExit, describe, is_plugin_fault, no_process_exit, on_sigint

    assert not is_plugin_fault(Interrupted()) and not is_plugin_fault(Terminated())
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.default_int_handler)
    assert not is_plugin_fault(KeyboardInterrupt())  # ddr as a library: the user's, to be safe
    monkeypatch.setattr(signal, "getsignal", lambda signum: on_sigint)
    assert is_plugin_fault(KeyboardInterrupt()) and is_plugin_fault(SystemExit(0))
    # started with SIGINT ignored (nohup, `cmd &` in a script): the CLI leaves it so, and no Ctrl-C can
    # raise, so a bare KeyboardInterrupt is code's (this case made the CLI test exit 130 under nohup)
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_IGN)
    assert is_plugin_fault(KeyboardInterrupt()) and not is_plugin_fault(Interrupted())
    assert not is_plugin_fault(GeneratorExit())
    assert describe(SystemExit("bye")) == "called sys.exit('bye')"
    real = os._exit
    with pytest.raises(PluginExit) as info, no_process_exit():
        os._exit(7)
    assert describe(info.value) == "called os._exit(7)" and os._exit is real
