"""What a download may read (services.snapshots.ready_archive): only the archive of a
``ready`` snapshot whose file is there; anything else is 404 ``not_ready``. Retention
(``prune``) counts captures and deploy checkpoints apart."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from moorage.errors import NotFound
from moorage.security.roles import SYSTEM
from moorage.services import snapshots
from moorage.store.states import SnapshotOrigin
from moorage.store.tables import Snapshot, Workload
from tests.fakes.world import World


def test_a_ready_snapshot_gives_its_archive_and_digest(world: World) -> None:
    wid = world.workload()
    sid = world.snapshot(wid)
    with world.db.session() as s:
        path, sha256 = snapshots.ready_archive(s, world.settings, wid, sid)
    assert path == snapshots.archive_path_for(world.settings, wid, sid)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_archive_to_read_is_not_ready(world: World) -> None:
    wid = world.workload()
    gone = world.snapshot(wid)
    snapshots.archive_path_for(world.settings, wid, gone).unlink()
    with world.db.session() as s:
        capturing = snapshots.request_capture(
            s, SYSTEM, world.deployer.registry, wid, volumes=None, mode="stop"
        ).id
    for sid in (gone, capturing):
        with world.db.session() as s, pytest.raises(NotFound) as refused:
            snapshots.ready_archive(s, world.settings, wid, sid)
        assert refused.value.code == "not_ready"
    with world.db.session() as s, pytest.raises(NotFound) as refused:
        snapshots.ready_archive(s, world.settings, wid, "sn_unknown")
    assert refused.value.code == "not_found"


def test_checkpoints_never_push_out_a_capture(world: World) -> None:
    """keep_last counts captures and deploy checkpoints apart: any number of deploys
    with checkpoints leaves the person's and the schedule's captures alone."""
    wid = world.workload()
    manual = [world.snapshot(wid) for _ in range(2)]
    checkpoints = [world.snapshot(wid) for _ in range(3)]
    with world.db.session() as s:
        for sid in checkpoints:
            row = s.get(Snapshot, sid)
            assert row is not None
            row.origin = SnapshotOrigin.CHECKPOINT
        workload = s.get(Workload, wid)
        assert workload is not None
        workload.keep_last = 2
    with world.db.session() as s:
        removed = snapshots.prune(s, world.settings, wid)
    assert removed == [checkpoints[0]]  # the oldest checkpoint only
    with world.db.session() as s:
        left = {sn.id: sn.origin for sn in s.scalars(select(Snapshot)) if sn.workload_id == wid}
    assert set(left) == {*manual, *checkpoints[1:]}
    assert not snapshots.archive_path_for(world.settings, wid, checkpoints[0]).exists()
    assert all(snapshots.archive_path_for(world.settings, wid, m).exists() for m in manual)
