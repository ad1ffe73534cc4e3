"""Bindings seen from a workload: list, bind an existing trigger or create one inline, unbind."""

from __future__ import annotations

from fastapi import APIRouter, Request

from moorage.api.deps import DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.routes.triggers import trigger_out
from moorage.api.schemas import BindIn, TriggerList, TriggerOut
from moorage.errors import InvalidInput
from moorage.services import guard, triggers
from moorage.services.audit import AuditAction

router = APIRouter(prefix="/api/workloads/{workload_id}/triggers", tags=["bindings"])


@router.get("")
def list_bindings(
    workload_id: str, request: Request, actor: Viewer, session: DbSession, state: State
) -> TriggerList:
    items = [
        trigger_out(request, triggers.shown(session, state.registry, actor, t))
        for t in triggers.bindings_of(session, workload_id)
    ]
    return TriggerList(items=items)


@router.post("", status_code=201, responses=responses(409))
def bind(
    workload_id: str,
    body: BindIn,
    request: Request,
    actor: Operator,
    session: DbSession,
    state: State,
) -> TriggerOut:
    if (body.trigger_id is None) == (body.trigger is None):
        raise InvalidInput(
            'send either {"trigger_id": ...} to bind an existing trigger or '
            '{"trigger": {"kind", "name", "config"}} to create one',
            code="invalid_binding",
        )
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_TRIGGER_BIND, workload_id
    ):
        if body.trigger is not None:
            triggers.bindings_of(session, workload_id)  # 404 before creating anything
            created = triggers.create(
                session,
                actor,
                state.registry,
                kind=body.trigger.kind,
                name=body.trigger.name,
                config=body.trigger.config,
            )
            trigger_id = created.id
        else:
            assert body.trigger_id is not None
            trigger_id = body.trigger_id
        trigger = triggers.bind(session, actor, workload_id, trigger_id)
    return trigger_out(request, triggers.shown(session, state.registry, actor, trigger))


@router.delete("/{trigger_id}", status_code=204, responses=responses(409))
def unbind(
    workload_id: str, trigger_id: str, actor: Operator, session: DbSession, state: State
) -> None:
    locks = state.deployer.locks
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_TRIGGER_UNBIND, workload_id):
        triggers.unbind(session, actor, workload_id, trigger_id)
