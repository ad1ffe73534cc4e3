"""The deploy queue's claim rule over the in-memory engine and a real SQLite store: a row
runs once, a workload's deploys run in queue order, and a busy workload's backlog never
hides another workload's deploy."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update

from moorage.security.roles import SYSTEM
from moorage.services import deployment_runs, deploys
from moorage.store.states import DeploymentStatus
from moorage.store.tables import Deployment
from tests.fakes.world import WAIT, World
from tests.statements import statements


def enqueue(world: World, workload_id: str) -> str:
    with world.db.session() as s:
        return deploys.enqueue(s, SYSTEM, workload_id, "manual").id


def statuses(world: World, *deployment_ids: str) -> list[str]:
    return [world.deployment(d).status for d in deployment_ids]


def test_a_row_is_claimed_once(world: World) -> None:
    workload_id = world.workload()
    deployment_id = enqueue(world, workload_id)

    assert world.server.queue.claim(deployment_id) is True
    assert world.server.queue.claim(deployment_id) is False
    assert statuses(world, deployment_id) == ["running"]
    # A running row is no queue head: no worker picks it up again.
    assert world.server.queue.work_once() is False


def test_a_workloads_deploys_run_in_queue_order(world: World) -> None:
    workload_id = world.workload()
    first, second = enqueue(world, workload_id), enqueue(world, workload_id)

    assert world.server.queue.work_once() is True
    assert statuses(world, first, second) == ["succeeded", "queued"]
    assert world.server.queue.work_once() is True
    assert statuses(world, first, second) == ["succeeded", "succeeded"]
    assert world.server.queue.work_once() is False


def test_a_busy_workloads_backlog_does_not_hide_another_workload(world: World) -> None:
    busy, free = world.workload("busy"), world.workload("free")
    backlog = [enqueue(world, busy) for _ in range(3)]
    other = enqueue(world, free)  # queued after the whole backlog

    with world.held_elsewhere(busy):
        assert world.server.queue.work_once() is True
        assert world.server.queue.work_once() is False  # only the busy workload is left
    assert statuses(world, other, *backlog) == ["succeeded", "queued", "queued", "queued"]


def test_an_idle_queue_asks_the_store_again_only_after_a_deployment_row_changed(
    world: World,
) -> None:
    queue = world.server.queue
    first, second = world.workload("first"), world.workload("second")
    assert queue.work_once() is False  # looks once, finds nothing queued
    sent = statements(world.db)
    assert [queue.work_once() for _ in range(5)] == [False] * 5
    with world.db.session() as s:  # a log line changes no status: still nothing to ask
        deployment_runs.append_log(s, "dp_none", "a line\n")
    assert queue.work_once() is False
    assert [q for q in sent if "deployments" in q and q.lstrip().startswith("SELECT")] == []

    # Every way a row is queued is seen at the next look: one by the ORM, many by the bulk
    # INSERT of a fan-out, and a row flipped back to queued by a core UPDATE.
    one = enqueue(world, first)
    assert queue.work_once() is True
    assert queue.work_once() is False
    with world.db.session() as s:
        (bulk,) = deploys.enqueue_many(s, SYSTEM, [second], "hook:x")
    assert queue.work_once() is True
    assert statuses(world, one, bulk) == ["succeeded", "succeeded"]
    assert queue.work_once() is False
    with world.db.session() as s:
        s.execute(
            update(Deployment).where(Deployment.id == bulk).values(status=DeploymentStatus.QUEUED)
        )
    assert queue.work_once() is True
    # A queue head behind a busy workload is asked for again at every look (its lock, not a
    # row, decides when it runs).
    behind = enqueue(world, first)
    with world.held_elsewhere(first):
        assert queue.work_once() is False
        looked = len(sent)
        assert queue.work_once() is False
        assert sent[looked:] != []
    assert queue.work_once() is True
    assert statuses(world, behind) == ["succeeded"]


def test_redeploy_of_a_never_deployed_workload_writes_nothing(world: World) -> None:
    workload_id = world.workload()
    with world.server.locks.hold(workload_id, timeout=WAIT):
        assert world.server.queue.redeploy(workload_id, "restore:rs_x") is None
    assert world.deployments(workload_id) == []
    assert world.engine.calls == []


def test_start_up_marks_running_rows_interrupted_and_leaves_queued_ones(world: World) -> None:
    workload_id = world.workload()
    cut, waiting = enqueue(world, workload_id), enqueue(world, workload_id)
    assert world.server.queue.claim(cut)

    assert world.server.queue.recover_interrupted() == [workload_id]
    assert statuses(world, cut, waiting) == ["interrupted", "queued"]
    assert world.deployment(cut).log.endswith("interrupted by a restart\n")


def test_the_workers_are_background_work(world: World) -> None:
    """While a foreground block (a webhook delivery) is open, a worker's next statement
    waits for it (``store/priority.py``); the deploy runs once it closes."""
    priority = world.db.priority
    priority.max_pause = 30.0  # what ends the wait below is the block closing
    workload_id = world.workload()
    queue = world.server.queue
    with priority.foreground():
        deployment_id = enqueue(world, workload_id)  # this thread is not background work
        queue.start()
        queue.wake()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert statuses(world, deployment_id) == ["queued"]
            time.sleep(0.05)
    try:
        deadline = time.monotonic() + WAIT
        while statuses(world, deployment_id) != ["succeeded"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses(world, deployment_id) == ["succeeded"]
        assert priority.pauses >= 1  # they were held at their first statement
    finally:
        queue.stop()


def test_reconcile_is_background_work(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its loop's passes run marked as background work, so they wait for a delivery too."""
    priority, reconciler = world.db.priority, world.server.reconciler
    marked: list[bool] = []

    def one_pass() -> None:
        with priority.foreground():
            priority.max_pause = 0.01
            before = priority.pauses
            priority.checkpoint()
            marked.append(priority.pauses > before)
        reconciler._stop.set()

    monkeypatch.setattr(reconciler, "reconcile_all", one_pass)
    thread = threading.Thread(target=reconciler._loop, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert marked == [True]


def test_a_savepoint_neither_hides_nor_announces_early_a_row_queued_around_it(
    world: World,
) -> None:
    """A guarded change may open savepoints (``guard.flush_or_conflict``) in the same
    transaction as a queued row: the queue generation moves at the outer commit, not when
    a savepoint ends, and a savepoint rolled back keeps what the outer transaction wrote."""
    queue = world.server.queue
    first = world.workload("first")
    assert queue.work_once() is False

    with world.db.session() as s:  # released: a look before the commit sees no row yet
        released = deploys.enqueue(s, SYSTEM, first, "manual").id
        with s.begin_nested():
            pass
        assert queue.work_once() is False
    assert queue.work_once() is True
    assert statuses(world, released) == ["succeeded"]

    assert queue.work_once() is False
    with world.db.session() as s:  # rolled back: the row queued before it stays
        kept = deploys.enqueue(s, SYSTEM, first, "manual").id
        s.begin_nested().rollback()
    assert queue.work_once() is True
    assert statuses(world, kept) == ["succeeded"]
