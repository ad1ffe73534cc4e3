"""Restore drills (SPEC section 10): the rows. A drill proves a snapshot restores: the
sandbox work is ``snapshots/drills.py``; this module requests, records and ends drills.

A drill never changes its workload (its containers, volumes and rows stay as they are),
so a request takes no workload lock; it writes its ``drills`` row and one
``snapshot.drill`` audit row. A ``passed`` drill sets the snapshot's ``verified_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moorage import program_output
from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.names import new_id
from moorage.plugins.registry import Registry
from moorage.plugins.spec import Sandboxed, Stack
from moorage.security.roles import Actor
from moorage.services import audit, powers, workloads
from moorage.services import snapshots as snapshot_service
from moorage.services.audit import AuditAction
from moorage.services.deploys import last_success
from moorage.store.states import (
    LATEST_ORIGINS,
    DrillOrigin,
    DrillPhase,
    DrillStatus,
    SnapshotStatus,
)
from moorage.store.tables import Drill, Snapshot

MAX_LOG_CHARS = 64 * 1024
"""A drill's log is cut to its last 64 KiB (a check may print a lot), at a line's start
(``program_output.tail``: a line cut inside would lose its mark)."""
DEFAULT_TIMEOUT_S = 60.0


class Check(BaseModel):
    """What a drill checks in its sandbox: an HTTP GET of ``http`` on container ``port``
    (run with ``wget`` inside the container, through ``docker exec``), or the command
    ``exec`` run in the container of ``service`` (the workload's one container when
    empty). Neither: the workload's own health check. Retried until ``timeout_s``."""

    model_config = ConfigDict(extra="forbid")

    http: str | None = Field(default=None, pattern=r"^/[\x21-\x7e]*$", max_length=1024)
    port: int | None = Field(default=None, ge=1, le=65535)
    exec: list[str] | None = Field(default=None, min_length=1, max_length=64)
    service: str | None = Field(default=None, max_length=63)
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=3600)

    @model_validator(mode="after")
    def _one(self) -> Check:
        if self.http is not None and self.exec is not None:
            raise ValueError("set either http or exec, not both")
        if self.http is not None and self.port is None:
            raise ValueError("an http check needs the container port")
        if self.port is not None and self.http is None:
            raise ValueError("port goes with http")
        if self.exec is not None and any(not a or "\x00" in a for a in self.exec):
            raise ValueError("exec arguments must be non-empty and free of NUL bytes")
        return self


def parse_check(raw: dict[str, Any] | None) -> Check:
    """The check of a request (422 ``invalid_request`` naming the field)."""
    try:
        return Check.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "check"
        raise InvalidInput(f"check.{where}: {first['msg']}", code="invalid_request") from None


def request(
    s: Session,
    actor: Actor,
    registry: Registry,
    workload_id: str,
    snapshot_id: str | None,
    check: Check,
    *,
    origin: DrillOrigin = DrillOrigin.MANUAL,
) -> Drill:
    """A ``running`` drill of a ready snapshot (the latest ready one when ``snapshot_id``
    is None) and its audit row; the caller commits and starts it. 404 for no such
    workload or snapshot; 409 ``not_ready``; 422 ``volumes_unsupported`` for a kind
    that cannot run in a sandbox; 422 ``unknown_service`` / ``invalid_request`` for a
    ``check.service`` the workload does not have; 409 ``not_deployed`` when nothing ever
    ran (a drill runs the last deployed artifact); 403 ``needs_admin`` for an operator's
    ``exec`` on a guarded workload, or for a snapshot that held an ``absolute`` volume of
    one guarded no longer, or checked over ``http`` (its answer goes into the log)."""
    workload = workloads.get(s, workload_id)
    if check.exec is not None:
        # The command runs in a sandbox of the workload as the admin approved it, with
        # its powers (a host file as a secret, say): on such a workload it is the admin's.
        powers.check_change(
            s, actor, workload, "run a command of their own in a drill of a workload"
        )
    source = registry.source(workload.kind)
    if not source.supports_volumes or not isinstance(source, Sandboxed):
        raise InvalidInput(
            f"a {workload.kind} workload cannot be drilled yet", code="volumes_unsupported"
        )
    if check.service is not None:
        services = (
            source.service_names(dict(workload.config), {}) if isinstance(source, Stack) else []
        )
        if check.service not in services:
            raise InvalidInput(
                f"check.service: the Compose file has no service {check.service!r} (it has: "
                f"{', '.join(services)})"
                if services
                else f"check.service: a {workload.kind} workload has no services; leave it out",
                code="unknown_service" if services else "invalid_request",
            )
    if snapshot_id is None:
        snap = latest_ready(s, workload_id)
        if snap is None:
            raise Conflict(
                "the workload has no ready snapshot to drill (taken by hand, by a schedule or "
                "a recovery point, or imported: pre-restore snapshots and checkpoints are "
                "drilled by their id)",
                code="not_ready",
            )
    else:
        snap = snapshot_service.get(s, workload_id, snapshot_id)
        if snap.status != SnapshotStatus.READY:
            raise Conflict(f"snapshot {snapshot_id} is {snap.status}, not ready", code="not_ready")
    absolute = [] if actor.can("admin") else snapshot_service.captured_absolute(snap)
    if absolute and (check.http is not None or not powers.guarded(s, workload)):
        # The sandbox mounts the snapshot's data by volume name into what the workload
        # deploys now: a volume moved from a host directory to a stage one since, an
        # operator's image or ``exec`` check read the host directory's files (attacker
        # pass H). Those are the admin's to read (``snapshots.check_reader``). A workload
        # guarded now runs what an admin approved, and its ``exec`` checks are theirs;
        # an ``http`` check's answer is logged, its path the requester's (pass I).
        raise powers.needs_admin(absolute, "drill a snapshot of a workload")
    if last_success(s, workload_id) is None:
        raise Conflict(
            "the workload never deployed successfully: a drill runs its deployed version",
            code="not_deployed",
        )
    drill = Drill(
        id=new_id("dr"),
        workload_id=workload_id,
        snapshot_id=snap.id,
        check=check.model_dump(exclude_none=True, exclude_defaults=True),
        origin=origin,
        status=DrillStatus.RUNNING,
        phase=DrillPhase.QUEUED,
    )
    s.add(drill)
    s.flush()
    audit.record(
        s,
        actor,
        AuditAction.SNAPSHOT_DRILL,
        "workload",
        workload_id,
        {"drill": drill.id, "snapshot": snap.id, "origin": str(origin)},
    )
    return drill


def latest_ready(s: Session, workload_id: str) -> Snapshot | None:
    """The workload's newest ``ready`` snapshot a person or a schedule took or imported
    (``LATEST_ORIGINS``: not a pre-restore snapshot or a checkpoint), if any."""
    return s.scalar(
        select(Snapshot)
        .where(
            Snapshot.workload_id == workload_id,
            Snapshot.status == SnapshotStatus.READY,
            Snapshot.origin.in_(LATEST_ORIGINS),
        )
        .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
        .limit(1)
    )


def get(s: Session, workload_id: str, drill_id: str) -> Drill:
    drill = s.get(Drill, drill_id)
    if drill is None or drill.workload_id != workload_id:
        raise NotFound(f"no drill {drill_id!r} of workload {workload_id!r}")
    return drill


def list_for(s: Session, workload_id: str, snapshot_id: str | None = None) -> list[Drill]:
    """The workload's drills (of one snapshot), newest first; 404 for no such workload."""
    workloads.get(s, workload_id)
    query = select(Drill).where(Drill.workload_id == workload_id)
    if snapshot_id is not None:
        snapshot_service.get(s, workload_id, snapshot_id)
        query = query.where(Drill.snapshot_id == snapshot_id)
    return list(s.scalars(query.order_by(Drill.created_at.desc(), Drill.id.desc()).limit(100)))


@dataclass(frozen=True)
class Order:
    """What a drill's worker needs of its row."""

    workload_id: str
    snapshot_id: str
    check: Check


def order(s: Session, drill_id: str) -> Order | None:
    """The drill's workload, snapshot and check; None when the row is gone or ended."""
    drill = s.get(Drill, drill_id)
    if drill is None or drill.status != DrillStatus.RUNNING:
        return None
    return Order(drill.workload_id, drill.snapshot_id, Check.model_validate(drill.check))


def set_phase(s: Session, drill_id: str, phase: DrillPhase, log: str) -> None:
    """The step the drill is at, and its log so far."""
    s.execute(
        update(Drill)
        .where(Drill.id == drill_id, Drill.status == DrillStatus.RUNNING)
        .values(phase=phase, log=program_output.tail(log, MAX_LOG_CHARS))
    )


def finish(s: Session, drill_id: str, passed: bool, log: str, error: str | None) -> None:
    """End a running drill: ``passed`` also sets the snapshot's ``verified_at``."""
    drill = s.get(Drill, drill_id)
    if drill is None or drill.status != DrillStatus.RUNNING:
        return
    now = datetime.now(UTC)
    drill.status = DrillStatus.PASSED if passed else DrillStatus.FAILED
    drill.phase = DrillPhase.DONE
    drill.log = program_output.tail(log, MAX_LOG_CHARS)
    drill.error = error
    drill.finished_at = now
    if passed:
        s.execute(update(Snapshot).where(Snapshot.id == drill.snapshot_id).values(verified_at=now))


def running(s: Session) -> list[str]:
    """Every drill still ``running``: at start-up, the ones a crash cut off."""
    return list(s.scalars(select(Drill.id).where(Drill.status == DrillStatus.RUNNING)))


@dataclass(frozen=True)
class Standing:
    """What a workload's drills say: the newest ended one, and when one last passed."""

    workload_id: str
    last_status: DrillStatus
    last_drill_id: str
    last_finished_at: datetime | None
    verified_at: datetime | None


def standings(s: Session) -> list[Standing]:
    """Each drilled workload's standing (for "verified restorable N hours ago" and the red
    mark where the latest drill failed), in one pass over the ended drills, newest first."""
    rows = s.execute(
        select(Drill.workload_id, Drill.id, Drill.status, Drill.finished_at)
        .where(Drill.status != DrillStatus.RUNNING)
        .order_by(Drill.created_at.desc(), Drill.id.desc())
    )
    last: dict[str, tuple[str, DrillStatus, datetime | None]] = {}
    passed: dict[str, datetime | None] = {}
    for workload_id, drill_id, status, finished_at in rows:
        last.setdefault(workload_id, (drill_id, status, finished_at))
        if status == DrillStatus.PASSED:
            passed.setdefault(workload_id, finished_at)
    return [
        Standing(w, status, drill_id, finished_at, passed.get(w))
        for w, (drill_id, status, finished_at) in last.items()
    ]
