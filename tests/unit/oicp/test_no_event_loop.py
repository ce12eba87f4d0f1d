"""The pure layer's unit tests run without an event loop.

The layer itself imports no aiohttp or asyncio (``test_model.test_protocol_layer_imports_no_io``);
this keeps its tests honest too: no coroutine tests or fixtures, no event-loop imports, in any
of the OICP test folders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p for p in UNIT.iterdir() if p.is_dir() and p.name.startswith("oicp"))
LOOP_MODULES = ("asyncio", "aiohttp", "pytest_asyncio", "pytest_aiohttp", "aio_pika")


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef):
            problems.append(f"{path.name}:{node.lineno}: async def {node.name}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""
            ]
            problems += [
                f"{path.name}:{node.lineno}: imports {name}"
                for name in names
                if name.split(".")[0] in LOOP_MODULES
            ]
    return problems


def test_the_oicp_test_folders_are_found() -> None:
    assert {"oicp", "oicp_conformance"} <= {p.name for p in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_no_oicp_test_needs_an_event_loop(folder: Path) -> None:
    problems = [p for path in sorted(folder.glob("*.py")) for p in _problems(path)]
    assert problems == []
