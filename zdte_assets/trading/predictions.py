"""Prediction records: how the morning answer is built, published to storage and read back.

Layout under `ZDTE_STORAGE_URL` (a local directory or `s3://bucket/prefix`):

* `predictions/{TICKER}/{YYYY-MM-DD}.json` - one `records.Prediction` per day, the source of
  truth (schema: docs/prediction.schema.json, generated from the record);
* `predictions/{TICKER}.parquet` - every prediction of that ticker, one row per day: an index
  rebuilt from the day files at every publish, so two runs publishing at once cannot drop each
  other's day (see `publish`);
* `outcomes/{TICKER}/{YYYY-MM-DD}.json` and `outcomes/{TICKER}.parquet` - the same for what
  happened (`records.Outcome`), the table the significance gate reads.

Every object is written atomically (see `storage`). Readers need no Dagster: plain boto3,
polars or `read_prediction` below.

Conventions (docs/CONTRACTS.md): an error is ``realized - predicted`` (as in
`evaluation.metrics`); a direction hit is `evaluation.metrics.directional_hits` - a forecast of
exactly 0 is no call, and a flat day (close = open) is a miss for a call and for a put.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any, Final

import polars as pl
import pydantic

from zdte_assets.core import calendar
from zdte_assets.core.records import (
    OUTCOME_TABLE_SCHEMA,
    PREDICTION_SCHEMA_VERSION,
    PREDICTION_TABLE_SCHEMA,
    ModelPointer,
    Outcome,
    Prediction,
    Record,
    outcome_table,
    prediction_table,
)
from zdte_assets.evaluation.metrics import directional_hits
from zdte_assets.features.rows import SESSION_VOL
from zdte_assets.features.volatility import Calibration, SessionForecast
from zdte_assets.model.fitting import FittedModel
from zdte_assets.storage import store as storage
from zdte_assets.trading import pricing
from zdte_assets.trading.expiries import ExpiryCalendar
from zdte_assets.trading.gate import significance_gate

SCHEMA_VERSION: Final = PREDICTION_SCHEMA_VERSION
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


def outcome_json_key(ticker: str, day: dt.date | str) -> str:
    return f"outcomes/{ticker.upper()}/{day if isinstance(day, str) else day.isoformat()}.json"


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


def forecast_of(record: Prediction) -> SessionForecast:
    """The distribution a stored prediction was made with."""
    d = record.distribution
    return SessionForecast(d.mu, d.scale, d.df)


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
) -> Prediction:
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
    return Prediction.model_validate(
        {
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
                "config": decision_config,
            },
            "model": {
                "version": model_info.model_version,
                "uri": model_info.model_uri,
                "mlflow_run_id": model_info.mlflow_run_id,
                "tuned_params_run_id": model_info.tuned_run_id,
                "tuned_as_of": model_info.tuned_as_of,
                "trained_through": model_info.train_last,
                "beats_naive": model_info.beats_naive,
                "shrinkage": model.shrinkage,
            },
            "naive": {"predicted_return": 0, "predicted_close": open_price},
        }
    )


#: Columns of the predictions and outcomes tables (defined with the records).
TABLE_SCHEMA = PREDICTION_TABLE_SCHEMA
OUTCOME_SCHEMA = OUTCOME_TABLE_SCHEMA
#: Rebuilds of a table before a publish gives up (each is triggered by a concurrent publisher).
MAX_REBUILDS = 20


def table_row(record: Prediction) -> pl.DataFrame:
    return prediction_table([record])


def outcome_row(outcome: Outcome) -> pl.DataFrame:
    return outcome_table([outcome])


def _day_keys(store: storage.Store, prefix: str) -> list[str]:
    return sorted(k for k in store.list_keys(prefix) if k.endswith(".json"))


def _rebuild(
    store: storage.Store,
    prefix: str,
    table: str,
    build: Callable[[list[tuple[str, bytes]]], pl.DataFrame],
) -> None:
    """Write the table at `table` from the day files under `prefix`, until it is current.

    Each publisher writes its day file first, then the table from all day files. Without a lock
    two publishers can interleave (A lists, B writes its day and table, A writes a table without
    B's day), so after writing, the table is read back and compared with a fresh build from the
    day files; a difference means another publisher wrote in between, and the build repeats.
    The last table written is therefore always checked after the last day file it should hold
    was written: no day is lost and no row is stale, whatever the interleaving. Rows of a table
    written before the day files existed (outcomes of earlier versions) are kept for the days
    that have no file.
    """

    def current() -> tuple[pl.DataFrame, pl.DataFrame | None]:
        frame = build([(store.url(k), store.read_bytes(k)) for k in _day_keys(store, prefix)])
        old = storage.read_parquet(store, table) if store.exists(table) else None
        if old is not None:
            legacy = old.filter(~pl.col("date").is_in(frame["date"].implode()))
            if legacy.height:
                frame = pl.concat([frame, legacy.select(frame.columns)], how="vertical_relaxed")
        return frame.sort("date"), old

    for _ in range(MAX_REBUILDS):
        frame, _old = current()
        storage.write_parquet(store, table, frame)
        again, stored = current()
        if stored is not None and stored.equals(again):
            return
    raise storage.StorageError(
        f"{store.url(table)}: still changing after {MAX_REBUILDS} rebuilds from {prefix}"
    )


def _read_record(kind: type[Record], url: str, data: bytes) -> Any:
    try:
        return kind.model_validate_json(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(the object)"
        raise ValueError(f"{url}: not a {kind.__name__} record: {where}: {first['msg']}") from None


def _prediction_frame(days: list[tuple[str, bytes]]) -> pl.DataFrame:
    return prediction_table([_read_record(Prediction, url, data) for url, data in days])


def _outcome_frame(days: list[tuple[str, bytes]]) -> pl.DataFrame:
    return outcome_table([_read_record(Outcome, url, data) for url, data in days])


def publish(store: storage.Store, record: Prediction) -> tuple[str, str]:
    """Write the day's JSON, then rebuild the table from the day files; returns both URLs."""
    key = json_key(record.ticker, record.date)
    store.write_bytes(key, record.to_json())
    table = table_key(record.ticker)
    _rebuild(store, f"predictions/{record.ticker}/", table, _prediction_frame)
    return store.url(key), store.url(table)


def rebuild_prediction_table(store: storage.Store, ticker: str) -> str:
    """Rebuild predictions/{TICKER}.parquet from the day files."""
    table = table_key(ticker)
    _rebuild(store, f"predictions/{ticker.upper()}/", table, _prediction_frame)
    return store.url(table)


def read_prediction(ticker: str, day: dt.date | str, storage_url: str | None = None) -> Prediction:
    """The stored prediction of `ticker` on `day`; `PredictionNotFound` if there is none."""
    from zdte_assets.core import config

    store = storage.store_from_url(storage_url or config.storage_url())
    key = json_key(ticker, day)
    if not store.exists(key):
        raise PredictionNotFound(f"no prediction for {ticker.upper()} on {day} at {store.url(key)}")
    return Prediction.from_json(store.read_bytes(key))


def make_outcome(prediction: Prediction, close: float, prev_close: float | None) -> Outcome:
    """What happened: error and direction next to the naive forecasts, calibration, the P&L.

    Errors are ``realized - predicted`` (as in `evaluation.metrics`); a direction hit is
    `evaluation.metrics.directional_hits` (None when the forecast was exactly 0, a miss on a
    flat day, for a call as for a put).
    """
    open_price = prediction.open
    realized = math.log(close / open_price)
    predicted = prediction.predicted_return
    forecast = forecast_of(prediction)
    dec = prediction.decision
    pnl = 0.0
    payoff = None
    if prediction.action != "NO_TRADE":
        if dec.option is None or dec.strike is None or dec.cost_per_share is None:
            raise ValueError(
                f"prediction {prediction.ticker} {prediction.date}: a trade without its option"
            )
        payoff = pricing.payoff_at_close(dec.option, dec.strike, close)
        pnl = pricing.position_pnl(
            dec.option,
            dec.strike,
            dec.cost_per_share,
            dec.contracts * dec.config.contract_multiplier,
            close,
        )
    hit = float(directional_hits([realized], [predicted])[0])
    error = realized - predicted
    return Outcome(
        schema_version=SCHEMA_VERSION,
        ticker=prediction.ticker,
        date=prediction.date,
        open=open_price,
        close=close,
        realized_return=realized,
        predicted_return=predicted,
        predicted_close=prediction.predicted_close,
        error=error,
        abs_error=abs(error),
        naive_error=realized - 0.0,
        prev_close=prev_close,
        prev_close_error=(realized - math.log(prev_close / open_price)) if prev_close else None,
        up=realized > 0.0,
        p_up=prediction.p_up,
        direction_hit=None if math.isnan(hit) else bool(hit),
        pit=float(forecast.cdf(realized)),
        log_score=forecast.logpdf(realized),
        z=(realized - forecast.location) / forecast.scale if forecast.scale > 0 else None,
        in_interval=prediction.interval.low <= close <= prediction.interval.high,
        in_interval_50=prediction.interval_50.low <= close <= prediction.interval_50.high,
        action=prediction.action,
        option=dec.option,
        strike=dec.strike,
        premium=dec.premium,
        contracts=dec.contracts,
        cost_usd=dec.cost_usd,
        expected_value_usd=dec.expected_value_usd,
        payoff_per_share=payoff,
        pnl_usd=pnl,
        naive_action="NO_TRADE",
        naive_pnl_usd=0,
        model_version=prediction.model.version,
    )


def publish_outcome(store: storage.Store, outcome: Outcome) -> str:
    """Write the day's outcome, then rebuild the outcomes table the significance gate reads."""
    store.write_bytes(outcome_json_key(outcome.ticker, outcome.date), outcome.to_json())
    key = outcomes_key(outcome.ticker)
    _rebuild(store, f"outcomes/{outcome.ticker}/", key, _outcome_frame)
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
    "rebuild_prediction_table",
]
