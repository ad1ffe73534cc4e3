"""A workload's environment variables; secret values never leave through reads."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import audit, powers
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.settings import Settings
from moorage.store.tables import EnvVar

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
MAX_VALUE_BYTES = 64 * 1024
MAX_VARS = 500


def _storable(value: str) -> bool:
    try:
        encoded = value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\\ud800" escape
        return False
    return b"\x00" not in encoded and len(encoded) <= MAX_VALUE_BYTES


def rows(session: Session, workload_id: str) -> list[EnvVar]:
    """Stored variables with their values, secrets included: for deploys only."""
    return list(session.scalars(select(EnvVar).where(EnvVar.workload_id == workload_id)))


def read(session: Session, workload_id: str) -> dict[str, dict[str, Any]]:
    get_workload(session, workload_id)
    rows = session.scalars(
        select(EnvVar).where(EnvVar.workload_id == workload_id).order_by(EnvVar.key)
    )
    return {
        row.key: {"value": None if row.secret else row.value, "secret": row.secret} for row in rows
    }


def reveal(session: Session, actor: Actor, workload_id: str, key: str) -> EnvVar:
    """One stored variable, secret value included; a secret's reveal is audited (key only)."""
    get_workload(session, workload_id)
    row = session.scalar(select(EnvVar).where(EnvVar.workload_id == workload_id, EnvVar.key == key))
    if row is None:
        raise NotFound(f"workload {workload_id} has no variable {key!r}")
    if row.secret:
        audit.record(session, actor, AuditAction.ENV_REVEAL, "workload", workload_id, {"key": key})
    return row


def replace(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    workload_id: str,
    wanted: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Replace the whole set. A secret sent back with value null keeps its stored value.

    The env is part of what Docker runs (``${NAME}`` in a Compose file resolves to it), so
    the new set passes the host-power review as a config change does.
    """
    workload = get_workload(session, workload_id)
    if len(wanted) > MAX_VARS:
        raise InvalidInput(f"at most {MAX_VARS} variables per workload", code="invalid_env")
    existing = {
        row.key: row
        for row in session.scalars(select(EnvVar).where(EnvVar.workload_id == workload_id))
    }
    clean: dict[str, tuple[str, bool]] = {}
    for key, entry in wanted.items():
        if not KEY_RE.fullmatch(key):
            raise InvalidInput(
                f"variable name {key!r} must be letters, digits and '_', not starting with a digit",
                code="invalid_env",
            )
        value, secret = entry["value"], bool(entry["secret"])
        if value is None:
            old = existing.get(key)
            if old is None or not old.secret:
                raise InvalidInput(
                    f"variable {key!r} needs a value (null only keeps an existing secret)",
                    code="invalid_env",
                )
            if not secret:
                # Keeping a secret's value while dropping its flag would reveal it on read.
                raise InvalidInput(
                    f"variable {key!r} is secret: send its value to make it a plain variable",
                    code="invalid_env",
                )
            value = old.value
        if not _storable(value):
            raise InvalidInput(
                f"variable {key!r} must be at most {MAX_VALUE_BYTES} bytes of UTF-8 "
                "and contain no NUL",
                code="invalid_env",
            )
        clean[key] = (value, secret)
    view = powers.view_of(session, workload, env={k: v for k, (v, _) in clean.items()})
    granted = powers.review(
        session, actor, registry, settings, workload, view, what="change the env of a workload"
    )
    for key, row in existing.items():
        if key not in clean:
            session.delete(row)
    for key, (value, secret) in clean.items():
        current = existing.get(key)
        if current is None:
            session.add(EnvVar(workload_id=workload_id, key=key, value=value, secret=secret))
        else:
            current.value, current.secret = value, secret
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_ENV_REPLACE,
        "workload",
        workload_id,
        {"keys": sorted(clean), **granted},
    )
    return read(session, workload_id)
