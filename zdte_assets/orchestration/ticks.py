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


def at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    """A New York wall-clock time on `day` (the schedules' time zone)."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=calendar.NY)
