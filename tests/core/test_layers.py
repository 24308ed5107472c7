"""core is layered: a package imports only from its own layer or the ones below, imports inside functions
included, and never streamlit. Parsed with ast, so a lazy import cannot hide an upward edge."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"

# Bottom to top; packages on one line form one layer and may not import each other in a cycle.
LAYERS = [
    ["errors"], ["paths", "registry", "world"], ["options"], ["config"],
    ["presets", "data", "models", "sysinfo"],
    ["store"], ["engine"], ["tasks"],
    ["inference", "analysis", "concepts", "toolkit"],
    ["jobs"], ["cli", "worker", "sweeper"], ["__main__"],
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def _imports(path: Path, core: Path = CORE):
    """(line, imported module) for every import in the file, relative imports resolved."""
    parts = list(path.relative_to(core.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                names = [node.module]
            for name in names:
                yield node.lineno, name


def _package(path: Path, core: Path = CORE) -> str:
    return path.relative_to(core).with_suffix("").parts[0]


def _edges(core: Path = CORE):
    """{(from package, to package): ["core/x.py:12 core.y", ...]} between different packages of core."""
    edges = defaultdict(list)
    for path in sorted(core.rglob("*.py")):
        source = _package(path, core)
        for line, module in _imports(path, core):
            top = module.split(".")
            if top[0] != "core" or len(top) < 2:
                continue
            target = top[1]
            if target != source and source != "__init__":
                edges[(source, target)].append(f"{path.relative_to(core.parent)}:{line} {module}")
    return edges


def test_every_package_of_core_has_a_layer():
    packages = {_package(p) for p in CORE.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"place these in LAYERS: {sorted(packages - set(RANK))}"


def _upward(edges) -> list[str]:
    return [where for (source, target), places in edges.items()
            if RANK.get(target, 99) > RANK.get(source, -1) for where in places]


def _cycles(edges) -> list[str]:
    graph = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)

    def reaches(start: str, goal: str, seen: set) -> bool:
        for nxt in list(graph[start]):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    return sorted(p for p in list(graph) if reaches(p, p, set()))


def test_no_package_imports_one_above_it():
    upward = _upward(_edges())
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle_between_packages():
    edges = _edges()
    cycles = _cycles(edges)
    assert not cycles, f"packages in an import cycle: {cycles}; " + str(
        {k: v[:2] for k, v in edges.items() if k[0] in cycles and k[1] in cycles})


def test_core_never_imports_streamlit():
    found = [f"{p.relative_to(CORE.parent)}:{line}" for p in CORE.rglob("*.py") for line, module in _imports(p)
             if module.split(".")[0] == "streamlit"]
    assert not found, found


def test_the_checker_finds_lazy_upward_imports_and_cycles(tmp_path):
    # the checks above must see an import inside a function, a relative one, and a two-package cycle
    core = tmp_path / "core"
    (core / "data").mkdir(parents=True)
    (core / "data" / "__init__.py").write_text("def load():\n    from ..tasks import task_spec\n")
    (core / "tasks").mkdir()
    (core / "tasks" / "__init__.py").write_text("import core.data\n")
    (core / "paths.py").write_text("def home():\n    if True:\n        import core.jobs.runner\n")
    edges = _edges(core)
    assert set(edges) == {("data", "tasks"), ("tasks", "data"), ("paths", "jobs")}
    assert sorted(_upward(edges)) == ["core/data/__init__.py:2 core.tasks", "core/paths.py:3 core.jobs.runner"]
    assert _cycles(edges) == ["data", "tasks"]

