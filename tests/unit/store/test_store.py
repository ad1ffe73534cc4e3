"""The store on SQLite, and on PostgreSQL when MOORAGE_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import IntegrityError

from moorage.errors import Conflict
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM
from moorage.services import chain, projects, triggers, users, workloads
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.tables import Base, Binding, Workload

PG_URL = os.environ.get("MOORAGE_TEST_DATABASE_URL")
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="MOORAGE_TEST_DATABASE_URL not set"),
        ],
    ),
]
IMAGE = {"image": "moorage-test/httpd:1"}
SETTINGS = Settings(data_dir=Path("/nonexistent/moorage"))


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A database of this run's own on the test cluster, dropped afterwards."""
    assert PG_URL
    name = f"moorage_test_{os.getpid()}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'moorage.db'}")
        database.migrate()
    else:
        database = Database(request.getfixturevalue("pg_url"))
        rebuilt(database)
    yield database
    database.dispose()


def rebuilt(database: Database) -> None:
    """Drop every table of ``database`` (a PostgreSQL one keeps an earlier test's) and
    migrate it anew."""
    with database.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    database.migrate()


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


def test_migrations_create_every_table_and_are_idempotent(db: Database) -> None:
    db.migrate()
    names = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    assert "alembic_version" in names


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.dispose()


def test_ref_id_defaults_to_own_id_and_siblings_coexist(db: Database, registry: Registry) -> None:
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop")
        a = workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="a",
            kind="image",
            project="shop",
            stage="production",
            config=IMAGE,
        )
        b = workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="b",
            kind="image",
            project="shop",
            stage="production",
            config=IMAGE,
        )
    assert a.ref_id == a.id and b.ref_id == b.id and a.id != b.id
    with db.session() as s:
        assert {w.id for w in workloads.list_filtered(s, project="shop")} == {a.id, b.id}


def test_database_enforces_kind_ref_id_and_stage_name_uniqueness(
    db: Database, registry: Registry
) -> None:
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop")
        first = workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="a",
            kind="image",
            project="shop",
            stage="production",
            config=IMAGE,
            ref_id="shared",
        )
        project_id = first.project_id
    # The constraints hold even for a writer that skips the service checks.
    for clash in (
        Workload(
            id="wl_x1",
            kind="image",
            ref_id="shared",
            name="other",
            project_id=project_id,
            stage="staging",
            config=IMAGE,
        ),
        Workload(
            id="wl_x2",
            kind="image",
            ref_id="fresh",
            name="a",
            project_id=project_id,
            stage="production",
            config=IMAGE,
        ),
    ):
        with pytest.raises(IntegrityError), db.session() as s:
            s.add(clash)
            s.flush()
    with db.session() as s:
        # The same ref_id under another kind is fine.
        workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="c",
            kind="compose",
            project="shop",
            stage="production",
            ref_id="shared",
            config={"compose": "services:\n  web:\n    image: x\n"},
        )
    with pytest.raises(Conflict), db.session() as s:
        workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="d",
            kind="image",
            project="shop",
            stage="staging",
            config=IMAGE,
            ref_id="shared",
        )


def test_trigger_kind_name_unique_and_delete_cascades(db: Database, registry: Registry) -> None:
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop")
        w = workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="a",
            kind="image",
            project="shop",
            stage="production",
            config=IMAGE,
        )
        t = triggers.create(s, SYSTEM, registry, kind="webhook", name="push", config={})
        triggers.bind(s, SYSTEM, w.id, t.id)
        other = workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="b",
            kind="image",
            project="shop",
            stage="production",
            config=IMAGE,
        )
        chain.replace(s, SYSTEM, other.id, [w.id])
    with pytest.raises(Conflict), db.session() as s:
        triggers.create(s, SYSTEM, registry, kind="webhook", name="push", config={})
    with db.session() as s:
        workloads.delete(s, SYSTEM, w.id)
    with db.session() as s:
        assert s.get(Binding, (t.id, w.id)) is None
        assert chain.read(s, other.id) == []
        assert triggers.bound_workloads(s, t.id) == []


def test_timestamps_come_back_timezone_aware(db: Database) -> None:
    with db.session() as s:
        user = users.create(s, SYSTEM, username="ann", role="viewer", password="long-password")
    with db.session() as s:
        again = users.get_by_name(s, "ann")
        assert again.created_at.tzinfo is UTC
        assert abs((again.created_at - user.created_at).total_seconds()) < 1


def test_tokens_are_stored_as_digests(db: Database) -> None:
    with db.session() as s:
        user = users.create(s, SYSTEM, username="ann", role="operator", password="long-password")
        token, row = users.create_token(s, SYSTEM, user)
    assert token not in row.token_hash
    with db.session() as s:
        actor = users.actor_for_token(s, token)
        assert (actor.username, actor.role) == ("ann", "operator")
        stored = s.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
        assert token not in stored


def test_generation_moves_exactly_when_workloads_or_projects_change(
    tmp_path: Path, registry: Registry
) -> None:
    from sqlalchemy import update

    from moorage.store.tables import Workload as W

    db = Database(f"sqlite:///{tmp_path / 'g.db'}")
    db.migrate()
    g0 = db.generation
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop")
    assert db.generation == g0 + 1
    with db.session() as s:
        w = workloads.create(
            s,
            SYSTEM,
            registry,
            SETTINGS,
            name="a",
            kind="image",
            project="shop",
            stage="production",
            config=IMAGE,
        )
    g1 = db.generation
    assert g1 > g0 + 1
    with db.session() as s:
        users.create(s, SYSTEM, username="ann", role="viewer", password="long-password")
    assert db.generation == g1  # other tables do not invalidate workload listings
    with db.session() as s:
        s.get(W, w.id).status = s.get(W, w.id).status  # no real change
    assert db.generation == g1
    with db.session() as s:
        s.execute(update(W).where(W.id == w.id).values(status="running"))
    assert db.generation == g1 + 1
    with pytest.raises(RuntimeError), db.session() as s:
        s.get(W, w.id).status = "failed"
        s.flush()
        raise RuntimeError("rolled back")
    assert db.generation == g1 + 1
    with db.session() as s:
        workloads.delete(s, SYSTEM, w.id)
    assert db.generation == g1 + 2
    db.dispose()


def test_a_savepoint_moves_no_generation_and_forgets_no_write_of_its_transaction(
    tmp_path: Path,
) -> None:
    """SQLAlchemy sends ``after_commit`` and ``after_rollback`` at a savepoint's end too:
    a generation moves at the outer commit only (a reader between would keep what it read
    for a generation that never moves again), and a savepoint rolled back does not undo
    the outer transaction's writes (helper pass on the deploy queue, session 19)."""
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.migrate()
    before = dict(db.generations)
    with db.session() as s:  # users.create flushes in a savepoint (guard.flush_or_conflict)
        user = users.create(s, SYSTEM, username="sp", role="viewer", password="long-password")
        assert db.generations == before
    assert db.generations == {**before, "credentials": before["credentials"] + 1}
    with db.session() as s:
        users.update(s, SYSTEM, user.id, role="operator")
        s.flush()
        s.begin_nested().rollback()
    assert db.generations == {**before, "credentials": before["credentials"] + 2}
    db.dispose()


def test_changes_of_users_tokens_and_sessions_bump_the_credentials_generation(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate()

    def after(change: Any) -> tuple[int, int]:
        before = dict(db.generations)
        with db.session() as s:
            change(s)
        return (
            db.generations["credentials"] - before["credentials"],
            db.generations["listing"] - before["listing"],
        )

    made: dict[str, Any] = {}
    assert after(
        lambda s: made.update(
            user=users.create(s, SYSTEM, username="cid", role="viewer", password="long-password")
        )
    ) == (1, 0)
    assert after(lambda s: made.update(token=users.create_token(s, SYSTEM, made["user"]))) == (1, 0)
    assert after(lambda s: users.update(s, SYSTEM, made["user"].id, role="operator")) == (1, 0)
    assert after(lambda s: made.update(login=users.login(s, "cid", "long-password"))) == (1, 0)
    # A token's first use is recorded (``last_used_at``), which no cached credential reads.
    assert after(lambda s: users.actor_for_token(s, made["token"][0])) == (0, 0)
    assert after(lambda s: users.actor_for_token(s, made["token"][0])) == (0, 0)  # a read
    assert after(lambda s: projects.create(s, SYSTEM, slug="shop")) == (0, 1)
    db.dispose()
