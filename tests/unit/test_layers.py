"""The layers of ``moorage/`` (docs/CODEMAPS/INDEX.md, ../shared/STYLE.md), checked on
every import statement, at module level or inside a function: a layer that reaches one
above it fails here, with the file and line.

Only ``services/`` writes rows: ``deployer/`` and ``snapshots/`` never import
``moorage.store.tables``, never import a writing statement builder (``insert``,
``update``, ``delete``) and never call a session's ``add``/``delete``/``execute``.

``api/`` only wires and translates: it never imports ``moorage.store.tables``, so every
row it shows came from a service and every row it changes is changed by one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import moorage

ROOT = Path(moorage.__file__).parent

# layer -> packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "services": ("moorage.deployer", "moorage.snapshots", "moorage.api", "moorage.cli"),
    "runtime": ("moorage.services", "moorage.deployer", "moorage.snapshots", "moorage.api"),
    "store": ("moorage.services", "moorage.deployer", "moorage.snapshots", "moorage.api"),
    "sources": ("moorage.services", "moorage.deployer", "moorage.snapshots", "moorage.api"),
    "triggers": ("moorage.services", "moorage.deployer", "moorage.snapshots", "moorage.api"),
    "volumes": ("moorage.services", "moorage.deployer", "moorage.snapshots", "moorage.api"),
    "security": ("moorage.deployer", "moorage.snapshots", "moorage.api"),
    "plugins": ("moorage.services", "moorage.deployer", "moorage.snapshots", "moorage.api"),
    "deployer": ("moorage.api", "moorage.cli"),
    "snapshots": ("moorage.api", "moorage.cli"),
    "offsite": ("moorage.api", "moorage.cli", "moorage.deployer"),
}
# Only the engine seam talks to Docker (STYLE principle 5).
DOCKER_SEAM = ("runtime", "docker")  # the package moorage/runtime/docker/
# Background work records what it did through services/ only.
NO_ROW_WRITES = ("deployer", "snapshots", "offsite")
ROW_TABLES = "moorage.store.tables"
WRITING_BUILDERS = {"insert", "update", "delete"}
SESSION_WRITES = {"add", "add_all", "delete", "execute", "merge", "bulk_save_objects"}
# api/ reaches rows only through services/ (docs/CODEMAPS/INDEX.md, the three rules).
TABLES = "moorage.store.tables"


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, with its line: absolute names only (the tree uses
    no relative imports)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import"
            found.append((node.lineno, node.module or ""))
    return found


def imported_names(path: Path) -> list[tuple[int, str]]:
    """Every dotted name ``path`` imports, with its line: ``from a.b import c`` is
    ``a.b.c``, so a module imported from its package is seen too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_reaches_above_itself(layer: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT.parent)}:{line} imports {name}"
        for path in (ROOT / layer).rglob("*.py")
        for line, name in imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])
    ]
    assert wrong == []


def test_only_the_engine_seam_imports_docker() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in modules()
        for line, name in imports(path)
        if (name == "docker" or name.startswith("docker."))
        and path.relative_to(ROOT).parts[:2] != DOCKER_SEAM
    ]
    assert wrong == []


def test_only_the_cli_wires_the_api() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules()
        if path.relative_to(ROOT).parts[0] not in ("api", "cli")
        for line, name in imports(path)
        if name == "moorage.api" or name.startswith("moorage.api.")
    ]
    assert wrong == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from moorage.deployer.queue import DeployQueue\n")
    assert imports(module) == [(2, "moorage.deployer.queue")]


def test_the_api_never_imports_tables() -> None:
    wrong = [
        f"{path.relative_to(ROOT.parent)}:{line} imports {name}"
        for path in (ROOT / "api").rglob("*.py")
        for line, name in imported_names(path)
        if name == TABLES or name.startswith(TABLES + ".")
    ]
    assert wrong == []


def test_the_tables_check_sees_every_spelling(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import moorage.store.tables\n"
        "from moorage.store import tables\n"
        "def f():\n    from moorage.store.tables import Workload\n"
    )
    assert [
        line
        for line, name in imported_names(module)
        if name == TABLES or name.startswith(TABLES + ".")
    ] == [1, 2, 4]


def row_writes(path: Path) -> list[str]:
    """Where ``path`` could write a row itself: an import of the tables (any spelling) or
    of a writing statement builder, or a call of a session's writing method."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [
                f"{node.lineno} imports {a.name}"
                for a in node.names
                if a.name == ROW_TABLES or a.name.startswith(ROW_TABLES + ".")
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for a in node.names:
                name = f"{module}.{a.name}"
                if module.startswith(ROW_TABLES) or name == ROW_TABLES:
                    found.append(f"{node.lineno} imports {name}")
                elif module.startswith("sqlalchemy") and a.name in WRITING_BUILDERS:
                    found.append(f"{node.lineno} imports {name}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SESSION_WRITES
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("s", "session")
        ):
            found.append(f"{node.lineno} calls {node.func.value.id}.{node.func.attr}")
    return sorted(found, key=lambda w: int(w.split()[0]))


@pytest.mark.parametrize("layer", NO_ROW_WRITES)
def test_only_services_write_rows(layer: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT.parent)}:{where}"
        for path in (ROOT / layer).rglob("*.py")
        for where in row_writes(path)
    ]
    assert wrong == []


def test_the_row_check_sees_each_way_of_writing(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from sqlalchemy import select, update\n"
        "from moorage.store.tables import Restore\n"
        "from moorage.store import tables\n"
        "def f(s):\n"
        "    s.add(Restore())\n"
    )
    assert row_writes(module) == [
        "1 imports sqlalchemy.update",
        "2 imports moorage.store.tables.Restore",
        "3 imports moorage.store.tables",
        "5 calls s.add",
    ]
