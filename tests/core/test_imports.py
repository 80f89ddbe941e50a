"""Import hygiene of ``core``: every module imports, no import cycle among ``core`` modules (module-level imports,
the ones Python runs at import time), ``core`` never imports streamlit, and ``import core.tasks`` stays cheap."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import core

ROOT = Path(core.__file__).resolve().parent


def core_modules() -> dict[str, Path]:
    out = {"core": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="core."):
        spec = importlib.util.find_spec(info.name)
        out[info.name] = Path(spec.origin)
    return out


def module_level_imports(name: str, path: Path, known: set[str], lazy: bool = False) -> set[str]:
    """``core`` modules that ``name`` imports when it is imported (top-level statements, class bodies and
    ``if``/``try`` blocks at module level; with ``lazy``, function bodies too: imports deferred to call time)."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not lazy:
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []) or [])

    visit(tree.body)
    out = set()
    for mod in found:  # importing a.b.c imports a and a.b too
        parts = mod.split(".")
        out.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    # a module's own parent packages are being imported already when it runs (the package pattern), not an edge
    return {m for m in out if m in known and m != name and m not in ancestors}


def _is_type_checking(test) -> bool:
    return (
        isinstance(test, ast.Name)
        and test.id == "TYPE_CHECKING"
        or isinstance(test, ast.Attribute)
        and test.attr == "TYPE_CHECKING"
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v) :] + [v]
            if v not in state and (c := dfs(v)):
                return c
        stack.pop()
        state[u] = 2
        return None

    for node in sorted(graph):
        if node not in state and (c := dfs(node)):
            return c
    return None


def test_no_import_cycle_among_core_modules():
    mods = core_modules()
    graph = {n: module_level_imports(n, p, set(mods)) for n, p in mods.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


#: the one known cycle through deferred imports: MapStack.to_hdf5 / from_hdf5 (core.data.maps) delegate to the HDF5
#: map reader in core.data.io, whose readers build MapStacks (see docs/ARCHITECTURE.md, "Known debts")
KNOWN_LAZY = {("core.data.maps", "core.data.io")}


def test_no_cycle_even_through_deferred_imports():
    mods = core_modules()
    graph = {n: module_level_imports(n, p, set(mods), lazy=True) for n, p in mods.items()}
    for src, prefix in KNOWN_LAZY:
        graph[src] = {m for m in graph[src] if not m.startswith(prefix)}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(core_modules()))
def test_every_core_module_imports_without_streamlit(name):
    importlib.import_module(name)
    tree = ast.parse(core_modules()[name].read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
        n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    }
    assert not any(m.split(".")[0] == "streamlit" for m in names)


def test_task_registry_import_is_cheap():
    code = (
        "import sys, core.tasks; heavy = [m for m in ('numpy', 'torch', 'jax', 'astropy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    ).stdout.strip()
    assert out == "", f"import core.tasks pulled in {out}"
