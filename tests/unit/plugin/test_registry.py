"""Name resolution, listing, spec validation and lazy targets of :class:`ddr.plugin.registry.Registry`."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from ddr.errors import AmbiguousComponentError, InvalidSpecError, UnknownComponentError
from ddr.plugin.manager import PluginSystem
from ddr.plugin.params import ParamSpec
from ddr.plugin.registry import Registry, import_target, parse_reference
from ddr.plugin.specs import (
    ArchitectureSpec,
    DatasetSpec,
    MethodSpec,
    ProtocolSpec,
)


def method(name: str, provider: str, **fields: object) -> MethodSpec:
    """A method spec as the plugin system stores it (provider filled in)."""
    fields.setdefault("target", f"pkg_{provider.replace('-', '_')}.methods:{name.replace('-', '_').title()}")
    return replace(MethodSpec(name=name, **fields), provider=provider)


def methods_registry(*specs: MethodSpec, failed: tuple[str, ...] = ()) -> Registry[MethodSpec]:
    return Registry(kind="method", plural="methods", specs=list(specs), failed_plugins=failed,
                    provenance={"dm": ("ddr-bench", "0.1.0"), "acme": ("acme-distill", "2.0"),
                                "other": ("other-dd", "0.3")})


DM = method("dm", "dm", aliases=("distribution-matching",),
            defaults={"lr_img": 1.0, "iterations": 20000, "batch_real": 256},
            presets={"paper": {"iterations": 20000, "lr_img": 10.0}, "quick": {"iterations": 200}})


def test_parse_reference_splits_provider_name_preset_argument() -> None:
    assert parse_reference("dm") == (None, "dm", None, None)
    assert parse_reference("acme/dm.paper") == ("acme", "dm", "paper", None)
    assert parse_reference("folder:/data/my.set") == (None, "folder", None, "/data/my.set")
    assert parse_reference("my.dist/timm:resnet50.a1_in1k") == ("my.dist", "timm", None, "resnet50.a1_in1k")


def test_resolve_by_name_and_alias() -> None:
    reg = methods_registry(DM)
    by_name = reg.resolve("dm")
    assert by_name.spec is DM and by_name.preset is None and by_name.argument is None
    assert by_name.params == {"lr_img": 1.0, "iterations": 20000, "batch_real": 256}
    assert reg.resolve("distribution-matching").spec is DM
    assert reg.get("dm") is DM
    assert "dm" in reg and "distribution-matching" in reg and "mtt" not in reg


def test_resolve_qualified_by_provider_and_by_distribution() -> None:
    acme_dm = method("dm", "acme")
    reg = methods_registry(DM, acme_dm)
    assert reg.resolve("dm/dm").spec is DM
    assert reg.resolve("acme/dm").spec is acme_dm
    assert reg.resolve("acme-distill/dm").spec is acme_dm
    assert reg.resolve("ddr-bench/dm").spec is DM
    with pytest.raises(UnknownComponentError, match=r"not provided by 'nobody'.*provided by: acme, dm"):
        reg.resolve("nobody/dm")


def test_preset_params_merge_defaults_then_preset_then_overrides() -> None:
    reg = methods_registry(DM)
    resolved = reg.resolve("dm.paper", {"batch_real": 64, "iterations": 5})
    assert resolved.preset == "paper"
    assert resolved.params == {"lr_img": 10.0, "iterations": 5, "batch_real": 64}
    assert resolved.name == "dm.paper"
    assert reg.resolve("dm.quick").params == {"lr_img": 1.0, "iterations": 200, "batch_real": 256}
    # the spec's own defaults are never mutated by a resolution
    assert dict(DM.defaults) == {"lr_img": 1.0, "iterations": 20000, "batch_real": 256}


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(UnknownComponentError, match=r"no preset 'papr' \(presets: paper, quick\)"):
        methods_registry(DM).resolve("dm.papr")


def test_argument_for_families_that_accept_one() -> None:
    folder = replace(DatasetSpec(name="folder", target="ddr_x.data:load_folder", accepts_argument=True,
                                 summary="class folders on disk", defaults={"extensions": ".png"}),
                     provider="builtins")
    digits = replace(DatasetSpec(name="digits", target="ddr_x.data:load_digits"), provider="builtins")
    reg = Registry(kind="dataset", plural="datasets", specs=[folder, digits])
    resolved = reg.resolve("folder:/data/x:y")
    assert resolved.spec is folder and resolved.argument == "/data/x:y"
    assert resolved.params == {"extensions": ".png"}
    assert resolved.name == "folder:/data/x:y"
    with pytest.raises(UnknownComponentError, match=r"'folder' needs an argument: write 'folder:<value>'"):
        reg.resolve("folder")
    with pytest.raises(UnknownComponentError, match=r"'digits' takes no ':ARGUMENT'"):
        reg.resolve("digits:extra")
    assert "folder" not in reg and "folder:/tmp" in reg


def test_unknown_name_suggests_close_names_and_ddr_list() -> None:
    reg = methods_registry(DM, method("herding", "herding"))
    with pytest.raises(UnknownComponentError) as info:
        reg.resolve("hearding")
    message = str(info.value)
    assert "unknown method 'hearding'" in message
    assert "did you mean 'herding'?" in message
    assert "`ddr list methods`" in message
    assert "failed to load" not in message


def test_unknown_name_mentions_plugins_that_failed_to_load() -> None:
    reg = methods_registry(DM, failed=("mtt (ddr-mtt 1.0): ImportError: no module named 'kornia'",))
    with pytest.raises(UnknownComponentError) as info:
        reg.resolve("mtt")
    message = str(info.value)
    assert "these plugins failed to load and may provide it: mtt (ddr-mtt 1.0)" in message
    assert "ddr doctor" in message


def test_two_providers_of_a_name_are_ambiguous_never_an_override() -> None:
    acme_dm = method("dm", "acme")
    reg = methods_registry(DM, acme_dm)
    with pytest.raises(AmbiguousComponentError) as info:
        reg.resolve("dm")
    message = str(info.value)
    assert "method 'dm' is provided by more than one plugin" in message
    assert "- dm (ddr-bench 0.1.0) -> pkg_dm.methods:Dm" in message
    assert "- acme (acme-distill 2.0) -> pkg_acme.methods:Dm" in message
    assert "'dm/dm'" in message and "'acme/dm'" in message
    assert "-p no:dm" in message and "-p no:acme" in message and "DDR_DISABLE_PLUGINS" in message
    assert "dm" not in reg
    assert set(reg.conflicts()) == {"dm"}
    assert {s.provider for s in reg.conflicts()["dm"]} == {"dm", "acme"}


def test_an_alias_collides_with_another_providers_name() -> None:
    reg = methods_registry(DM, method("distribution-matching", "other"))
    with pytest.raises(AmbiguousComponentError, match="'distribution-matching' is provided by more than one"):
        reg.resolve("distribution-matching")
    assert reg.resolve("dm").spec is DM  # the primary name is still unique
    assert set(reg.conflicts()) == {"distribution-matching"}


def test_list_filters_by_pattern_and_sorts_naturally() -> None:
    specs = [replace(ArchitectureSpec(name=n, target="pkg.arch:build"), provider="builtins")
             for n in ("convnet_d10", "resnet18", "convnet_d2", "convnet_d3", "convnet", "resnet18_bn")]
    reg = Registry(kind="architecture", plural="architectures", specs=specs)
    assert [s.name for s in reg.list()] == ["convnet", "convnet_d2", "convnet_d3", "convnet_d10",
                                            "resnet18", "resnet18_bn"]
    assert [s.name for s in reg.list("convnet_d*")] == ["convnet_d2", "convnet_d3", "convnet_d10"]
    assert [s.name for s in reg.list("resnet")] == ["resnet18", "resnet18_bn"]  # substring match
    assert [s.name for s in reg.list("convnet*", exclude="*_d1*")] == ["convnet", "convnet_d2", "convnet_d3"]
    assert reg.list("vit") == []
    assert reg.names() == ["convnet", "convnet_d2", "convnet_d3", "convnet_d10", "resnet18", "resnet18_bn"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DatasetSpec(name="Bad Name", target="pkg.mod:load"), r"invalid dataset name 'Bad Name'"),
        (lambda: MethodSpec(name="-dash", target="pkg.mod:M"), r"invalid method name '-dash'"),
        (lambda: MethodSpec(name="ok", target="nocolon"), r"target 'nocolon' must look like 'package.module:attribute'"),
        (lambda: MethodSpec(name="ok", target=42), r"target must be a 'module:attr' string or a callable"),
        (lambda: MethodSpec(name="ok", target="p.m:M", aliases="single"), r"aliases must be a tuple"),
        (lambda: MethodSpec(name="ok", target="p.m:M", aliases=("Bad",)), r"invalid method alias 'Bad'"),
        (lambda: MethodSpec(name="ok", target="p.m:M", presets={"paper": 3}), r"preset 'paper' must be a mapping"),
        (lambda: MethodSpec(name="m", target="p.m:M", defaults={"iterations": 5}, presets={"fast": {"iteratons": 1}}),
         r"preset 'fast', has no parameter 'iteratons'; did you mean 'iterations'"),
        (lambda: MethodSpec(name="m", target="p.m:M", params=(ParamSpec("lr", 0.1, minimum=0.0),),
                            presets={"bad": {"lr": "fast"}}), r"parameter lr='fast' is invalid; expected a finite number"),
        (lambda: ProtocolSpec(name="mine"), r"path to its YAML file is required"),
    ],
)
def test_spec_validation_errors(build, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        build()


def test_specs_are_frozen_and_their_mappings_read_only() -> None:
    with pytest.raises(AttributeError):
        DM.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        DM.defaults["lr_img"] = 2.0  # type: ignore[index]
    assert DM.describe()["presets"] == ["paper", "quick"]


def test_a_plugin_may_not_set_provider(local_module) -> None:
    local_module("sets_provider_plugin", """
        from ddr import hookimpl
        from ddr.plugin.specs import MethodSpec

        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="sneaky", target="x.y:Z", provider="builtins")]
    """)
    system = PluginSystem(builtins=False, autoload=False, load=["sets_provider_plugin"])
    assert "sneaky" not in system.methods()
    info = system.plugins["sets_provider_plugin"]
    assert info.status == "failed"
    assert "method 'sneaky': leave 'provider' empty, ddr fills it" in info.error


def test_materialize_imports_lazily_and_caches(local_module) -> None:
    path = local_module("lazy_target_mod", "class Thing:\n    pass\n")
    spec = method("thing", "acme", target="lazy_target_mod:Thing")
    reg = methods_registry(spec)
    assert reg.resolve("thing").spec is spec
    assert "lazy_target_mod" not in sys.modules  # resolving never imports the target
    first = reg.materialize(spec)
    assert first.__name__ == "Thing" and "lazy_target_mod" in sys.modules
    # the second call is served from the registry's cache, not by importing again
    del sys.modules["lazy_target_mod"]
    path.write_text("raise RuntimeError('imported twice')\n")
    assert reg.materialize(spec) is first
    assert "lazy_target_mod" not in sys.modules


def test_import_target_errors_name_the_component_and_plugin(local_module) -> None:
    local_module("target_errors_mod", "NOT_CALLABLE = 3\n")
    with pytest.raises(InvalidSpecError, match=r"method 'ghost' \(from plugin 'acme'\): cannot import target "
                                               r"'no_such_module_xyz:Ghost': ModuleNotFoundError"):
        import_target(method("ghost", "acme", target="no_such_module_xyz:Ghost"))
    with pytest.raises(InvalidSpecError, match=r"cannot import target 'target_errors_mod:Missing': AttributeError"):
        import_target(method("missing", "acme", target="target_errors_mod:Missing"))
    with pytest.raises(InvalidSpecError, match=r"target 'target_errors_mod:NOT_CALLABLE' is not callable"):
        import_target(method("number", "acme", target="target_errors_mod:NOT_CALLABLE"))
    assert import_target(method("direct", "acme", target=len)) is len
