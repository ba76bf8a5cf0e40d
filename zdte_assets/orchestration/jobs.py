"""Asset jobs per ticker, one per moment of the trading day (see `schedules`), plus the
`session` job that the replay runs: every daily asset of one trading day in a single run."""

from typing import Any

import dagster as dg

#: Daily assets each slot materializes, in the order the trading day needs them.
SLOT_ASSETS: dict[str, tuple[str, ...]] = {
    "morning": ("session_open", "features", "prediction"),
    "evening": ("daily_bar", "prediction_outcome", "drift_report"),
    "retrain": ("daily_model",),
    "weekly": ("tuned_params",),
}
#: The replay's one run per trading day: the model for t (what the last retrain before t
#: produced), then the morning, then the evening. Step priorities keep that order.
SESSION_ASSETS: tuple[str, ...] = (
    *SLOT_ASSETS["retrain"],
    *SLOT_ASSETS["morning"],
    *SLOT_ASSETS["evening"],
)
#: Step priority by slot inside a `session` run (higher runs first among ready steps).
SLOT_PRIORITY = {"retrain": 2, "morning": 1, "evening": 0}


def job_names(ticker: str) -> dict[str, str]:
    """Job name of each slot; the one place job names are spelled."""
    return {slot: f"{ticker}_{slot}" for slot in (*SLOT_ASSETS, "session")}


def step_priority(asset_name: str) -> dict[str, str]:
    """`op_tags` that order a `session` run's steps as the schedules would."""
    for slot, names in SLOT_ASSETS.items():
        if asset_name in names and slot in SLOT_PRIORITY:
            return {"dagster/priority": str(SLOT_PRIORITY[slot])}
    return {}


def build_jobs(
    ticker: str, days: dg.PartitionsDefinition, weeks: dg.PartitionsDefinition
) -> list[Any]:
    names = job_names(ticker)

    def keys(*names: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*(dg.AssetKey([ticker, n]) for n in names))

    return [
        dg.define_asset_job(
            names["morning"],
            keys(*SLOT_ASSETS["morning"]),
            partitions_def=days,
            description="09:30: the open, the feature row and the prediction of today.",
        ),
        dg.define_asset_job(
            names["evening"],
            keys(*SLOT_ASSETS["evening"]),
            partitions_def=days,
            description="After the close: today's bar, the outcome of the morning call and the drift report.",
        ),
        dg.define_asset_job(
            names["retrain"],
            keys(*SLOT_ASSETS["retrain"]),
            partitions_def=days,
            description="The model for a trading day, trained on everything before it.",
        ),
        dg.define_asset_job(
            names["weekly"],
            keys(*SLOT_ASSETS["weekly"]),
            partitions_def=weeks,
            description="The weekly re-optimization (also launched by the drift sensor).",
        ),
        dg.define_asset_job(
            names["session"],
            keys(*SESSION_ASSETS),
            partitions_def=days,
            description=(
                "A whole trading day in one run (used by `zdte replay`): the day's model, the "
                "morning prediction, then the evening bar, outcome and drift report."
            ),
        ),
    ]


def asset_op_name(ticker: str, asset: str) -> str:
    """The op name of a ticker's asset (its key ``[ticker, asset]`` joined as Dagster does), the
    key of its config under ``run_config["ops"]``; the one place it is spelled."""
    return dg.AssetKey([ticker, asset]).to_python_identifier()
