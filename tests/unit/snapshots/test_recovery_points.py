"""Recovery points over the in-memory engine: a workload of the stage without volumes
(a stateless app) has nothing a point could miss, so it is skipped, named on the point,
never quiesced and never restored; a stage where no workload has volumes is 422
``no_volumes`` with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from moorage.errors import InvalidInput
from moorage.security.roles import SYSTEM
from moorage.services import recovery_points
from moorage.store.tables import RecoveryPoint, Snapshot
from tests.fakes.world import PROJECT, STAGE, World
from tests.unit.snapshots.restore.conftest import fill


def _containers(world: World, workload_id: str) -> set[str]:
    return {c.id for c in world.engine.containers({"moorage.workload": workload_id})}


def test_a_stateless_workload_is_skipped_named_and_left_running(world: World) -> None:
    db = world.workload("db")
    portuse = world.workload("portuse", volumes=0)
    for wid in (db, portuse):
        assert world.deploy(wid).status == "succeeded"
    fill(world.live(db), "old")
    stateless = _containers(world, portuse)
    assert stateless
    world.engine.calls.clear()

    with world.db.session() as s:
        point = recovery_points.create(s, SYSTEM, world.deployer.registry, PROJECT, STAGE, "stop")
        point_id = point.id
    with world.db.session() as s:
        row = s.get(RecoveryPoint, point_id)
        assert row is not None
        assert [i["workload_id"] for i in row.items] == [db]
        assert row.skipped == [
            {
                "workload_id": portuse,
                "name": "portuse",
                "reason": "the workload has no volumes to snapshot",
            }
        ]
        assert s.scalar(select(func.count()).where(Snapshot.workload_id == portuse)) == 0
    world.server.recovery_points.capture(point_id)
    with world.db.session() as s:
        row = s.get(RecoveryPoint, point_id)
        assert row is not None and row.status == "ready", row and row.error
    # The stateless workload was never stopped or paused for the point.
    assert not [c for c in world.engine.calls if c[1] in stateless], world.engine.calls

    fill(world.live(db), "new")
    with world.db.session() as s:
        parts = world.server.recovery_points.request_restore(
            s, SYSTEM, PROJECT, point_id, f"{PROJECT}/{STAGE}"
        )
    assert [p["workload_id"] for p in parts] == [db]
    world.server.recovery_points.restore(point_id, parts)
    with world.db.session() as s:
        row = s.get(RecoveryPoint, point_id)
        assert row is not None and row.restore_status == "succeeded", row and row.restore_error
    assert (world.live(db) / "index.html").read_text() == "old\n"
    assert not [c for c in world.engine.calls if c[1] in stateless], world.engine.calls
    assert _containers(world, portuse) == stateless


def test_a_stage_without_any_volumes_is_no_volumes_and_writes_nothing(world: World) -> None:
    world.workload("portuse", volumes=0)
    world.workload("api", volumes=0)
    with world.db.session() as s, pytest.raises(InvalidInput) as refused:
        recovery_points.create(s, SYSTEM, world.deployer.registry, PROJECT, STAGE, "stop")
    assert refused.value.code == "no_volumes"
    message = refused.value.message
    assert f"{PROJECT}/{STAGE}" in message and "api" in message and "portuse" in message
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RecoveryPoint)) == 0
        assert s.scalar(select(func.count()).select_from(Snapshot)) == 0
