"""The instance backs itself up to a storage target, and comes back on a fresh machine
(SPEC section 11).

A **bundle** is a tar of exactly three members, age-encrypted to the target's recipient:

    moorage.db      an online, consistent copy of the SQLite database (SQLite's backup
                    API: a reader's snapshot, taken while the server keeps serving)
    instance.key    the key every sealed credential (targets, DNS providers) opens with
    backup.json     {format, created_at, version, database}

at ``instance/<YYYYmmddTHHMMSSZ>-<id>.tar.age`` with its metadata object beside it, written
last after the read-back verified (``layout``: only then does the bundle count). The
target's identity is on the target wrapped with its passphrase, so a fresh machine needs
only the target's place, credentials and passphrase.

``restore`` (``moorage instance restore``, offline) refuses a data directory that already
holds a database or an instance key, opens the target's key with the passphrase, fetches
the newest complete bundle (checked against its metadata's size and SHA-256), and writes
the two files with ``O_EXCL`` (the key 0600). The next ``moorage serve`` migrates the
database and has every project, workload, env, trigger, user, token, storage target and
snapshot row back; each snapshot's archive comes back from its verified copy when it is
restored (``Copier.fetch``).

PostgreSQL stores are not bundled yet: ``backup_unsupported`` says to use ``pg_dump``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moorage import __version__
from moorage.errors import Conflict, InvalidInput, TargetError
from moorage.names import new_id
from moorage.offsite import layout, transfer
from moorage.plugins.registry import Registry
from moorage.plugins.spec import TargetStore
from moorage.security.sealing import KEY_FILE
from moorage.services.storage_targets import KEY_OBJECT, read_key
from moorage.settings import Settings
from moorage.storage.encryption import unwrap_identity

PREFIX = "instance/"
DB_FILE = "moorage.db"
INFO = "backup.json"
MEMBERS = (DB_FILE, KEY_FILE, INFO)
MAX_MEMBER = 16 * 1024**3
"""A member larger than this is not Moorage's database (a hostile bundle)."""
_NAME = re.compile(r"instance/(?P<stamp>\d{8}T\d{6}Z)-ib_[0-9a-f]{16}\.tar\.age")


@dataclass(frozen=True)
class Bundle:
    key: str
    size: int
    sha256: str
    created_at: datetime


def sqlite_path(settings: Settings) -> Path:
    """The SQLite file of the store; ``InvalidInput`` (``backup_unsupported``) otherwise."""
    url = settings.database_url
    if not url.startswith("sqlite:///"):
        raise InvalidInput(
            "instance backups cover SQLite stores; for PostgreSQL, back the database up "
            "with pg_dump and keep <data dir>/instance.key with it",
            code="backup_unsupported",
        )
    return Path(url[len("sqlite:///") :])


def copy_database(settings: Settings, dest: Path) -> None:
    """An online, consistent copy of the store at ``dest`` (SQLite's backup API)."""
    src = sqlite3.connect(f"file:{sqlite_path(settings)}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return path.stat().st_size, h.hexdigest()


def create(
    settings: Settings, store: TargetStore, recipient: str, identity: str, now: datetime
) -> Bundle:
    """Make a bundle of this instance, put it on ``store``, verify it, then write its
    metadata. Raises ``TargetError`` (the target), ``InvalidInput`` (not SQLite)."""
    sqlite_path(settings)
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".backup-") as scratch:
        tmp = Path(scratch)
        copy_database(settings, tmp / DB_FILE)
        info = {
            "format": 1,
            "created_at": now.isoformat(),
            "version": __version__,
            "database": "sqlite",
        }
        bundle = tmp / "bundle.tar"
        with tarfile.open(bundle, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(tmp / DB_FILE, arcname=DB_FILE)
            tar.add(settings.data_dir / KEY_FILE, arcname=KEY_FILE)
            data = json.dumps(info).encode()
            member = tarfile.TarInfo(INFO)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        size, sha = _digest(bundle)
        stamp = now.astimezone(UTC).strftime(layout.STAMP)
        key = f"{PREFIX}{stamp}-{new_id('ib')}{layout.BUNDLE}"
        transfer.upload(store, key, bundle, recipient, size=size, sha256=sha)
        try:
            transfer.verify(store, key, identity, size=size, sha256=sha)
        except BaseException:
            store.delete(key)
            raise
        layout.write_meta(store, key, {**info, "size": size, "sha256": sha}, recipient)
    return Bundle(key, size, sha, now)


def newest(store: TargetStore) -> str | None:
    """The key of the newest complete bundle on ``store``."""
    objects = store.list(PREFIX)
    keys = {o.key for o in objects}
    complete = [o.key for o in objects if _NAME.fullmatch(o.key) and layout.meta_key(o.key) in keys]
    return max(complete) if complete else None


def _check_empty(data_dir: Path, settings: Settings) -> None:
    taken = [p.name for p in (data_dir / DB_FILE, data_dir / KEY_FILE) if p.exists()]
    if taken:
        raise Conflict(
            f"{data_dir} already holds {', '.join(taken)}: an instance restore goes into an "
            "empty data directory (move the old one aside first)",
            code="data_dir_not_empty",
        )
    if sqlite_path(settings) != data_dir / DB_FILE:
        raise InvalidInput(
            f"the store must be the default {data_dir / DB_FILE} for an instance restore",
            code="backup_unsupported",
        )


def restore(
    settings: Settings,
    registry: Registry,
    kind: str,
    config: dict[str, Any],
    passphrase: str,
) -> dict[str, Any]:
    """Bring the newest bundle on the target back into the empty data directory; the
    bundle's ``backup.json``. See the module docstring for the refusals."""
    data_dir = settings.data_dir
    _check_empty(data_dir, settings)
    plugin = registry.storage_kind(kind)
    plugin.validate(config)
    store = plugin.open(config)
    try:
        wrapped = read_key(store)
        if wrapped is None:
            raise TargetError(
                f"the target holds no {KEY_OBJECT}: it is not a Moorage target (or not this "
                "place: check the path, bucket or prefix)",
                code="target_object_missing",
            )
        identity = unwrap_identity(wrapped, passphrase)
        key = newest(store)
        if key is None:
            raise TargetError(
                "the target holds no complete instance backup (moorage backup create)",
                code="target_object_missing",
            )
        meta = layout.read_meta(store, key, identity)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".restore-") as scratch:
            bundle = Path(scratch) / "bundle.tar"
            transfer.fetch(
                store, key, identity, bundle, size=int(meta["size"]), sha256=str(meta["sha256"])
            )
            return _unpack(bundle, data_dir)
    finally:
        store.close()


def _unpack(bundle: Path, data_dir: Path) -> dict[str, Any]:
    """Write the bundle's database and key into ``data_dir``: only these names, only
    regular files, never through ``extract``; each with ``O_EXCL``."""
    info: dict[str, Any] = {}
    seen: set[str] = set()
    with tarfile.open(bundle, "r") as tar:
        for member in tar:
            if member.name not in MEMBERS or not member.isreg() or member.name in seen:
                raise InvalidInput(
                    f"the bundle holds {member.name!r}, which is not Moorage's",
                    code="invalid_archive",
                )
            if member.size > MAX_MEMBER:
                raise InvalidInput(f"{member.name} is too large", code="invalid_archive")
            seen.add(member.name)
            source = tar.extractfile(member)
            assert source is not None
            if member.name == INFO:
                info = json.loads(source.read(1 << 20))
                continue
            fd = os.open(data_dir / member.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    if seen != set(MEMBERS):
        for name in (DB_FILE, KEY_FILE):
            (data_dir / name).unlink(missing_ok=True)
        raise InvalidInput("the bundle lacks the database or the key", code="invalid_archive")
    return info
