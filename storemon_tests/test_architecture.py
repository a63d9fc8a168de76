"""The three layers stay apart: pure computation, database, Dagster (docs/architecture in README)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "storemon_assets"

# layer -> top-level packages it must never import
FORBIDDEN = {
    "core": {
        "dagster",
        "dagster_graphql",
        "sqlalchemy",
        "fastapi",
        "matplotlib",
        "storemon_assets.db",
        "storemon_assets.defs",
    },
    "db": {"dagster", "dagster_graphql", "fastapi", "storemon_assets.defs"},
    # The store pages read the storemon database directly, never Dagster.
    "web": {"dagster", "dagster_graphql", "storemon_assets.defs"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(layer: str, package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted((package / layer).rglob("*.py")):
        for module in imported_modules(path):
            for forbidden in FORBIDDEN[layer]:
                if module == forbidden or module.startswith(forbidden + "."):
                    found.append(f"{path.relative_to(package.parent)} imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_stay_inside_their_boundary(layer):
    assert _violations(layer) == []


def test_the_boundary_check_sees_a_violation(tmp_path):
    """A core module importing dagster inside a function is caught (the check cannot pass silently)."""
    (tmp_path / "storemon_assets" / "core").mkdir(parents=True)
    (tmp_path / "storemon_assets" / "core" / "sneaky.py").write_text(
        "def f():\n    import dagster as dg\n    return dg\n"
    )
    assert _violations("core", tmp_path / "storemon_assets") == ["storemon_assets/core/sneaky.py imports dagster"]


def test_every_layer_is_a_package():
    for layer in ("core", "db", "defs", "web"):
        assert (PACKAGE / layer / "__init__.py").exists()
