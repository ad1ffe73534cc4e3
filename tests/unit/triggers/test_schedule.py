"""The schedule kind's calendar: the next firing in a time zone, across daylight-saving
changes as Vixie cron does it, and crons that can never fire.

Europe/Berlin changes at 01:00 UTC: on 29 March 2026 from 02:00 CET to 03:00 CEST (02:xx
never happens), on 25 October 2026 from 03:00 CEST back to 02:00 CET (02:xx happens
twice). America/New_York repeats 01:xx on 1 November 2026.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from moorage.errors import InvalidInput
from moorage.triggers.schedule import NoFiring, ScheduleTrigger, fixed_time, next_firing

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
FORWARD = datetime(2026, 3, 29, 1, tzinfo=UTC)  # Berlin: 02:00 CET becomes 03:00 CEST
BACK = datetime(2026, 10, 25, 1, tzinfo=UTC)  # Berlin: 03:00 CEST becomes 02:00 CET


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def firings(cron: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every firing in (start, end], each found from the one before, as the runner does."""
    found = []
    at = next_firing(cron, zone, start)
    while at <= end:
        found.append(at)
        at = next_firing(cron, zone, at)
    return found


def local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M %Z")


@pytest.mark.parametrize(
    ("cron", "fixed"),
    [
        ("30 2 * * *", True),
        ("0,30 2 * * *", True),
        ("0 2-4 * * *", True),
        ("30 2 * * * 15", True),  # six fields: the seconds come last
        ("* 2 * * *", False),
        ("*/20 2 * * *", False),
        ("30 * * * *", False),
        ("30 */2 * * *", False),
        ("* * * * * */2", False),
    ],
)
def test_fixed_time_is_vixie_crons_rule(cron: str, fixed: bool) -> None:
    assert fixed_time(cron) is fixed


# --- the night the clocks go back -----------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "expected"),
    [
        # In the hour that comes twice, a fixed-time job fires the first time only.
        ("30 2 * * *", BERLIN, [(utc(2026, 10, 25, 0, 30), "02:30 CEST")]),
        (
            "0,45 2 * * *",
            BERLIN,
            [(utc(2026, 10, 25, 0), "02:00 CEST"), (utc(2026, 10, 25, 0, 45), "02:45 CEST")],
        ),
        ("30 1 * * *", BERLIN, [(utc(2026, 10, 24, 23, 30), "01:30 CEST")]),  # not repeated
        ("30 3 * * *", BERLIN, [(utc(2026, 10, 25, 2, 30), "03:30 CET")]),
        ("30 1 * * *", NEW_YORK, [(utc(2026, 11, 1, 5, 30), "01:30 EDT")]),
        # Any other job follows the clock: both passes.
        (
            "0 * * * *",
            BERLIN,
            [
                (utc(2026, 10, 24, 23), "01:00 CEST"),
                (utc(2026, 10, 25, 0), "02:00 CEST"),
                (utc(2026, 10, 25, 1), "02:00 CET"),
                (utc(2026, 10, 25, 2), "03:00 CET"),
            ],
        ),
        (
            "*/30 2 * * *",
            BERLIN,
            [
                (utc(2026, 10, 25, 0), "02:00 CEST"),
                (utc(2026, 10, 25, 0, 30), "02:30 CEST"),
                (utc(2026, 10, 25, 1), "02:00 CET"),
                (utc(2026, 10, 25, 1, 30), "02:30 CET"),
            ],
        ),
    ],
)
def test_the_night_clocks_go_back(
    cron: str, zone: ZoneInfo, expected: list[tuple[datetime, str]]
) -> None:
    night = datetime(2026, 10, 24, 22, tzinfo=UTC) if zone is BERLIN else utc(2026, 11, 1, 3)
    found = firings(cron, zone, night, night + timedelta(hours=4, minutes=30))
    assert [(at, local(at, zone)) for at in found] == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Already in the second pass: the fixed-time job had its turn in the first.
        (utc(2026, 10, 25, 1, 10), utc(2026, 10, 26, 1, 30)),
        (utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)),
        (utc(2026, 10, 25, 0, 59, 59), utc(2026, 10, 26, 1, 30)),
        (utc(2026, 10, 25, 0, 29, 59), utc(2026, 10, 25, 0, 30)),
    ],
)
def test_a_fixed_time_job_asked_during_the_repeated_hour(
    after: datetime, expected: datetime
) -> None:
    assert next_firing("30 2 * * *", BERLIN, after) == expected


def test_a_job_following_the_clock_asked_before_the_change_sees_the_second_pass() -> None:
    # At 02:50 CEST the next half hour on the wall is 02:00 CET, an hour of real time
    # before 03:00: the walls already passed come again.
    assert next_firing("*/30 * * * *", BERLIN, utc(2026, 10, 25, 0, 50)) == BACK
    assert next_firing("*/30 * * * *", BERLIN, utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 1, 30)


# --- the night the clocks go forward ------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        # A fixed-time job due in the gap fires right after it (03:00 CEST), once.
        ("30 2 * * *", [(FORWARD, "03:00 CEST")]),
        ("0,30 2 * * *", [(FORWARD, "03:00 CEST")]),
        ("15 2 * * * 30", [(FORWARD, "03:00 CEST")]),
        ("0 3 * * *", [(FORWARD, "03:00 CEST")]),  # its own time, not the gap's
        ("30 1 * * *", [(utc(2026, 3, 29, 0, 30), "01:30 CET")]),
        ("30 3 * * *", [(utc(2026, 3, 29, 1, 30), "03:30 CEST")]),
        # Any other job follows the clock: nothing in the gap.
        (
            "0 * * * *",
            [
                (utc(2026, 3, 29, 0), "01:00 CET"),
                (FORWARD, "03:00 CEST"),
                (utc(2026, 3, 29, 2), "04:00 CEST"),
            ],
        ),
        ("*/30 2 * * *", []),
    ],
)
def test_the_night_clocks_go_forward(cron: str, expected: list[tuple[datetime, str]]) -> None:
    night = utc(2026, 3, 28, 23, 30)
    found = firings(cron, BERLIN, night, night + timedelta(hours=3))
    assert [(at, local(at, BERLIN)) for at in found] == expected


# --- a whole year ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "cron", "hour", "minute"),
    [
        (BERLIN, "30 2 * * *", 2, 30),
        (BERLIN, "0 3 * * *", 3, 0),
        (NEW_YORK, "30 1 * * *", 1, 30),
        (NEW_YORK, "0 2 * * *", 2, 0),
        (ZoneInfo("Australia/Lord_Howe"), "45 1 * * *", 1, 45),  # changes by 30 minutes
        (ZoneInfo("America/Santiago"), "30 0 * * *", 0, 30),  # changes at midnight
    ],
)
def test_a_fixed_time_job_fires_once_every_local_day_of_a_year(
    zone: ZoneInfo, cron: str, hour: int, minute: int
) -> None:
    """An oracle without croniter: one firing per local date, at the time asked for or,
    the day that time does not exist, at the first time after the gap."""
    start = datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
    end = datetime(2027, 1, 1, tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
    found = firings(cron, zone, start, end)
    days = Counter(at.astimezone(zone).date() for at in found)
    assert len(days) == 365
    assert set(days.values()) == {1}
    assert min(days) == date(2026, 1, 1)
    moved = []
    for at in found:
        wall = at.astimezone(zone)
        if (wall.hour, wall.minute) != (hour, minute):
            asked = datetime(wall.year, wall.month, wall.day, hour, minute, tzinfo=zone)
            assert asked.astimezone(UTC).astimezone(zone).time() != asked.time()  # a gap
            before = at - timedelta(seconds=1)
            assert before.utcoffset() == timedelta(0)
            assert before.astimezone(zone).utcoffset() != wall.utcoffset()  # right after it
            moved.append(wall.date())
    assert len(moved) <= 1


def test_an_hourly_job_follows_the_clock_all_year() -> None:
    start = utc(2025, 12, 31, 23) - timedelta(seconds=1)
    end = utc(2026, 12, 31, 23) - timedelta(seconds=1)
    found = firings("0 * * * *", BERLIN, start, end)
    per_day = Counter(at.astimezone(BERLIN).date() for at in found)
    assert per_day[date(2026, 3, 29)] == 23
    assert per_day[date(2026, 10, 25)] == 25
    assert {n for d, n in per_day.items() if d not in (date(2026, 3, 29), date(2026, 10, 25))} == {
        24
    }
    assert found == sorted(set(found))
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(found))


# --- the calendar's ordinary days and its bounds -------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        ("0 0 29 2 *", BERLIN, utc(2096, 3, 1), utc(2104, 2, 28, 23)),  # 2100 is not a leap year
        ("0 0 29 2 *", ZoneInfo("UTC"), utc(2104, 2, 29), utc(2108, 2, 29)),
        (
            "* * * * * */2",
            ZoneInfo("UTC"),
            datetime(2026, 1, 15, 12, 0, 1, 500000, tzinfo=UTC),
            utc(2026, 1, 15, 12, 0, 2),
        ),
        ("* * * * * */2", ZoneInfo("UTC"), utc(2026, 1, 15, 12, 0, 2), utc(2026, 1, 15, 12, 0, 4)),
    ],
)
def test_next_firing_is_strictly_after(
    cron: str, zone: ZoneInfo, after: datetime, expected: datetime
) -> None:
    got = next_firing(cron, zone, after)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


IMPOSSIBLE = ["0 0 31 2 *", "0 0 30 2 *", "0 12 31 4,6,9,11 *", "0 0 31 2 * 30", "* * 30,31 2 *"]


@pytest.mark.parametrize("cron", IMPOSSIBLE)
def test_a_cron_matching_no_date_never_fires_and_says_so_quickly(cron: str) -> None:
    started = datetime.now(UTC)
    with pytest.raises(NoFiring):
        next_firing(cron, BERLIN, utc(2026, 1, 1))
    assert datetime.now(UTC) - started < timedelta(seconds=2)


@pytest.mark.parametrize("cron", IMPOSSIBLE)
def test_a_cron_matching_no_date_is_refused(cron: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        ScheduleTrigger().validate({"cron": cron, "timezone": "Europe/Berlin"})
    assert refused.value.code == "invalid_config"
    details: Any = refused.value.details
    assert [d["field"] for d in details] == ["cron"]
    assert "never fires" in details[0]["message"]


@pytest.mark.parametrize(
    "cron",
    ["0 0 29 2 *", "0 0 31 2 1", "0 0 31 * *", "59 23 31 12 *", "0 0 1 1 *", "0 0 30 1-12 *"],
)
def test_a_rare_cron_is_still_a_cron(cron: str) -> None:
    ScheduleTrigger().validate({"cron": cron})
    assert next_firing(cron, BERLIN, utc(2026, 1, 1)) > utc(2026, 1, 1)
