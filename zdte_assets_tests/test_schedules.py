"""The four schedules evaluated as Dagster evaluates a tick: New York times, NYSE sessions only,
and partition keys that exist in the target job's partitions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from zdte_assets.core import calendar
from zdte_assets.definitions import build_definitions
from zdte_assets.orchestration.jobs import job_name, schedule_name

DAILY = ("morning", "evening", "retrain")


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(tickers=["AAPL"])


def at(day: str, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), calendar.NY)


@dataclass(frozen=True)
class Tick:
    run_requests: list[dg.RunRequest]
    skip_message: str | None


def tick(defs: dg.Definitions, slot: str, when: dt.datetime) -> Tick:
    """What the schedule of `slot` returns for a tick at `when`."""
    schedule = defs.resolve_schedule_def(schedule_name("AAPL", slot))
    result = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    if isinstance(result, dg.SkipReason):
        return Tick([], result.skip_message)
    assert isinstance(result, list) and all(isinstance(r, dg.RunRequest) for r in result)
    return Tick(result, None)


def _weekdays(field: str) -> set[int]:
    """Cron day-of-week numbers (0 = Sunday) of a field such as ``1-5``, ``0`` or ``6,0``."""
    days: set[int] = set()
    for part in field.split(","):
        low, _, high = part.partition("-")
        days |= set(range(int(low), int(high or low) + 1))
    return days


def cron_ticks(
    cron: str, timezone: str, first: dt.datetime, last: dt.datetime
) -> Iterator[dt.datetime]:
    """The times a cron of the form ``M H * * DOW`` fires in [first, last), in `timezone`: the
    only form the schedules use (asserted), read from the schedule itself."""
    minute, hour, day_of_month, month, day_of_week = cron.split()
    assert day_of_month == month == "*", cron
    weekdays = _weekdays(day_of_week)
    day = first.date()
    while day <= last.date():
        when = dt.datetime.combine(day, dt.time(int(hour), int(minute)), ZoneInfo(timezone))
        if day.isoweekday() % 7 in weekdays and first <= when < last:
            yield when
        day += dt.timedelta(days=1)


def requested(defs: dg.Definitions, slot: str, when: dt.datetime) -> dg.RunRequest:
    """The single run a tick asks for, checked against its job's partitions."""
    data = tick(defs, slot, when)
    assert data.skip_message is None
    assert len(data.run_requests) == 1
    request = data.run_requests[0]
    assert request.job_name == job_name("AAPL", slot)
    partitions = defs.resolve_job_def(job_name("AAPL", slot)).partitions_def
    assert partitions is not None and request.partition_key is not None
    # The key exists at the moment of the tick, as the scheduler requires.
    assert request.partition_key in partitions.get_partition_keys(current_time=when)
    return request


def skipped(defs: dg.Definitions, slot: str, when: dt.datetime) -> str:
    data = tick(defs, slot, when)
    assert not data.run_requests
    assert data.skip_message
    return data.skip_message


def test_schedules_run_in_new_york_time(defs: dg.Definitions) -> None:
    for slot in (*DAILY, "weekly"):
        schedule = defs.resolve_schedule_def(schedule_name("AAPL", slot))
        assert schedule.execution_timezone == "America/New_York"
        assert schedule.job_name == job_name("AAPL", slot)


@pytest.mark.parametrize("slot", ["morning", "evening"])
def test_morning_and_evening_request_the_days_own_partition(
    defs: dg.Definitions, slot: str
) -> None:
    hour, minute = (9, 30) if slot == "morning" else (16, 30)
    for day in ("2024-07-05", "2024-07-03", "2024-11-04", "2024-12-24"):
        request = requested(defs, slot, at(day, hour, minute))
        assert request.partition_key == day
        assert request.tags["zdte/slot"] == slot
        assert day in (request.run_key or "")


@pytest.mark.parametrize("slot", DAILY)
@pytest.mark.parametrize("day", ["2024-07-04", "2024-12-25", "2024-07-06", "2024-07-07"])
def test_closed_days_skip_without_a_run(defs: dg.Definitions, slot: str, day: str) -> None:
    assert day in skipped(defs, slot, at(day, 16, 45))


def test_retrain_requests_the_next_trading_day(defs: dg.Definitions) -> None:
    cases = {
        "2024-07-05": "2024-07-08",  # Friday -> Monday
        "2024-07-03": "2024-07-05",  # over Independence Day
        "2024-12-24": "2024-12-26",  # over Christmas
        "2024-11-04": "2024-11-05",
    }
    for day, expected in cases.items():
        request = requested(defs, "retrain", at(day, 16, 45))
        assert request.partition_key == expected
        assert expected == calendar.next_trading_day(dt.date.fromisoformat(day)).isoformat()
        assert expected in (request.run_key or "")


def test_weekly_requests_the_coming_week(defs: dg.Definitions) -> None:
    request = requested(defs, "weekly", at("2024-06-30", 18, 0))
    assert request.partition_key == "2024-07-01"
    assert request.tags["zdte/trigger"] == "schedule"
    # Christmas week still has four sessions, so it is optimized like any other week.
    assert requested(defs, "weekly", at("2024-12-22", 18, 0)).partition_key == "2024-12-23"


@pytest.mark.parametrize(
    ("start", "end"), [("2024-06-24", "2024-07-15"), ("2024-12-16", "2025-01-06")]
)
def test_every_cron_tick_runs_exactly_on_sessions(
    defs: dg.Definitions, start: str, end: str
) -> None:
    """Ticks at every time each schedule's cron string names, holidays included."""
    first = at(start, 0, 0)
    last = at(end, 0, 0)
    sessions = calendar.trading_days(first.date(), last.date())
    for slot in (*DAILY, "weekly"):
        schedule = defs.resolve_schedule_def(schedule_name("AAPL", slot))
        ticks = cron_ticks(
            str(schedule.cron_schedule), str(schedule.execution_timezone), first, last
        )
        launched: list[dt.date] = []
        keys: list[str] = []
        for when in ticks:
            data = tick(defs, slot, when)
            for request in data.run_requests or []:
                launched.append(when.astimezone(calendar.NY).date())
                keys.append(request.partition_key or "")
        if slot == "weekly":
            assert keys == sorted({calendar.week_start(d).isoformat() for d in sessions})[1:]
            for k in keys:
                monday = dt.date.fromisoformat(k)
                assert calendar.trading_days(monday, monday + dt.timedelta(days=4)), k
        else:
            assert launched == [d for d in sessions if d < last.date()], slot
            assert len(set(keys)) == len(keys), slot
