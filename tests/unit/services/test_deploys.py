"""Stop, start and restart (services.deploys.keep_at): the desired state is set, and a
restart with nothing that ever succeeded is refused with nothing changed."""

from __future__ import annotations

import pytest

from moorage.errors import Conflict
from moorage.services import deploys, workloads
from moorage.store.states import DesiredState
from tests.fakes.world import World


def desired(world: World, workload_id: str) -> str:
    with world.db.session() as s:
        return workloads.get(s, workload_id).desired_state


def test_a_restart_without_a_successful_deployment_is_refused_and_changes_nothing(
    world: World,
) -> None:
    wid = world.workload()
    with world.db.session() as s:
        deploys.keep_at(s, wid, DesiredState.STOPPED)
    with pytest.raises(Conflict) as refused:
        with world.db.session() as s:
            deploys.keep_at(s, wid, DesiredState.RUNNING, restart=True)
    assert refused.value.code == "not_deployed"
    assert desired(world, wid) == "stopped"


def test_stop_start_and_restart_set_the_desired_state(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    with world.db.session() as s:
        deploys.keep_at(s, wid, DesiredState.STOPPED)
    assert desired(world, wid) == "stopped"
    with world.db.session() as s:
        deploys.keep_at(s, wid, DesiredState.RUNNING, restart=True)
    assert desired(world, wid) == "running"
