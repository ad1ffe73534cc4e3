"""Storage targets (SPEC section 11): made, shown, changed, tested and removed by admins.

A target's row keeps its kind's config without credentials; the credentials and the
target's age identity are sealed to the instance key (``security.sealing``). Creating a
target connects to it: when the target already holds a Moorage key object (a target
this or an earlier instance used), the passphrase must open it and the target is
adopted with that identity, so its copies stay readable; otherwise a new identity is
made and left on the target wrapped with the passphrase (``storage.encryption``).
The passphrase itself is never stored or sent to the target.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound, TargetError
from moorage.names import check_slug, new_id
from moorage.plugins.kind_config import MASK, public_config, secret_fields, stored_config
from moorage.plugins.registry import Registry
from moorage.plugins.spec import StorageKind, TargetStore
from moorage.security import sealing
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.services.guard import flush_or_conflict
from moorage.services.merge_patch import merge_patch
from moorage.services.triggers import is_backup
from moorage.settings import Settings
from moorage.storage.encryption import (
    decrypt_stream,
    encrypt_stream,
    new_keypair,
    recipient_of,
    unwrap_identity,
    wrap_identity,
)
from moorage.store.tables import OffsitePolicy, StorageTarget, Trigger, Workload, utcnow

KEY_OBJECT = "moorage/target-key.age"
"""The target's identity, wrapped with its passphrase: what a fresh machine reads first."""
PROBE_PREFIX = "moorage/probe-"
PROBE_BYTES = 256 * 1024
MIN_PASSPHRASE = 12


def get(session: Session, target_id: str) -> StorageTarget:
    target = session.get(StorageTarget, target_id)
    if target is None:
        raise NotFound(f"no storage target {target_id!r}", code="not_found")
    return target


def list_all(session: Session) -> list[StorageTarget]:
    return list(session.scalars(select(StorageTarget).order_by(StorageTarget.name)))


def full_config(settings: Settings, target: StorageTarget) -> dict[str, Any]:
    """The kind's whole config: the row's part and the sealed credentials."""
    return {**target.config, **sealing.unseal(settings.data_dir, target.sealed)["secrets"]}


def identity_of(settings: Settings, target: StorageTarget) -> str:
    """The target's age identity (secret): what its copies decrypt with."""
    identity: str = sealing.unseal(settings.data_dir, target.sealed)["identity"]
    return identity


@dataclass(frozen=True)
class Shown:
    """A target as the API shows it: credentials masked."""

    id: str
    name: str
    kind: str
    config: dict[str, Any]
    recipient: str
    last_test_at: datetime | None
    last_test_error: str | None
    created_at: datetime
    updated_at: datetime


def shown(registry: Registry, settings: Settings, target: StorageTarget) -> Shown:
    kind = registry.storage.get(target.kind)
    config = target.config
    if kind is not None:
        config = public_config(kind.config_model, full_config(settings, target))
    return Shown(
        id=target.id,
        name=target.name,
        kind=target.kind,
        config=config,
        recipient=target.recipient,
        last_test_at=target.last_test_at,
        last_test_error=target.last_test_error,
        created_at=target.created_at,
        updated_at=target.updated_at,
    )


def _split(kind: StorageKind, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the row's part, the credentials) of a validated config."""
    stored = stored_config(kind.validate(config))
    secret = secret_fields(kind.config_model)
    return (
        {k: v for k, v in stored.items() if k not in secret},
        {k: v for k, v in stored.items() if k in secret},
    )


def _check_name(session: Session, name: str, but: str | None = None) -> None:
    check_slug("storage target name", name)
    other = session.scalar(select(StorageTarget.id).where(StorageTarget.name == name))
    if other is not None and other != but:
        raise Conflict(f"a storage target named {name!r} already exists", code="duplicate")


MAX_KEY_OBJECT = 64 * 1024
"""A wrapped identity is a few hundred bytes; anything much larger is not one (and
reading it whole would let whoever can write to the target fill the server's memory)."""


class _Bounded(io.BytesIO):
    """A sink that refuses more than ``MAX_KEY_OBJECT`` bytes."""

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > MAX_KEY_OBJECT:
            raise TargetError(
                f"{KEY_OBJECT} on the target is larger than {MAX_KEY_OBJECT} bytes: it is not "
                "a Moorage key; remove it, or use another place",
                code="target_error",
            )
        return super().write(data)


def read_key(store: TargetStore) -> bytes | None:
    sink = _Bounded()
    try:
        store.get(KEY_OBJECT, sink)
    except TargetError as exc:
        if exc.code == "target_object_missing":
            return None
        raise
    return sink.getvalue()


def _check_apart(settings: Settings, public: dict[str, Any]) -> None:
    """A ``local`` target's path must not lie inside the data directory or a volume root
    (or hold one): a copy there dies with the disk it should outlive, and its files would
    sit among the data they copy. Paths compared after resolving links."""
    path = public.get("path")
    if not isinstance(path, str) or "host" in public:  # an SFTP path is on another host
        return
    where = os.path.realpath(path)
    for root in (settings.data_dir, *settings.volume_roots):
        real = os.path.realpath(root)
        if os.path.commonpath([where, real]) in (where, real):
            raise InvalidInput(
                f"a local target at {path} would share {root} (Moorage's data or a volume "
                "root): choose a path on another disk",
                code="invalid_config",
            )


def create(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    *,
    name: str,
    kind: str,
    config: dict[str, Any],
    passphrase: str,
) -> StorageTarget:
    """Make a target after connecting to it (``TargetError`` when it cannot be reached
    or written). ``passphrase``: at least 12 characters; for a target that already
    holds a Moorage key, the one that key was made with (422 ``wrong_passphrase``)."""
    plugin = registry.storage_kind(kind)
    _check_name(session, name)
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidInput(
            f"the passphrase must have at least {MIN_PASSPHRASE} characters; keep it "
            "somewhere apart from this server: it is the way back to the copies",
            code="invalid_input",
        )
    public, secrets = _split(plugin, config)
    _check_apart(settings, public)
    store = plugin.open({**public, **secrets})
    try:
        existing = read_key(store)
        if existing is None:
            keys = new_keypair()
            identity = keys.identity
            store.put(KEY_OBJECT, io.BytesIO(wrap_identity(identity, passphrase)))
        else:
            identity = unwrap_identity(existing, passphrase)
    finally:
        store.close()
    target = StorageTarget(
        id=new_id("st"),
        name=name,
        kind=kind,
        config=public,
        sealed=sealing.seal(settings.data_dir, {"secrets": secrets, "identity": identity}),
        recipient=recipient_of(identity),
    )
    session.add(target)
    flush_or_conflict(session, f"a storage target named {name!r} already exists")
    audit.record(
        session,
        actor,
        AuditAction.STORAGE_TARGET_CREATE,
        "storage_target",
        target.id,
        {"name": name, "kind": kind, "adopted": existing is not None},
    )
    return target


def update(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    target_id: str,
    *,
    name: str | None,
    config_patch: dict[str, Any] | None,
) -> StorageTarget:
    """Rename a target or change its config with a JSON Merge Patch (RFC 7386); a masked
    credential sent back as it was shown keeps its stored value. The kind and the
    identity never change (a new place is a new target)."""
    target = get(session, target_id)
    changed: list[str] = []
    if name is not None and name != target.name:
        _check_name(session, name, but=target.id)
        target.name = name
        changed.append("name")
    if config_patch is not None:
        plugin = registry.storage_kind(target.kind)
        opened = sealing.unseal(settings.data_dir, target.sealed)
        current = {**target.config, **opened["secrets"]}
        secret = secret_fields(plugin.config_model)
        patch = {k: v for k, v in config_patch.items() if not (k in secret and v == MASK)}
        merged = merge_patch(current, patch)
        moved = sorted(k for k in plugin.place_fields if merged.get(k) != current.get(k))
        if moved:
            raise InvalidInput(
                f"a storage target's place cannot change ({', '.join(moved)}): its key and "
                "its copies are there; add a new target for the new place",
                code="target_moved",
            )
        public, secrets = _split(plugin, merged)
        old_public = {k: v for k, v in current.items() if k not in secret}
        changed += sorted(k for k in {*public, *old_public} if public.get(k) != old_public.get(k))
        kept = sorted(k for k in secrets if k not in patch and secrets[k] == current.get(k))
        if changed and kept and any(k != "name" for k in changed):
            # Stored credentials go only where they went before: a change of whom they
            # are sent to (a user name, a pinned host key, a region...) must bring them.
            raise InvalidInput(
                f"changing {', '.join(k for k in changed if k != 'name')} needs the "
                f"credentials again: send {', '.join(kept)} in the same patch",
                code="credentials_required",
            )
        changed += sorted(k for k in secret if secrets.get(k) != current.get(k))
        identity = identity_of(settings, target)
        target.config = public
        target.sealed = sealing.seal(settings.data_dir, {"secrets": secrets, "identity": identity})
    audit.record(
        session,
        actor,
        AuditAction.STORAGE_TARGET_UPDATE,
        "storage_target",
        target.id,
        {"changed": sorted(set(changed))},
    )
    session.flush()  # applies updated_at, so the answer shows the new one
    return target


def delete(session: Session, actor: Actor, target_id: str) -> None:
    """Forget a target. What it holds stays there (a copy is never deleted by
    forgetting where it is). 409 ``target_in_use`` while a backup schedule or a
    workload's off-site policy names it: forgetting it would silently stop those copies."""
    target = get(session, target_id)
    schedules = session.scalars(select(Trigger).where(Trigger.kind == "schedule"))
    using = sorted(
        f"the backup schedule {t.name}"
        for t in schedules
        if is_backup(dict(t.config)) and t.config.get("target_id") == target_id
    )
    using += sorted(
        f"the off-site policy of {name}"
        for name in session.scalars(
            select(Workload.name)
            .join(OffsitePolicy, OffsitePolicy.workload_id == Workload.id)
            .where(OffsitePolicy.target_id == target_id)
        )
    )
    if using:
        shown = ", ".join(using[:5]) + (f" and {len(using) - 5} more" if len(using) > 5 else "")
        raise Conflict(
            f"{shown} uses {target.name!r}: point it at another target, or turn it off, first",
            code="target_in_use",
        )
    session.delete(target)
    audit.record(
        session,
        actor,
        AuditAction.STORAGE_TARGET_DELETE,
        "storage_target",
        target.id,
        {"name": target.name, "kind": target.kind},
    )


@dataclass
class ProbeResult:
    """What ``probe`` did: each step with its milliseconds, and the first error."""

    ok: bool
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None


def probe(
    session: Session, actor: Actor, registry: Registry, settings: Settings, target_id: str
) -> ProbeResult:
    """Connect, check the key object, write an encrypted probe, read it back, decrypt
    and compare it, delete it. A failure is a result (``ok`` false, with the error's
    code and message), recorded on the target; it is not raised."""
    target = get(session, target_id)
    plugin = registry.storage_kind(target.kind)
    result = ProbeResult(ok=False)
    probe = f"{PROBE_PREFIX}{os.urandom(8).hex()}"
    plain = os.urandom(PROBE_BYTES)

    def step(name: str, started: float) -> None:
        result.steps.append({"step": name, "ms": round((time.perf_counter() - started) * 1000)})

    store: TargetStore | None = None
    try:
        started = time.perf_counter()
        store = plugin.open(full_config(settings, target))
        step("connect", started)
        started = time.perf_counter()
        if read_key(store) is None:
            raise TargetError(
                f"the target has lost its key object {KEY_OBJECT}: copies on it cannot be "
                "read on another machine; remove the target and add it again",
                code="target_error",
            )
        step("key", started)
        started = time.perf_counter()
        sealed = io.BytesIO()
        encrypt_stream(io.BytesIO(plain), sealed, target.recipient)
        sealed.seek(0)
        store.put(probe, sealed)
        step("write", started)
        started = time.perf_counter()
        back = io.BytesIO()
        store.get(probe, back)
        back.seek(0)
        opened = io.BytesIO()
        decrypt_stream(back, opened, identity_of(settings, target))
        if hashlib.sha256(opened.getvalue()).digest() != hashlib.sha256(plain).digest():
            raise TargetError("the probe read back differs from what was written")
        step("read", started)
        started = time.perf_counter()
        store.delete(probe)
        step("delete", started)
        result.ok = True
    except MoorageError as exc:
        result.error = {"code": exc.code, "message": exc.message}
    except Exception as exc:  # a kind's library raising something it did not map
        result.error = {"code": "target_error", "message": f"the target failed: {exc}"}
    finally:
        if store is not None:
            store.close()
    target.last_test_at = utcnow()
    target.last_test_error = None if result.error is None else result.error["message"]
    audit.record(
        session,
        actor,
        AuditAction.STORAGE_TARGET_TEST,
        "storage_target",
        target.id,
        {"ok": result.ok, **({"error": result.error["code"]} if result.error else {})},
    )
    return result
