"""The rows a running deployment writes (``services/deployment_runs.py``) on a real
SQLite store: what status a workload is left with when a deploy ends, and what a
success records."""

from __future__ import annotations

import pytest

from moorage.errors import DeployFailed
from moorage.security.roles import SYSTEM
from moorage.services import chain as chain_service
from moorage.services import deployment_runs, deploys, workloads
from moorage.store.states import DeploymentStatus, DesiredState, WorkloadStatus
from tests.fakes.world import World

# (desired state, what the engine shows after the failed deploy, the workload's status)
AFTER_A_FAILURE = [
    ("running", "running", "running"),  # the old version still serves
    ("running", "unknown", "unknown"),  # no engine to ask
    ("running", "stopped", "failed"),
    ("running", "failed", "failed"),
    ("stopped", "stopped", "stopped"),  # refused because the workload is stopped
    ("stopped", "failed", "failed"),
]


def running_row(world: World, workload_id: str) -> str:
    with world.db.session() as s:
        deployment_id = deploys.enqueue(s, SYSTEM, workload_id, "manual").id
    assert world.server.queue.claim(deployment_id)
    return deployment_id


@pytest.mark.parametrize(("desired", "observed", "left"), AFTER_A_FAILURE)
def test_the_status_a_failed_deploy_leaves(
    world: World, desired: str, observed: str, left: str
) -> None:
    workload_id = world.workload()
    deployment_id = running_row(world, workload_id)
    with world.db.session() as s:
        workloads.set_desired_state(s, workload_id, DesiredState(desired))
    with world.db.session() as s:
        deployment_runs.finish(
            s,
            deployment_id,
            workload_id,
            DeploymentStatus.FAILED,
            WorkloadStatus(observed),
            error="it broke",
            artifact=None,
            chain=True,
        )
    with world.db.session() as s:
        assert workloads.get(s, workload_id).status == left
    row = world.deployment(deployment_id)
    assert (row.status, row.error, row.artifact) == ("failed", "it broke", {})
    assert row.finished_at is not None


def test_a_success_records_the_digest_and_queues_the_chain_once(world: World) -> None:
    first, second = world.workload("first"), world.workload("second")
    with world.db.session() as s:
        chain_service.replace(s, SYSTEM, first, [second])
    deployment_id = running_row(world, first)
    with world.db.session() as s:
        ran = deployment_runs.begin(s, deployment_id, first, "manual", {"config": {}})
        assert ran == []  # no host powers held
    with world.db.session() as s:
        deployment_runs.finish(
            s,
            deployment_id,
            first,
            DeploymentStatus.SUCCEEDED,
            WorkloadStatus.RUNNING,
            error=None,
            artifact={"image_id": "sha256:1"},
            chain=True,
        )
    row = world.deployment(deployment_id)
    assert (row.status, row.artifact) == ("succeeded", {"image_id": "sha256:1"})
    assert "queued chain: " + second in row.log
    [chained] = world.deployments(second)
    assert (chained.status, chained.reason) == ("queued", f"chain:{first}")
    with world.db.session() as s:
        assert workloads.get(s, first).status == "running"
        assert workloads.get(s, first).deployed_digest is not None


def test_begin_refuses_a_stopped_workload_and_records_nothing(world: World) -> None:
    workload_id = world.workload()
    deployment_id = running_row(world, workload_id)
    with world.db.session() as s:
        workloads.set_desired_state(s, workload_id, DesiredState.STOPPED)
    with pytest.raises(DeployFailed, match="is stopped"), world.db.session() as s:
        deployment_runs.begin(s, deployment_id, workload_id, "trigger:t", {"config": {}})
    assert world.deployment(deployment_id).inputs == {}
