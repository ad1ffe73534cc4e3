"""States are enums in code and plain strings in the database and on the wire.

``tables.State`` keeps the same VARCHAR column and values as a bare string did (the
migration test holds the schema to that); these tests hold the values to it: a row reads
back its enum member, a value the enum does not name never reaches SQL, a blank column keeps
``""``; and no module of ``moorage/`` compares or assigns a state as a bare string again.
"""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy import String, text
from sqlalchemy.exc import StatementError

from moorage.names import new_id
from moorage.store.db import Database
from moorage.store.states import (
    CaptureMode,
    DeploymentStatus,
    SnapshotOrigin,
    SnapshotStatus,
)
from moorage.store.tables import Base, Deployment, Project, Snapshot, State, Workload
from tests.conftest import REPO

STATE_FIELDS = {
    "status",
    "phase",
    "origin",
    "mode",
    "outcome",
    "desired_state",
    "signature",
    "swap",
}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'moorage.db'}")
    database.migrate()
    return database


def a_workload(db: Database) -> str:
    with db.session() as s:
        s.add(Project(id="pr_1", slug="shop", stages=["prod"]))
        s.flush()
        s.add(
            Workload(
                id="wl_1",
                kind="image",
                ref_id="r",
                name="web",
                project_id="pr_1",
                stage="prod",
                config={},
            )
        )
    return "wl_1"


def test_a_row_reads_back_its_member_and_the_database_holds_the_string(db: Database) -> None:
    wid = a_workload(db)
    with db.session() as s:
        s.add(Deployment(id="dp_1", workload_id=wid, reason="manual"))
    with db.session() as s:
        row = s.get(Deployment, "dp_1")
        assert row is not None
        assert type(row.status) is DeploymentStatus and row.status is DeploymentStatus.QUEUED
        workload = s.get(Workload, wid)
        assert workload is not None and workload.status == "never_deployed"
        raw = s.execute(text("SELECT status FROM deployments WHERE id = 'dp_1'")).scalar_one()
        assert type(raw) is str and raw == "queued"


def test_a_value_the_enum_does_not_name_never_reaches_the_database(db: Database) -> None:
    wid = a_workload(db)
    with pytest.raises(StatementError, match="'waiting' is not a valid DeploymentStatus"):
        with db.session() as s:
            s.add(Deployment(id="dp_1", workload_id=wid, reason="manual", status="waiting"))
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM deployments")).scalar_one() == 0


def test_a_blank_column_keeps_the_empty_string(db: Database) -> None:
    wid = a_workload(db)
    with db.session() as s:
        s.add(
            Snapshot(
                id=new_id("sn"),
                workload_id=wid,
                origin=SnapshotOrigin.IMPORT,
                mode="",
                status=SnapshotStatus.READY,
            )
        )
        s.add(Snapshot(id="sn_2", workload_id=wid, origin="manual", mode="pause"))
    with db.session() as s:
        modes = {row.id: row.mode for row in s.query(Snapshot)}
        assert sorted(modes.values()) == ["", CaptureMode.PAUSE]
        assert type(modes["sn_2"]) is CaptureMode


def test_every_state_column_is_a_state() -> None:
    """A new status (or phase, origin, ...) column is declared with its enum."""
    columns = [
        (table.name, column.name, column.type)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name in STATE_FIELDS
    ]
    assert len(columns) >= 10, columns
    bare = [(t, c) for t, c, kind in columns if not isinstance(kind, State)]
    assert bare == []
    for _table, _column, kind in columns:
        assert isinstance(kind, State) and isinstance(kind.impl_instance, String)
        assert issubclass(kind.enum, StrEnum)


ROWS = {mapper.class_.__name__ for mapper in Base.registry.mappers}


def bare_states(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a state attribute is compared with, or set to, a non-empty string literal,
    and where a row is made or updated (``Snapshot(...)``, ``.values(...)``) with one."""

    def literal(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and node.value != ""
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(literal(e) for e in node.elts)
        return False

    def state(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr in STATE_FIELDS

    def writes_rows(call: ast.Call) -> bool:
        f = call.func
        return (isinstance(f, ast.Name) and f.id in ROWS) or (
            isinstance(f, ast.Attribute) and f.attr == "values"
        )

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(state(x) for x in sides) and any(literal(x) for x in sides):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Assign):
            if any(state(t) for t in node.targets) and literal(node.value):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and writes_rows(node):
            for kw in node.keywords:
                if kw.arg in STATE_FIELDS and literal(kw.value):
                    found.append((node.lineno, ast.unparse(kw)))
    return sorted(found)


def test_the_scan_finds_bare_states() -> None:
    code = (
        "row.status == 'ready'\nd.phase = 'done'\nDeployment(status='queued')\n"
        "x.outcome in ('queued', 'filtered')\nrow.mode == ''\nf(mode='after')\n"
        "update(Restore).values(phase='swap')\nHealth(status='ok')\n"
    )
    assert [line for line, _ in bare_states(ast.parse(code))] == [1, 2, 3, 4, 7]


def test_no_module_spells_a_state_as_a_bare_string() -> None:
    root = REPO / "moorage"
    found = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # a migration keeps the strings of its day
        for line, what in bare_states(ast.parse(path.read_text())):
            found.append(f"{path.relative_to(REPO)}:{line}: {what}")
    assert found == []
