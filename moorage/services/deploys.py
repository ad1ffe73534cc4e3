"""Queueing deployments: manual deploys, chains and promotions. The workers run them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.names import new_id
from moorage.plugins.kind_config import stored_config
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import audit, powers, volumes
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.services.workloads import set_desired_state, validated
from moorage.settings import Settings
from moorage.store.bulk import insert_rows
from moorage.store.states import DeploymentStatus, DesiredState
from moorage.store.tables import AuditEntry, ChainLink, Deployment, utcnow


def enqueue(
    session: Session,
    actor: Actor,
    workload_id: str,
    reason: str,
    *,
    details: dict[str, Any] | None = None,
) -> Deployment:
    """Queue a deployment; ``details`` go into its audit row (the host powers granted)."""
    get_workload(session, workload_id)
    deployment = Deployment(
        id=new_id("dp"),
        workload_id=workload_id,
        status=DeploymentStatus.QUEUED,
        reason=reason,
        artifact={},
    )
    session.add(deployment)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_DEPLOY,
        "workload",
        workload_id,
        {"deployment": deployment.id, "reason": reason, **(details or {})},
    )
    return deployment


def deploy(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    workload_id: str,
    *,
    pull: bool = False,
) -> Deployment:
    """A manual deploy: the workload as saved must ask for no host power it does not hold,
    unless an admin deploys it (which grants them). A person deploying asks for the
    workload to run: a stopped one is started by it."""
    workload = set_desired_state(session, workload_id, DesiredState.RUNNING)
    view = powers.view_of(session, workload)
    granted = powers.review(
        session, actor, registry, settings, workload, view, what="deploy a workload"
    )
    deployment = enqueue(session, actor, workload_id, "manual", details=granted)
    deployment.pull = pull
    return deployment


def keep_at(
    session: Session, workload_id: str, desired: DesiredState, *, restart: bool = False
) -> None:
    """Stop, start or restart: set what reconcile keeps the workload at (the caller
    converges once it is committed). A restart needs something to run again: 409
    ``not_deployed`` when no deployment of the workload ever succeeded."""
    workload = set_desired_state(session, workload_id, desired)
    if restart and last_success(session, workload_id) is None:
        raise Conflict(
            f"workload {workload.name!r} has no successful deployment to restart; deploy it",
            code="not_deployed",
        )


def last_success(session: Session, workload_id: str) -> Deployment | None:
    """The newest succeeded deployment that recorded what it runs (its artifact).

    Restores before issue 11 wrote succeeded rows with an empty artifact; they say
    nothing about what runs, so they are passed over (usually the first row answers).
    """
    query = (
        select(Deployment)
        .where(
            Deployment.workload_id == workload_id, Deployment.status == DeploymentStatus.SUCCEEDED
        )
        .order_by(Deployment.finished_at.desc())
    )
    newest = session.scalars(query.limit(1)).first()
    if newest is None or newest.artifact:
        return newest
    return next((d for d in session.scalars(query) if d.artifact), None)


def enqueue_many(
    session: Session, actor: Actor, workload_ids: list[str], reason: str, *, pull: bool = False
) -> list[str]:
    """Queue one deployment per workload in two bulk INSERTs (``store.bulk``: a fan-out to
    hundreds must answer fast); the callers know the workloads exist. Returns the
    deployment ids."""
    if not workload_ids:
        return []
    now = utcnow()
    nothing: dict[str, Any] = {}  # one object for every row: processed once
    rows = [
        {
            "id": new_id("dp"),
            "workload_id": w,
            "status": DeploymentStatus.QUEUED,
            "reason": reason,
            "pull": pull,
            "artifact": nothing,
            "log": "",
            "created_at": now,
        }
        for w in workload_ids
    ]
    insert_rows(session, Deployment, rows)
    insert_rows(
        session,
        AuditEntry,
        [
            {
                "at": now,
                "actor": actor.username,
                "action": AuditAction.WORKLOAD_DEPLOY,
                "target_type": "workload",
                "target_id": r["workload_id"],
                "details": {"via": actor.via, "deployment": r["id"], "reason": reason},
            }
            for r in rows
        ],
    )
    return [str(r["id"]) for r in rows]


def enqueue_chain(session: Session, actor: Actor, workload_id: str) -> list[Deployment]:
    nexts = session.scalars(
        select(ChainLink.next_id)
        .where(ChainLink.workload_id == workload_id)
        .order_by(ChainLink.position)
    )
    return [enqueue(session, actor, nxt, f"chain:{workload_id}") for nxt in list(nexts)]


def promote(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    target_id: str,
    source_id: str,
) -> Deployment:
    """Copy what ``source`` last deployed into ``target``'s config, then queue a deploy
    (which, as a manual deploy does, asks the target to run)."""
    target = get_workload(session, target_id)
    try:
        source = get_workload(session, source_id)
    except NotFound:
        raise InvalidInput(
            f"no workload {source_id!r} to promote from", code="unknown_workload"
        ) from None
    if source.id == target.id:
        raise InvalidInput("a workload cannot be promoted from itself", code="invalid_promote")
    if source.project_id != target.project_id:
        raise InvalidInput(
            "promote only works between workloads of the same project", code="invalid_promote"
        )
    if source.kind != target.kind:
        raise InvalidInput(
            f"cannot promote a {source.kind} workload into a {target.kind} workload",
            code="invalid_promote",
        )
    done = last_success(session, source.id)
    if done is None:
        raise Conflict(
            f"workload {source.name!r} has never deployed successfully; nothing to promote",
            code="nothing_to_promote",
        )
    kind = registry.source(target.kind)
    model = validated(registry, target.kind, kind.promoted(dict(target.config), done.artifact))
    stored = stored_config(model)
    with session.no_autoflush:
        volumes.check_kept(session, registry, target, stored)
        view = powers.view_of(session, target, config=stored)
    granted = powers.review(
        session, actor, registry, settings, target, view, what="promote into a workload"
    )
    target.config = stored
    set_desired_state(session, target.id, DesiredState.RUNNING)
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_PROMOTE,
        "workload",
        target.id,
        {"from": source.id, "from_deployment": done.id, **granted},
    )
    return enqueue(session, actor, target.id, f"promote:{source.id}")
