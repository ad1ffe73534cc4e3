"""What the trigger runner (``deployer/trigger_runner.py``) reads and writes of triggers:
due slots, the compare-and-set that claims one, the scheduled captures it starts, and
the deploys a poll queues.

A slot is claimed by moving ``next_run_at`` from the value the runner read to the next
one in one UPDATE, in the transaction that queues the deploys, so a restart, or two
runners, can never fire one slot twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moorage.errors import MoorageError
from moorage.plugins.registry import Registry
from moorage.services import audit, deploys, drills
from moorage.services import snapshots as snapshot_service
from moorage.services.audit import AuditAction
from moorage.services.firing import fire, trigger_actor
from moorage.store.states import DEPLOYMENT_PENDING, DrillOrigin, SnapshotOrigin
from moorage.store.tables import Binding, Deployment, Drill, Trigger

log = logging.getLogger("moorage.triggers")


def due(s: Session, kinds: Iterable[str], now: datetime) -> list[Trigger]:
    """The triggers of ``kinds`` whose ``next_run_at`` has come."""
    return list(
        s.scalars(
            select(Trigger).where(
                Trigger.kind.in_(list(kinds)),
                Trigger.next_run_at.is_not(None),
                Trigger.next_run_at <= now,
            )
        )
    )


def of_kinds(s: Session, kinds: Iterable[str]) -> list[Trigger]:
    """Every trigger of ``kinds`` (the polled ones)."""
    return list(s.scalars(select(Trigger).where(Trigger.kind.in_(list(kinds)))))


def find(s: Session, trigger_id: str) -> Trigger | None:
    """The trigger, or None when it was deleted."""
    return s.get(Trigger, trigger_id)


def idle(s: Session, trigger_id: str, was: datetime | None) -> None:
    """Stop a trigger being due (``next_run_at`` cleared) unless it moved meanwhile: its
    kind found no next slot, so it waits for a config change."""
    s.execute(
        update(Trigger)
        .where(Trigger.id == trigger_id, Trigger.next_run_at == was)
        .values(next_run_at=None)
    )


def claim_slot(
    s: Session, trigger_id: str, was: datetime | None, following: datetime, now: datetime
) -> Trigger | None:
    """Move ``next_run_at`` from ``was`` to ``following`` (and ``last_fired_at`` to
    ``now``); the trigger as it now is, or None when another runner (or a config change)
    got there first."""
    claimed = s.execute(
        update(Trigger)
        .where(Trigger.id == trigger_id, Trigger.next_run_at == was)
        .values(next_run_at=following, last_fired_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        return None
    fresh = s.get(Trigger, trigger_id)
    assert fresh is not None
    return fresh


def bound(s: Session, trigger_id: str) -> list[str]:
    """The workloads bound to the trigger, each once, by id."""
    rows = s.scalars(
        select(Binding.workload_id)
        .where(Binding.trigger_id == trigger_id)
        .order_by(Binding.workload_id)
    )
    return list(dict.fromkeys(rows))


def capture_bound(s: Session, registry: Registry, trigger: Trigger, mode: str) -> list[str]:
    """Record a ``scheduled`` capture (``snapshots.request_capture``, one audit row each,
    by the trigger) of each bound workload that has volumes; the snapshot ids. A workload
    that cannot be captured is logged and passed over."""
    actor = trigger_actor(trigger)
    started = []
    for workload_id in bound(s, trigger.id):
        try:
            snap = snapshot_service.request_capture(
                s,
                actor,
                registry,
                workload_id,
                volumes=None,
                mode=mode,
                origin=SnapshotOrigin.SCHEDULED,
            )
        except MoorageError as exc:
            log.warning(
                "schedule %s: no snapshot of %s: %s", trigger.name, workload_id, exc.message
            )
            continue
        started.append(snap.id)
    return started


def drill_bound(s: Session, registry: Registry, trigger: Trigger) -> list[str]:
    """Record a ``scheduled`` restore drill (``drills.request``, one audit row each, by the
    trigger) of each bound workload's latest ready snapshot; the drill ids. A workload
    with nothing to drill (no ready snapshot, never deployed, a kind without sandbox) is
    passed over with a ``snapshot.drill_skipped`` audit row naming why (there is no drill
    row to fail: a drill needs a snapshot), so a schedule that proves nothing shows; one
    row per change of reason, not one per firing (a per-second schedule would flood the
    audit), again after a drill of the workload ran."""
    actor = trigger_actor(trigger)
    started = []
    for workload_id in bound(s, trigger.id):
        try:
            drill = drills.request(
                s,
                actor,
                registry,
                workload_id,
                None,
                drills.parse_check(None),
                origin=DrillOrigin.SCHEDULED,
            )
        except MoorageError as exc:
            log.warning("schedule %s: no drill of %s: %s", trigger.name, workload_id, exc.message)
            if _skip_noted(s, trigger.id, workload_id, exc.code):
                continue
            audit.record(
                s,
                actor,
                AuditAction.SNAPSHOT_DRILL_SKIPPED,
                "workload",
                workload_id,
                {"trigger": trigger.id, "code": exc.code, "reason": exc.message},
            )
            continue
        started.append(drill.id)
    return started


def _skip_noted(s: Session, trigger_id: str, workload_id: str, code: str) -> bool:
    """Whether the newest ``snapshot.drill_skipped`` row of the workload already says this
    trigger passed it over for ``code``, with no drill of it since."""
    last = audit.latest(s, AuditAction.SNAPSHOT_DRILL_SKIPPED, "workload", workload_id)
    if last is None or (last.details or {}).get("trigger") != trigger_id:
        return False
    if (last.details or {}).get("code") != code:
        return False
    since = select(Drill.id).where(Drill.workload_id == workload_id, Drill.created_at > last.at)
    return s.scalar(since.limit(1)) is None


def fire_changed(
    s: Session, trigger_id: str, changed: list[str], seen: dict[str, Any]
) -> list[str]:
    """Queue a pulling deploy (``firing.fire``) of each workload in ``changed`` whose
    registry moved, unless a deploy of it is pending, or its last successful deployment
    no longer runs the artifact ``seen`` recorded when the poll began (a deploy or a
    restore finished meanwhile). The deployment ids; none when the trigger is gone."""
    busy = set(
        s.scalars(
            select(Deployment.workload_id).where(
                Deployment.workload_id.in_(changed),
                Deployment.status.in_(DEPLOYMENT_PENDING),
            )
        )
    )
    # Compare what runs (the artifact's deployment), not the row: a restore writes a
    # row of its own that runs the same artifact.
    for workload_id in changed:
        done = deploys.last_success(s, workload_id)
        if (done.artifact.get("deployment") if done else None) != seen[workload_id]:
            busy.add(workload_id)
    trigger = s.get(Trigger, trigger_id)
    if trigger is None:
        return []
    return fire(s, trigger, only=[w for w in changed if w not in busy], pull=True).deployments
