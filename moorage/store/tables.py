"""The database schema. Change it only together with a new Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from moorage.store.states import (
    CaptureMode,
    CopyStatus,
    DeliveryOutcome,
    DeliverySignature,
    DeploymentStatus,
    DesiredState,
    DrillOrigin,
    DrillPhase,
    DrillStatus,
    RestorePhase,
    RestoreStatus,
    SnapshotOrigin,
    SnapshotStatus,
    SwapMethod,
    WorkloadStatus,
)

E = TypeVar("E", bound=StrEnum)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored naive-UTC everywhere, handed back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class State(TypeDecorator[E]):
    """A ``StrEnum`` of ``states.py`` in a plain ``VARCHAR``: the column and its values are
    what a bare string made, so the schema never changes with the enum. Writing a value the
    enum does not name fails before SQL; ``blank``: ``""`` is kept too (not yet known)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int, *, blank: bool = False) -> None:
        super().__init__(length)
        self.enum = enum
        self.blank = blank

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or (self.blank and value == ""):
            return value
        return str(self.enum(value).value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None or (self.blank and value == ""):
            return value
        return self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    stages: Mapped[list[Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Workload(Base):
    __tablename__ = "workloads"
    __table_args__ = (
        UniqueConstraint("kind", "ref_id", name="uq_workloads_kind_ref"),
        UniqueConstraint("project_id", "stage", "name", name="uq_workloads_project_stage_name"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(63))
    ref_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(63))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    stage: Mapped[str] = mapped_column(String(63))
    config: Mapped[dict[str, Any]] = mapped_column()
    desired_state: Mapped[DesiredState] = mapped_column(
        State(DesiredState, 16), default=DesiredState.RUNNING
    )
    keep_last: Mapped[int | None] = mapped_column(Integer, default=None)
    snapshot_hooks: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    checkpoint: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    """``none`` or ``before-deploy`` (``states.CheckpointMode``, SPEC 10)."""
    """Commands run in the running container before and after each capture (SPEC 10):
    ``{"before"?: {"service"?, "command"}, "after"?: {...}, "timeout_s"}``; None: none."""
    """Retention: keep this many captured snapshots (pre-restore ones are never pruned)."""
    status: Mapped[WorkloadStatus] = mapped_column(
        State(WorkloadStatus, 16), default=WorkloadStatus.NEVER_DEPLOYED
    )
    host_powers: Mapped[list[Any]] = mapped_column(default=list)
    """The host powers (``sources/policy/``) its config and env ask for, as last allowed:
    by an admin, or unchanged or fewer. A deploy that asks for more needs an admin."""
    saved_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    """SHA-256 of the inputs as saved (config, env, volumes: ``services.deploys.inputs_digest``),
    kept by every guarded change (``services.guard``)."""
    deployed_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    """The same of what the last successful deployment ran; None before one that recorded
    it. The two differ while a saved change is not deployed (``pending_changes``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EnvVar(Base):
    __tablename__ = "env_vars"
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("workload_id", "name", name="uq_volumes_workload_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(63))
    scope: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(4096))
    target: Mapped[str] = mapped_column(String(4096))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    """Another workload may mount the same host directory when it says so too (SPEC 9)."""
    service: Mapped[str | None] = mapped_column(String(63), nullable=True)
    """The Compose service the bind goes to (compose workloads only; SPEC 10)."""


class ChainLink(Base):
    __tablename__ = "chain_links"
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True
    )
    next_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class Trigger(Base):
    __tablename__ = "triggers"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_triggers_kind_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    config: Mapped[dict[str, Any]] = mapped_column()
    token: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    next_run_at: Mapped[datetime | None] = mapped_column(default=None)
    """When a timed trigger fires next; firing compares-and-sets it, so it fires once."""
    last_fired_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One call of a webhook trigger, whatever became of it (the last 100 per trigger)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_trigger_delivery", "trigger_id", "delivery_id"),
        Index("ix_deliveries_trigger_body", "trigger_id", "body_sha256"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger_id: Mapped[str] = mapped_column(
        ForeignKey("triggers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(64), default="")
    delivery_id: Mapped[str | None] = mapped_column(String(128), default=None)
    signature: Mapped[DeliverySignature] = mapped_column(State(DeliverySignature, 16))
    outcome: Mapped[DeliveryOutcome] = mapped_column(State(DeliveryOutcome, 16))
    reason: Mapped[str] = mapped_column(Text, default="")
    status_code: Mapped[int] = mapped_column(Integer)
    deployments: Mapped[list[Any]] = mapped_column(default=list)
    body_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    commit: Mapped[str | None] = mapped_column(String(64), default=None)
    """The pushed commit, when the payload named one (``webhook.pushed_commit``)."""
    commit_title: Mapped[str | None] = mapped_column(String(200), default=None)
    """SHA-256 of a validly signed body: a replay guard whatever delivery id comes with it."""


class DeliveryClaim(Base):
    """A delivery id or signed body a webhook trigger has taken, for the replay window.

    Inserted (insert, or take over a claim older than the window) in the transaction that
    queues, so two copies of one delivery arriving together cannot both queue: the second
    finds the first's (``services/hooks._take``)."""

    __tablename__ = "delivery_claims"
    __table_args__ = (Index("ix_delivery_claims_trigger_at", "trigger_id", "at"),)
    trigger_id: Mapped[str] = mapped_column(
        ForeignKey("triggers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    """``id:<delivery id>`` or ``sha256:<digest of the signed body>``."""
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Binding(Base):
    __tablename__ = "bindings"
    trigger_id: Mapped[str] = mapped_column(
        ForeignKey("triggers.id", ondelete="CASCADE"), primary_key=True
    )
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_workload_created", "workload_id", "created_at"),
        # The deploy workers' queue scan (oldest queued deployment per workload).
        Index("ix_deployments_status_workload_created", "status", "workload_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"))
    status: Mapped[DeploymentStatus] = mapped_column(
        State(DeploymentStatus, 16), default=DeploymentStatus.QUEUED
    )
    reason: Mapped[str] = mapped_column(String(128))
    pull: Mapped[bool] = mapped_column(Boolean, default=False)
    """Pull the image even when a local copy exists (the registry's tag moved)."""
    artifact: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What the deploy ran: ``{"config", "env", "volumes"}`` as it read them (secrets in
    clear, so never sent out). Reconcile and a restore run these, never a later edit."""
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    checkpoint_snapshot_id: Mapped[str | None] = mapped_column(String(32), default=None)
    """The snapshot this deploy captured before it changed anything (SPEC 10)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Snapshot(Base):
    """A captured (or imported) archive of some or all of a workload's volumes."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_workload_created", "workload_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"))
    origin: Mapped[SnapshotOrigin] = mapped_column(State(SnapshotOrigin, 16))
    mode: Mapped[CaptureMode | Literal[""]] = mapped_column(State(CaptureMode, 8, blank=True))
    """``""`` for an import: nothing was captured."""
    status: Mapped[SnapshotStatus] = mapped_column(
        State(SnapshotStatus, 16), default=SnapshotStatus.CAPTURING
    )
    volumes: Mapped[list[Any]] = mapped_column(default=list)
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    progress_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    log: Mapped[str] = mapped_column(Text, default="", server_default="")
    """What the capture's hooks printed, and what became of them (SPEC 10)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    """When a restore drill of this archive last passed (SPEC section 10)."""


class Drill(Base):
    """One restore drill: a snapshot restored into a sandbox, started and checked."""

    __tablename__ = "drills"
    __table_args__ = (Index("ix_drills_workload_created", "workload_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"))
    snapshot_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[DrillStatus] = mapped_column(State(DrillStatus, 16), default=DrillStatus.RUNNING)
    phase: Mapped[DrillPhase] = mapped_column(State(DrillPhase, 16), default=DrillPhase.QUEUED)
    check: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What was asked: ``{"http", "port"}``, ``{"exec", "service"}``, or ``{}`` (the
    workload's own health check)."""
    origin: Mapped[DrillOrigin] = mapped_column(State(DrillOrigin, 16), default=DrillOrigin.MANUAL)
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class RecoveryPoint(Base):
    """Every workload of a project stage captured at one instant, restored together."""

    __tablename__ = "recovery_points"
    __table_args__ = (Index("ix_recovery_points_project_created", "project_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(63))
    mode: Mapped[CaptureMode] = mapped_column(State(CaptureMode, 8))
    status: Mapped[SnapshotStatus] = mapped_column(
        State(SnapshotStatus, 16), default=SnapshotStatus.CAPTURING
    )
    items: Mapped[list[Any]] = mapped_column(default=list)
    """``[{"workload_id", "name", "snapshot_id"}]``, one per workload of the stage it holds."""
    skipped: Mapped[list[Any]] = mapped_column(default=list)
    """``[{"workload_id", "name", "reason"}]``: the stage's workloads with nothing to
    capture (no volumes), neither quiesced nor restored with the point."""
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    restore_status: Mapped[RestoreStatus | Literal[""]] = mapped_column(
        State(RestoreStatus, 16, blank=True), default=""
    )
    """``""`` until restored; then the restore of the whole point."""
    restores: Mapped[list[Any]] = mapped_column(default=list)
    """``[{"workload_id", "restore_id"}]`` of the last restore, in the order they run."""
    restore_error: Mapped[str | None] = mapped_column(Text, default=None)
    restored_at: Mapped[datetime | None] = mapped_column(default=None)


class Restore(Base):
    """One restore of a snapshot onto a workload's live volumes."""

    __tablename__ = "restores"
    __table_args__ = (Index("ix_restores_workload_created", "workload_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"))
    snapshot_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[RestoreStatus] = mapped_column(
        State(RestoreStatus, 16), default=RestoreStatus.RUNNING
    )
    phase: Mapped[RestorePhase] = mapped_column(
        State(RestorePhase, 16), default=RestorePhase.QUEUED
    )
    volumes: Mapped[list[Any]] = mapped_column(default=list)
    staging: Mapped[list[Any]] = mapped_column(default=list)
    """Every directory this restore created beside a target, for cleanup after a crash."""
    progress_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    swap: Mapped[SwapMethod | Literal[""]] = mapped_column(
        State(SwapMethod, 16, blank=True), default=""
    )
    """``""`` until the pre-flight has chosen."""
    error: Mapped[str | None] = mapped_column(Text, default=None)
    pre_restore_snapshot_id: Mapped[str | None] = mapped_column(String(32), default=None)
    """Set once the replaced data is packed and that snapshot is ready."""
    kept_paths: Mapped[list[Any]] = mapped_column(default=list)
    """Moved-aside directories left on disk: no durable archive holds all of their data."""
    kept_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class StorageTarget(Base):
    """Where off-site copies go (SPEC section 11). ``config`` holds the kind's config
    without its credentials; ``sealed`` holds them and the target's age identity,
    encrypted to the instance key (``security.sealing``), never shown."""

    __tablename__ = "storage_targets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(63))
    config: Mapped[dict[str, Any]] = mapped_column()
    sealed: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(String(128))
    """The public half of the target's age identity: what copies are encrypted to."""
    last_test_at: Mapped[datetime | None] = mapped_column(default=None)
    last_test_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OffsitePolicy(Base):
    """Where a workload's snapshots are copied and what the target keeps (SPEC section 11).
    ``keep_*`` None: no limit of that kind (all None: the target keeps every copy).
    ``window_hours``: a ready snapshot whose copy has not verified this long after it
    was captured makes the workload stale (``moorage_offsite_stale``)."""

    __tablename__ = "offsite_policies"
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[str] = mapped_column(ForeignKey("storage_targets.id", ondelete="CASCADE"))
    keep_last: Mapped[int | None] = mapped_column(default=None)
    keep_daily: Mapped[int | None] = mapped_column(default=None)
    keep_weekly: Mapped[int | None] = mapped_column(default=None)
    window_hours: Mapped[int] = mapped_column(default=24)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SnapshotCopy(Base):
    """One snapshot's copy on one storage target: ``pending -> copying -> verified |
    failed``. ``key`` is the object on the target; ``size`` its ciphertext bytes."""

    __tablename__ = "snapshot_copies"
    __table_args__ = (Index("ix_snapshot_copies_status", "status"),)
    snapshot_id: Mapped[str] = mapped_column(
        ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[str] = mapped_column(
        ForeignKey("storage_targets.id", ondelete="CASCADE"), primary_key=True
    )
    workload_id: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str] = mapped_column(String(512))
    status: Mapped[CopyStatus] = mapped_column(State(CopyStatus, 16), default=CopyStatus.PENDING)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DnsProvider(Base):
    """A DNS provider a domain may name (SPEC section 12): its kind (``moorage.dns``
    entry point), its config without credentials, and the credentials sealed to the
    instance key (``security.sealing``), never shown."""

    __tablename__ = "dns_providers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(63))
    config: Mapped[dict[str, Any]] = mapped_column()
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Domain(Base):
    """A host name routed by the proxy to one port of a workload (SPEC section 12). A
    host is unique across the instance; ``dns_state``/``dns_error`` and ``acme_error``
    are what the proxy last saw (``services/domain_state.py``)."""

    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(253), unique=True)
    port: Mapped[int] = mapped_column(Integer)
    service: Mapped[str | None] = mapped_column(String(63), default=None)
    tls: Mapped[str] = mapped_column(String(16))
    redirect_http: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_provider_id: Mapped[str | None] = mapped_column(
        ForeignKey("dns_providers.id", ondelete="RESTRICT"), default=None, index=True
    )
    dns_state: Mapped[str] = mapped_column(String(16), default="")
    dns_error: Mapped[str | None] = mapped_column(Text, default=None)
    acme_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DnsRecord(Base):
    """An address record Moorage wrote through a DNS provider and still owns: what the
    proxy's DNS sync compares with the domains, to add what is missing and delete what
    no domain wants any more (also after the domain row is gone)."""

    __tablename__ = "dns_records"
    host: Mapped[str] = mapped_column(String(253), primary_key=True)
    rtype: Mapped[str] = mapped_column(String(8), primary_key=True)
    provider_id: Mapped[str] = mapped_column(
        ForeignKey("dns_providers.id", ondelete="RESTRICT"), index=True
    )
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
