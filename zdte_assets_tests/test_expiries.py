"""Per-ticker same-day expiry calendar."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zdte_assets.core import calendar as trading_calendar
from zdte_assets.trading import expiries
from zdte_assets.trading.expiries import ExpiryCalendar, ExpiryRule

D = dt.date.fromisoformat
CAL = ExpiryCalendar.defaults()


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2024-06-14", True),  # Friday weekly
        ("2024-06-11", False),  # Tuesday
        ("2024-03-28", True),  # Thursday before Good Friday takes the weekly expiry
        ("2024-03-27", False),  # Wednesday of that week, before Wednesday listings existed
        ("2026-01-26", False),  # Monday: listings announced, first expiries a week later
        ("2026-01-28", False),  # Wednesday before the first Wednesday expiry
        ("2026-02-02", True),  # first Monday expiry
        ("2026-02-03", False),  # Tuesday
        ("2026-02-04", True),  # first Wednesday expiry
        ("2026-02-06", True),  # Friday
        ("2024-06-15", False),  # Saturday
    ],
)
def test_aapl_expiries(day: str, expected: bool) -> None:
    assert CAL.has_expiry("AAPL", D(day)) is expected
    assert CAL.has_expiry("aapl", D(day)) is expected


def test_aapl_skips_monday_and_wednesday_expiries_on_earnings_days() -> None:
    cal = ExpiryCalendar.from_config(
        {"tickers": {"AAPL": {"earnings_dates": ["2026-02-02", "2026-02-04", "2026-02-06"]}}}
    )
    assert not cal.has_expiry("AAPL", D("2026-02-02"))
    assert not cal.has_expiry("AAPL", D("2026-02-04"))
    assert "earnings day" in cal.expiry_reason("AAPL", D("2026-02-02"))
    # The Friday weekly stays listed on an earnings day; other Mondays are unaffected.
    assert cal.has_expiry("AAPL", D("2026-02-06"))
    assert cal.has_expiry("AAPL", D("2026-02-09"))


def test_friday_holiday_moves_the_weekly_expiry_back() -> None:
    # 2026-07-03 is the observed Independence Day holiday (a Friday).
    assert not trading_calendar.is_trading_day(D("2026-07-03"))
    assert CAL.has_expiry("MSFT", D("2026-07-02"))
    assert "moved from the exchange holiday" in CAL.expiry_reason("MSFT", D("2026-07-02"))
    assert not CAL.has_expiry("MSFT", D("2026-07-01"))


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=D("2018-01-01"), max_value=D("2027-06-30")))
def test_spy_has_an_expiry_exactly_on_trading_days(day: dt.date) -> None:
    assert CAL.has_expiry("SPY", day) is trading_calendar.is_trading_day(day)
    assert CAL.has_expiry("QQQ", day) is trading_calendar.is_trading_day(day)
    if day.weekday() >= 5:
        assert not CAL.has_expiry("SPY", day)
        assert "not an NYSE trading day" in CAL.expiry_reason("SPY", day)


@pytest.mark.parametrize("year", [2019, 2020, 2024, 2026])
def test_weekly_ticker_has_exactly_one_expiry_per_trading_week(year: int) -> None:
    # Whole Monday-Friday weeks only, so a week cut by the year's end is not half-counted.
    first_monday = trading_calendar.week_start(D(f"{year}-01-07"))
    last_friday = trading_calendar.week_start(D(f"{year}-12-24")) + dt.timedelta(days=4)
    days = trading_calendar.trading_days(first_monday, last_friday)
    weeks: dict[dt.date, int] = {}
    for day in days:
        weeks.setdefault(trading_calendar.week_start(day), 0)
        if CAL.has_expiry("XYZ", day):
            weeks[trading_calendar.week_start(day)] += 1
    assert set(weeks.values()) == {1}


def test_aapl_has_three_expiries_in_an_ordinary_week_from_february_2026() -> None:
    week = [D("2026-02-09") + dt.timedelta(days=k) for k in range(5)]
    assert [CAL.has_expiry("AAPL", d) for d in week] == [True, False, True, False, True]


def test_reasons_explain_the_rule() -> None:
    reason = CAL.expiry_reason("AAPL", D("2024-06-11"))
    assert reason.startswith("no expiry today: AAPL lists same-day expiries on Fridays")
    assert "Mondays from 2026-02-02" in reason and "Wednesdays from 2026-02-04" in reason
    assert "2024-06-14" in CAL.expiry_reason("AAPL", D("2024-06-14"))
    assert CAL.expiry_reason("XYZ", D("2024-06-11")).startswith(
        "no expiry today: XYZ lists same-day expiries on Fridays"
    )
    status = CAL.status("SPY", D("2024-06-11"))
    assert status.has_expiry and status.ticker == "SPY" and "every trading day" in status.reason


def test_config_overrides_replace_or_merge() -> None:
    cal = ExpiryCalendar.from_config(
        {"default": "none", "tickers": {"DIA": "daily", "aapl": "weekly", "MSFT": "weekly"}}
    )
    assert cal.has_expiry("DIA", D("2024-06-11"))
    assert not cal.has_expiry("XYZ", D("2024-06-14"))  # default none
    assert cal.has_expiry("MSFT", D("2024-06-14"))
    assert not cal.has_expiry("AAPL", D("2026-02-02"))  # a string replaces the rule entirely
    assert cal.has_expiry("SPY", D("2024-06-11"))  # built-in rules kept

    bare = ExpiryCalendar.from_config({"include_defaults": False})
    assert not bare.has_expiry("SPY", D("2024-06-11"))
    assert not bare.has_expiry("AAPL", D("2026-02-02"))

    extra = ExpiryCalendar.from_config(
        {"tickers": {"MSFT": {"extra_weekdays": {"Monday": "2026-03-02"}}}}
    )
    assert extra.has_expiry("MSFT", D("2026-03-02"))
    assert not extra.has_expiry("MSFT", D("2026-02-23"))


def test_config_round_trip() -> None:
    cal = ExpiryCalendar.from_config({"tickers": {"AAPL": {"earnings_dates": ["2026-04-29"]}}})
    assert ExpiryCalendar.from_config(json.dumps(cal.to_config())) == cal


@pytest.mark.parametrize(
    "config",
    [
        {"tickers": {"SPY": "hourly"}},
        {"tickers": {"SPY": {"rul": "daily"}}},
        {"tickers": {"X": {"extra_weekdays": {"monday": "2026-02-03"}}}},  # not a Monday
        {"tickers": {"X": {"extra_weekdays": {"friday": "2026-02-06"}}}},
        {"tickers": {"X": {"earnings_dates": "2026-02-02"}}},
        {"tickers": {"X": {"earnings_dates": ["02/02/2026"]}}},
        {"ticker": {}},
        {"include_defaults": "yes"},
    ],
)
def test_bad_config_is_rejected(config: dict) -> None:
    with pytest.raises(ValueError):
        ExpiryCalendar.from_config(config)


def test_rule_validation() -> None:
    with pytest.raises(ValueError):
        ExpiryRule(rule="weekly", extra_weekdays=((0, D("2026-02-04")),))


def test_environment_variable_json_and_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(expiries.ENV_VAR, raising=False)
    assert not expiries.has_expiry("DIA", D("2024-06-11"))
    monkeypatch.setenv(expiries.ENV_VAR, json.dumps({"tickers": {"DIA": "daily"}}))
    assert expiries.has_expiry("DIA", D("2024-06-11"))
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"tickers": {"SPY": "weekly"}}))
    monkeypatch.setenv(expiries.ENV_VAR, str(path))
    assert not expiries.has_expiry("SPY", D("2024-06-11"))
    assert expiries.expiry_reason("SPY", D("2024-06-11")).startswith("no expiry today")
    monkeypatch.setenv(expiries.ENV_VAR, "{not json")
    with pytest.raises(ValueError, match=expiries.ENV_VAR):
        ExpiryCalendar.from_env()
