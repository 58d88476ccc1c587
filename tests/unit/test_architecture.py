"""Imports run one way (DESIGN.md): no cycles between sketchgen's modules, and the library
never reaches the composition root, the settings, the service, the API or the CLI.

Read from the source with ``ast``: imports inside functions count (they run, only later);
imports under ``if TYPE_CHECKING:`` do not (they never run). Importing ``a.b.c`` is an edge to
``a.b.c`` only: the parent packages' ``__init__`` run too, but they are kept light and lazy
(``sketchgen/__init__.py`` is the facade, an entry point like the CLI).
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib"
LIBRARY = (
    "sketchgen.generate",
    "sketchgen.prompt",
    "sketchgen.styles",
    "sketchgen.references",
    "sketchgen.finish",
    "sketchgen.schemas",
    "sketchgen.errors",
    "sketchgen.ports",
    "sketchgen.metadata",
    "sketchgen.text",
    "sketchgen.bounded_json",
    "sketchgen.pixel_limit",
    "sketchgen.exports",
)
SERVICE_LAYERS = (
    "sketchgen.bootstrap",
    "sketchgen.settings",
    "sketchgen.services",
    "sketchgen.api",
    "sketchgen.cli",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((LIB / "sketchgen").rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in self.known else base)

    def _add(self, name: str) -> None:
        if name == "sketchgen" or name.startswith("sketchgen."):
            # The longest known module the name starts with (``a.b.C`` a class in ``a.b``).
            while name not in self.known and "." in name:
                name = name.rpartition(".")[0]
            self.found.add(name)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.found - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _path(graph: dict[str, set[str]], start: str, goal: tuple[str, ...]) -> list[str] | None:
    """A shortest import chain from ``start`` into ``goal``, if there is one."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node != start and _in(node, goal):
            chain = [node]
            while (parent := previous[chain[-1]]) is not None:
                chain.append(parent)
            return chain[::-1]
        for target in sorted(graph.get(node, ())):
            if target not in previous:
                previous[target] = node
                queue.append(target)
    return None


def test_the_walk_sees_the_package() -> None:
    graph = _graph()
    assert "sketchgen.generate.generator" in graph and "sketchgen.api.http" in graph
    assert "sketchgen.services" in graph["sketchgen.api.http"]


def test_there_are_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_library_never_reaches_the_service_layers() -> None:
    graph = _graph()
    chains = [
        " -> ".join(chain)
        for module in sorted(graph)
        if _in(module, LIBRARY) and (chain := _path(graph, module, SERVICE_LAYERS)) is not None
    ]
    assert not chains, "library modules importing service layers:\n" + "\n".join(chains)
