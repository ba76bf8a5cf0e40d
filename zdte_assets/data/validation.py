"""Validation of daily bars, from whatever a source hands over to the Bars frame of CONTRACTS.md.

Bad market data does its damage silently: a swapped high/low, a duplicated session or a stray
weekend row turns into a wrong feature, then a wrong trade. Every source therefore passes its raw
table through :func:`validate_bars`, which either returns the normalized frame or raises a
:class:`DataValidationError` whose message is one line naming the source, the row as a person
would find it in the file, and the problem, so the person reading a failed run can open the file
and go straight to the line.

All checks are polars expressions evaluated over the whole frame at once; only offending rows
are pulled into Python to word the messages. When several rows are bad, the one that comes first
in the file wins; within a row, the checks run in the order listed in ``_row_checks``.

A source that serves one day at a time (the file source behind the daily partitions) uses
:func:`check_bars` instead, which keeps every problem with how far it reaches, so that one bad bar
fails its own day only. Which problems reach the whole file, and why:

- empty file, no data rows, missing or doubly named columns, a column of the wrong type: there is
  no table of bars to read at all.
- missing or unparseable date: the row belongs to no day, so any day could be the one it meant.
- dates out of order: the file was put together wrong (concatenated exports, mixed tickers), so
  the session-to-session sequence the gap and stale checks rely on cannot be trusted.
- a date outside the NYSE calendar or on a weekend/holiday: the file's dates are shifted (time
  zone) or follow another calendar, which puts every date in it in doubt.

The rest are a bad bar of one known session and reach that day only: a value that is missing,
not a number, infinite or non-positive, negative volume, high below low, open or close outside the
day's range, and a duplicate date (the two rows disagree about that day alone).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl

from zdte_assets.core.calendar import first_session, last_session, trading_days
from zdte_assets.core.errors import ZdteError

REQUIRED_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
NUMERIC_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume", "adj_close")
#: Column order and types of the Bars frame (CONTRACTS.md).
BARS_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "adj_close": pl.Float64(),
}
#: Relative slack for open/close against the day's range: vendors round the four prices
#: independently, and a bar must not be rejected over the last bit of a float.
RANGE_TOLERANCE = 1e-9

_ROW = "__row"
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T].*)?$")


class DataValidationError(ZdteError, ValueError):
    """Bad input data, with a one-line message: ``source: row N (date): problem``."""

    def __init__(
        self,
        source: str,
        problem: str,
        row: int | None = None,
        day: dt.date | None = None,
    ) -> None:
        self.source = source
        self.problem = " ".join(problem.split())
        self.row = row
        self.day = day
        where = ""
        if row is not None:
            where = f" row {row}" + (f" ({day.isoformat()})" if day is not None else "") + ":"
        super().__init__(f"{source}:{where} {self.problem}")


@dataclass(frozen=True)
class BarProblem:
    """One bad row, kept so each request can be failed with a fresh exception of its own."""

    source: str
    row: int
    day: dt.date | None
    problem: str

    def error(self) -> DataValidationError:
        return DataValidationError(self.source, self.problem, self.row, self.day)


@dataclass(frozen=True)
class CheckedBars:
    """A raw table checked once, answering for any range of days which problem, if any, blocks it.

    ``bars`` holds only the days without a problem; ``day_problems`` the first problem of each bad
    day in file order; ``file_problem`` the first row that makes the whole file unusable.
    """

    bars: pl.DataFrame
    first_problem: BarProblem | None
    file_problem: BarProblem | None
    day_problems: dict[dt.date, BarProblem]
    #: First and last readable date of the table, bad days included (for "the file covers ...").
    span: tuple[dt.date, dt.date] | None

    def problem_for(self, start: dt.date, end: dt.date) -> BarProblem | None:
        """The problem a request for [start, end] must fail with: the first in the file that is
        either a whole-file problem or one of a day in the range, as a reader scanning the file
        for that range would meet it."""
        found = [p for day, p in self.day_problems.items() if start <= day <= end]
        if self.file_problem is not None:
            found.append(self.file_problem)
        return min(found, key=lambda p: p.row, default=None)


def validate_bars(
    df: pl.DataFrame,
    source: str,
    require_trading_days: bool = True,
    *,
    rows: Sequence[int] | pl.Series | None = None,
) -> pl.DataFrame:
    """Check a raw bar table and return it as a Bars frame, or raise DataValidationError.

    ``rows`` gives, for each row of ``df``, its 1-based data-row number in the original file; a
    source that filtered the file (one ticker out of many) passes it so that messages still point
    at the right line. Without it row ``i`` of ``df`` is reported as ``i + 1``.
    """
    checked = check_bars(df, source, require_trading_days, rows=rows)
    if checked.first_problem is not None:
        raise checked.first_problem.error()
    return checked.bars


def check_bars(
    df: pl.DataFrame,
    source: str,
    require_trading_days: bool = True,
    *,
    rows: Sequence[int] | pl.Series | None = None,
) -> CheckedBars:
    """Check a raw bar table once and keep every day's verdict, so that a source serving one day
    at a time can fail only the days a bad row belongs to (see the module docstring for which
    problems reach the whole file). A table with no usable structure still raises right away.
    """
    if df.width == 0:
        raise DataValidationError(source, "empty file (no columns)")
    if df.height == 0:
        raise DataValidationError(source, "no data rows")

    df = _normalize_names(df, source)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            source,
            f"missing required column(s) {', '.join(missing)} (found: {', '.join(df.columns)})",
        )
    has_adj = "adj_close" in df.columns

    if rows is None:
        row_numbers = pl.int_range(1, df.height + 1, eager=True, dtype=pl.Int64)
    else:
        row_numbers = pl.Series(list(rows), dtype=pl.Int64)
        if row_numbers.len() != df.height:
            raise ValueError(f"rows has {row_numbers.len()} entries for {df.height} rows")

    numeric = [c for c in NUMERIC_COLUMNS if c in df.columns]
    raw = df.select(["date", *numeric]).with_columns(row_numbers.alias(_ROW))
    parsed = raw.with_columns(
        _parse_date(raw.schema["date"], source).alias("date"),
        *(_parse_number(c, raw.schema[c], source).alias(c) for c in numeric),
    )
    if not has_adj:
        parsed = parsed.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))

    checks = _row_checks(raw.schema, has_adj, require_trading_days)
    # Raw text is needed to word "not a date"/"not a number"; keep it beside the parsed value.
    both = parsed.with_columns(
        *(raw.get_column(c).alias(f"__raw_{c}") for c in ["date", *numeric]),
    ).with_columns(
        pl.col("date").cum_max().shift(1).alias("__prev_max_date"),
        pl.col(_ROW).first().over("date").alias("__first_row_of_date"),
    )

    def first_failing(indices: list[int]) -> pl.Expr:
        """Index of the first listed check a row fails, null when it fails none of them."""
        return pl.coalesce(
            pl.lit(None, dtype=pl.Int64),
            *(pl.when(checks[i].mask.fill_null(False)).then(pl.lit(i)) for i in indices),
        )

    everything = list(range(len(checks)))
    whole_file = [i for i in everything if checks[i].whole_file]
    verdicts = both.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("__index"),
        pl.col("date"),
        first_failing(everything).alias("__check"),
        first_failing(whole_file).alias("__file_check"),
    ).filter(pl.col("__check").is_not_null())

    def problem(index: int, check: int) -> BarProblem:
        values = both.row(index, named=True)
        return BarProblem(
            source=source,
            row=values[_ROW],
            day=values["date"],
            problem=checks[check].message(values),
        )

    first_problem = file_problem = None
    day_problems: dict[dt.date, BarProblem] = {}
    if verdicts.height:
        first = verdicts.row(0, named=True)
        first_problem = problem(first["__index"], first["__check"])
        on_file = verdicts.filter(pl.col("__file_check").is_not_null()).head(1)
        if on_file.height:
            file_problem = problem(on_file["__index"][0], on_file["__file_check"][0])
        # Rows reaching one day only: the first of each day in file order speaks for that day.
        on_day = verdicts.filter(pl.col("__file_check").is_null()).unique(
            "date", keep="first", maintain_order=True
        )
        for index, check in on_day.select("__index", "__check").iter_rows():
            found = problem(index, check)
            assert found.day is not None
            day_problems[found.day] = found

    dates = parsed.get_column("date").drop_nulls().to_list()
    span = (min(dates), max(dates)) if dates else None
    bad_days = pl.Series(list(day_problems), dtype=pl.Date)
    bars = parsed.filter(~pl.col("date").is_in(bad_days.implode())).select(
        [pl.col(name).cast(dtype) for name, dtype in BARS_SCHEMA.items()],
    )
    return CheckedBars(
        bars=bars,
        first_problem=first_problem,
        file_problem=file_problem,
        day_problems=day_problems,
        span=span,
    )


@dataclass(frozen=True)
class _Check:
    mask: pl.Expr
    message: Callable[[dict[str, Any]], str]
    #: Whether a row failing this check makes the whole file unusable (module docstring).
    whole_file: bool = False


def _row_checks(raw_schema: pl.Schema, has_adj: bool, require_trading_days: bool) -> list[_Check]:
    """Row-level checks in the order a reader would want them reported for one row."""
    date = pl.col("date")
    raw_date = pl.col("__raw_date")
    checks: list[_Check] = []

    if raw_schema["date"] == pl.String:
        blank = raw_date.is_null() | (raw_date.str.strip_chars() == "")
        checks.append(_Check(blank, lambda v: "missing date", whole_file=True))
        checks.append(
            _Check(
                ~blank & date.is_null(),
                lambda v: f"unparseable date {v['__raw_date']!r} (expected YYYY-MM-DD)",
                whole_file=True,
            )
        )
    else:
        checks.append(_Check(date.is_null(), lambda v: "missing date", whole_file=True))

    numeric = [c for c in NUMERIC_COLUMNS if c in raw_schema and (c != "adj_close" or has_adj)]
    for c in numeric:
        col, raw_col = pl.col(c), pl.col(f"__raw_{c}")
        if raw_schema[c] == pl.String:
            text = raw_col.str.strip_chars()
            checks.append(
                _Check(
                    text.is_not_null() & (text != "") & col.is_null(),
                    _not_a_number(c),
                )
            )
        if c != "adj_close":
            checks.append(_Check(col.is_null() | col.is_nan(), _missing(c)))
        checks.append(_Check(col.is_infinite(), _infinite(c)))

    for c in PRICE_COLUMNS:
        checks.append(_Check(pl.col(c) <= 0, _non_positive(c)))
    checks.append(
        _Check(pl.col("volume") < 0, lambda v: f"negative volume {_fmt(v['volume'])}"),
    )
    checks.append(
        _Check(
            pl.col("high") < pl.col("low"),
            lambda v: f"high {_fmt(v['high'])} < low {_fmt(v['low'])}",
        )
    )
    for c in ("open", "close"):
        outside = (pl.col(c) > pl.col("high") * (1 + RANGE_TOLERANCE)) | (
            pl.col(c) < pl.col("low") * (1 - RANGE_TOLERANCE)
        )
        checks.append(_Check(outside, _outside_range(c)))
    if has_adj:
        checks.append(_Check(pl.col("adj_close") <= 0, _non_positive("adj_close")))

    checks.append(
        _Check(
            date.is_not_null() & (pl.col(_ROW) != pl.col("__first_row_of_date")),
            lambda v: f"duplicate date {v['date']} (first at row {v['__first_row_of_date']})",
        )
    )
    checks.append(
        _Check(
            date < pl.col("__prev_max_date"),
            lambda v: (
                f"dates out of order: {v['date']} comes after {v['__prev_max_date']} "
                "(rows must be sorted ascending)"
            ),
            whole_file=True,
        )
    )
    if require_trading_days:
        lo, hi = first_session(), last_session()
        outside_calendar = (date < lo) | (date > hi)
        checks.append(
            _Check(
                outside_calendar,
                lambda v: f"date {v['date']} is outside the NYSE calendar ({lo} to {hi})",
                whole_file=True,
            )
        )
        checks.append(
            _Check(
                ~outside_calendar & ~date.is_in(_session_series().implode()),
                lambda v: (
                    f"{v['date']} ({v['date']:%A}) is not an NYSE trading day "
                    "(weekend or exchange holiday)"
                ),
                whole_file=True,
            )
        )
    return checks


def _not_a_number(c: str) -> Callable[[dict[str, Any]], str]:
    return lambda v: f"{c} value {v[f'__raw_{c}']!r} is not a number"


def _missing(c: str) -> Callable[[dict[str, Any]], str]:
    return lambda v: f"missing {c} (null or NaN)"


def _infinite(c: str) -> Callable[[dict[str, Any]], str]:
    return lambda v: f"{c} is infinite ({v[c]})"


def _non_positive(c: str) -> Callable[[dict[str, Any]], str]:
    return lambda v: f"non-positive {c} {_fmt(v[c])} (prices must be > 0)"


def _outside_range(c: str) -> Callable[[dict[str, Any]], str]:
    return lambda v: (
        f"{c} {_fmt(v[c])} outside the day's range [low {_fmt(v['low'])}, high {_fmt(v['high'])}]"
    )


def _fmt(x: float | None) -> str:
    """Two decimals like a quote, unless that would hide the digits that make the problem."""
    if x is None:
        return "null"
    if round(x, 2) == x:
        return f"{x:.2f}"
    return f"{x:.10g}"


def _normalize_names(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Lower-case, trim and underscore names so ``Adj Close`` and `` DATE`` are understood."""
    seen: dict[str, str] = {}
    mapping: dict[str, str] = {}
    for name in df.columns:
        norm = re.sub(r"\s+", "_", name.strip().lower())
        if norm in seen:
            raise DataValidationError(
                source, f"columns {seen[norm]!r} and {name!r} both name {norm!r}"
            )
        seen[norm] = name
        mapping[name] = norm
    return df.rename(mapping)


def _parse_date(dtype: pl.DataType, source: str) -> pl.Expr:
    col = pl.col("date")
    if dtype == pl.Date:
        return col
    if isinstance(dtype, pl.Datetime):
        return col.dt.date()
    if dtype == pl.String:
        text = col.str.strip_chars()
        # Only the calendar day matters; a time part ("2024-03-05 00:00:00") is tolerated.
        return (
            pl.when(text.str.contains(_DATE_TEXT.pattern))
            .then(text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
            .otherwise(None)
        )
    if dtype == pl.Null:
        return col.cast(pl.Date)
    raise DataValidationError(source, f"column date has type {dtype}, expected dates")


def _parse_number(name: str, dtype: pl.DataType, source: str) -> pl.Expr:
    col = pl.col(name)
    if dtype.is_numeric() or dtype == pl.Null:
        return col.cast(pl.Float64)
    if dtype == pl.String:
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    raise DataValidationError(source, f"column {name} has type {dtype}, expected numbers")


@lru_cache(maxsize=1)
def _session_series() -> pl.Series:
    return pl.Series("sessions", trading_days(first_session(), last_session()), dtype=pl.Date)
