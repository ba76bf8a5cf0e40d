"""Prediction records: how the morning answer is built, published to storage and read back.

Layout under `ZDTE_STORAGE_URL` (a local directory or `s3://bucket/prefix`):

* `predictions/{TICKER}/{YYYY-MM-DD}.json` - one object per day (schema below, `schema_version`);
* `predictions/{TICKER}.parquet` - every prediction of that ticker, one row per day.

Both are written atomically (see `storage`), JSON first, so a reader never sees a partial object
and the table never lists a day whose JSON is missing. Readers need no Dagster: plain boto3,
polars or `read_prediction` below.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl

from zdte_assets import calendar, pricing, storage
from zdte_assets.expiries import ExpiryCalendar
from zdte_assets.training import FittedModel, predictive_distribution

SCHEMA_VERSION = 1
#: Central interval reported with every prediction.
INTERVAL_LEVEL = 0.9
#: The daily volatility the option premium is priced from: Garman-Klass over 20 sessions
#: (range-based, so it measures intraday open-to-close movement, which is what a 0-DTE option
#: bought at the open lives through).
VOL_FEATURE = "rv_gk_20"


class PredictionNotFound(LookupError):
    """No prediction stored for that ticker and day."""


def json_key(ticker: str, day: dt.date | str) -> str:
    return f"predictions/{ticker.upper()}/{day if isinstance(day, str) else day.isoformat()}.json"


def table_key(ticker: str) -> str:
    return f"predictions/{ticker.upper()}.parquet"


class StudentTPredictive:
    """Adapter giving pricing the model's Student-t forecast (fatter tails than a normal)."""

    def __init__(self, mean: float, sigma: float, df: float | None) -> None:
        self.dist = predictive_distribution(mean, sigma, df)

    def _ppf(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.dist.quantile(u), dtype=float)  # type: ignore[arg-type]

    def expected_payoff(self, kind: pricing.OptionKind, strike: float, spot: float) -> float:
        return pricing.expected_payoff_from_ppf(kind, strike, spot, self._ppf)

    def p_itm(self, kind: pricing.OptionKind, strike: float, spot: float) -> float:
        p_above = self.dist.prob_above(math.log(strike / spot))
        return p_above if kind == "call" else 1.0 - p_above


def make_prediction(
    *,
    ticker: str,
    day: dt.date,
    open_price: float,
    feature_row: pl.DataFrame,
    model: FittedModel,
    model_info: dict[str, Any],
    decision_config: pricing.DecisionConfig,
    expiries: ExpiryCalendar,
) -> dict[str, Any]:
    """The record for `day`: only the open, the causal feature row and the model trained before `day`."""
    if feature_row.height != 1 or feature_row["date"][0] != day:
        raise ValueError(f"prediction for {day} needs exactly the feature row of {day}")
    if not open_price > 0:
        raise ValueError(f"prediction for {day}: open {open_price} is not a positive price")
    mean = float(model.predict(feature_row)[0])
    dist = predictive_distribution(mean, model.sigma)
    vol_daily = float(feature_row[VOL_FEATURE][0])
    has_expiry = expiries.has_expiry(ticker, day)
    decision = pricing.decide(
        spot_open=open_price,
        mu=mean,
        sigma_ret=model.sigma,
        vol_daily=vol_daily,
        decision_time=calendar.session_open_time(day),
        close_time=calendar.session_close_time(day),
        config=decision_config,
        expiry_today=has_expiry,
        model_beats_naive=bool(model_info["beats_naive"]),
        predictive=StudentTPredictive(mean, model.sigma, dist.df),
        no_expiry_reason=(
            None
            if has_expiry
            else expiries.expiry_reason(ticker, day).removeprefix("no expiry today: ")
        ),
    )
    tail = (1.0 - INTERVAL_LEVEL) / 2
    d = decision.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "ticker": ticker.upper(),
        "date": day.isoformat(),
        "decision_time": calendar.session_open_time(day).isoformat(),
        "close_time": calendar.session_close_time(day).isoformat(),
        "open": open_price,
        "predicted_return": mean,
        "predicted_close": open_price * math.exp(mean),
        "p_up": dist.p_up,
        "interval": {
            "level": INTERVAL_LEVEL,
            "low": open_price * math.exp(dist.quantile(tail)),
            "high": open_price * math.exp(dist.quantile(1.0 - tail)),
        },
        "distribution": {"family": "student_t", "mean": mean, "sigma": model.sigma, "df": dist.df},
        "vol_daily": vol_daily,
        "action": decision.action,
        "reason": decision.reason,
        "decision": {
            "action": decision.action,
            "reason_code": d["reason_code"],
            "option": d["option_kind"],
            "strike": d["strike"],
            "premium": d["premium"],
            "cost_per_share": d["cost_per_share"],
            "expected_payoff": d["expected_payoff"],
            "expected_value": d["expected_value"],
            "p_itm": d["p_itm"],
            "contracts": d["contracts"],
            "cost_usd": d["cost_usd"],
            "expected_value_usd": d["expected_value_usd"],
            "implied_vol": d["implied_vol"],
            "expiry_today": has_expiry,
            "config": decision_config.to_dict(),
        },
        "model": {
            "version": str(model_info["model_version"]),
            "uri": model_info["model_uri"],
            "mlflow_run_id": model_info["mlflow_run_id"],
            "tuned_params_run_id": model_info["tuned_run_id"],
            "tuned_as_of": model_info["tuned_as_of"],
            "trained_through": model_info["train_last"],
            "beats_naive": bool(model_info["beats_naive"]),
        },
        "naive": {"predicted_return": 0.0, "predicted_close": open_price},
    }


#: Columns of the predictions table, in order (flattened from the JSON record).
TABLE_SCHEMA: dict[str, Any] = {
    "date": pl.Date,
    "ticker": pl.String,
    "open": pl.Float64,
    "predicted_return": pl.Float64,
    "predicted_close": pl.Float64,
    "p_up": pl.Float64,
    "interval_low": pl.Float64,
    "interval_high": pl.Float64,
    "action": pl.String,
    "option": pl.String,
    "strike": pl.Float64,
    "premium": pl.Float64,
    "contracts": pl.Int64,
    "expected_value": pl.Float64,
    "reason": pl.String,
    "model_version": pl.String,
    "schema_version": pl.Int64,
}


def table_row(record: dict[str, Any]) -> pl.DataFrame:
    dec = record["decision"]
    row = {
        "date": dt.date.fromisoformat(record["date"]),
        "ticker": record["ticker"],
        "open": record["open"],
        "predicted_return": record["predicted_return"],
        "predicted_close": record["predicted_close"],
        "p_up": record["p_up"],
        "interval_low": record["interval"]["low"],
        "interval_high": record["interval"]["high"],
        "action": record["action"],
        "option": dec["option"],
        "strike": dec["strike"],
        "premium": dec["premium"],
        "contracts": dec["contracts"],
        "expected_value": dec["expected_value"],
        "reason": record["reason"],
        "model_version": record["model"]["version"],
        "schema_version": record["schema_version"],
    }
    return pl.DataFrame([row], schema=TABLE_SCHEMA)


def publish(store: storage.Store, record: dict[str, Any]) -> tuple[str, str]:
    """Write the day's JSON, then the table with that day replaced; returns both URLs."""
    ticker, day = record["ticker"], record["date"]
    storage.write_json(store, json_key(ticker, day), record)
    row = table_row(record)
    key = table_key(ticker)
    if store.exists(key):
        old = storage.read_parquet(store, key)
        table = pl.concat(
            [old.filter(pl.col("date") != row["date"][0]), row], how="vertical_relaxed"
        )
    else:
        table = row
    storage.write_parquet(store, key, table.sort("date"))
    return store.url(json_key(ticker, day)), store.url(key)


def read_prediction(
    ticker: str, day: dt.date | str, storage_url: str | None = None
) -> dict[str, Any]:
    """The stored prediction of `ticker` on `day`; `PredictionNotFound` if there is none."""
    from zdte_assets import config

    store = storage.store_from_url(storage_url or config.storage_url())
    key = json_key(ticker, day)
    if not store.exists(key):
        raise PredictionNotFound(f"no prediction for {ticker.upper()} on {day} at {store.url(key)}")
    return dict(storage.read_json(store, key))


def make_outcome(
    prediction: dict[str, Any], close: float, prev_close: float | None
) -> dict[str, Any]:
    """What happened: error and direction next to the naive forecasts, and the trade's P&L."""
    open_price = float(prediction["open"])
    realized = math.log(close / open_price)
    predicted = float(prediction["predicted_return"])
    dec = prediction["decision"]
    pnl = 0.0
    payoff = None
    if prediction["action"] != "NO_TRADE":
        payoff = pricing.payoff_at_close(dec["option"], dec["strike"], close)
        pnl = (
            (payoff - dec["cost_per_share"])
            * dec["config"]["contract_multiplier"]
            * dec["contracts"]
        )
    up = close > open_price
    return {
        "schema_version": SCHEMA_VERSION,
        "ticker": prediction["ticker"],
        "date": prediction["date"],
        "open": open_price,
        "close": close,
        "realized_return": realized,
        "predicted_return": predicted,
        "predicted_close": prediction["predicted_close"],
        "error": predicted - realized,
        "abs_error": abs(predicted - realized),
        "naive_error": 0.0 - realized,
        "prev_close": prev_close,
        "prev_close_error": (math.log(prev_close / open_price) - realized) if prev_close else None,
        "up": up,
        "p_up": prediction["p_up"],
        "direction_hit": None if predicted == 0.0 else bool((predicted > 0) == up),
        "in_interval": prediction["interval"]["low"] <= close <= prediction["interval"]["high"],
        "action": prediction["action"],
        "option": dec["option"],
        "strike": dec["strike"],
        "premium": dec["premium"],
        "contracts": dec["contracts"],
        "payoff_per_share": payoff,
        "pnl_usd": pnl,
        "naive_action": "NO_TRADE",
        "naive_pnl_usd": 0.0,
        "model_version": prediction["model"]["version"],
    }


__all__ = [
    "SCHEMA_VERSION",
    "PredictionNotFound",
    "make_outcome",
    "make_prediction",
    "publish",
    "read_prediction",
]
