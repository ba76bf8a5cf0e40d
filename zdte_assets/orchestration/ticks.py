"""Schedule and sensor ticks for simulated time, so a replay's automation shows in the UI.

The replay evaluates the real schedules' and sensor's request functions for past trading days;
Dagster's daemons only tick at wall-clock time, so without this the UI would say "never run"
for automation that did run. Each evaluation is recorded as the daemon would record it: a tick
at the simulated time with its status, the runs it launched (or why it skipped) and, for the
sensor, its cursor. The UI finds a tick by the instigator's selector (code location,
repository, name), so ticks land under the location name the UI loads (`LOCATION`).

Dagster exposes no public way to record a tick: `DagsterInstance.create_tick` takes its internal
`TickData`. This module is the one place zdte imports Dagster internals, so an upgrade that
changes them breaks here only, and `test_replay_ticks.py` reads the ticks back through the
webserver's GraphQL API, the public contract of what the UI shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.selector import InstigatorSelector
from dagster._core.scheduler.instigation import InstigatorType, TickData, TickStatus

from zdte_assets.core import calendar
from zdte_assets.orchestration.jobs import schedule_name, sensor_name

#: The code location name in `workspace.yaml`, `[tool.dg.project]` and `zdte ui`.
LOCATION = "zdte"
#: The repository name Dagster gives a `Definitions` object.
REPOSITORY = "__repository__"


@dataclass(frozen=True)
class Tick:
    """One evaluation of a schedule or sensor: when, what it launched or why it skipped."""

    name: str
    kind: str  # "schedule" or "sensor"
    at: dt.datetime
    run_ids: Sequence[str] = ()
    run_keys: Sequence[str] = ()
    skip_reason: str | None = None
    cursor: str | None = None


def selector_id(name: str, location: str = LOCATION) -> str:
    """The id the UI looks ticks up by."""
    return InstigatorSelector(
        location_name=location, repository_name=REPOSITORY, name=name
    ).get_id()


def record(instance: dg.DagsterInstance, tick: Tick, location: str = LOCATION) -> None:
    """Store `tick` as a finished tick in the instance's schedule storage."""
    sid = selector_id(tick.name, location)
    launched = list(tick.run_ids)
    instance.create_tick(
        TickData(
            instigator_origin_id=sid,
            instigator_name=tick.name,
            instigator_type=(
                InstigatorType.SCHEDULE if tick.kind == "schedule" else InstigatorType.SENSOR
            ),
            status=TickStatus.SUCCESS if launched else TickStatus.SKIPPED,
            timestamp=tick.at.timestamp(),
            end_timestamp=tick.at.timestamp(),
            run_ids=launched,
            run_keys=list(tick.run_keys),
            skip_reason=None if launched else (tick.skip_reason or "no run requested"),
            cursor=tick.cursor,
            selector_id=sid,
        )
    )


def fires(slot: str, day: dt.date) -> dt.datetime:
    """When `slot`'s schedule fires on `day`: the minute and hour of its cron, in New York."""
    from zdte_assets.orchestration.schedules import SLOTS

    minute, hour = (int(field) for field in SLOTS[slot][0].split()[:2])
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=calendar.NY)


def _ids(requests: Sequence[dg.RunRequest]) -> list[str]:
    return [r.run_key or "" for r in requests]


def weekly_tick(
    ticker: str, monday: dt.date, run_ids: Sequence[str], requests: Sequence[dg.RunRequest]
) -> Tick:
    """The Sunday tick of the weekly schedule before the week of `monday`."""
    return Tick(
        schedule_name(ticker, "weekly"),
        "schedule",
        fires("weekly", monday - dt.timedelta(days=1)),
        run_ids,
        _ids(requests),
    )


def session_ticks(
    ticker: str, day: dt.date, run_ids: Sequence[str], requests: Sequence[dg.RunRequest]
) -> list[Tick]:
    """The ticks a replay's session run stands for: the retrain of the session before (the
    day's model), the day's morning and its evening."""
    when = {
        "retrain": fires("retrain", calendar.previous_trading_day(day)),
        "morning": fires("morning", day),
        "evening": fires("evening", day),
    }
    return [
        Tick(schedule_name(ticker, slot), "schedule", at, run_ids, _ids(requests))
        for slot, at in when.items()
    ]


def sensor_tick(
    ticker: str,
    day: dt.date,
    run_ids: Sequence[str],
    requests: Sequence[dg.RunRequest],
    notes: Sequence[str],
    cursor: str,
) -> Tick:
    """The drift sensor's tick after `day`'s evening run (its report is what it reads)."""
    return Tick(
        sensor_name(ticker),
        "sensor",
        fires("evening", day) + SENSOR_AFTER_EVENING,
        run_ids,
        _ids(requests),
        skip_reason="; ".join(notes) or "no new drift report fired",
        cursor=cursor,
    )


#: The sensor's first evaluation after the evening run (its default interval is 30 s; a few
#: minutes cover the run itself).
SENSOR_AFTER_EVENING = dt.timedelta(minutes=5)
