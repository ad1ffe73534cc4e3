"""Workload views: ``view`` is the workload as saved now, ``deployed_view`` as its last
successful deployment ran it; host paths are derived from the current settings."""

from __future__ import annotations

from tests.fakes.world import IMAGE_V1, IMAGE_V2, STAGE, World


def test_view_is_as_saved_and_deployed_view_as_deployed(world: World) -> None:
    workload_id = world.workload()
    world.set_env(workload_id, {"MODE": "deployed"})
    deployed = world.deploy(workload_id)
    world.edit(workload_id, {"image": IMAGE_V2})
    world.set_env(workload_id, {"MODE": "edited"})

    with world.db.session() as s:
        saved = world.server.views.view(s, workload_id)
        ran = world.server.views.deployed_view(s, workload_id)

    assert (saved.config["image"], saved.env) == (IMAGE_V2, {"MODE": "edited"})
    assert (ran.config["image"], ran.env) == (IMAGE_V1, {"MODE": "deployed"})
    assert saved.artifact == ran.artifact == deployed.artifact  # the last that ran, both


def test_a_stage_volume_lives_under_the_data_dir(world: World) -> None:
    workload_id = world.workload(volumes=2)
    with world.db.session() as s:
        view = world.server.views.view(s, workload_id)

    assert [(v.name, v.target) for v in view.volumes] == [("v0", "/v0"), ("v1", "/v1")]
    for mount in view.volumes:
        assert mount.host_path.is_relative_to(world.settings.data_dir)
        assert STAGE in mount.host_path.parts


def test_the_context_carries_the_container_labels_and_the_fault_points(world: World) -> None:
    seen: list[str] = []
    world.fault = seen.append
    workload_id = world.workload()
    with world.db.session() as s:
        ctx = world.server.views.context(world.server.views.view(s, workload_id))

    ctx.fault("deploy.somewhere")
    assert seen == ["deploy.somewhere"]
    assert ctx.labels == dict(world.settings.container_labels)
    assert ctx.engine is world.engine
