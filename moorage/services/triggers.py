"""Standalone triggers and their bindings to workloads."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, Forbidden, InvalidInput, NotFound
from moorage.names import check_slug, new_id
from moorage.plugins.kind_config import public_config, stored_config
from moorage.plugins.registry import Registry
from moorage.plugins.spec import TimedTrigger
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.services.guard import flush_or_conflict
from moorage.services.merge_patch import merge_patch
from moorage.services.workloads import get as get_workload
from moorage.store.tables import Binding, StorageTarget, Trigger, utcnow


def new_hook_token() -> str:
    """An unguessable URL token: 256 bits."""
    return secrets.token_urlsafe(32)


def hook_tokens(session: Session) -> list[str]:
    """The token of every trigger that has one (webhooks): ``/hooks/{token}`` URLs."""
    return list(session.scalars(select(Trigger.token).where(Trigger.token.is_not(None))))


def get(session: Session, trigger_id: str) -> Trigger:
    trigger = session.get(Trigger, trigger_id)
    if trigger is None:
        raise NotFound(f"no trigger {trigger_id!r}")
    return trigger


def list_filtered(session: Session, *, kind: str | None = None) -> list[Trigger]:
    query = select(Trigger).order_by(Trigger.kind, Trigger.name)
    if kind is not None:
        query = query.where(Trigger.kind == kind)
    return list(session.scalars(query))


def shown_config(registry: Registry, trigger: Trigger) -> dict[str, Any]:
    kind = registry.triggers.get(trigger.kind)
    return {} if kind is None else public_config(kind.config_model, trigger.config)


def has_secret(trigger: Trigger) -> bool:
    return bool(trigger.config.get("secret"))


def bound_workloads(session: Session, trigger_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Binding.workload_id)
            .where(Binding.trigger_id == trigger_id)
            .order_by(Binding.created_at)
        )
    )


@dataclass(frozen=True)
class Shown:
    """A trigger as ``actor`` may see it (``shown``)."""

    id: str
    kind: str
    name: str
    config: dict[str, Any]
    has_secret: bool
    token: str | None
    workloads: list[str]
    next_run_at: datetime | None
    last_fired_at: datetime | None
    created_at: datetime
    updated_at: datetime


def shown(session: Session, registry: Registry, actor: Actor, trigger: Trigger) -> Shown:
    """The trigger with its config's secrets masked and the workloads bound to it. The
    hook token lets anyone fire deploys, so only operators and admins see it."""
    return Shown(
        id=trigger.id,
        kind=trigger.kind,
        name=trigger.name,
        config=shown_config(registry, trigger),
        has_secret=has_secret(trigger),
        token=trigger.token if actor.can("operator") else None,
        workloads=bound_workloads(session, trigger.id),
        next_run_at=trigger.next_run_at,
        last_fired_at=trigger.last_fired_at,
        created_at=trigger.created_at,
        updated_at=trigger.updated_at,
    )


def create(
    session: Session, actor: Actor, registry: Registry, *, kind: str, name: str, config: Any
) -> Trigger:
    plugin = registry.trigger(kind)
    check_slug("trigger name", name)
    model = plugin.validate({} if config is None else config)
    _check_backup(session, actor, "make", stored_config(model))
    if (
        session.scalar(select(Trigger.id).where(Trigger.kind == kind, Trigger.name == name))
        is not None
    ):
        raise Conflict(f"a {kind} trigger named {name!r} already exists", code="duplicate")
    trigger = Trigger(
        id=new_id("tr"),
        kind=kind,
        name=name,
        config=stored_config(model),
        token=new_hook_token() if plugin.uses_token else None,
    )
    _schedule(registry, trigger)
    session.add(trigger)
    flush_or_conflict(session, f"a {kind} trigger named {name!r} already exists")
    audit.record(
        session,
        actor,
        AuditAction.TRIGGER_CREATE,
        "trigger",
        trigger.id,
        {"kind": kind, "name": name},
    )
    return trigger


def update(
    session: Session,
    actor: Actor,
    registry: Registry,
    trigger_id: str,
    *,
    name: str | None = None,
    config: Any = None,
) -> Trigger:
    trigger = get(session, trigger_id)
    _check_backup(session, actor, "change", dict(trigger.config))
    changed: list[str] = []
    if name is not None and name != trigger.name:
        check_slug("trigger name", name)
        if (
            session.scalar(
                select(Trigger.id).where(Trigger.kind == trigger.kind, Trigger.name == name)
            )
            is not None
        ):
            raise Conflict(
                f"a {trigger.kind} trigger named {name!r} already exists", code="duplicate"
            )
        trigger.name = name
        changed.append("name")
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidInput("config must be a JSON object", code="invalid_config")
        model = registry.trigger(trigger.kind).validate(merge_patch(trigger.config, config))
        _check_backup(session, actor, "change", stored_config(model))
        trigger.config = stored_config(model)
        _schedule(registry, trigger)
        changed.append("config")
    flush_or_conflict(session, f"a {trigger.kind} trigger named {trigger.name!r} already exists")
    audit.record(
        session, actor, AuditAction.TRIGGER_UPDATE, "trigger", trigger.id, {"fields": changed}
    )
    return trigger


def is_backup(config: dict[str, Any]) -> bool:
    """A schedule whose firing backs the instance up (``action: backup``)."""
    return config.get("action") == "backup"


def _check_backup(session: Session, actor: Actor, verb: str, config: dict[str, Any]) -> None:
    """Instance backups are an admin's (SPEC section 11): only an admin makes, changes or
    removes a backup schedule (403 ``forbidden``), and its target must exist (422
    ``unknown_target``)."""
    if not is_backup(config):
        return
    if not actor.can("admin"):
        raise Forbidden(
            f"only an admin may {verb} a schedule that backs up the instance", code="forbidden"
        )
    target_id = str(config.get("target_id"))
    if session.get(StorageTarget, target_id) is None:
        raise InvalidInput(
            f"no storage target {target_id!r} to back the instance up to",
            code="unknown_target",
        )


def _schedule(registry: Registry, trigger: Trigger) -> None:
    """A timed trigger's next firing, from now: set on create and on every config change."""
    plugin = registry.triggers.get(trigger.kind)
    if isinstance(plugin, TimedTrigger):
        trigger.next_run_at = plugin.next_run(dict(trigger.config), utcnow())


def regenerate_token(
    session: Session,
    actor: Actor,
    registry: Registry,
    trigger_id: str,
) -> Trigger:
    """Give a hook trigger a new URL token; the old URL stops working at once."""
    trigger = get(session, trigger_id)
    if not registry.trigger(trigger.kind).uses_token:
        raise InvalidInput(f"a {trigger.kind} trigger has no URL token", code="no_token")
    trigger.token = new_hook_token()
    audit.record(session, actor, AuditAction.TRIGGER_TOKEN_REGENERATE, "trigger", trigger.id)
    return trigger


def delete(session: Session, actor: Actor, trigger_id: str) -> None:
    trigger = get(session, trigger_id)
    _check_backup(session, actor, "remove", dict(trigger.config))
    for binding in session.scalars(select(Binding).where(Binding.trigger_id == trigger.id)):
        session.delete(binding)
    session.delete(trigger)
    audit.record(
        session,
        actor,
        AuditAction.TRIGGER_DELETE,
        "trigger",
        trigger.id,
        {"kind": trigger.kind, "name": trigger.name},
    )


def bindings_of(session: Session, workload_id: str) -> list[Trigger]:
    get_workload(session, workload_id)
    return list(
        session.scalars(
            select(Trigger)
            .join(Binding, Binding.trigger_id == Trigger.id)
            .where(Binding.workload_id == workload_id)
            .order_by(Trigger.kind, Trigger.name)
        )
    )


def bind(session: Session, actor: Actor, workload_id: str, trigger_id: str) -> Trigger:
    get_workload(session, workload_id)
    trigger = session.get(Trigger, trigger_id)
    if trigger is None:
        raise InvalidInput(f"no trigger {trigger_id!r} to bind", code="unknown_trigger")
    if is_backup(dict(trigger.config)):
        raise InvalidInput(
            f"{trigger.name!r} backs up the whole instance: it binds to no workload",
            code="invalid_binding",
        )
    if session.get(Binding, (trigger_id, workload_id)) is not None:
        raise Conflict(
            f"trigger {trigger.name!r} is already bound to this workload", code="already_bound"
        )
    session.add(Binding(trigger_id=trigger_id, workload_id=workload_id))
    flush_or_conflict(session, f"trigger {trigger.name!r} is already bound to this workload")
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_TRIGGER_BIND,
        "workload",
        workload_id,
        {"trigger": trigger_id},
    )
    return trigger


def unbind(session: Session, actor: Actor, workload_id: str, trigger_id: str) -> None:
    get_workload(session, workload_id)
    binding = session.get(Binding, (trigger_id, workload_id))
    if binding is None:
        raise NotFound(f"trigger {trigger_id!r} is not bound to workload {workload_id!r}")
    session.delete(binding)
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_TRIGGER_UNBIND,
        "workload",
        workload_id,
        {"trigger": trigger_id},
    )
