"""The library's shape: no import circle between its modules (lint-imports checks the layers,
not circles inside one layer) and no module over 400 lines."""
from __future__ import annotations

from pathlib import Path

import grimp

import minima

LIB = Path(minima.__file__).parent


def circles(graph) -> list[list[str]]:
    """Every module that can reach itself through imports, as one circle each (depth-first
    search); a package importing its own submodules (``__init__`` re-exports) is not a circle."""
    found, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.startswith(module + "."):
                continue  # a package's __init__ re-exporting its submodules
            if state.get(imported) == "open":
                found.append(stack[stack.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph.modules):
        if module not in state:
            visit(module, [])
    return found


def test_the_import_graph_has_no_circle():
    assert circles(grimp.build_graph("minima")) == []


def test_the_circle_finder_sees_a_circle():
    class Graph:
        modules = {"m.a", "m.b", "m.c"}

        @staticmethod
        def find_modules_directly_imported_by(module):
            return {"m.a": {"m.b"}, "m.b": {"m.c"}, "m.c": {"m.a"}}[module]

    assert circles(Graph()) == [["m.a", "m.b", "m.c", "m.a"]]


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(LIB)): n for path in LIB.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}
