"""The bus package's rooms import one another one way only (design.md: arrows one way)."""

from __future__ import annotations

import ast
from pathlib import Path

import hubject_connector.bus

PACKAGE = Path(hubject_connector.bus.__file__).parent
PREFIX = "hubject_connector.bus."


def bus_imports() -> dict[str, set[str]]:
    """Each bus module's imports of other bus modules (module names without the package)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found.update(n.removeprefix(PREFIX) for n in names if n.startswith(PREFIX))
        graph[path.stem] = found
    return graph


def test_the_embedded_rooms_point_one_way() -> None:
    graph = bus_imports()
    assert "embedded_api" not in graph["embedded"]  # the API imports the bus, not back
    assert graph["embedded_store"] & {"embedded", "embedded_api", "embedded_webhook"} == set()
    assert graph["embedded_webhook"] & {"embedded", "embedded_api", "embedded_store"} == set()
    assert {"embedded_store", "embedded_webhook"} <= graph["embedded"]
    assert "embedded" in graph["embedded_api"]


def test_no_bus_module_imports_itself_back() -> None:
    graph = bus_imports()
    seen: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in seen:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*path, module))
        seen.add(module)

    for module in graph:
        visit(module, ())
