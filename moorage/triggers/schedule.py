"""The ``schedule`` trigger kind: deploys on a cron expression in a time zone.

Firing is driven by the trigger runner through ``next_run`` and ``action``; this
module only knows the calendar. The action is ``deploy`` (queue a deploy of each
bound workload), ``snapshot`` (capture each bound workload's volumes), ``drill``
(a restore drill of each bound workload's latest ready snapshot, SPEC section 10) or
``backup`` (the instance backs itself up to ``target_id``, keeping the newest
``keep_last`` bundles there, SPEC section 11; it binds to no workload, and only an admin
makes, changes or removes one: ``services/triggers.py``).

Across a daylight-saving change a schedule does what Vixie cron does. A fixed-time
job (neither its minute nor its hour field starts with ``*``) fires once per local
time: in the hour that comes twice when clocks go back it fires the first time only,
and a time skipped when clocks go forward fires right after the gap. Any other job
follows the clock: it fires in both passes of a repeated hour and not in a skipped one.
A cron with no date at all (``0 0 31 2 *``) is refused when saved; the search for the
next firing is bounded, so it can never loop.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from moorage.plugins.kind_config import validate_config

HORIZON_YEARS = 50
"""How far croniter looks for one match. The sparsest cron that has dates (29 February)
fires at least every 8 years."""
MAX_STRETCHES = 4 * HORIZON_YEARS
"""Offset changes walked over looking for one firing (zones change twice a year, a few
four times) before it counts as never."""
STRIDE = timedelta(days=1)
"""Offset changes are looked for this far apart: no zone changes its offset twice a day."""
SECOND = timedelta(seconds=1)
KEEP_BACKUPS = 7
"""Instance backups a backup schedule keeps on its target when ``keep_last`` is not set."""


class NoFiring(ValueError):
    """The cron expression matches no time in the horizon."""


def fixed_time(cron: str) -> bool:
    """Vixie cron's rule: a job is fixed-time when neither its minute nor its hour field
    starts with ``*``."""
    minute, hour = cron.split()[:2]
    return not (minute.startswith("*") or hour.startswith("*"))


def _slot(cron: str, wall: datetime, *, inclusive: bool) -> datetime:
    """The first wall-clock time (naive) the cron matches after ``wall``, or at it."""
    start = wall
    if inclusive:  # slots are whole seconds: from the second before the first one >= wall
        start = datetime.fromtimestamp(math.ceil(wall.replace(tzinfo=UTC).timestamp()), UTC)
        start = start.replace(tzinfo=None) - SECOND
    try:
        found = croniter(cron, start, max_years_between_matches=HORIZON_YEARS).get_next(datetime)
    except CroniterBadDateError:
        raise NoFiring(f"{cron!r} matches no date") from None
    assert isinstance(found, datetime)
    return found


def _offset(zone: ZoneInfo, at: datetime) -> timedelta:
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _wall(at: datetime, offset: timedelta) -> datetime:
    """The naive local time of the instant ``at`` under ``offset``."""
    return (at + offset).replace(tzinfo=None)


def _change(zone: ZoneInfo, after: datetime, until: datetime) -> datetime | None:
    """The first instant in (``after``, ``until``] at which the zone's UTC offset differs
    from the one at ``after``; None when it holds throughout."""
    base = _offset(zone, after)
    low = after
    while low < until:
        high = min(low + STRIDE, until)
        if _offset(zone, high) != base:
            # Offsets change on whole seconds: bisect on them.
            lo, hi = math.floor(low.timestamp()), math.ceil(high.timestamp())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(zone, datetime.fromtimestamp(mid, UTC)) == base:
                    lo = mid
                else:
                    hi = mid
            return datetime.fromtimestamp(hi, UTC)
        low = high
    return None


def next_firing(cron: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first firing strictly after ``after``, in UTC. Walks the zone's stretches of
    one UTC offset: in each, the cron's next wall-clock slot maps to one instant; an
    offset change before that instant is a gap or a repeated hour, handled as the module
    docstring says. Raises ``NoFiring`` when nothing fires in the horizon."""
    fixed = fixed_time(cron)
    at = after.astimezone(UTC)
    local = at.astimezone(zone)
    wall, inclusive = local.replace(tzinfo=None, fold=0), False
    if fixed and local.fold:
        # The hour that comes again: a fixed-time job had its turn in the first pass, so
        # it resumes where the clock stood when it went back.
        first = local.replace(fold=0).utcoffset()
        assert first is not None
        went_back = _change(zone, at - (first - _offset(zone, at)), at)
        assert went_back is not None
        wall, inclusive = _wall(went_back, first), True
    for _ in range(MAX_STRETCHES):
        offset = _offset(zone, at)
        slot = _slot(cron, wall, inclusive=inclusive)
        when = (slot - offset).replace(tzinfo=UTC)
        change = _change(zone, at, when)
        if change is None:
            return when
        after_change = _offset(zone, change)
        if after_change > offset:  # clocks go forward: the walls up to the new one never come
            if fixed and slot < _wall(change, after_change):
                return change  # a fixed-time job due in the gap fires as it ends
            wall = _wall(change, after_change)
        else:  # clocks go back: the walls from the new one to the old come again
            wall = _wall(change, offset if fixed else after_change)
        at, inclusive = change, True
    raise NoFiring(f"{cron!r} fires nowhere in {HORIZON_YEARS} years")


class ScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        min_length=1,
        max_length=128,
        description="Cron expression: 5 fields, or 6 with seconds last",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone")
    action: Literal["deploy", "snapshot", "drill", "backup"] = Field(
        default="deploy",
        description="deploy; snapshot (capture the volumes); drill (prove the latest "
        "ready snapshot restores, in a sandbox); backup (the instance backs itself up to "
        "a storage target; admin only)",
    )
    snapshot_mode: Literal["stop", "pause", "none"] | None = Field(
        default=None, description="How a snapshot action holds the containers still (stop)"
    )
    target_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        validate_default=True,
        description="backup: the storage target the instance backs itself up to",
    )
    keep_last: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=f"backup: how many instance backups the target keeps ({KEEP_BACKUPS})",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) not in (5, 6) or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression like '0 3 * * *'")
        try:  # a valid expression may still match no date: 31 February
            _slot(value, datetime.now(UTC).replace(tzinfo=None), inclusive=False)
        except (NoFiring, CroniterError, OverflowError):
            raise ValueError(f"{value!r} never fires: no date matches it") from None
        return value

    @field_validator("target_id", "keep_last")
    @classmethod
    def _backup_only(cls, value: object, info: ValidationInfo) -> object:
        backup = info.data.get("action") == "backup"
        if info.field_name == "target_id" and backup and value is None:
            raise ValueError("a backup schedule needs the storage target to back up to")
        if not backup and value is not None:
            raise ValueError(f"{info.field_name} belongs to the backup action only")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone like 'Europe/Berlin'") from None
        return value


class ScheduleTrigger:
    kind: ClassVar[str] = "schedule"
    config_model: ClassVar[type[BaseModel]] = ScheduleConfig
    description: ClassVar[str] = "Deploys on a cron schedule."
    uses_token: ClassVar[bool] = False

    def sample(self) -> dict[str, Any]:
        return {"cron": "0 3 * * *", "timezone": "UTC", "action": "deploy"}

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, ScheduleConfig, config)

    def action(self, config: dict[str, Any]) -> tuple[str, str]:
        model = ScheduleConfig.model_validate(config)
        if model.action == "snapshot":
            return "snapshot", model.snapshot_mode or "stop"
        if model.action in ("drill", "backup"):
            return model.action, ""
        return "deploy", ""

    def next_run(self, config: dict[str, Any], after: datetime) -> datetime:
        model = ScheduleConfig.model_validate(config)
        return next_firing(model.cron, ZoneInfo(model.timezone), after)
