"""The package's floor plan holds: stages in layers, no import cycle, imports at the top,
MLflow only behind leadml.registry, the scoring engines free of it, and the CLI a thin layer
over leadml.jobs. docs/architecture.md draws the layers and says where to change what."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "leadml"

#: Each package (or top-level module) of leadml and its floor: a module may import from its
#: own floor and the floors below, never from above.
FLOORS = {
    "errors": 0, "process": 0,
    "config": 1,
    "data": 2,
    "model": 3,
    "rules": 4,
    "training": 5,
    "explain": 6,
    "monitoring": 7,
    "scoring": 8,
    "registry": 9,
    "setup": 10,
    "jobs": 11,
    "api": 12, "cli": 12, "__init__": 12,
}
#: Where an import inside a function is allowed: start-up time (the CLI, the API, the
#: package's and jobs' lazy attributes), or a line that says why with "# lazy:".
LAZY_MODULES = {"cli.py", "api.py", "__init__.py", "jobs/__init__.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["leadml", *parts])


def leadml_imports(path: Path):
    """(imported module, line, inside a function) for each leadml import of a file; ``from
    leadml.x import y`` counts as leadml.x.y when y is a module."""
    tree = ast.parse(path.read_text())
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "leadml":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = full if (SRC / Path(*full.split(".")[1:])).with_suffix(".py").exists() \
                    or (SRC / Path(*full.split(".")[1:])).is_dir() else node.module
                yield target, node.lineno, id(node) in inside
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "leadml":
                    yield alias.name, node.lineno, id(node) in inside


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else "__init__"]


FILES = sorted(SRC.rglob("*.py"))
GRAPH = {module_name(p): {m for m, _, _ in leadml_imports(p)} for p in FILES}


def test_every_package_has_a_floor():
    assert {module_name(p).split(".")[1] for p in FILES if module_name(p) != "leadml"} \
        <= set(FLOORS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_from_a_higher_floor(path):
    here = floor(module_name(path))
    upward = sorted(m for m, _, _ in leadml_imports(path) if m != "leadml" and floor(m) > here)
    assert not upward, f"{path.relative_to(SRC)} (floor {here}) imports {upward}"


def test_no_import_cycle():
    modules = set(GRAPH)

    def resolved(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {resolved(t) for t in GRAPH[m]} - {None, m, "leadml"} for m in GRAPH}
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_are_at_the_top_or_say_why_not(path):
    name = str(path.relative_to(SRC))
    if name in LAZY_MODULES:
        return
    lines = path.read_text().splitlines()
    unexplained = [n for _, n, inside in leadml_imports(path)
                   if inside and "# lazy:" not in lines[n - 1]]
    assert not unexplained, f"{name}: leadml imports inside functions at lines {unexplained}"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(SRC)): imports(p) for p in SRC.rglob("*.py")}


def test_only_the_registry_package_imports_mlflow():
    users = {name for name, found in modules().items()
             if any(m == "mlflow" or m.startswith("mlflow.") for m in found)}
    assert users and all(name.startswith("registry/") for name in users), users


@pytest.mark.parametrize("engine", sorted(
    str(p.relative_to(SRC)) for folder in ("scoring", "explain", "rules", "data", "model")
    for p in (SRC / folder).glob("*.py")))
def test_scoring_modules_do_not_import_the_registry(engine):
    found = modules()[engine]
    assert not [m for m in found if m.startswith(("leadml.registry", "mlflow"))], engine


def test_the_cli_calls_jobs_and_reads_no_data_itself():
    found = modules()["cli.py"]
    assert any(m.startswith("leadml.jobs") for m in found)
    allowed = {"leadml.__version__", "leadml.jobs", "leadml.errors", "leadml.process",
               "leadml.config",
               "leadml.registry", "leadml.scoring", "leadml.explain"}
    assert {".".join(m.split(".")[:2]) for m in found if m.startswith("leadml.")} <= allowed
