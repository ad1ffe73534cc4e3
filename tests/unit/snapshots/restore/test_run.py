"""What a restore starts, without Docker: the last successful deployment's artifact,
health-checked, recorded on the row it writes; nothing for a workload that never
deployed or is stopped; never a config edited since the last deploy."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from moorage.runtime.engine import LABEL_DEPLOYMENT
from moorage.services import workloads
from moorage.store.tables import Restore, Workload
from tests.fakes.world import IMAGE_V2, World
from tests.unit.snapshots.restore.conftest import Site, fill, read_tree


def test_a_restore_runs_the_deployed_artifact_again_not_the_edited_config(site: Site) -> None:
    world = site.world
    [container] = world.engine.containers({})
    site.world.edit(site.id, {"image": IMAGE_V2, "ports": [{"container": 8080, "host": 18080}]})
    world.engine.calls.clear()
    restore_id = site.restore()
    assert world.restore_row(restore_id).status == "succeeded"
    assert site.trees() == site.old
    # The very container that was stopped started again: same id, same image, nothing created.
    assert [c for c in world.engine.containers({}) if c.running] == [
        replace(container, state="running", exit_code=None)
    ]
    assert ("create", container.name) not in world.engine.calls
    newest = world.deployments(site.id)[0]
    assert (newest.reason, newest.status) == (f"restore:{restore_id}", "succeeded")
    assert newest.artifact == site.deployed.artifact
    assert newest.inputs == site.deployed.inputs
    with world.db.session() as s:
        assert workloads.get(s, site.id).status == "running"


def test_a_missing_container_is_recreated_from_the_deployed_inputs(site: Site) -> None:
    world = site.world
    site.world.edit(site.id, {"image": IMAGE_V2, "command": ["sh", "-c", "edited"]})
    [container] = world.engine.containers({})
    world.engine.remove(container.id)  # gone while the app was down
    restore_id = site.restore()
    [again] = world.engine.containers({})
    assert again.running and again.id != container.id
    assert again.labels[LABEL_DEPLOYMENT] == site.deployed.id
    assert again.image_id == site.deployed.artifact["image_id"]
    assert world.engine.spec_of(again.id).command is None  # as deployed, not as edited
    newest = world.deployments(site.id)[0]
    assert newest.artifact == {**site.deployed.artifact, "container": again.name}
    assert world.restore_row(restore_id).error is None


def test_the_redeploy_is_health_checked(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    world = site.world
    real_start = world.engine.start

    def start_and_crash(container_id: str) -> None:
        real_start(container_id)
        world.engine.crash(container_id)  # the app dies on the restored data

    monkeypatch.setattr(world.engine, "start", start_and_crash)
    restore_id = site.restore()
    row = world.restore_row(restore_id)
    # The data is restored (the commit happened); the row says the app did not come up.
    assert row.status == "succeeded" and site.trees() == site.old
    newest = world.deployments(site.id)[0]
    assert (newest.reason, newest.status, newest.artifact) == (
        f"restore:{restore_id}",
        "failed",
        {},
    )
    assert newest.error and newest.error in (row.error or "")
    # What reconcile and promote read is still the deployment that ran.
    with world.db.session() as s:
        assert world.server.views.view(s, site.id).artifact == site.deployed.artifact


def test_a_never_deployed_workload_gets_its_data_and_no_container(world: World) -> None:
    workload_id = world.workload()
    fill(world.live(workload_id), "old")
    old = read_tree(world.live(workload_id))
    snapshot = world.snapshot(workload_id)
    fill(world.live(workload_id), "new")
    restorer = world.restorer()
    restore_id = world.request_restore(restorer, workload_id, snapshot)
    restorer.run(restore_id)
    assert world.restore_row(restore_id).status == "succeeded"
    assert read_tree(world.live(workload_id)) == old
    assert world.engine.boxes == {} and world.engine.calls == []
    assert world.deployments(workload_id) == []
    with world.db.session() as s:
        assert workloads.get(s, workload_id).status == "never_deployed"
    # Nor does reconcile start anything afterwards.
    assert world.deployer.reconcile(workload_id) == "never_deployed"
    assert world.engine.boxes == {}


def test_a_stopped_workload_stays_stopped(site: Site) -> None:
    world = site.world
    [container] = world.engine.containers({})
    world.engine.stop(container.id, 10)
    with world.db.session() as s:
        row = s.get(Workload, site.id)
        assert row is not None
        row.desired_state, row.status = "stopped", "stopped"
    before = world.deployments(site.id)
    world.engine.calls.clear()
    restore_id = site.restore()
    assert world.restore_row(restore_id).status == "succeeded"
    assert site.trees() == site.old
    assert [name for name, _ in world.engine.calls] == []  # not even a stop: nothing ran
    assert [c.state for c in world.engine.containers({})] == ["exited"]
    assert [d.id for d in world.deployments(site.id)] == [d.id for d in before]


@pytest.mark.parametrize("when", ["before_it_started", "while_it_waited_for_the_lock"])
def test_a_restore_whose_workload_was_deleted_before_it_ran_ends_quietly(
    site: Site, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    """An accepted restore waits for the workload's lock; a delete that held it first
    took the restore's row with the workload (full run 40: ``AssertionError`` in
    ``restore_runs.load``, logged as a crash). Nothing is left to restore: the run ends,
    touching nothing, with no traceback."""
    world = site.world
    restorer = world.restorer()
    restore_id = world.request_restore(restorer, site.id, site.snapshot)

    def delete_the_row() -> None:
        with world.db.session() as s:
            s.delete(s.get(Restore, restore_id))

    world.engine.calls.clear()
    if when == "before_it_started":
        delete_the_row()
        restorer.run(restore_id)
    else:
        with restorer.tools.locks.hold(site.id, timeout=5):
            waiting = threading.Thread(target=restorer.run, args=(restore_id,))
            waiting.start()
            time.sleep(0.5)  # it read the row and waits for the lock the delete holds
            delete_the_row()
        waiting.join(30)
        assert not waiting.is_alive()
    assert world.engine.calls == []
    assert site.trees() == site.new
    assert "crashed" not in caplog.text and "Traceback" not in caplog.text
