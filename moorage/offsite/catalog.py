"""What a storage target holds, and bringing one copy back as a local snapshot (SPEC
section 11: ``GET /api/storage-targets/{tid}/catalog``, ``POST .../catalog/{key}/import``).

The catalog is the target's listing read through ``layout.held`` (a copy counts only
with its metadata object) and each copy's metadata decrypted with the target's identity:
workload, snapshot, plaintext size, SHA-256, capture and copy times. A metadata object
that does not decrypt, or decrypts to a shape Moorage does not write, is listed with its
error, not skipped.

An import streams the copy through age into ``IncomingArchive`` (the same capped, hashed,
fsynced and fully read untrusted path as an uploaded archive), checks the plaintext's
size and SHA-256 against the metadata, and records a ready ``import`` snapshot of the
copy's workload under a new id. A copy of a workload this instance does not have is
refused with 409 ``workload_unknown`` (create the workload first, or bring the whole
instance back with ``moorage instance restore``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, MoorageError, TargetError
from moorage.offsite import layout, transfer
from moorage.plugins.registry import Registry
from moorage.plugins.spec import TargetStore
from moorage.security.roles import Actor
from moorage.services import offsite, storage_targets
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.snapshots.incoming import IncomingArchive
from moorage.storage.keys import check_key


@dataclass(frozen=True)
class Entry:
    """One copy a target holds."""

    key: str
    workload_id: str
    snapshot_id: str
    created_at: datetime
    ciphertext_size: int
    workload_name: str | None = None
    size: int | None = None
    sha256: str | None = None
    copied_at: str | None = None
    known_workload: bool = False
    error: str | None = None


class _Workload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=253)


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="ignore")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class _Meta(BaseModel):
    """The part of a copy's metadata the catalog and an import read (``layout``)."""

    model_config = ConfigDict(extra="ignore")
    workload: _Workload = Field(default_factory=_Workload)
    snapshot: _Snapshot
    copied_at: str | None = Field(default=None, max_length=64)


def _described(store: TargetStore, key: str, identity: str) -> _Meta:
    """The copy's metadata, decrypted and of the shape Moorage writes; ``TargetError``
    (``copy_corrupt``) for one that is not (a hostile or foreign object)."""
    meta = layout.read_meta(store, key, identity)
    try:
        return _Meta.model_validate(meta)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise TargetError(
            f"the metadata of {key} decrypts, but is not Moorage's ({where} is missing or "
            "of the wrong kind)",
            code="copy_corrupt",
        ) from None


def _open(
    session: Session, settings: Settings, registry: Registry, target_id: str
) -> tuple[TargetStore, str]:
    target = storage_targets.get(session, target_id)
    config = storage_targets.full_config(settings, target)
    identity = storage_targets.identity_of(settings, target)
    return registry.storage_kind(target.kind).open(config), identity


def catalog(
    session: Session, settings: Settings, registry: Registry, target_id: str
) -> list[Entry]:
    """Every complete copy on the target, newest first, with its metadata."""
    store, identity = _open(session, settings, registry, target_id)
    try:
        out = []
        for held in reversed(layout.held(store.list(layout.PREFIX))):
            base = Entry(
                key=held.key,
                workload_id=held.workload_id,
                snapshot_id=held.snapshot_id,
                created_at=held.created_at,
                ciphertext_size=held.size,
                known_workload=offsite.workload_exists(session, held.workload_id),
            )
            try:
                meta = _described(store, held.key, identity)
            except MoorageError as exc:
                out.append(replace(base, error=exc.message))
                continue
            out.append(
                replace(
                    base,
                    workload_name=meta.workload.name,
                    size=meta.snapshot.size,
                    sha256=meta.snapshot.sha256,
                    copied_at=meta.copied_at,
                )
            )
        return out
    finally:
        store.close()


class _Into:
    """A sink writing into an ``IncomingArchive``."""

    def __init__(self, incoming: IncomingArchive) -> None:
        self.incoming = incoming

    def write(self, data: Any) -> int:
        self.incoming.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def import_copy(
    session: Session,
    settings: Settings,
    registry: Registry,
    locks: WorkloadLocks,
    actor: Actor,
    target_id: str,
    key: str,
) -> tuple[str, str]:
    """Bring the copy ``key`` back as a ready ``import`` snapshot of its workload;
    ``(workload id, snapshot id)``. 422 ``invalid_key`` for a key that is not a copy's,
    409 ``workload_unknown``, ``TargetError`` (``copy_corrupt``, ``target_object_missing``)
    and every refusal of an uploaded archive (``IncomingArchive.keep``)."""
    check_key(key)
    parsed = layout.parse(key)
    if parsed is None:
        raise InvalidInput(f"{key!r} is not the key of a snapshot's copy", code="invalid_key")
    workload_id, _old_snapshot = parsed
    store, identity = _open(session, settings, registry, target_id)
    try:
        meta = _described(store, key, identity)
        if not offsite.workload_exists(session, workload_id):
            name = meta.workload.name or "?"
            raise Conflict(
                f"the copy is of workload {name} ({workload_id}), which this instance does "
                "not have: create it first, or bring the whole instance back with "
                "'moorage instance restore'",
                code="workload_unknown",
            )
        snap = meta.snapshot
        session.commit()  # no transaction held open over the download
        with IncomingArchive(settings, workload_id) as incoming:
            sink = transfer.Hashing(_Into(incoming))  # type: ignore[arg-type]
            transfer.pull(store, key, identity, sink)
            if (sink.bytes, sink.digest.hexdigest()) != (snap.size, snap.sha256):
                raise TargetError(
                    f"the copy {key} decrypts, but not to the archive its metadata names",
                    code="copy_corrupt",
                )
            snapshot_id = incoming.keep(session, locks, actor)
        return workload_id, snapshot_id
    finally:
        store.close()
