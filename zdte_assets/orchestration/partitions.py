"""Trading-day and trading-week partitions on the NYSE calendar (America/New_York).

Weekends are excluded by a cron rule and exchange holidays by explicit dates taken from
exchange_calendars, so a partition exists exactly for each session. The constants below say
what they count: Dagster counts a time-window offset in partitions, which here are sessions for
the daily partitions and weeks for the weekly ones.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import dagster as dg

from zdte_assets.core import calendar

#: Default first partition: the first session of the bundled sample.
DEFAULT_START = dt.date(2019, 1, 2)
#: Cron rule of the days that are never sessions (Saturday, Sunday, from midnight).
WEEKENDS = "0 0 * * 6,0"
#: Sessions past the last finished one whose partitions already exist: today's from midnight
#: on (the 09:30 prediction needs it) and the next session's, which the 16:45 retrain (and the
#: sensor's retrain after a re-optimization) targets.
SESSIONS_AHEAD = 2
#: Weeks past the last finished one whose partitions already exist: the current week and the
#: coming one, which the Sunday 18:00 schedule targets.
WEEKS_AHEAD = 2
#: The most sessions a week holds. A day's window reaching back this many SESSIONS (not weeks)
#: always starts before its own week's Monday, so it covers the previous week too (and, after
#: a week shortened by a holiday, possibly the one before).
MAX_SESSIONS_PER_WEEK = 5


@lru_cache(maxsize=8)
def trading_day_partitions(start: dt.date = DEFAULT_START) -> dg.DailyPartitionsDefinition:
    """One partition per NYSE session from `start` on."""
    holidays = calendar.holidays(start, calendar.last_session())
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(),
        timezone=calendar.TIMEZONE,
        end_offset=SESSIONS_AHEAD,
        exclusions=[WEEKENDS, *(dt.datetime.combine(d, dt.time()) for d in holidays)],
    )


@lru_cache(maxsize=8)
def trading_week_partitions(start: dt.date = DEFAULT_START) -> dg.WeeklyPartitionsDefinition:
    """One partition per Monday-based week (key: that Monday)."""
    monday = calendar.week_start(start)
    return dg.WeeklyPartitionsDefinition(
        start_date=monday.isoformat(),
        day_offset=1,
        timezone=calendar.TIMEZONE,
        end_offset=WEEKS_AHEAD,
    )


def weeks_of_day_and_previous() -> dg.TimeWindowPartitionMapping:
    """Mapping from a trading day to the weekly partitions of its week and the week before.

    Mapping a day to its weeks, Dagster applies the offsets in the day's own partitions, so the
    start offset counts sessions: `MAX_SESSIONS_PER_WEEK` sessions back is always in an earlier
    week. The day's model then sees the study versions that the previous Sunday's (or an earlier
    triggered) study left, and this week's triggered ones.
    """
    return dg.TimeWindowPartitionMapping(start_offset=-MAX_SESSIONS_PER_WEEK, end_offset=0)


def day_of(partition_key: str) -> dt.date:
    """The session a daily partition key (or the Monday a weekly key) names."""
    return dt.date.fromisoformat(partition_key)


def one_session(context: dg.AssetExecutionContext) -> dt.date:
    """The one session a per-session asset computes; a run over a range is refused in one line.

    The per-session assets share the range-aware backfill policy of the market data (see
    `jobs.DAILY_BACKFILL`), but each session depends on the ones before it (outcomes, models),
    so they are computed one session per run, in order.
    """
    keys = context.partition_keys
    if len(keys) != 1:
        raise dg.Failure(
            f"{context.asset_key.to_user_string()} computes one session per run, got "
            f"{keys[0]}..{keys[-1]} ({len(keys)} sessions): launch the sessions one by one, in "
            "order (the session job per day, or `zdte replay`)"
        )
    return day_of(keys[0])
