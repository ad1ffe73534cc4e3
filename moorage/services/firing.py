"""Firing a trigger: one deployment per bound workload (queued, or joined when one is
already queued), in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moorage.security.roles import Actor
from moorage.services import deploys
from moorage.store.bulk import select_rows
from moorage.store.states import DeploymentStatus
from moorage.store.tables import Binding, Deployment, Trigger, utcnow


def trigger_actor(trigger: Trigger) -> Actor:
    """The audit log's 'who' for what a trigger does on its own."""
    return Actor(
        user_id="", username=f"{trigger.kind}:{trigger.name}", role="operator", via="system"
    )


class Fired(NamedTuple):
    """What a firing did: one deployment id per workload it deploys, in binding order, and
    how many of them were already queued (joined, not queued again)."""

    deployments: list[str]
    joined: int


def fire(
    session: Session,
    trigger: Trigger,
    *,
    only: list[str] | None = None,
    pull: bool = False,
    at: datetime | None = None,
) -> Fired:
    """Deploy each bound workload once (reason ``trigger:<id>``): join the deployment
    already queued for it, or queue one.

    A queued deployment has not started, and a deploy reads the workload's inputs (and
    pulls) when it starts, so joining it loses nothing the firing asked for; it gets
    ``pull`` too. Triggers thus keep about one waiting deployment per workload however
    often they fire (Coolify answers "Deployment already queued" the same way; two
    firings that commit at the same instant may still queue one each). A deployment
    that had started when the firing read the queue is not joined: it read its inputs
    before the firing. One a worker claims after that read serves the firing as it is,
    since it reads its inputs after the firing arrived. A joined deployment keeps its
    reason, and the firing writes no audit row for it (nothing new was queued); the
    delivery log lists it.
    """
    # One driver step each for the bindings and the queued rows (``select_rows``): a
    # fan-out reads hundreds.
    bound = select_rows(
        session,
        select(Binding.created_at, Binding.workload_id).where(Binding.trigger_id == trigger.id),
    )
    targets = list(dict.fromkeys(w for _, w in sorted(bound)))  # bound twice: queued once
    if only is not None:
        targets = [w for w in targets if w in only]
    waiting = _queued(session, trigger, targets, pull)
    joined = {w: waiting[w] for w in targets if w in waiting}
    fresh = deploys.enqueue_many(
        session,
        trigger_actor(trigger),
        [w for w in targets if w not in joined],
        f"trigger:{trigger.id}",
        pull=pull,
    )
    made = iter(fresh)
    deployments = [joined[w] if w in joined else next(made) for w in targets]
    if deployments:
        trigger.last_fired_at = at or utcnow()
    return Fired(deployments, len(joined))


def _queued(session: Session, trigger: Trigger, targets: list[str], pull: bool) -> dict[str, str]:
    """The queue head (oldest queued deployment) of each of ``targets`` (workloads bound
    to ``trigger``) that has one, by workload id. With ``pull``, only rows that pull, once
    made so: a row a worker claimed meanwhile (PostgreSQL lets it) is left out and gets a
    new one. Rows of other workloads are never read for a change, nor changed."""
    if not targets:
        return {}
    rows = select_rows(
        session,
        select(Deployment.workload_id, Deployment.created_at, Deployment.id, Deployment.pull)
        .join(Binding, Binding.workload_id == Deployment.workload_id)
        .where(Binding.trigger_id == trigger.id, Deployment.status == DeploymentStatus.QUEUED),
    )
    wanted = set(targets)
    heads: dict[str, tuple[Any, str, bool]] = {}
    for workload_id, created_at, deployment_id, pulls in rows:
        if workload_id not in wanted:
            continue
        if workload_id not in heads or (created_at, deployment_id) < heads[workload_id][:2]:
            heads[workload_id] = (created_at, deployment_id, pulls)
    joined = {w: head[1] for w, head in heads.items()}
    if pull:
        lacking = [head[1] for head in heads.values() if not head[2]]
        if lacking:
            made = set(
                session.scalars(
                    update(Deployment)
                    .where(Deployment.id.in_(lacking), Deployment.status == DeploymentStatus.QUEUED)
                    .values(pull=True)
                    .returning(Deployment.id)
                )
            )
            joined = {w: d for w, d in joined.items() if d in made or d not in lacking}
    return joined
