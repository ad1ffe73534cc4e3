"""Many rows of one table in one driver call, for the paths that must answer fast.

``session.execute(insert(Table), rows)`` runs each value of each row through its
column type's bind processor in Python (a JSON column dumps every dict again, a
datetime column formats every instant again): for a 200-row fan-out that is most of the
request. ``insert_rows`` does the same INSERT with the values processed by the same
processors, but a value shared by every row (the reason, the instant, the status) is
processed once, and the statement goes to the driver's ``executemany`` directly.
The rows are the same bytes SQLAlchemy would write: the processors are the column
types' own (SQLAlchemy 2 ``TypeEngine.bind_processor``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from moorage.store.db import note_write
from moorage.store.tables import Base


def _default(table: Table, name: str) -> Any:
    """The Python-side default of a column not given by the caller (``None`` when it
    has none: the column is nullable, or the database fills it)."""
    default = table.c[name].default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if getattr(default, "is_callable", False) and callable(arg):
        return arg(None)  # SQLAlchemy wraps a no-argument callable to take a context
    return arg


def insert_rows(session: Session, mapped: type[Base], rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts keyed by column name, all with the same keys) into the
    table of ``mapped`` (an ORM class of ``store.tables``) in the session's transaction,
    with one ``executemany``.

    Columns the rows leave out get their Python-side default (evaluated once for all
    rows); an autoincrement primary key left out is filled by the database. The write
    counts for ``Database.generations`` like an ORM write. Raises what the driver raises
    (an ``IntegrityError`` for a duplicate key or a missing parent row).
    """
    if not rows:
        return
    table = cast(Table, mapped.__table__)
    given = list(rows[0])
    unknown = [name for name in given if name not in table.c]
    if unknown:
        raise ValueError(f"no column {unknown[0]!r} in table {table.name!r}")
    auto = {c.name for c in table.primary_key.columns if c.autoincrement is True}
    filled = {
        c.name: _default(table, c.name)
        for c in table.columns
        if c.name not in given and c.name not in auto
    }
    names = given + list(filled)
    connection = session.connection()
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    processors: dict[str, Callable[[Any], Any] | None] = {
        name: table.c[name].type._cached_bind_processor(dialect) for name in names
    }

    def process(name: str, value: Any) -> Any:
        processor = processors[name]
        return value if processor is None or value is None else processor(value)

    shared: dict[str, Any] = {name: process(name, value) for name, value in filled.items()}
    first = rows[0]
    for name in given:
        if all(row[name] is first[name] for row in rows):
            shared[name] = process(name, first[name])
    varying = [name for name in given if name not in shared]
    params = [{**shared, **{name: process(name, row[name]) for name in varying}} for row in rows]
    order = compiled.positiontup
    driver_params: list[Any] = (
        params if order is None else [tuple(p[name] for name in order) for p in params]
    )
    connection.exec_driver_sql(compiled.string, driver_params)
    note_write(session, table.name)
