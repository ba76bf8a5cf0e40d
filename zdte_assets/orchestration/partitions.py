"""Trading-day and trading-week partitions on the NYSE calendar (America/New_York).

Weekends are excluded by a cron rule and exchange holidays by explicit dates taken from
exchange_calendars, so a partition exists exactly for each session. `end_offset=2` makes
today's partition exist from midnight on, which the 09:30 prediction needs, and also the next
session's, which the 16:45 retrain (and the sensor's retrain after a re-optimization) targets.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import dagster as dg

from zdte_assets.core import calendar

#: Default first partition: the first session of the bundled sample.
DEFAULT_START = dt.date(2019, 1, 2)
WEEKENDS = "0 0 * * 6,0"


@lru_cache(maxsize=8)
def trading_day_partitions(start: dt.date = DEFAULT_START) -> dg.DailyPartitionsDefinition:
    """One partition per NYSE session from `start` on."""
    holidays = calendar.holidays(start, calendar.last_session())
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(),
        timezone=calendar.TIMEZONE,
        end_offset=2,
        exclusions=[WEEKENDS, *(dt.datetime.combine(d, dt.time()) for d in holidays)],
    )


@lru_cache(maxsize=8)
def trading_week_partitions(start: dt.date = DEFAULT_START) -> dg.WeeklyPartitionsDefinition:
    """One partition per Monday-based week (key: that Monday); `end_offset=2` lets the Sunday
    schedule target the coming week."""
    monday = calendar.week_start(start)
    return dg.WeeklyPartitionsDefinition(
        start_date=monday.isoformat(), day_offset=1, timezone=calendar.TIMEZONE, end_offset=2
    )


def day_of(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)
