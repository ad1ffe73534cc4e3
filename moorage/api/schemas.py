"""Request and response bodies of the API; they make the OpenAPI document the UI is built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from moorage.store.states import (
    CaptureMode,
    DeliveryOutcome,
    DeliverySignature,
    DeploymentStatus,
    DesiredState,
    RestorePhase,
    RestoreStatus,
    SnapshotOrigin,
    SnapshotStatus,
    SwapMethod,
    WorkloadStatus,
)
from moorage.text import LINE, MULTILINE, OPAQUE, SCHEMA_KEY, TextRule, describe, first_refused
from moorage.volumes.paths import VOLUME_SCOPES

MULTILINE_TEXT: dict[str, Any] = {SCHEMA_KEY: MULTILINE.value}
"""``json_schema_extra`` of a field whose text may span lines (see ``moorage/text.py``)."""
OPAQUE_TEXT: dict[str, Any] = {SCHEMA_KEY: OPAQUE.value}
"""``json_schema_extra`` of a field that is data handed on byte for byte."""


class Body(BaseModel):
    """A request body: unknown fields are an error, so typos never pass silently; every
    string in it (keys too, at any depth) passes its field's text rule (``moorage/text.py``)
    before anything stores it: 422 ``invalid_text``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _plain_text(self) -> Self:
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            rule = TextRule(str(extra.get(SCHEMA_KEY, LINE))) if isinstance(extra, dict) else LINE
            # A nested Body has checked itself: the walk does not enter models.
            found = first_refused(getattr(self, name), rule, name)
            if found is not None:
                where, char = found
                raise PydanticCustomError(
                    "invalid_text",
                    "holds {char}, which this field does not take",
                    {"where": where, "char": describe(char)},
                )
        return self


class ErrorDetail(BaseModel):
    code: str = Field(description="Which refusal: a code of ``errors.CODES``")
    message: str = Field(description="What went wrong and what to do, for a person")
    details: Any = Field(
        default=None,
        description="More, by code: the fields of invalid_request, the other workload of a "
        "clash, retry_after, ...",
    )


class ErrorOut(BaseModel):
    """Every error answer (``errors.error_body``); each route declares its statuses."""

    error: ErrorDetail


# --- session, users, tokens -------------------------------------------------


class LoginIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024, json_schema_extra=OPAQUE_TEXT)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    username: str
    role: str
    created_at: datetime


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str


class UserIn(Body):
    username: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin"]
    password: str = Field(min_length=1, max_length=1024, json_schema_extra=OPAQUE_TEXT)


class UserPatch(Body):
    role: Literal["viewer", "operator", "admin"] | None = None
    password: str | None = Field(
        default=None, min_length=1, max_length=1024, json_schema_extra=OPAQUE_TEXT
    )


class UserList(BaseModel):
    items: list[UserOut]


class TokenIn(Body):
    name: str = Field(default="api", min_length=1, max_length=64)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only a digest is stored")


class TokenList(BaseModel):
    items: list[TokenOut]


# --- projects ---------------------------------------------------------------


class ProjectIn(Body):
    slug: str = Field(max_length=63)
    stages: list[str] | None = None
    description: str = Field(default="", max_length=2000, json_schema_extra=MULTILINE_TEXT)


class ProjectPatch(Body):
    stages: list[str] | None = None
    description: str | None = Field(default=None, max_length=2000, json_schema_extra=MULTILINE_TEXT)


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    slug: str
    description: str
    stages: list[str]
    created_at: datetime


class ProjectList(BaseModel):
    items: list[ProjectOut]


# --- workloads --------------------------------------------------------------


class WorkloadIn(Body):
    name: str = Field(max_length=63)
    kind: str = Field(max_length=63)
    project: str = Field(max_length=63)
    stage: str = Field(max_length=63)
    config: dict[str, Any] = Field(json_schema_extra=MULTILINE_TEXT)
    ref_id: str | None = Field(default=None, max_length=128)


class WorkloadPatch(Body):
    name: str | None = Field(default=None, max_length=63)
    config: dict[str, Any] | None = Field(
        default=None,
        description="JSON Merge Patch (RFC 7386) applied to the current config",
        json_schema_extra=MULTILINE_TEXT,
    )
    ref_id: str | None = Field(default=None, max_length=128)
    keep_last: int | None = Field(
        default=None,
        ge=1,
        le=10000,
        description="Retention: keep this many captured snapshots; null keeps them all",
    )


class LastDeployment(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    status: DeploymentStatus
    created_at: datetime
    finished_at: datetime | None


class WorkloadOut(BaseModel):
    id: str
    ref_id: str
    name: str
    kind: str
    project: str
    stage: str
    config: dict[str, Any]
    desired_state: DesiredState = Field(
        description="What reconcile keeps it at; set by stop, start, restart and a deploy",
    )
    status: WorkloadStatus = Field(
        description="As last observed; ``never_deployed`` before a first deploy"
    )
    pending_changes: bool = Field(
        default=False,
        description="A saved change of config, env or volumes that no successful deploy has run",
    )
    keep_last: int | None = None
    created_at: datetime
    updated_at: datetime
    last_deployment: LastDeployment | None = None


class WorkloadList(BaseModel):
    items: list[WorkloadOut]


class DeploymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    status: DeploymentStatus
    reason: str
    artifact: dict[str, Any]
    pull: bool = False
    error: str | None
    log: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DeploymentList(BaseModel):
    items: list[DeploymentOut]


class CaptureIn(Body):
    volumes: list[str] | None = Field(default=None, description="Volume names; all if absent")
    # A string the service checks, so a bad one is 422 ``invalid_mode`` like every other
    # refusal of a capture; the document still lists the modes.
    mode: str = Field(
        default=CaptureMode.STOP.value,
        json_schema_extra={"enum": [m.value for m in CaptureMode]},
        description="stop (consistent), pause (crash-consistent) or none (live)",
    )


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    origin: SnapshotOrigin
    mode: CaptureMode | Literal[""] = Field(description='``""`` for an import')
    status: SnapshotStatus
    volumes: list[str]
    size: int
    sha256: str
    progress_bytes: int
    total_bytes: int
    error: str | None
    warnings: list[str]
    manifest: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @field_validator("manifest", mode="before")
    @classmethod
    def _shown_manifest(cls, manifest: dict[str, Any] | None) -> dict[str, Any]:
        """What a client sees of the stored manifest: these four keys, nothing else."""
        manifest = manifest or {}
        return {
            "format": manifest.get("format"),
            "workload": manifest.get("workload"),
            "created_at": manifest.get("created_at"),
            "volumes": manifest.get("volumes", []),
        }


class SnapshotList(BaseModel):
    items: list[SnapshotOut]


class RestoreIn(Body):
    volumes: list[str] | None = Field(default=None, description="A subset; all if absent")


class RestoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    snapshot_id: str
    status: RestoreStatus
    phase: RestorePhase
    volumes: list[str]
    progress_bytes: int
    total_bytes: int
    swap: SwapMethod | Literal[""] = Field(
        description='exchange (RENAME_EXCHANGE) or rename; ``""`` before the pre-flight chose'
    )
    error: str | None
    pre_restore_snapshot_id: str | None = Field(
        description="The snapshot holding the replaced data, once it is packed and ready"
    )
    kept_paths: list[str] = Field(
        description="Directories of replaced data left on disk because no durable archive "
        "holds all of it (a socket, a device, a failed pack); empty when none"
    )
    kept_reason: str | None = Field(description="Why kept_paths were kept")
    created_at: datetime
    finished_at: datetime | None


class RestoreList(BaseModel):
    items: list[RestoreOut]


class PromoteIn(Body):
    source: str = Field(max_length=32, description="The workload whose deployed artifact to copy")


class ReconcileOut(BaseModel):
    status: WorkloadStatus


class LogsOut(BaseModel):
    logs: str


class EnvValue(Body):
    value: str | None = Field(
        description="null on read for secrets; null on write keeps it",
        json_schema_extra=OPAQUE_TEXT,
    )
    secret: bool = False


class RevealedEnv(BaseModel):
    key: str
    value: str
    secret: bool


class ChainIn(Body):
    next: list[str]


class ChainOut(BaseModel):
    next: list[str]


class VolumeIn(Body):
    name: str = Field(max_length=63)
    scope: str = Field(max_length=16, json_schema_extra={"enum": list(VOLUME_SCOPES)})
    source: str = Field(max_length=4096)
    target: str = Field(max_length=4096)
    read_only: bool = False
    shared: bool = Field(
        default=False,
        description="Another workload may mount the same stage or project directory "
        "when its volume says so too",
    )
    # Read-only fields of VolumeOut, accepted and ignored so a GET can be PUT back as is.
    host_path: str | None = Field(default=None, description="ignored: derived by Moorage")
    problem: str | None = Field(default=None, description="ignored: derived by Moorage")


class VolumeOut(BaseModel):
    name: str
    scope: str
    source: str
    target: str
    read_only: bool
    shared: bool = False
    host_path: str | None = Field(description="null when the source no longer passes the rules")
    problem: str | None = Field(default=None, description="why host_path is null")


class VolumeList(BaseModel):
    items: list[VolumeOut]


# --- triggers ---------------------------------------------------------------


class TriggerIn(Body):
    kind: str = Field(max_length=63)
    name: str = Field(max_length=63)
    config: dict[str, Any] = Field(default_factory=dict, json_schema_extra=MULTILINE_TEXT)


class TriggerPatch(Body):
    name: str | None = Field(default=None, max_length=63)
    config: dict[str, Any] | None = Field(
        default=None,
        description="JSON Merge Patch (RFC 7386) applied to the current config",
        json_schema_extra=MULTILINE_TEXT,
    )


class TriggerOut(BaseModel):
    id: str
    kind: str
    name: str
    config: dict[str, Any]
    has_secret: bool
    token: str | None = Field(description="Webhook token; shown to operators and admins")
    url: str | None = Field(description="Webhook URL; shown to operators and admins")
    workloads: list[str]
    next_run_at: datetime | None = Field(default=None, description="Timed kinds: next firing")
    last_fired_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class TriggerList(BaseModel):
    items: list[TriggerOut]


class DeliveryOut(BaseModel):
    id: int
    at: datetime
    source: str
    provider: str
    event: str
    delivery_id: str | None
    signature: DeliverySignature
    outcome: DeliveryOutcome
    reason: str
    status_code: int
    deployments: list[str]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class BindIn(Body):
    trigger_id: str | None = Field(default=None, max_length=32)
    trigger: TriggerIn | None = None


# --- kinds, audit, health ---------------------------------------------------


KindCapability = Literal["volumes", "fixed_ports", "pull"]
"""``volumes``: mounts Moorage volumes (and so can snapshot them); ``fixed_ports``: its
config may publish fixed host ports; ``pull``: a deploy can pull its image again."""


class KindOut(BaseModel):
    kind: str
    category: Literal["source", "trigger"]
    description: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    sample: dict[str, Any]
    capabilities: list[KindCapability] = Field(
        default_factory=list,
        description="What the kind can do, for clients to branch on instead of kind names",
    )

    model_config = ConfigDict(populate_by_name=True)


class KindList(BaseModel):
    items: list[KindOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]


class AuditList(BaseModel):
    items: list[AuditOut]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
