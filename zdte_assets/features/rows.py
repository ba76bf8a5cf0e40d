"""Causal feature rows for predicting a day's open-to-close return from its open.

The one property everything else rests on is that the row for trading day ``t`` can be computed
at 09:30 on ``t``: it is a function of the ``LOOKBACK`` bars ``t-LOOKBACK .. t-1`` plus
``open_t`` and nothing else. Both entry points enforce this by construction rather than by care:

* ``build_feature_frame`` cuts the bars into one window of exactly ``LOOKBACK`` prior bars per
  day (plus that day's open and weekday) and hands the windows to ``_window_features``;
* ``build_feature_row`` hands the same function a single window taken from the bars strictly
  before the requested day, and is never given any other value of that day than its open.

Because the two paths share one function on identical inputs, training rows and the live row
agree to the last bit, and a feature cannot quietly depend on history beyond the window: there
is no exponential average over the whole past, no cumulative sum, nothing recursive. Indicators
that are traditionally recursive are defined here as finite windows:

* MACD's exponential averages are truncated, renormalized exponential weights over
  ``MACD_EMA_WINDOW`` closes, and its signal line is the same kind of average over the last
  ``MACD_SIGNAL_WINDOW`` MACD values (41 + 20 - 1 = 60 bars, i.e. the whole window);
* RSI is Cutler's variant (simple sums of gains and losses over 14 changes) instead of
  Wilder's recursive smoothing;
* ATR is the simple mean of the last 14 true ranges.

Every feature is scale-free (log ratios, ratios to the previous close, z-scores, bounded
oscillators), so a model trained on one ticker or price level can be applied to another and a
split-adjustment factor does not change any feature.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from zdte_assets.features.volatility import garman_klass_terms, session_vol

if TYPE_CHECKING:
    from zdte_assets.data.adjustment import Split

MAX_LAGS = 5
#: Column holding the EWMA Garman-Klass forecast of the session's volatility (see `volatility`).
SESSION_VOL = "session_vol"
#: Exact number of prior bars every feature row is computed from.
LOOKBACK = 60

RV_SHORT = 5
RV_LONG = 20
RSI_WINDOW = 14
ATR_WINDOW = 14
VOLUME_WINDOW = 20
MA_WINDOW = 20
MOMENTUM_WINDOW = 20
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
#: MACD values (one per bar) averaged by the signal line.
MACD_SIGNAL_WINDOW = 20
#: Closes averaged by each of MACD's two exponential averages; sized so the oldest MACD value
#: the signal line needs still fits inside the window.
MACD_EMA_WINDOW = LOOKBACK - MACD_SIGNAL_WINDOW + 1
#: Below this standard deviation of log volume (relative differences of about 1e-9) the
#: volume z-score is defined as 0 instead of being rounding noise divided by rounding noise.
_MIN_LOG_VOLUME_STD = 1e-9

BASE_FEATURES: tuple[str, ...] = (
    "gap",
    "open_vs_ma20",
    "rv_cc_5",
    "rv_cc_20",
    "rv_parkinson_20",
    "rv_gk_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14",
    "volume_z_20",
    "mom_20",
    "gap_vol",
    "dow",
)

_PRICE_COLUMNS = ("open", "high", "low", "close")
_REQUIRED_COLUMNS = ("date", *_PRICE_COLUMNS, "volume")


def _lag_columns(n_lags: int) -> list[str]:
    return [f"ret_oc_lag{k}" for k in range(1, n_lags + 1)] + [
        f"ret_cc_lag{k}" for k in range(1, n_lags + 1)
    ]


def feature_columns(n_lags: int = MAX_LAGS) -> list[str]:
    """Model inputs for a given lag depth, so model selection can drop deep lags by name.

    Fewer than 2 lags is refused because a single lag leaves no autocorrelation structure to
    select from, and more than ``MAX_LAGS`` would need columns the frame does not have.
    """
    if isinstance(n_lags, bool) or not isinstance(n_lags, int) or not 2 <= n_lags <= MAX_LAGS:
        raise ValueError(f"n_lags must be an integer in [2, {MAX_LAGS}], got {n_lags!r}")
    return [*BASE_FEATURES, *_lag_columns(n_lags)]


def _ema_weights(span: int, length: int) -> np.ndarray:
    """Exponential weights (newest last) truncated to ``length`` and renormalized to sum to 1."""
    decay = 1.0 - 2.0 / (span + 1.0)
    weights = decay ** np.arange(length - 1, -1, -1, dtype=np.float64)
    out: NDArray[Any] = weights / weights.sum()
    return out


_W_FAST = _ema_weights(MACD_FAST, MACD_EMA_WINDOW)
_W_SLOW = _ema_weights(MACD_SLOW, MACD_EMA_WINDOW)
_W_SIGNAL = _ema_weights(MACD_SIGNAL, MACD_SIGNAL_WINDOW)


def _window_features(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    open_t: np.ndarray,
    dow: np.ndarray,
) -> dict[str, np.ndarray]:
    """All features for ``m`` days from their windows alone.

    ``o, h, lo, c, v`` have shape ``(m, LOOKBACK)``: row ``i`` holds the bars before day ``i``,
    oldest first. ``open_t`` and ``dow`` have shape ``(m,)``. Nothing else is in scope, which
    is what makes the no-look-ahead property structural.
    """
    prev_close = c[:, -1]
    r_oc = np.log(c / o)
    r_cc = np.log(c[:, 1:] / c[:, :-1])
    hl = np.log(h / lo)

    out: dict[str, np.ndarray] = {}
    gap = np.log(open_t / prev_close)
    out["gap"] = gap
    out["open_vs_ma20"] = np.log(open_t / c[:, -MA_WINDOW:].mean(axis=1))

    # Realized volatilities are zero-mean (root mean square), like Parkinson and Garman-Klass,
    # so the three estimators are comparable; daily units.
    out["rv_cc_5"] = np.sqrt(np.mean(r_cc[:, -RV_SHORT:] ** 2, axis=1))
    rv20 = np.sqrt(np.mean(r_cc[:, -RV_LONG:] ** 2, axis=1))
    out["rv_cc_20"] = rv20
    out["rv_parkinson_20"] = np.sqrt(np.mean(hl[:, -RV_LONG:] ** 2, axis=1) / (4.0 * math.log(2.0)))
    gk_terms = 0.5 * hl[:, -RV_LONG:] ** 2 - (2.0 * math.log(2.0) - 1.0) * r_oc[:, -RV_LONG:] ** 2
    # Non-negative for consistent bars (|log(C/O)| <= log(H/L)); the clip only guards bad input.
    out["rv_gk_20"] = np.sqrt(np.maximum(np.mean(gk_terms, axis=1), 0.0))
    # The session volatility forecast the predictive distribution is built on (not a model input).
    out[SESSION_VOL] = session_vol(garman_klass_terms(o, h, lo, c))

    diff = np.diff(c[:, -(RSI_WINDOW + 1) :], axis=1)
    gains = np.maximum(diff, 0.0).sum(axis=1)
    losses = np.maximum(-diff, 0.0).sum(axis=1)
    total = gains + losses
    rsi = np.full_like(total, 50.0)  # a flat window has no direction
    np.divide(100.0 * gains, total, out=rsi, where=total > 0)
    out["rsi_14"] = rsi

    closes = sliding_window_view(c, MACD_EMA_WINDOW, axis=1)  # (m, MACD_SIGNAL_WINDOW, EMA)
    ema_fast = (closes * _W_FAST).sum(axis=-1)
    ema_slow = (closes * _W_SLOW).sum(axis=-1)
    line = (ema_fast - ema_slow) / prev_close[:, None]
    macd = line[:, -1]
    signal = (line * _W_SIGNAL).sum(axis=1)
    out["macd"] = macd
    out["macd_signal"] = signal
    out["macd_hist"] = macd - signal

    prior_close = c[:, -(ATR_WINDOW + 1) : -1]
    true_range = np.maximum(h[:, -ATR_WINDOW:], prior_close) - np.minimum(
        lo[:, -ATR_WINDOW:], prior_close
    )
    out["atr_14"] = true_range.mean(axis=1) / prev_close

    out["volume_z_20"] = _volume_z(v[:, -VOLUME_WINDOW:])
    out["mom_20"] = np.log(prev_close / c[:, -(MOMENTUM_WINDOW + 1)])
    gap_vol = np.zeros_like(gap)
    np.divide(gap, rv20, out=gap_vol, where=rv20 > 0)
    out["gap_vol"] = gap_vol
    out["dow"] = dow.astype(np.float64)

    for k in range(1, MAX_LAGS + 1):
        out[f"ret_oc_lag{k}"] = r_oc[:, -k]
        out[f"ret_cc_lag{k}"] = r_cc[:, -k]
    return out


def _volume_z(vol: np.ndarray) -> np.ndarray:
    """z-score (ddof=1) of the last log volume against its window, finite by definition.

    A zero-volume day counts as the quietest positive day of the same window, which keeps the
    statistic invariant to the unit of volume (shares vs lots) where a fixed floor would not.
    An all-zero window or a window with no spread has z = 0: nothing is unusual.
    """
    positive = vol > 0
    floor = np.where(positive, vol, np.inf).min(axis=1)
    floor = np.where(np.isfinite(floor), floor, 1.0)
    log_vol = np.log(np.where(positive, vol, floor[:, None]))
    mean = log_vol.mean(axis=1)
    std = log_vol.std(axis=1, ddof=1)
    z = np.zeros_like(mean)
    np.divide(log_vol[:, -1] - mean, std, out=z, where=std > _MIN_LOG_VOLUME_STD)
    out: NDArray[Any] = z
    return out


def _arrays(bars: pl.DataFrame, what: str) -> tuple[pl.Series, dict[str, np.ndarray]]:
    """Dates and float arrays of a Bars frame, refusing input that would yield inf/NaN rows."""
    missing = [col for col in _REQUIRED_COLUMNS if col not in bars.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")
    dates = bars.get_column("date")
    if dates.dtype != pl.Date:
        dates = dates.cast(pl.Date)
    if dates.null_count():
        raise ValueError(f"{what}: null dates")
    if bars.height > 1 and not bool((dates.diff().drop_nulls().dt.total_days() > 0).all()):
        raise ValueError(f"{what}: dates must be strictly increasing")
    arrays: dict[str, np.ndarray] = {}
    for col in (*_PRICE_COLUMNS, "volume"):
        arr = bars.get_column(col).cast(pl.Float64).to_numpy()
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"{what}: column {col} has null, NaN or infinite values")
        if col == "volume":
            if (arr < 0).any():
                raise ValueError(f"{what}: negative volume")
        elif (arr <= 0).any():
            raise ValueError(f"{what}: column {col} has non-positive prices")
        arrays[col] = arr
    return dates, arrays


def _frame(dates: pl.Series, open_t: np.ndarray, feats: dict[str, np.ndarray]) -> pl.DataFrame:
    columns = feature_columns(MAX_LAGS)
    data: dict[str, pl.Series] = {
        "date": dates.alias("date"),
        "open": pl.Series("open", open_t, dtype=pl.Float64),
        SESSION_VOL: pl.Series(SESSION_VOL, feats[SESSION_VOL], dtype=pl.Float64),
    }
    for name in columns:
        data[name] = pl.Series(name, feats[name], dtype=pl.Float64)
    return pl.DataFrame(data)


def _empty_feature_frame() -> pl.DataFrame:
    schema = {"date": pl.Date, "open": pl.Float64, SESSION_VOL: pl.Float64} | {
        name: pl.Float64 for name in feature_columns(MAX_LAGS)
    }
    return pl.DataFrame(schema=schema)


def build_feature_frame(bars: pl.DataFrame) -> pl.DataFrame:
    """Feature rows for every bar that has ``LOOKBACK`` bars before it (training and backtests).

    The first ``LOOKBACK`` bars only serve as history and get no row, so every returned row is
    complete and finite. Columns: ``date``, ``open`` (of that day), ``session_vol`` (the
    volatility forecast, not a model input), then ``feature_columns(MAX_LAGS)``.
    """
    dates, arr = _arrays(bars, "build_feature_frame")
    n = bars.height
    if n <= LOOKBACK:
        return _empty_feature_frame()
    # Window i holds bars i .. i+LOOKBACK-1, i.e. the history of day i+LOOKBACK; the last bar
    # never lands in a window because no later day is in the frame.
    windows = {
        col: np.ascontiguousarray(sliding_window_view(values, LOOKBACK)[: n - LOOKBACK])
        for col, values in arr.items()
    }
    day_dates = dates.slice(LOOKBACK)
    dow = (day_dates.dt.weekday() - 1).to_numpy()
    open_t = arr["open"][LOOKBACK:]
    feats = _window_features(
        windows["open"],
        windows["high"],
        windows["low"],
        windows["close"],
        windows["volume"],
        open_t,
        dow,
    )
    return _frame(day_dates, open_t, feats)


def build_feature_row(history: pl.DataFrame, day: dt.date, open_t: float) -> pl.DataFrame:
    """The feature row of ``day`` as it is known at 09:30: prior bars plus the opening price.

    Only the last ``LOOKBACK`` bars dated strictly before ``day`` are read, so ``history`` may
    extend past ``day`` (as in a backtest over stored bars) without leaking anything.
    """
    try:
        price = float(open_t)
    except (TypeError, ValueError):
        price = math.nan
    if not math.isfinite(price) or price <= 0:
        raise ValueError(
            f"build_feature_row: open_t must be a positive finite price, got {open_t!r}"
        )
    if "date" not in history.columns:
        raise ValueError("build_feature_row: missing column(s) date")
    prior = history.filter(pl.col("date") < day).sort("date").tail(LOOKBACK)
    if prior.height < LOOKBACK:
        raise ValueError(
            f"build_feature_row: {day} needs {LOOKBACK} bars before it, history has {prior.height}"
        )
    _, arr = _arrays(prior, "build_feature_row")
    open_arr = np.array([price], dtype=np.float64)
    feats = _window_features(
        arr["open"][None, :],
        arr["high"][None, :],
        arr["low"][None, :],
        arr["close"][None, :],
        arr["volume"][None, :],
        open_arr,
        np.array([day.weekday()]),
    )
    return _frame(pl.Series("date", [day], dtype=pl.Date), open_arr, feats)


def target_frame(bars: pl.DataFrame) -> pl.DataFrame:
    """``date, target`` with target = log(close/open): the same-day return a 0-DTE trade earns."""
    dates, arr = _arrays(bars, "target_frame")
    return pl.DataFrame(
        {
            "date": dates.alias("date"),
            "target": pl.Series("target", np.log(arr["close"] / arr["open"]), dtype=pl.Float64),
        }
    )


def training_frame(bars: pl.DataFrame) -> pl.DataFrame:
    """Feature rows with their target, in date order.

    Rows carry their own day's target, so a model for day ``d`` must be fitted on rows with
    ``date < d`` only; selecting them is the caller's job.
    """
    return build_feature_frame(bars).join(
        target_frame(bars), on="date", how="inner", maintain_order="left"
    )


def feature_row_at_open(
    history: pl.DataFrame, day: dt.date, open_t: float, known: Sequence[Split] = ()
) -> pl.DataFrame:
    """The row of `day` as the 09:30 prediction sees it, with unadjusted splits taken out.

    Splits are detected on the LOOKBACK bars before `day` plus a stand-in bar for `day` that
    holds only `open_t` (high = low = close = open, no adj_close), so a split taking effect on
    `day` itself is seen in its overnight gap, the one fact of `day` known at the open. It is
    taken out only when listed in `known` (or shown by adj_close): at the open no volume can
    corroborate a gap yet (see `adjustment`).
    Features are scale-free, so rescaling the window to today's share count is all it takes.
    """
    from zdte_assets.data.adjustment import adjust_splits

    window = history.filter(pl.col("date") < day).sort("date").tail(LOOKBACK)
    stand_in = pl.DataFrame(
        {
            "date": [day],
            "open": [float(open_t)],
            "high": [float(open_t)],
            "low": [float(open_t)],
            "close": [float(open_t)],
            "volume": [0.0],
            "adj_close": [None],
        },
        schema={c: window.schema[c] for c in window.columns if c in _BAR_COLUMNS_WITH_ADJ},
    )
    combined = pl.concat([window.select(stand_in.columns), stand_in], how="vertical_relaxed")
    adjusted, _ = adjust_splits(combined, known)
    return build_feature_row(adjusted.filter(pl.col("date") < day), day, open_t)


_BAR_COLUMNS_WITH_ADJ = ("date", "open", "high", "low", "close", "volume", "adj_close")
