"""The daily bar's quality findings (`data.bar_checks`) and the asset check results built from them,
on good bars and on bars with each kind of fault; expected values come from the planted faults."""

from __future__ import annotations

import datetime as dt
import math

import dagster as dg
import numpy as np
import polars as pl

from zdte_assets.core.calendar import trading_days
from zdte_assets.data.adjustment import Split
from zdte_assets.data.bar_checks import GAP_THRESHOLD, inspect_bars
from zdte_assets.orchestration.checks import bar_check_results
from zdte_assets.orchestration.metadata import number

DAYS = trading_days(dt.date(2023, 1, 3), dt.date(2023, 3, 31))
KEY = dg.AssetKey(["XYZ", "daily_bar"])


def good_bars(seed: int = 7) -> pl.DataFrame:
    """Consistent bars with overnight moves far below the gap threshold."""
    rng = np.random.default_rng(seed)
    n = len(DAYS)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[50.0], close[:-1]]) * np.exp(rng.normal(0, 0.003, n))
    return pl.DataFrame(
        {
            "date": DAYS,
            "open": open_,
            "high": np.maximum(open_, close) * 1.004,
            "low": np.minimum(open_, close) * 0.996,
            "close": close,
            "volume": rng.integers(1_000_000, 2_000_000, n).astype(float),
        }
    )


def largest_move(bars: pl.DataFrame, days: list[dt.date]) -> float:
    """|log(open_t / close_{t-1})| at its largest over `days`, from the rows themselves."""
    rows = bars.rows(named=True)
    return max(
        abs(math.log(rows[i]["open"] / rows[i - 1]["close"]))
        for i in range(1, len(rows))
        if rows[i]["date"] in days
    )


def scale_from(bars: pl.DataFrame, index: int, factor: float) -> pl.DataFrame:
    """Every price from row `index` on multiplied by `factor` (a jump at that open)."""
    later = pl.int_range(pl.len()) >= index
    return bars.with_columns(
        pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close")
    )


def results(bars: pl.DataFrame, days: list[dt.date], known: list[Split] | None = None) -> dict:
    return {r.check_name: r for r in bar_check_results(KEY, bars, days, known or [])}


def test_good_bars_pass_every_check_and_report_what_they_measured() -> None:
    bars = good_bars()
    days = DAYS[1:]
    found = inspect_bars(bars, days)
    assert found.checked == len(days)
    assert (found.inconsistent, found.gaps, found.ambiguous, found.repeated) == ((), (), (), ())
    assert found.largest_gap_log is not None
    assert math.isclose(found.largest_gap_log, largest_move(bars, days))
    assert found.largest_gap_log < math.log1p(GAP_THRESHOLD)

    checks = results(bars, days)
    assert all(r.passed for r in checks.values())
    assert checks["ohlc_consistent"].metadata["checked"].value == len(days)
    # The UI's figure is the measured one to six significant digits, never more.
    shown = checks["overnight_gap"].metadata["largest_gap_log"].value
    assert shown == number(found.largest_gap_log) != found.largest_gap_log
    assert checks["not_stale"].metadata["repeated"].value == 0
    # Every result names the checked sessions: the last as the trading day, and how many.
    for check in checks.values():
        assert check.metadata["trading_day"].value == days[-1].isoformat()
        assert check.metadata["first_day"].value == days[0].isoformat()
        assert check.metadata["sessions"].value == len(days)
        assert all(v.value not in (None, "") for v in check.metadata.values())


def test_an_impossible_bar_fails_the_consistency_check_naming_its_day() -> None:
    bars = good_bars()
    bad = 20
    high, low = bars["high"][bad], bars["low"][bad]
    bars = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == bad).then(low).otherwise(pl.col("high")).alias("high"),
        pl.when(pl.int_range(pl.len()) == bad).then(high).otherwise(pl.col("low")).alias("low"),
    )
    check = results(bars, DAYS)["ohlc_consistent"]
    assert not check.passed
    assert check.metadata["inconsistent"].value == 1
    assert check.metadata["inconsistent_days"].value == [DAYS[bad].isoformat()]


def test_a_repeated_bar_is_stale_but_not_when_it_is_only_the_context() -> None:
    bars = good_bars()
    copy = 30
    rows = bars.rows()
    bars = pl.DataFrame(
        [*rows[:copy], (DAYS[copy], *rows[copy - 1][1:]), *rows[copy + 1 :]],
        schema=bars.schema,
        orient="row",
    )
    check = results(bars, DAYS[copy - 5 : copy + 5])["not_stale"]
    assert not check.passed
    assert check.metadata["repeated_days"].value == [DAYS[copy].isoformat()]
    # The repeat is the session before the days asked for: it is context, not a finding.
    assert inspect_bars(bars, DAYS[copy + 1 : copy + 5]).repeated == ()


def test_a_large_gap_warns_an_ambiguous_one_errs_and_a_listed_split_is_named() -> None:
    jump = 40
    days = DAYS[jump - 3 : jump + 3]
    # A 30% jump: beyond the threshold, far from any split ratio: a warning.
    moved = scale_from(good_bars(), jump, 1.3)
    check = results(moved, days)["overnight_gap"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["gap_days"].value == [DAYS[jump].isoformat()]
    assert check.metadata["unexplained_gap_days"].value == [DAYS[jump].isoformat()]
    assert check.metadata["largest_gap_log"].value == number(largest_move(moved, days))

    # Prices halve at an open with unchanged share volume: a 2:1 split or a crash; an error.
    halved = scale_from(good_bars(), jump, 0.5)
    check = results(halved, days)["overnight_gap"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description is not None and DAYS[jump].isoformat() in check.description
    assert len(check.metadata["ambiguous_gaps"].value) == 1

    # Listed as a split: named, so only the warning that a large gap happened remains.
    listed = [Split(DAYS[jump], 2.0, "table")]
    check = results(halved, days, listed)["overnight_gap"]
    assert check.severity == dg.AssetCheckSeverity.WARN and check.description is None
    assert check.metadata["detected_splits"].value == [
        {"date": DAYS[jump].isoformat(), "ratio": 2.0, "source": "table"}
    ]
    assert check.metadata["unexplained_gap_days"].value == []
