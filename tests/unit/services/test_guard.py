"""The guard every workload-changing route goes through: the workload's lock, one audit row
naming the actor whatever the steps record, the saved-inputs digest, and nothing written
on an error or while another holder keeps the lock."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from moorage.errors import Conflict, InvalidInput
from moorage.security.roles import SYSTEM, Actor
from moorage.services import audit, deploys, guard, inputs, snapshots, triggers, workloads
from moorage.services import env as env_service
from moorage.store.tables import AuditEntry
from tests.fakes.locks import held_elsewhere
from tests.fakes.world import World

OLGA = Actor(user_id="us_olga", username="olga", role="operator", via="token")


def rows(world: World) -> list[AuditEntry]:
    with world.db.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def count(world: World) -> int:
    with world.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_every_record_of_a_change_lands_in_one_row_credited_to_the_actor(world: World) -> None:
    wid = world.workload()
    before = count(world)
    with world.db.session() as s:
        locks = world.deployer.locks
        with guard.change(s, locks, OLGA, "workload.update", wid) as change:
            workloads.update(s, OLGA, world.deployer.registry, world.settings, wid, name="renamed")
            snapshots.set_keep_last(s, OLGA, wid, 3)
            audit.record(s, SYSTEM, "snapshot.prune", "workload", wid, {"removed": ["sn_x"]})
            change.note(extra=True)
    new = rows(world)[before:]
    assert [(r.actor, r.action, r.target_type, r.target_id) for r in new] == [
        ("olga", "workload.update", "workload", wid)
    ]
    assert new[0].details == {
        "via": "token",
        "fields": ["name"],
        "keep_last": 3,
        "removed": ["sn_x"],
        "extra": True,
    }


def test_a_promote_is_one_row_that_names_both_deployments(world: World) -> None:
    source = world.workload("source", volumes=0)
    target = world.workload("target", volumes=0)
    done = world.deploy(source)
    before = count(world)
    with world.db.session() as s:
        with guard.change(s, world.deployer.locks, OLGA, "workload.promote", target):
            queued = deploys.promote(
                s, OLGA, world.deployer.registry, world.settings, target, source
            )
    [row] = rows(world)[before:]
    assert (row.actor, row.action, row.target_id) == ("olga", "workload.promote", target)
    assert row.details["from_deployment"] == done.id
    assert row.details["deployment"] == queued.id
    assert row.details["reason"] == f"promote:{source}"


def test_a_refused_change_writes_nothing(world: World) -> None:
    wid = world.workload()
    before = count(world)
    with world.db.session() as s:
        with pytest.raises(InvalidInput):
            with guard.change(s, world.deployer.locks, OLGA, "workload.update", wid):
                workloads.update(
                    s, OLGA, world.deployer.registry, world.settings, wid, name="renamed"
                )
                workloads.update(
                    s, OLGA, world.deployer.registry, world.settings, wid, name="Not A Slug"
                )
    with world.db.session() as s:
        assert workloads.get(s, wid).name == "app"
    assert count(world) == before


def test_a_change_waits_for_the_lock_and_is_refused_when_it_stays_taken(world: World) -> None:
    wid = world.workload()
    before = count(world)
    with held_elsewhere(world.deployer.locks, wid), world.db.session() as s:
        with pytest.raises(Conflict) as refused:
            with guard.change(s, world.deployer.locks, OLGA, "workload.update", wid, wait=0.2):
                raise AssertionError("a change ran while another held the lock")
    assert refused.value.code == "workload_busy"
    assert count(world) == before


def test_then_steps_run_after_the_commit_and_under_the_lock(world: World) -> None:
    wid = world.workload()
    seen: list[tuple[str, bool]] = []

    def step() -> None:
        with world.db.session() as other:  # another session sees the committed change
            seen.append((workloads.get(other, wid).desired_state, _held_elsewhere(world, wid)))

    with world.db.session() as s:
        with guard.change(s, world.deployer.locks, OLGA, "workload.stop", wid) as change:
            workloads.set_desired_state(s, wid, "stopped")
            change.then(step)
            assert seen == []
    assert seen == [("stopped", True)]
    assert not _held_elsewhere(world, wid)


def _held_elsewhere(world: World, wid: str) -> bool:
    """Whether another thread finds the workload's lock taken."""
    got: list[bool] = []

    def probe() -> None:
        free = world.deployer.locks.acquire(wid, timeout=0)
        if free:
            world.deployer.locks.release(wid)
        got.append(free)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(5)
    return not got[0]


def test_the_guard_keeps_the_saved_digest_and_a_deploy_the_deployed_one(world: World) -> None:
    wid = world.workload()
    world.deploy(wid)
    with world.db.session() as s:
        w = workloads.get(s, wid)
        deployed = w.deployed_digest
        assert deployed is not None
        assert deployed == inputs.digest(inputs.saved(s, w))
    with world.db.session() as s:
        with guard.change(s, world.deployer.locks, OLGA, "workload.env.replace", wid):
            env_service.replace(
                s,
                OLGA,
                world.deployer.registry,
                world.settings,
                wid,
                {"MODE": {"value": "new", "secret": False}},
            )
    with world.db.session() as s:
        w = workloads.get(s, wid)
        assert w.saved_digest != deployed and workloads.pending_changes(w)
    with world.db.session() as s:  # back to what runs: nothing is pending any more
        with guard.change(s, world.deployer.locks, OLGA, "workload.env.replace", wid):
            env_service.replace(s, OLGA, world.deployer.registry, world.settings, wid, {})
    with world.db.session() as s:
        w = workloads.get(s, wid)
        assert w.saved_digest == deployed and not workloads.pending_changes(w)


def test_a_step_about_another_object_is_kept_under_its_action(world: World) -> None:
    wid = world.workload()
    before = count(world)
    with world.db.session() as s:
        with guard.change(s, world.deployer.locks, OLGA, "workload.trigger.bind", wid):
            made = triggers.create(
                s, OLGA, world.deployer.registry, kind="webhook", name="hook", config={}
            )
            triggers.bind(s, OLGA, wid, made.id)
    [row] = rows(world)[before:]
    assert (row.action, row.target_type, row.target_id) == (
        "workload.trigger.bind",
        "workload",
        wid,
    )
    assert row.details == {
        "via": "token",
        "trigger": made.id,
        "trigger.create": {"trigger": made.id, "kind": "webhook", "name": "hook"},
    }
