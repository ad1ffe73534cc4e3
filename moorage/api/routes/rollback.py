"""Rolling a workload back to an earlier deployment, its data too on request (SPEC
section 10): ``POST /api/workloads/{id}/deployments/{did}/rollback``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header

from moorage.api.deps import DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.routes.restores import CONFIRM
from moorage.api.schemas import DeploymentOut
from moorage.api.schemas.output import read_as
from moorage.api.schemas.workloads import RollbackIn, RollbackOut
from moorage.errors import Forbidden, PreconditionRequired
from moorage.services import checkpoints, guard, workloads
from moorage.services.audit import AuditAction

router = APIRouter(prefix="/api/workloads/{workload_id}/deployments", tags=["deploys"])


@router.post("/{deployment_id}/rollback", status_code=202, responses=responses(409, 428))
def rollback(
    workload_id: str,
    deployment_id: str,
    actor: Operator,
    session: DbSession,
    state: State,
    tasks: BackgroundTasks,
    body: RollbackIn | None = None,
    confirm: Annotated[str | None, Header(alias=CONFIRM)] = None,
) -> RollbackOut:
    """Run that deployment's config and artifact again (operator). With ``"data": true``
    (admin, header ``X-Confirm-Restore: <workload name>``) first restore the checkpoint
    taken by the first deploy after it, the workload held stopped meanwhile, so code and
    data go back together (409 ``no_checkpoint`` when there is none)."""
    data = body is not None and body.data
    if data:
        if not actor.can("admin"):
            raise Forbidden("only an admin may roll data back (it is a restore)", code="forbidden")
        workload = workloads.get(session, workload_id)
        if confirm != workload.name:
            said = "is missing" if confirm is None else f"says {confirm!r}"
            raise PreconditionRequired(
                f"a rollback with data replaces the live data of {workload.name!r}: send the "
                f"header '{CONFIRM}: {workload.name}' to confirm (it {said})",
                code="confirmation_required",
            )
        state.restorer.check_free(session, workload_id)
    locks = state.deployer.locks
    restore_id: str | None = None
    accepted = False
    try:
        with guard.change(session, locks, actor, AuditAction.WORKLOAD_ROLLBACK, workload_id):
            plan, queued = checkpoints.rollback(
                session,
                actor,
                state.registry,
                state.settings,
                workload_id,
                deployment_id,
                data=data,
            )
            if plan.checkpoint is not None:
                row = state.restorer.request(session, actor, workload_id, plan.checkpoint, None)
                restore_id, accepted = row.id, True
            out = RollbackOut(
                deployment=(
                    DeploymentOut.model_validate(queued, context=read_as(actor)) if queued else None
                ),
                restore_id=restore_id,
                checkpoint_snapshot_id=plan.checkpoint,
            )
    except BaseException:
        if accepted:
            state.restorer.forget(workload_id)
        raise
    if restore_id is not None and state.rollbacks is not None:
        state.rollbacks.start(actor, workload_id, plan, restore_id)
    else:
        tasks.add_task(state.deployer.wake)
    return out
