"""Management commands that work on MOORAGE_DATA_DIR directly, like a createsuperuser."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from moorage.store.db import Database

from moorage.security.roles import Actor

admin_app = typer.Typer(help="User management on the local data directory (offline).")
token_app = typer.Typer(help="API tokens, created on the local data directory (offline).")

CLI_ACTOR = Actor(user_id="", username="cli", role="admin", via="cli")


def _store() -> Database:
    # Imported here so that HTTP commands of the CLI start fast.
    from moorage.server import open_store
    from moorage.settings import Settings

    return open_store(Settings.from_env())


@admin_app.command("create")
def admin_create(
    username: Annotated[str, typer.Option(help="Login name")],
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a user in the local database."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    from moorage.services import users

    db = _store()
    try:
        with db.session() as session:
            user = users.create(session, CLI_ACTOR, username=username, role=role, password=password)
            print(f"created {user.role} {user.username}")
    finally:
        db.dispose()


@token_app.command("create")
def token_create(
    username: Annotated[str, typer.Option(help="The user the token acts as")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by")] = "cli",
) -> None:
    """Create an API token; it is printed once, as the last line."""
    from moorage.services import users

    _refuse_missing_database()
    db = _store()
    try:
        with db.session() as session:
            user = users.get_by_name(session, username)
            token, _ = users.create_token(session, CLI_ACTOR, user, name)
        print(f"token for {username} ({user.role}); it is shown only once:", file=sys.stderr)
        print(token)
    finally:
        db.dispose()


def _refuse_missing_database() -> None:
    """A token only makes sense in the server's database: never create an empty one."""
    from sqlalchemy.engine import make_url

    from moorage.cli.client import CliError
    from moorage.settings import Settings

    settings = Settings.from_env()
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not Path(url.database).is_file():
        raise CliError(
            f"no Moorage database at {url.database}: set MOORAGE_DATA_DIR to the directory "
            "'moorage serve' uses (it creates the database on its first start)"
        )
