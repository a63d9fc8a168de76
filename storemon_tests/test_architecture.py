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
    # The HTTP API reaches Dagster over GraphQL only; job and tag names come from names.py.
    "api": {"dagster", "dagster_graphql", "storemon_assets.defs"},
    # The one path of each action, which Dagster, the CLI and the API call: none of theirs (a
    # command such as `storemon report` must not pay for the web framework's import).
    "service.py": {
        "dagster",
        "dagster_graphql",
        "fastapi",
        "storemon_assets.defs",
        "storemon_assets.api",
        "storemon_assets.web",
    },
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
    for path in [package / layer] if layer.endswith(".py") else sorted((package / layer).rglob("*.py")):
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
    for layer in ("core", "db", "defs", "web", "api"):
        assert (PACKAGE / layer / "__init__.py").exists()


# --- settings: every STOREMON_* variable is read in settings.py only -------------------------

SETTINGS_MODULE = PACKAGE / "settings.py"
SCRIPTS = PACKAGE.parent / "scripts"


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _environment_reads(path: Path) -> list[str]:
    """Places in a file that read a variable from the environment (`os.environ[...]`,
    `os.environ.get(...)`, `os.getenv(...)`), use pydantic-settings (which reads it for a class)
    or name a STOREMON_* variable as a bare string (a key for any of those, or for dg.EnvVar).
    Handing the whole environment on (`dict(os.environ)`) is no read."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            found.append(f"{path.name}:{node.lineno} indexes environ")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if (node.func.attr in ("get", "pop", "setdefault") and _is_environ(node.func.value)) or (
                node.func.attr == "getenv"
            ):
                found.append(f"{path.name}:{node.lineno} calls {ast.unparse(node.func)}")
        elif isinstance(node, ast.ImportFrom) and node.module == "pydantic_settings":
            found.append(f"{path.name}:{node.lineno} imports pydantic_settings")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if a.name in ("environ", "getenv")
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("STOREMON_"):
            if node.value.isidentifier():  # a variable name on its own, not prose that mentions one
                found.append(f"{path.name}:{node.lineno} names {node.value}")
    return sorted(found)


def test_only_settings_reads_the_environment():
    modules = [*PACKAGE.rglob("*.py"), *SCRIPTS.glob("*.py")]
    assert len(modules) > 20
    assert [read for path in modules if path != SETTINGS_MODULE for read in _environment_reads(path)] == []


def test_the_environment_check_sees_each_kind_of_read(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import os\nfrom os import getenv\nimport dagster as dg\n"
        "a = os.environ.get('STOREMON_AS_OF')\nb = dg.EnvVar('STOREMON_DATABASE_URL')\n"
        "c = os.environ['HOME'] + os.getenv('X', '')\n"
        "d = dict(os.environ)\ne = 'set STOREMON_AS_OF to fix T'\n"
        "from pydantic_settings import BaseSettings\n"
    )
    assert _environment_reads(sneaky) == [
        "sneaky.py:2 imports getenv",
        "sneaky.py:4 calls os.environ.get",
        "sneaky.py:4 names STOREMON_AS_OF",
        "sneaky.py:5 names STOREMON_DATABASE_URL",
        "sneaky.py:6 calls os.getenv",
        "sneaky.py:6 indexes environ",
        "sneaky.py:9 imports pydantic_settings",
    ]
    assert _environment_reads(SETTINGS_MODULE)  # settings.py does read it: the check is not blind


# --- the fast tier: whatever starts servers is marked e2e -------------------------------------

TESTS = Path(__file__).resolve().parent
SERVER_STARTERS = {"dagster_dev", "storemon_api"}  # storemon_assets/local_servers.py


def _starts_servers_unmarked(path: Path) -> bool:
    """A test module that imports a server starter or starts a long-running process
    (`subprocess.Popen`) must mark itself `pytestmark = pytest.mark.e2e`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    starts = any(
        (isinstance(node, ast.ImportFrom) and {alias.name for alias in node.names} & (SERVER_STARTERS | {"Popen"}))
        or (isinstance(node, ast.Attribute) and node.attr == "Popen")
        for node in ast.walk(tree)
    )
    marked = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and "e2e" in ast.unparse(node.value)
        for node in tree.body
    )
    return starts and not marked


def test_every_test_module_that_starts_servers_is_e2e():
    modules = sorted(TESTS.glob("test_*.py"))
    assert [p.name for p in modules if _starts_servers_unmarked(p)] == []
    assert not _starts_servers_unmarked(TESTS / "test_api.py")  # it starts them, and is marked
    assert not _starts_servers_unmarked(TESTS / "test_stopping.py")  # Popen of `make dev`, marked


def test_the_e2e_check_sees_an_unmarked_module(tmp_path):
    unmarked = tmp_path / "test_x.py"
    unmarked.write_text("from storemon_assets.local_servers import dagster_dev\n\ndef test_x():\n    pass\n")
    assert _starts_servers_unmarked(unmarked)
    unmarked.write_text("import subprocess\n\ndef test_x():\n    subprocess.Popen(['sleep', '1'])\n")
    assert _starts_servers_unmarked(unmarked)
    unmarked.write_text("import pytest, subprocess\npytestmark = pytest.mark.e2e\nsubprocess.Popen\n")
    assert not _starts_servers_unmarked(unmarked)


def test_scripts_do_not_import_the_tests():
    """The benchmark scripts stand on the package (storemon_assets/local_servers.py starts the
    servers), never on the test suite."""
    imports = {path.name: imported_modules(path) for path in sorted(SCRIPTS.glob("*.py"))}
    assert imports  # the check reads the scripts
    assert {
        name: sorted(m for m in modules if m.startswith("storemon_tests")) for name, modules in imports.items()
    } == {name: [] for name in imports}


def test_the_queries_leave_the_dialect_to_the_engines_reader():
    """SQLite and PostgreSQL differ in db/readers.py only (one reader per engine): the reads in
    db/queries.py and the history's in db/history.py never ask which database they are on."""
    branches = [
        (name, node.lineno)
        for name in ("queries.py", "history.py")
        for node in ast.walk(ast.parse((PACKAGE / "db" / name).read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "dialect"
    ]
    assert branches == []
    assert "dialect" in (PACKAGE / "db" / "readers.py").read_text()  # the check looks at the right thing
