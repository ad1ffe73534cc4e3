"""Running a workload: deploy, promote-from, stop/start/restart, reconcile now, logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query

from moorage.api.deps import DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.routes.workloads import get_workload
from moorage.api.schemas import DeploymentOut, LogsOut, PromoteIn, ReconcileOut, WorkloadOut
from moorage.api.schemas.output import read_as
from moorage.security.roles import Actor
from moorage.services import deploys, guard, workloads
from moorage.services.audit import AuditAction
from moorage.store.states import DesiredState

router = APIRouter(prefix="/api/workloads/{workload_id}", tags=["deploys"])


@router.post("/deploy", status_code=202, responses=responses(409, 503))
def deploy(
    workload_id: str,
    actor: Operator,
    session: DbSession,
    state: State,
    tasks: BackgroundTasks,
    pull: Annotated[bool, Query(description="Pull the image even if present")] = False,
) -> DeploymentOut:
    """Queue a deploy of the saved config; a stopped workload is asked to run again."""
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_DEPLOY, workload_id
    ):
        deployment = deploys.deploy(
            session, actor, state.registry, state.settings, workload_id, pull=pull
        )
    tasks.add_task(state.deployer.wake)  # after the commit, so the workers see the row
    return DeploymentOut.model_validate(deployment, context=read_as(actor))


@router.post("/promote-from", status_code=202, responses=responses(409, 503))
def promote_from(
    workload_id: str,
    body: PromoteIn,
    actor: Operator,
    session: DbSession,
    state: State,
    tasks: BackgroundTasks,
) -> DeploymentOut:
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_PROMOTE, workload_id
    ):
        deployment = deploys.promote(
            session, actor, state.registry, state.settings, workload_id, body.source
        )
    tasks.add_task(state.deployer.wake)
    return DeploymentOut.model_validate(deployment, context=read_as(actor))


@router.post("/stop", responses=responses(409))
def stop(workload_id: str, actor: Operator, session: DbSession, state: State) -> WorkloadOut:
    """Stop the workload and keep it stopped: reconcile never starts it again, and a
    triggered deploy of it fails until it is started (or deployed by hand)."""
    return _lifecycle(
        workload_id, actor, session, state, DesiredState.STOPPED, AuditAction.WORKLOAD_STOP
    )


@router.post("/start", responses=responses(409))
def start(workload_id: str, actor: Operator, session: DbSession, state: State) -> WorkloadOut:
    """Run the last successful deployment again and keep it running."""
    return _lifecycle(
        workload_id, actor, session, state, DesiredState.RUNNING, AuditAction.WORKLOAD_START
    )


@router.post("/restart", responses=responses(409))
def restart(workload_id: str, actor: Operator, session: DbSession, state: State) -> WorkloadOut:
    """Stop what runs and start the last successful deployment again (409
    ``not_deployed`` when there is none)."""
    return _lifecycle(
        workload_id, actor, session, state, DesiredState.RUNNING, AuditAction.WORKLOAD_RESTART
    )


def _lifecycle(
    workload_id: str,
    actor: Actor,
    session: DbSession,
    state: State,
    desired: DesiredState,
    action: AuditAction,
) -> WorkloadOut:
    deployer = state.deployer
    restart = action == AuditAction.WORKLOAD_RESTART
    with guard.change(session, deployer.locks, actor, action, workload_id) as change:
        deploys.keep_at(session, workload_id, desired, restart=restart)
        change.note(desired_state=desired)
        change.then(lambda: deployer.converge(workload_id, restart=restart))
    return get_workload(workload_id, actor, session, state)  # with the status converge found


@router.post("/reconcile", responses=responses(409))
def reconcile(workload_id: str, actor: Operator, session: DbSession, state: State) -> ReconcileOut:
    """Bring the workload to its desired state now, as the periodic reconcile would."""
    locks = state.deployer.locks
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_RECONCILE, workload_id) as change:
        workloads.get(session, workload_id)
        done = state.deployer.converge(workload_id)
        change.note(status=done.status, changed=done.changed)
    return ReconcileOut(status=done.status)


@router.get("/logs", responses=responses(502, 503))
def logs(
    workload_id: str,
    actor: Operator,
    session: DbSession,
    state: State,
    tail: Annotated[int, Query(ge=1, le=10000)] = 200,
) -> LogsOut:
    """The containers' recent output. Operators only: programs print their secrets (env
    values are operator-only too)."""
    workloads.get(session, workload_id)
    return LogsOut(logs=state.deployer.logs(workload_id, tail))
