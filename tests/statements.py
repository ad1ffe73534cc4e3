"""The SQL a test's code sends to the store."""

from __future__ import annotations

from sqlalchemy import event

from moorage.store.db import Database


def statements(db: Database) -> list[str]:
    """The statements sent to ``db``'s engine from now on, in order, as the driver got them
    (the list grows for as long as the engine lives: a test's own store)."""
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen
