"""A workload's off-site copies (SPEC section 11): its policy, and copying a snapshot now.

Roles: reading is viewer; choosing a target for a workload and copying now are operator
(targets and their credentials are the admin's; a workload's policy only picks one of
them, like choosing a volume's scope); the catalog and imports are admin.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from moorage.api.deps import DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas.offsite import CopyIn, CopyOut, OffsiteIn, OffsiteOut
from moorage.services import guard, offsite
from moorage.services.audit import AuditAction

router = APIRouter(prefix="/api/workloads/{workload_id}", tags=["off-site copies"])


def _shown(session: DbSession, state: State, workload_id: str) -> OffsiteOut:
    policy = offsite.policy_of(session, workload_id)
    if policy is None:
        return OffsiteOut()
    stale = offsite.stale(session, state.copier.clock()).get((workload_id, policy.target_id), False)
    return OffsiteOut.model_validate(policy).model_copy(update={"stale": stale})


@router.get("/offsite")
def get_offsite(workload_id: str, _actor: Viewer, session: DbSession, state: State) -> OffsiteOut:
    return _shown(session, state, workload_id)


@router.put("/offsite", responses=responses(409))
def put_offsite(
    workload_id: str, body: OffsiteIn, actor: Operator, session: DbSession, state: State
) -> OffsiteOut:
    """Copy every ready snapshot of the workload to this target, verified, and keep what
    ``keep_*`` says there. Copies start on the copier's next pass (started now)."""
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_OFFSITE, workload_id
    ) as change:
        offsite.set_policy(
            session,
            actor,
            workload_id,
            target_id=body.target_id,
            keep_last=body.keep_last,
            keep_daily=body.keep_daily,
            keep_weekly=body.keep_weekly,
            window_hours=body.window_hours,
        )
        change.then(state.copier.wake)
    return _shown(session, state, workload_id)


@router.delete("/offsite", status_code=204, responses=responses(409))
def delete_offsite(workload_id: str, actor: Operator, session: DbSession, state: State) -> Response:
    """Stop copying; copies already made stay on the target."""
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_OFFSITE, workload_id
    ):
        offsite.clear_policy(session, actor, workload_id)
    return Response(status_code=204)


@router.post("/snapshots/{snapshot_id}/copies", status_code=202, responses=responses(409, 422))
def copy_now(
    workload_id: str,
    snapshot_id: str,
    body: CopyIn,
    actor: Operator,
    session: DbSession,
    state: State,
) -> CopyOut:
    """Copy a ready snapshot to a target now (again, when it was copied before): 202
    with the copy ``pending``; ``GET .../snapshots/{sid}`` shows how it goes."""
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.SNAPSHOT_COPY, workload_id
    ) as change:
        row = offsite.request_copy(session, actor, workload_id, snapshot_id, body.target_id)
        change.then(state.copier.wake)
    return CopyOut.model_validate(row)
