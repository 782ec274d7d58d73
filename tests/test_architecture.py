"""The layering rules, checked on the source: SQL only in ``database/``, the legacy import
only reached from the top, no upward imports, and a README that names every route and
every CLI command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hikaze_mm.cli import build_parser
from hikaze_mm.server.app import ROUTE_MODULES

PACKAGE = Path(__file__).resolve().parents[1] / "hikaze_mm"
README = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")

# Lower layers never import higher ones (a layer may import itself and anything lower).
# One module or package a layer, in the order the real imports allow: ``pending`` (Stage 2)
# is below ``library``, which hands it the sidecar reader, as ``services`` hands the Stage 1
# callable to the Stage 2 manager.
LAYERS = [
    "policy",
    "errors",
    "params",
    "meta",
    "credits",
    "model_types",
    "process_lock",
    "config",
    "database",
    "liveness",
    "jobs",
    "probe",
    "hashing",
    "workflow",
    "images",
    "pending",
    "library",
    "legacy",
    "services",
    "server",
    "cli",
    "comfy",
]


def _sources() -> list[tuple[str, Path]]:
    return [(p.relative_to(PACKAGE).as_posix(), p) for p in sorted(PACKAGE.rglob("*.py"))]


def _imports(path: Path) -> set[str]:
    """The ``hikaze_mm`` top-level modules this file imports (``database``, ``pending``...)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "hikaze_mm" and len(parts) > 1:
                found.add(parts[1])
    return found


def _layer(top: str) -> int:
    if top not in LAYERS:
        raise AssertionError(f"hikaze_mm.{top} has no layer in this test; add it")
    return LAYERS.index(top)


def test_the_policy_module_imports_nothing() -> None:
    """Strategies and limits are plain constants the CLI parser, the API and the worker
    share; importing them loads nothing else (``from __future__`` aside)."""
    tree = ast.parse((PACKAGE / "policy.py").read_text(encoding="utf-8"))
    imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    assert imports == []


def test_services_take_typed_values() -> None:
    """No method of a service class takes an untyped ``Any`` or ``object`` (a raw request
    body): the server parses bodies into typed requests first."""
    untyped, services = [], []
    for name, path in _sources():
        if not name.startswith(("library/", "pending/")):
            continue
        for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(cls, ast.ClassDef) and cls.name.endswith("Service")):
                continue
            services.append(cls.name)
            for method in cls.body:
                if not isinstance(method, ast.FunctionDef):
                    continue
                args = method.args.args + method.args.kwonlyargs
                untyped += [
                    f"{name}: {cls.name}.{method.name}({arg.arg})"
                    for arg in args
                    if arg.annotation is not None
                    and ast.unparse(arg.annotation) in ("Any", "object")
                ]
    assert {"ModelsService", "TagsService", "ImagesService", "PendingService"} <= set(services)
    assert untyped == []


def test_sql_runs_only_in_the_database_package() -> None:
    offenders = [
        f"{name}:{n}"
        for name, path in _sources()
        if not name.startswith("database/")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.execute(many|script)?\(", line)
    ]
    assert offenders == []


def _sqlite_catches(path: Path) -> list[int]:
    """Lines that catch (``except``, ``suppress``) an exception of the ``sqlite3`` module."""

    def names_sqlite3(node: ast.AST | None) -> bool:
        return node is not None and any(
            isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == "sqlite3"
            for n in ast.walk(node)
        )

    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        caught: list[ast.expr | None] = []
        if isinstance(node, ast.ExceptHandler):
            caught = [node.type]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "suppress":
            caught = list(node.args)
        if any(names_sqlite3(expr) for expr in caught):
            lines.append(node.lineno)
    return lines


def test_no_sqlite3_exception_is_caught_outside_the_database_package() -> None:
    """Stores raise the storage errors (``database/errors.py``); nothing above catches the
    driver's own."""
    catching = {
        name: lines
        for name, path in _sources()
        if not name.startswith("database/") and (lines := _sqlite_catches(path))
    }
    assert catching == {}
    assert _sqlite_catches(PACKAGE / "database" / "manager.py")  # the check sees them


def test_code_above_the_database_names_the_contract_not_the_sqlite_manager() -> None:
    """``Library`` (``database/interfaces.py``), from ``open_library``; never
    ``DatabaseManager`` nor ``db.path``, which a second backend would not have."""
    naming = {
        name
        for name, path in _sources()
        if not name.startswith("database/")
        and re.search(r"\bDatabaseManager\b|\bdb\.path\b", path.read_text(encoding="utf-8"))
    }
    assert naming == set()


def test_the_legacy_import_is_reached_only_from_the_top() -> None:
    importers = sorted(
        name
        for name, path in _sources()
        if "legacy" in _imports(path) and not name.startswith("legacy/")
    )
    allowed = ("cli/", "server/", "services.py")
    assert importers and all(name.startswith(allowed) for name in importers), importers


def _modules(path: Path) -> set[str]:
    """The full names of the ``hikaze_mm`` modules this file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("hikaze_mm.")}


def test_civitai_answers_are_parsed_without_the_http_client() -> None:
    """Sidecars hold Civitai's JSON: reading one needs the schema, never the client."""
    sidecars = _modules(PACKAGE / "library" / "sidecars.py")
    assert "hikaze_mm.library.civitai_schema" in sidecars
    assert "hikaze_mm.library.civitai_client" not in sidecars
    assert "hikaze_mm.library.civitai_client" not in _modules(
        PACKAGE / "library" / "civitai_schema.py"
    )


@pytest.mark.parametrize("name,path", _sources(), ids=[n for n, _ in _sources()])
def test_no_module_imports_a_higher_layer(name: str, path: Path) -> None:
    own = name.split("/")[0].removesuffix(".py")
    if own in ("__init__", "__main__", "web"):
        return
    higher = {top for top in _imports(path) if _layer(top) > _layer(own)}
    assert higher == set()


def test_the_readme_names_every_route() -> None:
    """Each ``/api`` route's path, any text standing for its ``{parameters}``."""
    missing = []
    for module in ROUTE_MODULES:
        for route in module.routes:
            parts = re.split(r"\{[^}]+\}", route.path)
            pattern = r"[^\s`|]+".join(re.escape(part) for part in parts) + r"(?![\w/])"
            if route.path.startswith("/api/") and not re.search(pattern, README):
                missing.append(f"{route.method} {route.path}")
    assert missing == []


def test_the_readme_names_every_cli_command() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [c for c in commands.choices if f"hikaze-mm {c}" not in README]
    assert missing == []


def test_the_readme_layout_table_is_true() -> None:
    """Every path the table names exists, and every module or package of the project
    (and every module a package row lists in backticks) is there."""
    rows = re.findall(r"^\| `(hikaze_mm/[^`]*)` \| (.*) \|$", README, re.MULTILINE)
    named = {path.rstrip("/") for path, _ in rows}
    assert named
    for path, text in rows:
        target = PACKAGE.parent / path
        assert target.exists(), path
        if target.is_dir() and path.rstrip("/") != "hikaze_mm/web":
            for module in re.findall(r"`(\w+)`", text):
                if module.islower() and "_" not in module[:1]:
                    assert (target / f"{module}.py").exists(), f"{path}{module}"
    entries = {
        f"hikaze_mm/{p.name.removesuffix('.py') if p.is_file() else p.name}"
        for p in PACKAGE.iterdir()
        if p.name not in ("__init__.py", "__main__.py", "__pycache__")
    }
    assert entries <= {n.removesuffix(".py") for n in named}


MAX_FUNCTION_LINES = 60


def test_no_python_function_is_over_60_lines() -> None:
    """Small functions: none of the package's is longer than ``MAX_FUNCTION_LINES``."""
    long = {}
    for name, path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}:{node.name}"] = length
    assert long == {}
