"""Asset jobs per ticker, one per moment of the trading day (see `schedules`)."""

from typing import Any

import dagster as dg


def job_names(ticker: str) -> dict[str, str]:
    return {
        "morning": f"{ticker}_morning",
        "evening": f"{ticker}_evening",
        "retrain": f"{ticker}_retrain",
        "weekly": f"{ticker}_weekly",
    }


def build_jobs(
    ticker: str, days: dg.PartitionsDefinition, weeks: dg.PartitionsDefinition
) -> list[Any]:
    names = job_names(ticker)

    def keys(*names: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*(dg.AssetKey([ticker, n]) for n in names))

    return [
        dg.define_asset_job(
            names["morning"],
            keys("session_open", "features", "prediction"),
            partitions_def=days,
            description="09:30: the open, the feature row and the prediction of today.",
        ),
        dg.define_asset_job(
            names["evening"],
            keys("daily_bar", "prediction_outcome", "drift_report"),
            partitions_def=days,
            description="After the close: today's bar, the outcome of the morning call and the drift report.",
        ),
        dg.define_asset_job(
            names["retrain"],
            keys("daily_model"),
            partitions_def=days,
            description="The model for a trading day, trained on everything before it.",
        ),
        dg.define_asset_job(
            names["weekly"],
            keys("tuned_params"),
            partitions_def=weeks,
            description="The weekly re-optimization (also launched by the drift sensor).",
        ),
    ]
