"""The import rules that keep the layers of ddr/ visible in its folders.

* nothing in ddr/ imports a method plugin (``ddr_methods``): methods arrive through entry points;
* ``ddr/plugin/`` and ``ddr/report/`` never import torch, not even inside a function, so
  ``ddr list``, ``ddr plugins`` and the leaderboard stay light;
* the engine knows no terminal and no run orchestration (no tqdm/rich, no ``ddr.runs``/``ddr.cli``);
* module-level imports inside ddr/ form no cycle;
* the built-in methods (``ddr_methods``) import ddr only through the plugin author's door:
  ``ddr`` and ``ddr.method`` (with its submodules), type-checking imports included;
* the result-bundle layer (``ddr/bundle/``) sits above the runs and below the CLI: it never imports
  ``ddr.cli``, and its format modules (container, manifest, machine, compare) never import torch,
  so ``ddr.bundle.read_manifest`` stays light for tools that list bundles;
* the contract layer stays low: ``ddr/plugin/hookspecs.py``, ``ddr/records/`` and ``ddr/store/``
  import nothing of ddr but errors, the plugin layer, the records, the store and the method
  contract (context, distilled set), so they never reach runs, execution or the engine.

Every rule is checked on the source (ast), and each has a test showing the checker catches a
violation, so a rule cannot pass by checking nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PACKAGES = {"ddr_methods"}
TORCH = {"torch", "torchvision", "timm"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ddr_files() -> list[Path]:
    return sorted((ROOT / "ddr").rglob("*.py"))


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(source: str, *, module_level_only: bool = False, module: str = "",
            type_checking: bool = False) -> list[str]:
    """Modules imported by ``source`` (``from a.b import c`` gives ``a.b`` and ``a.b.c``);
    imports under ``if TYPE_CHECKING`` only with ``type_checking``."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if not type_checking and _in_type_checking(node, parents):
            continue
        if module_level_only:
            scope = parents.get(node)
            while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
                scope = parents.get(scope)
            if not isinstance(scope, ast.Module):
                continue
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif node.module:
            out.append(node.module)
            out.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by depth-first search (one per back edge)."""
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def module_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ddr_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports(path.read_text(), module_level_only=True):
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


# -- the rules ---------------------------------------------------------------------------------

def test_nothing_in_ddr_imports_a_method_plugin() -> None:
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in ddr_files()
                 for m in imports(p.read_text()) if m.split(".")[0] in PLUGIN_PACKAGES]
    assert not offenders, offenders


def test_plugin_and_report_layers_never_import_torch() -> None:
    files = [*sorted((ROOT / "ddr" / "plugin").rglob("*.py")), *sorted((ROOT / "ddr" / "report").rglob("*.py"))]
    assert len(files) >= 5
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in files
                 for m in imports(p.read_text()) if m.split(".")[0] in TORCH]
    assert not offenders, offenders


BUNDLE_FORMAT_MODULES = ("__init__.py", "container.py", "manifest.py", "machine.py", "compare.py")


def test_the_bundle_layer_knows_no_cli_and_its_format_never_imports_torch() -> None:
    files = sorted((ROOT / "ddr" / "bundle").rglob("*.py"))
    assert len(files) >= 8
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in files for m in imports(p.read_text(), type_checking=True)
                 if m == "ddr.cli" or m.startswith("ddr.cli.")]
    offenders += [f"{p.relative_to(ROOT)} imports {m}" for p in files if p.name in BUNDLE_FORMAT_MODULES
                  for m in imports(p.read_text()) if m.split(".")[0] in TORCH]
    assert not offenders, offenders


def test_the_engine_knows_no_terminal_and_no_runs() -> None:
    files = sorted((ROOT / "ddr" / "engine").rglob("*.py"))
    banned = ("tqdm", "rich", "ddr.runs", "ddr.cli", "ddr.execute")
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in files for m in imports(p.read_text())
                 if any(m == b or m.startswith(b + ".") for b in banned)]
    assert not offenders, offenders


def test_module_level_imports_form_no_cycle() -> None:
    graph = module_graph()
    assert len(graph) > 50
    assert import_cycles(graph) == []


DOOR = ("ddr", "ddr.method")
"""What a plugin may import of ddr: these modules and the submodules of ``ddr.method``."""


def through_the_door(module: str) -> bool:
    return module in DOOR or module.startswith("ddr.method.") or module.split(".")[0] != "ddr"


def door_violations(source: str) -> list[str]:
    """The ddr modules ``source`` imports outside the door (``from ddr import X`` names ``ddr.X``,
    which is a name of the door, not a module)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if not through_the_door(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not through_the_door(node.module):
                out.append(node.module)
    return out


def method_files() -> list[Path]:
    return sorted((ROOT / "ddr_methods").rglob("*.py"))


def test_built_in_methods_import_ddr_only_through_the_door() -> None:
    files = method_files()
    assert len(files) >= 20
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in files for m in door_violations(p.read_text())]
    assert not offenders, offenders


def test_contributing_teaches_only_the_door() -> None:
    """Every Python block of CONTRIBUTING.md (what plugin authors copy) imports ddr through the door
    (and ``ddr.testing``, the contract checks a plugin's own test suite runs)."""
    import re

    text = (ROOT / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    offenders = [m for block in blocks for m in door_violations(block) if m != "ddr.testing"]
    assert not offenders, offenders


CONTRACT_ALLOWED = ("ddr.errors", "ddr.plugin", "ddr.records", "ddr.store", "ddr.method.distilled", "ddr.method.context")


def test_hookspecs_records_and_store_import_nothing_above_the_contract_layer() -> None:
    files = [ROOT / "ddr" / "plugin" / "hookspecs.py", *sorted((ROOT / "ddr" / "records").rglob("*.py")),
             *sorted((ROOT / "ddr" / "store").rglob("*.py"))]
    assert len(files) >= 10
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in files
                 for m in imports(p.read_text(), type_checking=True)
                 if m.split(".")[0] == "ddr" and m != "ddr"
                 and not any(m == a or m.startswith(a + ".") for a in CONTRACT_ALLOWED)]
    assert not offenders, offenders


# -- the checker catches violations -------------------------------------------------------------

def test_the_checker_sees_lazy_and_from_imports_but_not_type_checking_ones() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n    import torch\n"
        "def f():\n    from ddr_methods.dm import method\n    import torchvision.models\n"
    )
    found = imports(source)
    assert "ddr_methods.dm" in found and "ddr_methods.dm.method" in found and "torchvision.models" in found
    assert "torch" not in found
    assert imports(source, module_level_only=True) == ["typing", "typing.TYPE_CHECKING", "os"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_door_checker_catches_an_internal_import() -> None:
    source = ("from ddr import MethodSpec\nfrom ddr.method.helpers import RealSampler\nimport torch\n"
              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ddr.engine.data import Split\n"
              "def f():\n    from ddr.store.cache import entry_dir\n    import ddr.runs.evaluate\n")
    assert door_violations(source) == ["ddr.engine.data", "ddr.store.cache", "ddr.runs.evaluate"]
