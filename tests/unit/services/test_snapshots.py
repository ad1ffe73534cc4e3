"""What a download may read (services.snapshots.ready_archive): only the archive of a
``ready`` snapshot whose file is there; anything else is 404 ``not_ready``."""

from __future__ import annotations

import hashlib

import pytest

from moorage.errors import NotFound
from moorage.security.roles import SYSTEM
from moorage.services import snapshots
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
