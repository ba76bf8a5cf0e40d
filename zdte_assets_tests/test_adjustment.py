"""Split detection and adjustment on synthetic unadjusted series and on the sample."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zdte_assets.core.calendar import trading_days
from zdte_assets.data.adjustment import (
    GAP_RATIOS,
    MIN_VOLUME_SESSIONS,
    AmbiguousGap,
    Split,
    adjust_splits,
    ambiguous_gaps,
    overnight_gaps,
)
from zdte_assets.data.market_data import SampleSource

DAYS = trading_days(dt.date(2021, 1, 4), dt.date(2022, 6, 30))


def true_series(n: int = 300, seed: int = 42) -> pl.DataFrame:
    """Split-free bars at today's share count: small overnight and intraday moves."""
    rng = np.random.default_rng(seed)
    overnight = rng.normal(0, 0.004, n)
    intraday = rng.normal(0, 0.012, n)
    close = np.empty(n)
    open_ = np.empty(n)
    prev = 40.0
    for i in range(n):
        open_[i] = prev * math.exp(overnight[i])
        close[i] = open_[i] * math.exp(intraday[i])
        prev = close[i]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    # Share volume varies about 30% (in log) from day to day, as for a large stock.
    volume = np.round(5e6 * np.exp(rng.normal(0, 0.3, n)))
    return pl.DataFrame(
        {
            "date": DAYS[:n],
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "adj_close": pl.Series([None] * n, dtype=pl.Float64),
        }
    )


def unadjust(bars: pl.DataFrame, splits: dict[int, float]) -> pl.DataFrame:
    """What a raw file shows: rows before each split at the old share count."""
    factor = np.ones(bars.height)
    for index, ratio in splits.items():
        factor[:index] *= ratio
    f = pl.Series(factor)
    return bars.with_columns(
        *(pl.col(c) * f for c in ("open", "high", "low", "close")),
        pl.col("volume") / f,
    )


def log_cc_returns(bars: pl.DataFrame) -> np.ndarray:
    close = bars["close"].to_numpy()
    return np.log(close[1:] / close[:-1])


def test_forward_and_reverse_splits_are_detected_and_adjusted() -> None:
    truth = true_series()
    raw = unadjust(truth, {100: 2.0, 200: 0.1})
    # The raw series really is poisoned: two huge close-to-close moves.
    assert np.sort(np.abs(log_cc_returns(raw)))[-2] > 0.6

    adjusted, splits = adjust_splits(raw)

    assert splits == [
        Split(date=DAYS[100], ratio=2.0, source="gap+volume"),
        Split(date=DAYS[200], ratio=0.1, source="gap+volume"),
    ]
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(adjusted[c].to_numpy(), truth[c].to_numpy(), rtol=1e-12)
    returns = log_cc_returns(adjusted)
    assert np.abs(returns).max() < 0.1
    assert np.abs(returns[[98, 99, 100, 198, 199, 200]]).max() < 0.1


def test_latest_prices_are_unchanged() -> None:
    raw = unadjust(true_series(), {150: 4.0})
    adjusted, _ = adjust_splits(raw)
    assert adjusted.slice(150).equals(raw.slice(150))
    assert adjusted.columns == raw.columns
    assert adjusted.schema == raw.schema


def test_split_on_a_day_with_an_ordinary_overnight_move_is_still_found() -> None:
    truth = true_series()
    # A +3% overnight move on the split day itself.
    moved = truth.with_columns(
        pl.when(pl.int_range(pl.len()) >= 120).then(pl.col(c) * 1.03).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    )
    _, splits = adjust_splits(unadjust(moved, {120: 3.0}))
    assert splits == [Split(date=DAYS[120], ratio=3.0, source="gap+volume")]


def test_adjustment_is_idempotent() -> None:
    adjusted, splits = adjust_splits(unadjust(true_series(), {60: 5.0, 240: 1 / 8}))
    assert len(splits) == 2
    again, none = adjust_splits(adjusted)
    assert none == []
    assert again.equals(adjusted)


def test_nothing_is_detected_on_the_sample() -> None:
    bars = SampleSource().bars("AAPL", dt.date(2019, 1, 1), dt.date(2024, 12, 31))
    adjusted, splits = adjust_splits(bars)
    assert splits == []
    assert adjusted.equals(bars)
    # Also by gaps alone: the 2020-08-31 4:1 split is already in the sample's prices.
    _, by_gap = adjust_splits(bars.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close")))
    assert by_gap == []


def with_adj_close(truth: pl.DataFrame, dividend_days: dict[int, float]) -> pl.DataFrame:
    """adj_close = split-adjusted close times a backward dividend factor, as vendors publish it."""
    factor = np.ones(truth.height)
    for index, fraction in dividend_days.items():
        factor[:index] *= 1 - fraction
    return truth.with_columns((pl.col("close") * pl.Series(factor)).alias("adj_close"))


def test_adj_close_detects_a_three_for_two_split_that_the_gap_cannot() -> None:
    truth = with_adj_close(true_series(), {50: 0.006, 110: 0.006, 170: 0.006})
    raw = unadjust(truth, {130: 1.5}).with_columns(truth["adj_close"])

    adjusted, splits = adjust_splits(raw)
    assert splits == [Split(date=DAYS[130], ratio=1.5, source="adj_close")]
    np.testing.assert_allclose(adjusted["close"].to_numpy(), truth["close"].to_numpy(), rtol=1e-12)
    # adj_close is only evidence: it is returned untouched, never copied into the prices.
    assert adjusted["adj_close"].equals(raw["adj_close"])
    assert adjust_splits(adjusted)[1] == []

    # Without adj_close a -33% gap is indistinguishable from a crash: documented limit.
    no_adj = raw.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
    assert adjust_splits(no_adj)[1] == []


def test_adj_close_prevents_a_crash_from_being_taken_for_a_split() -> None:
    truth = true_series()
    crashed = truth.with_columns(
        pl.when(pl.int_range(pl.len()) >= 90).then(pl.col(c) * 0.5).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    )
    # Gap alone: a -50% overnight crash looks exactly like 2:1, but the share volume did not
    # double, so it is not adjusted; it is named as ambiguous instead.
    assert adjust_splits(crashed)[1] == []
    assert [(a.date, a.ratio) for a in ambiguous_gaps(crashed)] == [(DAYS[90], 2.0)]
    # With adj_close, the close/adj_close factor does not jump, so nothing is adjusted.
    with_adj = with_adj_close(crashed, {40: 0.005})
    adjusted, splits = adjust_splits(with_adj)
    assert splits == []
    assert adjusted.equals(with_adj)


def test_adj_close_route_rounds_to_the_nearest_plausible_ratio() -> None:
    truth = with_adj_close(true_series(), {200: 0.02})
    # A dividend on the split day itself blurs the factor jump by 2%.
    raw = unadjust(truth, {200: 4.0}).with_columns(truth["adj_close"])
    _, splits = adjust_splits(raw)
    assert splits == [Split(date=DAYS[200], ratio=4.0, source="adj_close")]


def test_overnight_gaps_flags_only_large_gaps() -> None:
    raw = unadjust(true_series(), {100: 2.0})
    opens = raw["open"].to_list()
    closes = raw["close"].to_list()
    expected = [
        (DAYS[i], math.log(opens[i] / closes[i - 1]))
        for i in range(1, raw.height)
        if abs(math.log(opens[i] / closes[i - 1])) > math.log(1.01)
    ]
    out = overnight_gaps(raw, threshold=0.01)
    assert out.columns == ["date", "gap"]
    assert out["date"].to_list() == [d for d, _ in expected]
    assert out["gap"].to_list() == pytest.approx([g for _, g in expected])
    assert overnight_gaps(raw)["date"].to_list() == [DAYS[100]]
    assert overnight_gaps(adjust_splits(raw)[0]).height == 0


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    ratio=st.sampled_from(GAP_RATIOS),
    index=st.integers(min_value=MIN_VOLUME_SESSIONS, max_value=120 - MIN_VOLUME_SESSIONS),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_any_whole_number_split_is_recovered(ratio: float, index: int, seed: int) -> None:
    truth = true_series(120, seed=seed)
    adjusted, splits = adjust_splits(unadjust(truth, {index: ratio}))
    assert splits == [Split(date=DAYS[index], ratio=ratio, source="gap+volume")]
    np.testing.assert_allclose(adjusted["close"].to_numpy(), truth["close"].to_numpy(), rtol=1e-9)


def _crash(truth: pl.DataFrame, index: int, volume_path: list[float]) -> pl.DataFrame:
    """Prices halve at the open of `index`; share volume follows `volume_path` from there."""
    mult = np.ones(truth.height)
    mult[index : index + len(volume_path)] = volume_path
    return truth.with_columns(
        *(
            pl.when(pl.int_range(pl.len()) >= index).then(pl.col(c) * 0.5).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close")
        ),
        pl.col("volume") * pl.Series(mult),
    )


def test_a_true_split_and_a_crash_of_the_same_size_are_told_apart() -> None:
    truth = true_series()
    split = unadjust(truth, {150: 2.0})
    # A panic: eight times the usual share volume on the day, four times for two weeks after.
    crash = _crash(truth, 150, [8.0] + [4.0] * 12)
    gap_split = math.log(split["open"][150] / split["close"][149])
    gap_crash = math.log(crash["open"][150] / crash["close"][149])
    assert gap_split == pytest.approx(gap_crash)  # prices alone cannot tell them apart

    adjusted, splits = adjust_splits(split)
    assert splits == [Split(date=DAYS[150], ratio=2.0, source="gap+volume")]
    np.testing.assert_allclose(adjusted["close"].to_numpy(), truth["close"].to_numpy(), rtol=1e-12)
    assert ambiguous_gaps(split) == []

    kept, none = adjust_splits(crash)
    assert none == [] and kept.equals(crash)
    (amb,) = ambiguous_gaps(crash)
    assert (amb.date, amb.ratio) == (DAYS[150], 2.0)
    assert amb.volume_ratio is not None and amb.volume_ratio > 2.0 * 1.5
    assert "ZDTE_SPLITS" in amb.message() and str(DAYS[150]) in amb.message()


def test_the_split_table_settles_what_the_volume_cannot() -> None:
    crash_like = _crash(true_series(), 150, [8.0] + [4.0] * 12)
    listed = [Split(DAYS[150], 2.0, "table")]
    adjusted, splits = adjust_splits(crash_like, listed)
    assert splits == listed
    assert overnight_gaps(adjusted).height == 0
    assert ambiguous_gaps(crash_like, listed) == []


def test_a_split_on_the_last_session_is_ambiguous_until_volume_follows() -> None:
    raw = unadjust(true_series(), {299: 2.0})
    assert adjust_splits(raw)[1] == []
    (amb,) = ambiguous_gaps(raw)
    assert amb == AmbiguousGap(DAYS[299], 2.0, amb.gap_log, None)
    assert "no volume after it yet" in amb.message()


def test_the_overnight_gap_check_fails_on_an_ambiguous_gap_and_names_it() -> None:
    import dagster as dg

    from zdte_assets.orchestration.checks import bar_check_results

    key = dg.AssetKey(["XYZ", "daily_bar"])
    crash = _crash(true_series(), 150, [8.0] + [4.0] * 12)
    days = DAYS[140:160]
    (gap,) = [r for r in bar_check_results(key, crash, days, []) if r.check_name == "overnight_gap"]
    assert not gap.passed and gap.severity == dg.AssetCheckSeverity.ERROR
    assert gap.description is not None and str(DAYS[150]) in gap.description
    listed = [Split(DAYS[150], 2.0, "table")]
    (ok,) = [
        r for r in bar_check_results(key, crash, days, listed) if r.check_name == "overnight_gap"
    ]
    # Listed: a split, so only the warning that a large gap happened remains.
    assert ok.severity == dg.AssetCheckSeverity.WARN and ok.description is None
