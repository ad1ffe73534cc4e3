"""Many rows of one table in one statement, for the paths that must answer fast.

``session.execute(insert(Table), rows)`` runs each value of each row through its
column type's bind processor in Python (a JSON column dumps every dict again, a
datetime column formats every instant again): for a 200-row fan-out that is most of the
request. ``insert_rows`` does the same INSERT with the values processed by the same
processors, but a value shared by every row (the reason, the instant, the status) is
processed once. The rows are the same bytes SQLAlchemy would write: the processors are
the column types' own (SQLAlchemy 2 ``TypeEngine.bind_processor``).

The rows go as one multi-row ``INSERT ... VALUES (...), (...)`` (SQLAlchemy's
multi-values insert, compiled once per shape), not as an ``executemany``: the sqlite3
driver releases the GIL around every row it steps, and a thread that gives the GIL back
200 times waits up to a switch interval (5 ms) to get it back each time when other
threads are busy, so under a concurrent read load a 200-row ``executemany`` took 100 to
230 ms of wall time for 10 ms of CPU. One statement gives it back once.

Reading has the same trap: the driver steps (and gives the GIL back) once per row it
fetches, so ``select_rows`` reads a many-row SELECT on SQLite as one row holding a JSON
array of the rows (``json_group_array``, SQLite's JSON1 functions, built in since 3.38).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    select,
)
from sqlalchemy.exc import DataError, OperationalError
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


# Bound parameters per statement: SQLite's SQLITE_MAX_VARIABLE_NUMBER is 32766 since
# 3.32 and PostgreSQL's protocol carries at most 65535; a larger batch is split.
MAX_PARAMETERS = 32000


@lru_cache(maxsize=64)
def _statement(
    table: Table, names: tuple[str, ...], count: int, dialect: Dialect
) -> tuple[str, tuple[str, ...] | None]:
    """The SQL of an INSERT of ``count`` rows of ``names`` into ``table`` and the order of
    its positional parameters (``None`` for a driver that takes them by name); parameter
    ``<column>_<row>`` holds row ``row``'s value of ``column``."""
    values: list[dict[str, Any]] = [{n: bindparam(f"{n}_{i}") for n in names} for i in range(count)]
    compiled = insert(table).values(values).compile(dialect=dialect)
    order = compiled.positiontup
    return compiled.string, None if order is None else tuple(order)


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
    per_statement = max(1, MAX_PARAMETERS // len(names))
    for start in range(0, len(params), per_statement):
        batch = params[start : start + per_statement]
        sql, order = _statement(table, tuple(names), len(batch), dialect)
        flat = {f"{n}_{i}": value for i, p in enumerate(batch) for n, value in p.items()}
        connection.exec_driver_sql(sql, flat if order is None else tuple(flat[k] for k in order))
    note_write(session, table.name)


@dataclass(frozen=True)
class Fetched:
    """The rows of a SELECT as the driver gave them, and the way to the ORM's values.

    ``raw`` holds each row as it came: from SQLite JSON scalars (text, numbers, None),
    so equal rows are equal, hashable tuples that cost nothing to compare (a cache can
    key on them and process only the rows it has not seen); from other databases, and
    from SQLite's row-by-row fallback, the values already processed (dicts for JSON:
    key them with ``renderings.row_key``). ``values(raw_row)`` gives the ORM's values."""

    names: tuple[str, ...]
    """The selected columns' keys, in order."""
    raw: list[tuple[Any, ...]]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def values(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        """``raw`` (one of ``self.raw``) as the ORM would give it."""
        return tuple(
            value if processor is None or value is None else processor(value)
            for processor, value in zip(self.processors, raw, strict=True)
        )


CARRIED = (String, Integer, Boolean, DateTime, JSON)
"""Column type affinities ``fetch_rows`` carries exactly through SQLite's JSON text: text,
integers (JSON1 writes a 64-bit integer in full), booleans (0/1), instants (text) and JSON
(text; a bare REAL inside one goes as 17 significant digits, enough for any double)."""


def fetch_rows(session: Session, stmt: Select[*tuple[Any, ...]]) -> Fetched:
    """The rows of ``stmt`` (a Core SELECT of columns) **in no particular order**: sort
    them. On SQLite they come back in one driver step (see the module docstring); other
    databases fetch them as usual (psycopg fetches a result in one call). Pending ORM
    changes are flushed first, as ``session.execute`` does.

    Only columns of the ``CARRIED`` affinities (decorated types count by their
    ``impl``): anything else (binary, float, decimal, an untyped expression) raises
    ``ValueError`` on every database, one contract: SQLite writes a REAL into JSON with
    15 significant digits. A result too large for one SQLite string (``SQLITE_MAX_LENGTH``,
    1e9 bytes by default), or a SQLite without the JSON functions, is fetched row by row
    instead. Raises what the driver raises.
    """
    names = tuple(str(getattr(c, "key", c)) for c in stmt.selected_columns)
    for name, column in zip(names, stmt.selected_columns, strict=True):
        affinity = column.type._type_affinity
        if affinity is None or not issubclass(affinity, CARRIED):
            raise ValueError(
                f"column {name!r} is {column.type!r}: it cannot pass through JSON exactly"
            )
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        rows = [tuple(row) for row in session.execute(stmt)]
        return Fetched(names, rows, (None,) * len(names))
    inner = stmt.subquery()
    columns = list(inner.c)
    carried = [
        # A JSON column may hold a bare REAL (SQLite's NUMERIC affinity made the text a
        # number): as text of 17 digits the column's processor reads it back exactly.
        case((func.typeof(c) == "real", func.printf("%!.17g", c)), else_=c)
        if issubclass(c.type._type_affinity or type(None), JSON)
        else c
        for c in columns
    ]
    processors = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
    try:  # a failed SELECT leaves a SQLite transaction as it was: no savepoint needed
        packed = session.execute(
            select(func.json_group_array(func.json_array(*carried))).select_from(inner)
        ).scalar_one()
    except (DataError, OperationalError):  # too big for one string, or no JSON1
        rows = [tuple(row) for row in session.execute(select(*columns).select_from(inner))]
        return Fetched(names, rows, (None,) * len(names))
    return Fetched(names, [tuple(row) for row in json.loads(packed)], processors)


def select_rows(session: Session, stmt: Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of ``stmt`` as tuples of the values the ORM would give (each column
    type's result processor applied: an instant is a ``datetime``, a JSON column a
    dict), **in no particular order**; fetched as ``fetch_rows`` fetches them (one driver
    step on SQLite), with its errors."""
    fetched = fetch_rows(session, stmt)
    return [fetched.values(row) for row in fetched.raw]
