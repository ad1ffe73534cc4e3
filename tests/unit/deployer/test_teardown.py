"""Teardown over the in-memory engine: what a workload runs is removed under its lock,
and a workload that never left the queue needs no engine at all."""

from __future__ import annotations

import pytest

from moorage.errors import EngineUnavailable
from moorage.runtime.engine import LABEL_WORKLOAD
from tests.fakes.world import World


def test_teardown_removes_every_container_of_the_workload_only(world: World) -> None:
    gone, kept = world.workload("gone"), world.workload("kept")
    world.deploy(gone)
    world.deploy(kept)

    world.deployer.teardown(gone)

    assert world.engine.containers({LABEL_WORKLOAD: gone}) == []
    assert [c.running for c in world.engine.containers({LABEL_WORKLOAD: kept})] == [True]


def test_a_never_deployed_workload_needs_no_engine(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload_id = world.workload()

    def unreachable() -> None:
        raise EngineUnavailable("the Docker engine is not reachable")

    monkeypatch.setattr(world.engine, "ping", unreachable)
    world.deployer.teardown(workload_id)  # nothing runs, so nothing to ask
    assert world.engine.calls == []


def test_a_deployed_workload_is_not_torn_down_blind(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload_id = world.workload()
    world.deploy(workload_id)
    world.engine.calls.clear()

    def unreachable() -> None:
        raise EngineUnavailable("the Docker engine is not reachable")

    monkeypatch.setattr(world.engine, "ping", unreachable)
    with pytest.raises(EngineUnavailable):
        world.deployer.teardown(workload_id)
    assert world.engine.calls == []  # nothing touched
