"""Reconcile over the in-memory engine: it brings back exactly what the last successful
deployment ran (its image, config, env and volumes), never a change saved since, and it
never makes a container for a workload that never deployed; the status it records
(``as_desired``), a busy workload skipped, an audit row only for a change."""

from __future__ import annotations

import pytest

from moorage.deployer.reconcile import as_desired
from moorage.errors import EngineUnavailable
from moorage.runtime.engine import LABEL_DEPLOYMENT
from moorage.security.roles import SYSTEM
from moorage.services import audit
from moorage.services import volumes as volume_service
from moorage.services.volumes import VolumeSpec
from moorage.store.states import DesiredState
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
    world.server.reconciler.reconcile_all()
    assert world.engine.boxes == {} and world.engine.calls == []
    with world.db.session() as s:
        assert world.server.views.deployed_view(s, workload_id).artifact is None


# (what the kind reported, the desired state, the status recorded)
DECISIONS = [
    ("running", "running", "running"),
    ("stopped", "running", "stopped"),
    ("failed", "running", "failed"),
    ("unknown", "running", "unknown"),
    ("running", "stopped", "running"),  # runs although stopped: says so, converge stops it
    ("failed", "stopped", "stopped"),  # an app stopped on purpose may exit non-zero
    ("stopped", "stopped", "stopped"),
    ("exploded", "running", "unknown"),  # not a status a kind may report
]


@pytest.mark.parametrize(("reported", "desired", "recorded"), DECISIONS)
def test_the_status_recorded_for_what_the_kind_reported(
    reported: str, desired: str, recorded: str
) -> None:
    assert as_desired(reported, DesiredState(desired)) == recorded


def reconcile_rows(world: World, workload_id: str) -> list[dict[str, object]]:
    with world.db.session() as s:
        rows = audit.entries(s, limit=100, target_type="workload", target_id=workload_id)
        return [r.details for r in rows if r.action == "workload.reconcile"]


def test_a_change_writes_one_audit_row_and_no_change_none(world: World) -> None:
    workload_id = world.workload(config=DEPLOYED)
    world.deploy(workload_id)
    [container] = world.engine.containers({})
    assert world.deployer.reconcile(workload_id) == "running"
    assert reconcile_rows(world, workload_id) == []  # nothing drifted

    world.engine.crash(container.id)
    assert world.deployer.reconcile(workload_id) == "running"
    assert world.deployer.reconcile(workload_id) == "running"
    [row] = reconcile_rows(world, workload_id)
    assert row["status"] == "running"


def test_a_busy_workload_is_skipped_untouched(world: World) -> None:
    workload_id = world.workload(config=DEPLOYED)
    world.deploy(workload_id)
    [container] = world.engine.containers({})
    world.engine.crash(container.id)
    world.engine.calls.clear()

    with world.held_elsewhere(workload_id):
        assert world.deployer.reconcile(workload_id) == "deploying"
        world.server.reconciler.reconcile_all()
    assert world.engine.calls == []
    assert reconcile_rows(world, workload_id) == []


def test_an_unreachable_engine_records_unknown_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload_id = world.workload(config=DEPLOYED)
    world.deploy(workload_id)
    world.engine.calls.clear()

    def unreachable(labels: dict[str, str]) -> list[object]:
        raise EngineUnavailable("the Docker engine is not reachable")

    monkeypatch.setattr(world.engine, "containers", unreachable)
    assert world.deployer.reconcile(workload_id) == "unknown"
    assert world.server.reconciler.observe(workload_id) == "unknown"
    assert world.engine.calls == []
    assert reconcile_rows(world, workload_id) == []
