"""The trigger runner against a real SQLite store: schedule firing, compare-and-set, catch-up.

The deployer is never started, so ``tick`` only queues deployment rows; the runner's
clock is a fake the test moves by hand. Everything is created through the services.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from moorage.deployer.trigger_runner import TriggerRunner
from moorage.deployer.views import WorkloadViews
from moorage.errors import InvalidInput
from moorage.plugins.registry import Registry
from moorage.runtime.compose import ComposeRunner
from moorage.runtime.docker import DockerEngine
from moorage.security.roles import SYSTEM
from moorage.server import load_registry
from moorage.services import projects, triggers, workloads
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.tables import Deployment, utcnow
from moorage.triggers import schedule
from moorage.triggers.schedule import ScheduleTrigger
from tests.fakes.world import ran

IMAGE = {"image": "moorage-test/httpd:1"}
BERLIN = ZoneInfo("Europe/Berlin")
_serial = itertools.count()


@dataclass
class Clock:
    """The runner's idea of now; a test sets ``now`` by hand."""

    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Store:
    tmp_path: Path
    registry: Registry
    databases: list[Database] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.tmp_path / 'moorage.db'}"

    def open(self) -> Database:
        """A fresh Database object on the same file, as a restarted process would open it."""
        db = Database(self.url)
        db.migrate()
        self.databases.append(db)
        return db

    def runner(self, clock: Clock, db: Database | None = None) -> TriggerRunner:
        settings = Settings(data_dir=self.tmp_path, database_url=self.url)
        engine = DockerEngine()
        views = WorkloadViews(settings, engine, ComposeRunner(), lambda _name: None)
        return TriggerRunner(db or self.open(), self.registry, engine, views, clock=clock)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture
def store(tmp_path: Path, registry: Registry) -> Iterator[Store]:
    s = Store(tmp_path, registry)
    yield s
    for db in s.databases:
        db.dispose()


@pytest.fixture
def db(store: Store) -> Database:
    return store.open()


def make_workloads(db: Database, registry: Registry, count: int) -> list[str]:
    with db.session() as s:
        if not projects.list_all(s):
            projects.create(s, SYSTEM, slug="shop")
        return [
            workloads.create(
                s,
                SYSTEM,
                registry,
                Settings(data_dir=Path("/nonexistent/moorage")),
                name=f"web-{next(_serial)}",
                kind="image",
                project="shop",
                stage="production",
                config=dict(IMAGE),
            ).id
            for _ in range(count)
        ]


def make_schedule(
    db: Database,
    registry: Registry,
    cron: str,
    *,
    timezone: str = "UTC",
    bound: Sequence[str] = (),
) -> str:
    with db.session() as s:
        trigger = triggers.create(
            s,
            SYSTEM,
            registry,
            kind="schedule",
            name=f"nightly-{next(_serial)}",
            config={"cron": cron, "timezone": timezone},
        )
        for workload_id in bound:
            triggers.bind(s, SYSTEM, workload_id, trigger.id)
        return trigger.id


def times(db: Database, trigger_id: str) -> tuple[datetime | None, datetime | None]:
    """(next_run_at, last_fired_at) as stored."""
    with db.session() as s:
        trigger = triggers.get(s, trigger_id)
        return trigger.next_run_at, trigger.last_fired_at


def queued(db: Database) -> list[tuple[str, str, str, bool]]:
    """Every deployment row: (workload, reason, status, pull), in a stable order."""
    with db.session() as s:
        rows = s.execute(
            select(Deployment.workload_id, Deployment.reason, Deployment.status, Deployment.pull)
        ).all()
    return sorted((w, r, st, p) for w, r, st, p in rows)


def one_each(
    workload_ids: list[str], trigger_id: str, status: str = "queued"
) -> list[tuple[str, str, str, bool]]:
    return sorted((w, f"trigger:{trigger_id}", status, False) for w in workload_ids)


def done(rows: list[tuple[str, str, str, bool]]) -> list[tuple[str, str, str, bool]]:
    """``rows`` as they read after ``ran``."""
    return sorted((w, r, "succeeded" if st == "queued" else st, p) for w, r, st, p in rows)


def first_local_slot(after: datetime, zone: ZoneInfo, hour: int, months: set[int]) -> datetime:
    """The first ``hour``:00 local time after ``after`` in one of ``months``, found by walking
    the calendar day by day: an oracle that does not use croniter."""
    day = after.astimezone(zone).date()
    while True:
        slot = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
        if day.month in months and slot > after:
            return slot.astimezone(UTC)
        day += timedelta(days=1)


# --- the calendar ------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "after", "expected"),
    [
        # 03:00 in Berlin is 02:00 UTC in winter (CET) and 01:00 UTC in summer (CEST).
        (
            {"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
            datetime(2026, 1, 15, 12, tzinfo=UTC),
            datetime(2026, 1, 16, 2, tzinfo=UTC),
        ),
        (
            {"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
            datetime(2026, 7, 15, 12, tzinfo=UTC),
            datetime(2026, 7, 16, 1, tzinfo=UTC),
        ),
        # Six fields: croniter puts the seconds LAST.
        (
            {"cron": "0 3 * * * 30", "timezone": "UTC"},
            datetime(2026, 1, 15, 12, tzinfo=UTC),
            datetime(2026, 1, 16, 3, 0, 30, tzinfo=UTC),
        ),
        (
            {"cron": "* * * * * */2", "timezone": "UTC"},
            datetime(2026, 1, 15, 12, 0, 1, tzinfo=UTC),
            datetime(2026, 1, 15, 12, 0, 2, tzinfo=UTC),
        ),
    ],
)
def test_next_run_is_the_next_slot_in_the_time_zone(
    config: dict[str, str], after: datetime, expected: datetime
) -> None:
    got = ScheduleTrigger().next_run(config, after)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


def test_next_run_at_is_computed_at_create_in_the_trigger_time_zone(
    db: Database, registry: Registry
) -> None:
    # Winter months only, so the expected UTC hour does not depend on when the test runs.
    before = utcnow()
    trigger_id = make_schedule(db, registry, "0 3 * 12,1,2 *", timezone="Europe/Berlin")
    after = utcnow()

    next_run_at, last_fired_at = times(db, trigger_id)
    assert next_run_at is not None
    assert last_fired_at is None
    assert next_run_at in {
        first_local_slot(before, BERLIN, 3, {12, 1, 2}),
        first_local_slot(after, BERLIN, 3, {12, 1, 2}),
    }
    assert (next_run_at.hour, next_run_at.minute) == (2, 0)  # CET is UTC+1


# --- firing ------------------------------------------------------------------


def test_a_due_schedule_queues_one_deployment_per_bound_workload_once(
    store: Store, db: Database, registry: Registry
) -> None:
    bound = make_workloads(db, registry, 3)
    unbound = make_workloads(db, registry, 1)
    trigger_id = make_schedule(db, registry, "*/5 * * * *", bound=bound)
    slot, _ = times(db, trigger_id)
    assert slot is not None
    clock = Clock(slot - timedelta(seconds=1))
    runner = store.runner(clock, db)

    assert runner.tick() == 0  # not due yet
    assert queued(db) == []
    assert times(db, trigger_id) == (slot, None)

    clock.now = slot
    assert runner.tick() == 3
    rows = queued(db)
    assert rows == one_each(bound, trigger_id)
    assert unbound[0] not in {w for w, *_ in rows}
    assert times(db, trigger_id) == (slot + timedelta(minutes=5), slot)

    # The same instant again: the slot is spent.
    assert runner.tick() == 0
    assert queued(db) == rows
    assert times(db, trigger_id) == (slot + timedelta(minutes=5), slot)


def test_two_runners_at_the_same_instant_fire_each_slot_once(
    store: Store, db: Database, registry: Registry
) -> None:
    bound = make_workloads(db, registry, 3)
    trigger_id = make_schedule(db, registry, "*/5 * * * *", bound=bound)
    clock = Clock()
    # Two runners with their own Database objects, as two server processes would have.
    runners = [store.runner(clock), store.runner(clock)]
    expected: list[tuple[str, str, str, bool]] = []

    for _ in range(3):  # three slots: three chances for the race to show
        slot, _ = times(db, trigger_id)
        assert slot is not None
        clock.now = slot
        barrier = threading.Barrier(len(runners))
        results: list[int] = []
        errors: list[BaseException] = []

        def tick(runner: TriggerRunner) -> None:
            try:
                barrier.wait(timeout=10)
                results.append(runner.tick())
            except BaseException as exc:  # reported below; a thread cannot fail the test
                errors.append(exc)

        threads = [threading.Thread(target=tick, args=(r,), daemon=True) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "a runner is stuck"
        assert errors == []
        assert sorted(results) == [0, 3]
        expected = sorted(expected + one_each(bound, trigger_id))
        assert queued(db) == expected
        assert times(db, trigger_id) == (slot + timedelta(minutes=5), slot)
        ran(db)
        expected = done(expected)


def test_a_restart_does_not_fire_the_same_slot_again(
    store: Store, db: Database, registry: Registry
) -> None:
    bound = make_workloads(db, registry, 2)
    trigger_id = make_schedule(db, registry, "*/5 * * * *", bound=bound)
    slot, _ = times(db, trigger_id)
    assert slot is not None
    clock = Clock(slot + timedelta(seconds=1))
    assert store.runner(clock, db).tick() == 2
    fired = queued(db)
    db.dispose()

    # A new process: a fresh Database object on the same file and a new runner.
    reopened = store.open()
    restarted = store.runner(clock, reopened)
    assert restarted.tick() == 0
    assert queued(reopened) == fired
    assert times(reopened, trigger_id) == (slot + timedelta(minutes=5), clock.now)

    # It does fire the next slot, so the quiet tick above was not a broken runner.
    ran(reopened)
    clock.now = slot + timedelta(minutes=5)
    assert restarted.tick() == 2
    assert queued(reopened) == sorted(done(fired) + one_each(bound, trigger_id))


def test_slots_missed_while_down_fire_once_and_the_next_is_after_now(
    store: Store, db: Database, registry: Registry
) -> None:
    bound = make_workloads(db, registry, 2)
    trigger_id = make_schedule(db, registry, "0 * * * *", bound=bound)
    first, _ = times(db, trigger_id)
    assert first is not None
    # Down from before ``first`` until half past the fifth missed slot (first .. first+4h).
    clock = Clock(first + timedelta(hours=4, minutes=30))
    runner = store.runner(clock)

    assert runner.tick() == 2
    assert queued(db) == one_each(bound, trigger_id)
    assert times(db, trigger_id) == (first + timedelta(hours=5), clock.now)
    assert runner.tick() == 0
    assert queued(db) == one_each(bound, trigger_id)


# --- configuration -----------------------------------------------------------


def test_changing_the_schedule_recomputes_next_run_at(
    store: Store, db: Database, registry: Registry
) -> None:
    bound = make_workloads(db, registry, 1)
    trigger_id = make_schedule(db, registry, "0 3 * 12,1,2 *", bound=bound)
    created, _ = times(db, trigger_id)

    with db.session() as s:
        triggers.update(s, SYSTEM, registry, trigger_id, name="renamed")
    assert times(db, trigger_id) == (created, None)  # a rename keeps the slot

    before = utcnow()
    with db.session() as s:
        triggers.update(s, SYSTEM, registry, trigger_id, config={"timezone": "Europe/Berlin"})
    after = utcnow()
    moved, _ = times(db, trigger_id)
    assert moved in {
        first_local_slot(before, BERLIN, 3, {12, 1, 2}),
        first_local_slot(after, BERLIN, 3, {12, 1, 2}),
    }
    assert moved != created  # 03:00 Berlin is not 03:00 UTC

    before = utcnow()
    with db.session() as s:
        triggers.update(s, SYSTEM, registry, trigger_id, config={"cron": "0 * * * *"})
    hourly, _ = times(db, trigger_id)
    assert hourly is not None
    assert hourly.minute == 0 and hourly.second == 0
    assert before < hourly <= before + timedelta(hours=1)

    # The runner fires on the new slot, not the old one.
    clock = Clock(hourly)
    assert store.runner(clock, db).tick() == 1
    assert queued(db) == one_each(bound, trigger_id)
    assert times(db, trigger_id) == (hourly + timedelta(hours=1), hourly)


def test_an_unknown_action_is_refused_and_changes_nothing(db: Database, registry: Registry) -> None:
    with pytest.raises(InvalidInput) as refused, db.session() as s:
        triggers.create(
            s,
            SYSTEM,
            registry,
            kind="schedule",
            name="nightly-restart",
            config={"cron": "0 3 * * *", "action": "restart"},
        )
    assert refused.value.code == "invalid_config"
    assert "action" in str(refused.value.details)
    with db.session() as s:
        assert triggers.list_filtered(s, kind="schedule") == []

    trigger_id = make_schedule(db, registry, "0 3 * * *")
    before = times(db, trigger_id)
    with pytest.raises(InvalidInput) as refused, db.session() as s:
        triggers.update(s, SYSTEM, registry, trigger_id, config={"snapshot_mode": "freeze"})
    assert refused.value.code == "invalid_config"
    with db.session() as s:
        assert triggers.get(s, trigger_id).config == {
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "action": "deploy",
        }
    assert times(db, trigger_id) == before


# --- daylight-saving nights ------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def make_schedule_at(
    monkeypatch: pytest.MonkeyPatch,
    instant: datetime,
    db: Database,
    registry: Registry,
    cron: str,
    bound: Sequence[str],
) -> str:
    """A Berlin schedule created through the service as if at ``instant``."""
    with monkeypatch.context() as m:
        m.setattr(triggers, "utcnow", lambda: instant)
        return make_schedule(db, registry, cron, timezone="Europe/Berlin", bound=bound)


def tick_through(
    runner: TriggerRunner, clock: Clock, start: datetime, hours: int, step: timedelta
) -> list[datetime]:
    """Tick every ``step`` for ``hours`` from ``start``: the instants that queued. What a
    slot queued has run (``ran``) before the next tick."""
    fired = []
    at = start
    while at <= start + timedelta(hours=hours):
        clock.now = at
        if runner.tick():
            fired.append(at)
            ran(runner.db)
        at += step
    return fired


# Berlin, 2026: on 29 March 02:00 CET becomes 03:00 CEST at 01:00 UTC (02:xx never
# happens); on 25 October 03:00 CEST becomes 02:00 CET at 01:00 UTC (02:xx happens twice).
SPRING = utc(2026, 3, 28, 22)
AUTUMN = utc(2026, 10, 24, 22)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("start", "cron", "expected"),
    [
        # A fixed-time job fires once: the first time round in the hour that comes twice...
        (AUTUMN, "30 2 * * *", [utc(2026, 10, 25, 0, 30)]),
        (AUTUMN, "30 1 * * *", [utc(2026, 10, 24, 23, 30)]),
        # ...and right after the gap (03:00 CEST) when its time is skipped.
        (SPRING, "30 2 * * *", [utc(2026, 3, 29, 1)]),
        (SPRING, "0,30 2 * * *", [utc(2026, 3, 29, 1)]),
        # A job that follows the clock fires in both passes, and never in the gap.
        (AUTUMN, "0 * * * *", [utc(2026, 10, 24, 23)] + [utc(2026, 10, 25, h) for h in range(5)]),
        (SPRING, "0 * * * *", [utc(2026, 3, 28, 23)] + [utc(2026, 3, 29, h) for h in range(5)]),
        (SPRING, "*/30 2 * * *", []),
    ],
)
def test_a_daylight_saving_night_fires_as_vixie_cron_does(
    store: Store,
    db: Database,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    start: datetime,
    cron: str,
    expected: list[datetime],
) -> None:
    bound = make_workloads(db, registry, 1)
    trigger_id = make_schedule_at(monkeypatch, start, db, registry, cron, bound)
    clock = Clock(start)

    fired = tick_through(store.runner(clock, db), clock, start, 6, MINUTE)

    assert fired == expected
    assert queued(db) == sorted(one_each(bound, trigger_id, "succeeded") * len(expected))
    next_run_at, last_fired_at = times(db, trigger_id)
    assert last_fired_at == (expected[-1] if expected else None)
    assert next_run_at is not None
    assert next_run_at > start + timedelta(hours=6)


@pytest.mark.parametrize(
    ("start", "night", "at"),
    [
        (utc(2026, 3, 25, 12), date(2026, 3, 29), "03:00 CEST"),  # right after the gap
        (utc(2026, 10, 21, 12), date(2026, 10, 25), "02:30 CEST"),  # the first pass
    ],
)
def test_a_fixed_time_job_fires_once_each_local_day_of_a_week_around_a_change(
    store: Store,
    db: Database,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    start: datetime,
    night: date,
    at: str,
) -> None:
    bound = make_workloads(db, registry, 1)
    make_schedule_at(monkeypatch, start, db, registry, "30 2 * * *", bound)
    clock = Clock(start)

    fired = tick_through(store.runner(clock, db), clock, start, 7 * 24, 30 * MINUTE)

    local = {f.astimezone(BERLIN).date(): f.astimezone(BERLIN).strftime("%H:%M %Z") for f in fired}
    assert len(fired) == len(local) == 7
    assert sorted(local) == [(start + timedelta(days=d)).date() for d in range(1, 8)]
    assert local.pop(night) == at
    assert set(local.values()) <= {"02:30 CET", "02:30 CEST"}
    assert len(queued(db)) == 7


def test_a_schedule_with_no_next_firing_goes_idle_and_the_others_still_fire(
    store: Store, db: Database, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = make_workloads(db, registry, 1)
    # The same instants, written two ways: both due at once.
    broken = make_schedule(db, registry, "0 4 * * *", bound=bound)
    working = make_schedule(db, registry, "0 4 * * * 0", bound=bound)
    slot, _ = times(db, working)
    assert slot is not None
    assert times(db, broken) == (slot, None)
    real = schedule.next_firing

    def next_firing(cron: str, zone: ZoneInfo, after: datetime) -> datetime:
        if cron == "0 4 * * *":
            raise schedule.NoFiring(f"{cron!r} matches no date")
        return real(cron, zone, after)

    monkeypatch.setattr(schedule, "next_firing", next_firing)
    clock = Clock(slot)
    runner = store.runner(clock, db)

    assert runner.tick() == 1
    assert queued(db) == one_each(bound, working)
    assert times(db, working) == (slot + timedelta(days=1), slot)
    assert times(db, broken) == (None, None)
    # Idle, it is not due again.
    clock.now = slot + MINUTE
    assert runner.tick() == 0
    assert queued(db) == one_each(bound, working)
