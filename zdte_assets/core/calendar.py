"""The NYSE trading calendar, from exchange_calendars rather than a hand-kept holiday list.

Every "day" in zdte is an NYSE session in America/New_York. Holidays and early
closes change every year, so they come from a maintained library.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd

from zdte_assets.core.errors import ZdteError

EXCHANGE = "XNYS"
TIMEZONE = "America/New_York"
NY = ZoneInfo(TIMEZONE)
#: First day the calendar (and therefore every partition set) covers.
CALENDAR_START = dt.date(2000, 1, 3)


class CalendarError(ZdteError, ValueError):
    """A date outside the calendar's range or not a session where one is required."""


@lru_cache(maxsize=1)
def _calendar() -> xc.ExchangeCalendar:
    return xc.get_calendar(EXCHANGE, start=CALENDAR_START.isoformat())


@lru_cache(maxsize=1)
def _sessions() -> tuple[dt.date, ...]:
    return tuple(ts.date() for ts in _calendar().sessions)


@lru_cache(maxsize=1)
def _session_index() -> dict[dt.date, int]:
    return {d: i for i, d in enumerate(_sessions())}


def first_session() -> dt.date:
    return _sessions()[0]


def last_session() -> dt.date:
    """Last session the calendar knows (about a year ahead of today)."""
    return _sessions()[-1]


def is_trading_day(day: dt.date) -> bool:
    return day in _session_index()


def trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Sessions in [start, end], both inclusive."""
    return [d for d in _sessions() if start <= d <= end]


def _index_at_or_before(day: dt.date) -> int:
    sessions = _sessions()
    if day < sessions[0] or day > sessions[-1]:
        raise CalendarError(
            f"{day} is outside the trading calendar ({sessions[0]} to {sessions[-1]})"
        )
    lo, hi = 0, len(sessions) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sessions[mid] <= day:
            lo = mid
        else:
            hi = mid - 1
    return lo


def previous_trading_day(day: dt.date, n: int = 1) -> dt.date:
    """The n-th session strictly before `day` (which need not be a session)."""
    idx = _index_at_or_before(day)
    if _sessions()[idx] == day:
        idx -= 1
    idx -= n - 1
    if idx < 0:
        raise CalendarError(f"no session {n} before {day} in the calendar")
    return _sessions()[idx]


def next_trading_day(day: dt.date, n: int = 1) -> dt.date:
    """The n-th session strictly after `day` (which need not be a session)."""
    idx = _index_at_or_before(day) + n
    if idx >= len(_sessions()):
        raise CalendarError(f"no session {n} after {day} in the calendar")
    return _sessions()[idx]


def holidays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Weekdays in [start, end] on which the exchange is closed."""
    out = []
    day = start
    index = _session_index()
    while day <= end:
        if day.weekday() < 5 and day not in index:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def session_open_time(day: dt.date) -> dt.datetime:
    """Opening time of a session, in New York time."""
    return _session_bound(day, "open")


def session_close_time(day: dt.date) -> dt.datetime:
    """Closing time of a session in New York time (13:00 on early-close days)."""
    return _session_bound(day, "close")


def _session_bound(day: dt.date, which: str) -> dt.datetime:
    if not is_trading_day(day):
        raise CalendarError(f"{day} is not an NYSE trading day")
    cal = _calendar()
    ts = pd.Timestamp(day)
    stamp = cal.session_open(ts) if which == "open" else cal.session_close(ts)
    out: dt.datetime = stamp.tz_convert(TIMEZONE).to_pydatetime()
    return out


def week_start(day: dt.date) -> dt.date:
    """Monday of the calendar week containing `day` (weekly partitions start on Mondays)."""
    return day - dt.timedelta(days=day.weekday())
