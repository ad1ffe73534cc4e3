"""Deleting a workload (services/removal.py): refused with nothing touched while its lock
is held or while it keeps snapshots; a failed teardown keeps rows and archives; the
archives go only once the rows are gone."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from moorage.errors import Conflict, EngineUnavailable
from moorage.security.roles import Actor
from moorage.services import removal, snapshots
from moorage.store.tables import AuditEntry, Snapshot, Workload
from tests.fakes.locks import held_elsewhere
from tests.fakes.world import World

ADA = Actor(user_id="us_ada", username="ada", role="admin", via="token")


def exists(world: World, workload_id: str) -> bool:
    with world.db.session() as s:
        return s.get(Workload, workload_id) is not None


def audit_rows(world: World) -> int:
    with world.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def archives(world: World, workload_id: str) -> list[Path]:
    with world.db.session() as s:
        rows = s.scalars(select(Snapshot).where(Snapshot.workload_id == workload_id))
        return [snapshots.archive_path(world.settings, snap) for snap in rows]


class Teardowns:
    """Records the ids it was asked to tear down; raises ``fail`` when set."""

    def __init__(self, world: World, fail: Exception | None = None) -> None:
        self.world = world
        self.fail = fail
        self.calls: list[str] = []

    def __call__(self, workload_id: str, *, purge_volumes: bool) -> None:
        self.calls.append(workload_id)
        assert exists(self.world, workload_id), "the teardown reads the rows: they must be there"
        if self.fail is not None:
            raise self.fail
        self.world.deployer.teardown(workload_id, purge_volumes=purge_volumes)


def delete(
    world: World,
    workload_id: str,
    teardown: Teardowns,
    *,
    purge_snapshots: bool = False,
    wait: float = 5,
) -> None:
    with world.db.session() as s:
        removal.delete_workload(
            s,
            world.deployer.locks,
            ADA,
            world.settings,
            workload_id,
            purge_snapshots=purge_snapshots,
            teardown=teardown,
            wait=wait,
        )


def test_a_delete_tears_down_then_removes_the_rows_with_one_audit_row(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    assert world.engine.boxes  # something runs
    before = audit_rows(world)
    teardown = Teardowns(world)
    delete(world, wid, teardown)
    assert teardown.calls == [wid]
    assert not exists(world, wid)
    assert audit_rows(world) == before + 1
    assert not world.engine.boxes


def test_a_delete_waits_for_a_running_restore_and_refuses_with_nothing_changed(
    world: World,
) -> None:
    """A restore (like a deploy or a capture) holds the workload's lock while it runs."""
    wid = world.workload()
    before = audit_rows(world)
    teardown = Teardowns(world)
    with held_elsewhere(world.deployer.locks, wid):
        with pytest.raises(Conflict) as refused:
            delete(world, wid, teardown, wait=0.3)
    assert refused.value.code == "workload_busy"
    assert teardown.calls == []
    assert exists(world, wid)
    assert audit_rows(world) == before


def test_a_workload_with_snapshots_is_kept_unless_they_are_purged(world: World) -> None:
    wid = world.workload()
    world.snapshot(wid)
    [archive] = archives(world, wid)
    assert archive.exists()
    before = audit_rows(world)
    teardown = Teardowns(world)
    with pytest.raises(Conflict) as refused:
        delete(world, wid, teardown)
    assert refused.value.code == "has_snapshots"
    assert (teardown.calls, exists(world, wid), archive.exists()) == ([], True, True)
    assert audit_rows(world) == before

    delete(world, wid, teardown, purge_snapshots=True)
    assert teardown.calls == [wid]
    assert not exists(world, wid)
    assert archives(world, wid) == []  # the snapshot rows went with the workload
    assert not archive.exists()


def test_a_failed_teardown_keeps_the_rows_and_the_archives(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    world.snapshot(wid)
    [archive] = archives(world, wid)
    before = audit_rows(world)
    with pytest.raises(EngineUnavailable):
        delete(world, wid, Teardowns(world, EngineUnavailable("no engine")), purge_snapshots=True)
    assert exists(world, wid)
    assert archive.exists()
    assert archives(world, wid) == [archive]
    assert audit_rows(world) == before
