"""Alembic environment: runs on the connection Moorage hands it (or the URL for autogenerate)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import String, create_engine

from moorage.store.tables import Base, State

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """A state column is a plain VARCHAR in a migration: a migration keeps the strings of
    its day, never an enum of the code (``tables.State``)."""
    if kind == "type" and isinstance(obj, State) and isinstance(obj.impl_instance, String):
        return f"sa.String(length={obj.impl_instance.length})"
    return False


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            render_as_batch=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


run()
