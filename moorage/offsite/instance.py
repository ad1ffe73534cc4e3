"""The instance backs itself up to a storage target, and comes back on a fresh machine
(SPEC section 11).

A **bundle** is a tar of exactly three members, age-encrypted to the target's recipient:

    moorage.db      (a SQLite store) an online, consistent copy: SQLite's backup API
    moorage.pgdump  (a PostgreSQL store) the same from ``pg_dump`` (``dumps``)
    instance.key    the key every sealed credential (targets, DNS providers) opens with
    backup.json     {format, created_at, version, database: sqlite|postgresql}

at ``instance/<YYYYmmddTHHMMSSZ>-<instance tag>-<id>.tar.age`` with its metadata object
beside it, written
last after the read-back verified (``layout``: only then does the bundle count). The
target's identity is on the target wrapped with its passphrase, so a fresh machine needs
only the target's place, credentials and passphrase. ``prune`` keeps the newest
``keep_last`` bundles of this instance (a schedule's retention).

``restore`` (``moorage instance restore``, offline) refuses a data directory that already
holds a SQLite database or another instance's key, a PostgreSQL store that already has
tables, and a bundle of the other store kind (the bundle's own key, left by a restore
killed before its store was in place, is kept and the restore goes on; the scratch folder
such a restore left, a plaintext copy of the store and key, is removed first); it opens the
target's key with the passphrase, fetches the newest complete bundle (checked against its
metadata's size and SHA-256), writes the key with ``O_EXCL`` (0600) and the SQLite file the
same way, or loads the dump into PostgreSQL in one transaction. The next ``moorage serve``
migrates the database and has every project, workload, env, trigger, user, token, storage
target and snapshot row back; each snapshot's archive comes back from its verified copy
when it is restored (``Copier.fetch``).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moorage import __version__
from moorage.errors import Conflict, InvalidInput, TargetError
from moorage.names import new_id
from moorage.offsite import dumps, layout, transfer
from moorage.plugins.registry import Registry
from moorage.plugins.spec import TargetStore
from moorage.security.sealing import KEY_FILE
from moorage.services.storage_targets import KEY_OBJECT, read_key
from moorage.settings import Settings
from moorage.storage.encryption import unwrap_identity

log = logging.getLogger(__name__)

PREFIX = "instance/"
DB_FILE = dumps.FILES[dumps.SQLITE]
INFO = "backup.json"
MAX_MEMBER = 16 * 1024**3
"""A member larger than this is not Moorage's database (a hostile bundle)."""
MAX_INFO = 1 << 20
_NAME = re.compile(
    r"instance/(?P<stamp>\d{8}T\d{6}Z)-(?:(?P<tag>[0-9a-f]{12})-)?ib_[0-9a-f]{16}\.tar\.age"
)


@dataclass(frozen=True)
class Bundle:
    key: str
    size: int
    sha256: str
    created_at: datetime


def instance_tag(settings: Settings) -> str:
    """Which instance made a bundle: the first 12 hex digits of the SHA-256 of its
    ``instance.key`` (in the bundle's key; the key itself stays secret)."""
    return hashlib.sha256((settings.data_dir / KEY_FILE).read_bytes()).hexdigest()[:12]


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
    metadata. Raises ``TargetError`` (the target), ``DumpFailed`` (``pg_dump``),
    ``InvalidInput`` (``backup_unsupported``: another database)."""
    kind = dumps.store_kind(settings)
    member = dumps.FILES[kind]
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".backup-") as scratch:
        tmp = Path(scratch)
        dumps.dump(settings, tmp / member)
        info = {
            "format": 1,
            "created_at": now.isoformat(),
            "version": __version__,
            "database": kind,
        }
        bundle = tmp / "bundle.tar"
        with tarfile.open(bundle, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(tmp / member, arcname=member)
            tar.add(settings.data_dir / KEY_FILE, arcname=KEY_FILE)
            data = json.dumps(info).encode()
            entry = tarfile.TarInfo(INFO)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
        size, sha = _digest(bundle)
        stamp = now.astimezone(UTC).strftime(layout.STAMP)
        key = f"{PREFIX}{stamp}-{instance_tag(settings)}-{new_id('ib')}{layout.BUNDLE}"
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


def prune(store: TargetStore, keep_last: int, tag: str) -> list[str]:
    """Delete all but the newest ``keep_last`` complete bundles this instance (``tag``:
    ``instance_tag``) made on ``store``, each one's metadata first (a cut-off prune never
    leaves a bundle that counts but is gone); another instance's bundles on a shared
    target are never touched. The keys deleted, newest first."""
    objects = store.list(PREFIX)
    keys = {o.key for o in objects}
    complete = sorted(
        (
            k
            for k in keys
            if (m := _NAME.fullmatch(k)) and m["tag"] == tag and layout.meta_key(k) in keys
        ),
        reverse=True,
    )
    gone = complete[keep_last:]
    for key in gone:
        store.delete(layout.meta_key(key))
        store.delete(key)
    return gone


def _check_empty(settings: Settings) -> str:
    """The store kind, once the data directory and the store are known to be empty.

    An ``instance.key`` alone (no SQLite file, or an empty PostgreSQL store) passes here:
    it may be what an earlier restore of the same bundle linked before it was killed, and
    ``_unpack`` keeps it only if it is byte for byte the bundle's key."""
    kind = dumps.store_kind(settings)
    data_dir = settings.data_dir
    if kind == dumps.SQLITE and (data_dir / DB_FILE).exists():
        taken = [p.name for p in (data_dir / KEY_FILE, data_dir / DB_FILE) if p.exists()]
        raise Conflict(
            f"{data_dir} already holds {', '.join(taken)}: an instance restore goes into an "
            "empty data directory (move the old one aside first)",
            code="data_dir_not_empty",
        )
    if kind == dumps.SQLITE and dumps.sqlite_path(settings) != data_dir / DB_FILE:
        raise InvalidInput(
            f"the store must be the default {data_dir / DB_FILE} for an instance restore",
            code="backup_unsupported",
        )
    if kind == dumps.POSTGRESQL and (tables := dumps.postgres_tables(settings)):
        raise Conflict(
            f"the PostgreSQL store already has tables ({', '.join(tables[:5])}): an instance "
            "restore goes into an empty database (create one and point "
            "MOORAGE_DATABASE_URL at it)",
            code="data_dir_not_empty",
        )
    return kind


def restore(
    settings: Settings,
    registry: Registry,
    kind: str,
    config: dict[str, Any],
    passphrase: str,
) -> dict[str, Any]:
    """Bring the newest bundle on the target back into the empty data directory; the
    bundle's ``backup.json``. See the module docstring for the refusals."""
    with _restoring(settings.data_dir):
        remove_scratch(settings.data_dir)  # a stopped restore's; this one holds the lock
        return _restore(settings, registry, kind, config, passphrase)


@contextmanager
def _restoring(data_dir: Path) -> Iterator[None]:
    """Hold ``RESTORE_LOCK`` in ``data_dir`` (made 0700 if missing) for one restore: a
    second restore of the same data directory is 409 ``restore_running``, and start-up
    (``recovering``) leaves a running restore's scratch folder alone. The lock is the
    kernel's (``flock(2)``): it ends with the process, however it ends."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(data_dir / RESTORE_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"another instance restore is running into {data_dir}; wait for it to end",
                code="restore_running",
            ) from None
        yield
    finally:
        os.close(fd)


def recovering(data_dir: Path) -> list[str]:
    """At start-up: remove the scratch folders of an instance restore that was stopped
    (``remove_scratch``), unless one is running now (it holds ``RESTORE_LOCK``); their
    names. Never raises: a folder that cannot go is logged and left."""
    if not data_dir.is_dir():
        return []
    try:
        with _restoring(data_dir):
            return remove_scratch(data_dir)
    except (Conflict, OSError) as exc:
        log.warning("left the instance restore scratch in %s: %s", data_dir, exc)
        return []


def _restore(
    settings: Settings,
    registry: Registry,
    kind: str,
    config: dict[str, Any],
    passphrase: str,
) -> dict[str, Any]:
    data_dir = settings.data_dir
    held_here = _check_empty(settings)
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
        held = str(meta.get("database", dumps.SQLITE))
        if held != held_here:
            raise InvalidInput(
                f"the newest backup on the target holds a {held} store, and "
                f"MOORAGE_DATABASE_URL names a {held_here} one: point it at an empty {held} "
                "store",
                code="backup_unsupported",
            )
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=SCRATCH_PREFIX) as scratch:
            bundle = Path(scratch) / "bundle.tar"
            transfer.fetch(
                store, key, identity, bundle, size=int(meta["size"]), sha256=str(meta["sha256"])
            )
            return _unpack(bundle, settings, held_here)
    finally:
        store.close()


RESTORE_LOCK = ".restore.lock"
"""Held (``flock``) by the instance restore running into this data directory."""
SCRATCH_PREFIX = ".restore-"
"""A restore's scratch folder in the data directory: the bundle and its plaintext store
and key, removed when the restore ends (``tempfile.TemporaryDirectory``)."""


def remove_scratch(data_dir: Path) -> list[str]:
    """Remove the scratch folders a killed restore left in ``data_dir`` (a plaintext copy
    of the store and the instance key must not outlive it); their names. Only real
    directories with ``SCRATCH_PREFIX`` are removed (``shutil.rmtree`` never follows a
    link inside them); a link with that name is left alone, and so is its target. The
    caller holds ``RESTORE_LOCK`` (``_restoring``): no restore is running. Raises
    ``OSError`` for a folder it cannot remove."""
    gone = []
    for entry in sorted(data_dir.iterdir()):
        if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
            gone.append(entry.name)
            log.warning("removed %s, left by an instance restore that was stopped", entry)
    return gone


def _unpack(bundle: Path, settings: Settings, kind: str) -> dict[str, Any]:
    """Bring the bundle's store and key back: only these names, only regular files, never
    through ``extract``, each first into the bundle's scratch directory. Then the key (and
    a SQLite file) are linked into the data directory (an existing name is never
    replaced) and a PostgreSQL dump is loaded in one transaction; on a failure nothing of
    this bundle stays behind."""
    names = (dumps.FILES[kind], KEY_FILE, INFO)
    scratch = bundle.parent
    seen: set[str] = set()
    with tarfile.open(bundle, "r") as tar:
        for member in tar:
            if member.name not in names or not member.isreg() or member.name in seen:
                raise InvalidInput(
                    f"the bundle holds {member.name!r}, which is not Moorage's",
                    code="invalid_archive",
                )
            if member.size > (MAX_INFO if member.name == INFO else MAX_MEMBER):
                raise InvalidInput(f"{member.name} is too large", code="invalid_archive")
            seen.add(member.name)
            source = tar.extractfile(member)
            assert source is not None
            fd = os.open(scratch / member.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    if seen != set(names):
        raise InvalidInput("the bundle lacks the database or the key", code="invalid_archive")
    try:
        info = json.loads((scratch / INFO).read_bytes())
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise InvalidInput(f"the bundle's {INFO} is not a JSON object", code="invalid_archive")
    data_dir = settings.data_dir
    left = data_dir / KEY_FILE
    if left.exists() and left.read_bytes() != (scratch / KEY_FILE).read_bytes():
        raise Conflict(
            f"{data_dir} already holds an {KEY_FILE} that is not this backup's: an instance "
            "restore goes into an empty data directory (move the old one aside first)",
            code="data_dir_not_empty",
        )
    placed: list[Path] = []
    try:
        for name in (KEY_FILE, DB_FILE) if kind == dumps.SQLITE else (KEY_FILE,):
            if name == KEY_FILE and left.exists():
                continue  # an earlier, interrupted restore of this bundle linked it
            os.link(scratch / name, data_dir / name)  # FileExistsError: never over one
            placed.append(data_dir / name)
        _fsync_dir(data_dir)  # the links survive a power cut before serve starts
        if kind == dumps.POSTGRESQL:
            dumps.load_postgres(settings, scratch / dumps.FILES[kind])
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    return info


def _fsync_dir(path: Path) -> None:
    """Make the names just linked into ``path`` durable (POSIX: a new directory entry is
    only on disk once the directory itself is synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
