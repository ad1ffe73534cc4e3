"""Standalone triggers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from moorage.api.deps import DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import (
    DeliveryList,
    DeliveryOut,
    TriggerIn,
    TriggerList,
    TriggerOut,
    TriggerPatch,
)
from moorage.services import hooks, triggers

router = APIRouter(prefix="/api/triggers", tags=["triggers"])


def trigger_out(request: Request, t: triggers.Shown) -> TriggerOut:
    """``t`` as sent, with the webhook's URL when its token is shown."""
    url = None if t.token is None else str(request.base_url).rstrip("/") + f"/hooks/{t.token}"
    return TriggerOut(
        id=t.id,
        kind=t.kind,
        name=t.name,
        config=t.config,
        has_secret=t.has_secret,
        token=t.token,
        url=url,
        workloads=t.workloads,
        next_run_at=t.next_run_at,
        last_fired_at=t.last_fired_at,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


@router.get("")
def list_triggers(
    request: Request,
    actor: Viewer,
    session: DbSession,
    state: State,
    kind: Annotated[str | None, Query(max_length=63)] = None,
) -> TriggerList:
    items = [
        trigger_out(request, triggers.shown(session, state.registry, actor, t))
        for t in triggers.list_filtered(session, kind=kind)
    ]
    return TriggerList(items=items)


@router.post("", status_code=201, responses=responses(409))
def create_trigger(
    body: TriggerIn, request: Request, actor: Operator, session: DbSession, state: State
) -> TriggerOut:
    trigger = triggers.create(
        session, actor, state.registry, kind=body.kind, name=body.name, config=body.config
    )
    return trigger_out(request, triggers.shown(session, state.registry, actor, trigger))


@router.get("/{trigger_id}")
def get_trigger(
    trigger_id: str, request: Request, actor: Viewer, session: DbSession, state: State
) -> TriggerOut:
    trigger = triggers.get(session, trigger_id)
    return trigger_out(request, triggers.shown(session, state.registry, actor, trigger))


@router.patch("/{trigger_id}", responses=responses(409))
def update_trigger(
    trigger_id: str,
    body: TriggerPatch,
    request: Request,
    actor: Operator,
    session: DbSession,
    state: State,
) -> TriggerOut:
    trigger = triggers.update(
        session, actor, state.registry, trigger_id, name=body.name, config=body.config
    )
    return trigger_out(request, triggers.shown(session, state.registry, actor, trigger))


@router.delete("/{trigger_id}", status_code=204)
def delete_trigger(trigger_id: str, actor: Operator, session: DbSession) -> None:
    triggers.delete(session, actor, trigger_id)


@router.post("/{trigger_id}/token")
def regenerate_token(
    trigger_id: str, request: Request, actor: Operator, session: DbSession, state: State
) -> TriggerOut:
    """A new URL for a webhook trigger; the old one stops working at once."""
    trigger = triggers.regenerate_token(session, actor, state.registry, trigger_id)
    return trigger_out(request, triggers.shown(session, state.registry, actor, trigger))


@router.get("/{trigger_id}/deliveries")
def list_deliveries(trigger_id: str, actor: Viewer, session: DbSession) -> DeliveryList:
    """The last 100 calls of a webhook: what arrived and what it queued."""
    triggers.get(session, trigger_id)
    return DeliveryList(
        items=[
            DeliveryOut(
                id=d.id,
                at=d.at,
                source=d.source,
                provider=d.provider,
                event=d.event,
                delivery_id=d.delivery_id,
                signature=d.signature,
                outcome=d.outcome,
                reason=d.reason,
                status_code=d.status_code,
                deployments=list(d.deployments),
                commit=d.commit,
                commit_title=d.commit_title,
            )
            for d in hooks.deliveries(session, trigger_id)
        ]
    )
