"""The database engine and session factory; SQLite runs in WAL mode with foreign keys on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from moorage.store.priority import Priority
from moorage.store.tables import Base

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD = "0018"
"""The newest revision in ``migrations/versions`` (``tests/unit/store/test_migrations.py``
holds it to Alembic's own head): a database stamped with it needs no migration, so the
server starts without importing Alembic (about 10 MiB of its idle RSS, SPEC section 10)."""
# Tables whose commits bump a generation, and which: readers cache what they derive from
# a group for as long as its generation stays the same.
WATCHED = {
    "workloads": "listing",
    "projects": "listing",
    "users": "credentials",
    "api_tokens": "credentials",
    "sessions": "credentials",  # web sessions
    "triggers": "hooks",  # which webhook tokens exist (api/cache.HookTokens)
    "deployments": "queue",  # whether anything is queued (deployer/queue.DeployQueue)
}
UNREAD = {
    "triggers": frozenset({"last_fired_at", "next_run_at", "updated_at"}),
    "api_tokens": frozenset({"last_used_at"}),
    "deployments": frozenset({"log"}),
}
"""Columns of a ``WATCHED`` table that no reader of its group derives anything from: an
update that sets only these leaves the generation alone. Every webhook delivery writes
its trigger's ``last_fired_at``, and so made the next call read every token again on a
worker thread (``bench list_under_load``: a thread hop behind a busy event loop); a
token's use every ``LAST_USED_EVERY`` emptied every cached credential."""
TOUCHED = "moorage.touched"


# Connections kept open for reuse. Every API worker thread, deploy worker and trigger
# runner may hold one at once; past the pool each request would open (and set up) a
# connection and close it again, which under load costs more than the query.
POOL_SIZE = {"sqlite": 48, "other": 16}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=POOL_SIZE["sqlite"],
            max_overflow=16,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE["other"], max_overflow=16)


def alembic_config() -> Config:
    """Alembic's config for Moorage's migrations (no ``alembic.ini``: the script location
    is set here); the caller hands it a connection in ``attributes["connection"]``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision.

    A database with no table at all gets the schema straight from ``tables.Base`` and
    is stamped at head, as Alembic's cookbook does it ("Building an Up to Date Database
    from Scratch"): migrations change what exists, and there is nothing yet (their data
    steps have no rows to change). ``tests/unit/store/test_migrations.py`` holds both
    ways to the same schema. Any other database runs the migrations it lacks; one
    stamped at ``HEAD`` is left as it is.
    """
    if stamped(engine) == HEAD:
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if inspect(conn).get_table_names():
            command.upgrade(cfg, "head")
        else:
            Base.metadata.create_all(conn)
            command.stamp(cfg, "head")


MIGRATE_URL = "MOORAGE_MIGRATE_URL"


class MigrationFailed(RuntimeError):
    """A migration run apart (``migrate_apart``) failed; the message ends with its last
    lines of output."""


def migrate_apart(url: str) -> None:
    """``migrate`` the database at ``url`` in a child process (``python -m
    moorage.store.migrate``), so that Alembic, about 8 MiB once imported, never stays in
    the server (SPEC section 8: idle RSS). The URL goes by the environment, never the
    command line, where a PostgreSQL password would show in ``ps``. Raises
    MigrationFailed."""
    done = subprocess.run(
        [sys.executable, "-m", "moorage.store.migrate"],
        env={**os.environ, MIGRATE_URL: url},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise MigrationFailed(f"the database could not be migrated to revision {HEAD}:\n{tail}")


def stamped(engine: Engine) -> str | None:
    """The revision the database is stamped with (Alembic's ``alembic_version`` table),
    or None when there is none or more than one (branches: Alembic decides)."""
    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def note_write(session: Session, table: str | None) -> None:
    """Count a write to ``table`` in ``session`` for ``Database.generations`` (bumped at
    its commit). ORM writes are counted by the session's events; a write sent to the
    driver directly (``store.bulk``) says so here."""
    group = WATCHED.get(table or "")
    if group is not None:
        session.info.setdefault(TOUCHED, set()).add(group)


def _read_change(obj: Any) -> bool:
    """Whether a flushed object changed a column its group's readers read (``UNREAD``)."""
    unread = UNREAD.get(type(obj).__tablename__, frozenset())
    state = inspect(obj)
    return any(attr.key not in unread and attr.history.has_changes() for attr in state.attrs)


def _sets_only_unread(table: str | None, state: ORMExecuteState) -> bool:
    """Whether an UPDATE statement (``.values()``, or parameter sets by primary key) sets
    only ``UNREAD`` columns of ``table``; False when it cannot tell."""
    unread = UNREAD.get(table or "")
    if not unread:
        return False
    named = {getattr(k, "key", k) for k in (getattr(state.statement, "_values", None) or {})}
    sets = state.parameters if isinstance(state.parameters, list) else [state.parameters or {}]
    keys = [p for p in sets if isinstance(p, dict)]
    if len(keys) != len(sets):
        return False
    primary = {c.key for c in state.bind_mapper.primary_key} if state.bind_mapper else set()
    for params in keys:
        named |= set(params) - primary
    return bool(named) and named <= unread


class Database:
    """One engine and its session factory; ``session()`` commits or rolls back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self.generations = dict.fromkeys(sorted(set(WATCHED.values())), 0)
        """Per group of ``WATCHED`` tables, bumped after every commit that changed one of
        its rows: readers may cache what they derive from a group for as long as its
        generation stays the same. Valid for this process only (one Moorage process per
        database; the offline commands only add users and tokens, never change them)."""
        self._lock = threading.Lock()
        event.listen(self._factory, "before_flush", self._note_flush)
        event.listen(self._factory, "do_orm_execute", self._note_execute)
        event.listen(self._factory, "after_commit", self._note_commit)
        event.listen(self._factory, "after_rollback", self._note_rollback)
        self.priority = Priority()
        """Foreground blocks (webhook deliveries) ahead of background threads (deploy
        workers, reconcile): ``store/priority.py``."""
        self.priority.watch(self.engine)

    @property
    def generation(self) -> int:
        """The generation of workload and project rows (what workload lists show)."""
        return self.generations["listing"]

    def _note_flush(self, session: Session, _context: Any, _instances: Any = None) -> None:
        changed = [o for o in session.dirty if _read_change(o)]
        for obj in (*session.new, *changed, *session.deleted):
            note_write(session, type(obj).__tablename__)

    def _note_execute(self, state: ORMExecuteState) -> None:
        if state.is_update or state.is_delete or state.is_insert:
            name = getattr(getattr(state.statement, "table", None), "name", None)
            if not (state.is_update and _sets_only_unread(name, state)):
                note_write(state.session, name)

    def _note_commit(self, session: Session) -> None:
        # SQLAlchemy sends both events for a savepoint too (``begin_nested``), whose end
        # neither makes a write visible nor undoes the outer transaction's: a generation
        # moves at the outer commit only, and a savepoint rolled back keeps what was noted
        # (a generation that moves for nothing costs one extra read).
        if session.in_nested_transaction():
            return
        touched = session.info.pop(TOUCHED, set())
        if touched:
            with self._lock:
                for group in touched:
                    self.generations[group] += 1

    def _note_rollback(self, session: Session) -> None:
        if not session.in_nested_transaction():
            session.info.pop(TOUCHED, None)

    def migrate(self, *, apart: bool = False) -> None:
        """``migrate``; ``apart``: when there is anything to do, in a child process
        (``migrate_apart``: the server's way)."""
        if apart and stamped(self.engine) != HEAD:
            migrate_apart(self.url)
        else:
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits at the end of the block, or rolls back on an exception.

        A caller may commit early (to release a write before slow work) and go on.
        """
        with self._factory() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()

    def dispose(self) -> None:
        self.engine.dispose()
