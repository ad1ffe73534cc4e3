"""The database engine and session factory; SQLite runs in WAL mode with foreign keys on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
WATCHED = frozenset({"workloads", "projects"})


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """One engine and its session factory; ``session()`` commits or rolls back."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self.generation = 0
        """Bumped after every commit that changed a workload or project row: readers may
        cache a rendering of those tables for as long as it stays the same. Valid for
        this process only (one Moorage process per database)."""
        self._lock = threading.Lock()
        event.listen(self._factory, "before_flush", self._note_flush)
        event.listen(self._factory, "do_orm_execute", self._note_execute)
        event.listen(self._factory, "after_commit", self._note_commit)
        event.listen(self._factory, "after_rollback", self._note_rollback)

    def _note_flush(self, session: Session, _context: Any, _instances: Any = None) -> None:
        changed = [o for o in session.dirty if session.is_modified(o)]
        for obj in (*session.new, *changed, *session.deleted):
            if type(obj).__tablename__ in WATCHED:
                session.info["moorage.touched"] = True
                return

    def _note_execute(self, state: ORMExecuteState) -> None:
        if state.is_update or state.is_delete or state.is_insert:
            table = getattr(state.statement, "table", None)
            if getattr(table, "name", None) in WATCHED:
                state.session.info["moorage.touched"] = True

    def _note_commit(self, session: Session) -> None:
        if session.info.pop("moorage.touched", False):
            with self._lock:
                self.generation += 1

    def _note_rollback(self, session: Session) -> None:
        session.info.pop("moorage.touched", None)

    def migrate(self) -> None:
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
