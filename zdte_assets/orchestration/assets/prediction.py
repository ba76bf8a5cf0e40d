"""Morning `prediction` and evening `prediction_outcome` assets.

The prediction of day t sees `session_open` of t, the feature row of t and the model trained
before t (fetched from the MLflow registry by the version recorded in `daily_model` of t). It is
written where other tools read it: `{storage}/predictions/{TICKER}/{YYYY-MM-DD}.json` and the
table `{storage}/predictions/{TICKER}.parquet`.
"""

from typing import Any

import dagster as dg
import polars as pl

from zdte_assets.core import calendar, timing
from zdte_assets.core.records import ModelPointer, Outcome, Prediction
from zdte_assets.model.versions import champion_due
from zdte_assets.orchestration.assets.model import load_model_dir
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import DAILY_BACKFILL, asset_key, step_priority
from zdte_assets.orchestration.metadata import numbers, prices
from zdte_assets.orchestration.partitions import one_session
from zdte_assets.orchestration.resources import StoreResource
from zdte_assets.orchestration.tracking import MlflowTracking
from zdte_assets.trading import predictions
from zdte_assets.trading.expiries import ExpiryCalendar
from zdte_assets.trading.pricing import DecisionConfig


class DecisionSettings(DecisionConfig, dg.Config):
    """Trade-decision settings of a run: `pricing.DecisionConfig` itself (its fields, defaults,
    units and checks, inherited), made a Dagster run config; strike increments per ticker are
    given as ``{ticker: increment}``."""

    def to_config(self) -> DecisionConfig:
        """The domain config (a plain `DecisionConfig`, as stored with the prediction)."""
        return DecisionConfig.model_validate(self.model_dump())


def build_prediction_assets(
    ticker: str, days: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=asset_key(ticker, "prediction"),
        backfill_policy=DAILY_BACKFILL,
        op_tags=step_priority("prediction"),
        group_name=ticker,
        partitions_def=days,
        kinds={"json", "s3"},
        ins={
            "session_open": dg.AssetIn(key=asset_key(ticker, "session_open")),
            "features": dg.AssetIn(key=asset_key(ticker, "features")),
            "daily_model": dg.AssetIn(key=asset_key(ticker, "daily_model")),
        },
        description=(
            "At 09:30: predicted close, predictive distribution and the 0-DTE decision "
            "(CALL / PUT / NO_TRADE with its reason); also written to predictions/{TICKER}/{date}.json."
        ),
    )
    def prediction(
        context: dg.AssetExecutionContext,
        config: DecisionSettings,
        mlflow: MlflowTracking,
        store: StoreResource,
        session_open: pl.DataFrame,
        features: pl.DataFrame,
        daily_model: dict[str, Any],
    ) -> dg.Output[dict[str, Any]]:
        # The value handed to the IO manager is the record's JSON form (it stores dicts as JSON).
        day = one_session(context)
        pointer = ModelPointer.model_validate(daily_model)
        model_dir = mlflow.cached_model(ticker, pointer.model_version, pointer.mlflow_run_id)
        with timing.part("storage"):
            model = load_model_dir(model_dir)
            past = predictions.past_outcomes(store.store(), ticker, day)
        with timing.part("compute"):
            record = predictions.make_prediction(
                ticker=ticker,
                day=day,
                open_price=float(session_open["open"][0]),
                feature_row=features.filter(pl.col("date") == day),
                model=model,
                model_info=pointer,
                decision_config=config.to_config(),
                expiries=ExpiryCalendar.from_env(),
                past=past,
            )
        with timing.part("storage"):
            s = store.store()
            urls = predictions.publish(s, record)
        promoted = _promote_used_version(mlflow, ticker, pointer)
        return dg.Output(
            record.model_dump(mode="json"),
            metadata={
                **prediction_metadata(record),
                "promoted_to_champion": promoted,
                "json": dg.MetadataValue.url(urls[0]) if urls[0].startswith("http") else urls[0],
                "table": urls[1],
            },
        )

    @dg.asset(
        key=asset_key(ticker, "prediction_outcome"),
        backfill_policy=DAILY_BACKFILL,
        group_name=ticker,
        partitions_def=days,
        kinds={"json"},
        ins={
            "prediction": dg.AssetIn(key=asset_key(ticker, "prediction")),
            "daily_bar": dg.AssetIn(
                key=asset_key(ticker, "daily_bar"),
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0),
                metadata=WINDOW_INPUT,
            ),
        },
        description="After the close: realized close, error, direction hit and P&L, next to the naive forecast's.",
    )
    def prediction_outcome(
        context: dg.AssetExecutionContext,
        store: StoreResource,
        prediction: dict[str, Any],
        daily_bar: pl.DataFrame,
    ) -> dg.Output[dict[str, Any]]:
        day = one_session(context)
        bar = daily_bar.filter(pl.col("date") == day)
        prev = daily_bar.filter(pl.col("date") == calendar.previous_trading_day(day))
        if bar.height != 1:
            raise dg.Failure(f"prediction_outcome {day}: no daily_bar for {day}")
        prev_close = float(prev["close"][0]) if prev.height else None
        with timing.part("compute"):
            outcome = predictions.make_outcome(
                Prediction.from_json(prediction),
                close=float(bar["close"][0]),
                prev_close=prev_close,
            )
        with timing.part("storage"):
            predictions.publish_outcome(store.store(), outcome)
        return dg.Output(outcome.model_dump(mode="json"), metadata=outcome_metadata(outcome))

    return [prediction, prediction_outcome]


def prediction_metadata(record: Prediction) -> dict[str, Any]:
    """The whole decision as the UI shows and plots it (see `orchestration.metadata`).

    On a NO_TRADE day the best candidate's strike, premium and expected value are shown as
    ``considered_*``: numbers named ``strike`` or ``premium`` would read as a recommendation
    (``zdte prediction --table`` shows none there either).
    """
    d = record.decision
    traded = record.action != "NO_TRADE"
    candidate = "" if traded else "considered_"
    md: dict[str, Any] = {
        "action": record.action,
        "reason_code": d.reason_code,
        "reason": record.reason,
        "gate_open": record.gate.open,
        "gate_code": record.gate.code,
        "gate_reason": record.gate.reason,
        "gate_days": record.gate.n,
        "contracts": d.contracts,
        "model_version": record.model.version,
        **numbers(
            {
                "predicted_return": record.predicted_return,
                "p_up": record.p_up,
                "interval_level": record.interval.level,
                "gate_dm_pvalue": record.gate.dm_pvalue,
                "gate_pt_pvalue": record.gate.pt_pvalue,
                f"{candidate}expected_value": d.expected_value,
                f"{candidate}p_itm": d.p_itm,
            }
        ),
        **prices(
            {
                "open": record.open,
                "predicted_close": record.predicted_close,
                "interval_low": record.interval.low,
                "interval_high": record.interval.high,
                f"{candidate}strike": d.strike,
                f"{candidate}premium": d.premium,
                "cost_usd": d.cost_usd,
                "expected_value_usd": d.expected_value_usd,
            }
        ),
    }
    if d.option is not None:
        md[f"{candidate}option"] = d.option
    return md


def outcome_metadata(outcome: Outcome) -> dict[str, Any]:
    """The evening's figures as the UI shows and plots them (see `orchestration.metadata`)."""
    md: dict[str, Any] = {
        "action": outcome.action,
        "in_interval": outcome.in_interval,
        **numbers(
            {
                "realized_return": outcome.realized_return,
                "predicted_return": outcome.predicted_return,
                "error": outcome.error,
                "abs_error": outcome.abs_error,
                "naive_error": outcome.naive_error,
                "pit": outcome.pit,
            }
        ),
        **prices({"close": outcome.close, "pnl_usd": outcome.pnl_usd}),
    }
    if outcome.direction_hit is not None:
        md["direction_hit"] = outcome.direction_hit
    return md


def _promote_used_version(mlflow: MlflowTracking, ticker: str, pointer: ModelPointer) -> bool:
    """Make the version used this morning champion when `versions.champion_due` says so."""
    if not pointer.beats_naive:
        return False
    champion = mlflow.alias_version(ticker, "champion")
    champion_day = None if champion is None else champion.tags.get("day", "")
    if not champion_due(pointer, champion_day):
        return False
    mlflow.set_alias(ticker, "champion", pointer.model_version)
    return True
