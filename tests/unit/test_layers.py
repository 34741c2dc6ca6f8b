"""The package's layers: imports point only down (the import-linter contract in
pyproject.toml), no module imports itself through a circle, and every import left inside a
function says why it is there."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.support.gateway import ROOT

PACKAGE = ROOT / "gateway"


def test_layers_contract_is_kept() -> None:
    """`lint-imports`: every import points to a lower layer or stays within its own folder."""
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan: every strongly connected group of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles() -> None:
    """No module reaches itself through its imports (imports only for type annotations
    excluded: they never run)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    graph = grimp.build_graph("gateway", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def _local_imports_without_reason(package: Path) -> list[str]:
    missing = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = path.read_text().split("\n")
        for func in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in func.body:
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                row = node.lineno - 1
                while row > 0 and lines[row - 1].strip().startswith(("import ", "from ")):
                    row -= 1  # a block of imports shares the comment above it
                said = "#" in lines[node.lineno - 1] or lines[row - 1].strip().startswith("#")
                if not said:
                    where = path.relative_to(package.parent)
                    missing.append(f"{where}:{node.lineno} {lines[node.lineno - 1].strip()}")
    return missing


def test_every_local_import_says_why() -> None:
    """An import inside a function is there for a reason (memory, start-up time, an optional
    dependency): a comment says which."""
    assert _local_imports_without_reason(PACKAGE) == []


@pytest.mark.parametrize("layer", ["core", "request"])
def test_bottom_layers_do_no_io(layer: str) -> None:
    """The facts and the pure request rules import no network, database or web library."""
    banned = ("aiohttp", "sqlalchemy", "redis", "asyncpg", "aiosqlite", "oso")
    found = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in banned]
    assert found == []


@pytest.mark.parametrize(("source", "reported"), [
    ("def f():\n    import json\n    return json\n", True),
    ("def f():\n    import json  # only for the debug dump\n    return json\n", False),
    ("def f():\n    # only when asked\n    import json\n    import csv\n    return json, csv\n",
     False),
], ids=["silent", "same-line", "block-comment"])
def test_local_import_checker(tmp_path: Path, source: str, reported: bool) -> None:
    """The checker itself: a function-local import without a comment is reported."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(source)
    assert bool(_local_imports_without_reason(tmp_path / "pkg")) is reported


def test_no_test_module_imports_another() -> None:
    """Helpers live in tests/support and fixtures in tests/conftest.py: a test module that
    imports another runs (and collects) that module's tests' set-up as a side effect."""
    found = []
    for path in sorted((ROOT / "tests").glob("*/test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                      for name in names
                      if name.split(".")[:2] in (["tests", "unit"], ["tests", "integration"],
                                                 ["tests", "e2e"])]
    assert found == []
