"""An uploaded archive (snapshots/incoming.py): kept as a ``ready`` import with one audit
row only when every byte passed the reader; otherwise no row, no audit row and no file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from moorage.errors import ArchiveInvalid, InvalidInput, NotFound, PayloadTooLarge
from moorage.security.roles import Actor
from moorage.services import snapshots, workloads
from moorage.snapshots.incoming import IncomingArchive
from moorage.store.tables import AuditEntry, Snapshot
from tests.fakes.world import World, make_world

ADA = Actor(user_id="us_ada", username="ada", role="admin", via="token")


def count(world: World, table: type[Snapshot] | type[AuditEntry]) -> int:
    with world.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def files(world: World, workload_id: str) -> list[Path]:
    folder = world.settings.snapshots_dir / workload_id
    return sorted(folder.iterdir()) if folder.exists() else []


def upload(world: World, workload_id: str, *chunks: bytes) -> Snapshot:
    with IncomingArchive(world.settings, workload_id) as incoming:
        for chunk in chunks:
            incoming.write(chunk)
        with world.db.session() as s:
            snapshot_id = incoming.keep(s, world.deployer.locks, ADA)
    with world.db.session() as s:
        return snapshots.get(s, workload_id, snapshot_id)


def an_archive(world: World) -> bytes:
    """A real archive: a capture of another workload."""
    source = world.workload("source")
    snapshot_id = world.snapshot(source)
    return snapshots.archive_path_for(world.settings, source, snapshot_id).read_bytes()


def test_a_good_archive_becomes_a_ready_import_with_one_audit_row(world: World) -> None:
    data = an_archive(world)
    target = world.workload("target")
    audits = count(world, AuditEntry)
    snap = upload(world, target, data[:1000], data[1000:])
    assert (snap.origin, snap.status, snap.size) == ("import", "ready", len(data))
    assert snap.sha256 == hashlib.sha256(data).hexdigest()
    assert snap.volumes == ["v0"]
    assert files(world, target) == [snapshots.archive_path_for(world.settings, target, snap.id)]
    assert files(world, target)[0].read_bytes() == data
    with world.db.session() as s:
        assert [x.id for x in snapshots.list_for(s, target)] == [snap.id]
        [row] = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    assert (row.actor, row.action, row.target_id) == ("ada", "snapshot.import", target)
    assert row.details["snapshot"] == snap.id
    assert count(world, AuditEntry) == audits + 1


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (b"not an archive at all", ArchiveInvalid, "invalid_archive"),
        (b"", InvalidInput, "invalid_archive"),
    ],
)
def test_a_bad_archive_leaves_no_row_and_no_file(
    world: World, body: bytes, error: type[Exception], code: str
) -> None:
    target = world.workload("target")
    snaps, audits = count(world, Snapshot), count(world, AuditEntry)
    with pytest.raises(error) as refused:
        upload(world, target, body)
    assert getattr(refused.value, "code", None) == code
    assert files(world, target) == []
    assert (count(world, Snapshot), count(world, AuditEntry)) == (snaps, audits)


def test_a_truncated_archive_leaves_no_row_and_no_file(world: World) -> None:
    data = an_archive(world)
    target = world.workload("target")
    snaps = count(world, Snapshot)
    with pytest.raises(ArchiveInvalid):
        upload(world, target, data[: len(data) // 2])
    assert files(world, target) == []
    assert count(world, Snapshot) == snaps


def test_an_upload_over_the_cap_stops_and_leaves_nothing(tmp_path: Path) -> None:
    world = make_world(tmp_path, snapshot_max_bytes=10)
    try:
        target = world.workload("target")
        with pytest.raises(PayloadTooLarge):
            upload(world, target, b"12345", b"678901")
        assert files(world, target) == []
        assert count(world, Snapshot) == 0
    finally:
        world.db.dispose()


def test_a_workload_deleted_while_the_archive_came_in_keeps_nothing(world: World) -> None:
    data = an_archive(world)
    target = world.workload("target")
    snaps = count(world, Snapshot)
    with pytest.raises(NotFound):
        with IncomingArchive(world.settings, target) as incoming:
            incoming.write(data)
            with world.db.session() as s:
                workloads.delete(s, ADA, target)
                s.commit()
            with world.db.session() as s:
                incoming.keep(s, world.deployer.locks, ADA)
    assert files(world, target) == []
    assert count(world, Snapshot) == snaps
