"""``python -m moorage.store.migrate``: bring the database at ``$MOORAGE_MIGRATE_URL``
to the newest schema (``db.migrate``), in a process of its own (``db.migrate_apart``:
Alembic then never stays in the server's memory)."""

from __future__ import annotations

import os

from moorage.store.db import MIGRATE_URL, make_engine, migrate


def main() -> None:
    engine = make_engine(os.environ[MIGRATE_URL])
    try:
        migrate(engine)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
