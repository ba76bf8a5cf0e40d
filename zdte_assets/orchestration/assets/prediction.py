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
from zdte_assets.core.records import ModelPointer, Prediction
from zdte_assets.model.versions import champion_due
from zdte_assets.orchestration.assets.model import load_model_dir
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import DAILY_BACKFILL, asset_key, step_priority
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
                "promoted_to_champion": promoted,
                "action": record.action,
                "reason_code": record.decision.reason_code,
                "reason": record.reason,
                "gate_open": record.gate.open,
                "gate_days": record.gate.n,
                "open": record.open,
                "predicted_close": record.predicted_close,
                "p_up": record.p_up,
                "model_version": record.model.version,
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
        value = outcome.model_dump(mode="json")
        return dg.Output(
            value,
            metadata={
                k: value[k]
                for k in ("close", "error", "naive_error", "direction_hit", "pnl_usd", "action")
                if value[k] is not None
            },
        )

    return [prediction, prediction_outcome]


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
