"""The composition root: one lock table and one set of views shared by every part, and
start-up recovery in its order (``Server.start``), over the in-memory engine."""

from __future__ import annotations

import pytest

from tests.fakes.world import World

ORDER = [
    "engine.prune_pins",
    "snapshotter.recover",
    "restorer.recover",
    "queue.recover_interrupted",
    "queue.start",
    "reconciler.start",
    "restorer.resume",
    "runner.start",
]


def test_every_part_shares_one_lock_table_and_one_set_of_views(world: World) -> None:
    server = world.server
    assert server.queue.locks is server.locks
    assert server.reconciler.locks is server.locks
    assert server.snapshotter.locks is server.locks
    assert server.restorer.tools.locks is server.locks
    assert server.deployer.locks is server.locks
    for part in (server.queue, server.reconciler, server.snapshotter, server.runner):
        assert part.views is server.views
    assert server.restorer.tools.views is server.views
    assert server.restorer.tools.redeploy == server.queue.redeploy


def test_start_up_recovery_runs_in_order_before_the_threads(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, seen = world.server, []
    for step in ORDER:
        owner, method = step.split(".")
        part = world.engine if owner == "engine" else getattr(server, owner)
        monkeypatch.setattr(part, method, lambda step=step: seen.append(step))

    server.start()
    assert seen == ORDER
