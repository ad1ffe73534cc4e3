"""The migrations, on SQLite and on PostgreSQL when MOORAGE_TEST_DATABASE_URL is set.

Migration 0009 on a store with data: existing volumes are not shared, and each
workload's digests are those the code computes, so a change saved before the upgrade and
never deployed shows as pending after it, and nothing else does. The migrations build
the schema ``store/tables.py`` declares, and a fresh database made from those tables
(``Database.migrate``'s first start) is the same schema, stamped at head."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from moorage import program_output
from moorage.services import inputs, workloads
from moorage.store import db as db_module
from moorage.store.db import Database, alembic_config
from moorage.store.tables import Base, Volume, Workload
from tests.unit.store.test_store import BACKENDS, pg_url  # noqa: F401 (a fixture)

DEPLOYED = {"image": "moorage-test/httpd:1"}
EDITED = {"image": "moorage-test/httpd:2"}


def upgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'moorage.db'}"
        return
    found: str = request.getfixturevalue("pg_url")
    engine = create_engine(found)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS delivery_claims, alembic_version"))
    engine.dispose()
    yield found


def insert(conn: Any, table: str, **values: Any) -> None:
    names = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({marks})"), values)


def insert_workload(conn: Any, wid: str, config: dict[str, Any], now: str) -> None:
    """A workload of project ``pr_1`` (made with the first one) as an old schema held it."""
    if conn.execute(text("SELECT count(*) FROM projects WHERE id = 'pr_1'")).scalar() == 0:
        insert(
            conn,
            "projects",
            id="pr_1",
            slug="shop",
            description="",
            stages='["prod"]',
            created_at=now,
        )
    insert(
        conn,
        "workloads",
        id=wid,
        kind="image",
        ref_id=wid,
        name=wid.replace("_", "-"),
        project_id="pr_1",
        stage="prod",
        config=json.dumps(config),
        desired_state="running",
        status="running",
        host_powers="[]",
        created_at=now,
        updated_at=now,
    )


def test_0009_computes_the_digests_of_existing_workloads(url: str) -> None:
    engine = create_engine(url)
    upgrade(engine, "0008")
    now = "2024-01-01 00:00:00"
    with engine.begin() as conn:
        for wid, config in (("wl_same", DEPLOYED), ("wl_edited", EDITED), ("wl_new", DEPLOYED)):
            insert_workload(conn, wid, config, now)
            insert(conn, "env_vars", workload_id=wid, key="MODE", value="one", secret=False)
            insert(
                conn,
                "volumes",
                workload_id=wid,
                position=0,
                name="data",
                scope="stage",
                source=f"{wid}/data",
                target="/data",
                read_only=False,
            )
        ran = {
            "config": DEPLOYED,
            "env": {"MODE": "one"},
            "volumes": [
                {
                    "name": "data",
                    "scope": "stage",
                    "source": "SRC",
                    "target": "/data",
                    "read_only": False,
                }
            ],
        }
        for wid in ("wl_same", "wl_edited"):
            mine = {**ran, "volumes": [{**ran["volumes"][0], "source": f"{wid}/data"}]}
            insert(
                conn,
                "deployments",
                id=f"dp_{wid}",
                workload_id=wid,
                status="succeeded",
                reason="manual",
                pull=False,
                artifact='{"deployment": "x"}',
                inputs=json.dumps(mine),
                log="",
                created_at=now,
                finished_at=now,
            )
    upgrade(engine, "head")
    engine.dispose()

    db = Database(url)
    with db.session() as s:
        got = {w.id: w for w in s.query(Workload)}
        for w in got.values():
            assert w.saved_digest == inputs.digest(inputs.saved(s, w))
        assert got["wl_same"].deployed_digest == got["wl_same"].saved_digest
        assert got["wl_edited"].deployed_digest not in (None, got["wl_edited"].saved_digest)
        assert got["wl_new"].deployed_digest is None
        assert {w: workloads.pending_changes(got[w]) for w in got} == {
            "wl_same": False,
            "wl_edited": True,
            "wl_new": False,
        }
        assert {v.shared for v in s.query(Volume)} == {False}
    db.dispose()


def test_the_migrations_build_the_schema_the_tables_declare(url: str) -> None:
    """Every table, column and index declared in ``store/tables.py`` is made by the
    migrations and nothing else is (a model change without its migration fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        upgrade(engine, "head")
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def schema_of(engine: Engine) -> dict[str, Any]:
    """What a database holds, as reflection reads it back: per table its columns (type,
    nullability), primary key, indexes, unique constraints and foreign keys."""
    found = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        if table == "alembic_version":
            continue
        out[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"]) for c in found.get_columns(table)
            },
            "primary_key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
            "foreign_keys": sorted(
                (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    (f.get("options") or {}).get("ondelete"),
                )
                for f in found.get_foreign_keys(table)
            ),
        }
    return out


def test_a_fresh_database_gets_the_schema_the_migrations_build(url: str) -> None:
    """``Database.migrate`` makes an empty database from the tables and stamps it at head
    (not running 16 migrations on every first start): the schema is the one the
    migrations build, table by table, and a later upgrade finds nothing to do."""
    engine = create_engine(url)
    try:
        upgrade(engine, "head")
        migrated = schema_of(engine)
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    db = Database(url)
    db.migrate()
    try:
        assert schema_of(db.engine) == migrated
        with db.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        heads = ScriptDirectory.from_config(alembic_config()).get_heads()
        assert [version] == heads
        db.migrate()  # stamped at head: nothing left to run, nothing fails
        assert schema_of(db.engine) == migrated
    finally:
        db.dispose()


def test_the_head_the_server_skips_alembic_at_is_alembics_own() -> None:
    """``store.db.HEAD`` lets a server whose database is at it start without Alembic; a
    new migration whose revision it does not name would be skipped."""
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [db_module.HEAD]


def test_a_database_behind_head_is_still_migrated(tmp_path: Path) -> None:
    """A database stamped at an older revision runs what it lacks (the fast path is only
    for one at ``HEAD``)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0015")
        assert db_module.stamped(engine) == "0015"
        db_module.migrate(engine)
        assert db_module.stamped(engine) == db_module.HEAD
    finally:
        engine.dispose()


def test_a_migration_apart_upgrades_or_says_why_it_could_not(tmp_path: Path) -> None:
    """The server's way (``migrate(apart=True)``): an old database is brought to
    ``HEAD`` by a child process, with Alembic never in this one's ``sys.modules`` for
    it; a file that is not a database fails with the child's own last words."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    try:
        upgrade(engine, "0015")
    finally:
        engine.dispose()
    db = Database(url)
    db.migrate(apart=True)
    assert db_module.stamped(db.engine) == db_module.HEAD
    db.engine.dispose()
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(db_module.MigrationFailed, match="file is not a database"):
        db_module.migrate_apart(f"sqlite:///{tmp_path / 'junk.db'}")


def test_a_server_at_head_starts_without_alembic(tmp_path: Path) -> None:
    """Idle memory (SPEC section 10): Alembic and Mako stay out of a process whose
    database needs no migration."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Database(url).migrate()
    probe = (
        "import sys; from moorage.store.db import Database; "
        f"Database({url!r}).migrate(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


SECRET = "db password is hunter2"


def _migration_0017() -> Any:
    path = next(
        Path(alembic_config().get_main_option("script_location") or "").glob("versions/0017_*.py")
    )
    spec = importlib.util.spec_from_file_location("m0017", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("kind", "old"),
    [
        ("error", f"the container kept restarting (exit code 3); its last output: {SECRET}"),
        ("error", f"not healthy after 30 s: command exited 1: {SECRET}\nsecond {SECRET}"),
        ("error", f"after hook exited 2: {SECRET}"),
        ("error", f"the container exited (1); its last output: {SECRET}"),
        (
            "deployment_log",
            f"10:00:00 health: still waiting, 5 s of 30 s (command exited 1: {SECRET})",
        ),
        (
            "deployment_log",
            f"10:00:00 failed: command exited 1: {SECRET}\n{SECRET} again\n10:00:01 done",
        ),
        (
            "snapshot_log",
            f"before hook: started\n  {SECRET}\n  more {SECRET}\nbefore hook exited 0",
        ),
        ("snapshot_log", f"after hook exited 4: {SECRET}"),
    ],
)
def test_0017_marks_what_old_rows_hold_of_program_output(kind: str, old: str) -> None:
    """A viewer reads none of the output old rows held; an operator reads them as before;
    a row already marked is left alone, and marking twice changes nothing."""
    m = _migration_0017()
    mark = {
        "error": m.mark_error,
        "deployment_log": m.mark_deployment_log,
        "snapshot_log": m.mark_snapshot_log,
    }[kind]
    new = mark(old)
    assert "hunter2" not in program_output.redacted(new)
    assert program_output.revealed(new) == old
    assert mark(new) == new
    assert m.mark_warnings([old]) == [m.mark_error(old)]


@pytest.mark.parametrize(
    "plain",
    ["", None, "deployed 1 container", "10:00:00 pulling\n10:00:01 health: healthy"],
)
def test_0017_leaves_moorages_own_words_alone(plain: str | None) -> None:
    m = _migration_0017()
    for mark in (m.mark_error, m.mark_deployment_log, m.mark_snapshot_log):
        assert mark(plain) == plain


def test_0017_marks_old_rows_and_its_downgrade_unmarks_them(url: str) -> None:
    engine = create_engine(url)
    upgrade(engine, "0016")
    now = "2024-01-01 00:00:00"
    died = f"the container kept restarting (exit code 3); its last output: {SECRET}"
    log = f"10:00:00 deploying\n10:00:05 failed: {died}\n"
    snap_log = f"before hook: started\n  {SECRET}\nbefore hook exited 0"
    warned = [f"after hook exited 1: {SECRET}", "skipped a socket"]
    with engine.begin() as conn:
        insert_workload(conn, "wl_1", DEPLOYED, now)
        insert(
            conn,
            "deployments",
            id="dp_1",
            workload_id="wl_1",
            status="failed",
            reason="manual",
            pull=False,
            artifact="{}",
            inputs="{}",
            log=log,
            error=died,
            created_at=now,
            finished_at=now,
        )
        insert(
            conn,
            "snapshots",
            id="sn_1",
            workload_id="wl_1",
            origin="manual",
            mode="none",
            status="ready",
            volumes="[]",
            manifest="{}",
            warnings=json.dumps(warned),
            size=0,
            sha256="",
            progress_bytes=0,
            total_bytes=0,
            log=snap_log,
            created_at=now,
        )
    upgrade(engine, "head")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT log, error FROM deployments")).one()
        snap = conn.execute(text("SELECT log, warnings FROM snapshots")).one()
    warnings = json.loads(snap.warnings) if isinstance(snap.warnings, str) else snap.warnings
    for field in (row.log, row.error, snap.log, *warnings):
        assert "hunter2" not in program_output.redacted(field)
    assert program_output.revealed(row.error) == died
    assert program_output.revealed(row.log) == log
    assert [program_output.revealed(w) for w in warnings] == warned
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0016")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT log, error FROM deployments")).one()
        snap = conn.execute(text("SELECT log FROM snapshots")).one()
    assert (row.log, row.error, snap.log) == (log, died, snap_log)
    engine.dispose()
