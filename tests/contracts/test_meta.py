"""Repository-level invariants: plugin packages are registered, the plugin API is documented and
tested, and modules that ``ddr list`` imports never import torch at module level."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import tomllib

from ddr.plugin import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = {"torch", "torchvision", "timm"}
CORE_MODULES = ["ddr/__init__.py", "ddr/plugin/__init__.py", "ddr/plugin/specs.py", "ddr/plugin/params.py",
                "ddr/plugin/hookspecs.py", "ddr/plugin/manager.py", "ddr/plugin/registry.py", "ddr/cli/__init__.py",
                "ddr/cli/main.py", "ddr/protocol/config.py", "ddr/protocol/yaml.py", "ddr/method/__init__.py"]


def hook_names() -> list[str]:
    return sorted(name for name in vars(hookspecs) if name.startswith("ddr_") and callable(getattr(hookspecs, name)))


def plugin_packages() -> list[Path]:
    """The built-in method packages and family libraries: ``ddr_methods/<name>``."""
    return sorted(p for p in (ROOT / "ddr_methods").iterdir() if p.is_dir() and (p / "__init__.py").is_file())


def module_of(package: Path) -> str:
    return f"ddr_methods.{package.name}"


def entry_points() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["entry-points"]["ddr"]


def test_hookspecs_are_found() -> None:
    names = hook_names()
    assert {"ddr_methods", "ddr_datasets", "ddr_add_commands", "ddr_load_distilled", "ddr_run_start"} <= set(names)
    unmarked = [n for n in names if not hasattr(getattr(hookspecs, n), "ddr_spec")]
    assert not unmarked, f"ddr_* functions in ddr/hookspecs.py without @hookspec: {unmarked}"


def family_packages() -> list[Path]:
    """``ddr_methods/_*`` packages without an entry point: a method family's shared code."""
    values = set(entry_points().values())
    return [p for p in plugin_packages() if module_of(p) not in values]


def test_every_plugin_package_has_an_entry_point_or_is_a_family_library() -> None:
    """A package without an entry point is a method family's shared code (gradient matching,
    selection): it implements no hook and at least one registered method imports it."""
    packages = plugin_packages()
    assert packages, "no ddr_methods/* packages found"
    registered = [p for p in packages if p not in family_packages()]
    problems = []
    for family in family_packages():
        hooks = [n for n in hook_names() if re.search(rf"def {n}\b", "".join(f.read_text() for f in family.rglob("*.py")))]
        if hooks:
            problems.append(f"{family.name} implements {hooks} but has no entry point in pyproject.toml")
        if not family.name.startswith("_"):
            problems.append(f"{family.name} has no entry point: a family library's name starts with '_' (private)")
        users = [p.name for p in registered
                 if any(re.search(rf"\b(from|import) {re.escape(module_of(family))}\b", f.read_text())
                        for f in p.rglob("*.py"))]
        if not users:
            problems.append(f"{family.name} has no entry point and no registered method imports it")
    assert not problems, problems


def test_every_entry_point_names_an_existing_module() -> None:
    for name, value in entry_points().items():
        module = value.split(":")[0]
        folder = ROOT.joinpath(*module.split("."))
        assert (folder / "__init__.py").is_file(), f"entry point {name} = {value!r}: no package {module!r}"


def test_every_plugin_package_implements_a_hook() -> None:
    """An entry point whose module has no ``@hookimpl`` registers nothing: the plugin looks active
    in ``ddr plugins`` yet provides no component."""
    known = set(hook_names())
    problems = []
    for package in (p for p in plugin_packages() if p not in family_packages()):
        init = package / "__init__.py"
        if not init.is_file():
            problems.append(f"{package.name}: no __init__.py")
            continue
        defined = {node.name for node in ast.parse(init.read_text()).body if isinstance(node, ast.FunctionDef)}
        if not defined & known:
            problems.append(f"{package.name}/__init__.py defines no ddr_* hook")
    assert not problems, problems


@pytest.mark.parametrize("hook", hook_names())
def test_hook_is_documented_in_contributing(hook: str) -> None:
    contributing = ROOT / "CONTRIBUTING.md"
    assert contributing.is_file(), "CONTRIBUTING.md is missing: it documents the plugin API"
    assert re.search(rf"\b{hook}\b", contributing.read_text()), f"{hook} is not mentioned in CONTRIBUTING.md"


@pytest.mark.parametrize("hook", hook_names())
def test_hook_is_exercised_by_a_test(hook: str) -> None:
    sources = [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_meta.py"]
    users = [p for p in sources if re.search(rf"\b{hook}\b", p.read_text())]
    assert users, f"no test under tests/ uses the hook {hook}"


def top_level_heavy_imports(source: str, filename: str = "<source>") -> list[str]:
    """Names of torch/torchvision/timm imported by statements at module level (also inside
    module-level ``if``/``try`` blocks, but not under ``if TYPE_CHECKING``)."""
    found: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend(a.name for a in node.names if a.name.split(".")[0] in HEAVY_MODULES)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in HEAVY_MODULES:
                    found.append(node.module)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(source, filename=filename).body)
    return found


def test_heavy_import_detector() -> None:
    source = ("import os\nimport torch.nn as nn\nfrom torchvision import datasets\n"
              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import timm\n"
              "try:\n    import timm\nexcept ImportError:\n    pass\n"
              "from .torch import x\n"
              "def f():\n    import torch\n")
    assert top_level_heavy_imports(source) == ["torch.nn", "torchvision", "timm"]


def cheap_modules() -> list[Path]:
    paths = [ROOT / p for p in CORE_MODULES]
    paths += sorted((ROOT / "ddr" / "builtins").glob("*/__init__.py"))
    families = family_packages()
    paths += sorted(p / "__init__.py" for p in plugin_packages() if p not in families and (p / "__init__.py").is_file())
    # a family library imported by a registration module must be light too
    paths += sorted(f / "__init__.py" for f in families
                    if any(re.search(rf"\b(from|import) {f.name}\b", (p / "__init__.py").read_text())
                           for p in plugin_packages() if p not in families and (p / "__init__.py").is_file()))
    return paths


@pytest.mark.parametrize("path", cheap_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_level_torch_import(path: Path) -> None:
    assert path.is_file()
    heavy = top_level_heavy_imports(path.read_text(), str(path))
    assert not heavy, f"{path.relative_to(ROOT)} imports {heavy} at module level; import them inside functions"
