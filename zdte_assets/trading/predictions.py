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

import polars as pl

from zdte_assets.core import calendar
from zdte_assets.core.records import ModelPointer
from zdte_assets.evaluation.metrics import directional_hits
from zdte_assets.features.rows import SESSION_VOL
from zdte_assets.features.volatility import Calibration, SessionForecast
from zdte_assets.model.fitting import FittedModel
from zdte_assets.storage import store as storage
from zdte_assets.trading import pricing
from zdte_assets.trading.expiries import ExpiryCalendar
from zdte_assets.trading.gate import significance_gate

SCHEMA_VERSION = 2
#: Central intervals reported with every prediction.
INTERVAL_LEVEL = 0.9
INNER_INTERVAL_LEVEL = 0.5
#: The feature holding the session volatility forecast (see `volatility`).
VOL_FEATURE = SESSION_VOL
#: Minutes of a regular session: a shorter (early-close) session gets that share of the
#: variance and of the forecast drift.
FULL_SESSION_MINUTES = pricing.MINUTES_PER_SESSION


class PredictionNotFound(LookupError):
    """No prediction stored for that ticker and day."""


def json_key(ticker: str, day: dt.date | str) -> str:
    return f"predictions/{ticker.upper()}/{day if isinstance(day, str) else day.isoformat()}.json"


def table_key(ticker: str) -> str:
    return f"predictions/{ticker.upper()}.parquet"


def outcomes_key(ticker: str) -> str:
    return f"outcomes/{ticker.upper()}.parquet"


def session_fraction(day: dt.date) -> float:
    """Length of the session on `day` relative to a regular one (early closes are shorter)."""
    minutes = (
        calendar.session_close_time(day) - calendar.session_open_time(day)
    ).total_seconds() / 60.0
    return min(minutes / FULL_SESSION_MINUTES, 1.0)


def session_forecast(
    mean: float, vol: float, calibration: Calibration, fraction: float = 1.0
) -> SessionForecast:
    """The day's distribution: the model's mean, the calibrated volatility forecast."""
    return SessionForecast(
        mu=mean * fraction, scale=vol * calibration.factor * math.sqrt(fraction), df=calibration.df
    )


def forecast_of(record: dict[str, Any]) -> SessionForecast:
    """The distribution a stored prediction was made with."""
    d = record["distribution"]
    return SessionForecast(float(d["mu"]), float(d["scale"]), d["df"])


def _interval(forecast: SessionForecast, open_price: float, level: float) -> dict[str, float]:
    tail = (1.0 - level) / 2.0
    return {
        "level": level,
        "low": open_price * math.exp(forecast.quantile(tail)),
        "high": open_price * math.exp(forecast.quantile(1.0 - tail)),
    }


def make_prediction(
    *,
    ticker: str,
    day: dt.date,
    open_price: float,
    feature_row: pl.DataFrame,
    model: FittedModel,
    model_info: ModelPointer,
    decision_config: pricing.DecisionConfig,
    expiries: ExpiryCalendar,
    past: pl.DataFrame,
) -> dict[str, Any]:
    """The record for `day` from the open, the causal feature row, the model trained before
    `day` and `past` (outcomes with `date`, `predicted_return`, `realized_return`; only rows
    before `day` are used) for the significance gate."""
    if feature_row.height != 1 or feature_row["date"][0] != day:
        raise ValueError(f"prediction for {day} needs exactly the feature row of {day}")
    if not open_price > 0:
        raise ValueError(f"prediction for {day}: open {open_price} is not a positive price")
    vol = float(feature_row[VOL_FEATURE][0])
    if not (math.isfinite(vol) and vol > 0):
        raise ValueError(f"prediction for {day}: {VOL_FEATURE} {vol} is not a positive number")
    mean = float(model.predict(feature_row)[0])
    forecast = session_forecast(mean, vol, model.calibration, session_fraction(day))
    earlier = past.filter(pl.col("date") < day).sort("date")
    gate = significance_gate(
        earlier["predicted_return"].to_numpy(),
        earlier["realized_return"].to_numpy(),
        model.shrinkage,
        decision_config.gate_config(),
    )
    has_expiry = expiries.has_expiry(ticker, day)
    decision = pricing.decide(
        open_price,
        forecast,
        calendar.session_open_time(day),
        calendar.session_close_time(day),
        gate,
        decision_config,
        ticker=ticker,
        expiry_today=has_expiry,
        no_expiry_reason=(
            None
            if has_expiry
            else expiries.expiry_reason(ticker, day).removeprefix("no expiry today: ")
        ),
    )
    d = decision.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "ticker": ticker.upper(),
        "date": day.isoformat(),
        "decision_time": calendar.session_open_time(day).isoformat(),
        "close_time": calendar.session_close_time(day).isoformat(),
        "open": open_price,
        "predicted_return": forecast.mu,
        "predicted_close": open_price * math.exp(forecast.mu),
        "p_up": forecast.p_up,
        "interval": _interval(forecast, open_price, INTERVAL_LEVEL),
        "interval_50": _interval(forecast, open_price, INNER_INTERVAL_LEVEL),
        "distribution": {
            **forecast.to_dict(),
            "session_vol": vol,
            "calibration_factor": model.calibration.factor,
            "calibration_n": model.calibration.n,
        },
        "vol_daily": vol,
        "gate": gate.to_dict(),
        "action": decision.action,
        "reason": decision.reason,
        "decision": {
            "action": decision.action,
            "reason_code": d["reason_code"],
            "option": d["option_kind"],
            "strike": d["strike"],
            "strike_increment": d["strike_increment"],
            "model_price": d["model_price"],
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
            "version": model_info.model_version,
            "uri": model_info.model_uri,
            "mlflow_run_id": model_info.mlflow_run_id,
            "tuned_params_run_id": model_info.tuned_run_id,
            "tuned_as_of": ""
            if model_info.tuned_as_of is None
            else model_info.tuned_as_of.isoformat(),
            "trained_through": model_info.train_last.isoformat(),
            "beats_naive": model_info.beats_naive,
            "shrinkage": model.shrinkage,
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
    "reason_code": pl.String,
    "gate_open": pl.Boolean,
    "option": pl.String,
    "strike": pl.Float64,
    "premium": pl.Float64,
    "contracts": pl.Int64,
    "expected_value": pl.Float64,
    "expected_value_usd": pl.Float64,
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
        "reason_code": dec["reason_code"],
        "gate_open": record["gate"]["open"],
        "option": dec["option"],
        "strike": dec["strike"],
        "premium": dec["premium"],
        "contracts": dec["contracts"],
        "expected_value": dec["expected_value"],
        "expected_value_usd": dec["expected_value_usd"],
        "reason": record["reason"],
        "model_version": record["model"]["version"],
        "schema_version": record["schema_version"],
    }
    return pl.DataFrame([row], schema=TABLE_SCHEMA)


def publish(store: storage.Store, record: dict[str, Any]) -> tuple[str, str]:
    """Write the day's JSON, then the table with that day replaced; returns both URLs."""
    ticker, day = record["ticker"], record["date"]
    storage.write_json(store, json_key(ticker, day), record)
    key = table_key(ticker)
    _replace_day(store, key, table_row(record))
    return store.url(json_key(ticker, day)), store.url(key)


def _replace_day(store: storage.Store, key: str, row: pl.DataFrame) -> None:
    """Write the table at `key` with the day of `row` replaced (or added), sorted by date."""
    if store.exists(key):
        old = storage.read_parquet(store, key)
        table = pl.concat(
            [old.filter(pl.col("date") != row["date"][0]), row], how="vertical_relaxed"
        )
    else:
        table = row
    storage.write_parquet(store, key, table.sort("date"))


def read_prediction(
    ticker: str, day: dt.date | str, storage_url: str | None = None
) -> dict[str, Any]:
    """The stored prediction of `ticker` on `day`; `PredictionNotFound` if there is none."""
    from zdte_assets.core import config

    store = storage.store_from_url(storage_url or config.storage_url())
    key = json_key(ticker, day)
    if not store.exists(key):
        raise PredictionNotFound(f"no prediction for {ticker.upper()} on {day} at {store.url(key)}")
    return dict(storage.read_json(store, key))


#: Columns of the outcomes table the significance gate and the report read.
OUTCOME_SCHEMA: dict[str, Any] = {
    "date": pl.Date,
    "ticker": pl.String,
    "predicted_return": pl.Float64,
    "realized_return": pl.Float64,
    "p_up": pl.Float64,
    "pit": pl.Float64,
    "log_score": pl.Float64,
    "z": pl.Float64,
    "in_interval_50": pl.Boolean,
    "in_interval": pl.Boolean,
    "action": pl.String,
    "expected_value_usd": pl.Float64,
    "pnl_usd": pl.Float64,
    "model_version": pl.String,
}


def make_outcome(
    prediction: dict[str, Any], close: float, prev_close: float | None
) -> dict[str, Any]:
    """What happened: error and direction next to the naive forecasts, calibration, the P&L.

    Errors are ``realized - predicted`` (as in `evaluation`); a direction hit is
    `evaluation.directional_hits` (None when the forecast was exactly 0, a miss on a flat day).
    """
    open_price = float(prediction["open"])
    realized = math.log(close / open_price)
    predicted = float(prediction["predicted_return"])
    forecast = forecast_of(prediction)
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
    hit = float(directional_hits([realized], [predicted])[0])
    inner = prediction["interval_50"]
    outer = prediction["interval"]
    return {
        "schema_version": SCHEMA_VERSION,
        "ticker": prediction["ticker"],
        "date": prediction["date"],
        "open": open_price,
        "close": close,
        "realized_return": realized,
        "predicted_return": predicted,
        "predicted_close": prediction["predicted_close"],
        "error": realized - predicted,
        "abs_error": abs(realized - predicted),
        "naive_error": realized - 0.0,
        "prev_close": prev_close,
        "prev_close_error": (realized - math.log(prev_close / open_price)) if prev_close else None,
        "up": realized > 0.0,
        "p_up": prediction["p_up"],
        "direction_hit": None if math.isnan(hit) else bool(hit),
        "pit": float(forecast.cdf(realized)),
        "log_score": forecast.logpdf(realized),
        "z": (realized - forecast.location) / forecast.scale if forecast.scale > 0 else None,
        "in_interval": outer["low"] <= close <= outer["high"],
        "in_interval_50": inner["low"] <= close <= inner["high"],
        "action": prediction["action"],
        "option": dec["option"],
        "strike": dec["strike"],
        "premium": dec["premium"],
        "contracts": dec["contracts"],
        "cost_usd": dec["cost_usd"],
        "expected_value_usd": dec["expected_value_usd"],
        "payoff_per_share": payoff,
        "pnl_usd": pnl,
        "naive_action": "NO_TRADE",
        "naive_pnl_usd": 0.0,
        "model_version": prediction["model"]["version"],
    }


def outcome_row(outcome: dict[str, Any]) -> pl.DataFrame:
    row = {name: outcome[name] for name in OUTCOME_SCHEMA if name != "date"}
    row["date"] = dt.date.fromisoformat(outcome["date"])
    return pl.DataFrame([row], schema=OUTCOME_SCHEMA)


def publish_outcome(store: storage.Store, outcome: dict[str, Any]) -> str:
    """Replace the day's row of the outcomes table (what the significance gate reads)."""
    key = outcomes_key(outcome["ticker"])
    _replace_day(store, key, outcome_row(outcome))
    return store.url(key)


def past_outcomes(store: storage.Store, ticker: str, before: dt.date) -> pl.DataFrame:
    """Outcomes of `ticker` on days before `before` (empty when none are stored)."""
    key = outcomes_key(ticker)
    if not store.exists(key):
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    return storage.read_parquet(store, key).filter(pl.col("date") < before).sort("date")


__all__ = [
    "SCHEMA_VERSION",
    "PredictionNotFound",
    "make_outcome",
    "make_prediction",
    "past_outcomes",
    "publish",
    "publish_outcome",
    "read_prediction",
]
