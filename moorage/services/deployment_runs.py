"""The rows a deployment writes while it runs: the claim, its log, its start, its end.

Queueing a deployment is ``services/deploys.py``; running one is ``deployer/queue.py``,
which calls these, each in a short transaction of its own, while it holds the
workload's lock. The database is the queue: a row is claimed by flipping ``queued``
to ``running`` in one UPDATE, so it runs once however many workers race for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from moorage.errors import DeployFailed
from moorage.names import new_id
from moorage.plugins.spec import HostPower
from moorage.security.roles import SYSTEM
from moorage.services import deploys, inputs, powers
from moorage.services.workloads import get as get_workload
from moorage.store.states import DeploymentStatus, DesiredState, WorkloadStatus
from moorage.store.tables import Deployment, Workload, utcnow

INTERRUPTED = "Moorage stopped while this deploy ran; reconcile restores the workload"


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a claimed deployment row."""

    workload_id: str
    reason: str
    pull: bool


def stamped(line: str) -> str:
    """One log line as a deployment's log keeps it: ``HH:MM:SS text\\n``."""
    return f"{utcnow():%H:%M:%S} {line.rstrip()}\n"


def queue_heads(s: Session) -> list[tuple[str, str]]:
    """``(deployment id, workload id)`` of the oldest queued deployment of each workload,
    oldest first: one workload's deploys run in queue order, and a busy workload's
    backlog never hides another's. Two rows with the same timestamp both come back."""
    oldest = (
        select(Deployment.workload_id, func.min(Deployment.created_at).label("first"))
        .where(Deployment.status == DeploymentStatus.QUEUED)
        .group_by(Deployment.workload_id)
        .subquery()
    )
    rows = s.execute(
        select(Deployment.id, Deployment.workload_id)
        .join(
            oldest,
            (oldest.c.workload_id == Deployment.workload_id)
            & (oldest.c.first == Deployment.created_at),
        )
        .where(Deployment.status == DeploymentStatus.QUEUED)
        .order_by(Deployment.created_at)
    ).all()
    return [(deployment_id, workload_id) for deployment_id, workload_id in rows]


def claim(s: Session, deployment_id: str) -> bool:
    """Flip a ``queued`` row to ``running``; False when it was not queued (another worker
    took it, or it ended)."""
    result = s.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status == DeploymentStatus.QUEUED)
        .values(status=DeploymentStatus.RUNNING, started_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claimed(s: Session, deployment_id: str) -> Claimed:
    """The workload, reason and pull flag of a deployment row (it must exist)."""
    row = s.get(Deployment, deployment_id)
    assert row is not None
    return Claimed(row.workload_id, row.reason, row.pull)


def append_log(s: Session, deployment_id: str, text: str) -> None:
    """Append ``text`` (whole lines, ``stamped``) to the row's log."""
    s.execute(
        update(Deployment).where(Deployment.id == deployment_id).values(log=Deployment.log + text)
    )


def begin(
    s: Session, deployment_id: str, workload_id: str, reason: str, ran: dict[str, Any]
) -> list[HostPower]:
    """Start a claimed deploy: the workload reads ``deploying`` and the row keeps ``ran``
    as its inputs. Returns the host powers the workload holds. Raises ``DeployFailed``
    when the workload is stopped: a deploy never revives it (SPEC section 9)."""
    workload = get_workload(s, workload_id)
    row = s.get(Deployment, deployment_id)
    assert row is not None
    if workload.desired_state != DesiredState.RUNNING:
        raise DeployFailed(
            f"workload {workload.name} is stopped; this deploy ({reason}) does not "
            "start it: start it, or deploy it again by hand"
        )
    workload.status = WorkloadStatus.DEPLOYING
    row.inputs = ran
    return powers.held(workload)


def begin_redeploy(s: Session, workload_id: str, reason: str) -> tuple[str, str] | None:
    """A ``running`` row that runs the last successful deployment's inputs again, the
    workload ``deploying``: ``(new row id, the deployment it repeats)``. None, and
    nothing written, when the workload never deployed or is not desired ``running``."""
    workload = get_workload(s, workload_id)
    done = deploys.last_success(s, workload_id)
    if done is None or workload.desired_state != DesiredState.RUNNING:
        return None
    row = Deployment(
        id=new_id("dp"),
        workload_id=workload_id,
        reason=reason,
        status=DeploymentStatus.RUNNING,
        artifact={},
        inputs=dict(done.inputs),
        started_at=utcnow(),
    )
    s.add(row)
    workload.status = WorkloadStatus.DEPLOYING
    return row.id, done.id


def finish(
    s: Session,
    deployment_id: str,
    workload_id: str,
    status: DeploymentStatus,
    observed: WorkloadStatus,
    *,
    error: str | None,
    artifact: dict[str, Any] | None,
    chain: bool,
) -> None:
    """End a running row with ``status`` and set the workload's status from ``observed``
    (what the engine shows now). A failed deploy that left the old version serving keeps
    the workload ``running``; one refused because the workload is stopped leaves it
    ``stopped``; otherwise it is ``failed``. A success records the deployed digest and,
    with ``chain``, queues the chain (``deploys.enqueue_chain``, one audit row each)."""
    deployment = s.get(Deployment, deployment_id)
    workload = s.get(Workload, workload_id)
    if deployment is None or workload is None:
        return
    succeeded = status == DeploymentStatus.SUCCEEDED
    deployment.status = status
    deployment.finished_at = utcnow()
    deployment.error = error
    if artifact is not None:
        deployment.artifact = artifact
    if succeeded:
        workload.deployed_digest = inputs.digest(deployment.inputs)
    kept = {WorkloadStatus.RUNNING, WorkloadStatus.UNKNOWN}
    if workload.desired_state == DesiredState.STOPPED:
        kept.add(WorkloadStatus.STOPPED)
    workload.status = observed if observed in kept else WorkloadStatus.FAILED
    if succeeded and chain:
        chained = deploys.enqueue_chain(s, SYSTEM, workload_id)
        if chained:
            deployment.log += stamped(f"queued chain: {', '.join(d.workload_id for d in chained)}")


def interrupt_running(s: Session) -> list[str]:
    """At start-up: every ``running`` row (a crash cut it off) becomes ``interrupted``
    with a last log line; ``queued`` rows stay queued. Returns their workload ids."""
    rows = list(s.scalars(select(Deployment).where(Deployment.status == DeploymentStatus.RUNNING)))
    for d in rows:
        d.status = DeploymentStatus.INTERRUPTED
        d.finished_at = utcnow()
        d.error = INTERRUPTED
        d.log = d.log + stamped("interrupted by a restart")
    return [d.workload_id for d in rows]


def record_status(s: Session, workload_id: str, status: WorkloadStatus) -> None:
    """Write the status reconcile observed; a workload deleted meanwhile is skipped."""
    workload = s.get(Workload, workload_id)
    if workload is not None:
        workload.status = status


def ever_started(s: Session, workload_id: str) -> bool:
    """Whether any deployment of the workload left the queue (so something may run)."""
    started = s.scalar(
        select(Deployment.id)
        .where(
            Deployment.workload_id == workload_id,
            Deployment.status != DeploymentStatus.QUEUED,
        )
        .limit(1)
    )
    return started is not None


def deployed_workloads(s: Session) -> list[str]:
    """Ids of the workloads with a succeeded deployment, oldest workload first: the ones
    reconcile has something to observe or bring back for."""
    return list(
        s.scalars(
            select(Workload.id)
            .where(
                select(Deployment.id)
                .where(
                    Deployment.workload_id == Workload.id,
                    Deployment.status == DeploymentStatus.SUCCEEDED,
                )
                .exists()
            )
            .order_by(Workload.created_at)
        )
    )


def outcome(s: Session, deployment_id: str) -> tuple[DeploymentStatus, str | None] | None:
    """A deployment row's status and error; None when it is gone."""
    row = s.get(Deployment, deployment_id)
    return None if row is None else (DeploymentStatus(row.status), row.error)
