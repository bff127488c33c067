"""The package's tree is its architecture: the module map lists every module, the top level stays small,
and no module imports another that (directly or through others) imports it back."""

import ast

import helpers
from helpers.paths import ROOT

PKG = ROOT / "helpers"


def _modules() -> dict[str, object]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if p.name == "__init__.py" else parts)
        out[name] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Static import graph among helpers' modules, imports inside functions included."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                while n and n not in mods:
                    n = n.rpartition(".")[0]
                if n and n != m and n != "helpers" and not m.startswith(n + "."):
                    graph[m].add(n)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u)
    return cycles


def test_module_map_lists_every_module():
    modules = {m for m in _modules() if m != "helpers" and not m.endswith("__main__")}
    packages = {m for m, p in _modules().items() if p.name == "__init__.py" and m != "helpers"}
    listed = {m for m in modules - packages if f":mod:`{m}`" in helpers.__doc__}
    assert modules - packages - listed == set(), f"missing from helpers/__init__.py: {sorted(modules - packages - listed)}"
    for pkg in packages:
        assert f"``{pkg.split('.')[-1]}/``" in helpers.__doc__, f"{pkg} has no section in the module map"


def test_top_level_stays_small():
    top = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
    assert len(top) <= 8, f"helpers/ has {len(top)} modules at its top level: {top}; put them in a subpackage"


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_test_imports_a_toy_model_from_the_library():
    import re
    for p in (ROOT / "tests").glob("*.py"):
        for m in re.finditer(r"from helpers\.[\w.]+ import \(?([^)]*?)\)?$", p.read_text(), re.M):
            assert "RegionDetector" not in m.group(1) and "random_images" not in m.group(1), p.name
