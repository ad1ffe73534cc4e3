"""An online, consistent copy of Moorage's own store, and loading it back (SPEC section 11).

Two stores, two tools, both the database's own:

    sqlite       SQLite's online backup API (``sqlite3.Connection.backup``): a reader's
                 snapshot of every page, taken while the server keeps writing.
    postgresql   ``pg_dump --format=custom``: one REPEATABLE READ transaction, so the dump
                 is the database at one instant while the server keeps writing
                 (PostgreSQL's documentation, "SQL Dump"). It comes back with
                 ``pg_restore --single-transaction --exit-on-error`` into an empty
                 database: all of it or nothing.

The password never goes on a command line (``ps`` shows those): the tools get it through
``PGPASSWORD``; the rest of the URL goes as a libpq connection URI, query options
(``sslmode``...) included. ``pg_dump`` must be at least the server's major version
(Debian's ``postgresql-client``); its own refusal is quoted in ``DumpFailed``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from moorage.errors import DumpFailed, InvalidInput
from moorage.settings import Settings

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
FILES = {SQLITE: "moorage.db", POSTGRESQL: "moorage.pgdump"}
"""The bundle member that holds each store's copy."""
TIMEOUT = 3600.0
"""Seconds a dump or a load may take before it counts as hung."""


def store_kind(settings: Settings) -> str:
    """``sqlite`` or ``postgresql``: which store ``MOORAGE_DATABASE_URL`` names.
    ``InvalidInput`` (``backup_unsupported``) for any other database."""
    backend = make_url(settings.database_url).get_backend_name()
    if backend in (SQLITE, POSTGRESQL):
        return backend
    raise InvalidInput(
        f"instance backups cover SQLite and PostgreSQL stores, not {backend}",
        code="backup_unsupported",
    )


def sqlite_path(settings: Settings) -> Path:
    """The file of a SQLite store."""
    database = make_url(settings.database_url).database
    assert database, "a SQLite store names its file"
    return Path(database)


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """The store's URL as a libpq URI without the password, and an environment that
    carries the password (``PGPASSWORD``) when the URL has one."""
    url = make_url(settings.database_url)
    env = dict(os.environ)  # PGPASSFILE, PGSSLROOTCERT...: what the server's driver reads too
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(tool: str, args: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            [tool, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise DumpFailed(
            f"{tool} is not installed: install Debian's postgresql-client (the same major "
            "version as the server, or newer)"
        ) from None
    except subprocess.TimeoutExpired:
        raise DumpFailed(f"{tool} ran over {TIMEOUT:.0f} s and was stopped") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[-500:] or f"exit code {done.returncode}"
        raise DumpFailed(f"{tool} failed: {said}")


def dump(settings: Settings, dest: Path) -> None:
    """Write an online, consistent copy of the store to ``dest`` (a new file): a SQLite
    database file or a ``pg_dump`` custom-format archive. Raises ``DumpFailed`` (the
    tool's or SQLite's error quoted)."""
    if store_kind(settings) == SQLITE:
        try:
            src = sqlite3.connect(f"file:{sqlite_path(settings)}?mode=ro", uri=True)
            try:
                dst = sqlite3.connect(dest)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.Error as exc:  # a full disk, a locked or damaged file
            raise DumpFailed(f"SQLite's backup of the store failed: {exc}") from exc
        return
    uri, env = _libpq(settings)
    _run(
        "pg_dump",
        ["--format=custom", "--no-owner", "--no-privileges", f"--file={dest}", f"--dbname={uri}"],
        env,
    )


def postgres_tables(settings: Settings) -> list[str]:
    """The tables the PostgreSQL store already holds (an instance restore needs none)."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    except Exception as exc:  # the driver's own errors: unreachable, no such database
        raise DumpFailed(f"cannot open the PostgreSQL store: {exc}") from exc
    finally:
        engine.dispose()


def load_postgres(settings: Settings, source: Path) -> None:
    """Load a ``pg_dump`` archive into the (empty) PostgreSQL store in one transaction:
    a failure leaves the database as empty as it was. Raises ``DumpFailed``."""
    uri, env = _libpq(settings)
    _run(
        "pg_restore",
        [
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={uri}",
            str(source),
        ],
        env,
    )
