"""The instance bundle (``offsite/instance.py``) on a real store and a ``local`` target:
made online while the store is open, it comes back into an empty data directory with the
passphrase alone, byte for byte the same rows and the same instance key; a wrong
passphrase, a data directory that holds a store, a target without a bundle and a bundle
with a stranger's member are refused and write nothing."""

from __future__ import annotations

import io
import shutil
import sqlite3
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moorage.errors import Conflict, InvalidInput, TargetError
from moorage.offsite import instance, layout
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM
from moorage.server import load_registry
from moorage.services import offsite, projects, storage_targets
from moorage.settings import Settings
from moorage.storage.local import LocalStore
from moorage.store.db import Database
from tests.unit.services.test_workloads import ADA, migrated  # noqa: F401 - fixture

PASSPHRASE = "a long test passphrase"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def test_a_bundle_comes_back_into_an_empty_data_dir(
    tmp_path: Path,
    migrated: Path,  # noqa: F811
    registry: Registry,
) -> None:
    settings = Settings.from_env({"MOORAGE_DATA_DIR": str(tmp_path / "var")})
    settings.data_dir.mkdir()
    shutil.copyfile(migrated, settings.data_dir / "moorage.db")
    db = Database(settings.database_url)
    target_dir = tmp_path / "target"
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop", stages=["production"])
        tid = storage_targets.create(
            s,
            ADA,
            registry,
            settings,
            name="off",
            kind="local",
            config={"path": str(target_dir)},
            passphrase=PASSPHRASE,
        ).id
    with db.session() as s:  # an open reader while the bundle is made: it is online
        opened = offsite.opened(s, settings, tid)
        store = LocalStore(target_dir)
        made = instance.create(settings, store, opened.recipient, opened.identity, NOW)
    db.dispose()
    assert made.key.startswith("instance/20260302T120000Z-") and instance.newest(store) == made.key
    assert (target_dir / layout.meta_key(made.key)).exists()
    raw = (target_dir / made.key).read_bytes()
    assert b"SQLite format" not in raw and b"AGE-SECRET-KEY" not in raw  # ciphertext only

    old = settings.data_dir.rename(tmp_path / "lost")
    config = {"path": str(target_dir)}
    with pytest.raises(InvalidInput) as caught:
        instance.restore(settings, registry, "local", config, "not the passphrase")
    assert caught.value.code == "wrong_passphrase"
    assert not (settings.data_dir / "moorage.db").exists()
    info = instance.restore(settings, registry, "local", config, PASSPHRASE)
    assert info["created_at"] == NOW.isoformat() and info["database"] == "sqlite"
    assert (settings.data_dir / "instance.key").read_bytes() == (old / "instance.key").read_bytes()
    assert (settings.data_dir / "instance.key").stat().st_mode & 0o077 == 0
    with (
        sqlite3.connect(settings.data_dir / "moorage.db") as a,
        sqlite3.connect(old / "moorage.db") as b,
    ):
        assert list(a.iterdump()) == list(b.iterdump())
    # The restored store opens the target's sealed credentials with the restored key.
    db = Database(settings.database_url)
    with db.session() as s:
        assert offsite.opened(s, settings, tid).config == config
    db.dispose()
    with pytest.raises(Conflict) as taken:
        instance.restore(settings, registry, "local", config, PASSPHRASE)
    assert taken.value.code == "data_dir_not_empty"

    # A restore killed after it linked the key, before the store was in place: the retry
    # keeps that key (it is the bundle's) and brings the store back, and removes the
    # scratch folder (a plaintext store and key) the killed one left. A link named like
    # one is not followed: what it points at stays.
    (settings.data_dir / "moorage.db").unlink()
    left = settings.data_dir / ".restore-killed1"
    left.mkdir()
    (left / "instance.key").write_bytes(b"plaintext")
    (left / "sub").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("mine")
    (left / "sub" / "link").symlink_to(elsewhere)
    (settings.data_dir / ".restore-link").symlink_to(elsewhere)
    instance.restore(settings, registry, "local", config, PASSPHRASE)
    assert not left.exists() and (elsewhere / "keep").read_text() == "mine"
    assert [p.name for p in settings.data_dir.glob(".restore-*")] == [".restore-link"]
    with (
        sqlite3.connect(settings.data_dir / "moorage.db") as a,
        sqlite3.connect(old / "moorage.db") as b,
    ):
        assert list(a.iterdump()) == list(b.iterdump())
    # Another instance's key is never kept under this bundle's store, nor replaced.
    (settings.data_dir / "moorage.db").unlink()
    (settings.data_dir / "instance.key").write_bytes(b"another instance's key")
    with pytest.raises(Conflict) as foreign:
        instance.restore(settings, registry, "local", config, PASSPHRASE)
    assert foreign.value.code == "data_dir_not_empty" and "not this backup's" in str(foreign.value)
    assert (settings.data_dir / "instance.key").read_bytes() == b"another instance's key"
    assert not (settings.data_dir / "moorage.db").exists()


def test_a_target_without_a_bundle_or_with_a_strange_one_is_refused(
    tmp_path: Path, registry: Registry
) -> None:
    settings = Settings.from_env({"MOORAGE_DATA_DIR": str(tmp_path / "var")})
    with pytest.raises(TargetError) as caught:
        instance.restore(settings, registry, "local", {"path": str(tmp_path / "t")}, PASSPHRASE)
    assert caught.value.code == "target_object_missing"


def _member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.type = len(data), kind
    if kind == tarfile.SYMTYPE:
        member.size, member.linkname = 0, "/etc/passwd"
    return member


INFO = b'{"database": "sqlite"}'
HOSTILE = {
    "a path out of the directory": [("../etc/passwd", b"x", tarfile.REGTYPE)],
    "a link in place of the key": [
        ("moorage.db", b"db", tarfile.REGTYPE),
        ("instance.key", b"", tarfile.SYMTYPE),
        ("backup.json", INFO, tarfile.REGTYPE),
    ],
    "a member twice": [
        ("moorage.db", b"db", tarfile.REGTYPE),
        ("moorage.db", b"db2", tarfile.REGTYPE),
    ],
    "no key": [("moorage.db", b"db", tarfile.REGTYPE), ("backup.json", INFO, tarfile.REGTYPE)],
    "the other store's dump": [
        ("moorage.pgdump", b"dump", tarfile.REGTYPE),
        ("instance.key", b"k", tarfile.REGTYPE),
        ("backup.json", INFO, tarfile.REGTYPE),
    ],
    "info that is a list": [
        ("moorage.db", b"db", tarfile.REGTYPE),
        ("instance.key", b"k", tarfile.REGTYPE),
        ("backup.json", b"[1, 2]", tarfile.REGTYPE),
    ],
    "info that is not JSON": [
        ("moorage.db", b"db", tarfile.REGTYPE),
        ("instance.key", b"k", tarfile.REGTYPE),
        ("backup.json", b"[1, 2", tarfile.REGTYPE),
    ],
    "info over its cap": [
        ("moorage.db", b"db", tarfile.REGTYPE),
        ("instance.key", b"k", tarfile.REGTYPE),
        ("backup.json", b" " * (instance.MAX_INFO + 1), tarfile.REGTYPE),
    ],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_bundle_with_a_strange_member_writes_nothing(tmp_path: Path, case: str) -> None:
    settings = Settings.from_env({"MOORAGE_DATA_DIR": str(tmp_path / "var")})
    settings.data_dir.mkdir()
    scratch = settings.data_dir / ".restore-x"
    scratch.mkdir()
    bundle = scratch / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        for name, data, kind in HOSTILE[case]:
            tar.addfile(_member(name, data, kind), io.BytesIO(data))
    with pytest.raises(InvalidInput) as caught:
        instance._unpack(bundle, settings, "sqlite")
    assert caught.value.code == "invalid_archive"
    assert [p.name for p in settings.data_dir.iterdir()] == [".restore-x"]
    assert not (tmp_path / "etc").exists()


def test_prune_keeps_the_newest_of_this_instance_and_never_touches_another(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "target")
    mine, theirs = "a" * 12, "b" * 12

    def bundle(day: int, tag: str | None, complete: bool = True) -> str:
        middle = f"{tag}-" if tag else ""
        key = f"instance/202603{day:02d}T120000Z-{middle}ib_{day:016x}.tar.age"
        store.put(key, io.BytesIO(b"bundle"))
        if complete:
            store.put(layout.meta_key(key), io.BytesIO(b"meta"))
        return key

    own = [bundle(d, mine) for d in (1, 2, 3, 4)]
    other = [bundle(d, theirs) for d in (1, 5)]
    legacy = bundle(6, None)  # made before bundles named their instance
    partial = bundle(7, mine, complete=False)  # an upload still running
    gone = instance.prune(store, 2, mine)
    assert gone == [own[1], own[0]]
    left = {o.key for o in store.list("instance/")}
    assert {own[2], own[3], *other, legacy, partial} <= left
    assert not {own[0], own[1], layout.meta_key(own[0])} & left
    assert instance.newest(store) == legacy  # the newest complete one, whoever made it


def test_serve_removes_what_a_stopped_backup_or_restore_left(tmp_path: Path) -> None:
    """At start-up (``BackupRunner.recover``): the scratch folders of a cut-off backup
    and of a stopped instance restore go (each held a plaintext store and key); a link of
    such a name is not followed."""
    from moorage.offsite.backup_runner import BackupRunner

    settings = Settings.from_env({"MOORAGE_DATA_DIR": str(tmp_path / "var")})
    BackupRunner(settings, None, None).recover()  # type: ignore[arg-type]  # no data dir yet: nothing to do
    settings.data_dir.mkdir()
    for name in (".backup-x1", ".restore-y2"):
        (settings.data_dir / name).mkdir()
        (settings.data_dir / name / "instance.key").write_bytes(b"plaintext")
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.data_dir / ".restore-link").symlink_to(outside)
    (settings.data_dir / "moorage.db").write_bytes(b"kept")
    # While a restore runs (it holds the lock), its scratch is not touched, and a second
    # restore into the same data dir is refused before it reads anything.
    with instance._restoring(settings.data_dir):
        BackupRunner(settings, None, None).recover()  # type: ignore[arg-type]  # not used
        assert (settings.data_dir / ".restore-y2" / "instance.key").exists()
        with pytest.raises(Conflict) as running:
            instance.restore(settings, load_registry(), "local", {"path": "/nope"}, PASSPHRASE)
        assert running.value.code == "restore_running"
    BackupRunner(settings, None, None).recover()  # type: ignore[arg-type]  # neither is used
    left = sorted(p.name for p in settings.data_dir.iterdir())
    assert left == [".restore-link", ".restore.lock", "moorage.db"]
    assert outside.is_dir()
