"""A Moorage volume of a compose workload binds into the service it names; no change may
leave it naming a service the file lost (issue 12, a newcomer's finding: ``apps update
--file`` without the service was saved, and the deploy dropped the volume silently).

Every change that replaces the file (a config PATCH, a promote, a rollback) is 422
``unknown_service`` naming the volume and the service and saying what to do, with
nothing changed; a deploy of a workload an older Moorage left in that state fails before
anything runs. Over the in-memory engine and a real SQLite store (``tests.fakes``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select, update

from moorage.errors import InvalidInput
from moorage.security.roles import SYSTEM
from moorage.services import checkpoints, deploys, volumes, workloads
from moorage.services.volumes import VolumeSpec
from moorage.store.states import DeploymentStatus
from moorage.store.tables import AuditEntry, Deployment, Workload
from tests.fakes.world import PROJECT, World

SERVICE = "    image: moorage-test/httpd:1\n"
WEB = f"services:\n  web:\n{SERVICE}"
BOTH = f"{WEB}  worker:\n{SERVICE}"
MORE = f"{BOTH}  cron:\n{SERVICE}"


def stack(world: World, name: str, stage: str, compose: str, bound: str | None) -> str:
    """A compose workload; with ``bound``, a stage volume ``data`` binding into it."""
    registry = world.deployer.registry
    with world.db.session() as s:
        w = workloads.create(
            s,
            SYSTEM,
            registry,
            world.settings,
            name=name,
            kind="compose",
            project=PROJECT,
            stage=stage,
            config={"compose": compose},
        )
        if bound is not None:
            data = VolumeSpec("data", "stage", f"{name}/data", "/data", service=bound)
            volumes.replace(s, SYSTEM, world.settings, registry, w.id, [data])
        return w.id


def succeeded(world: World, workload_id: str, compose: str) -> str:
    """A deployment of ``workload_id`` that ran ``compose`` (its artifact and inputs)."""
    with world.db.session() as s:
        did = deploys.enqueue(s, SYSTEM, workload_id, "manual").id
        s.execute(
            update(Deployment)
            .where(Deployment.id == did)
            .values(
                status=DeploymentStatus.SUCCEEDED,
                artifact={"compose": compose, "project": "p"},
                inputs={"config": {"compose": compose}, "env": {}, "volumes": []},
            )
        )
    return did


def saved(world: World, workload_id: str) -> tuple[str, int, int]:
    """The saved file, the workload's audit rows and deployments: what a refusal keeps."""
    with world.db.session() as s:
        compose = str(workloads.get(s, workload_id).config["compose"])
        audits = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.target_id == workload_id)
        )
        runs = s.scalar(
            select(func.count())
            .select_from(Deployment)
            .where(Deployment.workload_id == workload_id)
        )
    return compose, int(audits or 0), int(runs or 0)


def patch(world: World, wid: str, compose: str) -> None:
    world.edit(wid, {"compose": compose})


def promote(world: World, wid: str, compose: str) -> None:
    source = stack(world, "stack", "staging", compose, None)
    succeeded(world, source, compose)
    with world.db.session() as s:
        deploys.promote(s, SYSTEM, world.deployer.registry, world.settings, wid, source)


def rollback(world: World, wid: str, compose: str) -> None:
    did = succeeded(world, wid, compose)
    with world.db.session() as s:
        checkpoints.rollback(
            s, SYSTEM, world.deployer.registry, world.settings, wid, did, data=False
        )


CHANGES = [
    pytest.param(patch, id="config-patch"),
    pytest.param(promote, id="promote"),
    pytest.param(rollback, id="rollback"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_that_drops_a_volumes_service_is_refused(
    world: World, change: Callable[[World, str, str], None]
) -> None:
    wid = stack(world, "stack", "production", BOTH, "worker")
    before = saved(world, wid)
    with pytest.raises(InvalidInput) as caught:
        change(world, wid, WEB)
    error = caught.value
    assert error.code == "unknown_service"
    assert "'data'" in error.message and "'worker'" in error.message
    assert "point it at another service" in error.message and "keep the service" in error.message
    assert error.details == [{"field": "service", "volume": "data", "service": "worker"}]
    after = saved(world, wid)
    assert after[0] == before[0] == BOTH
    if change is not rollback:  # a rollback's target row is the test's own
        assert after == before


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_that_keeps_the_service_is_saved(
    world: World, change: Callable[[World, str, str], None]
) -> None:
    wid = stack(world, "stack", "production", BOTH, "worker")
    change(world, wid, MORE)
    assert saved(world, wid)[0] == MORE


def test_a_workload_without_volumes_may_drop_any_service(world: World) -> None:
    wid = stack(world, "stack", "production", BOTH, None)
    patch(world, wid, WEB)
    assert saved(world, wid)[0] == WEB


def test_a_deploy_of_a_volume_bound_to_no_service_fails_before_anything_runs(
    world: World,
) -> None:
    """A row an older Moorage saved: the file lost the service after the volume was set."""
    wid = stack(world, "stack", "production", BOTH, "worker")
    with world.db.session() as s:
        s.execute(update(Workload).where(Workload.id == wid).values(config={"compose": WEB}))
    done = world.deploy(wid)
    assert done.status == "failed"
    assert done.error is not None
    assert "'data'" in done.error and "'worker'" in done.error, done.error
    assert "keep the service" in done.error
    assert world.engine.calls == []
    assert not (world.settings.data_dir / "compose" / wid).exists()
