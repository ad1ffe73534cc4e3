"""Turn a lost uniqueness race in the database into a Conflict."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moorage.errors import Conflict


def flush_or_conflict(session: Session, message: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(message, code="duplicate") from None
