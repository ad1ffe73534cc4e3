"""Desired state over the in-memory engine: a stopped workload stays stopped whatever
reconcile, a crash, a hand-started container or a triggered deploy does; starting it
brings back its last good deployment."""

from __future__ import annotations

import pytest

from moorage.security.roles import SYSTEM
from moorage.services import deploys, workloads
from tests.fakes.world import World


def desire(world: World, wid: str, desired: str) -> None:
    with world.db.session() as s:
        workloads.set_desired_state(s, wid, desired)


def status(world: World, wid: str) -> str:
    with world.db.session() as s:
        return workloads.get(s, wid).status


def test_a_stopped_workload_stays_stopped_through_reconcile(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    [container] = world.engine.containers({})
    desire(world, wid, "stopped")

    done = world.deployer.converge(wid)
    assert (done.status, done.changed) == ("stopped", True)
    assert not world.engine.get(container.id).running  # type: ignore[union-attr]

    for _ in range(3):
        assert world.deployer.reconcile(wid) == "stopped"
    assert [c.running for c in world.engine.containers({})] == [False]

    world.engine.start(container.id)  # by hand: reconcile stops it again
    assert world.deployer.reconcile(wid) == "stopped"
    assert [c.running for c in world.engine.containers({})] == [False]

    world.engine.crash(container.id)  # a non-zero exit of a stopped app is no failure
    assert world.deployer.reconcile(wid) == "stopped" == status(world, wid)


def test_starting_brings_the_last_good_deployment_back(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    [container] = world.engine.containers({})
    desire(world, wid, "stopped")
    world.deployer.converge(wid)
    desire(world, wid, "running")

    done = world.deployer.converge(wid)
    assert (done.status, done.changed) == ("running", True)
    assert [c.id for c in world.engine.containers({}) if c.running] == [container.id]


def test_a_restart_stops_and_starts_what_runs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    wid = world.workload()
    world.deploy(wid)
    stopped: list[str] = []
    real_stop = world.engine.stop

    def stop(container_id: str, timeout: int) -> None:
        stopped.append(container_id)
        real_stop(container_id, timeout)

    monkeypatch.setattr(world.engine, "stop", stop)
    [container] = world.engine.containers({})

    done = world.deployer.converge(wid, restart=True)
    assert (done.status, done.changed) == ("running", True)
    assert stopped == [container.id]
    assert [c.running for c in world.engine.containers({})] == [True]


def test_a_triggered_deploy_of_a_stopped_workload_fails_and_starts_nothing(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    desire(world, wid, "stopped")
    world.deployer.converge(wid)
    with world.db.session() as s:
        queued = deploys.enqueue(s, SYSTEM, wid, "trigger:tr_x").id
    assert world.server.queue.claim(queued)
    with world.deployer.locks.hold(wid, timeout=5):
        world.server.queue.run(queued)

    row = world.deployment(queued)
    assert row.status == "failed"
    assert row.error and "is stopped" in row.error and "trigger:tr_x" in row.error
    assert status(world, wid) == "stopped"
    assert [c.running for c in world.engine.containers({})] == [False]


def test_a_manual_deploy_asks_a_stopped_workload_to_run(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    desire(world, wid, "stopped")
    with world.db.session() as s:
        deploys.deploy(s, SYSTEM, world.deployer.registry, world.settings, wid)
        assert workloads.get(s, wid).desired_state == "running"


def test_a_never_deployed_workload_has_nothing_to_converge(world: World) -> None:
    wid = world.workload()
    desire(world, wid, "stopped")
    assert world.deployer.converge(wid).status == "never_deployed"
    desire(world, wid, "running")
    assert world.deployer.converge(wid).status == "never_deployed"
    assert world.engine.containers({}) == []
