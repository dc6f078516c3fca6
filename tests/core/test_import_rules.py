"""The public plugin API is the only way in: built-in plugins import the public surface and
never another plugin's module, the core never imports a built-in plugin, the core's packages
form a stack that points one way, and nothing imports in a cycle, lazy imports (inside
functions) included."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
from pathlib import Path

import laser_core
import laser_plugins

CORE = Path(laser_core.__file__).parent
PLUGINS = Path(laser_plugins.__file__).parent
PUBLIC = {"laser_core", "laser_core.ops", "laser_core.testing"}


def _modules(root: Path, package: str) -> dict[str, Path]:
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


MODULES = {**_modules(CORE, "laser_core"), **_modules(PLUGINS, "laser_plugins")}


STACK: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("files",),
    ("nn",),
    ("ops", "data"),
    ("plugin",),
    ("recipes", "testing"),
    ("rundir",),
    ("assembly",),
    ("training",),
    ("runs",),
    ("downstream", "coding", "campaigns", "importers"),
    ("priors",),
    ("laser_core",),
    ("cli",),
)
"""The core's packages, lowest first, as docs/architecture.md draws them: a package imports
only packages of lower layers (``laser_core`` is the public API in ``__init__.py``; ``errors``,
``files`` and ``testing`` are modules); packages of one layer are peers that do not import
each other, but for the one-way PEER_IMPORTS."""

PEER_IMPORTS = {("campaigns", "coding")}
"""(importer, imported) peers: a campaign report draws rate-distortion curves with coding.rd."""

TEMPLATES = CORE / "plugin" / "templates"
"""Files ``laser new-plugin`` copies into a new plugin's package: that package's code, not
the core's, so they import the public API like any plugin."""


def _import_lines(module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``module``, at the top or inside functions, resolved
    to the deepest name that is a module (``from a import b`` imports a.b when b is a module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # A public package re-exports names that shadow its submodules (ops.ksvd).
                name = submodule if submodule in MODULES and base not in PUBLIC else base
                found.append((node.lineno, name))
    return [
        (line, name)
        for line, name in found
        if name.split(".")[0] in ("laser_core", "laser_plugins")
    ]


def _imports(module: str) -> set[str]:
    return {name for _, name in _import_lines(module)}


def _layer_of(module: str) -> str:
    """The stack entry ``module`` belongs to: ``laser_core.runs.load`` -> ``runs``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _stack_violations(modules: list[str]) -> list[str]:
    rank = {name: level for level, layer in enumerate(STACK) for name in layer}
    offending = []
    for module in modules:
        source = _layer_of(module)
        for line, target in _import_lines(module):
            imported = _layer_of(target)
            if not target.startswith("laser_core") or imported == source:
                continue
            if rank[imported] < rank[source] or (source, imported) in PEER_IMPORTS:
                continue
            where = "a peer" if rank[imported] == rank[source] else "a higher layer"
            path = MODULES[module]
            shown = path.relative_to(CORE.parent) if path.is_relative_to(CORE.parent) else path
            offending.append(
                f"{shown}:{line} imports {target}: "
                f"{source} may not import {imported}, {where} of the stack"
            )
    return offending


def _entry_point_modules() -> set[str]:
    return {ep.value for ep in metadata.entry_points(group="laser") if ep.value in MODULES}


def _imports_by(package: str) -> list[tuple[str, str]]:
    """(module, what it imports) for every module of ``package``."""
    return [
        (module, target)
        for module in MODULES
        if module.startswith(package)
        for target in _imports(module)
    ]


def test_built_in_plugins_import_only_the_public_api():
    offending = [
        f"{module} imports {target}"
        for module, target in _imports_by("laser_plugins")
        if target.startswith("laser_core") and target not in PUBLIC
    ]
    assert not offending, "\n".join(offending)


def test_built_in_plugins_share_only_helpers_of_their_own_package():
    """A plugin module may import modules of its own folder that are not entry points."""
    entry_points = _entry_point_modules()
    assert {"laser_plugins.bottlenecks.codebooks.vq", "laser_plugins.datasets"} <= entry_points
    offending = []
    for module, path in MODULES.items():
        if not module.startswith("laser_plugins"):
            continue
        for target in _imports(module) - {module}:
            if not target.startswith("laser_plugins"):
                continue
            same_folder = MODULES[target].parent == path.parent
            if target in entry_points or not same_folder:
                offending.append(f"{module} imports {target}")
    assert not offending, "\n".join(offending)


def test_the_core_never_imports_a_built_in_plugin():
    offending = [
        f"{module} imports {target}"
        for module, target in _imports_by("laser_core")
        if target.startswith("laser_plugins")
    ]
    assert not offending, "\n".join(offending)


def test_the_core_packages_import_only_lower_layers():
    core = [
        module
        for module, path in MODULES.items()
        if module.startswith("laser_core") and not path.is_relative_to(TEMPLATES)
    ]
    unplaced = sorted({_layer_of(m) for m in core} - {name for layer in STACK for name in layer})
    assert not unplaced, f"place {unplaced} in STACK and in docs/architecture.md's stack"
    offending = _stack_violations(core)
    lowest_first = " < ".join(", ".join(layer) for layer in STACK)
    assert not offending, "\n".join([*offending, f"the stack, lowest first: {lowest_first}"])


def test_the_architecture_doc_draws_this_stack():
    doc = (CORE.parent / "docs" / "architecture.md").read_text()
    block = doc.split("## The stack")[1].split("```")[1].strip().splitlines()
    drawn = [
        tuple(re.split(r"\s{2,}", line)[0].removesuffix(" (__init__.py)").split(", "))
        for line in block
    ]
    assert drawn[::-1] == list(STACK)


def _add_rogue_module(monkeypatch, tmp_path: Path, module: str, source: str) -> None:
    """Make ``module`` a file in ``tmp_path`` holding ``source``, for this test only."""
    (tmp_path / "rogue.py").write_text(source)
    monkeypatch.setitem(MODULES, module, tmp_path / "rogue.py")


def test_the_stack_rule_names_a_lazy_upward_import_by_file_and_line(monkeypatch, tmp_path):
    _add_rogue_module(
        monkeypatch,
        tmp_path,
        "laser_core.ops.rogue",
        "from laser_core.nn.codes import Codes\n\n\ndef f():\n"
        "    from laser_core.training import train\n",
    )
    assert _stack_violations(["laser_core.ops.rogue"]) == [
        f"{tmp_path / 'rogue.py'}:5 imports laser_core.training.train: ops may not import "
        "training, a higher layer of the stack"
    ]


def test_no_import_cycles():
    graph = {module: _imports(module) & MODULES.keys() for module in MODULES}
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert not cycles, cycles


def test_the_rules_catch_a_plugin_importing_another_plugin(monkeypatch, tmp_path):
    """The checks above read real import statements, relative and lazy ones included."""
    _add_rogue_module(
        monkeypatch,
        tmp_path,
        "laser_plugins.bottlenecks.rogue",
        "def f():\n    from laser_plugins.bottlenecks.codebooks.vq import build\n"
        "    from laser_core.training import train\n",
    )
    assert _imports("laser_plugins.bottlenecks.rogue") == {
        "laser_plugins.bottlenecks.codebooks.vq",
        "laser_core.training.train",
    }


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so deep import chains cannot overflow the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
