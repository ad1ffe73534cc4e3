"""Storage targets for off-site copies (SPEC section 11)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from moorage.api.schemas.base import MULTILINE_TEXT, OPAQUE_TEXT, Body


class StorageTargetIn(Body):
    name: str = Field(max_length=63)
    kind: str = Field(max_length=63, description="sftp, s3 or local (GET /api/kinds)")
    config: dict[str, Any] = Field(json_schema_extra=MULTILINE_TEXT)
    passphrase: str = Field(
        min_length=12,
        max_length=1024,
        description="Seals the target's key on the target; never stored or sent to it. "
        "For a target an earlier instance used: the passphrase it was made with.",
        json_schema_extra=OPAQUE_TEXT,  # a secret, like a password: kept as typed
    )


class StorageTargetPatch(Body):
    name: str | None = Field(default=None, max_length=63)
    config: dict[str, Any] | None = Field(
        default=None,
        description="JSON Merge Patch (RFC 7386) applied to the current config; a masked "
        "credential sent back unchanged keeps its stored value",
        json_schema_extra=MULTILINE_TEXT,
    )


class StorageTargetOut(BaseModel):
    id: str
    name: str
    kind: str
    config: dict[str, Any] = Field(description="Credentials masked")
    recipient: str = Field(description="The age recipient copies are encrypted to")
    last_test_at: datetime | None
    last_test_error: str | None
    created_at: datetime
    updated_at: datetime


class StorageTargetList(BaseModel):
    items: list[StorageTargetOut]


class ProbeStep(BaseModel):
    step: str
    ms: int


class ProbeError(BaseModel):
    code: str
    message: str


class StorageTargetProbe(BaseModel):
    ok: bool
    steps: list[ProbeStep]
    error: ProbeError | None


class CatalogEntry(BaseModel):
    """A copy a target holds (a copy counts only with its metadata object)."""

    key: str = Field(description="The copy's object key; import it with this")
    workload_id: str
    workload_name: str | None
    snapshot_id: str = Field(description="The snapshot's id where it was captured")
    created_at: datetime = Field(description="When the snapshot was captured")
    size: int | None = Field(description="The archive's bytes (plaintext)")
    sha256: str | None
    ciphertext_size: int
    copied_at: str | None
    known_workload: bool = Field(description="This instance has the workload")
    error: str | None = Field(description="Why the copy's metadata could not be read")


class CatalogList(BaseModel):
    items: list[CatalogEntry]
