"""Synthetic daily bars with known answers, and a fast walk through the morning decision.

Defaults of the platform are chosen on series whose truth is known, never on the bundled
sample (see docs/quality.md):

* ``noise``: open-to-close returns with no predictable part; an honest platform never trades;
* ``signal``: a planted, learnable signal (the session return depends on the previous one);
  the gate must open and the trades must make money;
* ``regime``: volatility jumps by a factor mid-series; the predictive intervals must recover
  their coverage within a few weeks;
* ``split``: an unadjusted file with a 2:1 split (prices halve, share volume doubles);
* ``signal_regime``: the planted signal of ``signal`` throughout, and the volatility jump of
  ``regime`` at ``regime_at``: a series on which the platform must first learn to trade and
  then see its errors drift (the whole-path test's known answers).

Bars are built from a simulated intraday path (``STEPS`` log-price increments per session), so
high and low are consistent with open and close and range-based estimators behave as on real
bars. ``simulate`` runs the same domain functions as the replay (features, daily retraining,
calibration, significance gate, decision, outcome) without Dagster, MLflow or storage, so a test
can walk hundreds of sessions in seconds; it retrains every ``retrain_every`` sessions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from zdte_assets.core import calendar
from zdte_assets.core.records import ModelPointer, Prediction
from zdte_assets.data.adjustment import Split
from zdte_assets.features.rows import LOOKBACK, target_frame
from zdte_assets.model import fitting, lifecycle
from zdte_assets.model import params as model_params
from zdte_assets.trading.expiries import ExpiryCalendar
from zdte_assets.trading.predictions import (
    OUTCOME_SCHEMA,
    make_outcome,
    make_prediction,
    outcome_row,
)
from zdte_assets.trading.pricing import DecisionConfig

Scenario = Literal["noise", "signal", "regime", "split", "signal_regime"]
#: Intraday steps of the simulated path (one per 10 minutes of a regular session).
STEPS = 39


def synthetic_bars(
    scenario: Scenario,
    n: int = 500,
    *,
    seed: int = 0,
    start: dt.date = dt.date(2015, 1, 2),
    vol: float = 0.012,
    signal: float = 0.35,
    regime_at: int | None = None,
    regime_factor: float = 2.5,
    split_at: int | None = None,
) -> pl.DataFrame:
    """``n`` sessions of OHLCV bars (trading days from ``start``) for ``scenario``.

    ``signal`` is the coefficient of the previous session's return in today's (``signal`` and
    ``signal_regime`` scenarios); ``regime_factor`` multiplies the volatility from ``regime_at``
    (default: the middle) in the ``regime`` and ``signal_regime`` scenarios; ``split_at``
    (default: the middle) is where the ``split`` scenario's 2:1 split takes effect, the rows
    before it at the old share count.
    """
    rng = np.random.default_rng(seed)
    days = calendar.trading_days(start, start + dt.timedelta(days=2 * n + 30))[:n]
    sigma = np.full(n, vol)
    if scenario in ("regime", "signal_regime"):
        sigma[(n // 2 if regime_at is None else regime_at) :] *= regime_factor
    overnight = rng.normal(0.0, 0.3 * vol, n)
    steps = rng.normal(0.0, 1.0, (n, STEPS)) / math.sqrt(STEPS)
    o, h, lo, c = (np.empty(n) for _ in range(4))
    prev_close, prev_ret = 100.0, 0.0
    for i in range(n):
        drift = signal * prev_ret if scenario in ("signal", "signal_regime") else 0.0
        path = np.concatenate([[0.0], np.cumsum(sigma[i] * steps[i])]) + drift * np.linspace(
            0.0, 1.0, STEPS + 1
        )
        o[i] = prev_close * math.exp(overnight[i])
        prices = o[i] * np.exp(path)
        h[i], lo[i], c[i] = prices.max(), prices.min(), prices[-1]
        prev_ret = math.log(c[i] / o[i])
        prev_close = c[i]
    volume = np.round(5e6 * np.exp(rng.normal(0.0, 0.3, n)))
    bars = pl.DataFrame(
        {"date": days, "open": o, "high": h, "low": lo, "close": c, "volume": volume}
    ).with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
    if scenario == "split":
        at = n // 2 if split_at is None else split_at
        before = pl.int_range(pl.len()) < at
        bars = bars.with_columns(
            *(
                pl.when(before).then(pl.col(col) * 2.0).otherwise(pl.col(col)).alias(col)
                for col in ("open", "high", "low", "close")
            ),
            pl.when(before).then(pl.col("volume") / 2.0).otherwise(pl.col("volume")),
        )
    return bars


def simulate(
    bars: pl.DataFrame,
    first: int,
    *,
    params: model_params.ModelParams | None = None,
    config: DecisionConfig | None = None,
    ticker: str = "SPY",
    retrain_every: int = 5,
    known: Sequence[Split] = (),
) -> tuple[pl.DataFrame, list[Prediction]]:
    """Walk the sessions from index ``first`` on: the outcomes table and the prediction records.

    Each session sees only rows before it: the model is refitted (every ``retrain_every``
    sessions) and calibrated on labeled rows before the day, and the gate on the outcomes
    recorded before it. ``ticker`` chooses the expiry calendar (SPY: every day); ``known`` are
    listed splits (``ZDTE_SPLITS``). ``first`` must leave ``LOOKBACK`` bars plus the training
    window before it.
    """
    params = params or model_params.ModelParams()
    config = config or DecisionConfig()
    expiries = ExpiryCalendar()
    all_days = bars["date"].to_list()
    opens = dict(zip(all_days, bars["open"].to_list(), strict=True))
    # Every row as the 09:30 path builds it (splits taken out only where known by then).
    features = lifecycle.feature_frame(bars, opens, all_days[LOOKBACK:], known)
    rows = features.join(target_frame(bars), on="date", how="inner")
    days: Sequence[dt.date] = all_days[first:]
    past = pl.DataFrame(schema=OUTCOME_SCHEMA)
    records: list[Prediction] = []
    closes = dict(zip(all_days, bars["close"].to_list(), strict=True))
    model = None
    for i, day in enumerate(days):
        if model is None or i % retrain_every == 0:
            model = fitting.train_daily(rows, params, before=day)
        # No registry here: the pointer names what a registered version would be (the record
        # checks these fields' form).
        before = calendar.previous_trading_day(day)
        info = ModelPointer(
            ticker=ticker,
            day=day,
            model_version=str(i),
            model_uri=f"models:/zdte-{ticker}/{i}",
            mlflow_run_id="synthetic",
            tuned_as_of=before,
            tuned_run_id="synthetic",
            beats_naive=False,
            params=params.to_dict(),
            features=model.features,
            sigma=model.sigma,
            shrinkage=model.shrinkage,
            train_first=dt.date.fromisoformat(model.diagnostics["train_start"]),
            train_last=dt.date.fromisoformat(model.diagnostics["train_end"]),
        )
        record = make_prediction(
            ticker=ticker,
            day=day,
            open_price=float(opens[day]),
            feature_row=rows.filter(pl.col("date") == day).drop(model_params.TARGET),
            model=model,
            model_info=info,
            decision_config=config,
            expiries=expiries,
            past=past,
        )
        outcome = make_outcome(record, float(closes[day]), None)
        past = pl.concat([past, outcome_row(outcome)])
        records.append(record)
    return past, records


__all__ = ["Scenario", "simulate", "synthetic_bars"]
