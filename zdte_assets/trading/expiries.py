"""Which tickers have an option expiring on a given session (a same-day, 0-DTE expiry).

A 0-DTE trade exists only on days with an expiry, and that differs by ticker and changes over
time, so it is configuration rather than code:

* ``daily``: every trading day (SPY, QQQ, IWM);
* ``weekly``: Fridays; when the Friday is an exchange holiday the expiry moves to the previous
  trading day of that week (Good Friday 2024-03-29 -> Thursday 2024-03-28);
* ``none``: no same-day expiries at all;

plus, on top of ``weekly``, extra weekdays listed from a first date and skipped on the company's
earnings days. AAPL has had weekly Friday expiries for years; since 2026-01-26 Nasdaq also lists
Monday and Wednesday ones (first expiries 2026-02-02 and 2026-02-04), except on earnings days.
No live earnings source is available here, so earnings dates must be configured; the default
list is empty. Extra-weekday expiries falling on a holiday are not moved (assumed not listed),
and Friday weeklies are kept on earnings days.

Configuration (``ExpiryCalendar.from_config`` or the ``ZDTE_EXPIRY_RULES`` environment variable,
holding either the JSON text or the path of a JSON file)::

    {
      "include_defaults": true,
      "default": "weekly",
      "tickers": {
        "DIA": "daily",
        "AAPL": {"earnings_dates": ["2026-04-30", "2026-07-30"]},
        "MSFT": {"rule": "weekly", "extra_weekdays": {"monday": "2026-03-02"}}
      }
    }

A string replaces a ticker's rule entirely; an object changes only the fields it names, on top
of the built-in rule for that ticker (or the default rule). ``include_defaults: false`` starts
from no per-ticker rules. Tickers are case-insensitive.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from zdte_assets.core import calendar as trading_calendar
from zdte_assets.core.config import expiry_rules

ENV_VAR = "ZDTE_EXPIRY_RULES"
RuleKind = Literal["daily", "weekly", "none"]
_RULE_KINDS: tuple[RuleKind, ...] = ("daily", "weekly", "none")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
_FRIDAY = 4


@dataclass(frozen=True)
class ExpiryRule:
    """How one ticker's same-day expiries are listed.

    ``extra_weekdays`` holds (weekday number, first expiry date) pairs, Monday = 0, for expiries
    listed on top of the Friday weeklies; ``earnings_dates`` are the days those extra expiries
    are skipped.
    """

    rule: RuleKind = "weekly"
    extra_weekdays: tuple[tuple[int, dt.date], ...] = ()
    earnings_dates: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        if self.rule not in _RULE_KINDS:
            raise ValueError(f"expiry rule must be one of {_RULE_KINDS}, got {self.rule!r}")
        seen = set()
        for weekday, first in self.extra_weekdays:
            if not 0 <= weekday < _FRIDAY:
                raise ValueError(f"extra expiry weekday must be Monday-Thursday, got {weekday}")
            if first.weekday() != weekday:
                raise ValueError(
                    f"first {WEEKDAYS[weekday]} expiry {first} is a {WEEKDAYS[first.weekday()]}"
                )
            if weekday in seen:
                raise ValueError(f"{WEEKDAYS[weekday]} listed twice in extra_weekdays")
            seen.add(weekday)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, accepted back by :meth:`from_dict`."""
        return {
            "rule": self.rule,
            "extra_weekdays": {WEEKDAYS[w]: d.isoformat() for w, d in self.extra_weekdays},
            "earnings_dates": sorted(d.isoformat() for d in self.earnings_dates),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str, base: ExpiryRule | None = None) -> ExpiryRule:
        """Parse a rule; object fields override ``base`` (a string replaces it entirely)."""
        if isinstance(data, str):
            return cls(rule=_parse_kind(data))
        if not isinstance(data, Mapping):
            raise ValueError(f"an expiry rule must be a string or an object, got {data!r}")
        unknown = set(data) - {"rule", "extra_weekdays", "earnings_dates"}
        if unknown:
            raise ValueError(f"unknown expiry rule keys: {sorted(unknown)}")
        out = base or cls()
        if "rule" in data:
            out = replace(out, rule=_parse_kind(data["rule"]))
        if "extra_weekdays" in data:
            out = replace(out, extra_weekdays=_parse_weekdays(data["extra_weekdays"]))
        if "earnings_dates" in data:
            out = replace(out, earnings_dates=frozenset(_parse_dates(data["earnings_dates"])))
        return out

    def describe(self) -> str:
        """When this rule lists expiries, in words for the NO_TRADE reason."""
        if self.rule == "daily":
            return "every trading day"
        if self.rule == "none":
            return "no days (no same-day expiries configured)"
        text = "Fridays (the previous trading day when Friday is a holiday)"
        if self.extra_weekdays:
            extras = " and ".join(
                f"{WEEKDAYS[w].capitalize()}s from {d.isoformat()}" for w, d in self.extra_weekdays
            )
            text += f", plus {extras} except on earnings days"
        return text


def _parse_kind(value: Any) -> RuleKind:
    text = str(value).strip().lower()
    if text not in _RULE_KINDS:
        raise ValueError(f"expiry rule must be one of {_RULE_KINDS}, got {value!r}")
    return text


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from exc


def _parse_dates(values: Any) -> list[dt.date]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"earnings_dates must be a list of dates, got {values!r}")
    return [_parse_date(v) for v in values]


def _parse_weekdays(values: Any) -> tuple[tuple[int, dt.date], ...]:
    if not isinstance(values, Mapping):
        raise ValueError(f"extra_weekdays must map weekday names to first dates, got {values!r}")
    out = []
    for name, first in values.items():
        key = str(name).strip().lower()
        if key not in WEEKDAYS:
            raise ValueError(f"unknown weekday {name!r}; use one of {WEEKDAYS}")
        out.append((WEEKDAYS.index(key), _parse_date(first)))
    return tuple(sorted(out))


DAILY = ExpiryRule(rule="daily")
WEEKLY = ExpiryRule(rule="weekly")
AAPL = ExpiryRule(
    rule="weekly",
    extra_weekdays=((0, dt.date(2026, 2, 2)), (2, dt.date(2026, 2, 4))),
)
DEFAULT_RULES: Mapping[str, ExpiryRule] = {"SPY": DAILY, "QQQ": DAILY, "IWM": DAILY, "AAPL": AAPL}


@dataclass(frozen=True)
class ExpiryStatus:
    """Whether a session has a same-day expiry for a ticker, and why (in plain words)."""

    ticker: str
    day: dt.date
    has_expiry: bool
    reason: str


def _weekly_friday_expiry(day: dt.date) -> str | None:
    """Why a trading day carries the weekly expiry, or None when it does not."""
    if day.weekday() == _FRIDAY:
        return "weekly Friday expiry"
    if day.weekday() > _FRIDAY:
        return None
    friday = day + dt.timedelta(days=_FRIDAY - day.weekday())
    # Past the calendar's horizon the holiday status of that Friday is unknown: do not roll.
    if friday > trading_calendar.last_session():
        return None
    later = (day + dt.timedelta(days=k) for k in range(1, _FRIDAY - day.weekday() + 1))
    if any(trading_calendar.is_trading_day(d) for d in later):
        return None
    return f"weekly expiry moved from the exchange holiday on Friday {friday.isoformat()}"


@dataclass(frozen=True)
class ExpiryCalendar:
    """Per-ticker expiry rules, with a fallback rule for tickers not listed."""

    rules: tuple[tuple[str, ExpiryRule], ...] = tuple(sorted(DEFAULT_RULES.items()))
    default: ExpiryRule = WEEKLY

    @classmethod
    def defaults(cls) -> ExpiryCalendar:
        """SPY/QQQ/IWM daily, AAPL Fridays plus Mondays/Wednesdays from 2026-02, others weekly."""
        return cls()

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> ExpiryCalendar:
        """Build from the mapping (or JSON text) described in the module docstring."""
        if isinstance(config, str):
            config = json.loads(config)
        if not isinstance(config, Mapping):
            raise ValueError("expiry configuration must be a JSON object")
        unknown = set(config) - {"include_defaults", "default", "tickers"}
        if unknown:
            raise ValueError(f"unknown expiry configuration keys: {sorted(unknown)}")
        include = config.get("include_defaults", True)
        if not isinstance(include, bool):
            raise ValueError(f"include_defaults must be true or false, got {include!r}")
        default = WEEKLY
        if "default" in config:
            default = ExpiryRule.from_dict(config["default"], base=WEEKLY)
        rules: dict[str, ExpiryRule] = dict(DEFAULT_RULES) if include else {}
        tickers = config.get("tickers", {})
        if not isinstance(tickers, Mapping):
            raise ValueError("'tickers' must map ticker symbols to rules")
        for name, spec in tickers.items():
            ticker = str(name).strip().upper()
            rules[ticker] = ExpiryRule.from_dict(spec, base=rules.get(ticker, default))
        return cls(rules=tuple(sorted(rules.items())), default=default)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExpiryCalendar:
        """Defaults, overridden by ``ZDTE_EXPIRY_RULES`` (JSON text or a JSON file path)."""
        raw = expiry_rules(environ)
        if not raw:
            return cls.defaults()
        text = raw if raw.startswith("{") else Path(raw).expanduser().read_text()
        try:
            return cls.from_config(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{ENV_VAR} is not valid JSON: {exc}") from exc

    def to_config(self) -> dict[str, Any]:
        """JSON-able form that :meth:`from_config` reads back to an equal calendar."""
        return {
            "include_defaults": False,
            "default": self.default.to_dict(),
            "tickers": {t: r.to_dict() for t, r in self.rules},
        }

    def rule_for(self, ticker: str) -> ExpiryRule:
        key = ticker.strip().upper()
        return dict(self.rules).get(key, self.default)

    def status(self, ticker: str, day: dt.date) -> ExpiryStatus:
        """Decide and explain in one place so the reason can never contradict the answer."""
        symbol = ticker.strip().upper()
        rule = self.rule_for(symbol)

        def yes(why: str) -> ExpiryStatus:
            text = f"{symbol} has a same-day expiry on {day.isoformat()} ({why})"
            return ExpiryStatus(symbol, day, True, text)

        def no(why: str) -> ExpiryStatus:
            return ExpiryStatus(symbol, day, False, f"no expiry today: {why}")

        if not trading_calendar.is_trading_day(day):
            return no(f"{day.isoformat()} is not an NYSE trading day")
        if rule.rule == "daily":
            return yes("listed every trading day")
        if rule.rule == "none":
            return no(f"{symbol} has no same-day expiries configured")
        weekly = _weekly_friday_expiry(day)
        if weekly is not None:
            return yes(weekly)
        for weekday, first in rule.extra_weekdays:
            if day.weekday() != weekday or day < first:
                continue
            name = WEEKDAYS[weekday].capitalize()
            if day in rule.earnings_dates:
                return no(
                    f"{day.isoformat()} is {symbol}'s earnings day, when its {name} expiry "
                    "is not listed"
                )
            return yes(f"{name} expiry, listed since {first.isoformat()}")
        return no(f"{symbol} lists same-day expiries on {rule.describe()}")

    def has_expiry(self, ticker: str, day: dt.date) -> bool:
        return self.status(ticker, day).has_expiry

    def expiry_reason(self, ticker: str, day: dt.date) -> str:
        return self.status(ticker, day).reason


def has_expiry(ticker: str, day: dt.date) -> bool:
    """Using the calendar configured by the environment (read on each call, so tests can vary it)."""
    return ExpiryCalendar.from_env().has_expiry(ticker, day)


def expiry_reason(ticker: str, day: dt.date) -> str:
    """Using the calendar configured by the environment; see :meth:`ExpiryCalendar.status`."""
    return ExpiryCalendar.from_env().expiry_reason(ticker, day)
