"""The module map holds: MLflow only behind leadml.registry, the scoring engines free of it,
and the CLI a thin layer over leadml.jobs."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "leadml"


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


@pytest.mark.parametrize("engine", ["scoring.py", "spark.py", "batch.py", "hadoop.py",
                                    "explain.py", "slots.py", "bant.py", "schema.py", "values.py",
                                    "io.py"])
def test_scoring_modules_do_not_import_the_registry(engine):
    found = modules()[engine]
    assert not [m for m in found if m.startswith(("leadml.registry", "mlflow"))], engine


def test_the_cli_calls_jobs_and_reads_no_data_itself():
    found = modules()["cli.py"]
    assert "leadml.jobs" in found
    allowed = {"leadml.jobs", "leadml.batch", "leadml.config", "leadml.registry",
               "leadml.schema", "leadml.scoring", "leadml.explain"}
    assert {m.rsplit(".", 1)[0] if m.count(".") > 1 else m for m in found
            if m.startswith("leadml")} <= allowed | {"leadml"}
