"""Feature tests, led by the property users rely on: a day's row never sees that day's outcome.

Expected values are recomputed here from the definitions with plain Python loops and the
``math``/``statistics`` modules, never copied from the module's output.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

import hvsampledata
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zdte_assets.features import rows as F
from zdte_assets.features.rows import (
    BASE_FEATURES,
    LOOKBACK,
    MAX_LAGS,
    build_feature_frame,
    build_feature_row,
    feature_columns,
    target_frame,
    training_frame,
)

ALL_FEATURES = feature_columns(MAX_LAGS)
# Features that legitimately read open_t; every other one must ignore it.
OPEN_DEPENDENT = {"gap", "open_vs_ma20", "gap_vol"}


def _weekdays(n: int, start: dt.date = dt.date(2021, 1, 4)) -> list[dt.date]:
    out: list[dt.date] = []
    day = start
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def _bars_from_paths(
    p0: float,
    overnight: np.ndarray,
    intraday: np.ndarray,
    up: np.ndarray,
    down: np.ndarray,
    volume: np.ndarray,
) -> pl.DataFrame:
    """Consistent OHLC bars: open follows the previous close by the overnight log return."""
    n = len(overnight)
    opens = np.empty(n)
    closes = np.empty(n)
    prev = p0
    for i in range(n):
        opens[i] = prev * math.exp(overnight[i])
        closes[i] = opens[i] * math.exp(intraday[i])
        prev = closes[i]
    highs = np.maximum(opens, closes) * np.exp(up)
    lows = np.minimum(opens, closes) * np.exp(-down)
    return pl.DataFrame(
        {
            "date": pl.Series(_weekdays(n), dtype=pl.Date),
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": np.asarray(volume, dtype=np.float64),
            "adj_close": pl.Series([None] * n, dtype=pl.Float64),
        }
    )


def _random_bars(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return _bars_from_paths(
        float(rng.uniform(5, 500)),
        rng.normal(0, 0.01, n),
        rng.normal(0, 0.015, n),
        rng.exponential(0.005, n),
        rng.exponential(0.005, n),
        np.round(rng.lognormal(15, 0.5, n)),
    )


def _row_of(frame: pl.DataFrame, day: dt.date) -> dict[str, float]:
    rows = frame.filter(pl.col("date") == day)
    assert rows.height == 1, f"no single row for {day}"
    return rows.select(ALL_FEATURES).row(0, named=True)


def _set(bars: pl.DataFrame, col: str, idx: int, value: float) -> pl.DataFrame:
    values = bars.get_column(col).to_numpy().copy()
    values[idx] = value
    return bars.with_columns(pl.Series(col, values, dtype=pl.Float64))


def _scramble(
    bars: pl.DataFrame, t: int, rng: np.random.Generator, today: bool, future: bool
) -> pl.DataFrame:
    """Replace what day t cannot know at 09:30: its high/low/close/volume and later bars."""
    o = bars["open"].to_numpy().copy()
    h = bars["high"].to_numpy().copy()
    lo = bars["low"].to_numpy().copy()
    c = bars["close"].to_numpy().copy()
    v = bars["volume"].to_numpy().copy()
    start = t if today else t + 1
    stop = len(o) if future else t + 1
    for i in range(start, stop):
        if i > t:
            o[i] = c[i - 1] * math.exp(rng.normal(0, 0.05))
        c[i] = o[i] * math.exp(rng.normal(0, 0.05))
        h[i] = max(o[i], c[i]) * math.exp(rng.exponential(0.02))
        lo[i] = min(o[i], c[i]) * math.exp(-rng.exponential(0.02))
        v[i] = 0.0 if rng.random() < 0.2 else float(rng.integers(1, 10**9))
    return bars.with_columns(
        pl.Series("open", o),
        pl.Series("high", h),
        pl.Series("low", lo),
        pl.Series("close", c),
        pl.Series("volume", v),
    )


@st.composite
def bar_series(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(LOOKBACK + 1, LOOKBACK + 20))

    def arr(elements: st.SearchStrategy[float]) -> np.ndarray:
        return draw(hnp.arrays(np.float64, n, elements=elements))

    returns = st.floats(-0.1, 0.1, allow_nan=False)
    wicks = st.floats(0.0, 0.05, allow_nan=False)
    volume = st.one_of(st.just(0.0), st.integers(1, 10**9).map(float))
    return _bars_from_paths(
        draw(st.floats(0.5, 2000.0)),
        arr(returns),
        arr(returns),
        arr(wicks),
        arr(wicks),
        arr(volume),
    )


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    # Shrinking arrays of ~80 bars takes minutes; the unshrunk failing example is enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    bars=bar_series(),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    what=st.sampled_from(["today", "future", "both"]),
    open_shift=st.floats(0.001, 0.2).flatmap(lambda x: st.sampled_from([x, -x])),
)
def test_no_look_ahead(
    bars: pl.DataFrame, data: st.DataObject, seed: int, what: str, open_shift: float
) -> None:
    n = bars.height
    t = data.draw(st.integers(LOOKBACK, n - 1), label="t")
    day = bars["date"][t]
    open_t = float(bars["open"][t])
    changed = _scramble(
        bars, t, np.random.default_rng(seed), today=what != "future", future=what != "today"
    )

    # (a) the vectorized frame: day t's row ignores its own outcome and everything later.
    before = _row_of(build_feature_frame(bars), day)
    after = _row_of(build_feature_frame(changed), day)
    assert before == after

    # (a) the single-row path, even when handed the changed day t and the changed future.
    row_clean = build_feature_row(bars.slice(0, t), day, open_t)
    row_changed = build_feature_row(changed, day, open_t)
    assert row_clean.equals(row_changed)

    # (c) both paths agree.
    row = row_changed.select(ALL_FEATURES).row(0, named=True)
    np.testing.assert_allclose(
        [row[c] for c in ALL_FEATURES], [before[c] for c in ALL_FEATURES], rtol=0, atol=1e-12
    )
    assert row_changed["open"][0] == open_t
    assert row_changed["date"][0] == day

    # (b) open_t does matter, through gap, and only through the features meant to read it.
    shifted_open = open_t * math.exp(open_shift)
    shifted = build_feature_row(bars, day, shifted_open).row(0, named=True)
    assert shifted["gap"] != row["gap"]
    assert shifted["gap"] - row["gap"] == pytest.approx(open_shift, abs=1e-9)
    assert all(shifted[c] == row[c] for c in ALL_FEATURES if c not in OPEN_DEPENDENT)
    in_frame = _row_of(build_feature_frame(_set(bars, "open", t, shifted_open)), day)
    assert in_frame["gap"] == pytest.approx(shifted["gap"], abs=1e-12)


def test_window_is_exactly_lookback_bars() -> None:
    """The bar just outside the window is ignored; the oldest bar inside it is used."""
    bars = _random_bars(LOOKBACK + 10, seed=3)
    t = LOOKBACK + 5
    day = bars["date"][t]
    base = _row_of(build_feature_frame(bars), day)

    outside = t - LOOKBACK - 1
    for col in ("open", "high", "low", "close", "volume"):
        bumped = _set(bars, col, outside, float(bars[col][outside]) * 1.5)
        assert _row_of(build_feature_frame(bumped), day) == base

    oldest = t - LOOKBACK
    lowered = bars["low"][oldest]
    bumped = _set(bars, "close", oldest, float(lowered))  # keeps the bar consistent
    assert _row_of(build_feature_frame(bumped), day) != base


def test_build_feature_row_uses_only_prior_bars_and_needs_enough() -> None:
    bars = _random_bars(LOOKBACK + 3, seed=5)
    day = bars["date"][LOOKBACK]
    row = build_feature_row(bars, day, float(bars["open"][LOOKBACK]))
    assert row.columns == ["date", "open", "session_vol", *ALL_FEATURES]
    assert all(row.schema[c] == pl.Float64 for c in ["open", *ALL_FEATURES])

    with pytest.raises(ValueError, match=f"needs {LOOKBACK} bars"):
        build_feature_row(bars, bars["date"][LOOKBACK - 1], 100.0)
    # a day later than the history still works and uses the last LOOKBACK bars
    later = bars["date"][-1] + dt.timedelta(days=3)
    expected = build_feature_row(bars.tail(LOOKBACK), later, 100.0)
    assert build_feature_row(bars, later, 100.0).equals(expected)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="open_t"):
            build_feature_row(bars, day, bad)


def test_scale_free() -> None:
    bars = _random_bars(LOOKBACK + 40, seed=11)
    base = build_feature_frame(bars)
    factor = 37.3
    scaled = bars.with_columns(pl.col(c) * factor for c in ("open", "high", "low", "close"))
    scaled_frame = build_feature_frame(scaled)
    np.testing.assert_allclose(
        scaled_frame.select(ALL_FEATURES).to_numpy(),
        base.select(ALL_FEATURES).to_numpy(),
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(scaled_frame["open"].to_numpy(), base["open"].to_numpy() * factor)

    more_volume = build_feature_frame(bars.with_columns(pl.col("volume") * 1000.0))
    np.testing.assert_allclose(
        more_volume["volume_z_20"].to_numpy(), base["volume_z_20"].to_numpy(), rtol=0, atol=1e-10
    )
    others = [c for c in ALL_FEATURES if c != "volume_z_20"]
    assert more_volume.select(others).equals(base.select(others))


def test_volume_z_defined_for_zero_volume_and_zero_spread() -> None:
    n = LOOKBACK + 3
    bars = _random_bars(n, seed=13)
    vol = np.full(n, 1000.0)
    flat = build_feature_frame(bars.with_columns(pl.Series("volume", vol)))
    assert (flat["volume_z_20"] == 0.0).all()
    zero = build_feature_frame(bars.with_columns(pl.Series("volume", np.zeros(n))))
    assert (zero["volume_z_20"] == 0.0).all()

    # A zero-volume day counts as the quietest positive day of its window.
    rng = np.random.default_rng(0)
    vol = rng.integers(1000, 5000, n).astype(float)
    t = n - 1
    window = list(range(t - 20, t))
    vol[window[3]] = 0.0
    vol[window[-1]] = 0.0
    frame = build_feature_frame(bars.with_columns(pl.Series("volume", vol)))
    positive = [vol[i] for i in window if vol[i] > 0]
    logs = [math.log(vol[i]) if vol[i] > 0 else math.log(min(positive)) for i in window]
    expected = (logs[-1] - statistics.fmean(logs)) / statistics.stdev(logs)
    assert frame["volume_z_20"][-1] == pytest.approx(expected, rel=1e-10)
    assert expected < 0


def _ema(values: list[float], span: int) -> float:
    """Truncated exponential average, newest value last, weights renormalized to 1."""
    decay = 1 - 2 / (span + 1)
    num = den = 0.0
    for age, value in enumerate(reversed(values)):
        num += decay**age * value
        den += decay**age
    return num / den


def _expected_row(bars: pl.DataFrame, t: int) -> dict[str, float]:
    o, h, lo, c, v = (bars[col].to_list() for col in ("open", "high", "low", "close", "volume"))
    day: dt.date = bars["date"][t]
    ln2 = math.log(2)
    prior = range(t - 20, t)
    out: dict[str, float] = {"gap": math.log(o[t] / c[t - 1])}
    for k in range(1, MAX_LAGS + 1):
        out[f"ret_oc_lag{k}"] = math.log(c[t - k] / o[t - k])
        out[f"ret_cc_lag{k}"] = math.log(c[t - k] / c[t - k - 1])
    out["rv_cc_5"] = math.sqrt(sum(math.log(c[j] / c[j - 1]) ** 2 for j in range(t - 5, t)) / 5)
    out["rv_cc_20"] = math.sqrt(sum(math.log(c[j] / c[j - 1]) ** 2 for j in prior) / 20)
    out["rv_parkinson_20"] = math.sqrt(
        sum(math.log(h[j] / lo[j]) ** 2 for j in prior) / (20 * 4 * ln2)
    )
    out["rv_gk_20"] = math.sqrt(
        sum(
            0.5 * math.log(h[j] / lo[j]) ** 2 - (2 * ln2 - 1) * math.log(c[j] / o[j]) ** 2
            for j in prior
        )
        / 20
    )
    up = down = 0.0
    for j in range(t - 14, t):
        change = c[j] - c[j - 1]
        up += max(change, 0.0)
        down += max(-change, 0.0)
    out["rsi_14"] = 100 * up / (up + down)
    out["atr_14"] = (
        sum(max(h[j], c[j - 1]) - min(lo[j], c[j - 1]) for j in range(t - 14, t)) / 14 / c[t - 1]
    )
    out["open_vs_ma20"] = math.log(o[t] / statistics.fmean(c[j] for j in prior))
    out["mom_20"] = math.log(c[t - 1] / c[t - 21])
    logv = [math.log(v[j]) for j in prior]
    out["volume_z_20"] = (logv[-1] - statistics.fmean(logv)) / statistics.stdev(logv)
    out["gap_vol"] = out["gap"] / out["rv_cc_20"]
    out["dow"] = float(day.weekday())
    # MACD: each line value uses the 41 closes ending at its bar; the signal averages 20 of them.
    line = []
    for end in range(t - 20, t):
        closes = c[end - 40 : end + 1]
        line.append((_ema(closes, 12) - _ema(closes, 26)) / c[t - 1])
    out["macd"] = line[-1]
    out["macd_signal"] = _ema(line, 9)
    out["macd_hist"] = line[-1] - out["macd_signal"]
    return out


def test_features_match_independent_recomputation() -> None:
    bars = _random_bars(LOOKBACK + 6, seed=7)
    frame = build_feature_frame(bars)
    assert set(_expected_row(bars, LOOKBACK)) == set(ALL_FEATURES)
    for t in (LOOKBACK, LOOKBACK + 3, LOOKBACK + 5):
        got = _row_of(frame, bars["date"][t])
        want = _expected_row(bars, t)
        for name in ALL_FEATURES:
            assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


def test_rsi_flat_window_is_neutral_and_bounds() -> None:
    n = LOOKBACK + 2
    bars = _bars_from_paths(
        50.0, np.zeros(n), np.zeros(n), np.full(n, 0.01), np.full(n, 0.01), np.full(n, 1e6)
    )
    frame = build_feature_frame(bars)
    assert (frame["rsi_14"] == 50.0).all()
    assert (frame["gap_vol"] == 0.0).all()
    rising = _bars_from_paths(
        50.0, np.zeros(n), np.full(n, 0.01), np.zeros(n), np.zeros(n), np.full(n, 1e6)
    )
    assert (build_feature_frame(rising)["rsi_14"] == 100.0).all()


def test_sample_data_frame_is_complete() -> None:
    bars = hvsampledata.apple_stocks("polars")
    frame = build_feature_frame(bars)
    assert frame.columns == ["date", "open", "session_vol", *ALL_FEATURES]
    assert frame.height == bars.height - LOOKBACK
    assert frame["date"][0] == bars["date"][LOOKBACK]
    values = frame.select(ALL_FEATURES).to_numpy()
    assert frame.null_count().sum_horizontal()[0] == 0
    assert np.isfinite(values).all()
    assert all(frame.schema[c] == pl.Float64 for c in ["open", *ALL_FEATURES])

    # The live path reproduces the training rows.
    for i in range(0, frame.height, 97):
        day = frame["date"][i]
        row = build_feature_row(bars, day, float(frame["open"][i]))
        assert row.row(0) == frame.row(i)

    train = training_frame(bars)
    assert train.columns == [*frame.columns, "target"]
    assert train["date"].equals(frame["date"])
    target = np.log(bars["close"].to_numpy() / bars["open"].to_numpy())[LOOKBACK:]
    np.testing.assert_array_equal(train["target"].to_numpy(), target)
    # today's target is tomorrow's first lag
    np.testing.assert_array_equal(
        train["target"].to_numpy()[:-1], train["ret_oc_lag1"].to_numpy()[1:]
    )


def test_target_frame() -> None:
    bars = _random_bars(10, seed=2)
    tf = target_frame(bars)
    assert tf.columns == ["date", "target"]
    for i in range(bars.height):
        assert tf["target"][i] == pytest.approx(math.log(bars["close"][i] / bars["open"][i]))


def test_short_or_invalid_input() -> None:
    short = build_feature_frame(_random_bars(LOOKBACK, seed=1))
    assert short.height == 0
    assert short.columns == ["date", "open", "session_vol", *ALL_FEATURES]

    bars = _random_bars(LOOKBACK + 2, seed=1)
    with pytest.raises(ValueError, match="strictly increasing"):
        build_feature_frame(bars.reverse())
    with pytest.raises(ValueError, match="non-positive"):
        build_feature_frame(_set(bars, "low", 4, 0.0))
    with pytest.raises(ValueError, match="NaN"):
        build_feature_frame(_set(bars, "close", 4, float("nan")))
    with pytest.raises(ValueError, match="volume"):
        build_feature_frame(bars.drop("volume"))


def test_feature_columns() -> None:
    lags = [f"ret_oc_lag{k}" for k in range(1, MAX_LAGS + 1)]
    lags += [f"ret_cc_lag{k}" for k in range(1, MAX_LAGS + 1)]
    assert feature_columns() == [*BASE_FEATURES, *lags]
    two = feature_columns(2)
    assert two == [*BASE_FEATURES, "ret_oc_lag1", "ret_oc_lag2", "ret_cc_lag1", "ret_cc_lag2"]
    assert len(set(feature_columns())) == len(feature_columns())
    for bad in (0, 1, MAX_LAGS + 1):
        with pytest.raises(ValueError):
            feature_columns(bad)
    assert F.MACD_EMA_WINDOW + F.MACD_SIGNAL_WINDOW - 1 == LOOKBACK
