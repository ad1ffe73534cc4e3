"""Recovery points: a project stage captured at one instant, restored together (SPEC 10)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from moorage.api.deps import Admin, DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import RecoveryPointIn, RecoveryPointList, RecoveryPointOut
from moorage.api.schemas.output import read_as
from moorage.services import recovery_points

router = APIRouter(prefix="/api/projects/{slug}/recovery-points", tags=["recovery points"])
CONFIRM = "X-Confirm-Restore"


@router.post("", status_code=202, responses=responses(409))
def create_recovery_point(
    slug: str, body: RecoveryPointIn, actor: Operator, session: DbSession, state: State
) -> RecoveryPointOut:
    """Capture every workload of the stage at one instant: all quiesced (``mode``), all
    captured, all resumed. Each workload's part is a snapshot of origin ``recovery-point``."""
    point = recovery_points.create(session, actor, state.registry, slug, body.stage, body.mode)
    out = RecoveryPointOut.model_validate(point, context=read_as(actor))
    session.commit()
    state.recovery_points.start_capture(point.id)
    return out


@router.get("")
def list_recovery_points(
    slug: str, actor: Viewer, session: DbSession, stage: str | None = None
) -> RecoveryPointList:
    rows = recovery_points.list_for(session, slug, stage)
    return RecoveryPointList(
        items=[RecoveryPointOut.model_validate(p, context=read_as(actor)) for p in rows]
    )


@router.get("/{point_id}")
def get_recovery_point(
    slug: str, point_id: str, actor: Viewer, session: DbSession
) -> RecoveryPointOut:
    point = recovery_points.get(session, slug, point_id)
    return RecoveryPointOut.model_validate(point, context=read_as(actor))


@router.post("/{point_id}/restore", status_code=202, responses=responses(409, 428))
def restore_recovery_point(
    slug: str,
    point_id: str,
    actor: Admin,
    session: DbSession,
    state: State,
    confirm: Annotated[str | None, Header(alias=CONFIRM)] = None,
) -> RecoveryPointOut:
    """Restore every workload of the point (admin). Destructive: ``X-Confirm-Restore``
    must say ``<slug>/<stage>``. Every pre-flight passes before any workload stops;
    then the restores run in turn, each crash-safe by its own journal."""
    parts = state.recovery_points.request_restore(session, actor, slug, point_id, confirm)
    state.recovery_points.start_restore(point_id, parts)
    point = recovery_points.get(session, slug, point_id)
    return RecoveryPointOut.model_validate(point, context=read_as(actor))
