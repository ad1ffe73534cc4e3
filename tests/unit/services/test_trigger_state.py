"""What the trigger runner writes of a trigger (``services/trigger_state.py``) on a real
SQLite store: a slot is claimed by one compare-and-set, and only from the value read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moorage.security.roles import SYSTEM
from moorage.services import trigger_state, triggers
from tests.fakes.world import World

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def schedule(world: World) -> tuple[str, datetime | None]:
    """A schedule trigger and the ``next_run_at`` it was created with."""
    with world.db.session() as s:
        trigger = triggers.create(
            s,
            SYSTEM,
            world.deployer.registry,
            kind="schedule",
            name="nightly",
            config={"cron": "0 3 * * *"},
        )
        return trigger.id, trigger.next_run_at


def stored(world: World, trigger_id: str) -> tuple[datetime | None, datetime | None]:
    with world.db.session() as s:
        trigger = trigger_state.find(s, trigger_id)
        assert trigger is not None
        return trigger.next_run_at, trigger.last_fired_at


def test_a_slot_is_claimed_once(world: World) -> None:
    trigger_id, was = schedule(world)
    following = NOW + timedelta(days=1)

    with world.db.session() as s:
        fresh = trigger_state.claim_slot(s, trigger_id, was, following, NOW)
        assert fresh is not None and fresh.id == trigger_id
    with world.db.session() as s:  # a second runner that read the same value
        assert trigger_state.claim_slot(s, trigger_id, was, NOW + timedelta(days=9), NOW) is None

    claimed_next, fired = stored(world, trigger_id)
    assert claimed_next is not None and fired is not None
    assert claimed_next.replace(tzinfo=UTC) == following
    assert fired.replace(tzinfo=UTC) == NOW


def test_idle_clears_only_the_value_it_read(world: World) -> None:
    trigger_id, was = schedule(world)
    assert was is not None
    with world.db.session() as s:
        trigger_state.idle(s, trigger_id, was - timedelta(hours=1))  # moved meanwhile
    assert stored(world, trigger_id)[0] == was
    with world.db.session() as s:
        trigger_state.idle(s, trigger_id, was)
    assert stored(world, trigger_id) == (None, None)
