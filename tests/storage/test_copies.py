"""The off-site copier (``offsite/copier.py``) against every storage kind's real server,
on the real store, with a hand-moved clock (SPEC section 11).

Per kind: a ready snapshot of a workload with a policy is copied, read back and verified
(its row ``verified``, the target holding the data and, last, its metadata); retention
keeps what ``keep_last``/``keep_daily``/``keep_weekly`` say, deciding by capture times
the test chooses, and counts deploy checkpoints apart from captures (a copy made by hand
stays however many checkpoints follow it; a pre-restore copy is never pruned); a flipped
byte or a cut object on the target is found at verify and at fetch, and fetch leaves
nothing at its destination; a copy the target fails is ``failed`` with its reason, and
the workload turns stale on ``moorage_offsite_stale`` once its window passes on the
clock.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, update

from moorage import metrics
from moorage.errors import TargetError
from moorage.offsite import layout, retention, transfer
from moorage.offsite.copier import Copier
from moorage.offsite.retention import Keep
from moorage.plugins.registry import Registry
from moorage.plugins.spec import TargetStore
from moorage.security.roles import SYSTEM
from moorage.server import load_registry
from moorage.services import captures, offsite, snapshots, storage_targets, volumes
from moorage.services.volumes import VolumeSpec
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.states import CopyStatus, SnapshotOrigin
from moorage.store.tables import AuditEntry, Snapshot, SnapshotCopy
from tests.storage.conftest import SftpServer, s3_config, sftp_config
from tests.unit.services.test_workloads import ADA, make, migrated  # noqa: F401 - fixture

PASSPHRASE = "a long test passphrase"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture
def db(tmp_path: Path, migrated: Path) -> Iterator[Database]:  # noqa: F811
    shutil.copyfile(migrated, tmp_path / "moorage.db")
    database = Database(f"sqlite:///{tmp_path / 'moorage.db'}")
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture(params=["local", "sftp", "s3"])
def kind_config(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if request.param == "local":
        return "local", {"path": str(tmp_path / "target")}
    if request.param == "sftp":
        server: SftpServer = request.getfixturevalue("sftp_server")
        return "sftp", sftp_config(server)
    return "s3", s3_config(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def world(
    db: Database, registry: Registry, settings: Settings, kind_config: tuple[str, dict[str, Any]]
) -> dict[str, Any]:
    """A workload ``web`` with one volume, and a storage target of the kind."""
    from moorage.services import projects

    kind, config = kind_config
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop", stages=["production"])
    workload_id = make(db, registry).id
    with db.session() as s:
        volumes.replace(
            s, SYSTEM, settings, registry, workload_id, [VolumeSpec("v0", "stage", "web/v0", "/v0")]
        )
        target = storage_targets.create(
            s, ADA, registry, settings, name="off", kind=kind, config=config, passphrase=PASSPHRASE
        )
        target_id = target.id
    return {"workload": workload_id, "target": target_id, "kind": kind, "config": config}


def ready_snapshot(
    db: Database,
    registry: Registry,
    settings: Settings,
    workload_id: str,
    created: datetime,
    size: int = 300_000,
    origin: SnapshotOrigin = SnapshotOrigin.MANUAL,
) -> str:
    """A ready snapshot of ``origin`` captured at ``created`` whose archive is ``size``
    random bytes."""
    with db.session() as s:
        sid = snapshots.request_capture(
            s, SYSTEM, registry, workload_id, volumes=None, mode="none", origin=origin
        ).id
    path = snapshots.archive_path_for(settings, workload_id, sid)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    with db.session() as s:
        captures.ready(
            s,
            sid,
            captures.Written(len(data), hashlib.sha256(data).hexdigest(), {"volumes": []}, []),
        )
        s.execute(update(Snapshot).where(Snapshot.id == sid).values(created_at=created))
    return sid


def open_target(
    db: Database, registry: Registry, settings: Settings, target_id: str
) -> TargetStore:
    with db.session() as s:
        target = storage_targets.get(s, target_id)
        return registry.storage_kind(target.kind).open(
            storage_targets.full_config(settings, target)
        )


def identity(db: Database, settings: Settings, target_id: str) -> str:
    with db.session() as s:
        return storage_targets.identity_of(settings, storage_targets.get(s, target_id))


def copies(db: Database, sid: str) -> list[SnapshotCopy]:
    with db.session() as s:
        rows = offsite.copies_of(s, [sid])[sid]
        for r in rows:
            s.expunge(r)
        return rows


def policy(db: Database, workload_id: str, target_id: str, **keep: Any) -> None:
    with db.session() as s:
        offsite.set_policy(
            s,
            ADA,
            workload_id,
            target_id=target_id,
            keep_last=keep.get("last"),
            keep_daily=keep.get("daily"),
            keep_weekly=keep.get("weekly"),
            window_hours=keep.get("window", 24),
        )


def stale_value(workload_id: str, target_id: str) -> float | None:
    return REGISTRY.get_sample_value(
        "moorage_offsite_stale", {"workload": workload_id, "target": target_id}
    )


def test_a_ready_snapshot_is_copied_verified_listed_and_deleted(
    db: Database, registry: Registry, settings: Settings, world: dict[str, Any]
) -> None:
    wid, tid = world["workload"], world["target"]
    sid = ready_snapshot(db, registry, settings, wid, T0, size=(3 << 20) + 11)
    policy(db, wid, tid)
    clock = Clock()
    copier = Copier(settings, db, registry, lambda _name: None, clock)
    assert copier.run_pass() == 1
    [row] = copies(db, sid)
    assert row.status == CopyStatus.VERIFIED, row.error
    assert row.verified_at == T0 and row.size > (3 << 20) and row.attempts == 1
    store = open_target(db, registry, settings, tid)
    try:
        [held] = layout.held(store.list())
        assert (held.workload_id, held.snapshot_id, held.created_at) == (wid, sid, T0)
        # What the target holds is ciphertext; it decrypts to the archive, byte for byte.
        raw = io.BytesIO()
        store.get(held.key, raw)
        archive = snapshots.archive_path_for(settings, wid, sid).read_bytes()
        assert (
            raw.getvalue().startswith(b"age-encryption.org/v1")
            and archive[:64] not in raw.getvalue()
        )
        back = settings.data_dir / "back"
        with db.session() as s:
            snap = s.get(Snapshot, sid)
            assert snap is not None
            size, sha = snap.size, snap.sha256
        transfer.fetch(store, held.key, identity(db, settings, tid), back, size=size, sha256=sha)
        assert back.read_bytes() == archive
        meta = layout.read_meta(store, held.key, identity(db, settings, tid))
        assert meta["workload"]["name"] == "web" and meta["snapshot"]["sha256"] == sha
        # A second pass has nothing to do; the catch-up pass does not copy twice.
        assert copier.run_pass() == 0
        assert stale_value(wid, tid) == 0
        # Delete: metadata first, then data: nothing is held any more.
        store.delete(layout.meta_key(held.key))
        assert layout.held(store.list()) == []
        store.delete(held.key)
        assert [o.key for o in store.list("snapshots/")] == []
    finally:
        store.close()


def test_retention_keeps_last_daily_and_weekly_by_capture_time(
    db: Database, registry: Registry, settings: Settings, world: dict[str, Any]
) -> None:
    wid, tid = world["workload"], world["target"]
    # Two a day for ten days, then one three weeks earlier.
    times = [T0 - timedelta(days=d, hours=h) for d in range(10) for h in (0, 6)]
    times.append(T0 - timedelta(days=21))
    made = {ready_snapshot(db, registry, settings, wid, t, size=1000): t for t in times}
    policy(db, wid, tid, last=2, daily=4, weekly=3)
    with db.session() as s:
        s.execute(delete(AuditEntry))
    copier = Copier(settings, db, registry, lambda _name: None, Clock())
    assert copier.run_pass() == len(times)
    store = open_target(db, registry, settings, tid)
    try:
        kept = {h.created_at for h in layout.held(store.list())}
    finally:
        store.close()
    newest_first = sorted(times, reverse=True)
    want = set(newest_first[:2])  # keep_last 2
    want |= {T0 - timedelta(days=d) for d in range(4)}  # the newest of the last 4 days
    # keep_weekly 3: the newest of this ISO week (T0, Monday), of last week (Sunday,
    # T0 - 1 day) and of the week before (T0 - 8 days).
    want |= {T0, T0 - timedelta(days=1), T0 - timedelta(days=8)}
    assert kept == want
    # The rows of what went are gone too; what is kept is verified.
    for sid, t in made.items():
        rows = copies(db, sid)
        assert bool(rows and rows[0].status == CopyStatus.VERIFIED) == (t in want), (t, rows)
    # One audit row per pruning run, by the system.
    with db.session() as s:
        actions = [a.action for a in s.query(AuditEntry).all()]
    assert actions and set(actions) == {"offsite.prune"}
    # Later passes leave it so: what retention removed is never copied again (only to be
    # removed again), and it does not make the workload stale.
    for _ in range(3):
        assert copier.run_pass() == 0
    store = open_target(db, registry, settings, tid)
    try:
        assert {h.created_at for h in layout.held(store.list())} == want
    finally:
        store.close()
    with db.session() as s:
        assert len(s.query(AuditEntry).all()) == len(actions)
    assert stale_value(wid, tid) == 0


def test_the_rules_alone() -> None:
    def h(t: datetime, n: int) -> layout.Held:
        return layout.Held(f"k{n}", "wl_0000000000000000", f"sn_{n:016x}", t, 1)

    copies_ = [h(T0 - timedelta(hours=6 * n), n) for n in range(12)]
    manual: dict[str, str | None] = {c.key: SnapshotOrigin.MANUAL for c in copies_}
    assert retention.kept(copies_, Keep(), manual) == {c.key for c in copies_}
    assert retention.kept(copies_, Keep(last=1), manual) == {"k0"}
    # 12:00, 06:00 and 00:00 of T0's day, then 18:00 of the day before: k3
    assert retention.kept(copies_, Keep(daily=2), manual) == {"k0", "k3"}
    assert retention.kept([], Keep(last=3), {}) == set()


def test_checkpoint_copies_never_push_out_a_copy_made_by_hand(
    db: Database, registry: Registry, settings: Settings, world: dict[str, Any]
) -> None:
    # The newcomer's case: a manual snapshot copied by hand (``moorage snapshots copy``),
    # then a policy with keep_last 3, then more deploy checkpoints than that and a
    # restore's pre-restore snapshot: every checkpoint copied pushed the manual copy out.
    wid, tid = world["workload"], world["target"]
    copier = Copier(settings, db, registry, lambda _name: None, Clock())
    manual = ready_snapshot(db, registry, settings, wid, T0 - timedelta(hours=12), size=1000)
    with db.session() as s:
        offsite.request_copy(s, ADA, wid, manual, tid)
    assert copier.run_pass() == 1
    policy(db, wid, tid, last=3)
    pre_restore = ready_snapshot(
        db, registry, settings, wid, T0 - timedelta(hours=11), 1000, SnapshotOrigin.PRE_RESTORE
    )
    checkpoints = [
        ready_snapshot(
            db, registry, settings, wid, T0 - timedelta(hours=h), 1000, SnapshotOrigin.CHECKPOINT
        )
        for h in range(10, 0, -1)
    ]
    assert copier.run_pass() == 1 + len(checkpoints)
    store = open_target(db, registry, settings, tid)
    try:
        on_target = {h.snapshot_id for h in layout.held(store.list())}
    finally:
        store.close()
    assert on_target == {manual, pre_restore, *checkpoints[-3:]}
    for sid in (manual, pre_restore, *checkpoints[-3:]):
        assert [r.status for r in copies(db, sid)] == [CopyStatus.VERIFIED], sid
    for sid in checkpoints[:-3]:
        with db.session() as s:
            row = s.get(SnapshotCopy, (sid, tid))
            assert row is not None and row.status == CopyStatus.PRUNED, sid
    # More checkpoints later change nothing for the copy made by hand.
    newer = ready_snapshot(db, registry, settings, wid, T0, 1000, SnapshotOrigin.CHECKPOINT)
    assert copier.run_pass() == 1
    store = open_target(db, registry, settings, tid)
    try:
        on_target = {h.snapshot_id for h in layout.held(store.list())}
    finally:
        store.close()
    assert on_target == {manual, pre_restore, *checkpoints[-2:], newer}


def corrupt(store: TargetStore, key: str, how: str) -> None:
    raw = io.BytesIO()
    store.get(key, raw)
    data = bytearray(raw.getvalue())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 1000]
    store.put(key, io.BytesIO(bytes(data)))


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_changed_copy_is_found_at_verify_and_at_fetch(
    db: Database, registry: Registry, settings: Settings, world: dict[str, Any], how: str
) -> None:
    wid, tid = world["workload"], world["target"]
    sid = ready_snapshot(db, registry, settings, wid, T0, size=1 << 20)
    policy(db, wid, tid)
    Copier(settings, db, registry, lambda _name: None, Clock()).run_pass()
    [row] = copies(db, sid)
    assert row.status == CopyStatus.VERIFIED
    with db.session() as s:
        snap = s.get(Snapshot, sid)
        assert snap is not None
        size, sha = snap.size, snap.sha256
    key = identity(db, settings, tid)
    store = open_target(db, registry, settings, tid)
    try:
        corrupt(store, row.key, how)
        with pytest.raises(TargetError) as caught:
            transfer.verify(store, row.key, key, size=size, sha256=sha)
        assert caught.value.code == "copy_corrupt"
        dest = settings.data_dir / "fetched.tar.zst"
        with pytest.raises(TargetError) as caught:
            transfer.fetch(store, row.key, key, dest, size=size, sha256=sha)
        assert caught.value.code == "copy_corrupt"
        assert list(dest.parent.glob("fetched*")) == []
    finally:
        store.close()
    # The restore's way in (Copier.fetch): refused too, and the copy stops counting as
    # verified, with why.
    copier = Copier(settings, db, registry, lambda _name: None, Clock())
    with pytest.raises(TargetError) as caught:
        copier.fetch(sid, settings.data_dir / "restore.tar.zst")
    assert caught.value.code == "copy_corrupt"
    [row] = copies(db, sid)
    assert row.status == CopyStatus.FAILED and "does not decrypt" in (row.error or "")
    assert not (settings.data_dir / "restore.tar.zst").exists()


def test_a_verified_copy_gone_from_the_target_fails_at_fetch(
    db: Database, registry: Registry, settings: Settings, world: dict[str, Any]
) -> None:
    wid, tid = world["workload"], world["target"]
    sid = ready_snapshot(db, registry, settings, wid, T0, size=4096)
    policy(db, wid, tid)
    copier = Copier(settings, db, registry, lambda _name: None, Clock())
    copier.run_pass()
    [row] = copies(db, sid)
    store = open_target(db, registry, settings, tid)
    try:
        store.delete(row.key)
    finally:
        store.close()
    with pytest.raises(TargetError) as caught:
        copier.fetch(sid, settings.data_dir / "restore.tar.zst")
    assert caught.value.code == "target_object_missing"
    [row] = copies(db, sid)
    assert row.status == CopyStatus.FAILED


def test_a_copy_the_target_refuses_fails_and_the_workload_turns_stale(
    db: Database, registry: Registry, settings: Settings, world: dict[str, Any]
) -> None:
    wid, tid = world["workload"], world["target"]
    sid = ready_snapshot(db, registry, settings, wid, T0, size=5000)
    policy(db, wid, tid, window=2)
    # The archive changed on local disk after it was recorded: nothing may be copied.
    archive = snapshots.archive_path_for(settings, wid, sid)
    archive.write_bytes(b"x" * 5000)
    clock = Clock()
    copier = Copier(settings, db, registry, lambda _name: None, clock)
    copier.run_pass()
    [row] = copies(db, sid)
    assert row.status == CopyStatus.FAILED and "no longer matches" in (row.error or "")
    store = open_target(db, registry, settings, tid)
    try:
        assert [o.key for o in store.list("snapshots/")] == []
    finally:
        store.close()
    assert stale_value(wid, tid) == 0  # inside its window
    clock.now = T0 + timedelta(hours=3)
    copier.run_pass()  # the failed copy is not retried yet (RETRY_AFTER)
    assert stale_value(wid, tid) == 1
    assert metrics.OFFSITE_STALE is not None


def test_a_fetch_cut_by_the_network_does_not_demote_a_good_copy(
    db: Database,
    registry: Registry,
    settings: Settings,
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection cut mid-stream reads as a cut copy; a second whole read that passes
    keeps the copy verified (the only one a restore could use)."""
    wid, tid = world["workload"], world["target"]
    sid = ready_snapshot(db, registry, settings, wid, T0, size=4096)
    policy(db, wid, tid)
    copier = Copier(settings, db, registry, lambda _name: None, Clock())
    copier.run_pass()

    def cut(*_args: Any, **_kw: Any) -> None:
        raise TargetError("the copy does not decrypt", code="copy_corrupt")

    monkeypatch.setattr("moorage.offsite.copier.transfer.fetch", cut)
    with pytest.raises(TargetError):
        copier.fetch(sid, settings.data_dir / "restore.tar.zst")
    [row] = copies(db, sid)
    assert row.status == CopyStatus.VERIFIED
