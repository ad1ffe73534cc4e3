"""Off-site copy policies and the rows of copies (SPEC section 11).

A workload's **policy** names one storage target and what that target keeps
(``keep_last``/``keep_daily``/``keep_weekly``, ``offsite.retention``) and the window within
which each ready snapshot's copy must have verified (``window_hours``). Setting or
clearing it is a change of the workload (operator: it chooses among targets an admin
made, and sends no credentials). A **copy** row exists per snapshot and target:
``pending -> copying -> verified | failed``. The copier (``offsite/copier.py``) is the
background writer of copy rows, through the functions below; requests (``request_copy``)
come from the API. Copy rows of the copier carry no audit rows (like captures); what
retention deletes on a target is one ``offsite.prune`` row by the system.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from moorage.errors import Conflict, Forbidden, InvalidInput, NotFound
from moorage.offsite.layout import data_key
from moorage.offsite.retention import Keep
from moorage.security.roles import SYSTEM, Actor
from moorage.services import audit, storage_targets
from moorage.services import snapshots as snapshot_service
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.settings import Settings
from moorage.store.states import CopyStatus, SnapshotStatus
from moorage.store.tables import (
    OffsitePolicy,
    Snapshot,
    SnapshotCopy,
    StorageTarget,
    Workload,
    utcnow,
)

MAX_KEEP = 10000
MAX_WINDOW_HOURS = 24 * 31
RETRY_AFTER = timedelta(minutes=15)
"""A failed copy is tried again by the copier's pass this long after it failed."""
CUT_OFF = "Moorage stopped during the copy; it is copied again"


def policy_of(session: Session, workload_id: str) -> OffsitePolicy | None:
    """The workload's policy, or None; ``NotFound`` for no such workload."""
    get_workload(session, workload_id)
    return session.get(OffsitePolicy, workload_id)


def _check_keep(name: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_KEEP:
        raise InvalidInput(f"{name} must be between 1 and {MAX_KEEP}", code="invalid_retention")


def _tightens(
    session: Session,
    policy: OffsitePolicy | None,
    workload_id: str,
    target_id: str,
    wanted: tuple[int | None, int | None, int | None],
) -> bool:
    """Whether ``wanted`` keeps fewer copies on ``target_id`` than the policy in force
    there (none: every copy kept) while that target holds verified copies of the
    workload: retention would then delete them."""
    current: tuple[int | None, ...] = (None, None, None)
    if policy is not None and policy.target_id == target_id:
        current = (policy.keep_last, policy.keep_daily, policy.keep_weekly)
    if not any(
        new is not None and (old is None or new < old)
        for old, new in zip(current, wanted, strict=True)
    ):
        return False
    held = session.scalar(
        select(SnapshotCopy.snapshot_id).where(
            SnapshotCopy.workload_id == workload_id,
            SnapshotCopy.target_id == target_id,
            SnapshotCopy.status == CopyStatus.VERIFIED,
        )
    )
    return held is not None


def set_policy(
    session: Session,
    actor: Actor,
    workload_id: str,
    *,
    target_id: str,
    keep_last: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    window_hours: int,
) -> OffsitePolicy:
    """Set (or replace) the workload's policy. 422 ``unknown_target`` for no such target,
    ``invalid_retention`` for a limit out of 1..10000 or a window out of 1..744 hours;
    403 ``forbidden`` for an operator whose limits would delete copies the target holds
    (``_tightens``).
    Every ready snapshot is then copied by the copier's next pass."""
    get_workload(session, workload_id)
    for name, value in (
        ("keep_last", keep_last),
        ("keep_daily", keep_daily),
        ("keep_weekly", keep_weekly),
    ):
        _check_keep(name, value)
    if not 1 <= window_hours <= MAX_WINDOW_HOURS:
        raise InvalidInput(
            f"window_hours must be between 1 and {MAX_WINDOW_HOURS}", code="invalid_retention"
        )
    if session.get(StorageTarget, target_id) is None:
        raise InvalidInput(
            f"no storage target {target_id!r}; an admin adds targets under Settings",
            code="unknown_target",
        )
    policy = session.get(OffsitePolicy, workload_id)
    wanted = (keep_last, keep_daily, keep_weekly)
    if not actor.can("admin") and _tightens(session, policy, workload_id, target_id, wanted):
        raise Forbidden(
            "only an admin may tighten off-site retention while copies of this workload are "
            "held on the target: it deletes copies (deleting snapshots is an admin's too)",
            code="forbidden",
        )
    if policy is None:
        policy = OffsitePolicy(workload_id=workload_id, target_id=target_id)
        session.add(policy)
    policy.target_id = target_id
    policy.keep_last, policy.keep_daily, policy.keep_weekly = keep_last, keep_daily, keep_weekly
    policy.window_hours = window_hours
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_OFFSITE,
        "workload",
        workload_id,
        {
            "target": target_id,
            "keep_last": keep_last,
            "keep_daily": keep_daily,
            "keep_weekly": keep_weekly,
            "window_hours": window_hours,
        },
    )
    return policy


def clear_policy(session: Session, actor: Actor, workload_id: str) -> None:
    """Stop copying the workload's snapshots. Copies already made stay on the target."""
    policy = policy_of(session, workload_id)
    if policy is not None:
        session.delete(policy)
    audit.record(
        session, actor, AuditAction.WORKLOAD_OFFSITE, "workload", workload_id, {"target": None}
    )


def keep_of(policy: OffsitePolicy) -> Keep:
    return Keep(policy.keep_last, policy.keep_daily, policy.keep_weekly)


def copies_of(session: Session, snapshot_ids: list[str]) -> dict[str, list[SnapshotCopy]]:
    """The copies of each snapshot, by target id (``pruned`` ones are gone: not shown)."""
    out: dict[str, list[SnapshotCopy]] = {sid: [] for sid in snapshot_ids}
    if not snapshot_ids:
        return out
    rows = session.scalars(
        select(SnapshotCopy)
        .where(SnapshotCopy.snapshot_id.in_(snapshot_ids), SnapshotCopy.status != CopyStatus.PRUNED)
        .order_by(SnapshotCopy.target_id)
    )
    for row in rows:
        out[row.snapshot_id].append(row)
    return out


def _pending_row(session: Session, snap: Snapshot, target_id: str) -> SnapshotCopy:
    row = session.get(SnapshotCopy, (snap.id, target_id))
    if row is None:
        row = SnapshotCopy(
            snapshot_id=snap.id,
            target_id=target_id,
            workload_id=snap.workload_id,
            key=data_key(snap.workload_id, snap.id, snap.created_at),
            status=CopyStatus.PENDING,
        )
        session.add(row)
    elif row.status != CopyStatus.COPYING:
        row.status, row.error, row.requested_at = CopyStatus.PENDING, None, utcnow()
    return row


def request_copy(
    session: Session, actor: Actor, workload_id: str, snapshot_id: str, target_id: str
) -> SnapshotCopy:
    """Queue a copy of a ready snapshot to a target now (again, when it was made). 409
    ``not_ready`` for a snapshot without a complete archive; 422 ``unknown_target``.
    A copy already running is answered as it is."""
    snap = snapshot_service.get(session, workload_id, snapshot_id)
    if snap.status != SnapshotStatus.READY:
        raise Conflict(f"snapshot {snapshot_id} is {snap.status}, not ready", code="not_ready")
    if session.get(StorageTarget, target_id) is None:
        raise InvalidInput(f"no storage target {target_id!r}", code="unknown_target")
    row = _pending_row(session, snap, target_id)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.SNAPSHOT_COPY,
        "workload",
        workload_id,
        {"snapshot": snapshot_id, "target": target_id},
    )
    return row


def schedule(session: Session, now: datetime) -> int:
    """The catch-up pass: a pending copy for every ready snapshot of a workload with a
    policy that has no copy on the policy's target yet, and failed copies again once
    ``RETRY_AFTER`` has passed. Returns how many copies it queued."""
    missing = session.execute(
        select(Snapshot, OffsitePolicy.target_id)
        .join(OffsitePolicy, OffsitePolicy.workload_id == Snapshot.workload_id)
        .outerjoin(
            SnapshotCopy,
            and_(
                SnapshotCopy.snapshot_id == Snapshot.id,
                SnapshotCopy.target_id == OffsitePolicy.target_id,
            ),
        )
        .where(
            Snapshot.status == SnapshotStatus.READY,
            or_(
                SnapshotCopy.snapshot_id.is_(None),
                and_(
                    SnapshotCopy.status == CopyStatus.FAILED,
                    SnapshotCopy.requested_at < now - RETRY_AFTER,
                ),
            ),
        )
    ).all()
    for snap, target_id in missing:
        _pending_row(session, snap, target_id)
    return len(missing)


@dataclass(frozen=True)
class Claimed:
    """A copy the copier took: everything it needs without the rows."""

    snapshot_id: str
    target_id: str
    workload_id: str
    key: str
    size: int
    sha256: str
    created_at: datetime
    origin: str


def claim(session: Session) -> Claimed | None:
    """Take the oldest pending copy (``copying``, one more attempt); None when none is."""
    row = session.scalars(
        select(SnapshotCopy)
        .where(SnapshotCopy.status == CopyStatus.PENDING)
        .order_by(SnapshotCopy.requested_at)
        .limit(1)
    ).first()
    if row is None:
        return None
    snap = session.get(Snapshot, row.snapshot_id)
    assert snap is not None  # a copy row goes with its snapshot (cascade)
    taken = session.execute(
        update(SnapshotCopy)
        .where(
            SnapshotCopy.snapshot_id == row.snapshot_id,
            SnapshotCopy.target_id == row.target_id,
            SnapshotCopy.status == CopyStatus.PENDING,
        )
        .values(
            status=CopyStatus.COPYING,
            started_at=utcnow(),
            attempts=SnapshotCopy.attempts + 1,
            error=None,
        )
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return Claimed(
        row.snapshot_id,
        row.target_id,
        row.workload_id,
        row.key,
        snap.size,
        snap.sha256,
        snap.created_at,
        str(snap.origin),
    )


def _row(session: Session, snapshot_id: str, target_id: str) -> SnapshotCopy | None:
    return session.get(SnapshotCopy, (snapshot_id, target_id))


def verified(session: Session, snapshot_id: str, target_id: str, size: int, at: datetime) -> None:
    """The copy was read back and matched; a deleted row is skipped."""
    row = _row(session, snapshot_id, target_id)
    if row is not None:
        row.status, row.size, row.verified_at, row.error = CopyStatus.VERIFIED, size, at, None


def failed(session: Session, snapshot_id: str, target_id: str, reason: str) -> None:
    """The copy did not verify (or could not be made), with why; a deleted row is skipped."""
    row = _row(session, snapshot_id, target_id)
    if row is not None:
        row.status, row.error, row.requested_at = CopyStatus.FAILED, reason, utcnow()


def recover(session: Session) -> int:
    """At start-up: copies a crash cut off go back to ``pending`` (the upload never
    committed an object, or its metadata is missing: nothing on the target counts)."""
    result = session.execute(
        update(SnapshotCopy)
        .where(SnapshotCopy.status == CopyStatus.COPYING)
        .values(status=CopyStatus.PENDING, error=CUT_OFF)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def pruned(
    session: Session, workload_id: str, target_id: str, snapshot_ids: list[str], keep: Keep
) -> None:
    """Retention removed these copies from the target: their rows become ``pruned`` (kept,
    so the catch-up pass never copies them again only for retention to delete them
    again), with one audit row."""
    for sid in snapshot_ids:
        row = _row(session, sid, target_id)
        if row is not None:
            row.status, row.error = CopyStatus.PRUNED, None
    audit.record(
        session,
        SYSTEM,
        AuditAction.OFFSITE_PRUNE,
        "workload",
        workload_id,
        {
            "target": target_id,
            "removed": snapshot_ids,
            "keep_last": keep.last,
            "keep_daily": keep.daily,
            "keep_weekly": keep.weekly,
        },
    )


def policies(session: Session) -> list[OffsitePolicy]:
    return list(session.scalars(select(OffsitePolicy)))


def stale(session: Session, now: datetime) -> dict[tuple[str, str], bool]:
    """Per (workload, target) of every policy: whether a ready snapshot captured more
    than the policy's window ago has no verified copy on its target (one retention
    pruned there was kept as long as the policy wanted: not stale)."""
    out: dict[tuple[str, str], bool] = {}
    for policy in policies(session):
        cutoff = now - timedelta(hours=policy.window_hours)
        late = session.scalar(
            select(Snapshot.id)
            .outerjoin(
                SnapshotCopy,
                and_(
                    SnapshotCopy.snapshot_id == Snapshot.id,
                    SnapshotCopy.target_id == policy.target_id,
                    SnapshotCopy.status.in_((CopyStatus.VERIFIED, CopyStatus.PRUNED)),
                ),
            )
            .where(
                Snapshot.workload_id == policy.workload_id,
                Snapshot.status == SnapshotStatus.READY,
                Snapshot.created_at < cutoff,
                SnapshotCopy.snapshot_id.is_(None),
            )
            .limit(1)
        )
        out[(policy.workload_id, policy.target_id)] = late is not None
    return out


def verified_copy(session: Session, snapshot_id: str) -> SnapshotCopy | None:
    """A verified copy of the snapshot (the most recently verified), or None."""
    return session.scalars(
        select(SnapshotCopy)
        .where(
            SnapshotCopy.snapshot_id == snapshot_id,
            SnapshotCopy.status == CopyStatus.VERIFIED,
        )
        .order_by(SnapshotCopy.verified_at.desc())
        .limit(1)
    ).first()


def get_copy(session: Session, snapshot_id: str, target_id: str) -> SnapshotCopy:
    row = _row(session, snapshot_id, target_id)
    if row is None:
        raise NotFound(f"snapshot {snapshot_id} has no copy on {target_id}")
    return row


@dataclass(frozen=True)
class Facts:
    """What one copy needs of the rows: the target (credentials opened) and the metadata
    that goes beside the copy."""

    target_name: str
    kind: str
    config: dict[str, Any]
    recipient: str
    identity: str
    meta: dict[str, Any]
    keep: Keep | None
    """The workload's retention on this target; None: its policy names another target
    (or none), so this copy's target is not pruned."""


def facts(session: Session, settings: Settings, job: Claimed) -> Facts:
    """The target and the metadata of a claimed copy (``storage_targets`` opens the
    sealed credentials). ``NotFound`` when the target went away."""
    target = storage_targets.get(session, job.target_id)
    workload = session.get(Workload, job.workload_id)
    snap = session.get(Snapshot, job.snapshot_id)
    policy = session.get(OffsitePolicy, job.workload_id)
    return Facts(
        target_name=target.name,
        kind=target.kind,
        config=storage_targets.full_config(settings, target),
        recipient=target.recipient,
        identity=storage_targets.identity_of(settings, target),
        meta={
            "format": 1,
            "workload": {}
            if workload is None
            else {"id": workload.id, "name": workload.name, "kind": workload.kind},
            "snapshot": {
                "id": job.snapshot_id,
                "created_at": job.created_at.isoformat(),
                "origin": job.origin,
                "size": job.size,
                "sha256": job.sha256,
                "manifest": {} if snap is None else dict(snap.manifest),
            },
        },
        keep=keep_of(policy) if policy is not None and policy.target_id == job.target_id else None,
    )


@dataclass(frozen=True)
class Source:
    """Where a verified copy of a snapshot is, to fetch it back (target opened)."""

    target_id: str
    target_name: str
    kind: str
    config: dict[str, Any]
    identity: str
    key: str
    size: int
    sha256: str


def source_of(session: Session, settings: Settings, snapshot_id: str) -> Source:
    """The most recently verified copy of a snapshot whose local archive is gone. 409
    ``archive_missing`` when there is none (or the snapshot is gone)."""
    snap = session.get(Snapshot, snapshot_id)
    row = None if snap is None else verified_copy(session, snapshot_id)
    if snap is None or row is None:
        raise Conflict(
            "the snapshot's archive is missing, and no verified off-site copy of it is known",
            code="archive_missing",
        )
    target = storage_targets.get(session, row.target_id)
    return Source(
        target_id=target.id,
        target_name=target.name,
        kind=target.kind,
        config=storage_targets.full_config(settings, target),
        identity=storage_targets.identity_of(settings, target),
        key=row.key,
        size=snap.size,
        sha256=snap.sha256,
    )


def copy_broken(session: Session, snapshot_id: str, target_id: str, message: str) -> None:
    """A verified copy that a fetch found corrupt or missing on its target is ``failed``
    with why: it stops counting as verified (the stale alert and the UI show it) and the
    catch-up pass copies it again once ``RETRY_AFTER`` has passed."""
    row = _row(session, snapshot_id, target_id)
    if row is not None and row.status == CopyStatus.VERIFIED:
        row.status, row.error, row.requested_at = CopyStatus.FAILED, message[:2000], utcnow()


def workload_exists(session: Session, workload_id: str) -> bool:
    return session.get(Workload, workload_id) is not None


@dataclass(frozen=True)
class Opened:
    """A target's kind, whole config, recipient and identity: what a transfer needs."""

    name: str
    kind: str
    config: dict[str, Any]
    recipient: str
    identity: str


def opened(session: Session, settings: Settings, target_id: str) -> Opened:
    """The target with its credentials and identity unsealed; 404 for no such target."""
    target = storage_targets.get(session, target_id)
    return Opened(
        target.name,
        target.kind,
        storage_targets.full_config(settings, target),
        target.recipient,
        storage_targets.identity_of(settings, target),
    )


def record_backup(
    session: Session,
    actor: Actor,
    target_id: str,
    key: str,
    size: int,
    more: dict[str, Any] | None = None,
) -> None:
    """One ``instance.backup`` audit row for a bundle put on a target (``more``: what a
    schedule adds, the keys it pruned and the trigger)."""
    audit.record(
        session,
        actor,
        AuditAction.INSTANCE_BACKUP,
        "storage_target",
        target_id,
        {"key": key, "size": size, **(more or {})},
    )


def record_backup_failed(
    session: Session, actor: Actor, target_id: str, trigger_id: str, code: str, message: str
) -> None:
    """One ``instance.backup_failed`` audit row: a scheduled backup that did not verify."""
    audit.record(
        session,
        actor,
        AuditAction.INSTANCE_BACKUP_FAILED,
        "storage_target",
        target_id,
        {"error": {"code": code, "message": message}, "trigger": trigger_id},
    )
