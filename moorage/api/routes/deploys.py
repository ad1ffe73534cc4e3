"""Deploying a workload: deploy, promote-from, reconcile now, container logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query

from moorage.api.deps import DbSession, Operator, State
from moorage.api.routes.workloads import deployment_out
from moorage.api.schemas import DeploymentOut, LogsOut, PromoteIn, ReconcileOut
from moorage.services import deploys, workloads

router = APIRouter(prefix="/api/workloads/{workload_id}", tags=["deploys"])


@router.post("/deploy", status_code=202)
def deploy(
    workload_id: str,
    actor: Operator,
    session: DbSession,
    state: State,
    tasks: BackgroundTasks,
    pull: Annotated[bool, Query(description="Pull the image even if present")] = False,
) -> DeploymentOut:
    deployment = deploys.deploy(
        session, actor, state.registry, state.settings, workload_id, pull=pull
    )
    tasks.add_task(state.deployer.wake)  # after the commit, so the workers see the row
    return deployment_out(deployment)


@router.post("/promote-from", status_code=202)
def promote_from(
    workload_id: str,
    body: PromoteIn,
    actor: Operator,
    session: DbSession,
    state: State,
    tasks: BackgroundTasks,
) -> DeploymentOut:
    deployment = deploys.promote(
        session, actor, state.registry, state.settings, workload_id, body.source
    )
    tasks.add_task(state.deployer.wake)
    return deployment_out(deployment)


@router.post("/reconcile")
def reconcile(workload_id: str, actor: Operator, session: DbSession, state: State) -> ReconcileOut:
    workloads.get(session, workload_id)
    session.commit()  # release the read before the deployer writes
    return ReconcileOut(status=state.deployer.reconcile(workload_id, wait=30))


@router.get("/logs")
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
