"""The import structure DESIGN.md draws: kernels/ imports nothing of bench/ or models/, models/
nothing of bench/, bench's floors import only downward, and no module imports itself back
through others (no loops). Read from the source with ast, lazy imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kernels", "models", "bench")
# bench's floors, lowest first; a module may import its own floor and those below.
FLOORS = (
    ("bench.errors", "bench.files", "bench.formulas", "bench.progress", "bench.provenance"),
    ("bench.counting",),
    ("bench.measuring",),
    ("bench.experiments",),
    ("bench.checking",),
    ("bench.reporting",),
    ("bench.commands", "bench.cli", "bench.__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every project module ``path`` imports (absolute names; `from pkg import mod` resolved to
    pkg.mod when mod is a module of ours)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.split(".")[0] in PACKAGES and n in MODULES}
    return found


MODULES = {
    _module_name(p): p
    for pkg in PACKAGES
    for p in (ROOT / pkg).rglob("*.py")
    if ".venv" not in p.parts
}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _floor(module: str) -> int | None:
    for i, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_every_bench_module_has_a_floor() -> None:
    loose = [m for m in MODULES if m.startswith("bench.") and _floor(m) is None]
    assert not loose, f"modules outside the floors of FLOORS: {loose}"


@pytest.mark.parametrize(
    "package, forbidden", [("kernels", ("bench", "models")), ("models", ("bench",))]
)
def test_lower_packages_import_nothing_above(package: str, forbidden: tuple[str, ...]) -> None:
    bad = {
        (m, dep)
        for m, deps in GRAPH.items()
        if m.split(".")[0] == package
        for dep in deps
        if dep.split(".")[0] in forbidden
    }
    assert not bad, f"{package} imports upward: {sorted(bad)}"


def test_bench_floors_import_only_downward() -> None:
    bad = []
    for m, deps in GRAPH.items():
        if _floor(m) is None:
            continue
        bad += [(m, d) for d in deps if _floor(d) is not None and _floor(d) > _floor(m)]
    assert not bad, f"imports from a higher floor: {sorted(bad)}"


def test_no_import_loops() -> None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH[m]):
            if d == m or d.startswith(m + "."):
                continue  # a package importing its own submodules (its __init__'s exports)
            if state.get(d) == 1:
                loop = [*stack[stack.index(d) :], d]
                raise AssertionError(f"import loop: {' -> '.join(loop)}")
            if state.get(d) is None:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(GRAPH):
        if state.get(m) is None:
            visit(m, [m])
