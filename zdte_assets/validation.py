"""Validation of daily bars, from whatever a source hands over to the Bars frame of CONTRACTS.md.

Bad market data does its damage silently: a swapped high/low, a duplicated session or a stray
weekend row turns into a wrong feature, then a wrong trade. Every source therefore passes its raw
table through :func:`validate_bars`, which either returns the normalized frame or raises a
:class:`DataValidationError` whose message is one line naming the source, the row as a person
would find it in the file, and the problem, so the person reading a failed run can open the file
and go straight to the line.

All checks are polars expressions evaluated over the whole frame at once; only the single
offending row is pulled into Python to word the message. When several rows are bad, the one that
comes first in the file wins; within a row, the checks run in the order listed in ``_row_checks``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl

from zdte_assets.calendar import first_session, last_session, trading_days

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


class DataValidationError(ValueError):
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
    masks = both.select(
        [check.mask.fill_null(False).alias(f"__check{i}") for i, check in enumerate(checks)]
    )
    bad_rows = masks.select(pl.any_horizontal(pl.all()).arg_true()).to_series()
    if bad_rows.len():
        index = int(bad_rows[0])
        flags = masks.row(index)
        check = checks[next(i for i, flag in enumerate(flags) if flag)]
        values = both.row(index, named=True)
        raise DataValidationError(source, check.message(values), values[_ROW], values["date"])

    return parsed.select(
        [pl.col(name).cast(dtype) for name, dtype in BARS_SCHEMA.items()],
    )


@dataclass(frozen=True)
class _Check:
    mask: pl.Expr
    message: Callable[[dict[str, Any]], str]


def _row_checks(raw_schema: pl.Schema, has_adj: bool, require_trading_days: bool) -> list[_Check]:
    """Row-level checks in the order a reader would want them reported for one row."""
    date = pl.col("date")
    raw_date = pl.col("__raw_date")
    checks: list[_Check] = []

    if raw_schema["date"] == pl.String:
        blank = raw_date.is_null() | (raw_date.str.strip_chars() == "")
        checks.append(_Check(blank, lambda v: "missing date"))
        checks.append(
            _Check(
                ~blank & date.is_null(),
                lambda v: f"unparseable date {v['__raw_date']!r} (expected YYYY-MM-DD)",
            )
        )
    else:
        checks.append(_Check(date.is_null(), lambda v: "missing date"))

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
        )
    )
    if require_trading_days:
        lo, hi = first_session(), last_session()
        outside_calendar = (date < lo) | (date > hi)
        checks.append(
            _Check(
                outside_calendar,
                lambda v: f"date {v['date']} is outside the NYSE calendar ({lo} to {hi})",
            )
        )
        checks.append(
            _Check(
                ~outside_calendar & ~date.is_in(_session_series()),
                lambda v: (
                    f"{v['date']} ({v['date']:%A}) is not an NYSE trading day "
                    "(weekend or exchange holiday)"
                ),
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
