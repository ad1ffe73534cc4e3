"""Reconcile over the in-memory engine: it brings back exactly what the last successful
deployment ran (its image, config, env and volumes), never a change saved since, and it
never makes a container for a workload that never deployed."""

from __future__ import annotations

from moorage.runtime.engine import LABEL_DEPLOYMENT
from moorage.security.roles import SYSTEM
from moorage.services import volumes as volume_service
from moorage.services.volumes import VolumeSpec
from moorage.store.tables import Deployment, utcnow
from tests.fakes.world import HEALTHY_AT_ONCE, IMAGE_V1, IMAGE_V2, World

DEPLOYED = {
    "image": IMAGE_V1,
    "ports": [{"container": 8080, "host": 18080}],
    "health": HEALTHY_AT_ONCE,
}


def legacy_restore_row(world: World, workload_id: str) -> None:
    """A succeeded row with an empty artifact, as restores wrote them before issue 11."""
    with world.db.session() as s:
        s.add(
            Deployment(
                id="dp_legacyrestore01",
                workload_id=workload_id,
                reason="restore:rs_legacy",
                status="succeeded",
                artifact={},
                started_at=utcnow(),
                finished_at=utcnow(),
            )
        )


def test_a_removed_container_comes_back_as_deployed_not_as_edited(world: World) -> None:
    workload_id = world.workload(config=DEPLOYED)
    world.set_env(workload_id, {"MODE": "v1"})
    deployed = world.deploy(workload_id)
    [first] = world.engine.containers({})
    world.edit(
        workload_id,
        {"image": IMAGE_V2, "command": ["edited"], "ports": [{"container": 8080, "host": 19090}]},
    )
    world.set_env(workload_id, {"MODE": "edited"})
    with world.db.session() as s:
        edited = [VolumeSpec("v0", "stage", "app/v0", "/edited")]
        volume_service.replace(
            s, SYSTEM, world.settings, world.deployer.registry, workload_id, edited
        )
    legacy_restore_row(world, workload_id)  # passed over: it records no artifact
    world.engine.remove(first.id)

    assert world.deployer.reconcile(workload_id) == "running"

    [again] = world.engine.containers({})
    spec = world.engine.spec_of(again.id)
    assert again.image_id == deployed.artifact["image_id"] == world.engine.images[IMAGE_V1].id
    assert again.labels[LABEL_DEPLOYMENT] == deployed.id
    assert spec.name == first.name
    assert spec.command is None
    assert [(p.container, p.host) for p in spec.ports] == [(8080, 18080)]
    assert spec.env == {"MODE": "v1"}
    assert [m.target for m in spec.mounts] == ["/v0"]


def test_a_stopped_container_is_started_again_as_it_is(world: World) -> None:
    workload_id = world.workload(config=DEPLOYED)
    world.deploy(workload_id)
    [container] = world.engine.containers({})
    world.engine.crash(container.id)
    world.edit(workload_id, {"image": IMAGE_V2})
    world.engine.calls.clear()
    assert world.deployer.reconcile(workload_id) == "running"
    assert world.engine.calls == [("start", container.id)]


def test_a_never_deployed_workload_gets_no_container(world: World) -> None:
    workload_id = world.workload()
    legacy_restore_row(world, workload_id)  # what an old restore left: once a `..._None`
    assert world.deployer.reconcile(workload_id) == "never_deployed"
    world.deployer.reconcile_all()
    assert world.engine.boxes == {} and world.engine.calls == []
    with world.db.session() as s:
        assert world.deployer.deployed_view(s, workload_id).artifact is None
