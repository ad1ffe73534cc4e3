"""Firing a trigger: queue one deployment per bound workload, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.security.roles import Actor
from moorage.services import deploys
from moorage.store.bulk import select_rows
from moorage.store.tables import Binding, Trigger, utcnow


def trigger_actor(trigger: Trigger) -> Actor:
    """The audit log's 'who' for what a trigger does on its own."""
    return Actor(
        user_id="", username=f"{trigger.kind}:{trigger.name}", role="operator", via="system"
    )


def fire(
    session: Session,
    trigger: Trigger,
    *,
    only: list[str] | None = None,
    pull: bool = False,
    at: datetime | None = None,
) -> list[str]:
    """Queue a deploy (reason ``trigger:<id>``) of each bound workload, once each; return
    the deployment ids."""
    # One driver step for all the bindings (``select_rows``): a fan-out reads hundreds.
    bound = select_rows(
        session,
        select(Binding.created_at, Binding.workload_id).where(Binding.trigger_id == trigger.id),
    )
    targets = list(dict.fromkeys(w for _, w in sorted(bound)))  # bound twice: queued once
    if only is not None:
        targets = [w for w in targets if w in only]
    queued = deploys.enqueue_many(
        session, trigger_actor(trigger), targets, f"trigger:{trigger.id}", pull=pull
    )
    if queued:
        trigger.last_fired_at = at or utcnow()
    return queued
