"""``store.bulk.insert_rows`` writes what the ORM would write, on SQLite and PostgreSQL.

Each case writes one set of rows both ways (the ORM's ``insert(Table)`` and
``insert_rows``) and reads both back through the ORM: every column equal, whatever the
column's type does on the way in (JSON, timezone-aware instants, the state enums,
booleans, NUL-free text with quotes and non-ASCII). Defaults the caller leaves out are
filled, the write bumps the generation a cached list waits on, and a bad row fails
without leaving part of the batch.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import (
    Float,
    LargeBinary,
    TypeDecorator,
    event,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.exc import IntegrityError

from moorage.security.roles import SYSTEM
from moorage.services import projects
from moorage.store import bulk
from moorage.store.bulk import insert_rows
from moorage.store.db import Database
from moorage.store.states import DeploymentStatus
from moorage.store.tables import AuditEntry, Deployment, Project, Workload, utcnow
from tests.unit.store import test_store

db, pg_url = test_store.db, test_store.pg_url


def workload_ids(database: Database, count: int) -> list[str]:
    """Ids of ``count`` workload rows (made through the ORM, the way a test fixture may)."""
    with database.session() as s:
        projects.create(s, SYSTEM, slug="shop")
        project = s.scalars(select(Project)).one()
        rows = [
            Workload(
                id=f"wl_{i:03d}",
                name=f"w{i}",
                kind="image",
                ref_id=f"wl_{i:03d}",
                project_id=project.id,
                stage="production",
                config={"image": "x"},
            )
            for i in range(count)
        ]
        s.add_all(rows)
    return [r.id for r in rows]


def deployment_rows(ids: list[str], prefix: str) -> list[dict[str, Any]]:
    now, shared = utcnow(), {"digest": "sha256:ab", "nested": {"ü": [1, 2.5, None]}}
    return [
        {
            "id": f"{prefix}{i:03d}",
            "workload_id": w,
            "status": DeploymentStatus.QUEUED if i % 2 else DeploymentStatus.FAILED,
            "reason": "trigger:tr_1 'quoted' \"twice\" — ünïcode",
            "pull": bool(i % 3),
            "artifact": shared if i % 2 else {"row": i},
            "log": "",
            "created_at": now + timedelta(microseconds=i),
        }
        for i, w in enumerate(ids)
    ]


COLUMNS = ["workload_id", "status", "reason", "pull", "artifact", "inputs", "log", "error"]


def read(database: Database, prefix: str) -> list[tuple[Any, ...]]:
    with database.session() as s:
        found = s.scalars(
            select(Deployment).where(Deployment.id.like(f"{prefix}%")).order_by(Deployment.id)
        ).all()
        return [
            (d.id[len(prefix) :], d.created_at, *(getattr(d, c) for c in COLUMNS)) for d in found
        ]


def test_rows_read_back_as_the_orm_wrote_them(db: Database) -> None:
    ids = workload_ids(db, 7)
    with db.session() as s:
        s.execute(insert(Deployment), deployment_rows(ids, "dp_orm_"))
        insert_rows(s, Deployment, deployment_rows(ids, "dp_blk_"))
    orm, bulk = read(db, "dp_orm_"), read(db, "dp_blk_")
    assert len(bulk) == 7
    # The same instants apart from the microsecond each case was made at.
    assert [r[2:] for r in bulk] == [r[2:] for r in orm]
    assert all(r[1].tzinfo is not None for r in bulk)
    assert bulk[1][COLUMNS.index("artifact") + 2]["nested"] == {"ü": [1, 2.5, None]}
    assert [r[COLUMNS.index("inputs") + 2] for r in bulk] == [{}] * 7  # default filled


def test_a_batch_over_the_parameter_bound_is_split_and_written_whole(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than one statement may carry (a bound of 20 values: 2 rows of 10
    columns a statement, and an odd last one) are all written, in order, as the ORM
    writes them; a bad row in the last statement leaves none of the batch."""
    monkeypatch.setattr(bulk, "MAX_PARAMETERS", 20)
    ids = workload_ids(db, 7)
    with db.session() as s:
        s.execute(insert(Deployment), deployment_rows(ids, "dp_orm_"))
        insert_rows(s, Deployment, deployment_rows(ids, "dp_blk_"))
    assert [r[2:] for r in read(db, "dp_blk_")] == [r[2:] for r in read(db, "dp_orm_")]
    rows = deployment_rows(ids, "dp_bad_")
    rows[6]["workload_id"] = "wl_missing"
    with pytest.raises(IntegrityError), db.session() as s:
        insert_rows(s, Deployment, rows)
    assert read(db, "dp_bad_") == []


def test_an_autoincrement_key_is_filled_by_the_database(db: Database) -> None:
    rows = [
        {
            "at": utcnow(),
            "actor": "webhook:push",
            "action": "workload.deploy",
            "target_type": "workload",
            "target_id": f"wl_{i}",
            "details": {"deployment": f"dp_{i}"},
        }
        for i in range(3)
    ]
    with db.session() as s:
        insert_rows(s, AuditEntry, rows)
    with db.session() as s:
        found = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [e.target_id for e in found][-3:] == ["wl_0", "wl_1", "wl_2"]
    assert len({e.id for e in found}) == len(found)


def test_a_bulk_write_bumps_the_generation_of_a_watched_table_at_commit(db: Database) -> None:
    workload_ids(db, 1)
    with db.session() as s:
        project_id = s.scalars(select(Project.id)).one()
    rows = [
        {
            "id": f"wl_blk_{i}",
            "kind": "image",
            "ref_id": f"wl_blk_{i}",
            "name": f"bulk{i}",
            "project_id": project_id,
            "stage": "production",
            "config": {"image": "x"},
        }
        for i in range(2)
    ]
    before = dict(db.generations)
    with db.session() as s:
        insert_rows(s, Workload, rows)
        assert db.generations == before  # not before the commit
    assert db.generations == {**before, "listing": before["listing"] + 1}
    with db.session() as s:  # deployments are watched by the deploy queue alone
        insert_rows(s, Deployment, deployment_rows(["wl_blk_0"], "dp_gen_"))
    assert db.generations == {
        **before,
        "listing": before["listing"] + 1,
        "queue": before["queue"] + 1,
    }


def test_a_bad_row_fails_the_whole_batch_and_leaves_nothing(db: Database) -> None:
    ids = workload_ids(db, 3)
    rows = deployment_rows(ids, "dp_bad_")
    rows[2]["workload_id"] = "wl_missing"  # no such parent row
    rows[1]["id"] = rows[0]["id"]  # and a duplicate key
    with pytest.raises(IntegrityError), db.session() as s:
        insert_rows(s, Deployment, rows)
    assert read(db, "dp_bad_") == []


def test_nothing_to_write_is_no_statement_and_an_unknown_column_is_refused(db: Database) -> None:
    with db.session() as s:
        insert_rows(s, Deployment, [])
        with pytest.raises(ValueError, match="no column 'colour'"):
            insert_rows(s, Deployment, [{"id": "dp_x", "colour": "red"}])


def test_select_rows_gives_what_the_orm_reads_in_one_driver_step(db: Database) -> None:
    """Every column type of a deployment (text with quotes and non-ASCII, enum, bool,
    JSON, aware instants, NULL) reads back as the ORM reads it; on SQLite the driver
    steps once however many rows match."""
    ids = workload_ids(db, 30)
    with db.session() as s:
        insert_rows(s, Deployment, deployment_rows(ids, "dp_sel_"))
    columns = [getattr(Deployment, c) for c in ["id", "created_at", "finished_at", *COLUMNS]]
    steps: list[str] = []
    with db.session() as s:
        connection = s.connection()
        listen = event.listens_for(connection, "before_cursor_execute")
        listen(lambda *args: steps.append(args[2]))
        got = bulk.select_rows(s, select(*columns).where(Deployment.id.like("dp_sel_%")))
        orm = [tuple(r) for r in s.execute(select(*columns).where(Deployment.id.like("dp_sel_%")))]
        empty = bulk.select_rows(s, select(*columns).where(Deployment.id == "none"))
    assert len(got) == 30 and sorted(got) == sorted(orm)
    assert all(r[1].tzinfo is not None and r[2] is None for r in got)
    assert {type(r[COLUMNS.index("pull") + 3]) for r in got} == {bool}
    assert empty == []
    if db.engine.dialect.name == "sqlite":
        assert "json_group_array" in steps[0]


class Ratio(TypeDecorator[float]):
    impl = Float
    cache_ok = True


@pytest.mark.parametrize(
    "column",
    [
        literal(b"x", LargeBinary).label("blob"),
        literal(0.1, Float).label("ratio"),
        literal(0.1, Ratio()).label("decorated"),
        literal_column("1"),
    ],
    ids=["binary", "float", "decorated-float", "untyped"],
)
def test_select_rows_refuses_a_column_json_cannot_carry_exactly(db: Database, column: Any) -> None:
    with db.session() as s, pytest.raises(ValueError, match="cannot pass through JSON"):
        bulk.select_rows(s, select(column))


def test_select_rows_carries_a_bare_number_in_json_exactly_and_sees_unflushed_rows(
    db: Database,
) -> None:
    """SQLite stores a JSON column's bare number as a REAL (the column's NUMERIC affinity)
    and writes a REAL into JSON with 15 digits: it is carried with 17. A row added to the
    session and not yet flushed is read, as ``session.execute`` reads it."""
    ids = workload_ids(db, 3)
    rows = deployment_rows(ids, "dp_num_")
    for row, value in zip(rows, [0.1 + 0.2, 12345678901234567890, [1.0, 2.5e-300]], strict=True):
        row["artifact"] = value
    with db.session() as s:
        insert_rows(s, Deployment, rows)
        s.add(Deployment(id="dp_num_late", workload_id=ids[0], reason="r", artifact={"a": 1}))
        stmt = select(Deployment.id, Deployment.artifact).where(Deployment.id.like("dp_num_%"))
        got = sorted(bulk.select_rows(s, stmt))
        orm = sorted(tuple(r) for r in s.execute(stmt))
    assert got == orm and len(got) == 4
    assert dict(got)["dp_num_000"] == 0.1 + 0.2


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # SQLITE_MAX_LENGTH is SQLite's
def test_a_list_too_large_for_one_sqlite_string_is_read_row_by_row(db: Database) -> None:
    ids = workload_ids(db, 20)
    with db.session() as s:
        insert_rows(s, Deployment, deployment_rows(ids, "dp_big_"))
        driver = s.connection().connection.driver_connection
        assert driver is not None
        driver.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 500)  # a row fits; 20 do not
        stmt = select(Deployment.id, Deployment.reason, Deployment.created_at).where(
            Deployment.id.like("dp_big_%")
        )
        got = sorted(bulk.select_rows(s, stmt))
        orm = sorted(tuple(r) for r in s.execute(stmt))
    assert got == orm and len(got) == 20
